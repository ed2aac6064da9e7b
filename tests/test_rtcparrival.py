"""RTCP arrival times from the kernel (harness/rtcparrival.py): timestamps on real loopback sockets."""

from __future__ import annotations

import socket
import time

from harness import rtcparrival

RTCP_RR = bytes([0x81, 201, 0, 7]) + bytes(28)  # an SRTCP receiver report's clear header, and a body
RTP = bytes([0x80, 96, 0, 1]) + bytes(60)


def test_the_kernel_timestamps_arrivals_and_only_rtcp_is_kept() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        assert rtcparrival.reads_with_timestamps(rx)
        sent = time.time()
        for payload in (RTCP_RR, RTP):
            tx.sendto(payload, rx.getsockname())
        time.sleep(0.05)  # the datagrams wait in the kernel: their arrival is before this read
        read_at = time.time()
        for payload in (RTCP_RR, RTP):
            data, ancillary, _flags, _addr = rx.recvmsg(2048, rtcparrival.ANCILLARY_BYTES)
            arrival = rtcparrival.arrival_of(ancillary)
            assert data == payload and arrival is not None
            assert sent - 0.01 <= arrival < read_at - 0.025  # the kernel's time (at sendto on loopback), not the read's
            rtcparrival.note_arrival(data, arrival)
    assert RTCP_RR in rtcparrival._pending and RTP not in rtcparrival._pending
    rtcparrival._pending.pop(RTCP_RR)
