"""Golden values from DOMAIN.md section 1: the ring follows the published rule exactly.

Each placement is checked against plain ``mmh3`` calls, the three lines any student can type.
"""
from __future__ import annotations

import functools

import mmh3
import numpy as np
import pytest

from apps.hashring.sim import (
    RingState,
    VnodeTable,
    evolve,
    initial_state,
    key_position,
    moved_mask,
    vnode_name,
    vnode_positions,
)
from apps.hashring.sim import ring

MOVEMENT_KEYS = 200_000
# DOMAIN.md's measurements used nodes node-0..node-9 (then node-10) and keys key0..key199999.
MOVEMENT_NODES = [f"node-{i}" for i in range(10)]


def _table(positions: list[int], nodes: list[int], vnodes: list[int], names: tuple[str, ...]) -> VnodeTable:
    """A table built by hand, already sorted clockwise, so positions can be chosen freely."""
    return VnodeTable(
        positions=np.array(positions, dtype=np.uint64),
        node_index=np.array(nodes, dtype=np.int32),
        vnode_index=np.array(vnodes, dtype=np.int32),
        names=names,
    )


def _reference_sorted_vnodes(nodes: list[tuple[str, int]]) -> list[tuple[int, str, int]]:
    """Every vnode as (position, node name, vnode index), sorted: DOMAIN's rule in plain Python."""
    return sorted((mmh3.hash(f"{name}#{i}", signed=False), name, i) for name, count in nodes for i in range(count))


def _add_node(state: RingState, name: str, vnodes: int) -> RingState:
    return evolve(state, {"kind": "node_added", "data": {"name": name, "vnodes": vnodes}})


# -- hashing -----------------------------------------------------------------------------

def test_mmh3_default_is_signed():
    assert mmh3.hash("foo") == -156908512


def test_mmh3_unsigned_value_of_foo():
    assert mmh3.hash("foo", signed=False) == 4138058784


def test_key_position_is_unsigned_mmh3():
    assert key_position("foo") == 4138058784


def test_key_position_hashes_utf8_bytes():
    assert key_position("clé-ü") == mmh3.hash("clé-ü".encode("utf-8"), 0, signed=False)


def test_vnode_name_joins_node_and_index_with_hash():
    assert vnode_name("B", 3) == "B#3"


def test_vnode_positions_equal_mmh3_of_node_hash_index():
    assert vnode_positions("B", 8) == tuple(mmh3.hash(f"B#{i}", signed=False) for i in range(8))


def test_vnode_table_holds_exactly_the_mmh3_positions():
    state = initial_state({"nodes": ["A", "B", "C"], "vnodes": 5, "keys": []})
    table = state.table
    got = [(int(p), table.names[int(n)], int(i)) for p, n, i in zip(table.positions, table.node_index, table.vnode_index)]
    assert got == _reference_sorted_vnodes([("A", 5), ("B", 5), ("C", 5)])


# -- ownership -----------------------------------------------------------------------------

def test_owner_of_key_at_a_vnode_position_is_that_vnode():
    # The key "B#3" hashes to exactly the position of B's vnode 3: ">=" makes B#3 its owner.
    state = initial_state({"nodes": ["A", "B", "C", "D"], "vnodes": 8, "keys": ["B#3"]})
    slot = int(state.owner_slots[0])
    assert (state.node_names[int(state.table.node_index[slot])], int(state.table.vnode_index[slot])) == ("B", 3)


def test_owner_of_key_at_a_vnode_position_names_the_node():
    state = initial_state({"nodes": ["A", "B", "C", "D"], "vnodes": 8, "keys": []})
    assert state.owner_of("C#5") == "C"


def test_owner_of_key_one_past_a_vnode_is_the_next_vnode():
    state = initial_state({"nodes": ["A", "B", "C", "D"], "vnodes": 8, "keys": []})
    table = state.table
    slot = int(np.flatnonzero((table.node_index == state.node_names.index("A")) & (table.vnode_index == 2))[0])
    assert table.owner_slot(int(table.positions[slot]) + 1) == (slot + 1) % len(table)


def test_owner_of_key_past_the_highest_vnode_wraps_to_the_lowest():
    state = initial_state({"nodes": ["A", "B", "C", "D"], "vnodes": 8, "keys": []})
    top = int(state.table.positions[-1])
    key = next(f"key{i}" for i in range(100_000) if key_position(f"key{i}") > top)
    lowest = _reference_sorted_vnodes([(n, 8) for n in "ABCD"])[0]
    assert state.owner_of(key) == lowest[1]


def test_owner_slot_past_the_highest_vnode_is_slot_zero():
    table = _table([10, 20, 30], [0, 1, 0], [0, 0, 1], ("A", "B"))
    assert table.owner_slot(31) == 0


