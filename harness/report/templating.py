"""The HTML pages' templates (``harness/report/templates/``), rendered with Jinja2.

Every ``{{ … }}`` is escaped; Python computes what a page shows, the templates hold all its markup. Values are
escaped as :func:`html.escape` does (``&quot;`` and ``&#x27;``, where Jinja's own escaping writes ``&#34;`` and
``&#39;``), so the pages are byte for byte what the string-building code wrote before the templates; autoescape
stays on underneath. Text from results is shortened to :data:`MAX_TEXT` characters on the run report and the
capacity page, so a pathological manifest cannot produce a page of megabytes (``shorten=True``).
"""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

__all__ = ["MAX_TEXT", "render"]

MAX_TEXT = 2000
"""The longest text from results that a page shows as it is; longer text ends in "…"."""


def _escaped(value: Any) -> Markup:
    # Jinja calls this on every {{ … }} before its own escaping, which leaves Markup alone: markup the templates
    # made themselves (macros) passes as it is.
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(value if isinstance(value, str) else str(value), quote=True))


def _shortened(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    text = value if isinstance(value, str) else str(value)
    return _escaped(text[: MAX_TEXT - 1] + "…" if len(text) > MAX_TEXT else text)


@cache
def _environment(shorten: bool) -> Environment:
    return Environment(
        loader=PackageLoader("harness.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
        finalize=_shortened if shorten else _escaped,
    )


def render(template: str, *, shorten: bool = False, **context: Any) -> str:
    """The page ``template`` (a file name in ``templates/``) with ``context``."""
    return _environment(shorten).get_template(template).render(**context)
