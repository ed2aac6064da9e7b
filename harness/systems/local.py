"""Faults on a server that a system's :meth:`~harness.systems.base.System.deploy` started in a namespace of its
own (``harness.testbed.served.NamespacedServer``: the local Janus, the local LiveKit)."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.errors import SystemError_, TestbedError


class LocalServerFaults:
    """Mixin for a :class:`~harness.systems.base.System` whose local server is ``self._local`` (None when it
    joined a server at a given URL): kill it, or restart it in the same namespace with the same configuration."""

    name: ClassVar[str]
    url: str | None
    _local: Any

    def fault_support(self) -> str | None:
        """None when this system runs its own server (see ``System.fault_support``)."""
        if self._local is None:
            return f"confbench cannot restart or kill the {self.name} server at {self.url}: it did not start it"
        return None

    def server_fault(self, action: str, down_s: float = 0.0) -> tuple[int, ...]:
        """Kill or restart the local server (see ``System.server_fault``)."""
        reason = self.fault_support()
        if reason is not None:
            raise SystemError_(reason)
        try:
            if action == "kill":
                self._local.kill()
                return ()
            self._local.restart(down_s)
        except TestbedError as exc:
            raise SystemError_(f"the {self.name} server did not come back: {exc}") from None
        return (int(self._local.pid),)