def test_owner_slot_at_the_top_of_the_ring_wraps():
    table = _table([10, 20, 30], [0, 1, 0], [0, 0, 1], ("A", "B"))
    assert table.owner_slot(2**32 - 1) == 0


def test_owner_slot_at_position_zero_is_the_lowest_vnode():
    table = _table([10, 20, 30], [0, 1, 0], [0, 0, 1], ("A", "B"))
    assert table.owner_slot(0) == 0


def test_owner_slot_takes_the_vnode_at_the_same_position():
    table = _table([10, 20, 30], [0, 1, 0], [0, 0, 1], ("A", "B"))
    assert table.owner_slot(20) == 1


def test_owners_match_a_plain_python_walk_of_the_ring():
    keys = [f"user{i}" for i in range(2_000)]
    state = initial_state({"nodes": ["A", "B", "C", "D", "E"], "vnodes": 16, "keys": keys})
    ring_ = _reference_sorted_vnodes([(n, 16) for n in "ABCDE"])
    expected = []
    for key in keys:
        h = mmh3.hash(key, signed=False)
        expected.append(next((name for pos, name, _ in ring_ if pos >= h), ring_[0][1]))
    assert [state.node_names[i] for i in state.owners] == expected


# -- ties ----------------------------------------------------------------------------------

def _build_with_positions(monkeypatch: pytest.MonkeyPatch, fake: dict[str, tuple[int, ...]], nodes: list[str]) -> VnodeTable:
    monkeypatch.setattr(ring, "vnode_positions", lambda name, count: fake[name][:count])
    return VnodeTable.build([(name, len(fake[name])) for name in nodes])


def test_vnode_table_build_breaks_ties_by_node_name_not_join_order(monkeypatch):
    table = _build_with_positions(monkeypatch, {"B": (100,), "A": (100,)}, ["B", "A"])
    assert [table.names[int(n)] for n in table.node_index] == ["A", "B"]


def test_vnode_table_build_breaks_ties_within_a_node_by_vnode_index(monkeypatch):
    table = _build_with_positions(monkeypatch, {"A": (100, 100, 100)}, ["A"])
    assert table.vnode_index.tolist() == [0, 1, 2]


def test_vnode_table_build_sorts_by_position_before_name(monkeypatch):
    table = _build_with_positions(monkeypatch, {"A": (300, 100), "B": (200, 100)}, ["B", "A"])
    got = [(int(p), table.names[int(n)], int(i)) for p, n, i in zip(table.positions, table.node_index, table.vnode_index)]
    assert got == [(100, "A", 1), (100, "B", 1), (200, "B", 0), (300, "A", 0)]


def test_vnode_table_build_tie_owner_is_the_lowest_name_and_index(monkeypatch):
    table = _build_with_positions(monkeypatch, {"C": (50, 100), "B": (100, 100), "A": (10,)}, ["C", "B", "A"])
    slot = table.owner_slot(60)
    assert (table.names[int(table.node_index[slot])], int(table.vnode_index[slot])) == ("B", 0)


def test_vnode_table_build_tie_wrap_owner_is_the_lowest_name_at_the_lowest_position(monkeypatch):
    table = _build_with_positions(monkeypatch, {"Z": (5,), "M": (5,), "Q": (700,)}, ["Z", "Q", "M"])
    slot = table.owner_slot(701)
    assert table.names[int(table.node_index[slot])] == "M"


# -- replication ---------------------------------------------------------------------------

def test_preference_list_is_next_distinct_nodes_clockwise():
    table = _table([10, 20, 30, 40, 50], [0, 0, 1, 0, 2], [0, 1, 0, 2, 0], ("A", "B", "C"))
    assert table.preference_list(15, 3) == [("A", 1), ("B", 0), ("C", 0)]


def test_preference_list_wraps_past_the_top():
    table = _table([10, 20, 30, 40, 50], [0, 0, 1, 0, 2], [0, 1, 0, 2, 0], ("A", "B", "C"))
    assert table.preference_list(45, 3) == [("C", 0), ("A", 0), ("B", 0)]


def test_preference_list_stops_at_the_number_of_physical_nodes():
    table = _table([10, 20, 30], [0, 1, 0], [0, 0, 1], ("A", "B"))
    assert table.preference_list(25, 5) == [("A", 1), ("B", 0)]


def test_preference_list_first_entry_is_the_owner():
    state = initial_state({"nodes": ["A", "B", "C", "D"], "vnodes": 8, "keys": []})
    assert state.preference_list("user7")[0][0] == state.owner_of("user7")


