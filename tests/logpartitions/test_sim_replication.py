"""Replication and faults: the ISR, the high watermark, failover, unclean elections, retention."""
from __future__ import annotations

from apps.logpartitions.sim import initial_state, partition_for, pending_acks, recent_records


def key_on(partition: int, partitions: int = 3) -> str:
    return next(k for k in (f"key-{i}" for i in range(1000)) if partition_for(k, partitions) == partition)


def produce_many(apply, state, partition, count, producer="producer"):
    for _ in range(count):
        state, _ = apply(state, type="produce", producer=producer, key=key_on(partition))
    return state


def test_a_stopped_follower_is_fenced_out_of_the_isr_at_once(apply):
    # Kafka's controller removes a dead broker from the ISR right away (it does not wait for
    # replica.lag.time.max.ms), so acks=all no longer waits for it.
    state, [stopped] = apply(initial_state(), type="broker_stop", broker=1)  # partition 0 = [0, 1]
    assert state.partitions[0].isr == (0,) and stopped["data"]["fenced_from_isr"] == [0]
    state, [event] = apply(state, type="produce", key=key_on(0))
    assert event["data"]["ack"] == "acknowledged"  # min.insync.replicas 1: the ISR {b0} is enough
    assert pending_acks(state)["producer"] == []


def test_a_slow_follower_leaves_the_isr_and_rejoins_once_caught_up(apply):
    state, _ = apply(initial_state({"records": 0}), type="set_follower_fetch", records=10)
    state = produce_many(apply, state, 0, 100)
    shrunk = expanded = None
    for i in range(12):
        state, [tick] = apply(state, type="tick", dt_ms=1000)
        shrunk = shrunk or (i if tick["data"].get("isr_shrunk") else None)
        expanded = expanded or (i if tick["data"].get("isr_expanded") else None)
    assert shrunk is not None and expanded is not None and shrunk < expanded
    part = state.partitions[0]
    assert part.isr == (0, 1) and part.leo == (100, 100) and part.high_watermark == 100


def test_the_high_watermark_waits_for_every_isr_member(apply):
    state, _ = apply(initial_state({"records": 0, "acks": 1}), type="set_follower_fetch", records=3)
    state = produce_many(apply, state, 0, 10)
    assert state.partitions[0].high_watermark == 0
    state, [tick] = apply(state, type="tick", dt_ms=1000)
    assert tick["data"]["hw_moved"] == [{"partition": 0, "from": 0, "to": 3}]


def test_leader_failover_elects_the_first_live_isr_member_and_keeps_committed_records(apply):
    state = initial_state()
    before = recent_records(state, 0, 10)
    state, [event] = apply(state, type="broker_stop", broker=0)
    [election] = event["data"]["elections"]
    assert election["partition"] == 0 and election["new_leader"] == 1 and election["clean"]
    assert election["lost"] == 0 and state.partitions[0].leader_epoch == 1
    assert recent_records(state, 0, 10) == before


def test_a_clean_failover_drops_only_records_above_the_high_watermark(apply):
    state, _ = apply(initial_state({"acks": 1}), type="set_follower_fetch", records=1)
    state = produce_many(apply, state, 0, 5)  # leader 0 has 8, follower 1 has 3
    state, _ = apply(state, type="tick", dt_ms=1000)  # follower 1 fetches one: LEO 4, HW 4 (still in the ISR)
    state, [event] = apply(state, type="broker_stop", broker=0)
    [election] = event["data"]["elections"]
    assert election["clean"] and election["lost"] == 4 and election["committed_lost"] == 0
    assert state.partitions[0].log.end == state.partitions[0].high_watermark == 4
    assert state.producer("producer").lost == 4  # acks=1 heard "written" for records now gone


