"""The harness's error classes.

Flat on purpose (DESIGN.md §5.6): the CLI catches :class:`HarnessError` once and prints one line, so a
subclass only exists where a caller wants to tell a kind of failure apart.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A failure the user can act on; the CLI prints its message as one line."""

    exit_code: int = 1


class UsageError(HarnessError):
    """Bad command-line input."""

    exit_code = 2


class ScenarioError(HarnessError):
    """A scenario file that cannot be used; the message names the file and the field."""

    exit_code = 2


class SystemError_(HarnessError):  # noqa: N801 - trailing underscore avoids shadowing the builtin
    """A conferencing system (adapter or server) failed: signalling refused, server gone, timeout."""


class TestbedError(HarnessError):
    """The local test topology (namespaces, local servers) could not be set up."""

    __test__ = False  # not a pytest test class despite the name


class BrowserError(HarnessError):
    """A browser participant cannot run: Chromium or Playwright missing, or a web platform misdescribed."""


class StoreError(HarnessError):
    """Results on disk cannot be written or read (e.g. a schema newer than this harness)."""


class ReportError(HarnessError):
    """A report cannot be built from the given results."""


class CompareError(HarnessError):
    """Runs that cannot be compared (e.g. different scenarios); a usage problem, hence exit status 2."""

    exit_code = 2
