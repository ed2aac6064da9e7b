"""The run's roster: global indices and one designated probe per sender, whatever the join order."""

from __future__ import annotations

import random

from harness.loadgen.roster import Roster


def test_every_sender_of_a_meeting_gets_exactly_one_designated_probe() -> None:
    roster = Roster()
    admissions = [roster.admit("everyone", "w0" if i % 2 else "w1", sends=True, receives=True, decodes=True)
                  for i in range(6)]
    assert [a.index for a in admissions] == list(range(6))
    assert [a.name for a in admissions] == [f"everyone-{i}" for i in range(6)]
    decoders: dict[str, list[str]] = {}
    for a in admissions:
        for sender in a.probes:
            decoders.setdefault(sender, []).append(a.name)
        for receiver, node, sender in a.notify:
            assert node in ("w0", "w1") and sender == a.name
            decoders.setdefault(sender, []).append(receiver)
    assert sorted(decoders) == [a.name for a in admissions]
    assert all(len(v) == 1 and v[0] != s for s, v in decoders.items())
    # Spread: nobody decodes more than two designated streams in a room of six.
    per_receiver = [sum(r in v for v in decoders.values()) for r in decoders]
    assert max(per_receiver) <= 2


def test_senders_before_any_receiver_wait_for_the_first_decoding_one() -> None:
    roster = Roster()
    talkers = [roster.admit("talk", "w", sends=True, receives=False, decodes=False) for _ in range(3)]
    assert all(a.notify == () for a in talkers)  # nobody to tell yet
    blind = roster.admit("count", "w", sends=False, receives=True, decodes=False)
    assert blind.probes == ()  # probe_fraction 0: never designated
    viewer = roster.admit("view", "w", sends=False, receives=True, decodes=True)
    assert set(viewer.probes) == {a.name for a in talkers}
    late = roster.admit("talk", "w", sends=True, receives=False, decodes=False)
    assert late.notify == ((viewer.name, "w", late.name),)


def test_a_designated_probe_that_leaves_frees_its_senders() -> None:
    roster = Roster()
    talker = roster.admit("t", "w", sends=True, receives=False, decodes=False)
    first = roster.admit("v", "w", sends=False, receives=True, decodes=True)
    assert roster.probe_of(talker.name) == first.name
    roster.depart(first.name)
    roster.depart("nobody")  # unknown: ignored
    assert roster.probe_of(talker.name) is None
    second = roster.admit("v", "w", sends=False, receives=True, decodes=True)
    assert second.probes == (talker.name,) and roster.members == 2
    roster.depart(talker.name)
    assert roster.probe_of(talker.name) is None


def test_random_churn_keeps_one_probe_per_present_sender_once_a_decoder_joined_after_it() -> None:
    rng = random.Random(7)
    roster = Roster()
    present: list[str] = []
    for _ in range(300):
        if present and rng.random() < 0.3:
            roster.depart(present.pop(rng.randrange(len(present))))
        else:
            present.append(roster.admit("g", "w", sends=rng.random() < 0.7, receives=True, decodes=True).name)
    for name in present:
        probe = roster.probe_of(name)
        assert probe is None or (probe in present and probe != name)
