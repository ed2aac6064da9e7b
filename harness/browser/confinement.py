"""Keeping browser participants' media on the test network: each browser group in a namespace of its own.

Why. Chromium never gathers ICE candidates on loopback (only with a flag, and then beside every other
interface), so a browser on this machine's root namespace sends its media from the machine's ordinary address
(eth0), even when the server it calls listens on 127.0.0.1. confbench's rule is that test traffic stays on
loopback or on namespaces the harness made. So when confbench deploys the system itself (the reference SFU,
the Janus testbed, the p2p broker), each browser group's media host, and the Chromiums it launches, runs in a
namespace whose only interface is an unshaped access link to the root namespace
(:mod:`harness.testbed.impairment`, the same machinery as impaired groups): the browsers' candidates are on
that link, and the deployed server listens on the link's root address.

A system outside the machine (``web=URL``, ``janus=ws://…``) is reached over the real network, as a person's
browser would, so its browser groups are not confined. Without root no namespace can be made: the run goes on
unconfined and says so in its manifest (``network.browsers_confined``).
"""

from __future__ import annotations

import os
import shutil

from harness.scenario.scenario import Scenario
from harness.systems import SystemSpec

__all__ = ["confined_groups"]


def confined_groups(scenario: Scenario, spec: SystemSpec) -> tuple[list[str], str]:
    """Browser groups to run in a namespace of their own, and why (or why not) in one line.

    Groups that have a network profile already get a namespace; they are not listed again.
    """
    groups = [g.name for g in scenario.browser_groups if g.network is None]
    if not groups:
        return [], ""
    if spec.url is not None:
        return [], "the system is reached at its own address, over the machine's network, as a person would"
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return [], "not confined: namespaces need root and the 'ip' command; browsers use the machine's address"
    return groups, "each browser group in a namespace of its own, so its media stays off the machine's address"
