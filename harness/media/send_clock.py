"""A sending clock outside the event loop: packets handed over ahead of their time leave on time.

A real client's audio is captured, encoded and sent by a thread of its own (Chromium's audio threads run at a
real-time priority where the system allows it, as root here), so its packets leave every 20 ms whatever the
rest of the browser does. A media host sends its natives' audio from one asyncio event loop shared with
everything else they do; on a full machine that loop runs tens of ms late (a mixed room on two cores: 40-60
ms in a typical second), the audio leaves late and in bunches, and a browser receiving it (Chromium's NetEq)
takes that for network jitter: it buffered native audio 20-40 ms more than browser audio, and for lip sync
held the natives' video as long.

The synthetic microphone knows its samples in advance (``harness.media.audio``: pulses on a wall-clock grid),
so its frames are made, encoded, packetized and SRTP-protected ahead of their time on the loop
(:data:`SEND_LEAD_S`), and this module's small child process, which does nothing else, puts each on the wire
at its time: ``python -m harness.media.send_clock``, one per event loop, holding a copy of each ICE socket
(passed over a Unix socket, ``SCM_RIGHTS``). It reports when each packet really left, so the senders'
departure figures (``harness.media.departures``) are measured, not assumed.

Only the departure moves: the packet's bytes, sequence number, SRTP index and abs-send-time (computed for its
departure time) are made by the sender as before, and its sender reports map RTP to NTP time at the departure.
Without the child (it cannot start, or died), :func:`send_clock` gives ``None`` and senders hold such packets on
the event loop's timer until their time (then they leave as late as the loop is, as before).

The wire protocol (``SOCK_SEQPACKET``, one message each): ``R`` + socket id, with the socket's descriptor;
``F`` + socket id (forget it); ``P`` + records of departure time (``time.monotonic``, shared by every process
of the machine), socket id, token, port, host length, packet length, host, packet; the child answers ``S`` +
(token, sent at) pairs.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import select
import socket
import struct
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["SEND_LEAD_S", "SendClock", "running_clock", "send_clock", "send_later"]

log = logging.getLogger(__name__)

SEND_LEAD_S = 0.2
"""How far ahead of its time an audio frame is made when a sending clock is running: an event loop late by
less than this still hands its packets over in time (the mixed room's loops: p90 80-115 ms, a second's worst)."""
# The child keeps the default priority. At nice -10 (tried 2026-12-07, mixed room on Janus) each of its
# wake-ups (two a packet: handed over, due) preempted the media host's event loop, which then waited behind
# Chromium's threads (nice -8) for its turn: the natives' loop ran late by 170-460 ms (p90 of each second's
# worst) against 100-130 ms without the child. At the default it still sent within 2 ms of the due time
# (send jitter p50 1.3-1.9 ms): it sleeps almost all the time, and the scheduler favours such tasks.

_PACKET = struct.Struct("!dIIHBH")  # departure, socket id, token, port, host length, packet length
_SENT = struct.Struct("!Id")  # token, sent at
_MAX_MESSAGE = 65536
_SLACK_S = 0.0002  # a packet due this soon leaves now rather than after one more sleep


class SendClock:
    """The parent's side: hands packets to the child process, and calls back when each really left.

    Made by :func:`send_clock` for the running event loop; ``send_at`` never blocks and never raises.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, process: subprocess.Popen[bytes],
                 control: socket.socket) -> None:
        self._loop = weakref.ref(loop)  # the loop's finalizer closes this clock: no reference back to it
        self._process = process
        self._control = control
        self._ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._next_id = 1
        self._tokens: dict[int, Callable[[float], None]] = {}
        self._next_token = 1
        self._batch: list[tuple[bytes, float, Any, Any, bytes, int]] = []  # record, due, transport, addr, data, token
        self.alive = True
        """False once the child has gone (then :func:`send_clock` makes no new one for this loop)."""
        loop.add_reader(control.fileno(), self._read)

    def send_at(self, due: float, transport: Any, addr: tuple[Any, ...], data: bytes,
                on_sent: Callable[[float], None] | None = None) -> bool:
        """Send ``data`` to ``addr`` on ``transport``'s socket at ``due`` (monotonic seconds).

        ``on_sent(t)`` is called on the loop with the time it left. False when the clock cannot take it (the
        caller sends it itself): the child is gone, or the transport has no socket. Packets handed over in
        one pass of the loop go to the child in one message (fewer wake-ups of it, and of the loop).
        """
        if not self.alive:
            return False
        try:
            sock_id = self._ids.get(transport) or self._register(transport)
        except OSError:
            self._gone("its control socket failed")
            return False
        if sock_id is None:
            return False
        token = 0
        if on_sent is not None:
            token = self._next_token
            self._next_token = self._next_token % 0xFFFFFFFF + 1
            self._tokens[token] = on_sent
        host = str(addr[0]).encode()
        record = _PACKET.pack(due, sock_id, token, int(addr[1]), len(host), len(data)) + host + data
        self._batch.append((record, due, transport, addr, data, token))
        if len(self._batch) == 1:
            loop = self._loop()
            if loop is not None:
                loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        while batch:
            size, end = 1, 0
            while end < len(batch) and (end == 0 or size + len(batch[end][0]) <= _MAX_MESSAGE):
                size += len(batch[end][0])
                end += 1
            try:
                if not self.alive:
                    raise ConnectionError
                self._control.send(b"P" + b"".join(r[0] for r in batch[:end]))
            except (BlockingIOError, ConnectionError):
                break  # the child is a socket buffer behind, or gone: the loop sends the rest itself
            except OSError:
                self._gone("its control socket failed")
                break
            batch = batch[end:]
        for _, due, transport, addr, data, token in batch:
            send_later(due, transport, addr, data, self._tokens.pop(token, None))

    @property
    def pid(self) -> int:
        """The child's process id (its CPU is the media host's too: ``harness.host.media_host`` adds it)."""
        return self._process.pid

    def close(self) -> None:
        """Stop the child (what it still holds is not sent)."""
        if self._control.fileno() >= 0:
            self._unwatch()
            self._control.close()
        self.alive = False
        try:
            self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=2)

    def _register(self, transport: Any) -> int | None:
        sock = transport.get_extra_info("socket")
        if sock is None or sock.fileno() < 0:
            return None
        sock_id = self._next_id
        self._next_id += 1
        socket.send_fds(self._control, [b"R" + struct.pack("!I", sock_id)], [sock.fileno()])
        self._ids[transport] = sock_id
        # When the transport goes, the child must let go of its copy (else the port stays bound).
        weakref.finalize(transport, self._forget, sock_id)
        return sock_id

    def _forget(self, sock_id: int) -> None:
        if self.alive:
            try:
                self._control.send(b"F" + struct.pack("!I", sock_id))
            except OSError:
                pass

    def _read(self) -> None:
        while True:
            try:
                message = self._control.recv(_MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                message = b""
            if not message:
                self._gone("it exited")
                return
            if message[:1] != b"S":
                continue
            for i in range(1, len(message) - _SENT.size + 1, _SENT.size):
                token, sent_at = _SENT.unpack_from(message, i)
                callback = self._tokens.pop(token, None)
                if callback is not None:
                    try:
                        callback(sent_at)
                    except Exception:
                        log.exception("a send-clock callback failed")

    def _gone(self, why: str) -> None:
        if self.alive:
            log.warning("the sending clock stopped (%s): audio leaves from the event loop again", why)
        self.alive = False
        self._tokens.clear()
        self._unwatch()

    def _unwatch(self) -> None:
        loop = self._loop()
        if loop is not None and not loop.is_closed() and self._control.fileno() >= 0:
            loop.remove_reader(self._control.fileno())


def send_later(due: float, transport: Any, addr: Any, data: bytes,
               on_sent: Callable[[float], None] | None = None) -> None:
    """Send ``data`` at ``due`` from the running event loop's timer (as late as the loop is): without a clock."""
    asyncio.get_running_loop().call_later(max(due - time.monotonic(), 0.0), _send_now, transport, addr, data,
                                          on_sent)


def _send_now(transport: Any, addr: Any, data: bytes, on_sent: Callable[[float], None] | None) -> None:
    if transport.is_closing():
        return
    transport.sendto(data, addr)
    if on_sent is not None:
        on_sent(time.monotonic())


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SendClock | None] = weakref.WeakKeyDictionary()


