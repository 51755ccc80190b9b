"""The cluster's state and the rules that change it: appends, replication, elections, consumers.

Everything here is a pure function from a state to a new state (plus a small report of what
happened, which ``core`` writes into the event). ``core.decide`` runs a rule to learn its
outcome; ``core.evolve`` runs the same rule again on replay and gets the same state.

Kafka's rules, as modelled:

- Replica placement: partition ``p`` lives on brokers ``(p + j) % B`` for ``j < R``; the first
  is the preferred leader (Kafka's round-robin layout with its random start fixed at 0).
- The leader's log is the partition's log. A follower copies a prefix of it, so a follower is
  just its log end offset (LEO). The high watermark (HW) is the smallest LEO in the ISR.
- On each tick every follower on a running broker fetches up to ``follower_fetch_per_tick``
  records. A follower that is behind the leader and has not been caught up for more than
  ``replica_lag_time_max_ms`` leaves the ISR; one that reaches the leader's LEO rejoins.
  A stopped broker is fenced at once: it leaves the ISR of every partition it follows (unless
  it is the last ISR member of an offline partition), as Kafka's controller does, so the HW
  does not wait for it.
- When a leader's broker stops, the controller elects the first running ISR member in replica
  order. With none: the partition goes offline (the ISR is left as it was, so a returning ISR
  member can lead again without loss), unless unclean leader election is on: then the first
  running replica leads, its log is the truth and everything above its LEO is cut. What was
  cut counts as lost when it had been committed or acknowledged (``classify_truncated``).
- A restarted broker's replicas come back as followers and first truncate to the HW.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, cast

from .assignors import assign, is_cooperative
from .events import (
    Acked,
    BrokerStarted,
    BrokerStopped,
    Consumed,
    ElectionReport,
    FailedAfterAppend,
    OffsetReset,
    Rebalance,
    RetentionDeleted,
    Ticked,
    Truncated,
    UncleanSet,
)
from .log import Log, Run

LAG_HISTORY = 60  # ticks of total lag kept per group, for the small chart
DEFAULT_SPEED = 2  # records a consumer reads per tick
Acks = int | str  # 0, 1 or "all"


@dataclass(frozen=True)
class TopicConfig:
    name: str = "orders"
    partitions: int = 3
    replication_factor: int = 2
    min_insync_replicas: int = 1
    unclean_leader_election: bool = False
    sticky_batch_size: int = 4  # keyless records sent to one partition before switching
    follower_fetch_per_tick: int = 100_000
    replica_lag_time_max_ms: int = 3_000
    retention_records: int | None = None  # keep at least the last N records per partition
    segment_records: int = 1024


@dataclass(frozen=True)
class Partition:
    index: int
    replicas: tuple[int, ...]  # broker ids; the first is the preferred leader
    leader: int | None  # None: offline
    isr: tuple[int, ...]  # in-sync replicas, in replica order
    leo: tuple[int, ...]  # per replica (same order as ``replicas``): its log end offset
    caught_up_ms: tuple[int, ...]  # per replica: when it last had everything the leader had
    high_watermark: int
    leader_epoch: int
    log: Log

    def leo_of(self, broker: int) -> int:
        return self.leo[self.replicas.index(broker)]

    @property
    def online(self) -> bool:
        return self.leader is not None


@dataclass(frozen=True)
class PendingAck:
    """acks=all records appended at ``start``..``end - 1`` of a partition, waiting for the ISR."""

    partition: int
    start: int
    end: int


@dataclass(frozen=True)
class Producer:
    name: str
    acks: Acks = "all"
    sticky_partition: int | None = None  # keyless records go here until the batch is full
    sticky_fill: int = 0
    pending: tuple[PendingAck, ...] = ()
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    lost: int = 0  # acknowledged (or committed) records later cut by a leader election
    rate: int = 0  # records it sends on every tick of the room clock (0: only when told to)
    pattern: str = "order-{i}"  # the keys of those records ("none": keyless)

    @property
    def waiting(self) -> int:
        return sum(p.end - p.start for p in self.pending)


@dataclass(frozen=True)
class Member:
    name: str
    speed: int = DEFAULT_SPEED
    partitions: tuple[int, ...] = ()
    consumed: int = 0


@dataclass(frozen=True)
class Group:
    name: str
    assignor: str = "range"
    members: tuple[Member, ...] = ()  # sorted by member id
    committed: tuple[int, ...] = ()  # per partition: the next offset the group will read
    generation: int = 0
    lag_history: tuple[int, ...] = ()

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True)
class ClusterState:
    config: TopicConfig
    brokers_up: tuple[bool, ...]
    partitions: tuple[Partition, ...]
    producers: tuple[Producer, ...] = ()
    groups: tuple[Group, ...] = ()
    clock_ms: int = 0
    tick: int = 0
    next_order_id: int = 1001  # records are "order_id=1001", "order_id=1002", ... as in the seed
    next_batch_id: int = 0
    lost_records: int = 0

    @property
    def brokers(self) -> int:
        return len(self.brokers_up)

    @cached_property
    def total_records(self) -> int:
        return sum(len(p.log) for p in self.partitions)

    @cached_property
    def online_partitions(self) -> tuple[int, ...]:
        return tuple(p.index for p in self.partitions if p.online)

    def producer(self, name: str) -> Producer | None:
        return next((p for p in self.producers if p.name == name), None)

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    def lag(self, group: Group) -> tuple[int, ...]:
        """Per partition: high watermark minus the group's committed offset."""
        return tuple(p.high_watermark - c for p, c in zip(self.partitions, group.committed))


