"""An independent reference for the ring's numbers: DOMAIN.md section 1 in plain Python.

Nothing here imports the app. Positions come straight from ``mmh3``; owners from ``bisect`` over
a sorted list; the statistics from :mod:`statistics`. The panels and the lessons are checked
against these, never against the functions that drew them.

Spread is the *population* standard deviation (``statistics.pstdev``, numpy's default
``ddof=0``): the keys per node of the n nodes on the ring are all of them, not a sample.
DOMAIN.md's figures read as that: re-measured with 10 nodes, 200k keys, 20 trials, std/mean is
0.838 with ddof=0 (0.883 with ddof=1) against its 0.83 for V=1, 0.280 (0.295) against 0.27
for V=10 and 0.091 (0.096) against 0.08 for V=100.
"""
from __future__ import annotations

import statistics
from bisect import bisect_left
from collections import Counter
from functools import lru_cache

import mmh3

RING = 2**32


def position(name: str) -> int:
    return mmh3.hash(name, 0, signed=False)


def vnodes(nodes: list[tuple[str, int]]) -> list[tuple[int, str, int]]:
    """Every vnode as (position, node, index), sorted clockwise; ties by (node name, index)."""
    return sorted((position(f"{name}#{i}"), name, i) for name, count in nodes for i in range(count))


def owner(ring: list[tuple[int, str, int]], key: str) -> str:
    """The node of the first vnode whose position is >= the key's, wrapping past the top."""
    positions = [p for p, _, _ in ring]
    slot = bisect_left(positions, position(key))
    return ring[slot % len(ring)][1]


def counts(nodes: list[tuple[str, int]], keys: list[str] | tuple[str, ...]) -> dict[str, int]:
    return dict(_counts(tuple(nodes), tuple(keys)))


@lru_cache(maxsize=64)
def _counts(nodes: tuple[tuple[str, int], ...], keys: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    ring = vnodes(list(nodes))
    positions = [p for p, _, _ in ring]
    tally = Counter(ring[bisect_left(positions, position(k)) % len(ring)][1] for k in keys)
    return tuple((name, tally.get(name, 0)) for name, _ in nodes)


def std_over_mean(per_node: dict[str, int]) -> float:
    values = list(per_node.values())
    return statistics.pstdev(values) / statistics.fmean(values)


def max_over_mean(per_node: dict[str, int]) -> float:
    values = list(per_node.values())
    return max(values) / statistics.fmean(values)


def arc_shares(nodes: list[tuple[str, int]]) -> dict[str, float]:
    """Each node's share of the 2**32 positions: a vnode owns (previous vnode, itself]."""
    ring = vnodes(nodes)
    owned: Counter[str] = Counter()
    if len(ring) == 1:
        return {ring[0][1]: 1.0}
    for j, (pos, name, _) in enumerate(ring):
        prev = ring[j - 1][0]
        owned[name] += (pos - prev) % RING
    return {name: owned.get(name, 0) / RING for name, _ in nodes}


def state_nodes(state) -> list[tuple[str, int]]:  # noqa: ANN001 - a RingState, read only
    return [(n.name, n.vnodes) for n in state.nodes]
