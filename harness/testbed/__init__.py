"""The local test topology: network namespaces, the impairment wire, and servers confbench starts.

``netns`` creates namespaces and veth links; ``link`` is the impaired network's interface, implemented by the
user-space wire (``wire``, ``wire_control``, ``shaping``) and by ``tc netem`` (``netem``); ``impairment``
chooses one and records its layout; ``cpulimit`` caps a server's CPU; ``janus`` starts a local Janus.

May import: :mod:`harness.probes`, :mod:`harness.store`, :mod:`harness.scenario`, :mod:`harness.errors`.
"""
