"""Typed events: every event a command produces is the one its kind's TypedDict describes
(``sim.EVENTS``), and every kind is folded (``EVOLVE``) and told (``NARRATE``)."""
from __future__ import annotations

import types
import typing
from typing import Any

import pytest

from apps.hashring.sim import COMMANDS, EVENTS, EVOLVE, decide, evolve, initial_state, narrate
from apps.hashring.sim.narration import NARRATE

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


def fits(value: Any, hint: Any) -> bool:
    """Is ``value`` (plain JSON) of the annotated type? Enough for the ring's events: str, int,
    None, unions of those, and lists of them."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, h) for h in typing.get_args(hint))
    if origin is list:
        return isinstance(value, list) and all(fits(v, typing.get_args(hint)[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def problems(event: dict[str, Any]) -> list[str]:
    described = EVENTS.get(event["kind"])
    if described is None:
        return [f"{event['kind']} has no description in EVENTS"]
    hints = typing.get_type_hints(described)
    data = event["data"]
    out = [f"{event['kind']}: missing {k}" for k in described.__required_keys__ - data.keys()]
    out += [f"{event['kind']}: undescribed {k}" for k in data.keys() - hints.keys()]
    out += [f"{event['kind']}.{k} = {v!r} is not {hints[k]}" for k, v in data.items() if k in hints and not fits(v, hints[k])]
    return out


def test_every_command_type_is_tried():
    assert {c["type"] for c in COMMANDS_TO_TRY} == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS_TO_TRY, ids=[c["type"] for c in COMMANDS_TO_TRY])
def test_every_event_a_command_produces_is_as_described(command):
    events = decide(initial_state(), dict(command, _seed="events-test"))
    assert events and all(problems(e) == [] for e in events), [problems(e) for e in events]


def test_the_description_catches_a_wrong_event():
    assert problems({"kind": "node_added", "data": {"name": "E"}}) == ["node_added: missing vnodes"]
    assert problems({"kind": "node_added", "data": {"name": "E", "vnodes": "3"}}) != []
    assert problems({"kind": "key_added", "data": {"key": "k", "extra": 1}}) == ["key_added: undescribed extra"]
    assert problems({"kind": "node_exploded", "data": {}}) != []


def test_every_described_kind_is_folded_and_told_and_nothing_else():
    assert set(EVOLVE) == set(EVENTS) == set(NARRATE)


def test_an_unknown_event_is_refused_by_evolve_and_told_by_its_kind():
    with pytest.raises(ValueError, match="unknown hash ring event 'node_exploded'"):
        evolve(initial_state(), {"kind": "node_exploded", "data": {}})
    assert narrate(None, None, {"kind": "node_exploded", "data": {}}) == "node_exploded"

