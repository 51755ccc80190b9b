"""The lock quorum's picture as keyed fragments (see ``apps.rooms.fragments``).

Two SVGs, both 1600 wide (the frame of ``_frame.html``).

*The stage* (top, a fixed size): clients on the left, the lock nodes in an arc in the middle
(the seed's five security guards), the shared storage on the right. Every client-node link is a
faint line; a cut link is a red dashed one. Each node shows its key (owner and value) and a TTL
ring that empties as the key's time runs out *on that node's clock*. After an acquisition, every
request and reply flies along its link with its own latency (scaled so a 62 ms walk takes about
three seconds), and each node's answer appears when its reply would arrive (``room.js`` draws
them from a compact ``data-flights`` attribute).

*The space-time diagram* (below; its height follows the number of lanes): one lane per client,
per node and for the storage; each event with messages is an *episode* in its own slot, time to
scale inside the slot and compressed between slots (ticks in a row share one slot). Arrows are
requests and replies; a shaded band on a client's lane is the validity window it believes in; a
hatched band is a pause. Slots come in pages: a page holds SLOTS episodes and the next page
starts with the last CARRY of the previous one, so adding an episode adds one slot and moves
nothing except at a page turn, whatever the length of the run. Older episodes are summarised
by a count on the left.
"""
from __future__ import annotations

import math
from typing import Any

from django.utils.safestring import mark_safe

from apps.common import flights
from apps.common.flights import MIN_FLIGHT_MS, Answer, Flight, Timing
from apps.common import spacetime
from apps.common.sim.network import Message
from apps.rooms.fragments import Change, Picture, markup, render_tight
from apps.rooms.registry import RoomView

from .sim import LockState
from .sim import Episode

WIDTH = 1600
MODE_TITLES = {"single": "Single Redis", "redlock": "RedLock (5 nodes)", "consensus": "Consensus lease (etcd-style)"}
# Type: every text is at least 24 units. On a 1920×1080 projector the picture is about 1,360 px
# wide (scale 0.85), so 24 units are 20 px on the screen (issue 9: projected text >= 20 px).
STAGE_H = 480
CLIENT_X, CLIENT_W, CLIENT_H = 24, 270, 104  # a card of three lines; 66 (two lines) for 5 or 6 clients
STORE_X, STORE_W = 1296, 290
ARC_CX, ARC_CY, ARC_RX, ARC_RY = 800, 500, 470, 370
NODE_R = 56
RING_R = 66

DIAGRAM_Y = STAGE_H + 40
LANE_H = 36  # a node's or the storage's lane
CLIENT_LANE_H = 56  # a client's lane: its validity band above the line, a pause band below, each with its label
# The diagram below the stage: 9 slots a page, a new page keeps the last 4 (about half a page of context).
GEOMETRY = spacetime.Geometry(top=DIAGRAM_Y, width=WIDTH, lanes_x=170, slots=9, carry=4, slot_pad=14)
MAX_FLIGHTS = 48


def node_angles(n: int) -> list[float]:
    if n == 1:
        return [-90.0]
    lo, hi = -152.0, -28.0
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def node_xy(state: LockState, i: int) -> tuple[float, float]:
    a = math.radians(node_angles(len(state.nodes))[i])
    return ARC_CX + ARC_RX * math.cos(a), ARC_CY + ARC_RY * math.sin(a) + 10


def card_h(state: LockState) -> int:
    return CLIENT_H if len(state.clients) <= 4 else 66


def client_xy(state: LockState, i: int) -> tuple[float, float]:
    h = card_h(state)
    return CLIENT_X + CLIENT_W, 40 + i * (h + 8) + h / 2


# The class race on the stage: one small mark per student under the arc of nodes (up to 60:
# 3 rows of 20), each student's first SETs fly up from its mark to every node.
RACE_DX, RACE_COLS = 25, 24
RACE_Y0, RACE_DY, RACE_R = 414, 24, 9
RACE_TITLE_Y = 388