# -- building ---------------------------------------------------------------------------------

def replica_layout(partition: int, brokers: int, replication_factor: int) -> tuple[int, ...]:
    return tuple((partition + j) % brokers for j in range(replication_factor))


def empty_cluster(config: TopicConfig, brokers: int, clock_ms: int = 0, tick: int = 0,
                  next_batch_id: int = 0) -> ClusterState:
    r = config.replication_factor
    partitions = tuple(
        Partition(index=p, replicas=replica_layout(p, brokers, r), leader=p % brokers,
                  isr=replica_layout(p, brokers, r), leo=(0,) * r, caught_up_ms=(clock_ms,) * r,
                  high_watermark=0, leader_epoch=0, log=Log(segment_size=config.segment_records))
        for p in range(config.partitions)
    )
    return ClusterState(config=config, brokers_up=(True,) * brokers, partitions=partitions, clock_ms=clock_ms,
                        tick=tick, next_batch_id=next_batch_id)


def with_partition(state: ClusterState, part: Partition) -> ClusterState:
    parts = state.partitions[:part.index] + (part,) + state.partitions[part.index + 1:]
    return replace(state, partitions=parts)


def with_producer(state: ClusterState, producer: Producer) -> ClusterState:
    if state.producer(producer.name) is None:
        return replace(state, producers=state.producers + (producer,))
    return replace(state, producers=tuple(producer if p.name == producer.name else p for p in state.producers))


def with_group(state: ClusterState, group: Group) -> ClusterState:
    if state.group(group.name) is None:
        return replace(state, groups=state.groups + (group,))
    return replace(state, groups=tuple(group if g.name == group.name else g for g in state.groups))


def with_high_watermark(part: Partition) -> Partition:
    """HW = the smallest LEO in the ISR: the first offset not yet on every in-sync replica."""
    if part.leader is None:
        return part
    hw = min(part.leo_of(b) for b in part.isr)
    return part if hw == part.high_watermark else replace(part, high_watermark=hw)


# -- producing --------------------------------------------------------------------------------

