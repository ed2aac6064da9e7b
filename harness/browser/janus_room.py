"""Before a browser joins Janus's VideoRoom demo: make sure the room exists, as the janus adapter makes it.

The demo page joins an existing room and cannot create one; a native participant creates it on joining
(``harness.systems.janus``). A browser that comes first would find no room, so the platform's ``prepare`` hook
creates it through the adapter's own code, with the same settings (publishers, codec, secrets from the
environment), and leaves.
"""

from __future__ import annotations

from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection

from harness.browser.platform import Meeting
from harness.systems.base import SessionContext
from harness.systems.janus import VIDEOROOM, JanusSession


class _Nobody:
    """A participant that publishes and hears nothing: only the room check runs."""

    def tracks(self) -> list[MediaStreamTrack]:
        return []

    def on_connection(self, pc: RTCPeerConnection, remote: str) -> None:
        return None

    def on_track(self, track: MediaStreamTrack, remote: str, receiver: Any = None) -> None:
        return None

    def on_event(self, kind: str, detail: str) -> None:
        return None


async def ensure_room(meeting: Meeting, video_codec: str, timeout_s: float) -> None:
    """Create the meeting's VideoRoom on the Janus at ``meeting.system_url`` unless it exists."""
    nobody = _Nobody()
    ctx = SessionContext(room=meeting.room, participant="confbench-room-check", media=nobody, listener=nobody,
                         subscribe=False, timeout_s=timeout_s, video_codec=video_codec)
    session = JanusSession(ctx, meeting.system_url)
    client = session._client  # the adapter's own client and room check: one definition of a room's settings
    try:
        await client.open()
        handle = await client.attach(VIDEOROOM)
        await session._ensure_room(handle)
        await handle.detach()
    finally:
        await client.close()
