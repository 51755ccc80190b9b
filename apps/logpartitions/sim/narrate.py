"""Each event of the log in one sentence, for the room's narration: one small function per kind
(``NARRATE``), each reading that kind's typed data (``events``). Pure: no Django."""
from __future__ import annotations

from typing import Any, Callable

from .cluster import ClusterState
from .events import (
    AssignorSet,
    BrokerStarted,
    BrokerStopped,
    BurstProduced,
    ConfigSet,
    ConsumerSpeedSet,
    ElectionReport,
    FailedAfterAppend,
    MemberJoined,
    MemberLeft,
    OffsetsReset,
    ProduceFailed,
    ProducerRateSet,
    ProducerSet,
    RecordProduced,
    RetentionSet,
    SceneLoaded,
    Ticked,
    Truncated,
    UncleanSet,
)

State = ClusterState | None  # the state after the event (None when the engine has none)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _leader_of(state: State, partition: int) -> str:
    part = state.partitions[partition] if state is not None and partition < len(state.partitions) else None
    return "?" if part is None or part.leader is None else str(part.leader)


def _election(e: ElectionReport) -> str:
    """One partition's leader election, in words: never "bNone" (an offline partition has no leader)."""
    p = e["partition"]
    if e.get("offline"):
        return f"P{p} is offline: no in-sync replica is running, so it has no leader and takes no writes"
    if e.get("old_leader") is None:
        text = f"P{p} is back online: leader b{e['new_leader']}"
    else:
        text = f"P{p} leader b{e['old_leader']} → b{e['new_leader']}"
    if not e.get("clean"):
        text += " (unclean: it was not in sync)"
    committed = e.get("committed_lost", 0)
    acked_only = e.get("lost", 0) - committed
    if committed:
        text += f"; LOST {_plural(committed, 'committed record')}"
    if acked_only > 0:
        text += (f"; LOST {_plural(acked_only, 'record')} the leader alone had acknowledged (acks=1)")
    never_acked = e.get("never_acked", 0)
    if never_acked:
        n = never_acked
        text += (f"; {_plural(n, 'record')} the producer was never told {'was' if n == 1 else 'were'} written "
                 "(acks=all, above the HW) are cut: its request fails and it retries them")
    fire_and_forget = e.get("fire_and_forget", 0)
    if fire_and_forget:
        text += f"; {_plural(fire_and_forget, 'acks=0 record')} above the HW cut, unnoticed (nobody waited)"
    return text


def _after_append(state: State, f: FailedAfterAppend) -> str:
    """acks=all records that reached the HW while the ISR was below min.insync.replicas."""
    part = state.partitions[f["partition"]] if state is not None else None
    isr = "{" + ", ".join(f"b{b}" for b in part.isr) + "}" if part is not None else "the ISR"
    need = state.config.min_insync_replicas if state is not None else "min.insync.replicas"
    n = f["records"]
    return (f"NotEnoughReplicasAfterAppend: {_plural(n, 'record')} of {f['producer']} on P{f['partition']} "
            f"{'is' if n == 1 else 'are'} written, but the ISR {isr} is smaller than min.insync.replicas = {need}, "
            f"so {f['producer']} is told the write failed")


# -- producing -----------------------------------------------------------------------------------

ACK_WORDS = {"acknowledged": "acknowledged", "waiting_for_isr": "waiting for the ISR (acks=all)",
             "fire_and_forget": "not waited for (acks=0)"}


def _record_produced(after: State, d: RecordProduced) -> str:
    if d["chosen_by"] == "key":
        how = (f"key {d['key']!r}: murmur2 = {d.get('hash', 0):,}, & 0x7fffffff = {d.get('positive', 0):,}, "
               f"% {d.get('partitions')} = {d['partition']}")
    else:
        how = f"no key: the sticky partitioner {'switched to' if d.get('sticky_switched') else 'keeps filling'} P{d['partition']}"
    ack = ACK_WORDS.get(d["ack"], d["ack"])
    return f"{d['producer']} wrote {d['value']} to P{d['partition']} at offset {d['offset']} ({how}); leader b{d['leader']}; {ack}."