def append(state: ClusterState, partition: int, run: Run, acks: Acks) -> ClusterState:
    """The leader appends ``run``; the producer's ack is settled or left pending."""
    part = state.partitions[partition]
    assert part.leader is not None, "append to an offline partition"
    start = part.log.end
    log = part.log.append(run.batch, run.first, run.size)
    leo = list(part.leo)
    leo[part.replicas.index(part.leader)] = log.end
    part = with_high_watermark(replace(part, log=log, leo=tuple(leo)))
    state = with_partition(state, part)
    producer = state.producer(run.batch.producer) or Producer(run.batch.producer)
    # acks=1: the leader answers at once. acks=0: nobody answers, so nothing is acknowledged.
    acked, pending = (0 if acks == 0 else run.size), producer.pending
    if acks == "all" and part.high_watermark < log.end:
        acked = 0
        last = pending[-1] if pending else None
        if last is not None and last.partition == partition and last.end == start:
            pending = pending[:-1] + (PendingAck(partition, last.start, log.end),)
        else:
            pending = pending + (PendingAck(partition, start, log.end),)
    producer = replace(producer, sent=producer.sent + run.size, acknowledged=producer.acknowledged + acked,
                       pending=pending)
    return with_producer(state, producer)


def ack_status(part: Partition, acks: Acks) -> str:
    """What the producer hears right after the leader appends."""
    if acks == 0:
        return "fire_and_forget"
    if acks == 1 or part.isr == (part.leader,):
        return "acknowledged"
    return "waiting_for_isr"


def produce_error(part: Partition, acks: Acks, min_insync: int) -> str | None:
    if part.leader is None:
        return "LeaderNotAvailable"
    if acks == "all" and len(part.isr) < min_insync:
        return "NotEnoughReplicas"
    return None


# -- leader election --------------------------------------------------------------------------

def elect_leader(part: Partition, up: tuple[bool, ...], unclean: bool,
                 clock_ms: int) -> tuple[Partition, ElectionReport | None, list[Run]]:
    """The controller's choice when a partition's leader is gone (no-op if it has a live one)."""
    if part.leader is not None and up[part.leader]:
        return part, None, []
    old = part.leader
    live_isr = [b for b in part.replicas if b in part.isr and up[b]]
    live = [b for b in part.replicas if up[b]]
    if live_isr:
        leader, clean, isr = live_isr[0], True, tuple(live_isr)
    elif unclean and live:
        leader, clean, isr = live[0], False, (live[0],)
    else:
        if old is None:
            return part, None, []
        offline: ElectionReport = {"partition": part.index, "old_leader": old, "new_leader": None, "clean": True,
                                   "offline": True, "lost": 0, "committed_lost": 0, "isr": list(part.isr)}
        return replace(part, leader=None), offline, []
    new_end = part.leo_of(leader)
    log, removed = part.log.truncate(new_end)
    # The followers follow the new leader: anything they hold beyond its log end is dropped.
    leo = tuple(min(x, log.end) for x in part.leo)
    caught = tuple(clock_ms if b in isr else t for b, t in zip(part.replicas, part.caught_up_ms))
    new = replace(part, leader=leader, isr=isr, leo=leo, caught_up_ms=caught, log=log,
                  leader_epoch=part.leader_epoch + 1)
    new = with_high_watermark(new) if clean else replace(new, high_watermark=log.end)
    report: ElectionReport = {
        "partition": part.index, "old_leader": old, "new_leader": leader, "clean": clean, "offline": False,
        # Everything cut from the old leader's log (not counting what retention had deleted);
        # _settle_truncation splits it into lost (acknowledged or committed), never acknowledged
        # (acks=all, retried) and fire-and-forget (acks=0).
        "truncated": sum(run.size for run in removed), "lost": 0,
        "committed_lost": max(0, part.high_watermark - max(log.end, part.log.start)),
        "isr": list(isr), "leader_epoch": new.leader_epoch, "log_end": log.end}
    return new, report, removed