def running_clock() -> SendClock | None:
    """The running event loop's sending clock if one was started and still runs (none is started)."""
    clock = _clocks.get(asyncio.get_running_loop())
    return clock if clock is not None and clock.alive else None


def send_clock() -> SendClock | None:
    """The running event loop's sending clock, started on first use; ``None`` when it cannot run."""
    loop = asyncio.get_running_loop()
    if loop in _clocks:
        clock = _clocks[loop]
        return clock if clock is not None and clock.alive else None
    clock = None
    try:
        clock = _start(loop)
    except Exception as exc:  # noqa: BLE001  # any failure means: send from the loop, as before
        log.warning("no sending clock (%s): audio leaves from the event loop", exc)
    _clocks[loop] = clock
    return clock


def _start(loop: asyncio.AbstractEventLoop) -> SendClock:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        process = subprocess.Popen([sys.executable, "-m", __name__, str(theirs.fileno())],
                                   pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
    finally:
        theirs.close()
    # Not waited for: what is sent before the child runs waits in the socket, and a child that never runs
    # closes its end, which the loop reads as its end (``SendClock._gone``).
    ours.setblocking(False)
    clock = SendClock(loop, process, ours)
    weakref.finalize(loop, clock.close)
    return clock


# -- the child process ---------------------------------------------------------------------------------
def _child(fd: int) -> None:
    control = socket.socket(fileno=fd)
    control.setblocking(False)  # (recv_fds drops its flags argument on Python 3.11: no MSG_DONTWAIT per call)
    sockets: dict[int, socket.socket] = {}
    queue: list[tuple[float, int, int, int, tuple[str, int], bytes]] = []  # due, order, socket, token, addr, data
    order = 0
    while True:
        timeout = max(queue[0][0] - time.monotonic(), 0.0) if queue else None
        readable, _, _ = select.select([control], [], [], timeout)
        # Everything waiting is read before anything is sent: packets handed over together leave in order.
        while readable:
            try:
                message, fds, _, _ = socket.recv_fds(control, _MAX_MESSAGE, 4)
            except BlockingIOError:
                break
            if not message:
                return  # the parent closed its side (or died): nothing more to send
            kind = message[:1]
            if kind == b"R" and fds:
                sockets[struct.unpack_from("!I", message, 1)[0]] = socket.socket(fileno=fds[0])
            elif kind == b"F":
                gone = sockets.pop(struct.unpack_from("!I", message, 1)[0], None)
                if gone is not None:
                    gone.close()
            elif kind == b"P":
                at = 1
                while at < len(message):
                    due, sock_id, token, port, host_len, length = _PACKET.unpack_from(message, at)
                    at += _PACKET.size
                    host = message[at:at + host_len].decode()
                    at += host_len
                    heapq.heappush(queue, (due, order, sock_id, token, (host, port), message[at:at + length]))
                    at += length
                    order += 1
        sent = []
        now = time.monotonic()
        while queue and queue[0][0] <= now + _SLACK_S:
            _, _, sock_id, token, addr, data = heapq.heappop(queue)
            sock = sockets.get(sock_id)
            if sock is None:
                continue
            try:
                sock.sendto(data, addr)
            except OSError:
                continue  # as a lost packet: the network may drop it too
            if token:
                sent.append(_SENT.pack(token, time.monotonic()))
        if sent:
            try:
                control.send(b"S" + b"".join(sent))
            except BlockingIOError:
                pass  # the parent is a socket buffer behind: these departures go unreported
            except OSError:
                return


if __name__ == "__main__":
    _child(int(sys.argv[1]))
