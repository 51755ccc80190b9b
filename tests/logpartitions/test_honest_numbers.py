"""The numbers the log's panels show, checked against numbers worked out here by hand (from the
rules: what a follower fetched, what the producer was told), not against the functions that
drew them; and the words for what a failover cuts (lost vs never acknowledged).

Kafka's meaning of "lost": a record the cluster had confirmed is gone. Confirmed means committed
(below the high watermark) or acknowledged to its producer: with acks=1 the leader alone
acknowledges at once, so a clean failover to a follower that had not fetched it yet loses it.
acks=all records above the HW were never acknowledged (the producer retries them); acks=0
records were never acknowledged either (nobody waited for them).
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from apps.logpartitions import concept, picture
from apps.logpartitions.sim import ClusterState, decide, evolve, initial_state, partition_for
from apps.rooms.registry import RoomView

VIEW = RoomView(code="ABC", seq=1, position=1, playing=False, speed=1.0, role="presenter")
KEY0 = next(k for k in (f"key-{i}" for i in range(100)) if partition_for(k, 3) == 0)  # P0: brokers 0, 1


def run(state: ClusterState, *commands: dict[str, Any]) -> tuple[ClusterState, list[str]]:
    """Apply commands; return the state and the narration of every event."""
    lines = []
    for i, cmd in enumerate(commands):
        for ev in decide(state, {"_seed": f"t{i}", **cmd}):
            before, state = state, evolve(state, ev)
            lines.append(concept.narrate(before, state, ev))
    return state, lines


def produce(n: int, producer: str = "producer") -> list[dict[str, Any]]:
    return [{"type": "produce", "producer": producer, "key": KEY0}] * n


def shown(state: ClusterState) -> dict[str, Any]:
    """What the summary, the lag panel, the group's lag label and the producer boxes display."""
    pic = picture.picture(state, VIEW)
    summary, lag = str(pic.panels["lp-summary"]), str(pic.panels["lp-lag"])
    num = lambda text: int(text.replace(",", ""))  # noqa: E731

    def find(pattern: str, text: str) -> int | None:
        m = re.search(pattern, text)
        return num(m.group(1)) if m else None

    producers = "".join(pic.layers["lp-producers"].children.values())
    return {
        "records": find(r"<strong>([\d,]+)</strong> records", summary),
        "acked": find(r"acked <strong>([\d,]+)</strong>", summary),
        "lost": find(r"lost <strong>([\d,]+)</strong>", summary),
        "failed": find(r"failed <strong>([\d,]+)</strong>", summary),
        "waiting": find(r"waiting <strong>([\d,]+)</strong>", summary),
        "lag_parts": {int(p): num(n) for p, n in re.findall(r"P(\d+) <b>([\d,]+)</b>", lag)},
        "lag_now": find(r"class=\"lag-now\">([\d,]+)<", lag),
        "group_lag": [num(n) for n in re.findall(r">lag ([\d,]+)<", "".join(pic.layers["lp-groups"].children.values()))],
        "producer_acked": [num(n) for n in re.findall(r"acked ([\d,]+)<", producers)],
    }


def slow_follower(acks: Any, fetch: int = 1) -> ClusterState:
    state = initial_state({"records": 0, "acks": acks})
    state, _ = run(state, {"type": "set_follower_fetch", "records": fetch},
                   {"type": "set_consumer_speed", "group": "analytics", "member": "consumer-1", "speed": 0})
    return state


# -- lag is the high watermark minus the committed offset ------------------------------------------

