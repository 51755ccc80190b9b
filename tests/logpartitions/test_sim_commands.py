"""Commands that do not fit are rejected with a sentence for the person who sent them."""
from __future__ import annotations

import pytest

from apps.logpartitions.sim import Limits, Rejected, decide, initial_state


def rejection(command, state=None, limits=Limits()):
    with pytest.raises(Rejected) as info:
        decide(state or initial_state(), {"_seed": "t", **command}, limits)
    return str(info.value)


@pytest.mark.parametrize(("command", "message"), [
    ({"type": "explode"}, "Unknown command 'explode' for the distributed log."),
    ({"type": "produce", "producer": ""}, "Give the producer a name."),
    ({"type": "produce", "producer": "p" * 41}, "A producer name has at most 40 characters."),
    ({"type": "produce", "producer": "bad\nname"}, "A producer name must be printable characters only."),
    ({"type": "produce", "key": 42}, "The key must be text."),
    ({"type": "produce", "value": "v" * 81}, "A value has at most 80 characters."),
    ({"type": "produce_burst", "count": 100_001}, "The number of records must be from 1 to 100,000 (got 100,001)."),
    ({"type": "produce_burst", "count": "many"}, "The number of records must be a whole number from 1 to 100,000."),
    ({"type": "set_producer", "producer": "p", "acks": 2}, "acks must be 0, 1 or all."),
    ({"type": "set_producer", "producer": "producer", "acks": "all"}, "producer already sends with acks=all."),
    ({"type": "broker_stop", "broker": 7}, "The broker must be from 0 to 2 (got 7)."),
    ({"type": "broker_start", "broker": 0}, "Broker 0 is already running."),
    ({"type": "set_unclean", "on": "maybe"}, "Unclean leader election is either on or off."),
    ({"type": "set_unclean", "on": False}, "Unclean leader election is already off."),
    ({"type": "set_min_insync", "value": 3}, "min.insync.replicas must be from 1 to 2 (got 3)."),
    ({"type": "tick", "dt_ms": 0}, "A tick must be from 1 to 60,000 (got 0)."),
    ({"type": "tick"}, "A tick must be a whole number from 1 to 60,000."),  # the room clock always says how long
    ({"type": "group_join", "group": "analytics", "member": "consumer-1"}, "consumer-1 is already in analytics."),
    ({"type": "group_leave", "group": "nope", "member": "x"}, "There is no consumer group called nope."),
    ({"type": "group_leave", "group": "analytics", "member": "x"}, "There is no consumer x in analytics."),
    ({"type": "set_assignor", "group": "analytics", "assignor": "sticky-ish"},
     "The assignor is one of range, roundrobin, cooperative-sticky."),
    ({"type": "set_consumer_speed", "group": "analytics", "member": "consumer-1", "speed": -1},
     "Records per tick must be from 0 to 100,000 (got -1)."),
    ({"type": "load_scene", "partitions": 13}, "The number of partitions must be from 1 to 12 (got 13)."),
    ({"type": "load_scene", "brokers": 7}, "The number of brokers must be from 1 to 6 (got 7)."),
    ({"type": "load_scene", "brokers": 2, "replication_factor": 3}, "The replication factor must be from 1 to 2 (got 3)."),
])
def test_rejected_commands_say_why(command, message):
    assert rejection(command) == message


def test_stopping_a_stopped_broker_is_rejected(apply):
    state, _ = apply(initial_state(), type="broker_stop", broker=2)
    assert rejection({"type": "broker_stop", "broker": 2}, state) == "Broker 2 is already stopped."


def test_the_total_record_limit_holds():
    assert rejection({"type": "produce_burst", "count": 10}, limits=Limits(max_records=12)) == (
        "Only 9 more records fit (the log holds at most 12).")


def test_group_and_consumer_limits_hold(apply):
    state = initial_state({"members": [f"c{i}" for i in range(32)]})
    assert rejection({"type": "group_join", "group": "analytics", "member": "one-more"}, state) == (
        "A group has at most 32 consumers.")
    for i in range(7):
        state, _ = apply(state, type="group_join", group=f"g{i}", member="m")
    assert rejection({"type": "group_join", "group": "g8", "member": "m"}, state) == (
        "There are already 8 consumer groups, the most this log takes.")


def test_a_blank_key_means_a_keyless_record(apply):
    _, [event] = apply(initial_state(), type="produce", key="  ")
    assert event["data"]["key"] is None and event["data"]["chosen_by"] == "sticky"
