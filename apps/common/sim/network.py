"""A deterministic network for message-passing concepts (the lock, workflows, API protocols).

Pure like every ``sim`` module: no Django, no wall clock, no shared random. Time is logical
milliseconds chosen by the caller; chance (message loss, latency jitter) comes from
``Random(seed)``, drawn in the order messages are sent, so a run is the same for a seed.

- :class:`Links`: the network's shape, an immutable value a state can hold or rebuild: the
  one-way latency of each directed link (``(sender, receiver) -> ms``, others ``default_ms``),
  links that are cut (both directions lose everything), partitions (groups of participants that
  cannot reach each other: two participants talk only when they are on the same side; everyone
  not listed is on one more side together) and a loss probability per message.
  :meth:`Links.round_trips` builds it from round trips, as a lock client measures its links:
  the request takes ``rtt // 2`` and the reply the rest, so a reply is back ``rtt`` after its
  request left.
- :class:`EventQueue`: what happens next, ordered by time, then an optional rank (a phase that
  must come first at one instant), then the order things were pushed (a sequence number): two
  events at one instant never swap places from one run to the next.
- :class:`Network`: links + a seeded queue. ``send(msg, at)`` returns when ``msg`` is
  delivered (and queues it) or None when it is lost; ``pop()`` gives the next delivery due.

A message is a plain JSON dict (:class:`Message`): ``kind`` (request, reply, timeout, mark),
``op``, ``from``, ``to``, ``sent``, ``arrives`` (None: lost) and ``result`` (what it carried or
answered), the same dict the bounded trace (``trace.py``) keeps and the space-time diagram
(``apps/common/spacetime.py``) draws.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Generic, TypedDict, TypeVar

T = TypeVar("T")

Message = TypedDict("Message", {
    "kind": str,  # request | reply | timeout | mark
    "op": str,  # what was asked: SET, DEL, GRANT, APPEND, WRITE, ...
    "from": str,
    "to": str,
    "sent": int,
    "arrives": int | None,  # None: lost on the way (cut link, partition, dropped)
    "result": str,
})


def message(kind: str, op: str, frm: str, to: str, sent: int, arrives: int | None, result: str) -> Message:
    return {"kind": kind, "op": op, "from": frm, "to": to, "sent": sent, "arrives": arrives, "result": result}


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class Links:
    """The shape of the network: latency per directed link, cuts, partitions, loss."""

    default_ms: int = 1
    latency: tuple[tuple[str, str, int], ...] = ()  # (sender, receiver, one-way ms)
    cut: frozenset[tuple[str, str]] = frozenset()  # unordered pairs (sorted): nothing gets through
    partitions: tuple[frozenset[str], ...] = ()
    loss: float = 0.0  # the chance that any one message is dropped
    jitter_ms: int = 0  # each delivery takes up to this much longer (drawn per message)
    _table: dict[tuple[str, str], int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._table.update(((a, b), ms) for a, b, ms in self.latency)

    @classmethod
    def round_trips(cls, rtts: Iterable[tuple[str, str, int]], default_rtt: int = 2,
                    cut: Iterable[tuple[str, str]] = ()) -> Links:
        """From round trips ``(a, b, rtt)``: a -> b takes ``rtt // 2``, b -> a the rest."""
        legs: list[tuple[str, str, int]] = []
        for a, b, rtt in rtts:
            legs += [(a, b, rtt // 2), (b, a, rtt - rtt // 2)]
        return cls(default_ms=default_rtt // 2, latency=tuple(legs), cut=frozenset(_pair(a, b) for a, b in cut))

    def one_way(self, frm: str, to: str) -> int:
        return self._table.get((frm, to), self.default_ms)

    def rtt(self, a: str, b: str) -> int:
        return self.one_way(a, b) + self.one_way(b, a)

    def side(self, name: str) -> int:
        """Which side of the partitions ``name`` is on (-1: with everyone not listed)."""
        return next((i for i, group in enumerate(self.partitions) if name in group), -1)

    def reachable(self, frm: str, to: str) -> bool:
        """Can anything get from ``frm`` to ``to`` (not cut, same side of every partition)?"""
        return _pair(frm, to) not in self.cut and self.side(frm) == self.side(to)

    def with_cut(self, a: str, b: str, cut: bool = True) -> Links:
        pairs = self.cut | {_pair(a, b)} if cut else self.cut - {_pair(a, b)}
        return Links(self.default_ms, self.latency, frozenset(pairs), self.partitions, self.loss, self.jitter_ms)

    def with_latency(self, frm: str, to: str, ms: int) -> Links:
        legs = tuple(x for x in self.latency if (x[0], x[1]) != (frm, to)) + ((frm, to, ms),)
        return Links(self.default_ms, legs, self.cut, self.partitions, self.loss, self.jitter_ms)

    def partitioned(self, *groups: Iterable[str]) -> Links:
        return Links(self.default_ms, self.latency, self.cut, tuple(frozenset(g) for g in groups), self.loss,
                     self.jitter_ms)


class EventQueue(Generic[T]):
    """A priority queue of ``(time, item)``: earliest first; at one instant, lower ``rank``
    first, then first pushed first (every push takes the next sequence number)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, T]] = []
        self._seq = 0

    def push(self, time: int, item: T, rank: int = 0) -> int:
        """Queue ``item`` at ``time``; returns its sequence number."""
        seq = self._seq
        self._seq += 1
        heapq.heappush(self._heap, (time, rank, seq, item))
        return seq

    def pop(self) -> tuple[int, T] | None:
        """The next ``(time, item)``, or None when nothing is queued."""
        if not self._heap:
            return None
        time, _rank, _seq, item = heapq.heappop(self._heap)
        return time, item

    def drain(self) -> Iterator[tuple[int, T]]:
        """Pop everything in order, including what is pushed meanwhile (a discrete-event run)."""
        heap, pop = self._heap, heapq.heappop
        while heap:
            time, _rank, _seq, item = pop(heap)
            yield time, item

    def pop_due(self, now: int) -> list[tuple[int, T]]:
        """Everything due at or before ``now``, in order."""
        out: list[tuple[int, T]] = []
        while self._heap and self._heap[0][0] <= now:
            time, _rank, _seq, item = heapq.heappop(self._heap)
            out.append((time, item))
        return out

    def next_time(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


class Network:
    """Messages in flight over ``links``, deterministic for ``seed``."""

    def __init__(self, links: Links, seed: int | str = 0) -> None:
        self.links = links
        self.random = Random(seed)
        self.queue: EventQueue[Message] = EventQueue()

    def delivery(self, frm: str, to: str, at: int) -> int | None:
        """When a message sent now would arrive (None: lost), drawing loss and jitter; not queued."""
        if not self.links.reachable(frm, to):
            return None
        if self.links.loss and self.random.random() < self.links.loss:
            return None
        jitter = self.random.randint(0, self.links.jitter_ms) if self.links.jitter_ms else 0
        return at + self.links.one_way(frm, to) + jitter

    def send(self, msg: Mapping[str, object], at: int) -> int | None:
        """Send ``msg`` (a dict with "from" and "to") at ``at``: its delivery time, queued as a
        :class:`Message` with ``sent`` and ``arrives`` filled in, or None when it is lost."""
        frm, to = str(msg["from"]), str(msg["to"])
        arrives = self.delivery(frm, to, at)
        if arrives is not None:
            self.queue.push(arrives, message(str(msg.get("kind", "request")), str(msg.get("op", "")), frm, to, at,
                                             arrives, str(msg.get("result", ""))))
        return arrives

    def pop(self) -> tuple[int, Message] | None:
        """The next delivery due: ``(time, message)``, or None when nothing is in flight."""
        return self.queue.pop()

    def pop_due(self, now: int) -> list[tuple[int, Message]]:
        return self.queue.pop_due(now)

    def __len__(self) -> int:
        return len(self.queue)
