"""RedLock's boundary, with exact numbers: acquired only with a quorum AND validity > 0.

DOMAIN.md §3: validity = TTL − elapsed − drift, drift = int(TTL × 0.01) + 2. With TTL 1,000 ms
the drift is 12 ms, so a walk of 988 ms leaves exactly 0 ms: that must be a failure (a lock valid
for no time at all protects nothing), and a walk of 987 ms (1 ms left) a success. The numbers are
computed here by hand, not by the function under test.
"""
from __future__ import annotations

import pytest

from apps.lockquorums.sim import decide, evolve, initial_state

from .conftest import fold

TTL, DRIFT = 1_000, 12  # int(1000 * 0.01) + 2


def slow_scene(last_link_ms: int, mode: str = "redlock"):
    """Every link 196 ms round trip (below the 300 ms per-node timeout), C1-E set by hand:
    elapsed = 4 × 196 + last_link_ms."""
    s = fold(initial_state(), {"type": "load_scene", "mode": mode, "ttl_ms": TTL, "node_timeout_ms": 300,
                               "latency_ms": 196, "retry_count": 1})
    if mode == "redlock":
        s = fold(s, {"type": "set_latency", "client": "C1", "node": "E", "ms": last_link_ms})
    return s


@pytest.mark.parametrize("last,elapsed,validity,acquired", [(204, 988, 0, False), (203, 987, 1, True), (205, 989, -1, False)])
def test_redlock_validity_exactly_zero_fails_and_one_ms_succeeds(last, elapsed, validity, acquired):
    s = slow_scene(last)
    [ev] = decide(s, {"type": "acquire", "client": "C1", "_seed": "b"})
    d = ev["data"]
    assert (d["oks"], d["quorum"], d["elapsed"], d["drift"], d["validity"]) == (5, 3, elapsed, DRIFT, validity)
    assert TTL - elapsed - DRIFT == validity
    assert d["acquired"] is acquired
    after = evolve(s, ev)
    assert (after.client("C1").status == "failed") is not acquired
    assert all((n.key is not None and n.key.owner == "C1") is acquired for n in after.nodes)
    if not acquired:  # a quorum that came too late is released everywhere, like any failure
        assert {m["to"] for m in d["release"] if m["kind"] == "request"} == set("ABCDE")
        assert all(n.key is None for n in after.nodes)
        assert after.trace[-1].label == "C1 try 1 failed: 5 of 5 but too slow: elapsed + drift ≥ TTL"


@pytest.mark.parametrize("rtt,acquired", [(986, False), (985, True)])
def test_consensus_lease_validity_exactly_zero_fails(rtt, acquired):
    # The per-node timeout (990 ms) is above the grant's round trip: a slower answer would be a TIMEOUT.
    s = fold(initial_state(), {"type": "load_scene", "mode": "consensus", "ttl_ms": TTL, "node_timeout_ms": 990,
                               "latency_ms": rtt, "retry_count": 1})
    [ev] = decide(s, {"type": "acquire", "client": "C1", "_seed": "b"})
    d = ev["data"]
    assert d["elapsed"] == rtt + 2 and d["validity"] == TTL - (rtt + 2) - DRIFT == (0 if not acquired else 1)
    assert d["acquired"] is acquired
    if not acquired:
        assert d["result"] == "TOO SLOW (elapsed 988 + drift 12 ≥ TTL 1,000)"
        assert evolve(s, ev).lease is None


@pytest.mark.parametrize("rtt,wins", [(988, False), (987, True)])
def test_class_race_validity_exactly_zero_fails(rtt, wins):
    # The per-node timeout (990 ms) is above every round trip: a slower link would be a TIMEOUT.
    s = fold(initial_state(), {"type": "load_scene", "ttl_ms": TTL, "node_timeout_ms": 990, "retry_count": 1})
    s = evolve(s, {"kind": "contender_joined", "data": {"name": "Ann", "rtt": [[n.name, rtt] for n in s.nodes]}})
    [ev] = decide(s, {"type": "race_start", "_seed": 0})
    [t] = ev["data"]["contenders"][0]["tries"]
    assert (t["oks"], t["elapsed"], t["validity"], t["acquired"]) == (5, rtt, TTL - rtt - DRIFT, wins)
    assert ev["data"]["winners"] == (["Ann"] if wins else [])
