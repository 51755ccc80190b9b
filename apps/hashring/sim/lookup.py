"""Where a key lands on the ring and why: the numbers a student can check by hand."""
from __future__ import annotations

from typing import TypedDict

from .core import RingState
from .ring import RING_SIZE, key_position


class Placement(TypedDict):
    """A key's position, the vnode that owns it and the vnode just before it."""

    key: str
    hash: int
    degrees: float
    owner: str
    vnode: int
    vnode_pos: int
    wrapped: bool  # the walk passed the top of the ring
    prev_name: str
    prev_vnode: int
    prev_pos: int


class LookupView(Placement):
    """A lookup: the key's placement and its preference list (the next RF distinct nodes)."""

    prefs: list[tuple[str, int]]
    replicas: int
    on_ring: bool  # the key is stored, not only looked up


def placement(state: RingState, key: str) -> Placement | None:
    """Where a key lands and why: its position, the vnode just before it and the owning vnode."""
    if not state.nodes:
        return None
    h = key_position(key)
    table = state.table
    slot = table.owner_slot(h)
    prev = (slot - 1) % len(table)
    return {
        "key": key, "hash": h, "degrees": round(360 * h / RING_SIZE, 1),
        "owner": table.names[int(table.node_index[slot])], "vnode": int(table.vnode_index[slot]),
        "vnode_pos": int(table.positions[slot]), "wrapped": int(table.positions[slot]) < h,
        "prev_name": table.names[int(table.node_index[prev])], "prev_vnode": int(table.vnode_index[prev]),
        "prev_pos": int(table.positions[prev]),
    }


def lookup_view(state: RingState) -> LookupView | None:
    """The room's current lookup (``state.lookup``), or None when there is none or no node."""
    place = placement(state, state.lookup) if state.lookup else None
    if place is None:
        return None
    return LookupView(**place, prefs=state.table.preference_list(place["hash"], state.replicas),
                      replicas=state.replicas, on_ring=place["key"] in state.key_set)
