"""The segmented log: appends, truncation, windows, and a million records without copying."""
from __future__ import annotations

import json

from apps.logpartitions.sim import (
    SEGMENT_RECORDS, Batch, Log, Record, from_json, initial_state, partition_for, recent_records, segments, to_json,
)
from apps.logpartitions.sim.log import burst_plan


def single(i: int, key: str | None = None) -> Batch:
    return Batch(id=i, producer="p", tick=0, first_order_id=1000 + i, key=key, value=f"v{i}")


def small_log(count: int, size: int = 4) -> Log:
    log = Log(segment_size=size)
    for i in range(count):
        log = log.append(single(i), 0, 1)
    return log


def test_segments_are_aligned_and_full_except_the_last():
    log = small_log(10)
    assert [(s.base, s.size) for s in log.segments] == [(0, 4), (4, 4), (8, 2)]
    assert (log.start, log.end, len(log)) == (0, 10, 10)


def test_read_returns_exactly_the_window_asked_for():
    log = small_log(10)
    assert [r.value for r in log.read(0, 3, 7)] == ["v3", "v4", "v5", "v6"]
    assert log.read(0, 8, 99) == [Record(8, None, "v8", "p", 0), Record(9, None, "v9", "p", 0)]
    assert log.read(0, 10, 12) == [] and log.read(0, -5, 1)[0].offset == 0


def test_truncate_cuts_inside_a_segment_and_returns_what_it_removed():
    log, removed = small_log(10).truncate(6)
    assert (log.end, [s.size for s in log.segments]) == (6, [4, 2])
    assert sum(r.size for r in removed) == 4
    log = log.append(single(99), 0, 1)
    assert [r.value for r in log.read(0, 5, 7)] == ["v5", "v99"]


def test_delete_before_drops_whole_segments_and_keeps_the_active_one():
    log, dropped = small_log(10).delete_before(7)
    assert (dropped, log.start, log.end) == (1, 4, 10)
    log, dropped = log.delete_before(100)
    assert (dropped, log.start) == (1, 8)


def test_a_burst_is_a_few_runs_not_a_record_each():
    batch = Batch(id=1, producer="p", tick=3, count=5000, first_order_id=1, pattern="order-{i}", num_partitions=3)
    plan = burst_plan(batch)
    mine = len(plan.members[1])
    log = Log().append(batch, 0, mine)
    assert len(log) == mine and sum(len(s.runs) for s in log.segments) == len(log.segments)
    window = log.read(1, mine - 3, mine)
    assert all(partition_for(r.key, 3) == 1 and r.tick == 3 for r in window)
    assert window == [Record(mine - 3 + j, f"order-{1 + i}", f"order_id={1 + i}", "p", 3)
                      for j, i in enumerate(plan.members[1][-3:].tolist())]


def test_a_million_records_stay_small_and_readable(apply):
    state = initial_state({"partitions": 12, "brokers": 6, "replication_factor": 3, "records": 0})
    for i, pattern in enumerate(["order-{i}", "random-users", "none"] * 3 + ["order-{i}"]):
        state, _ = apply(state, type="produce_burst", count=100_000, pattern=pattern, _seed=f"b{i}")
    state, _ = apply(state, type="tick", dt_ms=1000)
    assert state.total_records == 1_000_000
    assert all(p.high_watermark == p.log.end for p in state.partitions)
    text = json.dumps(to_json(state))
    assert len(text) < 500_000
    assert from_json(json.loads(text)) == state
    last = recent_records(state, 5, 20)
    assert [r.offset for r in last] == list(range(state.partitions[5].log.end - 20, state.partitions[5].log.end))
    assert len(segments(state, 5)) == -(-state.partitions[5].log.end // SEGMENT_RECORDS)

