"""The LiveKit join page's platform: its prepare hook signs a token that types into the page (never a URL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from livekit.api.access_token import TokenVerifier

from harness.browser.platform import Meeting, parse_platform
from harness.systems.livekit import API_KEY_ENV, API_SECRET_ENV, issue_token
from harness.testbed.livekit_page import cache_folder


def test_the_hook_signs_a_token_for_the_participant_and_room(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "key")
    monkeypatch.setenv(API_SECRET_ENV, "s" * 32)
    meeting = Meeting(base="http://127.0.0.1:1", room="standup", participant="b-0", system_url="ws://x:7880")
    extra = asyncio.run(issue_token(meeting, "VP8", 5.0))
    claims = TokenVerifier("key", "s" * 32).verify(extra["livekit_token"])
    assert claims.identity == "b-0" and claims.video is not None and claims.video.room == "standup"
    assert extra["codec"] == "vp8"


def test_placeholders_from_a_hook_fill_steps_but_the_url_carries_no_token() -> None:
    import tomllib
    from importlib import resources

    text = resources.files("harness.browser").joinpath("livekit", "platform.toml").read_text()
    platform = parse_platform(tomllib.loads(text.replace("{site}", "/nonexistent")), "livekit.toml")
    meeting = Meeting(base="http://127.0.0.1:1", room="r", participant="p", system_url="ws://x:7880",
                      extra=(("livekit_token", "TOKEN"), ("codec", "vp8")))
    url = platform.meeting_url(meeting)
    assert url == "http://127.0.0.1:1/index.html?url=ws://x:7880&room=r&codec=vp8" and "TOKEN" not in url
    filled = [meeting.fill(step.value or "") for step in platform.join_steps if step.action == "fill"]
    assert filled == ["p", "TOKEN"]


def test_the_page_is_cached_per_version_of_its_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = cache_folder()
    assert folder.parent == tmp_path / "confbench" / "web" and folder.name.startswith("livekit-")
