"""Derived data hangs on each state object; a new state must never share the old one's cache,
or what was derived for the old state (its per-key hashes, say) would be read for the new one."""
from __future__ import annotations

import pytest

from apps.hashring.sim import decide, evolve, initial_state

COMMANDS = [
    {"type": "lookup", "key": "user42"},
    {"type": "set_replicas", "replicas": 2},
    {"type": "set_stream_rate", "rate": 20},
    {"type": "add_key", "key": "zed"},
    {"type": "remove_key", "key": "user1"},
    {"type": "add_node", "name": "E"},
    {"type": "remove_node", "name": "A"},
    {"type": "set_vnodes", "vnodes": 3},
    {"type": "add_random_keys", "count": 5, "_seed": "s"},
    {"type": "tick", "dt_ms": 1000, "_seed": "s"},
    {"type": "clear_keys"},
]


@pytest.mark.parametrize("command", COMMANDS, ids=[c["type"] for c in COMMANDS])
def test_evolve_gives_the_new_state_its_own_cache(command):
    before = initial_state()
    before._cache["derived-from-before"] = object()
    after = before
    for event in decide(before, command):
        after = evolve(after, event)
    assert after._cache is not before._cache
    assert "derived-from-before" not in after._cache


def test_owners_placed_incrementally_equal_a_fresh_placement():
    state = initial_state({"nodes": ["A", "B", "C"], "vnodes": 16, "keys": [f"k{i}" for i in range(500)]})
    assert len(state.owners) == 500  # derive owners, so the next state may extend them
    after = evolve(state, {"kind": "keys_added", "data": {"seed": "s", "count": 300}})
    after = evolve(after, {"kind": "key_added", "data": {"key": "one-more"}})
    fresh = initial_state({"nodes": ["A", "B", "C"], "vnodes": 16, "keys": list(after.keys)})
    assert after.owners.tolist() == fresh.owners.tolist()
    assert after.counts == fresh.counts