def race_xy(i: int, n: int) -> tuple[float, float]:
    """Student i of n: rows of RACE_COLS, centred under the arc."""
    x0 = ARC_CX - (min(n, RACE_COLS) - 1) * RACE_DX / 2
    return x0 + (i % RACE_COLS) * RACE_DX, RACE_Y0 + (i // RACE_COLS) * RACE_DY


# Each SVG's share of the picture's height follows its viewBox height (CSS: .lq-h-<n>), so both
# scale alike and neither is squeezed below the other's scale.
SHARES = tuple(range(300, 1101, 20))  # the diagram heights lockquorums.css has a flex share for


def share_class(h: int) -> str:
    return f"lq-h-{min(SHARES, key=lambda x: abs(x - h))}"


def _ms(v: int | float) -> str:
    return f"{int(v):,}"


def _short(text: str, n: int = 10) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _node_title(state: LockState, node: Any) -> str:
    if state.mode == "consensus":
        return f"Member {node.name}"
    return "Redis" if state.mode == "single" else f"Node {node.name}"


# -- the stage --------------------------------------------------------------------------------

def _titles(pic: Picture, state: LockState) -> None:
    layer = pic.layer("lq-titles")
    if state.mode == "consensus":
        middle = "Consensus group (lease service)"
    elif state.mode == "single":
        middle = "One Redis instance"
    else:
        middle = f"Lock nodes: {state.quorum} of {len(state.nodes)} make a quorum"
    for key, x, text in (("clients", 159, "Clients"), ("nodes", 800, middle), ("storage", 1446, "Shared storage")):
        layer.add(f"tt-{key}", markup("<text id='tt-{}' x='{}' y='26' class='col-title'>{}</text>", key, x, text))


def _links(pic: Picture, state: LockState) -> None:
    layer = pic.layer("lq-links")
    for ci, c in enumerate(state.clients):
        x1, y1 = client_xy(state, ci)
        for ni, n in enumerate(state.nodes):
            x2, y2 = node_xy(state, ni)
            cut = c.name in n.cut
            rtt = n.rtt(c.name)
            layer.add(f"ln-{ci}-{ni}", markup(
                "<line id='ln-{}-{}' class='link{}' x1='{}' y1='{}' x2='{}' y2='{}'><title>{}–{}: {}</title></line>",
                ci, ni, " cut" if cut else "", f"{x1:.0f}", f"{y1:.0f}", f"{x2:.0f}", f"{y2:.0f}", c.name, n.name,
                "cut (partition): requests are lost" if cut else f"round trip {rtt} ms"))
            if cut:
                mx, my = (x1 + 2 * x2) / 3, (y1 + 2 * y2) / 3
                layer.add(f"cx-{ci}-{ni}", markup("<text id='cx-{}-{}' class='cutmark' x='{}' y='{}'>✂</text>",
                                                  ci, ni, f"{mx:.0f}", f"{my:.0f}"))


def _nodes(pic: Picture, state: LockState) -> None:
    layer = pic.layer("lq-nodes")
    now = state.now_ms
    for i, n in enumerate(state.nodes):
        x, y = node_xy(state, i)
        key = n.live_key(now)
        silent = n.up and now < n.available_from
        status = "down" if not n.up else ("silent" if silent else "up")
        if state.mode == "consensus" and state.lease is not None and n.up:
            owner, left, total = state.lease.holder, state.lease.expires_at - now, state.ttl_ms
        elif key is not None:
            owner, left, total = key.owner, key.expires_at - n.local(now), state.ttl_ms
        else:
            owner, left, total = None, 0, state.ttl_ms
        frac = max(0.0, min(1.0, left / total)) if owner and n.up else 0.0
        circ = 2 * math.pi * RING_R
        line2 = {"down": "DOWN", "silent": "silent"}.get(status) or (f"{_short(owner, 6)} {left / 1000:.1f}s" if owner else "free")
        clock = f"clock +{_ms(n.clock_offset_ms)} ms" if n.clock_offset_ms else ("fsync" if n.persistence else "no fsync")
        if silent:
            clock = f"silent to {_ms(n.available_from)}"
        if not n.up:
            value = "keys on disk" if n.persistence else "forgets keys"
        elif key is not None and state.mode != "consensus" and len(state.nodes) < 7:
            value = f"value {key.value.split(':')[-1][:6]}…"  # the random value: tells two owners apart
        else:
            value = ""
        # The node's frame never changes; what does (status, the TTL ring, the owner) are small
        # elements of their own, so a tick or an acquisition morphs a few hundred bytes per node.
        # A button for the keyboard as for the mouse: Enter or Space crashes an up node and
        # restarts a down one with the options ticked under Faults (room.js sends data-send).
        if n.up:
            act, args, verb = "node_crash", "", "crash it"
        else:
            act, args, verb = "node_restart", " data-args-from='lq-restart'", "restart it (with the restart options under Faults)"
        # Up or down, and what a press does: the label changes only when the node crashes or
        # restarts (who holds its key is the body's title), so an acquisition does not morph it.
        label = f"{_node_title(state, n)}, {'down' if not n.up else 'up'}: {verb}"
        layer.add(f"nd-{n.name}", markup(
            "<g id='nd-{}' class='lnode' data-lnode='{}' tabindex='0' role='button' aria-label='{}' data-send='{}' data-arg-node='{}'{}>"
            "<circle class='ttl-track' cx='{}' cy='{}' r='{}'/></g>",
            n.name, n.name, label, act, n.name, mark_safe(args), f"{x:.0f}", f"{y:.0f}", RING_R))
        layer.add(f"nb-{n.name}", markup(
            "<circle id='nb-{}' class='nbody {}{}' data-lnode='{}' data-send='{}' data-arg-node='{}'{} cx='{}' cy='{}' r='{}'>"
            "<title>{}: {}</title></circle>",
            n.name, status, " held" if owner else "", n.name, act, n.name, mark_safe(args), f"{x:.0f}", f"{y:.0f}", NODE_R,
            _node_title(state, n),
            "down" if not n.up else ("silent (delayed restart)" if silent else
                                      (f"{owner}'s key, {left:,} ms left on its clock" if owner else "no key"))))
        layer.add(f"nn-{n.name}", markup("<text id='nn-{}' x='{}' y='{}' class='nname'>{}</text>",
                                         n.name, f"{x:.0f}", f"{y - 8:.0f}", n.name))
        layer.add(f"nr-{n.name}", markup(
            # The ring starts at 12 o'clock (CSS turns it) and its dash (CSS: the circumference) empties.
            "<circle id='nr-{}' class='ttl' cx='{}' cy='{}' r='{}' stroke-dashoffset='{}'/>",
            n.name, f"{x:.0f}", f"{y:.0f}", RING_R, f"{circ * (1 - frac):.0f}"))
        layer.add(f"no-{n.name}", markup("<text id='no-{}' x='{}' y='{}' class='nowner {}'>{}</text>",
                                         n.name, f"{x:.0f}", f"{y + 24:.0f}", status, line2))
        layer.add(f"nm-{n.name}", markup("<text id='nm-{}' x='{}' y='{}' class='nmeta'>{}<tspan x='{}' dy='28'>{}</tspan></text>",
                                         n.name, f"{x:.0f}", f"{y + RING_R + 28:.0f}", clock, f"{x:.0f}", value))
    if state.mode == "consensus":
        lease = state.lease
        text = (f"lease: {lease.holder}, revision {lease.revision}, {(lease.expires_at - now) / 1000:.1f} s left"
                if lease else "lease: free")
        layer.add("lease", markup("<text id='lease' class='lease' x='{}' y='{}'>{}</text>", ARC_CX, ARC_CY - 40, text))


def _clients(pic: Picture, state: LockState) -> None:
    layer = pic.layer("lq-clients")
    now = state.now_ms
    holders = set(state.holders())
    for i, c in enumerate(state.clients):
        h = card_h(state)
        x, y = CLIENT_X, 40 + i * (h + 8)
        believes = c.status == "holding" or (c.status == "paused" and c.resume_status == "holding")
        if c.status == "paused":  # the pause sign is drawn (two bars): no font needed; the tooltip says more
            line = f"paused to {_ms(c.paused_until or 0)}"
        elif c.status == "holding":
            line = f"holds: {((c.valid_until or now) - now) / 1000:.1f} s left" if c.name in holders else "thinks it holds"
        else:
            line = {"idle": "idle", "failed": "failed to acquire", "released": "released",
                    "expired": "validity ran out"}.get(c.status, c.status)
        last = next((e for e in reversed(state.trace) if e.kind == "acquire" and e.lane == c.name), None)
        if last is None and state.last_acquire is not None and state.last_acquire.lane == c.name:
            last = state.last_acquire
        third = ""
        if last is not None and h == CLIENT_H and c.status in ("holding", "failed", "paused", "expired"):
            d = last.detail or {}
            if not last.ok and c.status == "failed":
                third = _short(card_reason(d), 19)  # why it failed, never a validity it does not have
            else:
                third = (f"{d.get('oks')}/{d.get('nodes')} OK in {_ms(d.get('elapsed') or 0)} ms"
                         if d.get("mode") != "consensus" else f"lease: {_short(str(d.get('result')), 12)}")
        token = f" · token {c.token}" if c.token is not None else ""
        stale = believes and c.name not in holders
        act = "release" if c.status == "holding" else "acquire"  # a paused client's acquire is refused with the reason
        verb = {"release": "release the lock", "acquire": "acquire the lock"}[act] if c.status != "paused" else "wait: it is paused"
        pause = (markup("<g class='pausesign' aria-hidden='true'><rect x='{}' y='{}' width='5' height='16'/><rect x='{}' y='{}' width='5' height='16'/></g>",
                        x + CLIENT_W - 34, y + 14, x + CLIENT_W - 25, y + 14) if c.status == "paused" else "")
        layer.add(f"cl-{i}", markup(
            "<g id='cl-{}' class='client {}{}{}' data-client='{}' tabindex='0' role='button' aria-label='{}' data-send='{}' data-arg-client='{}'>"
            "<rect x='{}' y='{}' width='{}' height='{}' rx='10'/>"
            "<text x='{}' y='{}' class='cname'>{}{}</text><text x='{}' y='{}' class='cstate'>{}</text>{}"
            "<text x='{}' y='{}' class='cmath'>{}</text></g>",
            i, c.status, " believes" if believes else "", " stale" if stale else "", c.name,
            f"Client {c.name}, {line}{' (it believes it still holds the lock)' if believes else ''}: {verb}", act, c.name,
            x, y, CLIENT_W, h, x + 16, y + (32 if h == CLIENT_H else 29), _short(c.name, 10), token,
            x + 16, y + (64 if h == CLIENT_H else 57), line, pause, x + 16, y + 94, third,
        ))


def _storage(pic: Picture, state: LockState) -> None:
    layer = pic.layer("lq-storage")
    top = 40
    fence = "fencing on" if state.fencing else "fencing off"
    newest = (markup("<tspan x='{}' dy='28'>newest token {}</tspan>", STORE_X + 16,
                     state.highest_token if state.highest_token is not None else "—") if state.fencing else "")
    layer.add("st-box", markup(
        "<g id='st-box' class='storage{}'><rect x='{}' y='{}' width='{}' height='{}' rx='12'/>"
        "<text x='{}' y='{}' class='sname'>Storage</text><text x='{}' y='{}' class='smeta'>{}{}</text>{}</g>",
        " lost" if state.lost_update else "", STORE_X, top, STORE_W, STAGE_H - top - 10, STORE_X + 16, top + 32, STORE_X + 16, top + 64, fence,
        newest,
        markup("<text x='{}' y='{}' class='lostflag'>two writers:<tspan x='{}' dy='28'>lost update</tspan></text>",
               STORE_X + 16, STAGE_H - 54, STORE_X + 16)
        if state.lost_update else "",
    ))
    shown = state.writes[-4:]
    for k, w in enumerate(shown):
        n = len(state.writes) - len(shown) + k
        y = top + 108 + k * 58
        mark = "✓" if w.accepted else "✗"
        tok = f" #{w.token}" if w.token is not None else ""
        why = "accepted" if w.accepted and "two writers" not in w.reason else (
            "LOST UPDATE" if w.accepted else f"rejected {w.token} < {w.reason.rsplit('< ', 1)[-1]}")
        layer.add(f"wr-{n}", markup(
            "<g id='wr-{}' class='write {}'><text x='{}' y='{}' class='wmark'>{}</text><text x='{}' y='{}'>{}{} t={}</text>"
            "<text x='{}' y='{}' class='wwhy'>{}</text><title>{}</title></g>",
            n, "ok" if w.accepted and "two writers" not in w.reason else ("lost" if w.accepted else "rej"),
            STORE_X + 16, y + 18, mark, STORE_X + 44, y + 10, _short(w.client, 6), tok, _ms(w.at), STORE_X + 44, y + 38, why, w.reason,
        ))


def _race(pic: Picture, state: LockState) -> None:
    """The class race's students as small marks (each student finds their own: room.js marks
    ``data-student`` elements that carry the viewer's name), the winner's ringed, and a headline.
    A mark never changes once drawn, so a race frame morphs only the winner's."""
    layer = pic.layer("lq-race")  # always there, so the marks go when the race is cleared
    race = state.race
    if not race.contenders:
        return
    result = race.result
    winner = result["winners"][-1] if result and result["winners"] else None
    n = len(race.contenders)
    if result is None:
        title = f"Class race: {n} student{'s' if n != 1 else ''} ready"
    elif winner is not None:
        title = f"Class race: {_short(winner, 16)} got the lock"
    else:
        title = f"Class race: nobody got {state.quorum} of {len(state.nodes)}"
    layer.add("rs-title", markup("<text id='rs-title' class='rs-title' x='{}' y='{}'>{}</text>", ARC_CX, RACE_TITLE_Y, title))
    for i, c in enumerate(race.contenders):
        x, y = race_xy(i, n)
        won = c.name == winner
        layer.add(f"rs-{i}", markup(
            "<circle id='rs-{}' class='rs{}' data-student='{}' cx='{}' cy='{}' r='{}'><title>{}{}</title></circle>",
            i, " won" if won else "", c.name, x, y, RACE_R, c.name, " got the lock" if won else ""))


def _race_flights(state: LockState, d: dict[str, Any]) -> list[Flight | Answer]:
    """Every student's first try: a SET from its mark to each node, green where the node said OK
    to it, orange where another student's SET got there first; a SET to a node that is down stops
    half-way. Each node shows whose SET it accepted when that SET arrives. The winner's winning
    try, when it was not the first, flies again afterwards."""
    rtts = {c.name: dict(c.rtt) for c in state.race.contenders}
    order = {c.name: i for i, c in enumerate(state.race.contenders)}
    nidx = {n.name: i for i, n in enumerate(state.nodes)}
    winner = d["winners"][-1] if d["winners"] else None
    flown: list[tuple[str, dict[str, Any], int]] = []  # (student, try, try number)
    for c in d["contenders"]:
        if c["name"] in order and c["tries"]:
            flown.append((c["name"], c["tries"][0], 0))
    if winner is not None and winner in order:
        tries = next(c["tries"] for c in d["contenders"] if c["name"] == winner)
        if len(tries) > 1:
            flown.append((winner, tries[-1], len(tries) - 1))
    longest = max([(rtts[name].get(node, 2) // 2) for name, _, _ in flown for node in nidx] + [1])
    t_last = max([t["start"] - d["t0"] for _, t, k in flown if k > 0] + [0])
    timing = Timing.span(d["t0"], d["t0"] + longest + t_last)
    items: list[Flight | Answer] = []
    first_ok: dict[str, tuple[int, str]] = {}
    for name, t, k in flown:
        sx, sy = race_xy(order[name], len(order))
        begin = timing.at(t["start"])
        for node, ni in nidx.items():
            nx, ny = node_xy(state, ni)
            half = rtts[name].get(node, 2) // 2
            if node in t["timeouts"] and node not in t.get("slow", ()):  # down: the SET is lost
                items.append(Flight(sx, sy, nx, ny, begin, timing.duration(0, None), "req", lost=True))
                continue
            ok = node in t["ok"]  # an OK in time (a slow node's SET flies there too, but is not counted)
            at = begin + half * timing.scale
            items.append(Flight(sx, sy, nx, ny + NODE_R, begin, timing.duration(0, half), "ok" if ok else "no"))
            if ok and (node not in first_ok or at < first_ok[node][0]):
                first_ok[node] = (int(at), name)
    for node, (at, name) in first_ok.items():
        nx, ny = node_xy(state, nidx[node])
        items.append(Answer(nx, ny - RING_R - 12, max(at, MIN_FLIGHT_MS), "okr", f"✓ {_short(name, 10)}"))
    return items


def _message_flights(state: LockState, msgs: list[dict[str, Any]]) -> list[Flight | Answer]:
    """Each request and reply along its link with its own timing; each SET reply's answer
    appears on its node when it arrives; a timeout shows on the node when it fires."""
    timing = Timing.of(msgs)
    cidx = {c.name: i for i, c in enumerate(state.clients)}
    nidx = {n.name: i for i, n in enumerate(state.nodes)}
    items: list[Flight | Answer] = []
    for m in msgs:
        node, client = (m["from"], m["to"]) if m["kind"] in ("reply", "timeout") else (m["to"], m["from"])
        if client not in cidx or node not in nidx:
            continue
        (cx, cy), (nx, ny) = client_xy(state, cidx[client]), node_xy(state, nidx[node])
        begin = timing.at(m["sent"])
        ay = ny - RING_R - 12
        if m["kind"] == "timeout":
            items.append(Answer(nx, ay, timing.at(m["arrives"]), "timeout", "TIMEOUT"))
            continue
        ok = m["result"] in ("OK", "1") or m["result"].startswith("OK")
        tone = "req" if m["kind"] == "request" else ("okr" if ok else "failr")
        ends = ((cx, cy), (nx, ny)) if m["kind"] == "request" else ((nx, ny), (cx, cy))
        items.append(Flight(*ends[0], *ends[1], begin, timing.duration(m["sent"], m["arrives"]), tone,
                            lost=m["arrives"] is None))
        if m["kind"] == "reply" and m["op"] in ("SET", "GRANT"):
            items.append(Answer(nx, ay, begin, tone, "OK" if ok else _short(m["result"].split(" (")[0], 12)))
    return items


def _flights(pic: Picture, state: LockState, events: list[dict[str, Any]], seq: int) -> None:
    """Requests and replies of this update's last acquisition try (or release), each along its
    link with its own timing (``apps.common.flights``). Earlier tries of the same command are
    in the diagram and the narration."""
    layer = pic.layer("lq-flights", transient=True)
    race = next((ev["data"] for ev in events if ev["kind"] == "race_run"), None)
    if race is not None:
        layer.add(f"fl{seq}", flights.group(f"fl{seq}", _race_flights(state, race), "flights race"))
        return
    msgs: list[dict[str, Any]] = []
    for ev in events:
        d = ev["data"]
        if ev["kind"] == "acquire_attempted":
            msgs = d["messages"]  # a failed try's release is in the diagram and the narration
        elif ev["kind"] == "released":
            msgs = [m for m in d["messages"] if m["kind"] == "request"]
    msgs = msgs[:MAX_FLIGHTS]
    if msgs:
        layer.add(f"fl{seq}", flights.group(f"fl{seq}", _message_flights(state, msgs)))


# -- the space-time diagram -------------------------------------------------------------------

def short_label(e: Episode) -> str:
    """What fits above a slot; the episode's full label is its tooltip."""
    d = e.detail or {}
    who = _short(e.lane or "", 5)
    if e.kind == "acquire":
        if d.get("mode") == "consensus":
            return f"{who} lease {'✓' if e.ok else '✗'}"
        return f"{who} {'✓' if e.ok else '✗'} {d.get('oks')}/{d.get('nodes')}" + ("" if e.ok or d.get("attempt", 1) == 1 else f" #{d['attempt']}")
    if e.kind == "write":
        if not e.ok:
            return f"{who} write ✗"
        return f"{who} write " + ("LOST" if "two writers" in (d.get("reason") or "") else "✓")
    if e.kind == "release":
        return f"{who} release"
    if e.kind == "race":
        return "class race"
    if e.kind == "tick":
        dt = e.end - e.start
        return f"+{dt / 1000:g} s" if dt >= 1000 else f"+{dt} ms"
    if e.kind == "fault":
        ev = d.get("event")
        short = {"node_crashed": "crash", "node_restarted": "restart", "clock_jumped": "clock ↑",
                 "client_paused": "pause", "link_cut": "cut", "link_healed": "heal"}.get(str(ev))
        if short:
            return f"{_short(e.label.split(' ')[0], 5)} {short}"
    return _short(e.label, 14)


def arrow_tone(e: Episode, m: Message) -> str:
    """A delivered message's CSS class: a write by its outcome, a request, a good or bad reply."""
    if m["to"] == "storage":
        return "okw" if e.ok and "two writers" not in m["result"] else ("lostw" if e.ok else "rejw")
    if m["kind"] == "request":
        return "req"
    return "okr" if m["result"] in ("OK", "1", "ack") or m["result"].startswith("OK") else "failr"


def fault_mark(e: Episode) -> str | None:
    """A fault (or time passing) on a lane gets a ⚡, except a pause: its hatched band starts there."""
    pause = (e.detail or {}).get("event") == "client_paused"
    return "⚡" if e.kind in ("fault", "tick") and not pause else None


STYLE = spacetime.Style(label=lambda e: short_label(e).replace(" write LOST", " LOST"), tone=arrow_tone, mark=fault_mark)


def diagram_lanes(state: LockState) -> list[spacetime.Lane]:
    return ([spacetime.Lane(c.name, "client", CLIENT_LANE_H) for c in state.clients]
            + [spacetime.Lane(n.name, "node", LANE_H) for n in state.nodes] + [spacetime.Lane("storage", "storage", LANE_H)])


def _page(state: LockState) -> tuple[list[Episode], int]:
    """The episodes the diagram shows (its newest page) and the number of the page's first slot."""
    return GEOMETRY.page(state.history)


def _diagram(pic: Picture, state: LockState) -> None:
    lanes = diagram_lanes(state)
    page = spacetime.draw(pic, ("lq-axis", "lq-episodes", "lq-bands"), GEOMETRY, lanes, state.history, STYLE)
    bands = pic.layers["lq-bands"]
    for e in state.trace:  # a window or a pause that began on an earlier page still shows
        if e.n < page.first and not _reaches_page(e, page):
            continue
        if e.window is not None and e.lane in page.lane_y:
            window = _window_band(state, e, page)
            if window is not None:
                bands.add(f"win-{e.n}", window)
        if e.kind == "fault" and (e.detail or {}).get("event") == "client_paused" and e.lane in page.lane_y:
            bands.add(f"pz-{e.n}", _pause_band(e, page))
    height = GEOMETRY.height(lanes)
    pic.region("lq-diagram", "lockquorums/_diagram.html", GEOMETRY.context(
        lanes, region_id="lq-diagram", title_id="lq-dtitle",
        cls=f"lq-frame lq-diagram {share_class(height - (GEOMETRY.top - 40))}"))


def _reaches_page(e: Episode, page: spacetime.Page) -> bool:
    start = page.shown[0].start if page.shown else 0
    return bool((e.window and e.window[1] > start) or ((e.detail or {}).get("until") or 0) > start)


def _window_band(state: LockState, e: Episode, page: spacetime.Page) -> Any:
    """What a client believes: its validity window, above its lane's line (a pause's band and
    label are below it: the two never overlap). A client that released stops believing it holds
    the lock: its band ends there."""
    assert e.window is not None and e.lane is not None
    first, y = page.first, page.lane_y[e.lane]
    rel = next((r for r in state.trace if r.n > e.n and r.kind == "release" and r.lane == e.lane), None)
    if rel is not None and rel.n < first and rel.start < e.window[1]:
        return None  # held and released on earlier pages: nothing of it on this one
    a = page.x_of(e.window[0], e) if e.n >= first else GEOMETRY.lanes_x
    if rel is not None and rel.start < e.window[1]:
        b = page.x_of(rel.start, rel) if rel.n >= first else GEOMETRY.lanes_x
        open_end, text = False, f"released at {_ms(rel.start)}"
    else:
        open_end = not page.shown or e.window[1] > page.last_end
        b = GEOMETRY.right if open_end else page.x_of(e.window[1])
        text = f"valid until {_ms(e.window[1])}"
    return spacetime.band(f"win-{e.n}", "window", a, b, y - 26, 25, text + (" →" if open_end else ""),
                          max(b - 6, a + 250), y - 6, rx=4)


def _pause_band(e: Episode, page: spacetime.Page) -> Any:
    assert e.lane is not None and e.detail is not None
    until, y = e.detail["until"], page.lane_y[e.lane]
    a = page.x_of(e.start, e) if e.n >= page.first else GEOMETRY.lanes_x
    b = GEOMETRY.right if until > page.last_end else page.x_of(until)
    return spacetime.band(f"pz-{e.n}", "pauseband", a, b, y + 2, 25, "paused (GC)", a + 6, y + 22)


# -- panels -----------------------------------------------------------------------------------

def last_acquisition(state: LockState) -> Episode | None:
    return state.last_acquire


def failure_reason(d: dict[str, Any]) -> str:
    """Why a try failed, in the spec's terms: short of a quorum, or too slow to be worth anything
    (elapsed + drift >= TTL, so validity <= 0). Never the validity arithmetic as if it held."""
    if d.get("mode") == "consensus" and not str(d.get("result", "")).startswith("TOO SLOW"):
        return str(d.get("result"))
    if d["oks"] < d["quorum"]:
        return f"{d['oks']} of {d['nodes']} < quorum {d['quorum']}"
    ttl = d["validity"] + d["elapsed"] + d["drift"]
    return f"too slow: elapsed {d['elapsed']:,} ms + drift {d['drift']:,} ms ≥ TTL {ttl:,} ms"


def card_reason(d: dict[str, Any]) -> str:
    """failure_reason, short enough for a client card."""
    if d.get("mode") == "consensus" and not str(d.get("result", "")).startswith("TOO SLOW"):
        return str(d.get("result"))
    if d["oks"] < d["quorum"]:
        return f"{d['oks']}/{d['nodes']} < quorum {d['quorum']}"
    return f"{d['oks']}/{d['nodes']}, but too slow"


def _panels(pic: Picture, state: LockState) -> None:
    last = last_acquisition(state)
    why = failure_reason(last.detail) if last is not None and not last.ok and last.detail is not None else None
    ctx = {"state": state, "last": last, "why": why, "holders": state.holders(), "modes": MODE_TITLES}
    for panel in ("lq-summary", "lq-math", "lq-clientctl", "lq-nodectl", "lq-time", "lq-settings", "lq-scene"):
        pic.panels[panel] = render_tight(f"lockquorums/_{panel}.html", ctx)


# -- the picture ----------------------------------------------------------------------------

def picture(state: LockState, view: RoomView, change: Change | None = None) -> Picture:
    """The lock as data for the engine (``apps.rooms.frames`` renders, caches and diffs it): the
    stage and the space-time diagram as regions of their own, the panels, and this update's
    message flights (``change``: the events just applied; none on a full render)."""
    pic = Picture()
    _titles(pic, state)
    _links(pic, state)
    _nodes(pic, state)
    _clients(pic, state)
    _storage(pic, state)
    _race(pic, state)
    pic.region("lq-stage", "lockquorums/_stage.html", {"stage_h": STAGE_H})
    _diagram(pic, state)
    _flights(pic, state, change.events if change is not None else [], view.seq)
    _panels(pic, state)
    return pic
