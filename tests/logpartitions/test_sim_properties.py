"""Invariants of the log over random runs of produces, ticks, faults and group changes (hypothesis)."""
from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event as note, given, settings
from hypothesis import strategies as st

from apps.logpartitions.sim import ClusterState, Rejected, decide, evolve, from_json, initial_state, to_json
from apps.logpartitions.sim.log import Record

PROPERTY_SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scenes = st.fixed_dictionaries({
    "partitions": st.integers(1, 4),
    "brokers": st.integers(1, 3),
    "segment_records": st.sampled_from([4, 8, 1024]),
    "records": st.integers(0, 6),
    "members": st.lists(st.sampled_from(["c0", "c1", "c2"]), unique=True, max_size=3),
    "assignor": st.sampled_from(["range", "roundrobin", "cooperative-sticky"]),
}).flatmap(lambda s: st.integers(1, s["brokers"]).map(lambda r: {**s, "replication_factor": r}))

keys = st.none() | st.sampled_from(["order-1", "order-2", "user-7", "é", "k"])
producers = st.sampled_from(["producer", "p2"])
groups = st.sampled_from(["analytics", "billing"])
members = st.sampled_from(["c0", "c1", "c2", "c3"])
commands = st.one_of(
    st.builds(lambda p, k: {"type": "produce", "producer": p, "key": k}, producers, keys),
    st.builds(lambda p, k: {"type": "produce", "producer": p, "key": k}, producers, keys),
    st.builds(lambda p, n, pat: {"type": "produce_burst", "producer": p, "count": n, "pattern": pat},
              producers, st.integers(1, 40), st.sampled_from(["order-{i}", "random-users", "none", "hot-key"])),
    st.builds(lambda p, a: {"type": "set_producer", "producer": p, "acks": a}, producers, st.sampled_from([0, 1, "all"])),
    st.builds(lambda dt: {"type": "tick", "dt_ms": dt}, st.sampled_from([500, 1000, 2000])),
    st.builds(lambda dt: {"type": "tick", "dt_ms": dt}, st.sampled_from([500, 1000, 2000])),
    st.builds(lambda b: {"type": "broker_stop", "broker": b}, st.integers(0, 2)),
    st.builds(lambda b: {"type": "broker_start", "broker": b}, st.integers(0, 2)),
    st.builds(lambda b: {"type": "broker_stop", "broker": b}, st.integers(0, 2)),
    st.builds(lambda b: {"type": "broker_start", "broker": b}, st.integers(0, 2)),
    st.builds(lambda on: {"type": "set_unclean", "on": on}, st.booleans()),
    st.builds(lambda ms: {"type": "set_lag_time", "ms": ms}, st.sampled_from([500, 1000, 3000])),
    st.builds(lambda n: {"type": "set_follower_fetch", "records": n}, st.integers(1, 20)),
    st.builds(lambda n: {"type": "set_min_insync", "value": n}, st.integers(1, 3)),
    st.builds(lambda n: {"type": "set_batch_size", "size": n}, st.integers(1, 5)),
    st.builds(lambda n: {"type": "set_retention", "records": n}, st.none() | st.integers(3, 30)),
    st.builds(lambda g, m, s: {"type": "group_join", "group": g, "member": m, "speed": s}, groups, members,
              st.integers(0, 6)),
    st.builds(lambda g, m: {"type": "group_leave", "group": g, "member": m}, groups, members),
    st.builds(lambda g, a: {"type": "set_assignor", "group": g, "assignor": a}, groups,
              st.sampled_from(["range", "roundrobin", "cooperative-sticky"])),
    st.builds(lambda g, to: {"type": "reset_offsets", "group": g, "to": to}, groups,
              st.sampled_from(["earliest", "latest"])),
)

# A follower falls out of the ISR, then the leader dies: the path to an unclean election, which
# random sequences alone rarely walk.
fault_recipes = st.builds(
    lambda follower, leader, n, unclean_first: [
        {"type": "broker_stop", "broker": follower},
        *[{"type": "produce", "producer": "producer", "key": None}] * n,
        *[{"type": "tick", "dt_ms": 1000}] * 4,
        *([{"type": "set_unclean", "on": True}] if unclean_first else []),
        {"type": "broker_stop", "broker": leader},
        {"type": "broker_start", "broker": follower},
        {"type": "set_unclean", "on": True},
    ],
    st.integers(0, 2), st.integers(0, 2), st.integers(1, 6), st.booleans(),
)
runs = st.lists(commands.map(lambda c: [c]) | fault_recipes, min_size=10, max_size=50).map(
    lambda chunks: [c for chunk in chunks for c in chunk])


