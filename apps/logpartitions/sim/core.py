"""The distributed log as a decider: ``initial_state``, ``decide`` and ``evolve``.

``decide(state, command, limits)`` checks a command against the cluster and returns the events
it causes, or raises :class:`Rejected` with a sentence for the person who sent it. A failed
produce (NotEnoughReplicas, LeaderNotAvailable) is not a rejected command: it happened, the
picture shows it, so it is an event. ``evolve`` folds one event into a new state; it is pure and
deterministic, so replaying a room's log always rebuilds the same cluster. Chance (where the
sticky partitioner switches to) comes from the command's ``_seed``; the choice or the seed that
fixes it is written into the event, so a replay never re-rolls.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Mapping

from apps.common.sim import Rejected, clean_int
from apps.common.sim import clean_name as _clean_name

from .assignors import ASSIGNORS
from .cluster import (
    DEFAULT_SPEED,
    Acks,
    ClusterState,
    Group,
    Member,
    PendingAck,
    Producer,
    TopicConfig,
    Partition,
    ack_status,
    advance,
    append,
    apply_rebalance,
    apply_retention,
    empty_cluster,
    new_group,
    plan_rebalance,
    produce_error,
    replicate,
    set_unclean,
    settle_acks,
    start_broker,
    stop_broker,
    with_group,
    with_producer,
)
from .events import (
    AssignorSet,
    BrokerStarted,
    BrokerStopped,
    BurstProduced,
    ConfigSet,
    ConsumerSpeedSet,
    MemberJoined,
    MemberLeft,
    OffsetsReset,
    ProduceFailed,
    ProducerRateSet,
    ProducerSet,
    RecordProduced,
    RetentionSet,
    SceneLoaded,
    SceneParams,
    Ticked,
    UncleanSet,
)
from .log import Batch, Log, Run, Segment, burst_plan, sticky_choice
from .murmur import explain_key, murmur2

Event = dict[str, Any]  # {"kind": str, "data": {...}}: plain JSON, stored as is in the log


@dataclass(frozen=True)
class Limits:
    max_partitions: int = 12
    max_brokers: int = 6
    max_name_length: int = 40
    max_value_length: int = 80
    max_burst: int = 100_000
    max_records: int = 2_000_000
    max_consumers_per_group: int = 32
    max_groups: int = 8
    max_producers: int = 8
    max_speed: int = 100_000  # records a consumer reads per tick
    max_tick_ms: int = 60_000
    max_scene_records: int = 1_000


# -- validation helpers -----------------------------------------------------------------------

def clean_name(raw: Any, what: str, limits: Limits) -> str:
    return _clean_name(raw, what, limits.max_name_length)


def clean_bool(raw: Any, what: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("on", "true", "yes", "1", "off", "false", "no", "0"):
        return raw.strip().lower() in ("on", "true", "yes", "1")
    raise Rejected(f"{what} is either on or off.")


def clean_acks(raw: Any) -> Acks:
    """acks: 0 (fire and forget), 1 (the leader has it) or "all" (every in-sync replica; -1 too)."""
    text = str(raw).strip().lower() if isinstance(raw, (int, str)) and not isinstance(raw, bool) else None
    if text in ("0", "1"):
        return int(text)
    if text in ("all", "-1"):
        return "all"
    raise Rejected("acks must be 0, 1 or all.")


def clean_optional_text(raw: Any, what: str, max_length: int) -> str | None:
    """Optional text: missing or blank means none (a blank key is a keyless record)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise Rejected(f"The {what} must be text.")
    text = raw.strip()
    if len(text) > max_length:
        raise Rejected(f"A {what} has at most {max_length} characters.")
    if not text.isprintable():
        raise Rejected(f"A {what} must be printable characters only.")
    return text


def clean_broker(state: ClusterState, raw: Any) -> int:
    return clean_int(raw, "The broker", 0, state.brokers - 1)


# -- scenes (initial_state and load_scene) ----------------------------------------------------

