"""apps/common/sim/network.py: latency per link, loss, partitions, a queue ordered by time then sequence."""
from __future__ import annotations

from apps.common.sim.network import EventQueue, Links, Network


def test_round_trips_split_into_a_request_and_a_reply_leg():
    links = Links.round_trips([("C1", "A", 7)], default_rtt=4)
    assert (links.one_way("C1", "A"), links.one_way("A", "C1"), links.rtt("C1", "A")) == (3, 4, 7)
    assert links.one_way("A", "B") == 2  # a link not listed: half the default round trip


def test_send_delivers_after_the_links_latency_and_queues_the_message():
    net = Network(Links(default_ms=5, latency=(("a", "b", 3),)))
    assert net.send({"from": "a", "to": "b", "op": "SET"}, at=10) == 13
    assert net.send({"from": "b", "to": "a", "op": "OK"}, at=10) == 15
    first = net.pop()
    assert first is not None and first[0] == 13 and first[1]["op"] == "SET" and first[1]["arrives"] == 13
    assert len(net) == 1


def test_queue_orders_by_time_then_by_the_order_of_pushing():
    q: EventQueue[str] = EventQueue()
    for t, name in ((5, "late"), (1, "y"), (1, "x"), (0, "first"), (1, "z")):
        q.push(t, name)
    assert [q.pop() for _ in range(5)] == [(0, "first"), (1, "y"), (1, "x"), (1, "z"), (5, "late")]
    assert q.pop() is None


def test_a_rank_goes_before_the_sequence_at_one_instant():
    q: EventQueue[str] = EventQueue()
    q.push(1, "counted", rank=2)
    q.push(1, "set", rank=1)
    q.push(1, "start", rank=0)
    q.push(0, "earlier", rank=9)
    assert [item for _, item in q.pop_due(1)] == ["earlier", "start", "set", "counted"]


def test_pop_due_leaves_what_is_not_due():
    q: EventQueue[int] = EventQueue()
    for t in (3, 1, 2, 9):
        q.push(t, t)
    assert [t for t, _ in q.pop_due(3)] == [1, 2, 3] and q.next_time() == 9


def test_a_cut_link_loses_both_directions_and_healing_restores_it():
    links = Links(default_ms=1).with_cut("C1", "D")
    net = Network(links)
    assert net.send({"from": "C1", "to": "D"}, 0) is None and net.send({"from": "D", "to": "C1"}, 0) is None
    assert net.send({"from": "C1", "to": "E"}, 0) == 1
    assert Network(links.with_cut("D", "C1", cut=False)).send({"from": "C1", "to": "D"}, 0) == 1
    assert len(net) == 1  # lost messages are not queued


def test_partitions_keep_the_sides_apart():
    links = Links().partitioned({"A", "B"}, {"C"})
    assert links.reachable("A", "B") and not links.reachable("A", "C") and not links.reachable("C", "D")
    assert links.reachable("D", "E")  # neither is listed: the same (remaining) side
    assert not links.reachable("A", "D")


def test_loss_and_jitter_are_the_same_for_a_seed_and_differ_for_another():
    links = Links(default_ms=10, loss=0.3, jitter_ms=5)

    def run(seed: int) -> list[int | None]:
        net = Network(links, seed)
        return [net.send({"from": "a", "to": "b"}, t) for t in range(200)]

    first = run(1)
    assert first == run(1) and first != run(2)
    lost = first.count(None)
    assert 30 < lost < 90  # about 30% of 200
    assert all(t is None or 10 <= t - i <= 15 for i, t in enumerate(first))


def test_latency_can_be_changed_per_direction():
    links = Links(default_ms=1).with_latency("a", "b", 40)
    assert (links.one_way("a", "b"), links.one_way("b", "a")) == (40, 1)
    assert links.with_latency("a", "b", 2).one_way("a", "b") == 2