def classify_truncated(removed: list[Run], first: int, old_hw: int, partition: int,
                       pending: dict[str, tuple[PendingAck, ...]]) -> dict[str, dict[str, int]]:
    """Who loses what when a partition's log is cut back to a new leader's log end.

    A truncated record is *lost* (Kafka's sense: data the system said it had is gone) when
    - it was below the old high watermark: committed, on every in-sync replica, maybe already
      read by a consumer. Only an unclean election truncates below the HW; or
    - it was above the HW but its producer used acks=1: the leader alone had it and answered
      "written" at once, so a clean failover to a follower that had not fetched it yet loses a
      record the producer was told was safe. That is exactly the risk acks=1 takes.
    It is *not* lost when nobody was told it was written:
    - acks=all records above the HW were still waiting for the ISR (a pending ack): the
      producer's request fails (NotLeaderOrFollower / a timeout) and a Kafka producer retries
      them: the records were never acknowledged, so nothing acknowledged is gone;
    - acks=0 records above the HW: the producer never waited for an answer. They are gone and
      nobody knows, which is what fire-and-forget allows; they were never acknowledged either.

    ``removed`` starts at offset ``first``. Returns per producer: lost, retry, dropped."""
    out: dict[str, dict[str, int]] = {"lost": {}, "retry": {}, "dropped": {}}

    def add(kind: str, name: str, n: int) -> None:
        if n > 0:
            out[kind][name] = out[kind].get(name, 0) + n

    lo = first
    for run in removed:
        hi = lo + run.size
        name = run.batch.producer
        committed = max(0, min(hi, old_hw) - lo)
        above = max(lo, old_hw)
        waiting = sum(max(0, min(hi, a.end) - max(above, a.start))
                      for a in pending.get(name, ()) if a.partition == partition)
        rest = max(0, hi - above) - waiting
        dropped = rest if run.batch.acks == 0 else 0
        add("lost", name, committed + rest - dropped)
        add("retry", name, waiting)
        add("dropped", name, dropped)
        lo = hi
    return out


def _settle_truncation(state: ClusterState, partition: int, removed: list[Run],
                       report: ElectionReport, old: Partition) -> ClusterState:
    """After a partition's log was cut back: fail the acks that waited for the truncated
    records, count who lost what (see ``classify_truncated``), and move consumer offsets that
    point past the new high watermark."""
    part = state.partitions[partition]
    end, hw = part.log.end, part.high_watermark
    first = max(end, old.log.start)
    kinds = classify_truncated(removed, first, old.high_watermark, partition,
                               {p.name: p.pending for p in state.producers})
    lost_by = kinds["lost"]
    report["lost"] = sum(lost_by.values())
    if kinds["retry"]:
        report["never_acked"] = sum(kinds["retry"].values())
    if kinds["dropped"]:
        report["fire_and_forget"] = sum(kinds["dropped"].values())
    pending_failed: dict[str, int] = {}
    producers = []
    for producer in state.producers:
        failed, kept = 0, []
        for ack in producer.pending:
            if ack.partition == partition and ack.end > end:
                failed += ack.end - max(ack.start, end)
                if ack.start < end:
                    kept.append(PendingAck(partition, ack.start, end))
            else:
                kept.append(ack)
        if failed:
            pending_failed[producer.name] = failed
        producers.append(replace(producer, pending=tuple(kept), failed=producer.failed + failed,
                                 lost=producer.lost + lost_by.get(producer.name, 0)))
    resets: list[OffsetReset] = []
    groups = []
    for group in state.groups:
        committed = list(group.committed)
        if committed[partition] > hw:
            resets.append({"group": group.name, "partition": partition, "from": committed[partition], "to": hw})
            committed[partition] = hw
        groups.append(replace(group, committed=tuple(committed)))
    if lost_by:
        report["lost_by_producer"] = lost_by
    if pending_failed:
        report["pending_failed"] = pending_failed
    if resets:
        report["offset_resets"] = resets
    return replace(state, producers=tuple(producers), groups=tuple(groups),
                   lost_records=state.lost_records + sum(lost_by.values()))


def _elect_all(state: ClusterState, which: list[int]) -> tuple[ClusterState, list[ElectionReport]]:
    reports = []
    for index in which:
        old = state.partitions[index]
        part, report, removed = elect_leader(old, state.brokers_up, state.config.unclean_leader_election,
                                             state.clock_ms)
        if report is None:
            continue
        state = with_partition(state, part)
        state = _settle_truncation(state, index, removed, report, old)
        reports.append(report)
    return state, reports


