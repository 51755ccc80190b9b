"""Properties of the ring that hold for every membership and every key set (hypothesis)."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.hashring.sim import Rejected, RingState, decide, evolve, from_json, initial_state, moved_mask, to_json

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NODE_NAMES = ["A", "B", "C", "D", "E", "F", "node-1", "node-2", "é"]
node_names = st.sampled_from(NODE_NAMES)
key_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
keys = st.lists(key_text, unique=True, max_size=80)
members = st.lists(st.tuples(node_names, st.integers(1, 12)), min_size=1, max_size=6, unique_by=lambda m: m[0])


def _ring(nodes: list[tuple[str, int]], key_list: list[str]) -> RingState:
    state = initial_state({"nodes": [], "keys": key_list})
    for name, vnodes in nodes:
        state = evolve(state, {"kind": "node_added", "data": {"name": name, "vnodes": vnodes}})
    return state


commands = st.one_of(
    st.builds(lambda n, v: {"type": "add_node", "name": n, "vnodes": v}, node_names, st.integers(1, 12)),
    st.builds(lambda n: {"type": "remove_node", "name": n}, node_names),
    st.builds(lambda n, v: {"type": "set_vnodes", "name": n, "vnodes": v}, st.none() | node_names, st.integers(1, 12)),
    st.builds(lambda k: {"type": "add_key", "key": k}, key_text),
    st.builds(lambda k: {"type": "remove_key", "key": k}, key_text | st.sampled_from(["user1", "user5"])),
    st.builds(lambda c, s: {"type": "add_random_keys", "count": c, "_seed": s}, st.integers(1, 30), st.sampled_from(["r:1", "r:2"])),
    st.builds(lambda k: {"type": "lookup", "key": k}, key_text),
    st.builds(lambda r: {"type": "set_replicas", "replicas": r}, st.integers(1, 7)),
    st.builds(lambda r: {"type": "set_stream_rate", "rate": r}, st.integers(1, 20)),
    st.builds(lambda dt: {"type": "tick", "dt_ms": dt, "_seed": "t"}, st.integers(1, 5000)),
    st.just({"type": "clear_keys"}),
)


def _events_for(command_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The event log a room would store for these commands (rejected ones leave no trace)."""
    state = initial_state()
    log = []
    for command in command_list:
        try:
            events = decide(state, command)
        except Rejected:
            continue
        for event in events:
            state = evolve(state, event)
            log.append(event)
    return log


def _fold(events: list[dict[str, Any]], state: RingState | None = None) -> RingState:
    state = initial_state() if state is None else state
    for event in events:
        state = evolve(state, event)
    return state


# -- ownership ---------------------------------------------------------------------------------

@PROPERTY_SETTINGS
@given(members, keys)
def test_owners_every_key_has_an_owner(nodes, key_list):
    state = _ring(nodes, key_list)
    assert len(state.owners) == len(key_list) and (state.owners >= 0).all()


@PROPERTY_SETTINGS
@given(members, keys)
def test_owners_agree_with_owner_of(nodes, key_list):
    state = _ring(nodes, key_list)
    assert [state.node_names[i] for i in state.owners] == [state.owner_of(k) for k in key_list]


@PROPERTY_SETTINGS
@given(members, keys)
def test_counts_add_up_to_the_number_of_keys(nodes, key_list):
    state = _ring(nodes, key_list)
    assert sum(state.counts.values()) == len(key_list)


@PROPERTY_SETTINGS
@given(members, keys)
def test_owners_do_not_depend_on_join_order(nodes, key_list):
    forward, backward = _ring(nodes, key_list), _ring(nodes[::-1], key_list)
    assert [forward.owner_of(k) for k in key_list] == [backward.owner_of(k) for k in key_list]


# -- movement ----------------------------------------------------------------------------------

@PROPERTY_SETTINGS
@given(members, keys, st.integers(1, 12))
def test_movement_adding_a_node_moves_keys_only_to_it(nodes, key_list, vnodes):
    before = _ring(nodes, key_list)
    newcomer = next(n for n in NODE_NAMES if n not in before.node_names)
    after = evolve(before, {"kind": "node_added", "data": {"name": newcomer, "vnodes": vnodes}})
    moved = moved_mask(before, after)
    assert {after.node_names[i] for i in after.owners[moved]} <= {newcomer}


