"""RedLock as DOMAIN.md section 3 states it: worked example, quorum, drift, release, scenarios."""
from __future__ import annotations

import pytest

from apps.lockquorums.sim import (
    MODES, SCENARIOS, Rejected, decide, drift, evolve, from_json, initial_state, quorum, run,
    scenario_commands, to_json,
)

from .conftest import assert_worked_example, fold


def worked_example():
    s = initial_state({"ttl_ms": 10_000, "node_timeout_ms": 50, "latency_ms": 3})
    return fold(s, {"type": "node_crash", "node": "D"})


def test_worked_example_gives_4_of_5_and_validity_9836():
    after = assert_worked_example(worked_example())
    assert after.now_ms == 62 and after.holders() == ["C1"]
    assert after.client("C1").valid_until == 62 + 9836  # T2 + validity = T1 + TTL - drift
    assert [n.key is not None for n in after.nodes] == [True, True, True, False, True]


def test_second_client_gets_nothing_releases_everywhere_and_retries_after_a_random_delay():
    s = fold(worked_example(), {"type": "acquire", "client": "C1", "_seed": "x"})
    events = decide(s, {"type": "acquire", "client": "C2", "_seed": "y"})
    assert len(events) == 3  # retry_count 3
    for i, ev in enumerate(events):
        d = ev["data"]
        assert d["oks"] == 0 and not d["acquired"]
        assert {m["to"] for m in d["release"] if m["kind"] == "request"} == {"A", "B", "C", "D", "E"}
        assert all(m["result"] == "0" for m in d["release"] if m["kind"] == "reply")
        if i < 2:
            assert 0 <= d["retry_delay"] <= 200
            assert events[i + 1]["data"]["t1"] == d["t2"] + d["retry_delay"]
        else:
            assert d["retry_delay"] is None
    after = s
    for ev in events:
        after = evolve(after, ev)
    assert after.holders() == ["C1"] and after.client("C2").status == "failed"
    assert [n.key.owner for n in after.nodes if n.key] == ["C1"] * 4


@pytest.mark.parametrize("n,q", [(3, 2), (5, 3), (7, 4)])
def test_quorum(n, q):
    assert quorum(n) == q == initial_state({"nodes": n}).quorum


@pytest.mark.parametrize("ttl,d", [(10_000, 102), (30_000, 302), (1000, 12), (150, 3)])
def test_drift_formula(ttl, d):
    assert drift(ttl) == d == int(ttl * 0.01) + 2


def test_failed_attempt_release_deletes_only_its_own_keys():
    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": "a"},
             {"type": "clock_jump", "node": "A", "ms": 20_000})
    assert s.node("A").key is None  # C1's key on A expired early
    d = decide(s, {"type": "acquire", "client": "C2", "_seed": "b"})[0]["data"]
    assert [x["node"] for x in d["sets"]] == ["A"] and not d["acquired"]
    assert [(m["from"], m["result"]) for m in d["release"] if m["kind"] == "reply"] == [
        ("A", "1"), ("B", "0"), ("C", "0"), ("D", "0"), ("E", "0")]
    after = evolve(s, {"kind": "acquire_attempted", "data": d})
    assert after.node("A").key is None
    assert [n.key.owner for n in after.nodes if n.key] == ["C1"] * 4


def test_release_is_compare_and_delete():
    from dataclasses import replace

    from apps.lockquorums.sim import Key

    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": "a"})
    nodes = tuple(replace(n, key=Key("someone-else", "C2", 10**9)) if n.name == "A" else n for n in s.nodes)
    s = replace(s, nodes=nodes)
    ev = decide(s, {"type": "release", "client": "C1"})
    assert ev[0]["data"]["deletes"] == ["B", "C", "D", "E"]
    s = evolve(s, ev[0])
    assert s.node("A").key.value == "someone-else"
    assert all(n.key is None for n in s.nodes if n.name != "A")
    assert s.client("C1").status == "released"


def test_after_release_the_other_client_acquires():
    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": "a"}, {"type": "release", "client": "C1"},
             {"type": "acquire", "client": "C2", "_seed": "b"})
    assert s.holders() == ["C2"]


def test_keys_expire_after_ttl_and_validity_runs_out():
    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": "a"}, {"type": "tick", "dt_ms": 9_900})
    assert s.client("C1").status == "expired" and s.holders() == []
    assert all(n.key is not None for n in s.nodes)  # keys outlive the validity
    s = fold(s, {"type": "tick", "dt_ms": 200})
    assert all(n.key is None for n in s.nodes)


# -- scenarios --------------------------------------------------------------------------------

def test_process_pause_without_fencing_storage_accepts_two_writers():
    s, _, rejected = run("process_pause", fencing=False)
    assert rejected == []
    assert [w.accepted for w in s.writes] == [True, True] and s.lost_update and s.two_writers
    assert [w.client for w in s.writes] == ["C2", "C1"]


