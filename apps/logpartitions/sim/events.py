"""Every event the distributed log writes, one typed description per kind (``EVENTS``).

An event is plain JSON in the room's log: ``{"kind": <a key of EVENTS>, "data": <that kind's
TypedDict>}``. ``decide`` writes them, ``evolve`` folds them and ``narrate`` tells them, each
through a table keyed by kind; mypy checks all three against these descriptions, and the tests
check every event a lesson or a test produces against ``EVENTS`` (required keys present, no key
left undescribed).

This module does not use ``from __future__ import annotations``: TypedDict reads ``NotRequired``
from the evaluated annotations (with string annotations Python 3.11 would count every key as
required).
"""
from typing import Literal, NotRequired, TypedDict, Union

Acks = Union[int, str]  # 0, 1 or "all"


# -- pieces shared by several kinds ------------------------------------------------------------

class KeyPlacement(TypedDict):
    """``explain_key``: murmur2 of a key, made positive, modulo the partitions."""

    key: str
    hash: int
    positive: int
    partitions: int
    partition: int


class PartitionOutcome(TypedDict):
    """Where a burst's records went on one partition, or why they could not."""

    partition: int
    records: int
    error: str | None
    first_offset: int | None
    ack: str | None


# A group's committed offset moved because the records it pointed at are gone ("from" is a
# keyword, so these are spelled in the functional form).
OffsetReset = TypedDict("OffsetReset", {"group": str, "partition": int, "from": int, "to": int})


class ElectionReport(TypedDict):
    """One partition's leader election (or its going offline)."""

    partition: int
    old_leader: int | None
    new_leader: int | None
    clean: bool
    offline: bool
    lost: int  # acknowledged or committed records cut
    committed_lost: int
    isr: list[int]
    truncated: NotRequired[int]  # records cut from the old leader's log
    leader_epoch: NotRequired[int]
    log_end: NotRequired[int]
    lost_by_producer: NotRequired[dict[str, int]]
    pending_failed: NotRequired[dict[str, int]]  # acks=all records whose request failed (retried)
    offset_resets: NotRequired[list[OffsetReset]]
    never_acked: NotRequired[int]
    fire_and_forget: NotRequired[int]


class Rebalance(TypedDict):
    """A consumer group's new assignment and what it takes away (``plan_rebalance``)."""

    assignor: str
    protocol: str  # "eager" or "cooperative"
    generation: int
    assignment: dict[str, list[int]]
    revoked: dict[str, list[int]]
    added: dict[str, list[int]]
    moved: list[int]
    idle: list[str]


class Fetched(TypedDict):
    partition: int
    broker: int
    records: int


class IsrShrunk(TypedDict):
    partition: int
    broker: int
    behind: int


class IsrExpanded(TypedDict):
    partition: int
    broker: int


HwMoved = TypedDict("HwMoved", {"partition": int, "from": int, "to": int})


class Acked(TypedDict):
    producer: str
    partition: int
    records: int


class FailedAfterAppend(TypedDict):
    producer: str
    partition: int
    records: int
    reason: str


class RetentionDeleted(TypedDict):
    partition: int
    segments: int
    records: int
    log_start: int


class Consumed(TypedDict):
    group: str
    member: str
    records: int
    partitions: dict[str, int]  # partition (as text: JSON keys) -> records read


Truncated = TypedDict("Truncated", {"partition": int, "from": int, "to": int})


class SceneParams(TypedDict):
    """A scene's parameters, checked and completed by ``scene_params``."""

    topic: str
    partitions: int
    brokers: int
    replication_factor: int
    min_insync: int
    unclean: bool
    segment_records: int
    producer: str
    acks: Acks
    records: int
    group: str | None
    members: list[str]
    assignor: str


# -- the events ----------------------------------------------------------------------------------

class RecordProduced(TypedDict):
    """One record appended on its partition's leader. Keyed: how the key chose the partition;
    keyless: what the sticky partitioner did."""

    producer: str
    acks: Acks
    key: str | None
    value: str
    order_id: int
    chosen_by: Literal["key", "sticky"]
    partition: int
    leader: int | None
    isr: list[int]
    offset: int
    batch: int
    ack: str  # "acknowledged", "waiting_for_isr" or "fire_and_forget"
    hash: NotRequired[int]
    positive: NotRequired[int]
    partitions: NotRequired[int]
    sticky_switched: NotRequired[bool]
    sticky_from: NotRequired[int | None]
    sticky_fill: NotRequired[int]
    sticky_batch_size: NotRequired[int]
    candidates: NotRequired[list[int]]


