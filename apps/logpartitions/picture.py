"""The distributed log's picture as keyed fragments (see ``apps.rooms.fragments``).

Layout (one SVG, 1600 wide): brokers along the top; one row per partition with its most recent
offsets as cells; producers on the left, consumer groups on the right. Markers on each row:
the high watermark (HW: what every in-sync replica has, and all a consumer may read), each
follower's log end (LEO) below the cells, and each group's committed offset above them.

The row shows a *page* of WINDOW offsets that stays put while records are appended and moves
on by PAGE_STEP when full: appending a record adds one cell instead of moving every cell, so an
update stays small however long the log is. Counts cover the rest of the log.
"""
from __future__ import annotations

from typing import Any

import mmh3
from django.utils.safestring import mark_safe

from apps.rooms.fragments import Picture, markup, render_tight
from apps.rooms.registry import RoomView

from .sim import ASSIGNORS, group_summaries, partition_summaries, producer_summaries, read_records, totals
from .sim.cluster import ClusterState

WIDTH = 1600
WINDOW = 12
CELL_W, CELL_H, CELL_GAP = 54, 46, 4
CELLS_X = 420
ROW_H = 116
ROWS_Y = 170
BROKER_W, BROKER_H = 200, 74
KEY_COLOURS = 8
GROUP_MARKS = 4  # groups drawn with their own marker row above the cells


def uid(name: str) -> str:
    return format(mmh3.hash(name, 0x1D, signed=False), "08x")


def key_colour(key: str | None) -> str:
    """Records of one key share a colour (8 colours, colour-blind safe); keyless are grey."""
    if key is None:
        return "kn"
    return f"k{mmh3.hash(key, 0x4B, signed=False) % KEY_COLOURS}"


def height(state: ClusterState) -> int:
    return ROWS_Y + len(state.partitions) * ROW_H + 20


PAGE_STEP = WINDOW - 2  # a full page moves on, keeping its last two offsets for context


