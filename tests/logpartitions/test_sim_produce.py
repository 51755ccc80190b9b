"""Producing: where records go (key hash, sticky batches), offsets, and what the producer hears."""
from __future__ import annotations

from apps.logpartitions.sim import initial_state, partition_for, pending_acks, recent_records


def test_initial_state_is_the_seeds_picture():
    state = initial_state()
    assert state.config.name == "orders" and state.config.partitions == 3 and state.brokers == 3
    assert [(r.offset, r.value) for r in recent_records(state, 0, 10)] == [
        (0, "order_id=1001"), (1, "order_id=1002"), (2, "order_id=1003")]
    assert [p.high_watermark for p in state.partitions] == [3, 0, 0]
    assert state.producer("producer").acks == "all" and pending_acks(state) == {"producer": []}
    group = state.group("analytics")
    assert [(m.name, m.partitions) for m in group.members] == [("consumer-1", (0, 1, 2))]
    assert group.committed == (0, 0, 0)


def test_replicas_are_laid_out_round_robin_with_the_preferred_leader_first():
    state = initial_state({"partitions": 4, "brokers": 3, "replication_factor": 2, "records": 0})
    assert [p.replicas for p in state.partitions] == [(0, 1), (1, 2), (2, 0), (0, 1)]
    assert [p.leader for p in state.partitions] == [0, 1, 2, 0]


def test_keyed_record_goes_to_murmur2_partition_and_says_why(apply):
    state, [event] = apply(initial_state(), type="produce", key="order-42")
    data = event["data"]
    assert event["kind"] == "record_produced"
    assert data["partition"] == partition_for("order-42", 3) == data["positive"] % 3
    assert data["positive"] == data["hash"] & 0x7FFFFFFF and data["chosen_by"] == "key"
    assert data["offset"] == (3 if data["partition"] == 0 else 0)
    assert recent_records(state, data["partition"], 1)[0].key == "order-42"


def test_keyless_records_fill_one_partition_until_the_batch_is_full(apply):
    state = initial_state()  # three records already in the sticky batch on partition 0
    state, [fourth] = apply(state, type="produce")
    assert fourth["data"]["partition"] == 0 and not fourth["data"]["sticky_switched"]
    state, [fifth] = apply(state, type="produce", _seed="s5")
    assert fifth["data"]["sticky_switched"] and fifth["data"]["partition"] != 0
    partition = fifth["data"]["partition"]
    for i in range(3):
        state, [event] = apply(state, type="produce", _seed=f"s{i}")
        assert event["data"]["partition"] == partition


def test_acks_all_waits_for_the_isr_then_is_acknowledged_on_a_tick(apply):
    state, [event] = apply(initial_state(), type="produce", key="k")
    p = event["data"]["partition"]
    assert event["data"]["ack"] == "waiting_for_isr"
    assert pending_acks(state)["producer"] == [{"partition": p, "start": event["data"]["offset"],
                                                "end": event["data"]["offset"] + 1, "records": 1}]
    state, [tick] = apply(state, type="tick", dt_ms=1000)
    assert tick["data"]["acked"] == [{"producer": "producer", "partition": p, "records": 1}]
    assert pending_acks(state)["producer"] == []
    assert state.producer("producer").acknowledged == 4


def test_acks_1_is_acknowledged_at_once_and_acks_0_never(apply):
    """acks=1: the leader answers as soon as it has the record. acks=0: nobody answers, so the
    record counts as sent, never as acknowledged (and is not waited for either)."""
    state, _ = apply(initial_state(), type="set_producer", producer="fast", acks=1)
    state, [one] = apply(state, type="produce", producer="fast", key="a")
    state, _ = apply(state, type="set_producer", producer="fast", acks="0")
    state, [zero] = apply(state, type="produce", producer="fast", key="a")
    assert (one["data"]["ack"], zero["data"]["ack"]) == ("acknowledged", "fire_and_forget")
    fast = state.producer("fast")
    assert (fast.pending, fast.sent, fast.acknowledged) == ((), 2, 1)


def test_a_new_producer_name_starts_a_producer_with_acks_all(apply):
    state, events = apply(initial_state(), type="produce", producer="web", key="x")
    assert [e["kind"] for e in events] == ["producer_set", "record_produced"]
    assert state.producer("web").acks == "all"


def key_on(partition: int, partitions: int = 3) -> str:
    return next(k for k in (f"key-{i}" for i in range(1000)) if partition_for(k, partitions) == partition)


def test_acks_all_below_min_insync_fails_with_not_enough_replicas(apply):
    state, _ = apply(initial_state(), type="set_min_insync", value=2)
    state, _ = apply(state, type="set_lag_time", ms=1000)
    state, _ = apply(state, type="broker_stop", broker=1)  # partition 0's follower
    state, _ = apply(state, type="produce", key=key_on(0))  # broker 1 misses it, and falls behind
    for _ in range(3):
        state, _ = apply(state, type="tick", dt_ms=1000)
    assert state.partitions[0].isr == (0,)
    end, failed = state.partitions[0].log.end, state.producer("producer").failed
    state, [event] = apply(state, type="produce", key=key_on(0))
    assert event["kind"] == "produce_failed"
    assert event["data"]["reason"] == "NotEnoughReplicas" and event["data"]["partition"] == 0
    assert event["data"]["isr"] == [0] and event["data"]["min_insync"] == 2
    assert state.partitions[0].log.end == end and state.producer("producer").failed == failed + 1


