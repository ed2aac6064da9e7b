"""``web``: a conferencing system known only by its web page (Jitsi Meet, BigBlueButton, Zoom's web client…).

``--system web=https://meet.example.org`` with the scenario's ``[browser] platform = "jitsi"`` (a built-in
platform file) or a path to your own platform file. Every group must use ``engine = "browser"``: there is no
protocol for native participants to speak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from harness.errors import SystemError_
from harness.systems.base import Session, SessionContext, System


class WebSystem(System):
    """A web app, joined by browser participants only."""

    name: ClassVar[str] = "web"
    description: ClassVar[str] = "any web conferencing app through browser participants: web=URL + [browser] platform"

    def __init__(self, url: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        if url is None:
            raise SystemError_("the web system needs the app's URL: web=https://HOST/ (and [browser] platform "
                               "in the scenario)")
        super().__init__(url, options)

    def session(self, ctx: SessionContext) -> Session:
        """Native participants cannot join a system that only has a web page."""
        raise SystemError_('the web system has no protocol for native participants: use engine = "browser"')
