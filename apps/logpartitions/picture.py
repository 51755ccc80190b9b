"""The distributed log's picture as keyed fragments (see ``apps.rooms.fragments``).

Layout: one HTML frame (``#lp-frame``) in three parts that CSS lays out for the screen at hand
(``logpartitions.css``): a top strip with the producers and the brokers (HTML boxes that wrap on
a narrow screen), the partitions (one SVG, ``#lp-rows``), and beside it (below it on a narrow
frame) the consumer groups (HTML). On a phone the partitions scroll sideways inside their own
box, with a hint saying so; the brokers and the groups stay in the page's flow.

Each partition is a row of its most recent offsets as cells, under a head (name, leader, ISR,
record count, how many older offsets are not drawn). Markers on each row: the high watermark
(HW: what every in-sync replica has, and all a consumer may read) with its label above the
cells, each group's committed offset just above the cells, each follower's log end (LEO) with
its label below them. A marker and its label are one group positioned by its ``transform``,
so they glide together (a CSS transition on ``transform``).

The row shows a *page* of WINDOW offsets that stays put while records are appended and moves
on by PAGE_STEP when full: appending a record adds one cell instead of moving every cell, so an
update stays small however long the log is. Counts cover the rest of the log.

Everything clickable is a keyboard control: ``tabindex="0"``, ``role="button"``, an
``aria-label`` and ``data-send`` with ``data-arg-*`` (the command it sends, decided here from
the state: ``broker_stop`` or ``broker_start``). A cell only highlights its key on this screen
(``data-highlight``, read by room.js; the look is ``.hl`` in logpartitions.css), so it is
focusable without a command.
"""
from __future__ import annotations

from typing import Any

import mmh3
from django.utils.safestring import SafeString, mark_safe

from apps.common import flights
from apps.rooms.fragments import Change, Picture, markup, render_tight
from apps.rooms.registry import RoomView

from .sim import ASSIGNORS, group_summaries, partition_summaries, producer_summaries, read_records, totals
from .sim.cluster import ClusterState

WINDOW = 10
CELL_W, CELL_H, CELL_GAP = 68, 50, 4
HEAD_W = 184  # the partition's name, leader, ISR and counts, left of its cells
CELLS_X = HEAD_W
WIDTH = CELLS_X + WINDOW * (CELL_W + CELL_GAP) + 12  # the partitions SVG's viewBox width
ROW_H = 150
ROWS_Y = 6
# Within a row (y from the row's top): the HW label, the committed markers, the cells, the
# follower markers and their labels, top to bottom, each in its own band so none overlaps.
# The shapes' geometry (the cell's size, the HW line from 22 to 96 and its label's baseline at
# 18, the committed marker's tip at 35, the follower marker's at 92) is in logpartitions.css, so
# updates do not repeat it.
CELL_TOP = 37
LEO_LABEL_Y, LEO_LABEL_STEP = 122, 22
LEO_LABEL_W = 80  # follower labels closer than this stack
KEY_COLOURS = 8
FLIGHT_MS = 900  # a produced record's flight to its cell
GROUP_MARKS = 4  # groups drawn with their own committed marker on the rows


def uid(name: str) -> str:
    return format(mmh3.hash(name, 0x1D, signed=False), "08x")


def key_colour(key: str | None) -> str:
    """Records of one key share a colour (8 colours, colour-blind safe); keyless are grey."""
    if key is None:
        return "kn"
    return f"k{mmh3.hash(key, 0x4B, signed=False) % KEY_COLOURS}"


def height(state: ClusterState) -> int:
    """The partitions SVG's viewBox height."""
    return ROWS_Y + len(state.partitions) * ROW_H


PAGE_STEP = WINDOW - 2  # a full page moves on, keeping its last two offsets for context