def test_acks_1_still_writes_when_the_isr_is_small(apply):
    state, _ = apply(initial_state({"min_insync": 2, "acks": 1}), type="broker_stop", broker=1)
    state, _ = apply(state, type="produce", key=key_on(0))
    for _ in range(5):
        state, _ = apply(state, type="tick", dt_ms=1000)
    assert state.partitions[0].isr == (0,)
    state, [event] = apply(state, type="produce", key=key_on(0))
    assert event["kind"] == "record_produced" and event["data"]["ack"] == "acknowledged"


def test_pending_acks_fail_after_append_if_the_isr_shrinks_below_min_insync(apply):
    state = initial_state({"min_insync": 2, "records": 0})
    state, _ = apply(state, type="set_follower_fetch", records=1)  # the follower falls behind
    key = next(k for k in (f"k{i}" for i in range(100)) if partition_for(k, 3) == 0)
    for _ in range(10):
        state, [event] = apply(state, type="produce", key=key)
        assert event["data"]["ack"] == "waiting_for_isr"
    failures = []
    for _ in range(6):
        state, [tick] = apply(state, type="tick", dt_ms=1000)
        failures += tick["data"].get("failed_after_append", [])
    assert state.partitions[0].isr == (0,)  # the slow follower dropped out after replica.lag.time.max.ms
    assert failures and {f["reason"] for f in failures} == {"NotEnoughReplicasAfterAppend"}
    assert sum(f["records"] for f in failures) == state.producer("producer").failed >= 1
    assert state.partitions[0].high_watermark == 10  # the records are committed; the producer heard an error


def test_stopping_a_follower_fences_it_out_of_the_isr_at_once(apply):
    state = initial_state({"min_insync": 2})
    state, [stopped] = apply(state, type="broker_stop", broker=1)  # a follower of partition 0
    assert 1 not in state.partitions[0].isr
    assert 0 in stopped["data"]["fenced_from_isr"]
    state, [event] = apply(state, type="produce")  # acks=all, ISR {b0} < min.insync 2
    assert event["kind"] == "produce_failed" and event["data"]["reason"] == "NotEnoughReplicas"


def test_produce_to_an_offline_partition_fails_with_leader_not_available(apply):
    state = initial_state({"replication_factor": 1})
    state, _ = apply(state, type="broker_stop", broker=0)
    assert state.partitions[0].leader is None
    state, [event] = apply(state, type="produce", key="k0")
    keyed_partition = event["data"]["partition"]
    assert (event["kind"] == "produce_failed") == (keyed_partition == 0)
    state, [keyless] = apply(state, type="produce", _seed="x")
    assert keyless["data"]["partition"] in (1, 2)  # the sticky partitioner skips offline partitions


def test_burst_of_keyed_records_lands_on_the_murmur2_partitions_in_order(apply):
    state, [event] = apply(initial_state(), type="produce_burst", count=500, pattern="order-{i}")
    assert event["kind"] == "burst_produced" and event["data"]["appended"] == 500
    seen = []
    for part in state.partitions:
        for record in recent_records(state, part.index, 1000):
            if record.key is not None:
                assert partition_for(record.key, 3) == part.index
                seen.append(record.key)
    assert sorted(seen) == sorted(f"order-{1004 + i}" for i in range(500))
    example = event["data"]["example"]
    assert example["key"] == "order-1004" and example["partition"] == partition_for("order-1004", 3)


def test_keyless_burst_switches_partition_every_batch(apply):
    state, _ = apply(initial_state({"records": 0}), type="set_batch_size", size=10)
    state, [event] = apply(state, type="produce_burst", count=100, pattern="none")
    per = {p["partition"]: p["records"] for p in event["data"]["per_partition"]}
    assert sum(per.values()) == 100 and all(n % 10 == 0 for n in per.values())
    assert event["data"]["sticky_end"] == [event["data"]["sticky_end"][0], 10]


def test_random_users_burst_repeats_users_and_keeps_each_users_order(apply):
    state, _ = apply(initial_state({"records": 0}), type="produce_burst", count=3000, pattern="random-users")
    for part in state.partitions:
        last: dict[str, int] = {}
        for record in recent_records(state, part.index, 3000):
            order_id = int(record.value.split("=")[1])
            assert last.get(record.key, 0) < order_id
            last[record.key] = order_id
    keys = {r.key for p in range(3) for r in recent_records(state, p, 3000)}
    assert len(keys) < 1000  # user-0 .. user-999: the same users come back


def test_a_producer_with_a_rate_sends_on_every_tick_of_the_clock(apply):
    state = initial_state({"records": 0})
    state, [event] = apply(state, type="set_producer_rate", producer="producer", rate=5, pattern="order-{i}")
    assert event["kind"] == "producer_rate_set"
    state, events = apply(state, type="tick", dt_ms=1000)
    assert [e["kind"] for e in events] == ["burst_produced", "ticked"]
    assert state.total_records == 5
    state, events = apply(state, type="tick", dt_ms=1000)
    assert state.total_records == 10
    state, _ = apply(state, type="set_producer_rate", producer="producer", rate=0)
    state, events = apply(state, type="tick", dt_ms=1000)
    assert [e["kind"] for e in events] == ["ticked"] and state.total_records == 10