def test_preference_list_matches_a_plain_python_walk_of_the_ring():
    state = initial_state({"nodes": ["A", "B", "C", "D", "E"], "vnodes": 4, "keys": []})
    ring_ = _reference_sorted_vnodes([(n, 4) for n in "ABCDE"])
    for key in [f"user{i}" for i in range(200)]:
        h = mmh3.hash(key, signed=False)
        start = next((i for i, (pos, _, _) in enumerate(ring_) if pos >= h), 0)
        expected: list[tuple[str, int]] = []
        for step in range(len(ring_)):
            _, name, idx = ring_[(start + step) % len(ring_)]
            if name not in [n for n, _ in expected]:
                expected.append((name, idx))
        assert state.preference_list(key) == expected[:3]


# -- movement (DOMAIN.md: 200k keys, 10 nodes, add an 11th) -----------------------------------

@pytest.fixture(scope="module")
def movement_keys() -> list[str]:
    return [f"key{i}" for i in range(MOVEMENT_KEYS)]


@pytest.fixture(scope="module")
def added_100_vnodes(movement_keys: list[str]) -> tuple[RingState, RingState]:
    before = initial_state({"nodes": MOVEMENT_NODES, "vnodes": 100, "keys": movement_keys})
    return before, _add_node(before, "node-10", 100)


@pytest.fixture(scope="module")
def added_1_vnode(movement_keys: list[str]) -> tuple[RingState, RingState]:
    before = initial_state({"nodes": MOVEMENT_NODES, "vnodes": 1, "keys": movement_keys})
    return before, _add_node(before, "node-10", 1)


def test_movement_adding_11th_node_with_100_vnodes_moves_about_9_7_percent(added_100_vnodes):
    _, after = added_100_vnodes
    assert 0.090 <= after.last_change.moved / MOVEMENT_KEYS <= 0.105


def test_movement_adding_a_node_moves_keys_only_to_the_new_node(added_100_vnodes):
    before, after = added_100_vnodes
    moved = moved_mask(before, after)
    assert set(np.array(after.node_names)[after.owners[moved]].tolist()) == {"node-10"}


def test_movement_moved_count_equals_keys_on_the_new_node(added_100_vnodes):
    _, after = added_100_vnodes
    assert after.last_change.moved == after.counts["node-10"]


def test_movement_ideal_is_k_over_n_plus_one(added_100_vnodes):
    _, after = added_100_vnodes
    assert after.last_change.ideal == pytest.approx(MOVEMENT_KEYS / 11)


def test_movement_adding_11th_node_with_1_vnode_moves_about_19_7_percent(added_1_vnode):
    _, after = added_1_vnode
    assert 0.190 <= after.last_change.moved / MOVEMENT_KEYS <= 0.205


def test_movement_modulo_10_to_11_moves_about_90_8_percent(added_100_vnodes):
    _, after = added_100_vnodes
    assert 0.89 <= after.last_change.modulo_moved / MOVEMENT_KEYS <= 0.92


def test_movement_removing_a_node_moves_only_its_keys(added_100_vnodes):
    before, _ = added_100_vnodes
    after = evolve(before, {"kind": "node_removed", "data": {"name": "node-3"}})
    moved = moved_mask(before, after)
    assert set(np.array(before.node_names)[before.owners[moved]].tolist()) == {"node-3"}


def test_movement_removing_a_node_moves_all_its_keys(added_100_vnodes):
    before, _ = added_100_vnodes
    after = evolve(before, {"kind": "node_removed", "data": {"name": "node-3"}})
    assert after.last_change.moved == before.counts["node-3"]


# -- balance vs vnodes (DOMAIN.md: std/mean V=1 0.83, V=10 0.27, V=100 0.08) ---------------

BALANCE_KEYS = [f"key{i}" for i in range(50_000)]


@functools.cache
def _balance(vnodes: int, trials: int = 3) -> float:
    """Mean over trials of std/mean of keys per node, 10 nodes, a fresh set of names per trial."""
    ratios = []
    for trial in range(trials):
        state = initial_state({"nodes": [f"t{trial}-node-{i}" for i in range(10)], "vnodes": vnodes, "keys": BALANCE_KEYS})
        counts = np.array(list(state.counts.values()), dtype=float)
        ratios.append(counts.std() / counts.mean())
    return float(np.mean(ratios))


def test_balance_one_vnode_is_very_uneven():
    assert 0.5 <= _balance(1) <= 1.3


def test_balance_ten_vnodes_is_about_a_quarter():
    assert 0.17 <= _balance(10) <= 0.42


def test_balance_hundred_vnodes_is_within_about_ten_percent():
    assert 0.05 <= _balance(100) <= 0.14


def test_balance_improves_as_vnodes_grow():
    assert _balance(1) > _balance(10) > _balance(100)


@pytest.mark.parametrize("vnodes", [1, 10, 100])
def test_balance_std_over_mean_is_about_one_over_sqrt_vnodes(vnodes):
    assert 0.5 <= _balance(vnodes) * np.sqrt(vnodes) <= 1.4