def stop_broker(state: ClusterState, broker: int) -> tuple[ClusterState, BrokerStopped]:
    up = state.brokers_up[:broker] + (False,) + state.brokers_up[broker + 1:]
    state = replace(state, brokers_up=up)
    led = [p.index for p in state.partitions if p.leader == broker]
    state, elections = _elect_all(state, led)
    followers = [p.index for p in state.partitions if broker in p.replicas and p.index not in led]
    # The controller fences a stopped broker: it leaves the ISR of every partition it follows
    # (Kafka removes a dead broker from the ISR at once, not after replica.lag.time.max.ms),
    # so the high watermark no longer waits for it. An offline partition keeps its last ISR.
    fenced = []
    for index in followers:
        part = state.partitions[index]
        if part.online and broker in part.isr and len(part.isr) > 1:
            state = with_partition(state, with_high_watermark(replace(part, isr=tuple(b for b in part.isr if b != broker))))
            fenced.append(index)
    return state, {"broker": broker, "led": led, "elections": elections, "follower_of": followers,
                   "fenced_from_isr": fenced, "offline": [p.index for p in state.partitions if not p.online]}


def start_broker(state: ClusterState, broker: int) -> tuple[ClusterState, BrokerStarted]:
    up = state.brokers_up[:broker] + (True,) + state.brokers_up[broker + 1:]
    state = replace(state, brokers_up=up)
    offline = [p.index for p in state.partitions if not p.online and broker in p.replicas]
    state, elections = _elect_all(state, offline)
    truncated: list[Truncated] = []
    for part in state.partitions:
        if broker not in part.replicas or part.leader == broker:
            continue
        j = part.replicas.index(broker)
        if part.leo[j] > part.high_watermark:  # a returning follower first truncates to the HW
            truncated.append({"partition": part.index, "from": part.leo[j], "to": part.high_watermark})
            leo = part.leo[:j] + (part.high_watermark,) + part.leo[j + 1:]
            state = with_partition(state, replace(part, leo=leo))
    return state, {"broker": broker, "elections": elections, "truncated": truncated,
                   "replica_of": [p.index for p in state.partitions if broker in p.replicas],
                   "offline": [p.index for p in state.partitions if not p.online]}


def set_unclean(state: ClusterState, on: bool) -> tuple[ClusterState, UncleanSet]:
    state = replace(state, config=replace(state.config, unclean_leader_election=on))
    elections: list[ElectionReport] = []
    if on:  # the controller retries the offline partitions with the looser rule
        state, elections = _elect_all(state, [p.index for p in state.partitions if not p.online])
    return state, {"on": on, "elections": elections}


# -- a tick -----------------------------------------------------------------------------------

def advance(state: ClusterState, dt_ms: int) -> tuple[ClusterState, Ticked]:
    """One tick: followers fetch, the ISR and HW move, acks settle, retention runs, groups read."""
    clock = state.clock_ms + dt_ms
    state = replace(state, clock_ms=clock, tick=state.tick + 1)
    state, report = replicate(state)
    state, report["acked"], report["failed_after_append"] = settle_acks(state)
    state, report["retention"], retention_resets = apply_retention(state)
    state, report["consumed"] = consume(state)
    report["offset_resets"] = retention_resets
    report["lag"] = {g.name: g.lag_history[-1] for g in state.groups}
    # A list that would be empty is left out (tests/logpartitions/test_events.py checks the shape).
    return state, cast(Ticked, {"dt_ms": dt_ms, "clock_ms": clock, "tick": state.tick,
                                **{k: v for k, v in report.items() if v or k == "lag"}})


