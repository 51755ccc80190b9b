"""Message flights: a dot flying from its sender to its receiver, drawn in an update's picture.

The one module every message-passing concept uses to show what an update just sent (the lock's
SETs and replies, the log's produced records, a protocol's requests). Flights belong in a
*transient* layer (``pic.layer("xx-flights", transient=True)``): the engine sends the layer
whole with every update that has them and a full render shows none, so nothing ever flies twice.

Timing (:class:`Timing`): simulated milliseconds are scaled so one update's flights play in
about ``ANIM_MS`` (3 s) whatever they span, never slower than ``MAX_SCALE`` animation ms per
simulated ms; every flight lasts at least ``MIN_FLIGHT_MS`` (600 ms): a dot always glides, it
never jumps, however short its link. Each flight starts at its own send time (``at_ms``, from
the moment the update arrives), so the order of a protocol's messages is visible.

Two ways to draw, one model (:class:`Flight`, :class:`Answer`):

- :func:`group` (many flights, few bytes): one ``<g class="flights" data-flights="...">`` whose
  attribute lists every flight as ``m,x1,y1,x2,y2,at,dur,tone`` (a dot along a straight line;
  ``tone`` is the dot's CSS class, ``"<tone> lost"`` for a message lost half-way) and every
  answer as ``a,x,y,at,tone,text`` (a text shown from ``at`` on). ``static/distviz/flights.js`` turns each item
  into an SVG ``<circle class="msg <tone>">`` with an ``animateMotion`` (SMIL) begun when the
  update arrives, and each answer into ``<text class="answer <tone>">``. About 30 bytes per
  flight instead of about 150: a lock acquisition sends 15 items, a class race 300.
- :func:`smil` (a few flights along any path, e.g. a curve, with a trail): the SVG itself, a
  ``<circle>`` with ``<animateMotion begin="indefinite">`` (``flights.js`` begins every such
  animation when the update arrives, ``data-at`` ms later).

Both honour ``prefers-reduced-motion`` through the concept's CSS (hide ``.msg`` / ``.flight
circle``; answers stay).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.utils.safestring import SafeString

from apps.rooms.fragments import markup

ANIM_MS = 3000  # one update's flights play in about this long
MAX_SCALE = 120.0  # animation ms per simulated ms, at most (a 1 ms hop takes 120 ms, not 3 s)
MIN_FLIGHT_MS = 600  # a dot glides for at least this long: never a jump
LOST_MS = 8  # how long (simulated) a lost message flies before it vanishes half-way


@dataclass(frozen=True)
class Flight:
    """A dot from (x1, y1) to (x2, y2), leaving ``at_ms`` after the update arrives, for ``dur_ms``."""

    x1: float
    y1: float
    x2: float
    y2: float
    at_ms: float
    dur_ms: float
    tone: str  # the dot's CSS class (the concept's colours: req, okr, failr, ...)
    lost: bool = False  # lost on the way: it flies half-way and vanishes

    def item(self) -> str:
        x2, y2 = ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2) if self.lost else (self.x2, self.y2)
        return (f"m,{self.x1:.0f},{self.y1:.0f},{x2:.0f},{y2:.0f},{self.at_ms:.0f},{self.dur_ms:.0f},"
                f"{self.tone}{' lost' if self.lost else ''}")


@dataclass(frozen=True)
class Answer:
    """A text (a node's "OK") shown at (x, y) from ``at_ms`` after the update arrives."""

    x: float
    y: float
    at_ms: float
    tone: str
    text: str

    def item(self) -> str:
        return f"a,{self.x:.0f},{self.y:.0f},{self.at_ms:.0f},{self.tone},{self.text.replace(';', ' ')}"


@dataclass(frozen=True)
class Timing:
    """Simulated ms -> animation ms for one update: ``t0`` plays at 0, ``scale`` ms per ms."""

    t0: int
    scale: float

    @classmethod
    def span(cls, t0: int, t1: int, budget_ms: float = ANIM_MS, max_scale: float = MAX_SCALE) -> Timing:
        """Play [t0, t1] in ``budget_ms`` (slower than ``max_scale`` never)."""
        return cls(t0, min(budget_ms / max(t1 - t0, 1), max_scale))

    @classmethod
    def of(cls, messages: Sequence[dict[str, object]], budget_ms: float = ANIM_MS) -> Timing:
        """For messages with "sent" and "arrives" (None: lost, counted as ``sent + 10``)."""
        t0 = min(_ms(m["sent"]) for m in messages)
        t1 = max(_ms(m["arrives"]) if m["arrives"] is not None else _ms(m["sent"]) + 10 for m in messages)
        return cls.span(t0, t1, budget_ms)

    def at(self, t: int) -> float:
        return (t - self.t0) * self.scale

    def duration(self, sent: int, arrives: int | None) -> float:
        """How long a message flies: its latency scaled (a lost one ``LOST_MS``), at least ``MIN_FLIGHT_MS``."""
        return max(((arrives if arrives is not None else sent + LOST_MS) - sent) * self.scale, MIN_FLIGHT_MS)


def _ms(v: object) -> int:
    assert isinstance(v, int)
    return v


def encode(items: Iterable[Flight | Answer]) -> str:
    return ";".join(x.item() for x in items)


def group(element_id: str, items: Iterable[Flight | Answer], cls: str = "flights") -> SafeString:
    """The flights of one update as one element (drawn by ``flights.js``): add it to a transient layer."""
    return markup("<g id='{}' class='{}' data-flights='{}'/>", element_id, cls, encode(items))


def smil(element_id: str, path: str, dur_ms: float, cls: str = "flight", at_ms: float = 0, r: int = 9,
         trail: bool = True) -> SafeString:
    """One flight along any SVG ``path`` as SVG: a dot (``r``), with a dashed trail if asked."""
    dur = f"{max(dur_ms, MIN_FLIGHT_MS) / 1000:g}s"
    at = markup(" data-at='{}'", f"{at_ms:.0f}") if at_ms else ""
    line = markup("<path class='trail' d='{}'/>", path) if trail else ""
    return markup("<g id='{}' class='{}'>{}<circle r='{}'><animateMotion begin='indefinite'{} dur='{}' fill='freeze' "
                  "path='{}'/></circle></g>", element_id, cls, line, r, at, dur, path)