def test_process_pause_with_fencing_rejects_the_stale_token():
    s, _, _ = run("process_pause", fencing=True)
    assert [(w.client, w.token, w.accepted) for w in s.writes] == [("C2", 34, True), ("C1", 33, False)]
    assert s.writes[-1].reason == "rejected stale token 33 < 34" and not s.lost_update


@pytest.mark.parametrize("name", ["clock_jump", "crash_restart"])
def test_clock_jump_and_crash_restart_give_two_simultaneous_holders(name):
    s, events, rejected = run(name, fencing=False)
    assert rejected == []
    assert s.holders() == ["C1", "C2"]
    grants = [e["data"] for e in events if e["kind"] == "acquire_attempted" and e["data"]["acquired"]]
    assert [(g["client"], g["oks"]) for g in grants] == [("C1", 3), ("C2", 3)]
    assert [x["node"] for x in grants[0]["sets"]] == ["A", "B", "C"]
    assert [x["node"] for x in grants[1]["sets"]] == ["C", "D", "E"]


def test_delayed_restart_prevents_the_crash_scenario():
    cmds = scenario_commands("crash_restart", fencing=False)
    cmds = [dict(c, delayed=True) if c["type"] == "node_restart" else c for c in cmds]
    s = initial_state()
    for c in cmds:
        try:
            for ev in decide(s, c):
                s = evolve(s, ev)
        except Rejected:
            pass
    assert s.holders() == ["C1"] and s.client("C2").status == "failed"


def test_restart_with_persistence_keeps_the_key():
    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": "a"}, {"type": "node_crash", "node": "C"},
             {"type": "node_restart", "node": "C", "persistence": True})
    assert s.node("C").key.owner == "C1"


@pytest.mark.parametrize("name", SCENARIOS)
def test_single_mode_loses_the_lock_on_every_fault(name):
    s, _, rejected = run(name, fencing=False, mode="single")
    assert rejected == [] and s.lost_update


@pytest.mark.parametrize("name", ["clock_jump", "crash_restart"])
def test_consensus_mode_keeps_the_lease_through_a_minority_fault(name):
    s, _, rejected = run(name, fencing=False, mode="consensus")
    assert s.holders() == ["C1"] and s.lease.holder == "C1" and s.lease.revision == 33
    assert [r[0]["client"] for r in rejected] == ["C2"]  # C2 never got the lease, so it may not write


def test_consensus_does_not_save_a_paused_client_without_fencing():
    assert run("process_pause", fencing=False, mode="consensus")[0].lost_update
    s = run("process_pause", fencing=True, mode="consensus")[0]
    assert not s.lost_update and s.writes[-1].reason == "rejected stale token 33 < 34"


def test_consensus_needs_a_majority():
    s = fold(initial_state({"mode": "consensus"}), *[{"type": "node_crash", "node": n} for n in "ABC"])
    s = fold(s, {"type": "acquire", "client": "C1", "_seed": "a"})
    assert s.holders() == [] and s.lease is None


# -- replay -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SCENARIOS)
def test_replay_is_deterministic_and_json_round_trips(name, mode):
    s1, events, _ = run(name, True, mode)
    s2, events2, _ = run(name, True, mode)
    assert events == events2 and to_json(s1) == to_json(s2)
    replayed = initial_state({"mode": mode})
    for ev in events:
        replayed = evolve(replayed, ev)
    assert to_json(replayed) == to_json(s1)
    assert to_json(from_json(to_json(s1))) == to_json(s1)
    import json
    json.dumps(events)


def test_consensus_release_revokes_the_lease_and_the_next_revision_is_higher():
    s = fold(initial_state({"mode": "consensus"}), {"type": "acquire", "client": "C1", "_seed": "a"})
    ev = decide(s, {"type": "release", "client": "C1"})
    assert ev[0]["data"]["lease_revoked"] and [m["op"] for m in ev[0]["data"]["messages"]] == ["REVOKE", "REVOKE"]
    s = fold(s, {"type": "release", "client": "C1"}, {"type": "acquire", "client": "C2", "_seed": "b"})
    assert s.lease.holder == "C2" and s.lease.revision == 34 and s.client("C2").token == 34


def test_consensus_grant_message_trace():
    s = initial_state({"mode": "consensus"})
    d = decide(s, {"type": "acquire", "client": "C1", "_seed": "a"})[0]["data"]
    assert d["acquired"] and d["result"] == "OK revision 33"
    assert [(m["op"], m["from"], m["to"]) for m in d["messages"][:2]] == [("GRANT", "C1", "A"), ("APPEND", "A", "B")]
    assert d["messages"][-1] == {"kind": "reply", "op": "GRANT", "from": "A", "to": "C1", "sent": 3, "arrives": 5,
                                 "result": "OK revision 33"}
    assert d["validity"] == 10_000 - 5 - 102