def _burst_produced(after: State, d: BurstProduced) -> str:
    ex = d.get("example")
    tail = (f" Example: {ex['key']!r} → P{ex['partition']}." if ex else "")
    failed = "; ".join(f"{p['records']:,} to P{p['partition']} failed: {p['error']}"
                       for p in d["per_partition"] if p["error"])
    return (f"{d['producer']} sent a burst of {_plural(d['count'], 'record')}: {d['appended']:,} written over "
            f"{_plural(sum(1 for p in d['per_partition'] if not p['error']), 'partition')}"
            f"{'; ' + failed if failed else ''}.{tail}")


def _produce_failed(after: State, d: ProduceFailed) -> str:
    if "per_partition" in d:  # a burst (or a streaming tick) that landed nowhere
        where = ", ".join(f"P{p['partition']}: {p['error']}" for p in d["per_partition"][:6])
        return f"{d['producer']}'s {_plural(d['count'], 'record')} all failed ({where})."
    if d.get("partition") is None:
        return f"Produce failed: {d['reason']}: no partition has a leader to take the record."
    if d["reason"] == "NotEnoughReplicas":
        return (f"Produce to P{d['partition']} failed: NotEnoughReplicas. The ISR has "
                f"{_plural(len(d.get('isr', [])), 'member')}, min.insync.replicas is {d.get('min_insync')}, and acks=all needs them.")
    return f"Produce to P{d['partition']} failed: {d['reason']} (the partition has no leader)."


def _producer_set(after: State, d: ProducerSet) -> str:
    return f"Producer {d.get('producer')} uses acks={d.get('acks')}."


def _producer_rate_set(after: State, d: ProducerRateSet) -> str:
    if not d["rate"]:
        return f"{d['producer']} stopped streaming."
    keys = "no key (sticky partitioner)" if d["pattern"] == "none" else f"keys {d['pattern']}"
    return f"{d['producer']} streams {d['rate']} records per tick, {keys}."


# -- the clock -----------------------------------------------------------------------------------

def _replication_parts(d: Ticked) -> list[str]:
    parts = []
    if d.get("fetched"):
        parts.append(f"followers fetched {_plural(sum(f['records'] for f in d.get('fetched', [])), 'record')}")
    if d.get("hw_moved"):
        parts.append("HW advanced on " + ", ".join(f"P{h['partition']} to {h['to']}" for h in d.get("hw_moved", [])[:4]))
    if d.get("isr_shrunk"):
        parts.append("ISR shrank: " + ", ".join(f"b{s['broker']} left P{s['partition']}" for s in d.get("isr_shrunk", [])[:4]))
    if d.get("isr_expanded"):
        parts.append("ISR grew: " + ", ".join(f"b{s['broker']} rejoined P{s['partition']}"
                                              for s in d.get("isr_expanded", [])[:4]))
    return parts


def _ticked(after: State, d: Ticked) -> str:
    parts = _replication_parts(d)
    if d.get("acked"):
        parts.append(f"{_plural(sum(a['records'] for a in d.get('acked', [])), 'record')} acknowledged")
    for f in d.get("failed_after_append", [])[:4]:
        parts.append(_after_append(after, f))
    if d.get("retention"):
        parts.append(f"retention deleted {_plural(sum(r['records'] for r in d.get('retention', [])), 'record')} "
                     "in whole segments")
    for r in d.get("offset_resets", [])[:4]:
        parts.append(f"{r['group']} skips P{r['partition']} from offset {r['from']} to {r['to']} (deleted)")
    if d.get("consumed"):
        parts.append(f"consumers read {sum(c['records'] for c in d.get('consumed', [])):,}")
    return f"Tick {d['tick']}: " + ("; ".join(parts) if parts else "nothing to do") + "."


