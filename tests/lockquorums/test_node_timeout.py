"""The per-node timeout cuts a slow reply (DOMAIN.md §3, step 2: SET NX PX on every node in turn
"with a per-node timeout far below the TTL").

A node whose reply has not arrived within the timeout counts as failed for this try (TIMEOUT)
and the client moves on at T + timeout; it does not wait for the slow reply. The SET was sent,
so it still reaches the node and takes the key there if it is free: a key the client does not
count, which its failure release (DEL on every node) or the TTL removes. The numbers below are
worked out by hand, not by the code under test.
"""
from __future__ import annotations

from apps.lockquorums import concept as lq
from apps.lockquorums.sim import decide, evolve, initial_state

from .conftest import assert_worked_example, fold
from .test_sim_scene_race import join, race, tries_of


def slow_e(ms: int = 80):
    """The default scene (TTL 10,000, timeout 50, every round trip 3 ms) with C1-E at ``ms``."""
    return fold(initial_state(), {"type": "set_latency", "client": "C1", "node": "E", "ms": ms})


def test_the_worked_example_still_holds_exactly():
    assert_worked_example(fold(initial_state(), {"type": "node_crash", "node": "D"}))


def test_a_slow_but_up_node_times_out_at_50_not_80_and_still_takes_the_key():
    s = slow_e(80)
    [ev] = decide(s, {"type": "acquire", "client": "C1", "_seed": "x"})
    d = ev["data"]
    # A, B, C, D answer at 3, 6, 9, 12; the SET to E leaves at 12 and lands at 12 + 40 = 52; the
    # client gives up on E at 12 + 50 = 62, not at 12 + 80 = 92.
    assert (d["oks"], d["elapsed"], d["validity"], d["acquired"]) == (4, 62, 10_000 - 62 - 102, True)
    answers = [(m["kind"], m["from"], m["sent"], m["arrives"], m["result"])
               for m in d["messages"] if m["kind"] in ("reply", "timeout")]
    assert answers == [("reply", "A", 1, 3, "OK"), ("reply", "B", 4, 6, "OK"), ("reply", "C", 7, 9, "OK"),
                       ("reply", "D", 10, 12, "OK"),
                       ("reply", "E", 52, 92, "OK (too late)"), ("timeout", "E", 12, 62, "TIMEOUT")]
    request_e = next(m for m in d["messages"] if m["kind"] == "request" and m["to"] == "E")
    assert (request_e["sent"], request_e["arrives"]) == (12, 52)
    assert [x["node"] for x in d["sets"]] == list("ABCD") and d["late"] == [{"node": "E", "expires_at": 52 + 10_000}]

    after = evolve(s, ev)
    assert after.now_ms == 62 and after.client("C1").valid_until == 62 + 9_836
    # E holds C1's key although C1 counted E as failed: C2 finds it taken there.
    assert after.node("E").key.owner == "C1" and after.node("E").key.value == d["value"]
    [c2] = decide(fold(after, {"type": "configure", "retry_count": 1}), {"type": "acquire", "client": "C2", "_seed": "y"})
    assert [m["result"] for m in c2["data"]["messages"] if m["kind"] == "reply" and m["to"] == "C2"] == ["FAIL"] * 5
    # The diagram's episode ends when the late reply lands, after the client gave up.
    ep = after.last_acquire
    assert ep.end == 92 and ep.window == (62, 62 + 9_836)
    assert "E answered after C1's timeout, but the SET still landed" in lq.narrate(s, after, ev)

    # Until released: the release deletes it on E too (compare-and-delete, the value matches) ...
    released = fold(after, {"type": "release", "client": "C1"})
    assert all(n.key is None for n in released.nodes)
    # ... or until it expires on E's clock (set at 52, gone at 10,052).
    assert fold(after, {"type": "tick", "dt_ms": 10_052 - 62 - 1}).node("E").key is not None
    assert fold(after, {"type": "tick", "dt_ms": 10_052 - 62}).node("E").key is None


def test_a_link_exactly_at_the_timeout_is_waited_for():
    [ev] = decide(slow_e(50), {"type": "acquire", "client": "C1", "_seed": "x"})
    d = ev["data"]
    assert (d["oks"], d["elapsed"], d["late"]) == (5, 12 + 50, [])
    assert not any(m["kind"] == "timeout" for m in d["messages"])