class BurstProduced(TypedDict):
    """A burst of ``count`` records, written where at least one partition took them."""

    producer: str
    acks: Acks
    pattern: str
    count: int
    first_order_id: int
    last_order_id: int
    batch: int
    seed: str
    num_partitions: int
    per_partition: list[PartitionOutcome]
    appended: int
    failed: int
    sticky_start: NotRequired[list[int | None]]  # keyless: [partition, fill] before the burst
    sticky_batch_size: NotRequired[int]
    candidates: NotRequired[list[int]]
    sticky_end: NotRequired[list[int | None]]  # keyless: [partition, fill] after it
    example: NotRequired[KeyPlacement]  # keyed: where its first key went


class ProduceFailed(TypedDict):
    """A produce (one record or a burst) that landed nowhere. It happened, so it is an event: the
    producer counts the records as sent and failed. A single record carries the fields of
    ``RecordProduced`` it had got to; a burst those of ``BurstProduced``."""

    producer: str
    acks: Acks
    reason: str
    partition: int | None
    count: int
    # a single record
    key: NotRequired[str | None]
    value: NotRequired[str]
    order_id: NotRequired[int]
    chosen_by: NotRequired[Literal["key", "sticky"]]
    hash: NotRequired[int]
    positive: NotRequired[int]
    partitions: NotRequired[int]
    sticky_switched: NotRequired[bool]
    sticky_from: NotRequired[int | None]
    sticky_fill: NotRequired[int]
    leader: NotRequired[int | None]
    isr: NotRequired[list[int]]
    min_insync: NotRequired[int]
    # a burst
    pattern: NotRequired[str]
    first_order_id: NotRequired[int]
    last_order_id: NotRequired[int]
    batch: NotRequired[int]
    seed: NotRequired[str]
    num_partitions: NotRequired[int]
    per_partition: NotRequired[list[PartitionOutcome]]
    appended: NotRequired[int]
    failed: NotRequired[int]
    sticky_start: NotRequired[list[int | None]]
    sticky_end: NotRequired[list[int | None]]
    example: NotRequired[KeyPlacement]
    # both (a keyless one)
    sticky_batch_size: NotRequired[int]
    candidates: NotRequired[list[int]]


class ProducerSet(TypedDict):
    producer: str
    acks: Acks
    created: bool


class ProducerRateSet(TypedDict):
    producer: str
    rate: int
    pattern: str


class Ticked(TypedDict):
    """One tick of the room clock; a list that would be empty is left out."""

    dt_ms: int
    clock_ms: int
    tick: int
    lag: dict[str, int]  # group -> its total lag after the tick
    fetched: NotRequired[list[Fetched]]
    isr_shrunk: NotRequired[list[IsrShrunk]]
    isr_expanded: NotRequired[list[IsrExpanded]]
    hw_moved: NotRequired[list[HwMoved]]
    acked: NotRequired[list[Acked]]
    failed_after_append: NotRequired[list[FailedAfterAppend]]
    retention: NotRequired[list[RetentionDeleted]]
    consumed: NotRequired[list[Consumed]]
    offset_resets: NotRequired[list[OffsetReset]]


class BrokerStopped(TypedDict):
    broker: int
    led: list[int]
    elections: list[ElectionReport]
    follower_of: list[int]
    fenced_from_isr: list[int]
    offline: list[int]


class BrokerStarted(TypedDict):
    broker: int
    elections: list[ElectionReport]
    truncated: list[Truncated]
    replica_of: list[int]
    offline: list[int]


class UncleanSet(TypedDict):
    on: bool
    elections: list[ElectionReport]


class ConfigSet(TypedDict):
    setting: str  # a field of TopicConfig
    value: int
    previous: int


class RetentionSet(TypedDict):
    records: int | None  # None: keep everything
    deleted: list[RetentionDeleted]
    offset_resets: list[OffsetReset]


class MemberJoined(TypedDict):
    group: str
    member: str
    speed: int
    created: bool
    rebalance: Rebalance


class MemberLeft(TypedDict):
    group: str
    member: str
    rebalance: Rebalance


class AssignorSet(TypedDict):
    group: str
    assignor: str
    rebalance: Rebalance


class ConsumerSpeedSet(TypedDict):
    group: str
    member: str
    speed: int
    previous: int


class OffsetsReset(TypedDict):
    group: str
    to: str  # "earliest" or "latest"
    offsets: list[int]
    previous: list[int]


class SceneLoaded(TypedDict):
    params: SceneParams


EVENTS: dict[str, type] = {
    "record_produced": RecordProduced,
    "burst_produced": BurstProduced,
    "produce_failed": ProduceFailed,
    "producer_set": ProducerSet,
    "producer_rate_set": ProducerRateSet,
    "ticked": Ticked,
    "broker_stopped": BrokerStopped,
    "broker_started": BrokerStarted,
    "unclean_set": UncleanSet,
    "config_set": ConfigSet,
    "retention_set": RetentionSet,
    "member_joined": MemberJoined,
    "member_left": MemberLeft,
    "assignor_set": AssignorSet,
    "consumer_speed_set": ConsumerSpeedSet,
    "offsets_reset": OffsetsReset,
    "scene_loaded": SceneLoaded,
}
