"""A distributed log, the teaching core: pure Python, no Django, no I/O, no wall clock.

A log is a list you may only add to at the end. Every entry gets the next number (its offset)
and keeps it; nobody edits or reorders what is written. Think of a flight recorder (a black box)
shared by many planes: every plane appends what happens to it, and every maintenance crew reads
the same recording at its own pace, each remembering how far it got.

Kafka splits one topic's log into partitions so that many brokers can share the writing. A
record's key decides its partition (``murmur2(key) % partitions``), so all records of one key
stay in order; records without a key are spread in batches. Each partition is copied to several
brokers: one leader takes the writes, followers copy it, and the in-sync replicas (ISR) are the
copies that keep up. A record counts as committed once every in-sync replica has it: that point
is the high watermark, and consumers read only below it. If a leader's broker dies, an in-sync
follower takes over and no committed record is lost, unless the cluster is allowed an "unclean"
election from a copy that had fallen behind. Consumers in a group split the partitions between
them; each group remembers its own offsets, and lag is how far it is behind the high watermark.
"""
from .assignors import ASSIGNORS, cooperative_sticky_assign, range_assign, roundrobin_assign
from .events import EVENTS
from .cluster import ClusterState, Group, Member, Partition, PendingAck, Producer, TopicConfig
from apps.common.sim import Rejected

from .core import (
    COMMANDS,
    Limits,
    decide,
    evolve,
    from_json,
    initial_state,
    scene_params,
    to_json,
)
from .log import SEGMENT_RECORDS, Batch, Log, Record
from .narrate import NARRATE, narrate
from .murmur import explain_key, murmur2, murmur2_many, partition_for, to_positive
from .queries import (
    group_summaries,
    group_summary,
    partition_summaries,
    partition_summary,
    pending_acks,
    producer_summaries,
    read_records,
    recent_records,
    replica_status,
    segments,
    totals,
)

__all__ = [
    "ASSIGNORS", "COMMANDS", "EVENTS", "SEGMENT_RECORDS", "Batch", "ClusterState", "Group", "Limits",
    "Log", "Member", "Partition", "PendingAck", "Producer", "Record", "Rejected", "TopicConfig",
    "NARRATE", "cooperative_sticky_assign", "decide", "evolve", "explain_key", "from_json", "group_summaries", "group_summary",
    "initial_state", "murmur2", "murmur2_many", "partition_for", "narrate", "partition_summaries", "partition_summary",
    "pending_acks", "producer_summaries", "range_assign", "read_records", "recent_records", "replica_status",
    "roundrobin_assign", "scene_params", "segments", "to_json", "to_positive", "totals",
]