@PROPERTY_SETTINGS
@given(members, keys, st.integers(1, 12))
def test_movement_adding_a_node_moves_every_key_it_now_owns(nodes, key_list, vnodes):
    before = _ring(nodes, key_list)
    newcomer = next(n for n in NODE_NAMES if n not in before.node_names)
    after = evolve(before, {"kind": "node_added", "data": {"name": newcomer, "vnodes": vnodes}})
    assert after.last_change.moved == after.counts[newcomer]


@PROPERTY_SETTINGS
@given(members.filter(lambda m: len(m) >= 2), keys, st.data())
def test_movement_removing_a_node_moves_only_its_keys(nodes, key_list, data):
    before = _ring(nodes, key_list)
    leaving = data.draw(st.sampled_from(before.node_names))
    after = evolve(before, {"kind": "node_removed", "data": {"name": leaving}})
    moved = moved_mask(before, after)
    assert moved.tolist() == (np.array(before.node_names)[before.owners] == leaving).tolist()


@PROPERTY_SETTINGS
@given(members.filter(lambda m: len(m) >= 2), keys, st.data())
def test_movement_removing_a_node_keeps_other_owners(nodes, key_list, data):
    before = _ring(nodes, key_list)
    leaving = data.draw(st.sampled_from(before.node_names))
    after = evolve(before, {"kind": "node_removed", "data": {"name": leaving}})
    stayed = [k for k in key_list if before.owner_of(k) != leaving]
    assert [after.owner_of(k) for k in stayed] == [before.owner_of(k) for k in stayed]


# -- replay ------------------------------------------------------------------------------------

@PROPERTY_SETTINGS
@given(st.lists(commands, max_size=25))
def test_replay_same_events_give_equal_states(command_list):
    events = _events_for(command_list)
    assert to_json(_fold(events)) == to_json(_fold(events))


@PROPERTY_SETTINGS
@given(st.lists(commands, max_size=25))
def test_replay_same_events_give_equal_owners(command_list):
    events = _events_for(command_list)
    assert _fold(events).owners.tolist() == _fold(events).owners.tolist()


@PROPERTY_SETTINGS
@given(st.lists(commands, max_size=25), st.data())
def test_replay_from_a_json_snapshot_equals_full_replay(command_list, data):
    # The room engine stores snapshots and folds only the events after them.
    events = _events_for(command_list)
    cut = data.draw(st.integers(0, len(events)))
    snapshot = from_json(json.loads(json.dumps(to_json(_fold(events[:cut])))))
    assert to_json(_fold(events[cut:], snapshot)) == to_json(_fold(events))


@PROPERTY_SETTINGS
@given(st.lists(commands, max_size=25))
def test_replay_events_are_plain_json(command_list):
    events = _events_for(command_list)
    assert json.loads(json.dumps(events)) == events


# -- JSON --------------------------------------------------------------------------------------

@PROPERTY_SETTINGS
@given(st.lists(commands, max_size=25))
def test_to_json_round_trip_is_identity(command_list):
    state = _fold(_events_for(command_list))
    assert to_json(from_json(json.loads(json.dumps(to_json(state))))) == to_json(state)


@PROPERTY_SETTINGS
@given(st.lists(commands, max_size=25))
def test_to_json_round_trip_preserves_counts(command_list):
    state = _fold(_events_for(command_list))
    assert from_json(json.loads(json.dumps(to_json(state)))).counts == state.counts


@PROPERTY_SETTINGS
@given(st.lists(commands, max_size=25))
def test_to_json_round_trip_preserves_owners(command_list):
    state = _fold(_events_for(command_list))
    assert from_json(json.loads(json.dumps(to_json(state)))).owners.tolist() == state.owners.tolist()


# -- purity ------------------------------------------------------------------------------------

@PROPERTY_SETTINGS
@given(st.lists(commands, max_size=20), commands)
def test_evolve_does_not_change_its_input_state(command_list, command):
    state = _fold(_events_for(command_list))
    before_json, before_owners, before_hashes = to_json(state), state.owners.copy(), state.key_hashes.copy()
    try:
        events = decide(state, command)
    except Rejected:
        events = []
    for event in events:
        evolve(state, event)
    assert (to_json(state), state.owners.tolist(), state.key_hashes.tolist()) == (
        before_json, before_owners.tolist(), before_hashes.tolist())


@PROPERTY_SETTINGS
@given(st.lists(commands, max_size=20), commands)
def test_decide_does_not_change_its_input_state(command_list, command):
    state = _fold(_events_for(command_list))
    before_json = to_json(state)
    try:
        decide(state, command)
    except Rejected:
        pass
    assert to_json(state) == before_json
