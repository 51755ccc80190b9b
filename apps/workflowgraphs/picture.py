"""The workflow room's picture as data (``apps.rooms.fragments``): one run, two styles, side by side.

One SVG, 1600 wide (text at least 24 units: about 20 px on a projector), split in two halves:

*Orchestrated* (left): the process as a graph, BPMN-like: one box per task with its Airflow
task-instance state (coloured and named), sequence flows between them, and the orchestrator at
the centre, joined to every task by a spoke along which its commands and the replies fly. The
orchestrator's box says whether it is up, which step it waits on and what it will compensate.

*Choreographed* (right): the same services with no centre, above and below an event bus; each
shows its own local state and the topics it subscribes to. Publishes fly down (or up) into the
bus, deliveries fly from the bus to each subscriber.

Under both, each style's ledger of committed local transactions (T1.. and C..). The comparison
strip and the "reconstructed from events" panel are HTML panels; the controls are panels too, so
a new scene's steps, services and topics show in their menus.

Flights (``apps.common.flights``) play in the room clock's time: one simulated second takes one
second at speed 1 (``1 / view.speed`` animation ms per simulated ms), and a message still in
flight when a tick ends flies on, from where it was, in the next tick's update.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from apps.common import flights, spacetime
from apps.common.flights import Flight as Dot
from apps.common.sim.network import Message
from apps.common.sim.trace import Episode
from apps.rooms.fragments import Change, Picture, markup, render_tight
from apps.rooms.registry import RoomView

from .sim import WorkflowState, comparison, outcome_sequence, reconstruct
from .sim.airflow import TRIGGER_RULES
from .sim.process import Process
from .sim.state import BUS, ORCHESTRATOR, Flight, Service
from .sim.summary import subscriptions

WIDTH = 1600
HALF = 790  # each view's width
CHOR_X = 810  # where the choreographed view starts
STAGE_H = 640
LINE = 28  # one line of 24-unit text
MESSAGES = frozenset({"command", "reply", "publish", "deliver"})
MAX_DOTS = 80
STYLE_TITLE = {"orch": "Orchestrated: one conductor", "chor": "Choreographed: events on a bus"}


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def edge(self, tx: float, ty: float) -> tuple[float, float]:
        """Where the line from the box's centre towards (tx, ty) leaves the box."""
        dx, dy = tx - self.cx, ty - self.cy
        if dx == 0 and dy == 0:
            return self.cx, self.cy
        sx = (self.w / 2) / abs(dx) if dx else float("inf")
        sy = (self.h / 2) / abs(dy) if dy else float("inf")
        s = min(sx, sy)
        return self.cx + dx * s, self.cy + dy * s


CHAR_W = 14.5  # a 24-unit character's average width (DejaVu Sans, the projector's font)
NARROW, WIDE = frozenset("iljtfr .,:;·'|!()[]-"), frozenset("mwMW")


def text_w(text: str, bold: bool = False) -> float:
    """About how wide ``text`` is at 24 units (DejaVu Sans): narrow and wide letters apart."""
    w = sum(8.0 if c in NARROW else 20.0 if c in WIDE else 16.5 if c.isupper() or c.isdigit() else 13.5 for c in text)
    return w * (1.12 if bold else 1.0)


def lines_svg(x: float, y: float, lines: list[tuple[str, str]], width: float, step: int = LINE) -> SafeString:
    """Lines of text from (x, y) down, one ``<text>`` each; a line too long for ``width`` is
    squeezed to fit (``textLength``: narrower glyphs, never a smaller size), or cut beyond 70 %."""
    out = []
    for k, (t, cls) in enumerate(lines):
        bold = any(b in cls for b in ("name", "state", "obad", "ogood"))
        while text_w(t, bold) * 0.7 > width:
            t = t[:-2] + "…"
        fit = markup(" textLength='{}' lengthAdjust='spacingAndGlyphs'", f"{width:.0f}") if text_w(t, bold) > width else ""
        out.append(markup("<text x='{}' y='{}' class='{}'{}>{}</text>", f"{x:.0f}", f"{y + k * step:.0f}", cls, fit, t))
    return mark_safe("".join(out))


