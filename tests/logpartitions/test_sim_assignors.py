"""Consumer group assignors: DOMAIN.md's examples, idle extras, and cooperative stickiness."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.logpartitions.sim import cooperative_sticky_assign, range_assign, roundrobin_assign
from apps.logpartitions.sim.cluster import Group, Member, plan_rebalance


def test_range_gives_7_partitions_over_3_consumers_in_blocks():
    assert range_assign(["c2", "c0", "c1"], 7) == {"c0": (0, 1, 2), "c1": (3, 4), "c2": (5, 6)}


def test_roundrobin_deals_7_partitions_over_3_consumers():
    assert roundrobin_assign(["c1", "c2", "c0"], 7) == {"c0": (0, 3, 6), "c1": (1, 4), "c2": (2, 5)}


def test_more_consumers_than_partitions_leaves_the_extras_idle():
    members = ["c0", "c1", "c2", "c3", "c4"]
    for assignment in (range_assign(members, 3), roundrobin_assign(members, 3),
                       cooperative_sticky_assign(members, 3, {})):
        assert sorted(p for ps in assignment.values() for p in ps) == [0, 1, 2]
        assert sum(1 for ps in assignment.values() if not ps) == 2


def test_cooperative_sticky_keeps_assignments_when_a_member_joins():
    before = {"c0": (0, 1, 2, 3), "c1": (4, 5, 6, 7)}
    after = cooperative_sticky_assign(["c0", "c1", "c2"], 8, before)
    assert set(after["c0"]) <= set(before["c0"]) and set(after["c1"]) <= set(before["c1"])
    assert sorted(len(ps) for ps in after.values()) == [2, 3, 3]


def test_cooperative_rebalance_revokes_only_the_moved_partitions():
    group = Group("g", "cooperative-sticky", members=(Member("c0", partitions=(0, 1, 2, 3)),
                                                     Member("c1", partitions=(4, 5, 6, 7))))
    plan = plan_rebalance(group, ["c0", "c1", "c2"], "cooperative-sticky", 8)
    moved = plan["moved"]
    assert sorted(p for ps in plan["revoked"].values() for p in ps) == moved
    assert plan["added"] == {"c2": moved}
    assert len(moved) == 2 and plan["protocol"] == "cooperative"


def test_eager_rebalance_revokes_everything():
    group = Group("g", "range", members=(Member("c0", partitions=(0, 1, 2)), Member("c1", partitions=(3, 4, 5))))
    plan = plan_rebalance(group, ["c0", "c1", "c2"], "range", 6)
    assert plan["revoked"] == {"c0": [0, 1, 2], "c1": [3, 4, 5]}
    assert plan["assignment"] == {"c0": [0, 1], "c1": [2, 3], "c2": [4, 5]}
    assert plan["moved"] == [2, 4, 5] and plan["protocol"] == "eager"


names = st.lists(st.sampled_from([f"c{i}" for i in range(10)]), min_size=1, max_size=10, unique=True)


@settings(max_examples=80, deadline=None)
@given(names, names, st.integers(1, 12))
def test_cooperative_sticky_is_balanced_and_keeps_what_balance_allows(first, second, partitions):
    before = cooperative_sticky_assign(first, partitions, {})
    after = cooperative_sticky_assign(second, partitions, before)
    sizes = [len(ps) for ps in after.values()]
    assert sorted(p for ps in after.values() for p in ps) == list(range(partitions))
    assert max(sizes) - min(sizes) <= 1
    # Every survivor keeps min(what it had, its new share): nothing moves without need.
    for m in set(first) & set(second):
        kept = len(set(before[m]) & set(after[m]))
        assert kept >= min(len(before[m]), partitions // len(second))