def replicate(state: ClusterState) -> tuple[ClusterState, dict[str, Any]]:
    cfg, clock, up = state.config, state.clock_ms, state.brokers_up
    fetched, shrunk, expanded, hw_moved = [], [], [], []
    parts = []
    for part in state.partitions:
        if part.leader is None:
            parts.append(part)
            continue
        end, start = part.log.end, part.log.start
        leo, caught = list(part.leo), list(part.caught_up_ms)
        isr = set(part.isr)
        for j, b in enumerate(part.replicas):
            if b == part.leader:
                caught[j] = clock
                continue
            if not up[b]:
                continue
            if leo[j] < start:  # what it lacks was deleted by retention: it starts from the log start
                leo[j] = start
            got = min(cfg.follower_fetch_per_tick, end - leo[j])
            if got > 0:
                leo[j] += got
                fetched.append({"partition": part.index, "broker": b, "records": got})
            if leo[j] == end:
                caught[j] = clock
        for j, b in enumerate(part.replicas):
            if b in isr and b != part.leader and leo[j] != end and clock - caught[j] > cfg.replica_lag_time_max_ms:
                isr.discard(b)
                shrunk.append({"partition": part.index, "broker": b, "behind": end - leo[j]})
            elif b not in isr and up[b] and leo[j] == end:
                isr.add(b)
                caught[j] = clock
                expanded.append({"partition": part.index, "broker": b})
        new = with_high_watermark(replace(part, leo=tuple(leo), caught_up_ms=tuple(caught),
                                          isr=tuple(b for b in part.replicas if b in isr)))
        if new.high_watermark != part.high_watermark:
            hw_moved.append({"partition": part.index, "from": part.high_watermark, "to": new.high_watermark})
        parts.append(new)
    state = replace(state, partitions=tuple(parts))
    return state, {"fetched": fetched, "isr_shrunk": shrunk, "isr_expanded": expanded, "hw_moved": hw_moved}


def settle_acks(state: ClusterState) -> tuple[ClusterState, list[Acked], list[FailedAfterAppend]]:
    """acks=all requests complete once the HW passes them; if the ISR is below
    min.insync.replicas by then, the producer gets NotEnoughReplicasAfterAppend instead."""
    acked: list[Acked] = []
    failed: list[FailedAfterAppend] = []
    producers = []
    for producer in state.producers:
        kept, ok, bad = [], 0, 0
        for ack in producer.pending:
            part = state.partitions[ack.partition]
            done = min(part.high_watermark, ack.end) - ack.start
            if done <= 0:
                kept.append(ack)
                continue
            if len(part.isr) >= state.config.min_insync_replicas:
                ok += done
                acked.append({"producer": producer.name, "partition": ack.partition, "records": done})
            else:
                bad += done
                failed.append({"producer": producer.name, "partition": ack.partition, "records": done,
                               "reason": "NotEnoughReplicasAfterAppend"})
            if ack.start + done < ack.end:
                kept.append(PendingAck(ack.partition, ack.start + done, ack.end))
        producers.append(producer if not (ok or bad) else replace(
            producer, pending=tuple(kept), acknowledged=producer.acknowledged + ok, failed=producer.failed + bad))
    return replace(state, producers=tuple(producers)), acked, failed


def apply_retention(state: ClusterState) -> tuple[ClusterState, list[RetentionDeleted], list[OffsetReset]]:
    """Delete whole segments older than the last N records (and below the HW)."""
    keep = state.config.retention_records
    if keep is None:
        return state, [], []
    deleted: list[RetentionDeleted] = []
    for part in state.partitions:
        log, segments = part.log.delete_before(min(part.high_watermark, part.log.end - keep))
        if segments:
            deleted.append({"partition": part.index, "segments": segments, "records": log.start - part.log.start,
                            "log_start": log.start})
            state = with_partition(state, replace(part, log=log))
    state, resets = _reset_below_log_start(state)
    return state, deleted, resets


def _reset_below_log_start(state: ClusterState) -> tuple[ClusterState, list[OffsetReset]]:
    """A committed offset whose records were deleted moves up to the log start (skipping them)."""
    resets: list[OffsetReset] = []
    groups = []
    for group in state.groups:
        committed = list(group.committed)
        for part in state.partitions:
            if committed[part.index] < part.log.start:
                resets.append({"group": group.name, "partition": part.index, "from": committed[part.index],
                               "to": part.log.start})
                committed[part.index] = part.log.start
        groups.append(replace(group, committed=tuple(committed)) if committed != list(group.committed) else group)
    return replace(state, groups=tuple(groups)), resets


