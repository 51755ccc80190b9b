"""Scenes, settings, the class race and the bounded trace (DOMAIN.md section 3).

``load_scene`` and ``configure`` change the room's parameters; the class race runs every student's
RedLock at once (parallel SET NX PX, arrival order at each node, retries, compare-and-delete);
every event that draws on the space-time diagram adds an Episode to a bounded ``state.trace``.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from apps.lockquorums.sim import Episode, Limits, Rejected, decide, drift, evolve, from_json, initial_state, to_json
from apps.lockquorums.sim.state import TRACE_EPISODES, TRACE_MESSAGES

from .conftest import assert_worked_example, fold


def run_logged(state, commands):
    """Fold ``commands`` (every one must be accepted); return the state and every event."""
    events = []
    for cmd in commands:
        for ev in decide(state, cmd):
            state = evolve(state, ev)
            events.append(ev)
    return state, events


def episode_messages(ev):
    """How many messages an event puts on the space-time diagram (counted from the event itself)."""
    kind, d = ev["kind"], ev["data"]
    if kind == "acquire_attempted":
        return len(d["messages"]) + len(d["release"])
    if kind == "released":
        return len(d["messages"])
    if kind == "written":
        return 1
    if kind == "race_run":
        return len(d["keys"])
    return 0


TRACED = {"acquire_attempted", "released", "written", "ticked", "race_run", "node_crashed", "node_restarted",
          "clock_jumped", "client_paused", "link_cut", "link_healed"}


def new_episode(before, ev):
    """Does ``ev`` start an episode? Ticks right after a tick stretch that episode instead."""
    if ev["kind"] == "ticked" and before.trace and before.trace[-1].kind == "tick":
        return False
    return ev["kind"] in TRACED


def assert_trace_invariants(state, produced_messages, produced_episodes):
    assert len(state.trace) <= TRACE_EPISODES
    in_trace = sum(len(e.messages) for e in state.trace)
    assert in_trace <= TRACE_MESSAGES
    assert state.older_messages + in_trace == produced_messages
    assert state.trace_count == produced_episodes
    # The episodes kept are the newest ones, numbered without gaps.
    assert [e.n for e in state.trace] == list(range(state.trace_count - len(state.trace), state.trace_count))


# -- load_scene ---------------------------------------------------------------------------

def test_load_scene_applies_every_param_and_resets_the_room():
    busy = fold(initial_state(),
                {"type": "acquire", "client": "C1", "_seed": 1},
                {"type": "tick", "dt_ms": 500},
                {"type": "race_join", "name": "Ann", "_seed": 1})
    assert busy.trace and busy.now_ms > 0 and busy.race.contenders
    cmd = {"type": "load_scene", "mode": "redlock", "nodes": 7, "clients": 4, "ttl_ms": 30_000,
           "node_timeout_ms": 80, "latency_ms": 9, "retry_count": 5, "retry_delay_max_ms": 500,
           "fencing": True, "persistence": True}
    events = decide(busy, cmd)
    assert [e["kind"] for e in events] == ["scene_loaded"]
    s = evolve(busy, events[0])
    assert s.mode == "redlock"
    assert [n.name for n in s.nodes] == list("ABCDEFG") and s.quorum == 4
    assert [c.name for c in s.clients] == ["C1", "C2", "C3", "C4"]
    assert all(c.status == "idle" and c.value is None for c in s.clients)
    assert (s.ttl_ms, s.node_timeout_ms, s.latency_ms, s.retry_count, s.retry_delay_max_ms) == (30_000, 80, 9, 5, 500)
    assert s.drift_ms == 302 and s.fencing is True
    for n in s.nodes:
        assert n.persistence and n.up and n.key is None and n.cut == () and n.clock_offset_ms == 0
        assert dict(n.latency) == {"C1": 9, "C2": 9, "C3": 9, "C4": 9}
    # Everything else starts over: clock, keys, writes, tokens, race and the trace.
    assert s.now_ms == 0 and s.writes == () and s.next_token == 33 and s.attempts == 0
    assert s.trace == () and s.trace_count == 0 and s.older_messages == 0
    assert s.race.contenders == () and s.race.result is None
    # The event alone rebuilds the state (replay needs nothing else).
    assert evolve(initial_state(), json.loads(json.dumps(events[0]))) == s


def test_load_scene_takes_numbers_as_form_strings_and_defaults_to_the_initial_room():
    s = fold(initial_state({"ttl_ms": 777}), {"type": "load_scene"})
    assert s == initial_state()
    s = fold(initial_state(), {"type": "load_scene", "ttl_ms": "2000", "nodes": "3", "clients": "1"})
    assert s.ttl_ms == 2000 and len(s.nodes) == 3 and [c.name for c in s.clients] == ["C1"]


def test_single_mode_has_one_node_r_whatever_nodes_says():
    s = fold(initial_state(), {"type": "load_scene", "mode": "single", "nodes": 7})
    assert s.mode == "single" and [n.name for n in s.nodes] == ["R"] and s.quorum == 1
    d = decide(s, {"type": "acquire", "client": "C1", "_seed": 0})[0]["data"]
    assert d["acquired"] and d["oks"] == 1 and d["nodes"] == 1 and d["elapsed"] == 3


def test_consensus_scene_persists_by_default_and_can_be_told_otherwise():
    s = fold(initial_state(), {"type": "load_scene", "mode": "consensus", "nodes": 3})
    assert s.mode == "consensus" and len(s.nodes) == 3 and all(n.persistence for n in s.nodes)
    s = fold(initial_state(), {"type": "load_scene", "persistence": False})
    assert not any(n.persistence for n in s.nodes)


@pytest.mark.parametrize("cmd,match", [
    ({"nodes": 4}, "3, 5 or 7"),
    ({"nodes": 8}, "number of lock nodes must be from 1 to 7"),
    ({"mode": "x"}, "mode must be one of single, redlock, consensus"),
    ({"mode": None}, "mode must be one of"),
    ({"ttl_ms": 10**20}, r"TTL \(ms\) must be from 100 to 600,000 \(got a much larger number\)"),
    ({"ttl_ms": 99}, r"TTL \(ms\) must be from 100"),
    ({"ttl_ms": 1.5}, "whole number"),
    ({"ttl_ms": 1000, "node_timeout_ms": 1000}, "far below the TTL"),
    ({"ttl_ms": 1000, "node_timeout_ms": 5000}, "far below the TTL"),
    ({"node_timeout_ms": 10_000}, r"far below the TTL \(10,000 ms\)"),  # default TTL
    ({"clients": 0}, "number of clients must be from 1 to 6"),
    ({"clients": 7}, "number of clients must be from 1 to 6"),
    ({"clients": True}, "whole number"),
    ({"fencing": "yes"}, "fencing must be true or false"),
    ({"persistence": 1}, "persistence must be true or false"),
    ({"retry_count": 0}, "number of tries must be from 1 to 10"),
    ({"latency_ms": -1}, "round trip of a link"),
])
def test_load_scene_rejects_bad_values_with_a_clear_message(cmd, match):
    with pytest.raises(Rejected, match=match):
        decide(initial_state(), {"type": "load_scene", **cmd})


# -- configure ----------------------------------------------------------------------------

def test_configure_applies_only_the_changes_and_records_the_previous_values():
    s = initial_state()
    events = decide(s, {"type": "configure", "ttl_ms": 20_000, "node_timeout_ms": 70, "retry_count": 2,
                        "retry_delay_max_ms": 0, "latency_ms": 3})  # latency unchanged: not a change
    assert events == [{"kind": "configured", "data": {
        "changes": {"ttl_ms": 20_000, "node_timeout_ms": 70, "retry_count": 2, "retry_delay_max_ms": 0},
        "previous": {"ttl_ms": 10_000, "node_timeout_ms": 50, "retry_count": 3, "retry_delay_max_ms": 200}}}]
    after = evolve(s, events[0])
    assert (after.ttl_ms, after.node_timeout_ms, after.retry_count, after.retry_delay_max_ms) == (20_000, 70, 2, 0)
    assert after.drift_ms == 202
    # The new settings drive the next acquisition: C1 holds, C2 tries only twice.
    after = fold(after, {"type": "acquire", "client": "C1", "_seed": 1})
    d = decide(after, {"type": "acquire", "client": "C2", "_seed": 2})
    assert len(d) == 2 and d[0]["data"]["retry_delay"] == 0
    assert after.client("C1").valid_until == 15 + (20_000 - 15 - 202)  # T2 + validity


def test_configure_keeps_the_room_running():
    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": 1})
    after = fold(s, {"type": "configure", "retry_count": 1})
    assert after.client("C1") == s.client("C1") and after.nodes == s.nodes and after.trace == s.trace
    assert after.now_ms == s.now_ms


def test_configure_latency_sets_every_link_and_the_next_acquire_feels_it():
    s = fold(initial_state(), {"type": "set_latency", "client": "C1", "node": "A", "ms": 40},
             {"type": "configure", "latency_ms": 10})
    assert s.latency_ms == 10
    assert all(dict(n.latency) == {"C1": 10, "C2": 10} for n in s.nodes)
    d = decide(s, {"type": "acquire", "client": "C2", "_seed": 3})[0]["data"]
    assert d["elapsed"] == 50 and d["validity"] == 10_000 - 50 - 102
    assert [m["arrives"] for m in d["messages"] if m["kind"] == "reply"] == [10, 20, 30, 40, 50]
    # A client added later gets the new default round trip too.
    s = fold(s, {"type": "add_client"})
    assert all(n.rtt("C3") == 10 for n in s.nodes)


def test_configure_latency_to_the_current_default_still_resets_a_link_set_by_hand():
    s = fold(initial_state(), {"type": "set_latency", "client": "C1", "node": "A", "ms": 40})
    events = decide(s, {"type": "configure", "latency_ms": 3})
    assert events[0]["data"] == {"changes": {"latency_ms": 3}, "previous": {"latency_ms": 3}}
    s = evolve(s, events[0])
    assert s.node("A").rtt("C1") == 3
    with pytest.raises(Rejected, match="settings already"):
        decide(s, {"type": "configure", "latency_ms": 3})


@pytest.mark.parametrize("cmd", [{}, {"ttl_ms": 10_000}, {"ttl_ms": "10000", "retry_count": 3},
                                 {"latency_ms": 3, "node_timeout_ms": 50, "retry_delay_max_ms": 200},
                                 {"ttl_ms": "", "retry_count": None}])
def test_configure_rejects_when_nothing_changes(cmd):
    with pytest.raises(Rejected, match="settings already"):
        decide(initial_state(), {"type": "configure", **cmd})


@pytest.mark.parametrize("start,cmd,match", [
    ({}, {"node_timeout_ms": 10_000}, "far below the TTL"),
    ({}, {"node_timeout_ms": 20_000}, "far below the TTL"),
    ({}, {"ttl_ms": 100, "node_timeout_ms": 100}, "far below the TTL"),
    ({"node_timeout_ms": 500}, {"ttl_ms": 500}, "not far above the per-node timeout"),
    ({"node_timeout_ms": 500}, {"ttl_ms": 400}, "not far above the per-node timeout"),
    ({}, {"ttl_ms": 99}, "must be from 100"),
    ({}, {"retry_count": 11}, "must be from 1 to 10"),
    ({}, {"retry_delay_max_ms": "soon"}, "whole number"),
])
def test_configure_rejects_a_timeout_not_below_the_ttl_and_bad_numbers(start, cmd, match):
    s = initial_state(start)
    with pytest.raises(Rejected, match=match):
        decide(s, {"type": "configure", **cmd})


def test_configure_accepts_a_timeout_just_below_the_ttl():
    s = fold(initial_state(), {"type": "configure", "ttl_ms": 100})
    assert s.ttl_ms == 100 and s.node_timeout_ms == 50
    s = fold(s, {"type": "configure", "node_timeout_ms": 99})
    assert s.node_timeout_ms == 99


def test_worked_example_still_gives_9836_after_configuring_back_to_the_defaults():
    s = fold(initial_state(),
             {"type": "load_scene", "ttl_ms": 5000, "node_timeout_ms": 200, "latency_ms": 20, "retry_count": 1,
              "retry_delay_max_ms": 0},
             {"type": "configure", "ttl_ms": 10_000, "node_timeout_ms": 50, "latency_ms": 3, "retry_count": 3,
              "retry_delay_max_ms": 200},
             {"type": "node_crash", "node": "D"})
    assert assert_worked_example(s).client("C1").valid_until == 62 + 9836


# -- the class race: joining and its rejections ---------------------------------------------

def test_race_join_draws_each_students_round_trips_from_the_seed():
    s = initial_state()
    d = decide(s, {"type": "race_join", "name": "  Ann ", "_seed": 7})[0]
    assert d["kind"] == "contender_joined" and d["data"]["name"] == "Ann"
    assert [n for n, _ in d["data"]["rtt"]] == list("ABCDE")
    assert all(2 <= ms <= 60 for _, ms in d["data"]["rtt"])
    assert decide(s, {"type": "race_join", "name": "Ann", "_seed": 7}) == [d]  # same seed, same network
    others = [decide(s, {"type": "race_join", "name": "Ann", "_seed": k})[0]["data"]["rtt"] for k in range(8)]
    assert len({tuple(map(tuple, r)) for r in others}) > 1
    s = evolve(s, json.loads(json.dumps(d)))  # JSON-shaped event: lists, not tuples
    assert s.race.contenders[0].name == "Ann" and s.race.contenders[0].rtt == tuple(map(tuple, d["data"]["rtt"]))


@pytest.mark.parametrize("name", ["", "   ", 5, None, "a\x00b", "tab\there", "\u200b", "x" * 41, "bell\x07"])
def test_race_join_rejects_empty_unprintable_or_too_long_names(name):
    with pytest.raises(Rejected, match="printable text of 1 to 40"):
        decide(initial_state(), {"type": "race_join", "name": name, "_seed": 0})


def test_race_join_accepts_a_40_character_unicode_name():
    name = "Zoë Ñandú " + "é" * 30
    s = fold(initial_state(), {"type": "race_join", "name": name, "_seed": 0})
    assert s.race.contenders[0].name == name


def test_race_join_rejects_duplicates_room_clients_and_the_61st():
    s = fold(initial_state(), {"type": "race_join", "name": "Ann", "_seed": 0})
    for dup in ("Ann", " Ann", "Ann  "):
        with pytest.raises(Rejected, match="Ann is already in the race"):
            decide(s, {"type": "race_join", "name": dup, "_seed": 1})
    with pytest.raises(Rejected, match="room's own clients"):
        decide(s, {"type": "race_join", "name": "C1", "_seed": 1})
    s = fold(initial_state(), *[{"type": "race_join", "name": f"S{i}", "_seed": i} for i in range(60)])
    assert len(s.race.contenders) == Limits().max_contenders == 60
    with pytest.raises(Rejected, match=r"race is full \(60"):
        decide(s, {"type": "race_join", "name": "late", "_seed": 0})


def test_race_start_rejections_and_reset():
    s = initial_state()
    with pytest.raises(Rejected, match="Nobody has joined"):
        decide(s, {"type": "race_start", "_seed": 0})
    with pytest.raises(Rejected, match="no race to clear"):
        decide(s, {"type": "race_reset"})
    s = fold(s, {"type": "race_join", "name": "Ann", "_seed": 0}, {"type": "race_start", "_seed": 0})
    assert s.race.result is not None
    with pytest.raises(Rejected, match="has run"):
        decide(s, {"type": "race_start", "_seed": 1})
    with pytest.raises(Rejected, match="has run"):
        decide(s, {"type": "race_join", "name": "Bob", "_seed": 1})
    s = fold(s, {"type": "race_reset"})
    assert s.race.contenders == () and s.race.result is None
    s = fold(s, {"type": "race_join", "name": "Bob", "_seed": 1})
    assert [c.name for c in s.race.contenders] == ["Bob"]


def test_race_is_refused_in_consensus_mode():
    s = fold(initial_state(), {"type": "load_scene", "mode": "consensus"})
    with pytest.raises(Rejected, match="plays RedLock"):
        decide(s, {"type": "race_join", "name": "Ann", "_seed": 0})
    # A race joined under RedLock cannot start once the scene is a consensus lease (a raw event
    # stands in for the join the consensus scene now refuses).
    s = evolve(s, {"kind": "contender_joined", "data": {"name": "Ann", "rtt": [[n.name, 4] for n in s.nodes]}})
    with pytest.raises(Rejected, match="plays RedLock"):
        decide(s, {"type": "race_start", "_seed": 0})


# -- the class race: hand-built networks -----------------------------------------------------

def join(state, name, rtt):
    """A contender with a chosen network (the event a race_join would produce)."""
    return evolve(state, {"kind": "contender_joined", "data": {"name": name, "rtt": [[n.name, rtt.get(n.name, rtt.get("*"))]
                                                                                        for n in state.nodes]}})


def race(state, seed=0):
    events = decide(state, {"type": "race_start", "_seed": seed})
    assert [e["kind"] for e in events] == ["race_run"]
    return evolve(state, events[0]), events[0]["data"]


def tries_of(data, name):
    return next(c["tries"] for c in data["contenders"] if c["name"] == name)


def test_a_lone_contender_wins_every_node_on_the_first_try():
    s = join(initial_state(), "Ann", {"A": 4, "B": 10, "C": 7, "D": 2, "E": 9})
    after, d = race(s)
    assert d["winners"] == ["Ann"]
    [t] = tries_of(d, "Ann")
    assert t["ok"] == list("DACEB")  # in arrival order: 1, 2, 3, 4, 5 ms
    assert (t["start"], t["end"], t["elapsed"], t["oks"], t["acquired"]) == (0, 10, 10, 5, True)
    assert t["validity"] == 10_000 - 10 - 102 and t["valid_until"] == 10 + t["validity"] == 10_000 - 102
    rtt = dict(s.race.contenders[0].rtt)
    for n in after.nodes:  # each key set when the SET arrived (half the round trip), for the TTL
        assert (n.key.owner, n.key.value, n.key.expires_at) == ("Ann", t["value"], rtt[n.name] // 2 + 10_000)
    assert after.now_ms == d["t_end"] == 10 and after.race.result == d


def test_the_first_request_to_arrive_wins_a_node_and_ties_go_to_join_order():
    s = join(join(initial_state(), "Ann", {"*": 10}), "Bob", {"*": 4})
    _, d = race(s)
    assert d["winners"] == ["Bob"]
    assert tries_of(d, "Bob")[0]["ok"] == list("ABCDE")
    ann = tries_of(d, "Ann")
    assert len(ann) == 3 and all(t["oks"] == 0 and t["held_by"] == dict.fromkeys("ABCDE", "Bob") for t in ann)
    s = join(join(initial_state(), "Ann", {"*": 6}), "Bob", {"*": 6})
    _, d = race(s)
    assert d["winners"] == ["Ann"]


def test_loser_deletes_its_own_keys_and_only_the_winners_remain():
    # Ann is faster to A and B, Bob to C, D and E: Bob wins 3 of 5, Ann's A and B are deleted.
    s = join(join(initial_state(), "Ann", {"A": 2, "B": 2, "*": 30}), "Bob", {"A": 30, "B": 30, "*": 2})
    after, d = race(s, seed=5)
    assert d["winners"] == ["Bob"]
    bob = tries_of(d, "Bob")
    assert len(bob) == 1 and bob[0]["ok"] == list("CDE") and bob[0]["held_by"] == {"A": "Ann", "B": "Ann"}
    ann = tries_of(d, "Ann")
    assert len(ann) == 3 and all(t["ok"] == ["A", "B"] and not t["acquired"] for t in ann)
    assert all(0 <= t["retry_delay"] <= 200 for t in ann[:-1])
    assert [t["start"] for t in ann[1:]] == [t["end"] + t["retry_delay"] for t in ann[:-1]]
    assert [n.name for n in after.nodes if n.key] == ["C", "D", "E"]
    assert all(n.key.owner == "Bob" for n in after.nodes if n.key)


def test_a_split_vote_can_leave_nobody_holding_and_every_key_gone():
    # Three equally fast students each win some nodes each round: nobody reaches 3 of 5 first time.
    s = join(join(join(initial_state(), "Ann", {"A": 2, "B": 2, "*": 40}), "Bob", {"C": 2, "D": 2, "*": 40}),
             "Cat", {"E": 2, "*": 40})
    after, d = race(s, seed=1)
    assert all(t["oks"] < 3 for t in [tries_of(d, c)[0] for c in ("Ann", "Bob", "Cat")])
    assert len(d["winners"]) <= 1
    owners = {n.key.owner for n in after.nodes if n.key}
    assert owners == set(d["winners"])


def test_a_race_with_a_node_down_times_out_on_it_and_still_wins_with_3_of_4():
    s = fold(initial_state(), {"type": "node_crash", "node": "D"})
    s = fold(s, *[{"type": "race_join", "name": f"S{i}", "_seed": 4} for i in range(8)])
    after, d = race(s, seed=2)
    assert len(d["winners"]) == 1
    for c in d["contenders"]:
        rtt = dict(next(x for x in s.race.contenders if x.name == c["name"]).rtt)
        for t in c["tries"]:
            # D is down; a link slower than the 50 ms timeout is a TIMEOUT too (the client does not wait for it).
            assert t["timeouts"] == [n for n in "ABCDE" if n == "D" or rtt[n] > 50]
            assert "D" not in t["ok"] and "D" not in t["held_by"] and "D" not in t["slow"]
            assert t["elapsed"] == max([50] + [min(ms, 50) for n, ms in rtt.items() if n != "D"]) == 50
    win = tries_of(d, d["winners"][0])[-1]
    assert win["oks"] >= 3 and win["acquired"] and len(d["contenders"]) == 8
    assert after.node("D").key is None
    assert sorted(n.name for n in after.nodes if n.key) == sorted(win["ok"])
    # Exactly 3 of the 4 live nodes: Ann is first at A, B and C, Bob at E.
    s = join(join(fold(initial_state(), {"type": "node_crash", "node": "D"}), "Ann", {"E": 30, "*": 4}),
             "Bob", {"E": 2, "*": 30})
    after, d = race(s)
    assert d["winners"] == ["Ann"]
    [win] = tries_of(d, "Ann")
    assert (win["ok"], win["oks"], win["held_by"], win["timeouts"], win["elapsed"]) == (list("ABC"), 3, {"E": "Bob"}, ["D"], 50)
    assert win["validity"] == 10_000 - 50 - 102
    assert [n.name for n in after.nodes if n.key] == list("ABC")  # Bob's E deleted by compare-and-delete


def test_the_race_is_refused_while_a_room_client_holds_the_lock_and_says_why():
    s = fold(initial_state(), {"type": "node_crash", "node": "D"}, {"type": "acquire", "client": "C1", "_seed": 1})
    held = {n.name: n.key for n in s.nodes if n.key}
    assert sorted(held) == list("ABCE")
    s = fold(s, *[{"type": "race_join", "name": f"S{i}", "_seed": i} for i in range(12)])
    with pytest.raises(Rejected) as refused:
        decide(s, {"type": "race_start", "_seed": 3})
    assert str(refused.value) == (
        "The race starts from a free lock, and it is not free: C1 holds the lock on 4 nodes (A, B, C, E). "
        "Release it (click the client) or let it expire (+1 TTL), then start the race.")
    # Released, the lock is free and the same race runs (the students are still in it).
    s = fold(s, {"type": "release", "client": "C1"})
    after, d = race(s, seed=4)
    assert len(d["winners"]) == 1 and after.holders() == []


def test_a_key_that_expired_does_not_block_the_race():
    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": 1}, {"type": "race_join", "name": "Ann", "_seed": 0})
    with pytest.raises(Rejected, match="C1 holds the lock on 5 nodes"):
        decide(s, {"type": "race_start", "_seed": 0})
    s = fold(s, {"type": "tick", "dt_ms": 10_000})  # every key set at t <= 3 ms is gone by t = 10,015
    assert race(s)[1]["winners"] == ["Ann"]


def test_race_reset_releases_the_students_keys_so_the_next_race_starts_free():
    s = fold(initial_state(), {"type": "race_join", "name": "Ann", "_seed": 0}, {"type": "race_start", "_seed": 0})
    assert [n.key.owner for n in s.nodes] == ["Ann"] * 5
    [ev] = decide(s, {"type": "race_reset"})
    assert ev["data"]["released"] == [{"node": x, "owner": "Ann"} for x in "ABCDE"]
    s = evolve(s, ev)
    assert all(n.key is None for n in s.nodes)
    s = fold(s, {"type": "race_join", "name": "Bob", "_seed": 1})
    assert race(s)[1]["winners"] == ["Bob"]


def test_race_reset_leaves_a_room_clients_key_and_a_down_nodes_key_alone():
    s = fold(initial_state(), {"type": "race_join", "name": "Ann", "_seed": 0}, {"type": "race_start", "_seed": 0},
             {"type": "node_crash", "node": "B"})
    [ev] = decide(s, {"type": "race_reset"})
    assert [x["node"] for x in ev["data"]["released"]] == list("ACDE")  # the DEL to B cannot arrive
    s = evolve(s, ev)
    assert [n.name for n in s.nodes if n.key] == ["B"]


def test_after_a_race_the_winner_blocks_the_room_clients():
    s = fold(initial_state(), {"type": "race_join", "name": "Ann", "_seed": 0}, {"type": "race_start", "_seed": 0})
    d = decide(s, {"type": "acquire", "client": "C1", "_seed": 0})
    assert all(not e["data"]["acquired"] and e["data"]["oks"] == 0 for e in d)


# -- the class race: properties ------------------------------------------------------------

race_setup = st.fixed_dictionaries({
    "mode": st.sampled_from(["single", "redlock", "redlock"]),
    "nodes": st.sampled_from([3, 5, 7]),
    "retry_count": st.integers(1, 4),
    "retry_delay_max_ms": st.sampled_from([0, 5, 200]),
    "students": st.integers(1, 60),
    "join_seeds": st.lists(st.integers(0, 10**6), min_size=60, max_size=60),
    "race_seed": st.integers(0, 10**6),
    "crash": st.sets(st.integers(0, 6), max_size=2),
    "c1_cut": st.sets(st.integers(0, 6), max_size=4),
    "c1_first": st.booleans(),
})


def race_commands(p):
    names = [n for n in ("ABCDEFG"[:p["nodes"]] if p["mode"] == "redlock" else "R")]
    cmds = [{"type": "load_scene", "mode": p["mode"], "nodes": p["nodes"], "retry_count": p["retry_count"],
             "retry_delay_max_ms": p["retry_delay_max_ms"]}]
    cmds += [{"type": "node_crash", "node": names[i]} for i in sorted(p["crash"]) if i < len(names)]
    cmds += [{"type": "link_cut", "client": "C1", "node": names[i]} for i in sorted(p["c1_cut"]) if i < len(names)]
    if p["c1_first"]:
        cmds.append({"type": "acquire", "client": "C1", "_seed": p["race_seed"]})
    cmds += [{"type": "race_join", "name": f"Student {i}", "_seed": p["join_seeds"][i]} for i in range(p["students"])]
    return cmds


@settings(max_examples=50, deadline=None)
@given(p=race_setup)
def test_race_properties(p):
    before, setup_events = run_logged(initial_state(), race_commands(p))
    pre = {n.name: n.live_key(before.now_ms) for n in before.nodes}
    pre_held = {name for name, k in pre.items() if k is not None}
    if pre_held:  # the race starts from a free lock, or not at all (and says who holds it)
        with pytest.raises(Rejected, match="it is not free: C1 holds the lock on"):
            decide(before, {"type": "race_start", "_seed": p["race_seed"]})
        return
    down = [n.name for n in before.nodes if not n.up]
    events = decide(before, {"type": "race_start", "_seed": p["race_seed"]})
    assert [e["kind"] for e in events] == ["race_run"]
    d = events[0]["data"]
    after = evolve(before, events[0])
    ttl, q = before.ttl_ms, before.quorum
    assert (d["ttl"], d["quorum"], d["drift"], d["nodes"]) == (ttl, q, drift(ttl), len(before.nodes))
    assert ttl == 10_000

    winners = d["winners"]
    assert len(winners) <= 1
    assert [c["name"] for c in d["contenders"]] == [c.name for c in before.race.contenders]

    for c in d["contenders"]:
        tries = c["tries"]
        won = c["name"] in winners
        assert 1 <= len(tries) <= before.retry_count
        if not won:
            assert len(tries) == before.retry_count  # a loser uses every try
        assert [t["acquired"] for t in tries] == [False] * (len(tries) - 1) + [won]
        for i, t in enumerate(tries):
            assert t["oks"] == len(t["ok"]) == len(set(t["ok"]))
            assert t["elapsed"] == t["end"] - t["start"] >= 0
            assert t["validity"] == ttl - t["elapsed"] - drift(ttl)
            rtt = dict(next(x for x in before.race.contenders if x.name == c["name"]).rtt)
            slow = [n.name for n in before.nodes if n.name not in down and rtt[n.name] > before.node_timeout_ms]
            assert t["slow"] == slow and t["timeouts"] == [n.name for n in before.nodes if n.name in down or n.name in slow]
            assert set(t["late"]) <= set(slow) and not set(t["ok"]) & set(slow) and not set(t["held_by"]) & set(slow)
            assert t["elapsed"] == max([before.node_timeout_ms if n.name in t["timeouts"] else rtt[n.name] for n in before.nodes])
            assert not set(t["ok"]) & (set(down) | pre_held)
            assert set(t["ok"]).isdisjoint(t["held_by"])
            for name in pre_held - set(down):
                assert t["held_by"][name] == pre[name].owner
            assert t["acquired"] == (t["oks"] >= q and t["elapsed"] < ttl and t["validity"] > 0)
            if t["acquired"]:
                assert t["oks"] >= q and t["valid_until"] == t["end"] + t["validity"] == t["start"] + ttl - drift(ttl)
            if i + 1 < len(tries):
                assert 0 <= t["retry_delay"] <= before.retry_delay_max_ms
                assert tries[i + 1]["start"] == t["end"] + t["retry_delay"]

    # Only the winner's key is left by the race; a room client's keys stay exactly as they were.
    assert after.now_ms == d["t_end"] >= before.now_ms
    for n in after.nodes:
        if n.name in pre_held:
            assert n.key == pre[n.name]
        else:
            assert n.key is None or (winners and n.key.owner == winners[0])
    if winners:
        win = tries_of(d, winners[0])[-1]
        mine = sorted(n.name for n in after.nodes if n.key is not None and n.key.owner == winners[0])
        assert mine == sorted(win["ok"] + win["late"]) and all(after.node(x).key.value == win["value"] for x in mine)
    assert after.trace[-1].kind == "race" and after.trace[-1].ok == bool(winners)

    # Determinism: the same commands give the same events, the same events the same state.
    all_cmds = race_commands(p) + [{"type": "race_start", "_seed": p["race_seed"]}]
    again, again_events = run_logged(initial_state(), all_cmds)
    assert again_events == setup_events + events
    assert again == after
    replayed = initial_state()
    for ev in json.loads(json.dumps(setup_events + events)):
        replayed = evolve(replayed, ev)
    assert to_json(replayed) == to_json(after)

    # JSON round trip, in memory and through text.
    assert from_json(to_json(after)) == after
    assert from_json(json.loads(json.dumps(to_json(after)))) == after
    assert from_json(json.loads(json.dumps(to_json(before)))) == before


# -- the trace ----------------------------------------------------------------------------

def test_an_acquire_adds_an_episode_with_its_messages_and_validity_window():
    s = fold(initial_state(), {"type": "node_crash", "node": "D"})
    ev = decide(s, {"type": "acquire", "client": "C1", "_seed": "x"})[0]
    s2 = evolve(s, ev)
    assert len(s2.trace) == len(s.trace) + 1 and s2.trace_count == s.trace_count + 1
    e = s2.trace[-1]
    d = ev["data"]
    assert isinstance(e, Episode) and e.kind == "acquire" and e.lane == "C1" and e.ok is True
    assert e.messages == tuple(d["messages"]) and d["release"] == []
    assert e.window == (d["t2"], d["valid_until"]) == (62, 62 + 9836)  # held from T2 for the validity
    assert (e.start, e.end) == (0, 62) and "validity 9,836 ms" in e.label


def test_a_failed_acquire_includes_its_release_messages():
    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": 1})
    events = decide(s, {"type": "acquire", "client": "C2", "_seed": 2})
    after = s
    for ev in events:
        after = evolve(after, ev)
    eps = after.trace[-3:]
    assert len(events) == 3 and [e.kind for e in eps] == ["acquire"] * 3
    for e, ev in zip(eps, events):
        d = ev["data"]
        assert e.ok is False and e.window is None and e.lane == "C2"
        assert e.messages == tuple(d["messages"]) + tuple(d["release"])
        dels = [m for m in e.messages if m["op"] == "DEL"]
        assert {m["to"] for m in dels if m["kind"] == "request"} == set("ABCDE")
        assert e.end == max(m["arrives"] for m in e.messages) and e.end > d["t2"]


def test_release_write_tick_and_fault_episodes():
    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": 1}, {"type": "write", "client": "C1"})
    w = s.trace[-1]
    assert w.kind == "write" and w.ok is True and w.start == w.end == s.now_ms
    assert [(m["op"], m["from"], m["to"]) for m in w.messages] == [("WRITE", "C1", "storage")]
    t0 = s.now_ms
    s = fold(s, {"type": "tick", "dt_ms": 1000})
    t = s.trace[-1]
    assert (t.kind, t.start, t.end, t.label, t.messages) == ("tick", t0, t0 + 1000, "+1,000 ms", ())
    ev = decide(s, {"type": "release", "client": "C1"})[0]
    s = evolve(s, ev)
    r = s.trace[-1]
    assert r.kind == "release" and r.messages == tuple(ev["data"]["messages"]) and r.start == t0 + 1000
    s = fold(s, {"type": "node_crash", "node": "B"}, {"type": "configure", "retry_count": 1})
    assert s.trace[-1].kind == "fault" and s.trace[-1].lane == "B"  # configure draws nothing
    s = fold(s, {"type": "load_scene"})
    assert s.trace == () and s.trace_count == 0 and s.older_messages == 0


def test_the_trace_stays_bounded_and_counts_what_fell_out():
    s = initial_state({"ttl_ms": 1000})
    produced_messages = produced_episodes = 0
    cmds = []
    for i in range(40):
        cmds += [{"type": "acquire", "client": "C1", "_seed": i},
                 {"type": "acquire", "client": "C2", "_seed": i},  # fails 3 times, releases everywhere
                 {"type": "write", "client": "C1"},
                 {"type": "release", "client": "C1"},
                 {"type": "tick", "dt_ms": 10}]
        if i % 10 == 3:
            cmds += [{"type": "race_join", "name": "Ann", "_seed": i}, {"type": "race_start", "_seed": i},
                     {"type": "race_reset"}, {"type": "tick", "dt_ms": 2000}]
    for cmd in cmds:
        for ev in decide(s, cmd):
            produced_episodes += new_episode(s, ev)
            s = evolve(s, ev)
            produced_messages += episode_messages(ev)
            assert_trace_invariants(s, produced_messages, produced_episodes)
    assert produced_messages > 500 and s.older_messages > 0
    assert s.trace_count == produced_episodes > TRACE_EPISODES


step = st.one_of(
    st.builds(lambda c, k: {"type": "acquire", "client": c, "_seed": k}, st.sampled_from(["C1", "C2"]), st.integers(0, 99)),
    st.builds(lambda c: {"type": "release", "client": c}, st.sampled_from(["C1", "C2"])),
    st.builds(lambda c: {"type": "write", "client": c}, st.sampled_from(["C1", "C2"])),
    st.builds(lambda dt: {"type": "tick", "dt_ms": dt}, st.integers(1, 12_000)),
    st.builds(lambda n: {"type": "node_crash", "node": n}, st.sampled_from("ABCDE")),
    st.builds(lambda n: {"type": "node_restart", "node": n}, st.sampled_from("ABCDE")),
    st.builds(lambda ms: {"type": "configure", "latency_ms": ms}, st.integers(0, 40)),
    st.builds(lambda k: {"type": "race_join", "name": f"S{k}", "_seed": k}, st.integers(0, 9)),
    st.just({"type": "race_start", "_seed": 0}),
    st.just({"type": "race_reset"}),
)


@settings(max_examples=50, deadline=None)
@given(steps=st.lists(step, max_size=120))
def test_trace_invariants_hold_for_any_command_sequence(steps):
    s = initial_state()
    produced_messages = produced_episodes = 0
    for cmd in steps:
        try:
            events = decide(s, cmd)
        except Rejected:
            continue
        for ev in events:
            produced_episodes += new_episode(s, ev)
            s = evolve(s, ev)
            produced_messages += episode_messages(ev)
    assert_trace_invariants(s, produced_messages, produced_episodes)
    assert from_json(json.loads(json.dumps(to_json(s)))) == s


# -- the class race with a TTL shorter than the race -----------------------------------------

def short_ttl_race():
    """TTL 100 ms, no retry delay: Ann wins at once; Bob (60 ms round trips) retries until Ann's
    keys have expired (set at t=1, gone at t=101) and wins on his third try (start 120)."""
    s = fold(initial_state(), {"type": "load_scene", "ttl_ms": 100, "node_timeout_ms": 70, "retry_delay_max_ms": 0})
    s = join(join(s, "Ann", {"*": 2}), "Bob", {"*": 60})
    return race(s)


def test_with_a_short_ttl_winners_follow_one_another_without_overlapping():
    after, d = short_ttl_race()
    assert d["winners"] == ["Ann", "Bob"]
    [ann] = tries_of(d, "Ann")
    bob = tries_of(d, "Bob")
    assert [t["start"] for t in bob] == [0, 60, 120] and [t["acquired"] for t in bob] == [False, False, True]
    assert bob[1]["held_by"] == dict.fromkeys("ABCDE", "Ann") and bob[2]["ok"] == list("ABCDE")
    assert ann["valid_until"] == 0 + 100 - 3 <= bob[2]["end"]  # T1 + TTL - drift: Ann's validity ended before Bob held
    assert {n.key.owner for n in after.nodes if n.key} == {"Bob"}


@settings(max_examples=50, deadline=None)
@given(ttl=st.sampled_from([100, 150, 300, 1000]), retries=st.integers(1, 10), delay=st.sampled_from([0, 200, 1000]),
       students=st.integers(1, 30), seed=st.integers(0, 10**6), c1_first=st.booleans())
def test_with_any_ttl_winners_hold_one_after_another(ttl, retries, delay, students, seed, c1_first):
    """Without clock faults, two winners never hold at once: each holds from the end of its
    winning try (T2) to T1 + validity, and those intervals are disjoint and in order."""
    cmds = [{"type": "load_scene", "ttl_ms": ttl, "node_timeout_ms": 60, "retry_count": retries, "retry_delay_max_ms": delay}]
    if c1_first:  # C1 held the lock and let it expire: the race starts from a free lock
        cmds += [{"type": "acquire", "client": "C1", "_seed": seed}, {"type": "tick", "dt_ms": ttl}]
    cmds += [{"type": "race_join", "name": f"S{i}", "_seed": seed + i} for i in range(students)]
    before = fold(initial_state(), *cmds)
    after, d = race(before, seed)
    held = sorted((t["end"], t["valid_until"], c["name"]) for c in d["contenders"] for t in c["tries"] if t["acquired"])
    assert [h[2] for h in held] == d["winners"]
    for (_, until, _), (start, _, _) in zip(held, held[1:]):
        assert until <= start
    owners = {n.key.owner for n in after.nodes if n.key}
    assert owners <= {"C1", *d["winners"][-1:]}
    for c in d["contenders"]:
        assert 1 <= len(c["tries"]) <= retries


def test_race_label_names_the_client_left_holding_when_several_won():
    after, d = short_ttl_race()
    assert d["winners"] == ["Ann", "Bob"]
    assert "Bob" in after.trace[-1].label


def test_the_playing_clock_is_one_stretch_of_the_diagram_and_keeps_the_last_acquisition():
    s = fold(initial_state(), {"type": "acquire", "client": "C1", "_seed": 1})
    acquired = s.last_acquire
    assert acquired is not None and acquired.detail["validity"] == 9_883
    for _ in range(TRACE_EPISODES + 20):  # a minute of play, one tick per second
        s = fold(s, {"type": "tick", "dt_ms": 1000})
    assert [e.kind for e in s.trace] == ["acquire", "tick"]
    tick = s.trace[-1]
    assert tick.end == s.now_ms and tick.end - tick.start == (TRACE_EPISODES + 20) * 1000
    assert s.last_acquire == acquired
    s = fold(s, {"type": "node_crash", "node": "A"}, {"type": "tick", "dt_ms": 5})
    assert [e.kind for e in s.trace] == ["acquire", "tick", "fault", "tick"]  # a tick after a fault is new
    assert from_json(json.loads(json.dumps(to_json(s)))) == s
