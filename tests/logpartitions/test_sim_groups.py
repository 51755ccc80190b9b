"""Consumer groups: rebalances in the events, reading below the high watermark, lag."""
from __future__ import annotations

from apps.logpartitions.sim import group_summary, initial_state, partition_for
from apps.logpartitions.sim.cluster import LAG_HISTORY


def test_a_join_writes_the_full_assignment_and_what_moved_into_the_event(apply):
    state, [event] = apply(initial_state(), type="group_join", group="analytics", member="consumer-2")
    rebalance = event["data"]["rebalance"]
    assert event["kind"] == "member_joined"
    assert rebalance["assignment"] == {"consumer-1": [0, 1], "consumer-2": [2]}
    assert rebalance["revoked"] == {"consumer-1": [0, 1, 2]}  # range is eager: everything goes back
    assert rebalance["added"] == {"consumer-1": [0, 1], "consumer-2": [2]}
    assert rebalance["moved"] == [2] and rebalance["generation"] == 2
    assert [m.partitions for m in state.group("analytics").members] == [(0, 1), (2,)]


def test_cooperative_sticky_group_revokes_only_moved_partitions_on_join(apply):
    state = initial_state({"partitions": 6, "assignor": "cooperative-sticky", "members": ["a", "b"]})
    before = {m.name: m.partitions for m in state.group("analytics").members}
    state, [event] = apply(state, type="group_join", group="analytics", member="c")
    rebalance = event["data"]["rebalance"]
    assert rebalance["protocol"] == "cooperative"
    assert sorted(p for ps in rebalance["revoked"].values() for p in ps) == rebalance["moved"]
    assert rebalance["added"] == {"c": rebalance["moved"]} and len(rebalance["moved"]) == 2
    for m in ("a", "b"):
        assert set(rebalance["assignment"][m]) <= set(before[m])


def test_extra_consumers_sit_idle(apply):
    state = initial_state({"members": ["c0", "c1", "c2"]})
    state, [event] = apply(state, type="group_join", group="analytics", member="c3")
    assert event["data"]["rebalance"]["idle"] == ["c3"]
    assert group_summary(state, "analytics")["members"][3]["idle"]


def test_a_leave_hands_the_partitions_to_the_others(apply):
    state = initial_state({"members": ["c0", "c1"]})
    state, [event] = apply(state, type="group_leave", group="analytics", member="c0")
    assert event["data"]["rebalance"]["assignment"] == {"c1": [0, 1, 2]}
    assert event["data"]["rebalance"]["revoked"]["c0"] == [0, 1]


def test_set_assignor_rebalances_with_the_new_rule(apply):
    state = initial_state({"partitions": 7, "members": ["c0", "c1", "c2"]})
    state, [event] = apply(state, type="set_assignor", group="analytics", assignor="roundrobin")
    assert event["data"]["rebalance"]["assignment"] == {"c0": [0, 3, 6], "c1": [1, 4], "c2": [2, 5]}


def test_consumers_read_at_their_speed_only_below_the_high_watermark(apply):
    state, _ = apply(initial_state({"acks": 1}), type="set_follower_fetch", records=1)
    state, _ = apply(state, type="set_consumer_speed", group="analytics", member="consumer-1", speed=100)
    key = next(k for k in (f"k{i}" for i in range(100)) if partition_for(k, 3) == 0)
    for _ in range(5):
        state, _ = apply(state, type="produce", key=key)
    state, [tick] = apply(state, type="tick", dt_ms=1000)
    part = state.partitions[0]
    assert part.log.end == 8 and part.high_watermark == 4
    assert state.group("analytics").committed[0] == 4
    assert tick["data"]["lag"] == {"analytics": 0}


def test_lag_is_the_high_watermark_minus_the_committed_offset(apply):
    state, [tick] = apply(initial_state(), type="tick", dt_ms=1000)  # speed 2: reads offsets 0 and 1 of partition 0
    summary = group_summary(state, "analytics")
    assert [p["lag"] for p in summary["partitions"]] == [1, 0, 0]
    assert [p["committed"] for p in summary["partitions"]] == [2, 0, 0]
    assert summary["lag_history"] == [1] and tick["data"]["consumed"][0]["records"] == 2


def test_lag_history_keeps_the_last_60_ticks(apply):
    state, _ = apply(initial_state(), type="set_consumer_speed", group="analytics", member="consumer-1", speed=0)
    for i in range(LAG_HISTORY + 5):
        state, _ = apply(state, type="produce", key=f"k{i}")
        state, _ = apply(state, type="tick", dt_ms=1000)
    history = state.group("analytics").lag_history
    assert len(history) == LAG_HISTORY and history[-1] == 3 + LAG_HISTORY + 5


def test_groups_read_independently_and_can_rewind(apply):
    state, _ = apply(initial_state(), type="group_join", group="billing", member="b0", speed=10)
    for _ in range(2):
        state, _ = apply(state, type="tick", dt_ms=1000)
    assert state.group("billing").committed == (3, 0, 0)
    assert state.group("analytics").committed == (3, 0, 0)
    state, _ = apply(state, type="reset_offsets", group="billing", to="earliest")
    assert state.group("billing").committed == (0, 0, 0) and state.group("analytics").committed == (3, 0, 0)


def test_a_new_group_starts_at_the_earliest_offset(apply):
    state, _ = apply(initial_state(), type="group_join", group="audit", member="x")
    assert group_summary(state, "audit")["total_lag"] == 3