def short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def secs(ms: int) -> str:
    return f"{ms / 1000:,.1f} s"


# -- layout ----------------------------------------------------------------------------------------

ROW1_Y, TASK_H = 52, 124
ORCH = Box(250, 216, 290, 168)
ROW2_Y = 426


def levels(p: Process) -> list[int]:
    out: list[int] = []
    for i in range(len(p.steps)):
        ups = p.upstream_of(i)
        out.append(1 + max(out[u] for u in ups) if ups else 0)
    return out


def task_boxes(p: Process) -> list[Box]:
    """Each task's box: a DAG of three levels (one, two, one: extract, two transforms, load) is
    drawn by level around the orchestrator; any other process snakes over two rows."""
    lv = levels(p)
    counts = [lv.count(k) for k in range(max(lv) + 1)]
    if counts == [1, 2, 1]:
        dag_w, mid = 220.0, ORCH.cy - TASK_H / 2
        xs = (15, 555)
        boxes = []
        for i, k in enumerate(lv):
            if k == 1:
                first = lv.index(1) == i
                boxes.append(Box(285, ROW1_Y if first else ROW2_Y, dag_w, TASK_H))
            else:
                boxes.append(Box(xs[0] if k == 0 else xs[1], mid, dag_w, TASK_H))
        return boxes
    n = len(p.steps)
    cols = max(3, -(-n // 2))
    gap = 15
    w = (HALF - 20 - (cols - 1) * gap) / cols
    boxes = []
    for i in range(n):
        if i < cols:
            col, y = i, ROW1_Y
        else:
            col, y = cols - 1 - (i - cols), ROW2_Y
        boxes.append(Box(10 + col * (w + gap), y, w, TASK_H))
    return boxes


BUS_Y, BUS_H = 272, 52
SVC_TOP, SVC_H = 48, 210
SVC_BOTTOM = BUS_Y + BUS_H + 14


def service_boxes(p: Process) -> dict[str, Box]:
    names = p.services
    cols = max(1, -(-len(names) // 2))
    gap = 15
    w = (HALF - 20 - (cols - 1) * gap) / cols
    out = {}
    for i, name in enumerate(names):
        row, col = divmod(i, cols)
        out[name] = Box(CHOR_X + 10 + col * (w + gap), SVC_TOP if row == 0 else SVC_BOTTOM, w, SVC_H)
    return out


def bus_point(box: Box) -> tuple[float, float]:
    """Where a service's line meets the bus."""
    return box.cx, BUS_Y if box.y < BUS_Y else BUS_Y + BUS_H


# -- the orchestrated view ------------------------------------------------------------------------

def _task_lines(state: WorkflowState, i: int, box: Box) -> list[tuple[str, str]]:
    p, side = state.proc, state.orch
    s = p.steps[i]
    role = " · pivot" if p.pivot == s.name else (" · retried" if p.retryable(i) else "")
    ti = side.ti[i]
    attempt = max((h.attempt for h in side.history if h.step == i and h.action == "do" and h.kind == "sent"), default=0)
    lines = [(f"{i + 1} {s.name}", "tname"), (s.service + role, "tsvc"),
             (ti + (f" #{attempt}" if attempt > 1 else ""), f"tstate st-{ti}")]
    retry = next((f for f in state.flights if f.style == "orch" and f.kind == "retry" and f.step == i), None)
    undo = side.undo_ti[i]
    if retry is not None:
        lines.append((f"{'undo ' if retry.action == 'undo' else ''}retry at {secs(retry.at)}", "tnote"))
    elif p.compensable(i) and undo != "none":
        lines.append((f"↺ undo: {undo}", f"tundo st-{undo}"))
    elif i in state.fail_steps:
        lines.append(("will refuse", "tnote bad"))
    return lines


def _tasks(pic: Picture, state: WorkflowState, boxes: list[Box]) -> None:
    layer = pic.layer("wf-tasks")
    p = state.proc
    for i, (s, box) in enumerate(zip(p.steps, boxes)):
        ti = state.orch.ti[i]
        undo = state.orch.undo_ti[i]
        lines = _task_lines(state, i, box)
        text = lines_svg(box.x + 12, box.y + 30, lines, box.w - 22)
        failing = i in state.fail_steps
        if p.can_fail(i):
            act = markup(" tabindex='0' role='button' aria-label='{}' data-send='fail_step' data-arg-step='{}' data-arg-on='{}'",
                         f"Task {i + 1} {s.name}, {ti}: {'stop making it fail' if failing else 'make it fail (a business error)'}",
                         s.name, "false" if failing else "true")
        else:
            act = markup(" aria-label='{}'", f"Task {i + 1} {s.name}, {ti}")
        layer.add(f"tk-{i}", markup(
            "<g id='tk-{}' class='task st-{}{}{}'{}><rect x='{}' y='{}' width='{}' height='{}' rx='12'/>"
            "{}</g>",
            i, ti, " refuses" if failing else "", f" undo-{undo}" if undo != "none" else "", act,
            f"{box.x:.0f}", f"{box.y:.0f}", f"{box.w:.0f}", f"{box.h:.0f}", text))


def _edges(pic: Picture, state: WorkflowState, boxes: list[Box]) -> None:
    """The process's sequence flows (BPMN arrows) and the orchestrator's spokes to every task."""
    spokes = pic.layer("wf-spokes")
    edges = pic.layer("wf-edges")
    p = state.proc
    for i, box in enumerate(boxes):
        x1, y1 = ORCH.edge(box.cx, box.cy)
        x2, y2 = box.edge(ORCH.cx, ORCH.cy)
        spokes.add(f"sp-{i}", markup("<line id='sp-{}' class='spoke' x1='{}' y1='{}' x2='{}' y2='{}'/>", i,
                                     f"{x1:.0f}", f"{y1:.0f}", f"{x2:.0f}", f"{y2:.0f}"))
        for u in p.upstream_of(i):
            a, b = boxes[u], box
            ax, ay = a.edge(b.cx, b.cy)
            bx, by = b.edge(a.cx, a.cy)
            edges.add(f"ed-{u}-{i}", markup("<line id='ed-{}-{}' class='flow' x1='{}' y1='{}' x2='{}' y2='{}' "
                                            "marker-end='url(#wf-arrow)'/>", u, i, f"{ax:.0f}", f"{ay:.0f}",
                                            f"{bx:.0f}", f"{by:.0f}"))
    rule = next((s for s in p.steps if len(s.upstream) > 1), None)
    if rule is not None:
        j = p.index(rule.name)
        box = boxes[j]
        edges.add("rule", markup("<g id='rule' class='rule'>{}</g>", lines_svg(
            box.x + 8, box.y + box.h + 30, [("trigger rule:", "rule"), (rule.trigger_rule, "rule")], HALF - box.x - 8)))


def will_compensate(state: WorkflowState) -> list[int]:
    """What the orchestrator compensates (still to do) if the saga fails, or is compensating:
    every compensable step it recorded as done and not undone yet, latest first."""
    side, p = state.orch, state.proc
    done = [h.step for h in side.history if h.action == "do" and h.kind == "succeeded"]
    return [i for i in reversed(list(dict.fromkeys(done))) if p.compensable(i) and side.undo_ti[i] != "success"]


def _orch_lines(state: WorkflowState) -> list[tuple[str, str]]:
    side, p = state.orch, state.proc
    head = ("Orchestrator: up" if side.up else "Orchestrator: DOWN", "oname")
    if side.outcome:
        wait = (f"{'saga' if p.saga else 'run'} {side.outcome}", "ogood" if side.outcome == "completed" else "obad")
    elif not state.started:
        wait = ("waits for the start", "oline")
    else:
        waiting = [i for i in range(len(p.steps)) if side.ti[i] in ("scheduled", "queued", "running", "up_for_retry")]
        undoing = [i for i in range(len(p.steps)) if side.undo_ti[i] in ("scheduled", "queued", "running", "up_for_retry")]
        if undoing:
            wait = (f"compensating {', '.join(str(i + 1) for i in undoing)}", "obad")
        elif waiting:
            wait = (f"waits on step {', '.join(str(i + 1) for i in waiting)}", "oline")
        else:
            wait = ("deciding", "oline")
    todo = will_compensate(state) if p.saga else []
    failing = "failed" in side.ti
    if not p.saga:
        comp = ("no compensations (a DAG)", "omuted")
    elif side.outcome == "completed":
        comp = ("nothing to compensate", "omuted")
    else:
        what = ", ".join(str(i + 1) for i in todo) or "nothing"
        comp = (f"will undo: {what}" if failing else f"on failure undo: {what}", "obad" if failing and todo else "oline")
    return [head, wait, comp, (f"history: {len(side.history)} records", "omuted")]


def _orchestrator(pic: Picture, state: WorkflowState) -> None:
    layer = pic.layer("wf-orch")
    side = state.orch
    lines = _orch_lines(state)
    text = lines_svg(ORCH.x + 14, ORCH.y + 36, lines, ORCH.w - 24, 34)
    act, verb = ("crash_orchestrator", "crash it") if side.up else ("restart_orchestrator", "restart it: it replays its history")
    layer.add("orch", markup(
        "<g id='orch' class='orchestrator{}' tabindex='0' role='button' aria-label='{}' data-send='{}'>"
        "<rect x='{}' y='{}' width='{}' height='{}' rx='16'/>{}</g>",
        "" if side.up else " down", f"Orchestrator, {'up' if side.up else 'down'}: {verb}", act,
        ORCH.x, ORCH.y, ORCH.w, ORCH.h, text))


# -- the choreographed view ------------------------------------------------------------------------

def local_state(svc: Service, i: int) -> str:
    if i in svc.undone:
        return "undone"
    if i in svc.done:
        return "done"
    if i in svc.failed:
        return "failed"
    mark = dict(svc.marked).get(i)
    if mark:
        return mark
    return "waiting" if svc.heard else "idle"


def wrap(words: Iterable[str], chars: int, first: str) -> list[str]:
    lines, line = [], first
    for w in words:
        if len(line) + len(w) + 2 > chars and line != first:
            lines.append(line.rstrip(","))
            line = ""
        line += (" " if line else "") + w + ","
    lines.append(line.rstrip(","))
    return lines


def _service_lines(state: WorkflowState, svc: Service, box: Box, subs: list[str]) -> list[tuple[str, str]]:
    p = state.proc
    chars = int((box.w - 22) / CHAR_W / 0.85)
    status = "DOWN" if not svc.up else (f"slow +{svc.slow_ms:,} ms" if svc.slow_ms else "up")
    lines = [(f"{svc.name}: {status}", "sname" + ("" if svc.up else " bad"))]
    for i, s in enumerate(p.steps):
        if s.service == svc.name:
            st = local_state(svc, i)
            lines.append((f"{i + 1} {s.name}: {st}", f"sstate ls-{st}"))
    if svc.backlog:
        lines.append((f"{len(svc.backlog)} kept on the bus", "snote"))
    room = max(1, (SVC_H - 20) // LINE - len(lines))
    hears = wrap(subs, chars, "hears") if subs else ["starts the run itself"]
    if len(hears) > room:
        hears = hears[: room - 1] + [short(hears[room - 1], chars - 1) + "…"] if room > 1 else [short(hears[0], chars)]
    return lines + [(h, "shears") for h in hears]


def _services(pic: Picture, state: WorkflowState, boxes: dict[str, Box]) -> None:
    layer = pic.layer("wf-services")
    subs = subscriptions(state.proc)
    for k, svc in enumerate(state.chor.services):
        box = boxes[svc.name]
        lines = _service_lines(state, svc, box, subs[svc.name])
        text = lines_svg(box.x + 12, box.y + 30, lines, box.w - 22)
        act, verb = ("crash_service", "crash it") if svc.up else ("restart_service", "restart it")
        bx, by = bus_point(box)
        ey = box.y + box.h if box.y < BUS_Y else box.y
        layer.add(f"sv-{k}", markup(
            "<g id='sv-{}' class='service{}{}' tabindex='0' role='button' aria-label='{}' data-send='{}' data-arg-service='{}'>"
            "<line class='tap' x1='{}' y1='{}' x2='{}' y2='{}'/><rect x='{}' y='{}' width='{}' height='{}' rx='12'/>"
            "{}</g>",
            k, "" if svc.up else " down", " slow" if svc.slow_ms else "", f"Service {svc.name}, {'up' if svc.up else 'down'}: {verb}",
            act, svc.name, f"{bx:.0f}", f"{ey:.0f}", f"{bx:.0f}", f"{by:.0f}", f"{box.x:.0f}", f"{box.y:.0f}",
            f"{box.w:.0f}", f"{box.h:.0f}", text))


def _bus(pic: Picture, state: WorkflowState) -> None:
    layer = pic.layer("wf-bus")
    side = state.chor
    last = side.bus_log[-1] if side.bus_log else None
    armed = ", ".join(f"{f} {t}" for t, f in side.armed)
    text = f"event bus · {len(side.bus_log)} events" + (f" · last {last.topic}" if last else "")
    layer.add("bus", markup(
        "<g id='bus' class='bus'><rect x='{}' y='{}' width='{}' height='{}' rx='26'/><text x='{}' y='{}'>{}</text>"
        "<title>The bus carries every event to the services that subscribe to its topic{}</title></g>",
        CHOR_X + 10, BUS_Y, HALF - 20, BUS_H, CHOR_X + 30, BUS_Y + 34, short(text, 52),
        f"; armed faults: {armed}" if armed else ""))


# -- under both: the ledgers ---------------------------------------------------------------------

def _ledgers(pic: Picture, state: WorkflowState) -> None:
    layer = pic.layer("wf-ledgers")
    for style, x in (("orch", 10), ("chor", CHOR_X + 10)):
        side = state.side(style)
        seq = outcome_sequence(state, style)
        shown = " ".join(seq[-12:]) if seq else "nothing committed yet"
        more = "… " if len(seq) > 12 else ""
        counts: dict[str, int] = {}
        for t in seq:
            counts[t] = counts.get(t, 0) + 1
        doubled = sorted({t for t, c in counts.items() if c > 1 and t.startswith("T")})
        outcome = side.outcome or ("running" if state.started else "not started")
        layer.add(f"lg-{style}", markup(
            "<g id='lg-{}' class='ledger{}'><text x='{}' y='{}'><tspan class='lhead'>{}</tspan>"
            "<tspan x='{}' dy='30'>effects: {}{}</tspan></text></g>",
            style, " doubled" if doubled else "", x, STAGE_H - 52, f"{outcome}" + (f" · twice: {', '.join(doubled)}" if doubled else ""),
            x, more, short(shown, 44)))


def _titles(pic: Picture, state: WorkflowState) -> None:
    layer = pic.layer("wf-titles")
    for style, x in (("orch", HALF / 2), ("chor", CHOR_X + HALF / 2)):
        side = state.side(style)
        layer.add(f"tt-{style}", markup("<text id='tt-{}' class='col-title' x='{}' y='30'>{}</text>", style, f"{x:.0f}",
                                        f"{STYLE_TITLE[style]} · {side.messages} msgs"))


# -- flights -------------------------------------------------------------------------------------

def _ends(state: WorkflowState, f: Flight, tasks: list[Box], services: dict[str, Box]) -> tuple[float, float, float, float] | None:
    if f.style == "orch":
        if not 0 <= f.step < len(tasks):
            return None
        box = tasks[f.step]
        a, b = ORCH.edge(box.cx, box.cy), box.edge(ORCH.cx, ORCH.cy)
        return (*a, *b) if f.kind == "command" else (*b, *a)
    if f.kind == "publish" and f.frm in services:
        box = services[f.frm]
        bx, by = bus_point(box)
        return bx, (box.y + box.h if box.y < BUS_Y else box.y), bx, BUS_Y + BUS_H / 2
    if f.kind == "deliver" and f.to in services:
        box = services[f.to]
        bx, by = bus_point(box)
        return bx, BUS_Y + BUS_H / 2, bx, (box.y + box.h if box.y < BUS_Y else box.y)
    return None


def _tone(f: Flight) -> str:
    """A dot's colour: a command (blue), a good reply or a done event (green), a failure
    (vermillion), a compensation or its answer (purple)."""
    if f.kind == "command":
        return "cmd" if f.action == "do" else "undo"
    if f.kind == "reply":
        return "failr" if not f.ok else ("okr" if f.action == "do" else "undo")
    return {"done": "okr", "failed": "failr", "undone": "undo"}.get(f.action, "cmd")


def in_flight(change: Change | None) -> tuple[int, list[Flight]]:
    """The messages this update shows flying, and the simulated time its animation starts at:
    every message it sent, and, when the clock moved, those still on their way from before."""
    if change is None:
        return 0, []
    before: WorkflowState = change.before
    t0 = before.now_ms
    added = [Flight(**d) for e in change.events for d in e["data"].get("add", ()) if d["kind"] in MESSAGES]
    ticked = any(e["kind"] == "clock_advanced" for e in change.events)
    carried = [f for f in before.flights if f.kind in MESSAGES and f.at > t0] if ticked else []
    seen: set[int] = set()
    out = []
    for f in carried + added:
        if f.id not in seen:
            seen.add(f.id)
            out.append(f)
    return t0, out[:MAX_DOTS]


def _flights(pic: Picture, state: WorkflowState, view: RoomView, change: Change | None,
             tasks: list[Box], services: dict[str, Box]) -> None:
    layer = pic.layer("wf-flights", transient=True)
    t0, msgs = in_flight(change)
    if not msgs:
        return
    scale = 1.0 / max(view.speed, 0.25)
    dots: list[Dot] = []
    for f in msgs:
        ends = _ends(state, f, tasks, services)
        if ends is None:
            continue
        x1, y1, x2, y2 = ends
        start = max(f.sent, t0)
        p = (start - f.sent) / max(f.at - f.sent, 1)
        sx, sy = x1 + (x2 - x1) * p, y1 + (y2 - y1) * p
        dots.append(Dot(sx, sy, x2, y2, (start - t0) * scale, max((f.at - start) * scale, 250), _tone(f)))
    if dots:
        layer.add(f"wf-fl{view.seq}", flights.group(f"wf-fl{view.seq}", dots))


# -- the space-time diagrams (one per style, side by side) -----------------------------------------

DIAGRAM = spacetime.Geometry(top=48, width=800, lanes_x=150, slots=5, carry=2, slot_pad=10)


def _arrow_tone(e: Episode, m: Message) -> str:
    return "failr" if m["result"] == "failed" else ("req" if m["kind"] in ("command", "publish") else "okr")


DIAGRAM_STYLE = spacetime.Style(label=lambda e: short(e.label, 6), tone=_arrow_tone)


def lanes(state: WorkflowState, style: str) -> list[spacetime.Lane]:
    names = list(state.proc.services)
    head = ORCHESTRATOR if style == "orch" else BUS
    return [spacetime.Lane(head, "hub", 36)] + [spacetime.Lane(n, "svc", 36) for n in names]


def _diagram(pic: Picture, state: WorkflowState, style: str) -> None:
    """The kit's diagram, drawn into a scratch picture, then moved into this style's layers with
    its element ids prefixed (two diagrams on one page: ``lane-0`` once per style)."""
    scratch = Picture()
    ids = (f"wf-{style}-axis", f"wf-{style}-eps", f"wf-{style}-bands")
    ls = lanes(state, style)
    spacetime.draw(scratch, ids, DIAGRAM, ls, state.side(style).trace, DIAGRAM_STYLE)
    for layer_id in ids:
        target = pic.layer(layer_id)
        for cid, html in scratch.layers[layer_id].children.items():
            new = f"{style[0]}{cid}"
            target.add(new, mark_safe(html.replace(f"id='{cid}'", f"id='{new}'", 1)))
    pic.region(f"wf-{style}-diagram", f"workflowgraphs/_{style}_diagram.html", DIAGRAM.context(
        ls, region_id=f"wf-{style}-diagram", title_id=f"wf-{style}-dtitle", cls="wf-frame wf-diagram",
        style=style, heading=f"{'Orchestrated' if style == 'orch' else 'Choreographed'}: every message, time runs right"))


# -- panels --------------------------------------------------------------------------------------

def knew_text(knew: list[list[Any]], started_at: int) -> str:
    return ", ".join(f"{who} at {secs(int(at) - started_at)}" for who, at in knew) or "—"


def _panels(pic: Picture, state: WorkflowState) -> None:
    p = state.proc
    cmp = comparison(state)
    rows = []
    for style in ("orch", "chor"):
        c = cmp[style]
        rows.append({"style": style, "title": "Orchestrated" if style == "orch" else "Choreographed", **c,
                     "time": secs(c["time_ms"]) if c["time_ms"] is not None else ("running" if state.started else "—"),
                     "state_word": "running" if state.started else "not started",
                     "knew_text": knew_text(c["knew"], state.started_at),
                     "compensated_text": ", ".join(c["compensated"]) or "nothing"})
    progress = reconstruct(p, state.chor.bus_log, state.chor.services)
    steps = [{"n": i + 1, "name": s.name, "seen": progress.steps[i]} for i, s in enumerate(p.steps)]
    topics = sorted({s.done_topic for s in p.steps} | {s.failed_topic for s in p.steps if s.failed_topic}
                    | {s.undone_topic for s in p.steps if s.undone_topic})
    ctx = {"state": state, "proc": p, "rows": rows, "progress": progress, "steps": steps, "topics": topics,
           "failable": [s for i, s in enumerate(p.steps) if p.can_fail(i)],
           "compensable": [s for i, s in enumerate(p.steps) if p.compensable(i)],
           "policy": state.policy, "rules": TRIGGER_RULES,
           "join_rule": next((s.trigger_rule for s in p.steps if len(s.upstream) > 1), "all_success")}
    for panel in ("wf-compare", "wf-rebuilt", "wf-runctl", "wf-svcctl", "wf-busctl", "wf-retryctl", "wf-scene"):
        pic.panels[panel] = render_tight(f"workflowgraphs/_{panel}.html", ctx)


# -- the picture ---------------------------------------------------------------------------------

def picture(state: WorkflowState, view: RoomView, change: Change | None = None) -> Picture:
    """Both styles of the run as data for the engine (``apps.rooms.frames`` renders, caches and
    diffs it): the stage as a region, both space-time diagrams, the panels, and this update's
    message flights (``change``: the events just applied; none on a full render)."""
    pic = Picture()
    p = state.proc
    tasks, services = task_boxes(p), service_boxes(p)
    _titles(pic, state)
    _edges(pic, state, tasks)
    _tasks(pic, state, tasks)
    _orchestrator(pic, state)
    _bus(pic, state)
    _services(pic, state, services)
    _ledgers(pic, state)
    _flights(pic, state, view, change, tasks, services)
    pic.region("wf-stage", "workflowgraphs/_stage.html", {"stage_h": STAGE_H, "process": p.name})
    for style in ("orch", "chor"):
        _diagram(pic, state, style)
    _panels(pic, state)
    return pic