def test_lag_counts_from_the_high_watermark_not_the_log_end():
    # 10 records on P0; the follower fetches 2 per tick and stays in the ISR (3 s lag time), so
    # after two ticks it has 4: HW 4, log end 10. The consumer has read nothing: lag 4, not 10.
    state = slow_follower(1, fetch=2)
    state, _ = run(state, *produce(10), {"type": "tick", "dt_ms": 1000}, {"type": "tick", "dt_ms": 1000})
    p0 = state.partitions[0]
    assert (p0.log.end, p0.leo_of(1), p0.isr) == (10, 4, (0, 1))
    got = shown(state)
    assert got["lag_parts"] == {0: 4, 1: 0, 2: 0}
    assert got["lag_now"] == 4 and got["group_lag"] == [4]
    assert got["records"] == 10 and got["acked"] == 10 and got["lost"] is None  # acks=1: told at once
    # The consumer reads 1 per tick from now on: after one more tick HW 6, committed 1, lag 5.
    state, _ = run(state, {"type": "set_consumer_speed", "group": "analytics", "member": "consumer-1", "speed": 1},
                   {"type": "tick", "dt_ms": 1000})
    got = shown(state)
    assert (got["lag_parts"][0], got["lag_now"], got["group_lag"]) == (5, 5, [5])


def test_acks_all_is_acked_as_the_high_watermark_passes():
    state = slow_follower("all", fetch=3)
    state, _ = run(state, *produce(10), {"type": "tick", "dt_ms": 1000})
    got = shown(state)
    assert (got["records"], got["acked"], got["waiting"], got["producer_acked"]) == (10, 3, 7, [3])


# -- what a failover cuts: lost, or never acknowledged ------------------------------------------------

def test_acks_all_records_cut_by_a_clean_failover_are_not_lost():
    # The follower has 1 of 10 when the leader's broker stops: 9 records are cut, and the
    # producer was never told they were written (it hears an error and retries them).
    state = slow_follower("all")
    state, lines = run(state, *produce(10), {"type": "tick", "dt_ms": 1000}, {"type": "broker_stop", "broker": 0})
    got = shown(state)
    assert (got["records"], got["acked"], got["failed"], got["lost"]) == (1, 1, 9, None)
    assert state.lost_records == 0 and state.producer("producer").lost == 0
    assert "9 records the producer was never told were written" in lines[-1] and "retries them" in lines[-1]
    assert "LOST" not in lines[-1]


def test_acks_1_records_cut_by_a_clean_failover_are_lost():
    # acks=1: the leader said "written" for all 10; the new leader has 1: 9 acknowledged records gone.
    state = slow_follower(1)
    state, lines = run(state, *produce(10), {"type": "tick", "dt_ms": 1000}, {"type": "broker_stop", "broker": 0})
    got = shown(state)
    assert (got["records"], got["acked"], got["lost"], got["failed"]) == (1, 10, 9, None)
    assert "LOST 9 records the leader alone had acknowledged (acks=1)" in lines[-1]


def test_acks_0_records_cut_are_neither_acknowledged_nor_counted_lost():
    state = slow_follower(0)
    state, lines = run(state, *produce(10), {"type": "tick", "dt_ms": 1000}, {"type": "broker_stop", "broker": 0})
    got = shown(state)
    assert (got["records"], got["acked"], got["lost"], got["failed"]) == (1, 0, None, None)
    assert "9 acks=0 records above the HW cut, unnoticed" in lines[-1]


def test_one_failover_sorts_each_producers_records():
    # "fast" (acks=1) sends 3, then "safe" (acks=all) sends 4, then "fast" 2 more: all above the HW.
    state = slow_follower("all", fetch=1)
    state, _ = run(state, {"type": "set_producer", "producer": "fast", "acks": "1"},
                   {"type": "set_producer", "producer": "safe", "acks": "all"})
    state, lines = run(state, *produce(3, "fast"), *produce(4, "safe"), *produce(2, "fast"),
                       {"type": "broker_stop", "broker": 0})
    assert state.partitions[0].log.end == 0
    assert (state.producer("fast").lost, state.producer("safe").lost, state.producer("safe").failed) == (5, 0, 4)
    assert shown(state)["lost"] == 5 and state.lost_records == 5
    assert "LOST 5 records the leader alone had acknowledged" in lines[-1]
    assert "4 records the producer was never told were written" in lines[-1]