def page_start(log_start: int, log_end: int) -> int:
    """First offset shown: pages of WINDOW offsets that advance by PAGE_STEP when full, so
    most appends add a cell and move nothing."""
    first = max(log_end - WINDOW, 0)
    first = ((first + PAGE_STEP - 1) // PAGE_STEP) * PAGE_STEP if first else 0
    return max(first, log_start)


def cell_x(offset: int, first: int) -> float:
    return CELLS_X + (offset - first) * (CELL_W + CELL_GAP)


def edge_x(offset: int, first: int) -> int:
    """The x of the boundary before ``offset`` (clamped to the page): where a marker points."""
    return round(cell_x(min(max(offset, first), first + WINDOW), first) - CELL_GAP / 2)


def row_y(partition: int) -> int:
    return ROWS_Y + partition * ROW_H


def _short(text: str, n: int = 6) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _tail(text: str, n: int = 5) -> str:
    """The end of a key is what tells records apart: "order-1017" shows as "…1017"."""
    return text if len(text) <= n else "…" + text[-(n - 1):]


def _offset_label(offset: int) -> str:
    """An offset as it fits a cell: up to five digits whole, then its last four."""
    text = str(offset)
    return text if len(text) <= 5 else "…" + text[-4:]


def _names(parts: list[int]) -> str:
    return ", ".join(f"P{i}" for i in parts)


# -- layers -----------------------------------------------------------------------------------

def _brokers(pic: Picture, state: ClusterState, parts: list[dict[str, Any]]) -> None:
    layer = pic.layer("lp-brokers", svg=False)
    for b, up in enumerate(state.brokers_up):
        leads = [p["index"] for p in parts if p["leader"] == b]
        follows = [p["index"] for p in parts if any(r["broker"] == b and not r["is_leader"] for r in p["replicas"])]
        detail = f"leads {_names(leads) or '—'}" if up else "stopped"
        action = "stop" if up else "restart"
        layer.add(f"br-{b}", markup(
            "<div id='br-{}' class='broker {}' data-broker='{}' role='button' tabindex='0' data-send='{}' "
            "data-arg-broker='{}' aria-label='broker {}: {}; follows {}. Click to {} it.'>"
            "<span class='broker-name'>broker {}</span><span class='broker-detail'>{}</span></div>",
            b, "up" if up else "down", b, "broker_stop" if up else "broker_start", b, b, detail,
            _names(follows) or "nothing", action, b, detail,
        ))


def _rows(pic: Picture, state: ClusterState, parts: list[dict[str, Any]], groups: list[dict[str, Any]]) -> None:
    heads = pic.layer("lp-heads")
    cells = pic.layer("lp-cells")
    zones = pic.layer("lp-zones")  # under the markers: an update appends a new child last in its layer
    marks = pic.layer("lp-marks")
    group_index = {g["name"]: i for i, g in enumerate(groups[:GROUP_MARKS])}
    for p in parts:
        i, y = p["index"], row_y(p["index"])
        status = "offline" if not p["online"] else ("under" if p["under_replicated"] else "ok")
        leader = f"leader b{p['leader']}" if p["leader"] is not None else "no leader"
        heads.add(f"ph-{i}", markup(
            "<g id='ph-{}' class='phead {}'><text x='4' y='{}' class='pname'>P{}{}</text>"
            "<text x='4' y='{}' class='pmeta'>{}</text><text x='4' y='{}' class='pmeta'>ISR {}</text></g>",
            i, status, y + 34, i, mark_safe("<tspan class='poff'> offline</tspan>") if not p["online"] else "",
            y + 60, leader, y + 84, "{" + ", ".join(f"b{b}" for b in p["isr"]) + "}",
        ))
        # Counts that change on every append are small elements of their own (no class: the
        # CSS finds them as the layer's own texts, a few bytes less on every tick).
        heads.add(f"pc-{i}", markup("<text id='pc-{}' x='4' y='{}'>{} record{}</text>",
                                    i, y + 108, f"{p['records']:,}", "" if p["records"] == 1 else "s"))
        first = page_start(p["log_start"], p["log_end"])
        for rec in read_records(state, i, first, p["log_end"]):
            x = cell_x(rec.offset, first)
            label = _tail(rec.key if rec.key is not None else rec.value)
            # A cell never changes once drawn: what is above the HW is one overlay per row.
            # Its box and its texts are one group, which pops in as one.
            # data-highlight: a click marks every record of this key, on this screen only (room.js).
            cells.add(f"c-{i}-{rec.offset}", markup(
                "<g id='c-{}-{}' class='cell {}' data-key='{}'{} tabindex='0' role='button' aria-label='P{} offset {}: {} {}'>"
                "<rect x='{}' y='{}'/>"
                "<text x='{}' y='{}'>{}</text><text x='{}' y='{}' class='ck'>{}</text></g>",
                i, rec.offset, key_colour(rec.key), rec.key or "", _highlight(rec.key), i, rec.offset,
                rec.key or "(no key)", rec.value,
                f"{x:.0f}", y + CELL_TOP,  # its size and corners are CSS (logpartitions.css): fewer bytes
                f"{x + CELL_W / 2:.0f}", y + CELL_TOP + 21, _offset_label(rec.offset), f"{x + CELL_W / 2:.0f}",
                y + CELL_TOP + 43, label,
            ))
        if first > p["log_start"]:
            marks.add(f"older-{i}", markup(
                "<text id='older-{}' x='4' y='{}' class='older'>← {} older</text>",
                i, y + 132, f"{first - p['log_start']:,}"))
        hx = edge_x(p["high_watermark"], first)
        ex = edge_x(p["log_end"], first)
        if ex > hx:  # appended on the leader, not yet on every in-sync replica: not readable yet
            zones.add(f"unc-{i}", markup(
                "<rect id='unc-{}' class='uncommitted-zone' x='{}' y='{}' width='{}' height='{}' rx='6'/>",
                i, hx + 1, y + CELL_TOP - 3, ex - hx - 2, CELL_H + 6))
        marks.add(f"hw-{i}", markup(
            "<g id='hw-{}' class='hw{}' transform='translate({} {})'><path/><text>HW {}</text></g>",
            i, _edge_class(hx), hx, y, p["high_watermark"],
        ))
        _followers(marks, p, first, y)
        for g in groups:
            gi = group_index.get(g["name"])
            if gi is None:
                continue
            part = next((q for q in g["partitions"] if q["partition"] == i), None)
            if part is None or part["owner"] is None:
                continue
            cx = edge_x(part["committed"], first) + gi * 5
            marks.add(f"cm-{i}-{uid(g['name'])}", markup(
                "<path id='cm-{}-{}' class='committed g{}' transform='translate({} {})'/>",
                i, uid(g["name"]), gi, cx, y,
            ))


def _highlight(key: str | None) -> SafeString:
    """The cell's ``data-highlight`` (its key's id); a keyless record highlights nothing."""
    return SafeString("" if key is None else f" data-highlight='{uid(key)[:6]}'")


def _edge_class(x: int) -> str:
    """A marker near the right end of the page puts its label to its left (" end"), so the
    label stays inside the picture."""
    return " end" if x > CELLS_X + (WINDOW - 1) * (CELL_W + CELL_GAP) else ""


def _followers(marks: Any, p: dict[str, Any], first: int, y: int) -> None:
    """Each follower's LEO: a marker and its label in one group that moves as one. Labels
    closer than LEO_LABEL_W stack, so two followers at (or near) one offset stay readable."""
    followers = sorted(((edge_x(r["leo"], first), r) for r in p["replicas"] if not r["is_leader"]),
                       key=lambda f: (f[0], f[1]["broker"]))
    placed: list[tuple[int, int]] = []  # (x, level)
    for lx, r in followers:
        taken = {level for x, level in placed if abs(x - lx) < LEO_LABEL_W}
        level = next(n for n in range(len(placed) + 1) if n not in taken)
        placed.append((lx, level))
        marks.add(f"leo-{p['index']}-{r['broker']}", markup(
            "<g id='leo-{}-{}' class='leo {}{}' transform='translate({} {})'><path/><text y='{}'>b{} {}</text></g>",
            p["index"], r["broker"], r["status"], _edge_class(lx), lx, y, LEO_LABEL_Y + LEO_LABEL_STEP * level,
            r["broker"], r["leo"],
        ))


def _producers(pic: Picture, state: ClusterState, producers: list[dict[str, Any]]) -> None:
    layer = pic.layer("lp-producers", svg=False)
    for pr in producers:
        if pr["waiting"]:
            status, tone = f"waiting {pr['waiting']:,}", "pr-warn"
        elif pr["failed"]:
            status, tone = f"failed {pr['failed']:,}", "pr-warn"
        elif pr["acks"] == 0:
            status, tone = "not waiting (acks=0)", "pr-ok"
        else:
            status, tone = "all acknowledged", "pr-ok"
        layer.add(f"pr-{uid(pr['name'])}", markup(
            "<div id='pr-{}' class='producer'><strong class='pr-name'>{}</strong> <span>acks={}{}</span> "
            "<span>sent {} · acked {}</span> <span class='{}'>{}</span></div>",
            uid(pr["name"]), pr["name"], pr["acks"], f" · {pr['rate']}/tick" if pr.get("rate") else "",
            f"{pr['sent']:,}", f"{pr['acknowledged']:,}", tone, status,
        ))


def _groups(pic: Picture, state: ClusterState, groups: list[dict[str, Any]]) -> None:
    layer = pic.layer("lp-groups", svg=False)
    for gi, g in enumerate(groups):
        rows = []
        for m in g["members"]:
            parts = _names(m["partitions"]) or "idle"
            # The whole row is the control (a click anywhere on it, or Enter/Space on it);
            # data-student lets a student's screen mark their own row (room.js: .me).
            rows.append(markup(
                "<div id='gm-{}-{}-{}' class='member{}' data-group='{}' data-member='{}' data-student='{}' role='button' tabindex='0' "
                "data-send='group_leave' data-arg-group='{}' data-arg-member='{}' "
                "aria-label='{} {}: in {}. Click to remove it from the group.'>"
                "<span class='mname'>{}</span><span class='mparts'>{}</span></div>",
                # A new generation draws new rows: the reassigned partitions pop in after a rebalance.
                uid(g["name"]), uid(m["name"]), g["generation"], " idle" if m["idle"] else "",
                g["name"], m["name"], m["name"], g["name"], m["name"], m["name"], parts, g["name"], m["name"], parts,
            ))
        layer.add(f"gr-{uid(g['name'])}", markup(
            "<div id='gr-{}' class='group g{}'><div id='gp-{}-{}' class='pulse'></div>"
            "<div class='ghead'><strong class='gname'>{}</strong> <span class='gmeta'>{} · generation {}</span></div>"
            "<div class='members'>{}</div></div>",
            uid(g["name"]), gi % GROUP_MARKS, uid(g["name"]), g["generation"], g["name"], g["assignor"],
            g["generation"], mark_safe("".join(rows)),
        ))
        layer.add(f"gl-{uid(g['name'])}", markup("<div id='gl-{}' class='glag'>lag {}</div>",
                                                 uid(g["name"]), f"{g['total_lag']:,}"))


def _flights(pic: Picture, change: Change | None, seq: int, parts: list[dict[str, Any]]) -> None:
    """A produced record flies in from the producers' side (top left) to its cell (the shared
    flights module draws it: a dot along the curve, with its trail). An update's flights only:
    the layer is transient and a full render has none."""
    layer = pic.layer("lp-flights", transient=True)
    produced = [ev["data"] for ev in (change.events if change is not None else []) if ev["kind"] == "record_produced"]
    for shown, d in enumerate(produced[:4]):
        p = parts[d["partition"]]
        first = page_start(p["log_start"], p["log_end"])
        x0, y0 = HEAD_W - 40, 0
        x1, y1 = cell_x(d["offset"], first) + CELL_W / 2, row_y(d["partition"]) + CELL_TOP + CELL_H / 2
        path = f"M{x0} {y0}C{x0 + 60} {y0} {x1 - 60:.0f} {y1} {x1:.0f} {y1}"
        layer.add(f"f{seq}-{shown}", flights.smil(f"f{seq}-{shown}", path, FLIGHT_MS, cls=f"flight {key_colour(d.get('key'))}"))


# -- panels -----------------------------------------------------------------------------------

def _panels(pic: Picture, state: ClusterState, parts: list[dict[str, Any]], groups: list[dict[str, Any]],
            producers: list[dict[str, Any]]) -> None:
    ctx = {"state": state, "parts": parts, "groups": groups, "producers": producers, "totals": totals(state),
           "config": state.config, "lag_charts": [lag_chart(g) for g in groups]}
    ctx["brokers"] = [{"id": i, "up": up} for i, up in enumerate(state.brokers_up)]  # the stop/start buttons
    ctx["insync_choices"] = range(1, state.config.replication_factor + 1)
    ctx["assignors"] = ASSIGNORS
    for panel in ("lp-summary", "lp-lag", "lp-settings", "lp-controls", "lp-scene"):
        pic.panels[panel] = render_tight(f"logpartitions/_{panel}.html", ctx)


def lag_chart(group: dict[str, Any]) -> dict[str, Any]:
    history = list(group["lag_history"])[-30:] or [group["total_lag"]]
    top = max(max(history), 1)
    w, h = 300, 70
    step = w / max(len(history) - 1, 1)
    points = " ".join(f"{k * step:.0f},{h - h * v / top:.0f}" for k, v in enumerate(history))
    return {"name": group["name"], "points": points, "top": top, "now": group["total_lag"], "w": w, "h": h}


# -- the entry point --------------------------------------------------------------------------

def picture(state: ClusterState, view: RoomView, change: Change | None = None) -> Picture:
    """The log's picture as data; the engine renders, keeps and diffs it (apps/rooms/frames.py).
    The partitions' SVG is a region: its viewBox follows the number of partitions, so a scene
    with another number of partitions draws it again whole; otherwise its layers are diffed."""
    parts = partition_summaries(state)
    groups = group_summaries(state)
    producers = producer_summaries(state)
    pic = Picture()
    _producers(pic, state, producers)
    _brokers(pic, state, parts)
    _rows(pic, state, parts, groups)
    _groups(pic, state, groups)
    _panels(pic, state, parts, groups, producers)
    _flights(pic, change, view.seq, parts)
    pic.region("lp-rows", "logpartitions/_rows.html", {"width": WIDTH, "height": height(state)})
    return pic