def test_no_live_isr_member_means_offline_until_one_returns(apply):
    state, _ = apply(initial_state(), type="broker_stop", broker=1)  # fenced: P0's ISR is {b0}
    state, [event] = apply(state, type="broker_stop", broker=0)
    assert state.partitions[0].leader is None and 0 in event["data"]["offline"]
    assert state.partitions[0].isr == (0,)  # an offline partition keeps its last ISR
    state, [event] = apply(state, type="broker_start", broker=1)  # not in the ISR: may not lead cleanly
    assert state.partitions[0].leader is None and event["data"]["elections"] == []
    state, [event] = apply(state, type="broker_start", broker=0)  # the last ISR member returns
    [election] = event["data"]["elections"]
    assert election["partition"] == 0 and election["new_leader"] == 0 and election["clean"]
    assert [r.value for r in recent_records(state, 0, 10)] == ["order_id=1001", "order_id=1002", "order_id=1003"]


def test_unclean_election_loses_records_and_counts_them(apply):
    state, _ = apply(initial_state({"acks": 1}), type="broker_stop", broker=1)
    state = produce_many(apply, state, 0, 12)
    for _ in range(5):  # broker 1 drops out of the ISR; the 12 records are committed by broker 0 alone
        state, _ = apply(state, type="tick", dt_ms=1000)
    assert state.partitions[0].isr == (0,) and state.partitions[0].high_watermark == 15
    state, _ = apply(state, type="broker_stop", broker=0)
    state, [started] = apply(state, type="broker_start", broker=1)
    assert state.partitions[0].leader is None and started["data"]["elections"] == []
    state, [event] = apply(state, type="set_unclean", on=True)
    [election] = event["data"]["elections"]
    assert election["partition"] == 0 and election["new_leader"] == 1 and not election["clean"]
    assert election["lost"] == 12 and election["committed_lost"] == 12
    assert election["lost_by_producer"] == {"producer": 12}
    assert state.lost_records == 12 and state.partitions[0].log.end == 3
    group = state.group("analytics")
    assert group.committed[0] <= state.partitions[0].high_watermark


def test_a_former_leader_loses_its_unreplicated_tail_and_rejoins_as_a_follower(apply):
    state = initial_state({"replication_factor": 3, "acks": 1})  # partition 0 on brokers 0, 1, 2
    state = produce_many(apply, state, 0, 5)  # no tick yet: the leader has 8, the followers 3, HW 3
    part = state.partitions[0]
    assert (part.leo_of(0), part.leo_of(1), part.high_watermark) == (8, 3, 3)
    state, [stopped] = apply(state, type="broker_stop", broker=0)
    [election] = stopped["data"]["elections"]
    assert election["new_leader"] == 1 and election["clean"] and election["lost"] == 5
    # The old leader's 5 unreplicated records are not part of the log any more: when it comes
    # back it follows b1 from offset 3.
    assert state.partitions[0].leo_of(0) == 3 == state.partitions[0].log.end
    state, [event] = apply(state, type="broker_start", broker=0)
    assert state.partitions[0].leader == 1
    state, _ = apply(state, type="tick", dt_ms=1000)
    assert state.partitions[0].leo_of(0) == 3 and 0 in state.partitions[0].isr


def test_retention_deletes_whole_segments_only(apply):
    state = initial_state({"records": 0, "segment_records": 8})
    state = produce_many(apply, state, 0, 50)
    state, _ = apply(state, type="tick", dt_ms=1000)
    state, [event] = apply(state, type="set_retention", records=10)
    log = state.partitions[0].log
    assert log.start % 8 == 0 and log.start == 40 and log.end == 50
    assert event["data"]["deleted"] == [{"partition": 0, "segments": 5, "records": 40, "log_start": 40}]
    assert [r.offset for r in recent_records(state, 0, 100)] == list(range(40, 50))
    assert state.group("analytics").committed[0] == 40  # its records were deleted: it skips ahead
    state = produce_many(apply, state, 0, 20)
    state, [tick] = apply(state, type="tick", dt_ms=1000)
    assert tick["data"]["retention"][0]["log_start"] == 56


def test_appending_reuses_every_segment_but_the_last(apply):
    state = initial_state({"records": 0, "segment_records": 8})
    state = produce_many(apply, state, 0, 30)
    before = state.partitions[0].log.segments
    state = produce_many(apply, state, 0, 1)
    after = state.partitions[0].log.segments
    assert all(a is b for a, b in zip(before[:-1], after[:-1])) and after[-1] is not before[-1]
    assert [s.base for s in after] == [0, 8, 16, 24]
