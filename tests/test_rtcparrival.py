"""RTCP arrival times from the kernel (harness/rtc/rtcparrival.py): timestamps on real loopback sockets."""

from __future__ import annotations

import socket
import time

from harness.rtc import rtcparrival

RTCP_RR = bytes([0x81, 201, 0, 7]) + bytes(28)  # an SRTCP receiver report's clear header, and a body
RTP = bytes([0x80, 96, 0, 1]) + bytes(60)


def test_the_kernel_timestamps_arrivals_and_only_rtcp_is_kept() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        assert rtcparrival.reads_with_timestamps(rx)
        # Linux turns arrival timestamping on a moment after the first socket asks (deferred work); until then
        # it stamps a datagram when it is read. So: until a datagram that waited shows its arrival, not its read.
        waited = []
        for _ in range(40):
            sent = time.time()
            tx.sendto(RTCP_RR, rx.getsockname())
            time.sleep(0.05)
            read_at = time.time()
            data, ancillary, _flags, _addr = rx.recvmsg(2048, rtcparrival.ANCILLARY_BYTES)
            arrival = rtcparrival.arrival_of(ancillary)
            assert data == RTCP_RR and arrival is not None and sent - 0.01 <= arrival <= read_at + 0.01
            waited.append(read_at - arrival)
            if read_at - arrival > 0.025:
                break
        assert waited[-1] > 0.025, f"the kernel never stamped an arrival before its read: {waited}"
        for payload in (RTCP_RR, RTP):
            tx.sendto(payload, rx.getsockname())
            data, ancillary, _flags, _addr = rx.recvmsg(2048, rtcparrival.ANCILLARY_BYTES)
            assert rtcparrival.arrival_of(ancillary) is not None
            rtcparrival.note_arrival(data, ancillary)
    assert RTCP_RR in rtcparrival._pending and RTP not in rtcparrival._pending
    rtcparrival._pending.pop(RTCP_RR)