# -- brokers and elections -----------------------------------------------------------------------

def _with_notes(head: str, notes: list[str]) -> str:
    return head + (": " + "; ".join(notes) if notes else "") + "."


def _truncation(after: State, t: Truncated) -> str:
    return (f"its copy of P{t['partition']} drops {_plural(t['from'] - t['to'], 'record')} above the HW "
            f"and follows b{_leader_of(after, t['partition'])}")


def _broker_stopped(after: State, d: BrokerStopped) -> str:
    notes = [_election(e) for e in d.get("elections", [])[:4]]
    if d.get("fenced_from_isr"):
        notes.append("it leaves the ISR of " + ", ".join(f"P{i}" for i in d["fenced_from_isr"]))
    return _with_notes(f"Broker {d.get('broker')} stopped", notes)


def _broker_started(after: State, d: BrokerStarted) -> str:
    notes = [_election(e) for e in d.get("elections", [])[:4]]
    notes += [_truncation(after, t) for t in d.get("truncated", [])[:4]]
    return _with_notes(f"Broker {d.get('broker')} restarted", notes)


def _unclean_set(after: State, d: UncleanSet) -> str:
    notes = [_election(e) for e in d.get("elections", [])[:4]]
    return _with_notes(f"unclean.leader.election.enable = {str(d.get('on')).lower()}", notes)


# -- consumer groups -----------------------------------------------------------------------------

def _rebalanced(who: str, d: MemberJoined | MemberLeft | AssignorSet) -> str:
    rb = d["rebalance"]
    moved, idle = rb["moved"], rb["idle"]
    text = f"{who}: rebalance ({rb['protocol']}, generation {rb['generation']})"
    if moved:
        text += f", {_plural(len(moved), 'partition')} moved"
    if idle:
        text += f"; idle: {', '.join(idle)} (more consumers than partitions)"
    return text + "."


def _member_joined(after: State, d: MemberJoined) -> str:
    return _rebalanced(f"{d.get('member')} joined {d.get('group')}", d)


def _member_left(after: State, d: MemberLeft) -> str:
    return _rebalanced(f"{d.get('member')} left {d.get('group')}", d)


def _assignor_set(after: State, d: AssignorSet) -> str:
    return _rebalanced(f"{d.get('group')} now uses the {d.get('assignor')} assignor", d)


def _consumer_speed_set(after: State, d: ConsumerSpeedSet) -> str:
    return f"{d.get('member')} in {d.get('group')} now reads {d.get('speed')} records per tick."


def _offsets_reset(after: State, d: OffsetsReset) -> str:
    return f"{d.get('group')} offsets reset to {d.get('to')}."


# -- settings and scenes -------------------------------------------------------------------------

def _config_set(after: State, d: ConfigSet) -> str:
    return f"{d['setting']} = {d['value']} (was {d['previous']})."


def _retention_set(after: State, d: RetentionSet) -> str:
    deleted = sum(r["records"] for r in d.get("deleted", []))
    keep = "off" if d.get("records") is None else f"set to keep the last {d['records']:,} records per partition"
    return f"Retention {keep}: {_plural(deleted, 'record')} deleted in whole segments."


def _scene_loaded(after: State, d: SceneLoaded) -> str:
    p = d["params"]
    return (f"New scene: topic {p['topic']}, {p['partitions']} partitions on "
            f"{p['brokers']} brokers, replication factor {p['replication_factor']}.")


# kind -> its sentence, from the state after the event and the event's data (``events.EVENTS``).
NARRATE: dict[str, Callable[[State, Any], str]] = {
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


def narrate(before: State, after: State, event: dict[str, Any]) -> str:
    tell = NARRATE.get(event["kind"])
    if tell is None:
        return str(event["kind"]).replace("_", " ") + "."
    return tell(after, event["data"])