def share(budget: int, available: list[int], first: int = 0) -> list[int]:
    """Split a consumer's ``budget`` of records evenly over its partitions (water-filling);
    leftovers go round-robin starting at index ``first``, so small budgets rotate."""
    n = len(available)
    take = [0] * n
    active = [i for i in range(n) if available[i] > 0]
    if active:
        rot = first % len(active)
        active = active[rot:] + active[:rot]
    while budget > 0 and active:
        each = budget // len(active)
        if each == 0:
            for i in active[:budget]:
                take[i] += 1
            break
        still = []
        for i in active:
            got = min(each, available[i] - take[i])
            take[i] += got
            budget -= got
            if take[i] < available[i]:
                still.append(i)
        active = still
    return take


def consume(state: ClusterState) -> tuple[ClusterState, list[Consumed]]:
    """Each member reads up to its speed from its partitions, below the HW, and commits."""
    consumed: list[Consumed] = []
    groups = []
    for group in state.groups:
        committed = list(group.committed)
        members = []
        for member in group.members:
            readable = [p for p in member.partitions if state.partitions[p].online]
            available = [state.partitions[p].high_watermark - committed[p] for p in readable]
            took = share(member.speed, available, state.tick)
            for p, n in zip(readable, took):
                committed[p] += n
            total = sum(took)
            if total:
                consumed.append({"group": group.name, "member": member.name, "records": total,
                                 "partitions": {str(p): n for p, n in zip(readable, took) if n}})
                member = replace(member, consumed=member.consumed + total)
            members.append(member)
        lag = sum(p.high_watermark - c for p, c in zip(state.partitions, committed))
        groups.append(replace(group, members=tuple(members), committed=tuple(committed),
                              lag_history=(group.lag_history + (lag,))[-LAG_HISTORY:]))
    return replace(state, groups=tuple(groups)), consumed


# -- consumer groups --------------------------------------------------------------------------

def new_group(state: ClusterState, name: str, assignor: str = "range") -> Group:
    """A group with no committed offsets starts at the earliest record (auto.offset.reset=earliest)."""
    return Group(name=name, assignor=assignor, committed=tuple(p.log.start for p in state.partitions))


def plan_rebalance(group: Group, members: list[str], assignor: str, partitions: int) -> Rebalance:
    """The new assignment after a membership or assignor change, and what it takes away.

    Eager assignors (range, roundrobin) make every member give back everything before the new
    assignment ("stop the world"); cooperative-sticky revokes only the partitions that move."""
    previous = {m.name: m.partitions for m in group.members}
    assignment = assign(assignor, members, partitions, previous)
    cooperative = is_cooperative(assignor)
    owner_before = {p: m for m, ps in previous.items() for p in ps}
    owner_after = {p: m for m, ps in assignment.items() for p in ps}
    revoked: dict[str, list[int]] = {}
    added: dict[str, list[int]] = {}
    for name in sorted(set(previous) | set(assignment)):
        before, after = set(previous.get(name, ())), set(assignment.get(name, ()))
        gone = sorted(before - after) if cooperative or name not in assignment else sorted(before)
        new = sorted(after - before) if cooperative else sorted(after)
        if gone:
            revoked[name] = gone
        if new:
            added[name] = new
    return {
        "assignor": assignor,
        "protocol": "cooperative" if cooperative else "eager",
        "generation": group.generation + 1,
        "assignment": {m: list(ps) for m, ps in assignment.items()},
        "revoked": revoked,
        "added": added,
        "moved": sorted(p for p in range(partitions) if owner_before.get(p) != owner_after.get(p)),
        "idle": sorted(m for m, ps in assignment.items() if not ps),
    }


def apply_rebalance(group: Group, members: list[Member], plan: Rebalance) -> Group:
    assignment = plan["assignment"]
    ordered = sorted(members, key=lambda m: m.name)
    return replace(group, assignor=plan["assignor"], generation=plan["generation"],
                   members=tuple(replace(m, partitions=tuple(assignment.get(m.name, ()))) for m in ordered))

