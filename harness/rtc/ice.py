"""ICE host-candidate pinning: the one place where the harness bends aioice.

aioice gathers host candidates from every interface except loopback (``get_host_addresses`` drops
127.0.0.1) and offers no parameter to choose them. Benchmarks must run on loopback or on addresses the
harness created itself (veth links in network namespaces), never on the machine's real interfaces, so the
media host replaces that function once at start-up. It is process-wide on purpose: a media host belongs to
one run and one network path. Remove this module when aioice grows a host-address option.

Pinning also drops aiortc's default ICE server (a public STUN server, used by every peer connection created
without a configuration): a benchmark contacts no server outside the machine, and inside a network
namespace whose only way out is an emulated link, resolving that server's name waited for the DNS timeout
(5 s) on every join.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import aioice.ice
from aiortc import RTCIceGatherer, RTCIceServer

_original = aioice.ice.get_host_addresses
_default_servers = RTCIceGatherer.getDefaultIceServers


def _no_default_servers(cls: type[RTCIceGatherer]) -> list[RTCIceServer]:
    return []


def pin_host_addresses(addresses: Sequence[str] | None) -> None:
    """Make ICE gather host candidates only on ``addresses`` (``None`` restores aioice's own choice).

    Raises ``ValueError`` for something that is not an IP address.
    """
    if addresses is None:
        aioice.ice.get_host_addresses = _original
        RTCIceGatherer.getDefaultIceServers = _default_servers  # type: ignore[method-assign]
        return
    checked = tuple(str(ipaddress.ip_address(a)) for a in addresses)
    if not checked:
        raise ValueError("at least one host address is needed to pin ICE candidates")

    def pinned(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            a for a in checked if (use_ipv4 and ":" not in a) or (use_ipv6 and ":" in a)
        ]

    aioice.ice.get_host_addresses = pinned
    RTCIceGatherer.getDefaultIceServers = classmethod(_no_default_servers)  # type: ignore[method-assign,assignment]