def scene_params(raw: dict[str, Any], limits: Limits = Limits()) -> SceneParams:
    """Check a scene's parameters and fill in the seed's picture for anything not given."""
    partitions = clean_int(raw.get("partitions", 3), "The number of partitions", 1, limits.max_partitions)
    brokers = clean_int(raw.get("brokers", 3), "The number of brokers", 1, limits.max_brokers)
    rf = clean_int(raw.get("replication_factor", min(2, brokers)), "The replication factor", 1, brokers)
    members = raw.get("members", ["consumer-1"])
    if not isinstance(members, list) or len(members) > limits.max_consumers_per_group:
        raise Rejected(f"A scene's consumers are a list of at most {limits.max_consumers_per_group} names.")
    members = [clean_name(m, "consumer", limits) for m in members]
    if len(set(members)) != len(members):
        raise Rejected("A scene's consumer names must be distinct.")
    group = raw.get("group", "analytics")
    assignor = raw.get("assignor", "range")
    if assignor not in ASSIGNORS:
        raise Rejected(f"The assignor is one of {', '.join(ASSIGNORS)}.")
    return {
        "topic": clean_name(raw.get("topic", "orders"), "topic", limits),
        "partitions": partitions,
        "brokers": brokers,
        "replication_factor": rf,
        "min_insync": clean_int(raw.get("min_insync", 1), "min.insync.replicas", 1, rf),
        "unclean": clean_bool(raw.get("unclean", False), "Unclean leader election"),
        "segment_records": clean_int(raw.get("segment_records", 1024), "Records per segment", 4, 1024),
        "producer": clean_name(raw.get("producer", "producer"), "producer", limits),
        "acks": clean_acks(raw.get("acks", "all")),
        "records": clean_int(raw.get("records", 3), "The number of starting records", 0, limits.max_scene_records),
        "group": None if group is None else clean_name(group, "group", limits),
        "members": members if group is not None else [],
        "assignor": assignor,
    }


def build_scene(params: SceneParams, clock_ms: int = 0, tick: int = 0, next_batch_id: int = 0) -> ClusterState:
    config = TopicConfig(name=params["topic"], partitions=params["partitions"],
                         replication_factor=params["replication_factor"], min_insync_replicas=params["min_insync"],
                         unclean_leader_election=params["unclean"], segment_records=params["segment_records"])
    state = empty_cluster(config, params["brokers"], clock_ms, tick=tick, next_batch_id=next_batch_id)
    # The seed's picture: keyless records fill one partition first (the sticky partitioner), so
    # partition 0 reads [0] order_id=1001, [1] order_id=1002, [2] order_id=1003.
    state = with_producer(state, Producer(params["producer"], params["acks"], sticky_partition=0))
    for i in range(params["records"]):
        for event in decide(state, {"type": "produce", "producer": params["producer"], "_seed": f"scene:{i}"}):
            state = evolve(state, event)
    state, _ = replicate(state)  # the scene starts fully replicated and acknowledged
    state, _, _ = settle_acks(state)
    if params["group"] is not None:
        state = with_group(state, new_group(state, params["group"], params["assignor"]))
        for member in params["members"]:
            for event in decide(state, {"type": "group_join", "group": params["group"], "member": member}):
                state = evolve(state, event)
    return state


def initial_state(params: dict[str, Any] | None = None) -> ClusterState:
    """The seed's picture: topic "orders" (3 partitions on 3 brokers, 2 replicas each), a
    producer with acks=all whose three records order_id=1001..1003 sit at offsets 0-2 of
    partition 0, and the group "analytics" with one consumer that has not read them yet."""
    return build_scene(scene_params(params or {}))


# -- decide -----------------------------------------------------------------------------------

def decide(state: ClusterState, command: dict[str, Any], limits: Limits = Limits()) -> list[Event]:
    kind = command.get("type")
    handler = COMMANDS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise Rejected(f"Unknown command {str(kind)[:40]!r} for the distributed log.")
    return handler(state, command, limits)