def test_a_failed_try_releases_the_keys_its_slow_sets_took():
    """A, B, C slower than the timeout: 2 of 5 in time, a failure. Their SETs still landed, so
    the release (DEL on every node, after the SET on each link) deletes them."""
    s = fold(initial_state(), {"type": "configure", "retry_count": 1},
             *[{"type": "set_latency", "client": "C1", "node": n, "ms": 80} for n in "ABC"])
    [ev] = decide(s, {"type": "acquire", "client": "C1", "_seed": "x"})
    d = ev["data"]
    assert (d["oks"], d["elapsed"], d["acquired"]) == (2, 50 + 50 + 50 + 3 + 3, False)
    assert [x["node"] for x in d["late"]] == list("ABC")
    timeouts = [(m["from"], m["arrives"]) for m in d["messages"] if m["kind"] == "timeout"]
    assert timeouts == [("A", 50), ("B", 100), ("C", 150)]
    dels = {m["from"]: (m["arrives"], m["result"]) for m in d["release"] if m["kind"] == "reply"}
    assert dels == {"A": (156 + 80, "1"), "B": (156 + 80, "1"), "C": (156 + 80, "1"), "D": (159, "1"), "E": (159, "1")}
    for m in d["release"]:  # every DEL reaches its node after that node's SET
        if m["kind"] == "request":
            set_arrives = next(x["arrives"] for x in d["messages"] if x["kind"] == "request" and x["to"] == m["to"])
            assert m["arrives"] > set_arrives
    after = evolve(s, ev)
    assert all(n.key is None for n in after.nodes)
    assert "A, B, C still took the SET after the timeout: the release deletes them" in lq.narrate(s, after, ev)


def test_consensus_a_slow_member_times_out_and_the_grant_still_commits():
    """The grant through A takes 80 + 2 ms, past the 50 ms timeout: the client asks B at 50. A's
    grant committed (revision 33) for C1, which never hears of it, so B says the lease is held."""
    s = fold(initial_state(), {"type": "load_scene", "mode": "consensus", "retry_count": 1},
             {"type": "set_latency", "client": "C1", "node": "A", "ms": 80})
    [ev] = decide(s, {"type": "acquire", "client": "C1", "_seed": "x"})
    d = ev["data"]
    grants = [(m["kind"], m["from"], m["arrives"], m["result"]) for m in d["messages"]
              if m["op"] == "GRANT" and m["kind"] != "request"]
    assert grants == [("reply", "A", 82, "OK revision 33 (too late)"), ("timeout", "A", 50, "TIMEOUT"),
                      ("reply", "B", 55, "FAIL (held by C1, revision 33)")]
    assert (d["acquired"], d["elapsed"]) == (False, 55)
    after = evolve(s, ev)
    assert (after.lease.holder, after.lease.revision, after.next_token) == ("C1", 33, 34)
    assert after.client("C1").status == "failed" and after.holders() == []


def test_class_race_a_slow_link_is_a_timeout_at_50_and_its_set_still_lands():
    s = join(initial_state(), "Ann", {"E": 80, "*": 4})
    after, d = race(s)
    [t] = tries_of(d, "Ann")
    assert (t["ok"], t["timeouts"], t["slow"], t["late"]) == (list("ABCD"), ["E"], ["E"], ["E"])
    assert (t["elapsed"], t["validity"], t["acquired"]) == (50, 10_000 - 50 - 102, True)
    assert after.node("E").key.owner == "Ann"  # a key Ann does not count, until it expires


def test_class_race_a_losers_slow_set_is_released():
    """Bob's SET to E (80 ms) lands at 40, before Ann's (100 ms, at 50): E is Bob's, though
    neither counts it. Both fail (2 of 5 each); Bob's DEL reaches E at 50 + 40 = 90 and frees it."""
    s = fold(initial_state(), {"type": "configure", "retry_count": 1})
    s = join(join(s, "Ann", {"E": 100, "*": 4}), "Bob", {"A": 2, "B": 2, "C": 30, "D": 30, "E": 80})
    after, d = race(s)
    [ann], [bob] = tries_of(d, "Ann"), tries_of(d, "Bob")
    assert (ann["ok"], ann["held_by"], ann["late"], ann["elapsed"]) == (list("CD"), {"A": "Bob", "B": "Bob"}, [], 50)
    assert (bob["ok"], bob["held_by"], bob["late"], bob["elapsed"]) == (list("AB"), {"C": "Ann", "D": "Ann"}, ["E"], 50)
    assert d["winners"] == [] and all(n.key is None for n in after.nodes)