def test_an_unclean_election_loses_committed_records_and_says_so():
    state = initial_state({"acks": "all"})
    state, _ = run(state, {"type": "broker_stop", "broker": 1}, *produce(12))  # b1 fenced: ISR {b0}, committed
    state, _ = run(state, {"type": "broker_stop", "broker": 0}, {"type": "broker_start", "broker": 1})
    state, lines = run(state, {"type": "set_unclean", "on": True})
    assert shown(state)["lost"] == 12 and state.lost_records == 12
    assert "LOST 12 committed records" in lines[-1] and "unclean" in lines[-1]
    assert "P0 is back online: leader b1" in lines[-1]


# -- the narration -------------------------------------------------------------------------------------

def test_not_enough_replicas_after_append_is_narrated_on_the_tick():
    # RF 3, min.insync 2: the followers fall out of the ISR (1 s lag time) while the HW passes the
    # records, so the producer hears NotEnoughReplicasAfterAppend, not "nothing to do".
    state = initial_state({"records": 0, "replication_factor": 3})
    state, _ = run(state, {"type": "set_min_insync", "value": 2}, {"type": "set_lag_time", "ms": 1000},
                   {"type": "set_follower_fetch", "records": 1}, *produce(5), {"type": "tick", "dt_ms": 1000})
    failed_before = state.producer("producer").failed
    state, lines = run(state, {"type": "tick", "dt_ms": 1000})
    assert state.producer("producer").failed > failed_before
    [line] = lines
    assert "NotEnoughReplicasAfterAppend" in line and "min.insync.replicas = 2" in line
    assert "nothing to do" not in line


LEAKS = re.compile(r"\bNone\b|undefined|\bnan\b|\bbNone|\bPNone|\{\}")


def _texts(state: ClusterState) -> str:
    """Every text and attribute value of the picture and its panels (aria-labels too)."""
    pic = picture.picture(state, VIEW)
    return "".join(str(v) for layer in pic.layers.values() for v in layer.children.values()) + "".join(
        str(p) for p in pic.panels.values()) + "".join(pic.render_region(r) for r in pic.regions)


HISTORY = [
    {"type": "produce_burst", "producer": "producer", "count": 40, "pattern": "order-{i}"},
    {"type": "produce", "producer": "producer"},
    {"type": "set_min_insync", "value": 2},
    {"type": "broker_stop", "broker": 1},
    {"type": "produce_burst", "producer": "producer", "count": 10, "pattern": "none"},
    {"type": "produce", "producer": "producer", "key": KEY0},
    {"type": "tick", "dt_ms": 1000},
    {"type": "broker_stop", "broker": 0},
    {"type": "produce", "producer": "producer"},
    {"type": "set_unclean", "on": True},
    {"type": "broker_stop", "broker": 2},
    {"type": "broker_start", "broker": 0},
    {"type": "broker_start", "broker": 2},
    {"type": "set_retention", "records": 5},
    {"type": "set_retention", "records": ""},
    {"type": "group_join", "group": "audit", "member": "a1"},
    {"type": "set_assignor", "group": "analytics", "assignor": "roundrobin"},
    {"type": "reset_offsets", "group": "audit", "to": "latest"},
    {"type": "tick", "dt_ms": 1000},
    {"type": "broker_start", "broker": 1},
    {"type": "tick", "dt_ms": 1000},
]


def test_no_narration_or_picture_text_says_none_or_undefined():
    state = initial_state({"segment_records": 4})
    for i, cmd in enumerate(HISTORY):
        for ev in decide(state, {"_seed": f"h{i}", **cmd}):
            before, state = state, evolve(state, ev)
            line = concept.narrate(before, state, ev)
            assert not LEAKS.search(line), (cmd, line)
        text = _texts(state)
        assert not LEAKS.search(text), (cmd, LEAKS.findall(text))
