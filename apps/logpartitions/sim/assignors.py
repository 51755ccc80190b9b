"""Consumer group assignors: which member of a group reads which partitions.

Members are sorted by member id and partitions by number, as Kafka's assignors do. A partition
is read by exactly one member of a group; members beyond the number of partitions sit idle.

- ``range``: consecutive blocks; the first ``P % C`` members get one extra partition.
- ``roundrobin``: deal the partitions in order around the members, like cards.
- ``cooperative-sticky``: balanced (sizes differ by at most one) while keeping as many of each
  member's current partitions as possible, so a rebalance revokes only the partitions that move.
  ``range`` and ``roundrobin`` use the eager protocol: every member gives up everything first.
"""
from __future__ import annotations

ASSIGNORS = ("range", "roundrobin", "cooperative-sticky")
Assignment = dict[str, tuple[int, ...]]


def range_assign(members: list[str], partitions: int) -> Assignment:
    ordered = sorted(members)
    c = len(ordered)
    out: Assignment = {}
    for i, member in enumerate(ordered):
        start = (partitions // c) * i + min(i, partitions % c)
        count = partitions // c + (1 if i < partitions % c else 0)
        out[member] = tuple(range(start, start + count))
    return out


def roundrobin_assign(members: list[str], partitions: int) -> Assignment:
    ordered = sorted(members)
    return {m: tuple(range(i, partitions, len(ordered))) for i, m in enumerate(ordered)}


def cooperative_sticky_assign(members: list[str], partitions: int, previous: Assignment) -> Assignment:
    """Balanced, and as sticky as balance allows.

    Each member may hold ``P // C`` partitions, and ``P % C`` of them one more: those extra
    places go to the members that already hold the most (ties: lower member id). Every member
    keeps its lowest-numbered current partitions up to its quota; everything else (partitions
    over quota, of members who left, or never assigned) goes, lowest number first, to the member
    with the fewest partitions (ties: lower member id).
    """
    ordered = sorted(members)
    c = len(ordered)
    if not c:
        return {}
    base, extra = divmod(partitions, c)
    current = {m: sorted(p for p in previous.get(m, ()) if p < partitions) for m in ordered}
    by_size = sorted(ordered, key=lambda m: (-len(current[m]), m))
    quota = {m: base + (1 if rank < extra else 0) for rank, m in enumerate(by_size)}
    kept = {m: current[m][:quota[m]] for m in ordered}
    taken = {p for ps in kept.values() for p in ps}
    for p in range(partitions):
        if p in taken:
            continue
        hungry = min((m for m in ordered if len(kept[m]) < quota[m]), key=lambda m: (len(kept[m]), m))
        kept[hungry].append(p)
    return {m: tuple(sorted(kept[m])) for m in ordered}


def assign(assignor: str, members: list[str], partitions: int, previous: Assignment) -> Assignment:
    if not members:
        return {}
    if assignor == "range":
        return range_assign(members, partitions)
    if assignor == "roundrobin":
        return roundrobin_assign(members, partitions)
    if assignor == "cooperative-sticky":
        return cooperative_sticky_assign(members, partitions, previous)
    raise ValueError(f"unknown assignor {assignor!r}")


def is_cooperative(assignor: str) -> bool:
    return assignor == "cooperative-sticky"
