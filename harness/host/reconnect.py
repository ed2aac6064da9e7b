"""Coming back after a lost connection: what a participant does when the system goes silent or away.

A real client whose connection died (its server restarted, its network dropped for longer than its ICE
tolerates) joins again with a new session. A participant does the same, bounded in time:

- it is *lost* when its adapter says so (``server_lost``: the signalling connection closed), when a peer
  connection fails, or when a publishing participant has had no receiver report on what it sends for
  ``reconnect_after_s``;
- it then leaves the lost session and joins again, attempt after attempt, for ``reconnect_within_s``;
- and records ``connection_lost``, then ``reconnected`` (``took_ms``, ``attempts``) or ``reconnect_failed``.

A short outage (a few seconds, below ``reconnect_after_s``) is not a loss: the connection resumes by itself,
as in a browser, and recovery is measured from the media (``media_resumed`` events, ``harness.analysis.outages``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection

from harness.systems.base import Session, SessionContext, System

log = logging.getLogger(__name__)

LOST_EVENTS = ("server_lost",)
"""Adapter events that mean the session is gone: the participant reconnects at once."""


class Reconnecting:
    """The reconnection part of :class:`harness.host.participant.Participant` (a mixin over its state)."""

    spec: Any  # ParticipantSpec: reconnect_after_s, reconnect_within_s, join_timeout_s, publish
    _system: System
    _clock: Callable[[], float]
    _session: Session | None
    _ctx: SessionContext | None
    _pcs: list[tuple[str, RTCPeerConnection]]
    _reported_at: float | None
    _reconnecting: bool
    _reconnects: int

    def on_event(self, kind: str, detail: Any) -> None:  # provided by the participant
        raise NotImplementedError

    def _spawn(self, coro: Any) -> None:  # provided by the participant
        raise NotImplementedError

    async def _wait_ice(self, timeout: float) -> None:  # provided by the participant
        raise NotImplementedError

    async def _leave_session(self, session: Session | None) -> None:
        """Leave ``session`` (bounded; never raises)."""
        if session is None:
            return
        try:
            await asyncio.wait_for(session.leave(), timeout=10)
        except Exception:
            log.warning("leave of %s did not finish cleanly", self.spec.name, exc_info=True)

    def _lost(self, reason: str) -> None:
        """The session is gone (or silent too long): start a new one, unless one is being started already."""
        if self._reconnecting or self._ctx is None or self._session is None:
            return
        self._reconnecting = True
        self._spawn(self._reconnect(reason))

    def _silent(self, now: float) -> bool:
        """Whether a publishing participant has had no receiver report on what it sends for too long.

        Only publishers: the far end reports on what they send at least every few seconds, whatever else
        happens in the room; a participant that only receives may hear nothing because nobody sends.
        Media received does not count: after a server restart, a participant whose publication the new
        server does not know may still subscribe to those who joined it again, and receive from them; it
        is lost all the same, since nobody receives it.
        """
        reported = self._reported_at
        return bool(self.spec.publish) and reported is not None and now - reported > self.spec.reconnect_after_s

    async def _reconnect(self, reason: str) -> None:
        """Leave the lost session and join again with a new one until ``reconnect_within_s`` is over, as a
        client does after its connection died; records ``connection_lost``, then ``reconnected`` (with the time
        it took and the attempts) or ``reconnect_failed``."""
        spec, ctx = self.spec, self._ctx
        assert ctx is not None
        lost_at = self._clock()
        self.on_event("connection_lost", {"reason": reason})
        session: Session | None = None
        attempts, error = 0, ""
        try:
            while self._ctx is not None and self._clock() - lost_at < spec.reconnect_within_s:
                old, self._session = self._session, None
                self._pcs.clear()  # their rows end here; the new session's connections start their own
                await self._leave_session(old)
                attempts += 1
                remaining = spec.reconnect_within_s - (self._clock() - lost_at)
                try:
                    session = self._session = self._system.session(ctx)
                    await asyncio.wait_for(session.join(), timeout=max(min(spec.join_timeout_s, remaining), 0.1))
                    await self._wait_ice(max(min(spec.join_timeout_s, remaining), 0.1))
                except Exception as exc:  # refused, unreachable, timed out: try again while there is time
                    error = str(exc) or type(exc).__name__
                    await asyncio.sleep(1.0)
                    continue
                self._reconnects += 1
                self._reported_at = None
                self.on_event("reconnected", {"took_ms": round((self._clock() - lost_at) * 1000, 1),
                                              "attempts": attempts, "reason": reason})
                return
            if self._ctx is not None:
                self.on_event("reconnect_failed", {"attempts": attempts, "error": error, "reason": reason})
                old, self._session = self._session, None
                await self._leave_session(old)
        finally:
            self._reconnecting = False
            if self._ctx is None:  # the participant left meanwhile: the session this started goes too
                late, self._session = self._session, None
                await self._leave_session(late)
