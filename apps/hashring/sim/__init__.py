"""Consistent hashing, the teaching core: pure Python, no Django, no I/O, no wall clock.

Keys and servers are hashed onto the same circle of 2**32 positions. A key is stored on the
first server found walking clockwise from the key. Adding a server takes over only the keys
between it and its predecessor; removing one hands only its own keys to its successor. Regular
``hash % N`` placement, by contrast, reshuffles almost every key when N changes. Each server
appears many times on the ring (virtual nodes) so that the arcs it owns average out.
"""
from apps.common.sim import Rejected

from .core import (
    COMMANDS,
    EVOLVE,
    Change,
    Limits,
    Node,
    RingState,
    decide,
    evolve,
    from_json,
    initial_state,
    moved_mask,
    to_json,
)
from .events import EVENTS
from .lookup import LookupView, Placement, lookup_view, placement
from .narration import narrate
from .ring import VnodeTable, key_position, vnode_name, vnode_positions

__all__ = [
    "COMMANDS", "EVENTS", "EVOLVE", "Change", "Limits", "LookupView", "Node", "Placement", "Rejected", "RingState",
    "VnodeTable", "decide", "evolve", "from_json", "initial_state", "key_position", "lookup_view",
    "moved_mask", "narrate", "placement", "to_json", "vnode_name", "vnode_positions",
]
