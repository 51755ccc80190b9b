"""Consistent hashing, the teaching core: pure Python, no Django, no I/O, no wall clock.

Keys and servers are hashed onto the same circle of 2**32 positions. A key is stored on the
first server found walking clockwise from the key. Adding a server takes over only the keys
between it and its predecessor; removing one hands only its own keys to its successor. Regular
``hash % N`` placement, by contrast, reshuffles almost every key when N changes. Each server
appears many times on the ring (virtual nodes) so that the arcs it owns average out.
"""
from .core import (
    COMMANDS,
    Change,
    Limits,
    Node,
    Rejected,
    RingState,
    decide,
    evolve,
    from_json,
    initial_state,
    moved_mask,
    to_json,
)
from .ring import VnodeTable, key_position, vnode_name, vnode_positions

__all__ = [
    "COMMANDS", "Change", "Limits", "Node", "Rejected", "RingState",
    "VnodeTable", "decide", "evolve", "from_json", "initial_state", "key_position",
    "moved_mask", "to_json", "vnode_name", "vnode_positions",
]
