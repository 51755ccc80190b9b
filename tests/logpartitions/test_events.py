"""Every event the log writes is the one its typed description (``sim.EVENTS``) says: the keys a
kind requires are there, no key is left undescribed, and each value has the described type,
nested descriptions included. Checked on a tour that makes every kind (failures, an unclean
election, retention, rebalances) and on both lessons."""
from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Iterator

import pytest

from apps.logpartitions.sim import EVENTS, ClusterState, decide, evolve, initial_state
from apps.logpartitions.sim.narrate import NARRATE
from tests import lessonfold

LESSONS = Path(__file__).resolve().parents[2] / "apps" / "logpartitions" / "lessons"

TOUR: list[dict[str, Any]] = [
    {"type": "produce", "key": "order-1"},
    {"type": "produce"},
    {"type": "produce_burst", "count": 40, "pattern": "order-{i}"},
    {"type": "produce_burst", "count": 30, "pattern": "none"},
    {"type": "set_producer", "producer": "p1", "acks": "1"},
    {"type": "set_producer_rate", "producer": "producer", "rate": 3, "pattern": "random-users"},
    {"type": "tick", "dt_ms": 1000},
    {"type": "set_producer_rate", "producer": "producer", "rate": 0},
    {"type": "group_join", "group": "analytics", "member": "consumer-2"},
    {"type": "group_join", "group": "audit", "member": "a-1", "speed": 50},
    {"type": "set_assignor", "group": "analytics", "assignor": "cooperative-sticky"},
    {"type": "set_consumer_speed", "group": "analytics", "member": "consumer-1", "speed": 0},
    {"type": "tick", "dt_ms": 1000},
    {"type": "reset_offsets", "group": "audit", "to": "earliest"},
    {"type": "set_min_insync", "value": 2},
    {"type": "set_follower_fetch", "records": 1},
    {"type": "set_lag_time", "ms": 1000},
    {"type": "produce_burst", "count": 12, "pattern": "order-{i}"},
    {"type": "tick", "dt_ms": 1000},
    {"type": "tick", "dt_ms": 1000},
    {"type": "produce", "key": "order-1"},  # NotEnoughReplicas once the ISR shrank
    {"type": "set_min_insync", "value": 1},
    {"type": "produce", "producer": "p1", "key": "order-2"},
    {"type": "set_producer", "producer": "p0", "acks": "0"},
    {"type": "produce", "producer": "p0", "key": "order-2"},
    {"type": "produce", "producer": "producer", "key": "order-2"},
    {"type": "broker_stop", "broker": 0},
    {"type": "broker_stop", "broker": 1},
    {"type": "produce_burst", "count": 10, "pattern": "order-{i}"},
    {"type": "produce_burst", "count": 10, "pattern": "none"},
    {"type": "produce"},
    {"type": "set_unclean", "on": True},
    {"type": "broker_stop", "broker": 2},
    {"type": "produce"},  # nowhere to go: LeaderNotAvailable
    {"type": "produce_burst", "count": 5, "pattern": "none"},
    {"type": "produce_burst", "count": 5, "pattern": "order-{i}"},  # fails on every partition
    {"type": "broker_start", "broker": 0},
    {"type": "broker_start", "broker": 1},
    {"type": "broker_start", "broker": 2},
    {"type": "set_follower_fetch", "records": 1000},
    {"type": "tick", "dt_ms": 1000},
    {"type": "set_retention", "records": 10},
    {"type": "set_batch_size", "size": 2},
    {"type": "produce_burst", "count": 200, "pattern": "order-{i}"},
    {"type": "tick", "dt_ms": 1000},
    {"type": "tick", "dt_ms": 1000},
    {"type": "group_leave", "group": "analytics", "member": "consumer-2"},
    {"type": "set_unclean", "on": False},
    {"type": "load_scene", "partitions": 2, "brokers": 2, "replication_factor": 1, "segment_records": 4},
]


def tour() -> Iterator[tuple[ClusterState, dict[str, Any], ClusterState]]:
    state = initial_state({"segment_records": 4})
    for i, command in enumerate(TOUR):
        for event in decide(state, {"_seed": f"tour:{i}", **command}):
            before, state = state, evolve(state, event)
            yield before, event, state


def lesson_events() -> Iterator[dict[str, Any]]:
    for slug in sorted(p.stem for p in LESSONS.glob("*.toml")):
        for folded in lessonfold.fold_steps(LESSONS, slug, initial_state({}), decide, evolve, Exception):
            yield from folded.events


def problems(value: Any, hint: Any, where: str) -> list[str]:
    """Why ``value`` is not of type ``hint`` (empty when it is)."""
    if hint is Any:
        return []
    if typing.is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not a {hint.__name__}"]
        hints = typing.get_type_hints(hint)
        out = [f"{where}: {hint.__name__} lacks {k!r}" for k in sorted(hint.__required_keys__ - value.keys())]
        out += [f"{where}: {hint.__name__} does not describe {k!r}" for k in sorted(value.keys() - hints.keys())]
        for k in value.keys() & hints.keys():
            out += problems(value[k], hints[k], f"{where}.{k}")
        return out
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        tries = [problems(value, arg, where) for arg in args]
        return [] if any(not t for t in tries) else [f"{where}: {value!r} is none of {hint}"]
    if origin is typing.Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {args}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return [p for i, item in enumerate(value) for p in problems(item, args[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not a dict"]
        return [p for k, v in value.items() for p in problems(k, args[0], where) + problems(v, args[1], f"{where}[{k}]")]
    if hint is type(None):
        return [] if value is None else [f"{where}: {value!r} is not None"]
    if hint is int and isinstance(value, bool):
        return [f"{where}: {value!r} is a bool, not an int"]
    return [] if isinstance(value, hint) else [f"{where}: {value!r} is not {hint.__name__}"]


def test_the_tour_makes_every_kind_of_event():
    made = {event["kind"] for _, event, _ in tour()}
    assert made == set(EVENTS)


def test_every_kind_has_a_description_and_a_sentence():
    assert set(NARRATE) == set(EVENTS)


@pytest.mark.parametrize("source", ["tour", "lessons"])
def test_every_event_matches_its_description(source: str):
    events = [e for _, e, _ in tour()] if source == "tour" else list(lesson_events())
    found = [p for e in events for p in problems(e["data"], EVENTS[e["kind"]], e["kind"])]
    assert found == []


def test_the_checker_sees_a_missing_an_undescribed_and_a_mistyped_key():
    _, event, _ = next(t for t in tour() if t[1]["kind"] == "record_produced")
    data = dict(event["data"])
    assert problems(data, EVENTS["record_produced"], "e") == []
    assert problems({k: v for k, v in data.items() if k != "offset"}, EVENTS["record_produced"], "e")
    assert problems({**data, "colour": "red"}, EVENTS["record_produced"], "e")
    assert problems({**data, "offset": "7"}, EVENTS["record_produced"], "e")
