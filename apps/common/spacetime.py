"""The space-time diagram as a picture any message-passing concept can place.

One lane per participant (a client, a node, the storage), time running right. Each episode of
the bounded trace (``apps.common.sim.trace``) has its own *slot*: time is to scale inside a
slot and compressed between slots, so a 3 ms walk and a 10 s pause both read. Arrows are the
episode's messages (requests and replies; a lost one is half an arrow and a cross; a timeout is
a dotted line on the waiting lane; a ``mark`` is a short text on its lane). *Bands* (a client's
validity window, a pause) are drawn by the concept from :class:`Page` (which says where a time
is on the page) with :func:`band`.

Slots come in pages: a page holds ``slots`` episodes and the next page starts with the last
``carry`` of the previous one, so adding an episode adds one slot and moves nothing except at a
page turn, however long the run. Older episodes are summarised by a count on the left.

To place it (:func:`draw`): the concept names its three layers (axis: lanes and the count;
episodes: one ``<g>`` per slot; bands), gives its lanes and a :class:`Style` (the slot's short
label, each arrow's CSS class, an optional mark on the episode's lane), and puts the region in
its page with ``{% region %}``: its region template extends ``kit/spacetime.html`` and places
the three layers in ``{% block layers %}``. The region's context holds the viewBox numbers
(:meth:`Geometry.context`), so a scene with more lanes redraws the region whole and everything
else is a diff of keyed slots.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from apps.common.sim.network import Message
from apps.common.sim.trace import Episode, Trace
from apps.rooms.fragments import Picture, markup


def short(text: str, n: int = 10) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass(frozen=True)
class Lane:
    name: str  # what messages' "from" / "to" and episodes' ``lane`` name
    kind: str  # its CSS class (client, node, storage ...)
    height: int


@dataclass(frozen=True)
class Geometry:
    """Where the diagram sits in its SVG's coordinates (``top``: the y of its first line)."""

    top: int
    width: int = 1600
    lanes_x: int = 170  # where the time axis starts (the lane names are left of it)
    right_pad: int = 20
    slots: int = 9
    carry: int = 4  # episodes a new page keeps from the previous one
    slot_pad: int = 14

    @property
    def slot_w(self) -> float:
        return (self.width - self.lanes_x - self.right_pad) / self.slots

    @property
    def right(self) -> int:
        return self.width - self.right_pad

    @property
    def lanes_top(self) -> int:
        return self.top + 48

    def height(self, lanes: Sequence[Lane]) -> int:
        """The y of the diagram's bottom edge."""
        return self.lanes_top + sum(lane.height for lane in lanes) + 20

    def page_of(self, n: int) -> int:
        return max(0, (n - self.carry) // (self.slots - self.carry))

    def page(self, trace: Trace) -> tuple[list[Episode], int]:
        """The episodes on the newest page, and the number of its first slot."""
        if not trace.episodes:
            return [], 0
        first = self.page_of(trace.episodes[-1].n) * (self.slots - self.carry)
        return [e for e in trace.episodes if e.n >= first], first

    def context(self, lanes: Sequence[Lane], **extra: Any) -> dict[str, Any]:
        """The region's context: its viewBox (from 40 above ``top`` to the last lane) and the
        y of its heading; ``extra`` (an id, a class) is compared too."""
        view_top = self.top - 40
        return {"view_top": view_top, "view_w": self.width, "view_h": self.height(lanes) - view_top,
                "heading_y": self.top - 12, **extra}


@dataclass
class Page:
    """The newest page of the diagram: which episodes, where each lane and each time is."""

    geometry: Geometry
    shown: list[Episode]
    first: int
    lane_y: dict[str, float]
    spans: list[tuple[int, int, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        g = self.geometry
        self.spans = [(e.start, e.end, self.slot_x(e) + g.slot_pad, self.slot_x(e) + g.slot_w - g.slot_pad)
                      for e in self.shown]

    def slot_x(self, ep: Episode) -> float:
        return self.geometry.lanes_x + (ep.n - self.first) * self.geometry.slot_w

    def x_of(self, t: int, own: Episode | None = None) -> float:
        """Global ms -> x on this page: to scale inside an episode, compressed between episodes.
        ``own``: an instant shared by two episodes is placed in this one's slot."""
        g = self.geometry
        if own is not None and own.start <= t <= own.end:
            x0 = self.slot_x(own)
            if own.end == own.start:
                return x0 + g.slot_w / 2
            return x0 + g.slot_pad + (g.slot_w - 2 * g.slot_pad) * (t - own.start) / (own.end - own.start)
        spans = self.spans
        if not spans or t <= spans[0][0]:
            return spans[0][2] if spans else g.lanes_x
        for (s, e, x0, x1), nxt in zip(spans, [*spans[1:], None]):
            if s <= t <= e:
                return x0 if e == s else x0 + (x1 - x0) * (t - s) / (e - s)
            if nxt is not None and e < t < nxt[0]:
                return x1 + (nxt[2] - x1) * (t - e) / (nxt[0] - e)  # the gap between two slots
        return g.right

    @property
    def last_end(self) -> int:
        return self.shown[-1].end if self.shown else 0


@dataclass(frozen=True)
class Style:
    """What the concept decides: the slot's short label, each delivered arrow's CSS class, and
    an optional mark (a glyph) in the middle of the slot on the episode's own lane."""

    label: Callable[[Episode], str]
    tone: Callable[[Episode, Message], str]
    mark: Callable[[Episode], str | None] = lambda e: None


def draw(pic: Picture, layers: tuple[str, str, str], geometry: Geometry, lanes: Sequence[Lane], trace: Trace,
         style: Style) -> Page:
    """Draw the lanes and the newest page of ``trace`` into the layers (axis, episodes, bands:
    the bands layer is left to the concept, see :func:`band`)."""
    axis = pic.layer(layers[0])
    eps = pic.layer(layers[1])
    pic.layer(layers[2])
    lane_y: dict[str, float] = {}
    y = float(geometry.lanes_top)
    for lane in lanes:
        lane_y[lane.name] = y + lane.height / 2
        y += lane.height
    for i, lane in enumerate(lanes):
        ly = lane_y[lane.name]
        axis.add(f"lane-{i}", markup(
            "<g id='lane-{}' class='lane {}'><line x1='{}' x2='{}' y1='{}' y2='{}'/><text x='{}' y='{}'>{}</text></g>",
            i, lane.kind, geometry.lanes_x, geometry.right, f"{ly:.0f}", f"{ly:.0f}", geometry.lanes_x - 14,
            f"{ly + 8:.0f}", short(lane.name, 8)))
    shown, first = geometry.page(trace)
    page = Page(geometry, shown, first, lane_y)
    earlier = first - (trace.episodes[0].n if trace.episodes else 0) + trace.dropped
    older_msgs = trace.older_messages + sum(len(e.messages) for e in trace.episodes if e.n < first)
    axis.add("older", markup(
        "<text id='older' class='older' x='{}' y='{}'>{}<tspan x='{}' dy='26'>{}</tspan></text>", 24, geometry.top + 20,
        f"← {earlier:,} earlier" if earlier else "time →", 24, f"{older_msgs:,} msgs" if earlier else ""))
    lanes_h = sum(lane.height for lane in lanes)
    for e in shown:
        eps.add(f"ep-{e.n}", _slot(page, e, lanes_h, style))
    return page


def _slot(page: Page, e: Episode, lanes_h: int, style: Style) -> SafeString:
    g = page.geometry
    x0 = page.slot_x(e)
    parts = [markup("<rect class='slot' x='{}' y='{}' width='{}' height='{}'/><text class='elabel' x='{}' y='{}'>{}</text>",
                    f"{x0 + 4:.0f}", g.top + 44, f"{g.slot_w - 8:.0f}", lanes_h + 16, f"{x0 + 8:.0f}", g.top + 36,
                    style.label(e))]
    strokes: dict[str, list[str]] = {}  # one <path> per kind of arrow: a slot costs little
    for m in e.messages:
        parts += _arrow(page, e, m, strokes, style)
    for tone, ds in strokes.items():
        parts.append(markup("<path class='{}' d='{}'/>", tone, "".join(ds)))
    glyph = style.mark(e)
    if glyph is not None and e.lane in page.lane_y:
        parts.append(markup("<text class='fmark' x='{}' y='{}'>{}</text>", f"{x0 + g.slot_w / 2:.0f}",
                            f"{page.lane_y[e.lane] + 8:.0f}", glyph))
    return markup("<g id='ep-{}' class='episode k-{}{}'><title>{}</title>{}</g>", e.n, e.kind,
                  "" if e.ok is None else (" ok" if e.ok else " no"), e.label, mark_safe("".join(parts)))


def _arrow(page: Page, e: Episode, m: Message, strokes: dict[str, list[str]], style: Style) -> list[SafeString]:
    """One message: adds its stroke to ``strokes`` (by tone); returns any text it needs."""
    lane_y = page.lane_y
    if m["kind"] == "mark":
        y = lane_y.get(m["to"])
        if y is None:
            return []
        return [markup("<text class='grant' x='{}' y='{}'>→ {}</text>", f"{page.slot_x(e) + page.geometry.slot_pad:.0f}",
                       f"{y - 4:.0f}", short(m["result"], 8))]
    y1, y2 = lane_y.get(m["from"]), lane_y.get(m["to"])
    if y1 is None or y2 is None:
        return []
    xa = page.x_of(m["sent"], e)
    arrives = m["arrives"]
    if m["kind"] == "timeout" and arrives is not None:
        strokes.setdefault("tmo", []).append(f"M{xa:.0f} {y2 + 8:.0f}H{page.x_of(arrives, e):.0f}")
        return []
    if arrives is None:  # lost on the way: half an arrow and a cross
        xb, yb = xa + 14, (y1 + y2) / 2
        strokes.setdefault("lost", []).append(f"M{xa:.0f} {y1:.0f}L{xb:.0f} {yb:.0f}")
        return [markup("<text class='lostx' x='{}' y='{}'>✕</text>", f"{xb:.0f}", f"{yb + 6:.0f}")]
    xb = page.x_of(arrives, e)
    strokes.setdefault(style.tone(e, m), []).append(f"M{xa:.0f} {y1:.0f}L{xb:.0f} {y2:.0f}")
    return []


def band(band_id: str, cls: str, x0: float, x1: float, y: float, height: int, text: str, text_x: float,
         text_y: float, rx: int | None = None) -> SafeString:
    """A band on a lane (a validity window, a pause): a rectangle from x0 to x1 (at least 4
    wide) with its text; add it to the bands layer under ``band_id``."""
    corner = markup(" rx='{}'", rx) if rx is not None else ""
    return markup("<g id='{}' class='{}'><rect x='{}' y='{}' width='{}' height='{}'{}/><text x='{}' y='{}'>{}</text></g>",
                  band_id, cls, f"{x0:.0f}", f"{y:.0f}", f"{max(x1 - x0, 4):.0f}", height, corner, f"{text_x:.0f}",
                  f"{text_y:.0f}", text)
