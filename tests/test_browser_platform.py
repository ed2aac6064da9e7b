"""Web platform files: parsing, errors naming file and field, and the steps run against a fake page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from harness.browser.platform import Meeting, builtin_platforms, load_platform, parse_platform
from harness.errors import BrowserError, SystemError_


def test_builtins_parse_and_untested_templates_say_so() -> None:
    names = builtin_platforms()
    assert {"reference", "janus-videoroom", "jitsi", "bigbluebutton", "zoom"} <= set(names)
    for name in names:
        platform = load_platform(name)
        assert platform.join_steps, name
    assert load_platform("reference").tested
    meeting = Meeting("http://h", "confbench", "browser-12", system_url="ws://j:8188")
    # The same numeric room id as the janus adapter's room_id(): crc32 & 0x7FFFFFFF.
    assert meeting.fill("{room_number} {participant_alnum} {system_url}") == "804443167 browser12 ws://j:8188"
    for name in ("jitsi", "bigbluebutton", "zoom"):
        assert not load_platform(name).tested and "untested" in load_platform(name).description.lower()


def test_meeting_url_and_errors(tmp_path: Path) -> None:
    p = parse_platform({"name": "x", "url": "{base}/r/{room}?n={participant}", "join": [{"click": "#go"}]})
    assert p.meeting_url(Meeting("http://h:1/", "room1", "me")) == "http://h:1/r/room1?n=me"
    with pytest.raises(BrowserError, match=r"x.toml: join\[0\]: needs exactly one action"):
        parse_platform({"name": "x", "url": "http://h/", "join": [{"click": "a", "wait": "b"}]}, "x.toml")
    with pytest.raises(BrowserError, match=r"join\[0\]: a fill step needs a value"):
        parse_platform({"name": "x", "url": "http://h/", "join": [{"fill": "#n"}]}, "x.toml")
    with pytest.raises(BrowserError, match="x.toml: colour: unknown key"):
        parse_platform({"name": "x", "url": "http://h/", "colour": "red"}, "x.toml")
    with pytest.raises(BrowserError, match="unknown web platform 'nosuch'"):
        load_platform("nosuch")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    with pytest.raises(BrowserError, match="bad.toml: not valid TOML"):
        load_platform(str(bad))


class FakePage:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_on = fail_on

    async def goto(self, url: str, **_: Any) -> None:
        self.calls.append(("goto", url))

    async def _do(self, action: str, target: str) -> None:
        if target == self.fail_on:
            raise RuntimeError(f"Timeout waiting for {target}\nmore detail")
        self.calls.append((action, target))

    async def fill(self, target: str, value: str, **_: Any) -> None:
        await self._do("fill", f"{target}={value}")

    async def click(self, target: str, **_: Any) -> None:
        await self._do("click", target)

    async def wait_for_selector(self, target: str, **_: Any) -> None:
        await self._do("wait", target)


def test_steps_run_in_order_optional_ones_may_fail_and_a_failure_names_the_step() -> None:
    platform = parse_platform({"name": "demo", "url": "{base}/?room={room}", "join": [
        {"click": "#cookies", "optional": True}, {"fill": "#name", "value": "{participant}"},
        {"click": "#join"}, {"wait": "#in-call"}]})
    page = FakePage(fail_on="#cookies")
    asyncio.run(platform.join(page, Meeting("http://h", "r", "p-1"), 5))
    assert page.calls == [("goto", "http://h/?room=r"), ("fill", "#name=p-1"), ("click", "#join"), ("wait", "#in-call")]
    expected = r"demo: join step 4 \(wait '#in-call'\) failed: Timeout waiting for #in-call$"
    with pytest.raises(SystemError_, match=expected):
        asyncio.run(platform.join(FakePage(fail_on="#in-call"), Meeting("http://h", "r", "p"), 5))
