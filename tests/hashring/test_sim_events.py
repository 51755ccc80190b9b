"""Typed events: every event each command type produces is the one its kind's TypedDict describes
(``sim.EVENTS``, checked with the contract suite's checker; the suite itself sees only what the
lessons do), and every kind is folded (``EVOLVE``) and told (``NARRATE``)."""
from __future__ import annotations

from typing import Any

import pytest

from apps.hashring.sim import COMMANDS, EVENTS, EVOLVE, decide, evolve, initial_state, narrate
from apps.hashring.sim.narration import NARRATE
from tests.contract.typed import event_problems

# One or more commands of every type, from the seed ring (A-D, 8 vnodes, user1..user12).
COMMANDS_TO_TRY: list[dict[str, Any]] = [
    {"type": "add_node", "name": "E", "vnodes": 3},
    {"type": "add_node"},
    {"type": "remove_node", "name": "A"},
    {"type": "remove_node", "owner_of": "user1"},
    {"type": "set_vnodes", "name": "B", "vnodes": 2},
    {"type": "set_vnodes", "vnodes": 5},
    {"type": "add_key", "key": "zed"},
    {"type": "add_random_keys", "count": 10},
    {"type": "remove_key", "key": "user2"},
    {"type": "clear_keys"},
    {"type": "lookup", "key": "user3"},
    {"type": "set_replicas", "replicas": 2},
    {"type": "set_stream_rate", "rate": 20},
    {"type": "tick", "dt_ms": 250},
    {"type": "load_scene", "nodes": ["P", "Q"], "vnodes": 4, "keys": ["a"], "random_keys": 5, "seed": "s"},
]


def test_every_command_type_is_tried():
    assert {c["type"] for c in COMMANDS_TO_TRY} == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS_TO_TRY, ids=[c["type"] for c in COMMANDS_TO_TRY])
def test_every_event_a_command_produces_is_as_described(command):
    events = decide(initial_state(), dict(command, _seed="events-test"))
    assert events and [p for e in events for p in event_problems(EVENTS, e)] == []


def test_every_described_kind_is_folded_and_told_and_nothing_else():
    assert set(EVOLVE) == set(EVENTS) == set(NARRATE)


def test_an_unknown_event_is_refused_by_evolve_and_told_by_its_kind():
    with pytest.raises(ValueError, match="unknown hash ring event 'node_exploded'"):
        evolve(initial_state(), {"kind": "node_exploded", "data": {}})
    assert narrate(None, None, {"kind": "node_exploded", "data": {}}) == "node_exploded"