def page_start(log_start: int, log_end: int) -> int:
    """First offset shown: pages of WINDOW offsets that advance by PAGE_STEP when full, so
    most appends add a cell and move nothing."""
    first = max(log_end - WINDOW, 0)
    first = ((first + PAGE_STEP - 1) // PAGE_STEP) * PAGE_STEP if first else 0
    return max(first, log_start)


def cell_x(offset: int, first: int) -> float:
    return CELLS_X + (offset - first) * (CELL_W + CELL_GAP)


def row_y(partition: int) -> int:
    return ROWS_Y + partition * ROW_H


def _short(text: str, n: int = 6) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _tail(text: str, n: int = 5) -> str:
    """The end of a key is what tells records apart: "order-1017" shows as "…1017"."""
    return text if len(text) <= n else "…" + text[-(n - 1):]


# -- layers -----------------------------------------------------------------------------------

def _brokers(pic: Picture, state: ClusterState, parts: list[dict[str, Any]]) -> None:
    layer = pic.layer("lp-brokers")
    n = len(state.brokers_up)
    span = (WIDTH - 40) / max(n, 1)
    for b in range(n):
        leads = [p["index"] for p in parts if p["leader"] == b]
        follows = [p["index"] for p in parts if any(r["broker"] == b and not r["is_leader"] for r in p["replicas"])]
        up = state.brokers_up[b]
        x = 20 + b * span + (span - BROKER_W) / 2
        detail = f"leads {', '.join(f'P{i}' for i in leads) or '—'}" if up else "stopped"
        layer.add(f"br-{b}", markup(
            "<g id='br-{}' class='broker {}' data-broker='{}' tabindex='0' role='button'>"
            "<rect x='{}' y='16' width='{}' height='{}' rx='10'/>"
            "<text x='{}' y='46' class='broker-name'>broker {}</text><text x='{}' y='72' class='broker-detail'>{}</text>"
            "<title>Broker {} ({}): leads {}; follows {}. Click to {} it.</title></g>",
            b, "up" if up else "down", b, f"{x:.0f}", BROKER_W, BROKER_H, f"{x + BROKER_W / 2:.0f}", b,
            f"{x + BROKER_W / 2:.0f}", detail, b, "running" if up else "stopped",
            ", ".join(f"P{i}" for i in leads) or "nothing", ", ".join(f"P{i}" for i in follows) or "nothing",
            "stop" if up else "restart",
        ))


def _rows(pic: Picture, state: ClusterState, parts: list[dict[str, Any]], groups: list[dict[str, Any]]) -> None:
    heads = pic.layer("lp-heads")
    cells = pic.layer("lp-cells")
    marks = pic.layer("lp-marks")
    group_index = {g["name"]: i for i, g in enumerate(groups[:GROUP_MARKS])}
    for p in parts:
        i, y = p["index"], row_y(p["index"])
        status = "offline" if not p["online"] else ("under" if p["under_replicated"] else "ok")
        leader = f"leader b{p['leader']}" if p["leader"] is not None else "OFFLINE: no leader"
        heads.add(f"ph-{i}", markup(
            "<g id='ph-{}' class='phead {}'><text x='270' y='{}' class='pname'>P{}</text>"
            "<text x='270' y='{}' class='pmeta'>{}</text><text x='270' y='{}' class='pmeta'>ISR {}</text></g>",
            i, status, y + 34, i, y + 58, leader, y + 80, "{" + ", ".join(f"b{b}" for b in p["isr"]) + "}",
        ))
        # Counts that change on every append are small elements of their own.
        heads.add(f"pc-{i}", markup("<text id='pc-{}' x='270' y='{}' class='pcount'>{} record{}</text>",
                                    i, y + 102, f"{p['records']:,}", "" if p["records"] == 1 else "s"))
        first = page_start(p["log_start"], p["log_end"])
        for rec in read_records(state, i, first, p["log_end"]):
            x = cell_x(rec.offset, first)
            label = _tail(rec.key if rec.key is not None else rec.value)
            # A cell never changes once drawn: what is above the HW is one overlay per row.
            cells.add(f"c-{i}-{rec.offset}", markup(
                "<g id='c-{}-{}' class='cell {}' data-key='{}'><rect x='{}' y='{}' width='{}' height='{}' rx='6'/>"
                "<text x='{}' y='{}' class='off'>{}</text><text x='{}' y='{}' class='ck'>{}</text>"
                "<title>{} {}</title></g>",
                i, rec.offset, key_colour(rec.key), rec.key or "", f"{x:.0f}", y + 22, CELL_W, CELL_H,
                f"{x + CELL_W / 2:.0f}", y + 40, rec.offset, f"{x + CELL_W / 2:.0f}", y + 60, label,
                rec.key or "(no key)", rec.value,
            ))
        if first > p["log_start"]:
            marks.add(f"older-{i}", markup(
                "<text id='older-{}' x='{}' y='{}' class='older'>← {} older</text>",
                i, CELLS_X - 6, y + 110, f"{first - p['log_start']:,}"))
        hx = cell_x(min(max(p["high_watermark"], first), first + WINDOW), first) - CELL_GAP / 2
        ex = cell_x(min(p["log_end"], first + WINDOW), first) - CELL_GAP / 2
        if ex > hx:  # appended on the leader, not yet on every in-sync replica: not readable yet
            marks.add(f"unc-{i}", markup(
                "<rect id='unc-{}' class='uncommitted-zone' x='{}' y='{}' width='{}' height='{}' rx='6'>"
                "<title>Above the high watermark: not on every in-sync replica yet</title></rect>",
                i, f"{hx + 1:.0f}", y + 19, f"{ex - hx:.0f}", CELL_H + 6))
        marks.add(f"hw-{i}", markup(
            "<g id='hw-{}' class='hw'><line x1='{}' x2='{}' y1='{}' y2='{}'/><text x='{}' y='{}'>HW {}</text></g>",
            i, f"{hx:.0f}", f"{hx:.0f}", y + 14, y + 76, f"{hx:.0f}", y + 12, p["high_watermark"],
        ))
        stacked: dict[int, int] = {}  # followers at the same offset stack their labels
        for r in p["replicas"]:
            if r["is_leader"]:
                continue
            lx = cell_x(min(max(r["leo"], first), first + WINDOW), first) - CELL_GAP / 2
            level = stacked.get(round(lx), 0)
            stacked[round(lx)] = level + 1
            marks.add(f"leo-{i}-{r['broker']}", markup(
                "<g id='leo-{}-{}' class='leo {}'><path d='M{} {}l-7 12h14z'/><text x='{}' y='{}'>b{} {}</text></g>",
                i, r["broker"], r["status"], f"{lx:.0f}", y + 72, f"{lx:.0f}", y + 100 + 15 * level, r["broker"], r["leo"],
            ))
        for g in groups:
            gi = group_index.get(g["name"])
            if gi is None:
                continue
            part = next((q for q in g["partitions"] if q["partition"] == i), None)
            if part is None or part["owner"] is None:
                continue
            cx = cell_x(min(max(part["committed"], first), first + WINDOW), first) - CELL_GAP / 2
            marks.add(f"cm-{i}-{uid(g['name'])}", markup(
                "<path id='cm-{}-{}' class='committed g{}' d='M{} {}l-8 -12h16z'/>",
                i, uid(g["name"]), gi, f"{cx:.0f}", y + 22 - gi * 3,
            ))


def _producers(pic: Picture, state: ClusterState, producers: list[dict[str, Any]]) -> None:
    layer = pic.layer("lp-producers")
    for j, pr in enumerate(producers):
        y = ROWS_Y + j * 120
        layer.add(f"pr-{uid(pr['name'])}", markup(
            "<g id='pr-{}' class='producer'><rect x='16' y='{}' width='228' height='104' rx='10'/>"
            "<text x='30' y='{}' class='pr-name'>{}</text><text x='30' y='{}'>acks={}{}</text>"
            "<text x='30' y='{}'>sent {} · acked {}</text><text x='30' y='{}' class='{}'>{}</text></g>",
            uid(pr["name"]), y, y + 28, _short(pr["name"], 16), y + 52, pr["acks"],
            f" · {pr['rate']}/tick" if pr.get("rate") else "", y + 74, f"{pr['sent']:,}",
            f"{pr['acknowledged']:,}", y + 96, "pr-warn" if pr["waiting"] or pr["failed"] else "pr-ok",
            f"waiting {pr['waiting']:,}" if pr["waiting"] else (f"failed {pr['failed']:,}" if pr["failed"] else "all acknowledged"),
        ))


def _groups(pic: Picture, state: ClusterState, groups: list[dict[str, Any]]) -> None:
    layer = pic.layer("lp-groups")
    y = ROWS_Y
    for gi, g in enumerate(groups):
        rows = []
        for k, m in enumerate(g["members"]):
            parts = ", ".join(f"P{p}" for p in m["partitions"]) or "idle"
            rows.append(markup(
                "<g id='gm-{}-{}-{}' class='member{}' data-group='{}' data-member='{}' tabindex='0' role='button'>"
                "<text x='1212' y='{}'>{}</text><text x='1420' y='{}' class='mparts'>{}</text>"
                "<title>{} in {}: {}. Click to remove it from the group.</title></g>",
                # A new generation draws new rows: the reassigned partitions pop in after a rebalance.
                uid(g["name"]), uid(m["name"]), g["generation"],
                " idle" if m["idle"] else "", g["name"], m["name"], y + 62 + k * 26, _short(m["name"], 14),
                y + 62 + k * 26, parts, m["name"], g["name"], parts,
            ))
        box_h = 76 + len(g["members"]) * 26
        layer.add(f"gr-{uid(g['name'])}", markup(
            "<g id='gr-{}' class='group g{}'><rect x='1196' y='{}' width='388' height='{}' rx='10'/>"
            "<rect id='gp-{}-{}' class='pulse' x='1196' y='{}' width='388' height='{}' rx='10'/>"
            "<text x='1212' y='{}' class='gname'>{}</text>"
            "<text x='1212' y='{}' class='gmeta'>{} · generation {}</text>{}</g>",
            uid(g["name"]), gi % GROUP_MARKS, y, box_h, uid(g["name"]), g["generation"], y, box_h, y + 26,
            _short(g["name"], 18),
            y + 46, g["assignor"], g["generation"], mark_safe("".join(rows)),
        ))
        layer.add(f"gl-{uid(g['name'])}", markup("<text id='gl-{}' x='1572' y='{}' class='glag' text-anchor='end'>lag {}</text>",
                                                 uid(g["name"]), y + 26, f"{g['total_lag']:,}"))
        y += box_h + 14


def _flights(pic: Picture, state: ClusterState, events: list[dict[str, Any]], seq: int,
             producers: list[dict[str, Any]], parts: list[dict[str, Any]]) -> None:
    """A produced record flies from its producer to its cell on the leader's partition."""
    layer = pic.layer("lp-flights", transient=True)
    index = {p["name"]: j for j, p in enumerate(producers)}
    shown = 0
    for ev in events:
        if ev["kind"] != "record_produced" or shown >= 4:
            continue
        d = ev["data"]
        j = index.get(d["producer"], 0)
        p = parts[d["partition"]]
        first = page_start(p["log_start"], p["log_end"])
        x0, y0 = 244, ROWS_Y + j * 120 + 52
        x1, y1 = cell_x(d["offset"], first) + CELL_W / 2, row_y(d["partition"]) + 45
        path = f"M{x0} {y0}C{x0 + 120} {y0} {x1 - 160} {y1} {x1:.0f} {y1}"
        layer.add(f"f{seq}-{shown}", markup(
            "<g id='f{}-{}' class='flight {}'><path class='trail' d='{}'/><circle r='9'><animateMotion begin='indefinite' dur='0.9s' fill='freeze' path='{}'/></circle></g>",
            seq, shown, key_colour(d.get("key")), path, path,
        ))
        shown += 1


# -- panels -----------------------------------------------------------------------------------

def _panels(pic: Picture, state: ClusterState, parts: list[dict[str, Any]], groups: list[dict[str, Any]],
            producers: list[dict[str, Any]]) -> None:
    ctx = {"state": state, "parts": parts, "groups": groups, "producers": producers, "totals": totals(state),
           "config": state.config, "lag_charts": [lag_chart(g) for g in groups]}
    ctx["brokers"] = range(len(state.brokers_up))
    ctx["insync_choices"] = range(1, state.config.replication_factor + 1)
    ctx["assignors"] = ASSIGNORS
    for panel in ("lp-summary", "lp-lag", "lp-settings", "lp-controls"):
        pic.panels[panel] = render_tight(f"logpartitions/_{panel}.html", ctx)


def lag_chart(group: dict[str, Any]) -> dict[str, Any]:
    history = list(group["lag_history"])[-30:] or [group["total_lag"]]
    top = max(max(history), 1)
    w, h = 300, 70
    step = w / max(len(history) - 1, 1)
    points = " ".join(f"{k * step:.0f},{h - h * v / top:.0f}" for k, v in enumerate(history))
    return {"name": group["name"], "points": points, "top": top, "now": group["total_lag"], "w": w, "h": h}


# -- entry points -----------------------------------------------------------------------------

def base_picture(state: ClusterState) -> Picture:
    cached = state._cache.get("picture")
    if cached is None:
        parts = partition_summaries(state)
        groups = group_summaries(state)
        producers = producer_summaries(state)
        cached = Picture()
        _brokers(cached, state, parts)
        _rows(cached, state, parts, groups)
        _producers(cached, state, producers)
        _groups(cached, state, groups)
        _panels(cached, state, parts, groups, producers)
        state._cache["picture"] = cached
        state._cache["summaries"] = (parts, producers)
    return cached


def picture(state: ClusterState, view: RoomView, events: list[dict[str, Any]] | None = None) -> Picture:
    base = base_picture(state)
    pic = Picture(layers=dict(base.layers), panels=dict(base.panels))
    parts, producers = state._cache["summaries"]
    _flights(pic, state, events or [], view.seq, producers, parts)
    return pic