def _producer(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> tuple[Producer, list[Event]]:
    """The named producer; a new name starts a producer with Kafka's default acks=all."""
    name = clean_name(cmd.get("producer", "producer"), "producer", limits)
    producer = state.producer(name)
    if producer is not None:
        return producer, []
    if len(state.producers) >= limits.max_producers:
        raise Rejected(f"There are already {limits.max_producers} producers, the most this log takes.")
    created: ProducerSet = {"producer": name, "acks": "all", "created": True}
    return Producer(name), [{"kind": "producer_set", "data": created}]


def _room_for(state: ClusterState, count: int, limits: Limits) -> None:
    room = max(limits.max_records - state.total_records, 0)
    if count > room:
        raise Rejected(f"Only {room:,} more records fit (the log holds at most {limits.max_records:,}).")


def _produce(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    producer, events = _producer(state, cmd, limits)
    key = clean_optional_text(cmd.get("key"), "key", limits.max_name_length)
    value = clean_optional_text(cmd.get("value"), "value", limits.max_value_length)
    _room_for(state, 1, limits)
    cfg = state.config
    order_id = state.next_order_id
    data: dict[str, Any] = {"producer": producer.name, "acks": producer.acks, "key": key,
                            "value": value or f"order_id={order_id}", "order_id": order_id}
    if key is not None:
        how = explain_key(key, cfg.partitions)
        partition = int(how["partition"])
        data.update(chosen_by="key", hash=how["hash"], positive=how["positive"], partitions=cfg.partitions)
    else:
        candidates = state.online_partitions
        if not candidates:
            data.update(reason="LeaderNotAvailable", partition=None, count=1, chosen_by="sticky")
            return events + [{"kind": "produce_failed", "data": data}]
        current, fill = producer.sticky_partition, producer.sticky_fill
        if current is not None and current in candidates and fill < cfg.sticky_batch_size:
            partition, switched = current, False
        else:  # the batch is full (or its partition went offline): pick another, by the seed
            partition = sticky_choice(murmur2(f"{cmd.get('_seed', 'seed')}:sticky".encode()), current, candidates)
            switched = True
        data.update(chosen_by="sticky", sticky_switched=switched, sticky_from=current,
                    sticky_fill=1 if switched else fill + 1, sticky_batch_size=cfg.sticky_batch_size,
                    candidates=list(candidates))
    part = state.partitions[partition]
    data.update(partition=partition, leader=part.leader, isr=list(part.isr))
    error = produce_error(part, producer.acks, cfg.min_insync_replicas)
    if error is not None:
        data.update(reason=error, count=1, min_insync=cfg.min_insync_replicas)
        return events + [{"kind": "produce_failed", "data": data}]
    data.update(offset=part.log.end, batch=state.next_batch_id, ack=ack_status(part, producer.acks))
    return events + [{"kind": "record_produced", "data": data}]


def _burst_batch(state: ClusterState, data: Mapping[str, Any]) -> Batch:
    sticky = data.get("sticky_start") or [None, 0]
    return Batch(id=data["batch"], producer=data["producer"], tick=state.tick, count=data["count"],
                 first_order_id=data["first_order_id"], pattern=data["pattern"], seed=data["seed"],
                 num_partitions=data["num_partitions"], sticky_partition=sticky[0], sticky_fill=sticky[1],
                 sticky_batch_size=data.get("sticky_batch_size", 4), candidates=tuple(data.get("candidates", ())),
                 acks=data.get("acks"))


def _produce_burst(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    producer, events = _producer(state, cmd, limits)
    count = clean_int(cmd.get("count"), "The number of records", 1, limits.max_burst)
    pattern = clean_name(cmd.get("pattern", "order-{i}"), "key pattern", limits)
    _room_for(state, count, limits)
    cfg = state.config
    data: dict[str, Any] = {"producer": producer.name, "acks": producer.acks, "pattern": pattern, "count": count,
                            "first_order_id": state.next_order_id, "last_order_id": state.next_order_id + count - 1,
                            "batch": state.next_batch_id, "seed": f"{cmd.get('_seed', 'seed')}:burst",
                            "num_partitions": cfg.partitions}
    keyless = pattern == "none"
    if keyless:
        candidates = state.online_partitions
        if not candidates:
            data.update(reason="LeaderNotAvailable", partition=None)
            return events + [{"kind": "produce_failed", "data": data}]
        data.update(sticky_start=[producer.sticky_partition, producer.sticky_fill],
                    sticky_batch_size=cfg.sticky_batch_size, candidates=list(candidates))
    batch = _burst_batch(state, data)
    plan = burst_plan(batch)
    per_partition = []
    appended = 0
    for part in state.partitions:
        n = len(plan.members[part.index])
        if not n:
            continue
        error = produce_error(part, producer.acks, cfg.min_insync_replicas)
        per_partition.append({"partition": part.index, "records": n, "error": error,
                              "first_offset": None if error else part.log.end,
                              "ack": None if error else ack_status(part, producer.acks)})
        appended += 0 if error else n
    data.update(per_partition=per_partition, appended=appended, failed=count - appended)
    if keyless:
        data["sticky_end"] = [plan.sticky_partition, plan.sticky_fill]
    else:
        first_key = batch.key_of(0)
        assert first_key is not None
        data["example"] = explain_key(first_key, cfg.partitions)
    if not appended:
        reasons = sorted({str(p["error"]) for p in per_partition})
        data.update(reason=reasons[0] if len(reasons) == 1 else " / ".join(reasons), partition=None)
        return events + [{"kind": "produce_failed", "data": data}]
    return events + [{"kind": "burst_produced", "data": data}]


def _set_producer(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    name = clean_name(cmd.get("producer"), "producer", limits)
    acks = clean_acks(cmd.get("acks"))
    existing = state.producer(name)
    if existing is None and len(state.producers) >= limits.max_producers:
        raise Rejected(f"There are already {limits.max_producers} producers, the most this log takes.")
    if existing is not None and existing.acks == acks:
        raise Rejected(f"{name} already sends with acks={acks}.")
    data: ProducerSet = {"producer": name, "acks": acks, "created": existing is None}
    return [{"kind": "producer_set", "data": data}]


def _set_producer_rate(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    """Make a producer send ``rate`` records on every tick of the room clock (0 stops it)."""
    name = clean_name(cmd.get("producer"), "producer", limits)
    producer = state.producer(name)
    if producer is None:
        raise Rejected(f"There is no producer called {name}.")
    rate = clean_int(cmd.get("rate"), "Records per tick", 0, 10_000)
    pattern = clean_name(cmd.get("pattern", producer.pattern), "key pattern", limits)
    if (rate, pattern) == (producer.rate, producer.pattern):
        raise Rejected(f"{name} already sends {rate} records per tick.")
    data: ProducerRateSet = {"producer": name, "rate": rate, "pattern": pattern}
    return [{"kind": "producer_rate_set", "data": data}]


def _tick(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    """Producers with a rate send first; then replication, acks, retention and consumers move."""
    dt = clean_int(cmd.get("dt_ms"), "A tick", 1, limits.max_tick_ms)  # the room clock always says how long
    events: list[Event] = []
    for producer in state.producers:
        if producer.rate <= 0 or state.total_records + producer.rate > limits.max_records:
            continue
        sent = _produce_burst(state, {"producer": producer.name, "count": producer.rate, "pattern": producer.pattern,
                                      "_seed": f"{cmd.get('_seed', 'seed')}:{producer.name}"}, limits)
        for event in sent:
            state = evolve(state, event)
        events.extend(sent)
    _, report = advance(state, dt)
    return events + [{"kind": "ticked", "data": report}]


def _broker_stop(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    broker = clean_broker(state, cmd.get("broker"))
    if not state.brokers_up[broker]:
        raise Rejected(f"Broker {broker} is already stopped.")
    _, report = stop_broker(state, broker)
    return [{"kind": "broker_stopped", "data": report}]


def _broker_start(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    broker = clean_broker(state, cmd.get("broker"))
    if state.brokers_up[broker]:
        raise Rejected(f"Broker {broker} is already running.")
    _, report = start_broker(state, broker)
    return [{"kind": "broker_started", "data": report}]


def _set_unclean(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    on = clean_bool(cmd.get("on"), "Unclean leader election")
    if on == state.config.unclean_leader_election:
        raise Rejected(f"Unclean leader election is already {'on' if on else 'off'}.")
    _, report = set_unclean(state, on)
    return [{"kind": "unclean_set", "data": report}]


def _config_event(state: ClusterState, setting: str, value: int, label: str) -> list[Event]:
    before = getattr(state.config, setting)
    if before == value:
        raise Rejected(f"{label} is already {value:,}.")
    data: ConfigSet = {"setting": setting, "value": value, "previous": before}
    return [{"kind": "config_set", "data": data}]


def _set_min_insync(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    r = state.config.replication_factor
    value = clean_int(cmd.get("value"), "min.insync.replicas", 1, r)
    return _config_event(state, "min_insync_replicas", value, "min.insync.replicas")


def _set_batch_size(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    value = clean_int(cmd.get("size"), "The batch size", 1, 10_000)
    return _config_event(state, "sticky_batch_size", value, "The batch size")


def _set_follower_fetch(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    value = clean_int(cmd.get("records"), "Records a follower fetches per tick", 1, 1_000_000)
    return _config_event(state, "follower_fetch_per_tick", value, "The follower fetch size")


def _set_lag_time(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    value = clean_int(cmd.get("ms"), "replica.lag.time.max.ms", 1, 600_000)
    return _config_event(state, "replica_lag_time_max_ms", value, "replica.lag.time.max.ms")


def _set_retention(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    raw = cmd.get("records")
    value = None if raw in (None, "") else clean_int(raw, "Records to keep per partition", 1, limits.max_records)
    if value == state.config.retention_records:
        raise Rejected("Retention is already set that way.")
    after = replace(state, config=replace(state.config, retention_records=value))
    _, deleted, resets = apply_retention(after)
    data: RetentionSet = {"records": value, "deleted": deleted, "offset_resets": resets}
    return [{"kind": "retention_set", "data": data}]


def _group_and_member(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> tuple[Group, Member]:
    name = clean_name(cmd.get("group"), "group", limits)
    group = state.group(name)
    if group is None:
        raise Rejected(f"There is no consumer group called {name}.")
    member_name = clean_name(cmd.get("member"), "consumer", limits)
    member = group.member(member_name)
    if member is None:
        raise Rejected(f"There is no consumer {member_name} in {name}.")
    return group, member


def _group_join(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    name = clean_name(cmd.get("group"), "group", limits)
    member = clean_name(cmd.get("member"), "consumer", limits)
    speed = clean_int(cmd.get("speed", DEFAULT_SPEED), "Records per tick", 0, limits.max_speed)
    group = state.group(name)
    if group is None:
        if len(state.groups) >= limits.max_groups:
            raise Rejected(f"There are already {limits.max_groups} consumer groups, the most this log takes.")
        group = new_group(state, name)
    elif group.member(member) is not None:
        raise Rejected(f"{member} is already in {name}.")
    elif len(group.members) >= limits.max_consumers_per_group:
        raise Rejected(f"A group has at most {limits.max_consumers_per_group} consumers.")
    names = [m.name for m in group.members] + [member]
    plan = plan_rebalance(group, names, group.assignor, state.config.partitions)
    data: MemberJoined = {"group": name, "member": member, "speed": speed, "created": state.group(name) is None,
                          "rebalance": plan}
    return [{"kind": "member_joined", "data": data}]


def _group_leave(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    group, member = _group_and_member(state, cmd, limits)
    names = [m.name for m in group.members if m.name != member.name]
    plan = plan_rebalance(group, names, group.assignor, state.config.partitions)
    data: MemberLeft = {"group": group.name, "member": member.name, "rebalance": plan}
    return [{"kind": "member_left", "data": data}]


def _set_assignor(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    name = clean_name(cmd.get("group"), "group", limits)
    group = state.group(name)
    if group is None:
        raise Rejected(f"There is no consumer group called {name}.")
    assignor = cmd.get("assignor")
    if assignor not in ASSIGNORS:
        raise Rejected(f"The assignor is one of {', '.join(ASSIGNORS)}.")
    if assignor == group.assignor:
        raise Rejected(f"{name} already uses the {assignor} assignor.")
    plan = plan_rebalance(group, [m.name for m in group.members], assignor, state.config.partitions)
    data: AssignorSet = {"group": name, "assignor": assignor, "rebalance": plan}
    return [{"kind": "assignor_set", "data": data}]


def _set_consumer_speed(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    group, member = _group_and_member(state, cmd, limits)
    speed = clean_int(cmd.get("speed"), "Records per tick", 0, limits.max_speed)
    if speed == member.speed:
        raise Rejected(f"{member.name} already reads {speed:,} records per tick.")
    data: ConsumerSpeedSet = {"group": group.name, "member": member.name, "speed": speed, "previous": member.speed}
    return [{"kind": "consumer_speed_set", "data": data}]


def _reset_offsets(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    """Rewind a group to the earliest record (or skip to the latest): a log can be read again."""
    name = clean_name(cmd.get("group"), "group", limits)
    group = state.group(name)
    if group is None:
        raise Rejected(f"There is no consumer group called {name}.")
    to = cmd.get("to", "earliest")
    if to not in ("earliest", "latest"):
        raise Rejected("Offsets reset to the earliest or the latest record.")
    offsets = [p.log.start if to == "earliest" else p.high_watermark for p in state.partitions]
    if list(group.committed) == offsets:
        raise Rejected(f"{name} is already at the {to} offsets.")
    data: OffsetsReset = {"group": name, "to": to, "offsets": offsets, "previous": list(group.committed)}
    return [{"kind": "offsets_reset", "data": data}]


def _load_scene(state: ClusterState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    """Replace the cluster with a prepared scene (a lesson step starts from a known picture)."""
    params = scene_params({k: v for k, v in cmd.items() if k not in ("type", "_seed")}, limits)
    data: SceneLoaded = {"params": params}
    return [{"kind": "scene_loaded", "data": data}]


COMMANDS = {
    "produce": _produce,
    "produce_burst": _produce_burst,
    "set_producer": _set_producer,
    "tick": _tick,
    "broker_stop": _broker_stop,
    "set_producer_rate": _set_producer_rate,
    "broker_start": _broker_start,
    "set_unclean": _set_unclean,
    "set_min_insync": _set_min_insync,
    "set_batch_size": _set_batch_size,
    "set_follower_fetch": _set_follower_fetch,
    "set_lag_time": _set_lag_time,
    "set_retention": _set_retention,
    "group_join": _group_join,
    "group_leave": _group_leave,
    "set_assignor": _set_assignor,
    "set_consumer_speed": _set_consumer_speed,
    "reset_offsets": _reset_offsets,
    "load_scene": _load_scene,
}


# -- evolve: one small function per event kind --------------------------------------------------

def _record_produced(state: ClusterState, data: RecordProduced) -> ClusterState:
    batch = Batch(id=state.next_batch_id, producer=data["producer"], tick=state.tick,
                  first_order_id=data["order_id"], key=data["key"], value=data["value"], acks=data["acks"])
    state = append(state, data["partition"], Run(batch, 0, 1), data["acks"])
    state = _with_sticky(state, data["producer"], data.get("chosen_by"), data["partition"], data.get("sticky_fill"))
    return replace(state, next_order_id=state.next_order_id + 1, next_batch_id=state.next_batch_id + 1)


def _burst_produced(state: ClusterState, data: BurstProduced) -> ClusterState:
    batch = _burst_batch(state, data)
    for outcome in data["per_partition"]:
        if outcome["error"] is None:
            state = append(state, outcome["partition"], Run(batch, 0, outcome["records"]), data["acks"])
    producer = _known_producer(state, data["producer"])
    producer = replace(producer, sent=producer.sent + data["failed"], failed=producer.failed + data["failed"])
    state = with_producer(state, _with_sticky_end(producer, data.get("sticky_end")))
    return replace(state, next_order_id=state.next_order_id + data["count"], next_batch_id=state.next_batch_id + 1)


def _produce_failed(state: ClusterState, data: ProduceFailed) -> ClusterState:
    count = data.get("count", 1)
    producer = _known_producer(state, data["producer"])
    producer = replace(producer, sent=producer.sent + count, failed=producer.failed + count)
    # A keyless burst that failed everywhere still moved the partitioner.
    state = with_producer(state, _with_sticky_end(producer, data.get("sticky_end")))
    state = _with_sticky(state, data["producer"], data.get("chosen_by"), data["partition"], data.get("sticky_fill"))
    return replace(state, next_order_id=state.next_order_id + count)


def _producer_rate_set(state: ClusterState, data: ProducerRateSet) -> ClusterState:
    producer = _known_producer(state, data["producer"])
    return with_producer(state, replace(producer, rate=data["rate"], pattern=data["pattern"]))


def _producer_set(state: ClusterState, data: ProducerSet) -> ClusterState:
    return with_producer(state, replace(_known_producer(state, data["producer"]), acks=data["acks"]))


def _ticked(state: ClusterState, data: Ticked) -> ClusterState:
    return advance(state, data["dt_ms"])[0]


def _broker_stopped(state: ClusterState, data: BrokerStopped) -> ClusterState:
    return stop_broker(state, data["broker"])[0]


def _broker_started(state: ClusterState, data: BrokerStarted) -> ClusterState:
    return start_broker(state, data["broker"])[0]


def _unclean_set(state: ClusterState, data: UncleanSet) -> ClusterState:
    return set_unclean(state, data["on"])[0]


def _config_set(state: ClusterState, data: ConfigSet) -> ClusterState:
    change: dict[str, Any] = {data["setting"]: data["value"]}  # one of TopicConfig's int settings
    return replace(state, config=replace(state.config, **change))


def _retention_set(state: ClusterState, data: RetentionSet) -> ClusterState:
    state = replace(state, config=replace(state.config, retention_records=data["records"]))
    return apply_retention(state)[0]


def _member_joined(state: ClusterState, data: MemberJoined) -> ClusterState:
    group = state.group(data["group"]) or new_group(state, data["group"])
    members = list(group.members) + [Member(data["member"], data["speed"])]
    return with_group(state, apply_rebalance(group, members, data["rebalance"]))


def _member_left(state: ClusterState, data: MemberLeft) -> ClusterState:
    group = _known_group(state, data["group"])
    members = [m for m in group.members if m.name != data["member"]]
    return with_group(state, apply_rebalance(group, members, data["rebalance"]))


def _assignor_set(state: ClusterState, data: AssignorSet) -> ClusterState:
    group = _known_group(state, data["group"])
    return with_group(state, apply_rebalance(group, list(group.members), data["rebalance"]))


def _consumer_speed_set(state: ClusterState, data: ConsumerSpeedSet) -> ClusterState:
    group = _known_group(state, data["group"])
    sped = tuple(replace(m, speed=data["speed"]) if m.name == data["member"] else m for m in group.members)
    return with_group(state, replace(group, members=sped))


def _offsets_reset(state: ClusterState, data: OffsetsReset) -> ClusterState:
    group = _known_group(state, data["group"])
    return with_group(state, replace(group, committed=tuple(data["offsets"])))


def _scene_loaded(state: ClusterState, data: SceneLoaded) -> ClusterState:
    return build_scene(data["params"], clock_ms=state.clock_ms, tick=state.tick, next_batch_id=state.next_batch_id)


# kind -> how it changes the state; each takes that kind's data (``events.EVENTS``).
EVOLVE: dict[str, Callable[[ClusterState, Any], ClusterState]] = {
    "record_produced": _record_produced,
    "burst_produced": _burst_produced,
    "produce_failed": _produce_failed,
    "producer_set": _producer_set,
    "producer_rate_set": _producer_rate_set,
    "ticked": _ticked,
    "broker_stopped": _broker_stopped,
    "broker_started": _broker_started,
    "unclean_set": _unclean_set,
    "config_set": _config_set,
    "retention_set": _retention_set,
    "member_joined": _member_joined,
    "member_left": _member_left,
    "assignor_set": _assignor_set,
    "consumer_speed_set": _consumer_speed_set,
    "offsets_reset": _offsets_reset,
    "scene_loaded": _scene_loaded,
}


def evolve(state: ClusterState, event: Event) -> ClusterState:
    fold = EVOLVE.get(event["kind"])
    if fold is None:
        raise ValueError(f"unknown distributed log event {event['kind']!r}")
    return fold(state, event["data"])


def _known_producer(state: ClusterState, name: str) -> Producer:
    return state.producer(name) or Producer(name)


def _known_group(state: ClusterState, name: str) -> Group:
    group = state.group(name)
    if group is None:
        raise ValueError(f"event for unknown group {name!r}")
    return group


def _with_sticky(state: ClusterState, name: str, chosen_by: str | None, partition: int | None,
                 fill: int | None) -> ClusterState:
    """A keyless record moves its producer's sticky partitioner on (even when the send fails:
    the record was in the batch)."""
    if chosen_by != "sticky" or partition is None or fill is None:
        return state
    producer = _known_producer(state, name)
    return with_producer(state, replace(producer, sticky_partition=partition, sticky_fill=fill))


def _with_sticky_end(producer: Producer, end: list[int | None] | None) -> Producer:
    """A keyless burst leaves its producer's partitioner where the burst's plan ended."""
    if end is None:
        return producer
    fill = end[1]
    return replace(producer, sticky_partition=end[0], sticky_fill=fill if fill is not None else 0)


# -- JSON -------------------------------------------------------------------------------------

def _batch_json(batch: Batch) -> dict[str, Any]:
    out = asdict(batch)
    out["candidates"] = list(batch.candidates)
    return out


def to_json(state: ClusterState) -> dict[str, Any]:
    batches: dict[int, Batch] = {}
    partitions = []
    for part in state.partitions:
        segments = []
        for seg in part.log.segments:
            for run in seg.runs:
                batches.setdefault(run.batch.id, run.batch)
            segments.append([seg.base, seg.size, [[run.batch.id, run.first, run.size] for run in seg.runs]])
        partitions.append({
            "index": part.index, "replicas": list(part.replicas), "leader": part.leader, "isr": list(part.isr),
            "leo": list(part.leo), "caught_up_ms": list(part.caught_up_ms), "high_watermark": part.high_watermark,
            "leader_epoch": part.leader_epoch,
            "log": {"start": part.log.start, "end": part.log.end, "segment_size": part.log.segment_size,
                    "segments": segments},
        })
    return {
        "config": asdict(state.config),
        "brokers_up": list(state.brokers_up),
        "partitions": partitions,
        "batches": [_batch_json(batches[i]) for i in sorted(batches)],
        "producers": [{**asdict(p), "pending": [[a.partition, a.start, a.end] for a in p.pending]}
                      for p in state.producers],
        "groups": [{"name": g.name, "assignor": g.assignor, "generation": g.generation,
                    "committed": list(g.committed), "lag_history": list(g.lag_history),
                    "members": [{"name": m.name, "speed": m.speed, "partitions": list(m.partitions),
                                 "consumed": m.consumed} for m in g.members]} for g in state.groups],
        "clock_ms": state.clock_ms,
        "tick": state.tick,
        "next_order_id": state.next_order_id,
        "next_batch_id": state.next_batch_id,
        "lost_records": state.lost_records,
    }


def from_json(data: dict[str, Any]) -> ClusterState:
    batches = {b["id"]: Batch(**{**b, "candidates": tuple(b["candidates"])}) for b in data["batches"]}
    partitions = []
    for p in data["partitions"]:
        log = p["log"]
        segments = tuple(Segment(base, size, tuple(Run(batches[b], first, count) for b, first, count in runs))
                         for base, size, runs in log["segments"])
        partitions.append(Partition(
            index=p["index"], replicas=tuple(p["replicas"]), leader=p["leader"], isr=tuple(p["isr"]),
            leo=tuple(p["leo"]), caught_up_ms=tuple(p["caught_up_ms"]), high_watermark=p["high_watermark"],
            leader_epoch=p["leader_epoch"],
            log=Log(log["start"], log["end"], segments, log["segment_size"]),
        ))
    producers = tuple(
        Producer(**{**p, "pending": tuple(PendingAck(*a) for a in p["pending"])}) for p in data["producers"]
    )
    groups = tuple(
        Group(name=g["name"], assignor=g["assignor"], generation=g["generation"], committed=tuple(g["committed"]),
              lag_history=tuple(g["lag_history"]),
              members=tuple(Member(m["name"], m["speed"], tuple(m["partitions"]), m["consumed"]) for m in g["members"]))
        for g in data["groups"]
    )
    return ClusterState(
        config=TopicConfig(**data["config"]),
        brokers_up=tuple(data["brokers_up"]),
        partitions=tuple(partitions),
        producers=producers,
        groups=groups,
        clock_ms=data["clock_ms"],
        tick=data["tick"],
        next_order_id=data["next_order_id"],
        next_batch_id=data["next_batch_id"],
        lost_records=data["lost_records"],
    )
