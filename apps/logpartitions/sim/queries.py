"""What the picture asks of a state: cheap, read-only views (nothing here changes the state).

Every function is O(partitions x replicas + consumers), except the record windows, which read
only the records they return (a window never materialises the rest of the log).
"""
from __future__ import annotations

from typing import Any

from .assignors import is_cooperative
from .cluster import ClusterState
from .log import Record


def replica_status(state: ClusterState, partition: int, broker: int) -> str:
    """"leader", "in-sync", "catching-up" (running, out of the ISR), "down" or "offline"."""
    part = state.partitions[partition]
    if not state.brokers_up[broker]:
        return "down"
    if part.leader is None:
        return "offline"
    if broker == part.leader:
        return "leader"
    return "in-sync" if broker in part.isr else "catching-up"


def partition_summary(state: ClusterState, partition: int) -> dict[str, Any]:
    part = state.partitions[partition]
    cfg = state.config
    return {
        "index": part.index,
        "leader": part.leader,
        "online": part.online,
        "isr": list(part.isr),
        "replicas": [{"broker": b, "up": state.brokers_up[b], "leo": part.leo[j], "in_isr": b in part.isr,
                      "is_leader": b == part.leader, "preferred": j == 0, "behind": part.log.end - part.leo[j],
                      "status": replica_status(state, partition, b)} for j, b in enumerate(part.replicas)],
        "high_watermark": part.high_watermark,
        "log_start": part.log.start,
        "log_end": part.log.end,
        "records": len(part.log),
        "uncommitted": part.log.end - part.high_watermark,  # appended, not yet on every ISR member
        "segments": len(part.log.segments),
        "leader_epoch": part.leader_epoch,
        "under_replicated": len(part.isr) < cfg.replication_factor,
        "below_min_insync": len(part.isr) < cfg.min_insync_replicas,
    }


def partition_summaries(state: ClusterState) -> list[dict[str, Any]]:
    return [partition_summary(state, p.index) for p in state.partitions]


def read_records(state: ClusterState, partition: int, start: int, stop: int) -> list[Record]:
    """Records at offsets start..stop-1 of a partition (clamped to what the log holds)."""
    return state.partitions[partition].log.read(partition, start, stop)


def recent_records(state: ClusterState, partition: int, count: int = 20) -> list[Record]:
    """The last ``count`` records of a partition, oldest first."""
    log = state.partitions[partition].log
    return log.read(partition, log.end - count, log.end)


def segments(state: ClusterState, partition: int) -> list[dict[str, int]]:
    return [{"base": s.base, "end": s.end, "records": s.size} for s in state.partitions[partition].log.segments]


def group_summary(state: ClusterState, name: str) -> dict[str, Any]:
    group = state.group(name)
    if group is None:
        raise KeyError(name)
    lag = state.lag(group)
    owner = {p: m.name for m in group.members for p in m.partitions}
    return {
        "name": group.name,
        "assignor": group.assignor,
        "protocol": "cooperative" if is_cooperative(group.assignor) else "eager",
        "generation": group.generation,
        "members": [{"name": m.name, "speed": m.speed, "partitions": list(m.partitions), "consumed": m.consumed,
                     "idle": not m.partitions, "lag": sum(lag[p] for p in m.partitions)} for m in group.members],
        "partitions": [{"partition": p.index, "owner": owner.get(p.index), "committed": group.committed[p.index],
                        "high_watermark": p.high_watermark, "lag": lag[p.index]} for p in state.partitions],
        "total_lag": sum(lag),
        "lag_history": list(group.lag_history),
    }


def group_summaries(state: ClusterState) -> list[dict[str, Any]]:
    return [group_summary(state, g.name) for g in state.groups]


def pending_acks(state: ClusterState) -> dict[str, list[dict[str, int]]]:
    """Per producer: the acks=all ranges still waiting for every in-sync replica."""
    return {p.name: [{"partition": a.partition, "start": a.start, "end": a.end, "records": a.end - a.start}
                     for a in p.pending] for p in state.producers}


def producer_summaries(state: ClusterState) -> list[dict[str, Any]]:
    return [{"name": p.name, "acks": p.acks, "sent": p.sent, "acknowledged": p.acknowledged, "failed": p.failed,
             "lost": p.lost, "waiting": p.waiting, "sticky_partition": p.sticky_partition,
             "sticky_fill": p.sticky_fill, "rate": p.rate, "pattern": p.pattern} for p in state.producers]


def totals(state: ClusterState) -> dict[str, Any]:
    return {
        "records": state.total_records,
        "sent": sum(p.sent for p in state.producers),
        "acknowledged": sum(p.acknowledged for p in state.producers),
        "failed": sum(p.failed for p in state.producers),
        "waiting": sum(p.waiting for p in state.producers),
        "lost": state.lost_records,
        "brokers_up": sum(state.brokers_up),
        "brokers": state.brokers,
        "offline_partitions": [p.index for p in state.partitions if not p.online],
        "under_replicated": [p.index for p in state.partitions if len(p.isr) < state.config.replication_factor],
        "clock_ms": state.clock_ms,
        "tick": state.tick,
    }