def _run(scene: dict[str, Any], cmds: list[dict[str, Any]]):
    """Yield (before, event, after) for every event the commands cause (rejected ones skipped)."""
    state = initial_state(scene)
    for i, command in enumerate(cmds):
        try:
            events = decide(state, {**command, "_seed": f"s:{i}"})
        except Rejected:
            continue
        for event in events:
            after = evolve(state, event)
            yield state, event, after
            state = after


def _all_records(state: ClusterState, partition: int) -> list[Record]:
    log = state.partitions[partition].log
    return log.read(partition, log.start, log.end)


def _unclean(event: dict[str, Any]) -> bool:
    return any(not e["clean"] for e in event["data"].get("elections", []))


def _check_state(state: ClusterState) -> None:
    for part in state.partitions:
        log = part.log
        records = _all_records(state, part.index)
        assert [r.offset for r in records] == list(range(log.start, log.end))  # contiguous offsets
        assert sum(s.size for s in log.segments) == len(log)
        for a, b in zip(log.segments, log.segments[1:]):
            assert a.end == b.base and b.base % log.segment_size == 0
        assert all(0 < s.size <= log.segment_size for s in log.segments)
        assert log.start <= part.high_watermark <= log.end
        assert all(leo <= log.end for leo in part.leo)
        assert part.isr and set(part.isr) <= set(part.replicas)
        assert list(part.isr) == [b for b in part.replicas if b in part.isr]
        assert all(part.high_watermark <= part.leo_of(b) for b in part.isr)  # HW <= every ISR LEO
        if part.leader is not None:
            assert state.brokers_up[part.leader] and part.leader in part.isr
            assert part.leo_of(part.leader) == log.end
        last: dict[str, int] = {}
        for r in records:  # per-key order: a key's records keep the order they were produced in
            order_id = int(r.value.split("=")[1])
            if r.key is not None:
                assert last.get(r.key, -1) < order_id
                last[r.key] = order_id
    for group in state.groups:
        for part, committed in zip(state.partitions, group.committed):
            assert part.log.start <= committed <= part.high_watermark
        owned = [p for m in group.members for p in m.partitions]
        assert len(owned) == len(set(owned))
        if group.members:
            assert sorted(owned) == list(range(state.config.partitions))
            sizes = [len(m.partitions) for m in group.members]
            assert max(sizes) - min(sizes) <= 1
    for producer in state.producers:
        for ack in producer.pending:
            assert ack.start < ack.end <= state.partitions[ack.partition].log.end


@PROPERTY_SETTINGS
@given(scenes, runs)
def test_invariants_hold_after_every_event(scene, cmds):
    for before, event, after in _run(scene, cmds):
        _check_state(after)
        note("unclean election" if _unclean(event) else event["kind"])  # --hypothesis-show-statistics
        if event["kind"] == "scene_loaded":
            continue
        for old, new in zip(before.partitions, after.partitions):
            if _unclean(event):
                continue
            # No committed record is lost without an unclean election (retention aside).
            assert new.high_watermark >= old.high_watermark
            lo = max(old.log.start, new.log.start)
            assert old.log.read(old.index, lo, old.high_watermark) == new.log.read(new.index, lo, old.high_watermark)


@PROPERTY_SETTINGS
@given(scenes, runs)
def test_losses_are_counted_only_by_elections(scene, cmds):
    for before, event, after in _run(scene, cmds):
        reported = sum(e["lost"] for e in event["data"].get("elections", []))
        assert after.lost_records - before.lost_records == reported
        if reported:
            assert event["kind"] in ("broker_stopped", "broker_started", "unclean_set")


@PROPERTY_SETTINGS
@given(scenes, runs)
def test_replaying_the_events_rebuilds_the_same_state(scene, cmds):
    steps = list(_run(scene, cmds))
    events = json.loads(json.dumps([event for _, event, _ in steps]))  # as stored: plain JSON
    live = steps[-1][2] if steps else initial_state(scene)
    for _ in range(2):
        state = initial_state(scene)
        for event in events:
            state = evolve(state, event)
        assert to_json(state) == to_json(live)


@PROPERTY_SETTINGS
@given(scenes, runs)
def test_to_json_round_trips(scene, cmds):
    steps = list(_run(scene, cmds))
    state = steps[-1][2] if steps else initial_state(scene)
    data = json.loads(json.dumps(to_json(state)))
    back = from_json(data)
    assert back == state and to_json(back) == data
    for part in state.partitions:
        assert _all_records(back, part.index) == _all_records(state, part.index)
