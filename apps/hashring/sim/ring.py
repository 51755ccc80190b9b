"""Consistent hashing on a 32-bit ring, exactly as DOMAIN.md section 1 states it.

Every node is hashed onto the ring several times ("virtual nodes"): virtual node ``i`` of node
``N`` sits at ``mmh3.hash(f"{N}#{i}", signed=False)``; a key sits at
``mmh3.hash(key, signed=False)``. A key belongs to the first virtual node clockwise whose
position is ``>=`` the key's position, wrapping past the top of the ring to the lowest
position. Ties between virtual nodes at the same position break by (node name, vnode index).

Anyone can check a placement in three lines of Python::

    import mmh3
    mmh3.hash("user42", signed=False)      # the key's position
    mmh3.hash("B#3", signed=False)         # B's fourth virtual node

Bulk work (100,000 keys against thousands of virtual nodes) uses sorted arrays and
``numpy.searchsorted``: hashing each key once, then one vectorised binary search per change.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import mmh3
import numpy as np

RING_SIZE = 2**32


def key_position(key: str) -> int:
    """Where a key sits on the ring: unsigned 32-bit MurmurHash3 of its UTF-8 bytes."""
    return mmh3.hash(key, 0, signed=False)


def vnode_name(node: str, index: int) -> str:
    return f"{node}#{index}"


@lru_cache(maxsize=4096)
def vnode_positions(node: str, count: int) -> tuple[int, ...]:
    """Positions of a node's virtual nodes 0..count-1 (cached: they never change)."""
    return tuple(mmh3.hash(vnode_name(node, i), 0, signed=False) for i in range(count))


def key_positions(keys: tuple[str, ...] | list[str]) -> np.ndarray:
    return np.fromiter((mmh3.hash(k, 0, signed=False) for k in keys), dtype=np.uint64, count=len(keys))


@dataclass(frozen=True)
class VnodeTable:
    """All virtual nodes of a ring, sorted clockwise by (position, node name, vnode index)."""

    positions: np.ndarray  # uint64, ascending
    node_index: np.ndarray  # index into ``names`` for each virtual node
    vnode_index: np.ndarray  # the i in "N#i"
    names: tuple[str, ...]  # physical node names, in the order given

    @classmethod
    def build(cls, nodes: list[tuple[str, int]]) -> VnodeTable:
        names = tuple(name for name, _ in nodes)
        pos_parts, node_parts, idx_parts = [], [], []
        # Tie-break by node *name*, not by join order: rank names alphabetically.
        name_rank = {name: rank for rank, name in enumerate(sorted(names))}
        rank_parts = []
        for n, (name, count) in enumerate(nodes):
            pos_parts.append(np.array(vnode_positions(name, count), dtype=np.uint64))
            node_parts.append(np.full(count, n, dtype=np.int32))
            idx_parts.append(np.arange(count, dtype=np.int32))
            rank_parts.append(np.full(count, name_rank[name], dtype=np.int32))
        if not pos_parts:
            empty = np.zeros(0, dtype=np.uint64)
            return cls(empty, np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), names)
        positions = np.concatenate(pos_parts)
        node_index = np.concatenate(node_parts)
        vnode_index = np.concatenate(idx_parts)
        ranks = np.concatenate(rank_parts)
        order = np.lexsort((vnode_index, ranks, positions))  # last key is the primary one
        return cls(positions[order], node_index[order], vnode_index[order], names)

    def __len__(self) -> int:
        return len(self.positions)

    def owner_slots(self, positions: np.ndarray) -> np.ndarray:
        """Index (into this table) of the first virtual node at or after each position, wrapping."""
        if len(self.positions) == 0:
            return np.full(len(positions), -1, dtype=np.int64)
        slots = np.searchsorted(self.positions, positions, side="left")
        slots[slots == len(self.positions)] = 0
        return slots

    def owner_slot(self, position: int) -> int:
        return int(self.owner_slots(np.array([position], dtype=np.uint64))[0])

    def preference_list(self, position: int, replicas: int) -> list[tuple[str, int]]:
        """The next ``replicas`` distinct physical nodes clockwise (Dynamo, Cassandra),
        each with the vnode index that first reached it."""
        if len(self.positions) == 0:
            return []
        wanted = min(replicas, len(set(self.node_index.tolist())))
        start = self.owner_slot(position)
        found: list[tuple[str, int]] = []
        seen: set[int] = set()
        total = len(self.positions)
        for step in range(total):
            slot = (start + step) % total
            node = int(self.node_index[slot])
            if node not in seen:
                seen.add(node)
                found.append((self.names[node], int(self.vnode_index[slot])))
                if len(found) == wanted:
                    break
        return found
