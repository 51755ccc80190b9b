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
import threading
import weakref
from typing import Any

from django.utils.safestring import mark_safe

from apps.common import flights
from apps.common.flights import MIN_FLIGHT_MS, Answer, Flight, Timing
from apps.rooms.fragments import Picture, markup, render_tight
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
LANES_X = 170  # where the time axis starts
SLOTS = 9
CARRY = 4  # episodes a new page keeps from the previous one (about half a page of context)
SLOT_W = (WIDTH - LANES_X - 20) / SLOTS
SLOT_PAD = 14
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


def lanes(state: LockState) -> list[str]:
    return [c.name for c in state.clients] + [n.name for n in state.nodes] + ["storage"]


def lane_heights(state: LockState) -> list[int]:
    return [CLIENT_LANE_H] * len(state.clients) + [LANE_H] * (len(state.nodes) + 1)


def lanes_top() -> int:
    return DIAGRAM_Y + 48


def height(state: LockState) -> int:
    return lanes_top() + sum(lane_heights(state)) + 20


STAGE_LAYERS = ("lq-titles", "lq-links", "lq-nodes", "lq-clients", "lq-storage", "lq-race", "lq-flights")

# The class race on the stage: one small mark per student under the arc of nodes (up to 60:
# 3 rows of 20), each student's first SETs fly up from its mark to every node.
RACE_DX, RACE_COLS = 25, 24
RACE_Y0, RACE_DY, RACE_R = 414, 24, 9
RACE_TITLE_Y = 388


def race_xy(i: int, n: int) -> tuple[float, float]:
    """Student i of n: rows of RACE_COLS, centred under the arc."""
    x0 = ARC_CX - (min(n, RACE_COLS) - 1) * RACE_DX / 2
    return x0 + (i % RACE_COLS) * RACE_DX, RACE_Y0 + (i // RACE_COLS) * RACE_DY


def frame_context(state: LockState, picture: Picture) -> dict[str, Any]:
    """What the two SVGs of the frame need: each layer's markup, the stage (fixed size) and the
    diagram (a lane per client, node and the storage, so its height follows the scene)."""
    top = DIAGRAM_Y - 40
    # Each SVG's share of the picture's height follows its viewBox height (CSS: .lq-h-<n>), so
    # both scale alike and neither is squeezed below the other's scale.
    return {"layers": {k.replace("-", "_"): v.inner() for k, v in picture.layers.items()}, "stage_h": STAGE_H,
            "diagram_top": top, "diagram_h": height(state) - top, "diagram_y": DIAGRAM_Y - 12,
            "diagram_share": share_class(height(state) - top)}


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
            line = f"paused to {_ms(c.paused_until)}"
        elif c.status == "holding":
            line = f"holds: {(c.valid_until - now) / 1000:.1f} s left" if c.name in holders else "thinks it holds"
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
                 "client_paused": "pause", "link_cut": "cut", "link_healed": "heal"}.get(ev)
        if short:
            return f"{_short(e.label.split(' ')[0], 5)} {short}"
    return _short(e.label, 14)


def page_of(n: int) -> int:
    return max(0, (n - CARRY) // (SLOTS - CARRY))


def _page(state: LockState) -> tuple[list[Episode], int]:
    if not state.trace:
        return [], 0
    page = page_of(state.trace[-1].n)
    first = page * (SLOTS - CARRY)
    return [e for e in state.trace if e.n >= first], first


def slot_x(ep: Episode, first: int) -> float:
    return LANES_X + (ep.n - first) * SLOT_W


def _timeline(shown: list[Episode], first: int):
    """Global ms → x on this page: to scale inside an episode, compressed between episodes."""
    spans = [(e.start, e.end, slot_x(e, first) + SLOT_PAD, slot_x(e, first) + SLOT_W - SLOT_PAD) for e in shown]

    def x_of(t: int, own: Episode | None = None) -> float:
        if own is not None and own.start <= t <= own.end:  # an instant shared by two episodes: this one's slot
            x0 = slot_x(own, first)
            if own.end == own.start:
                return x0 + SLOT_W / 2
            return x0 + SLOT_PAD + (SLOT_W - 2 * SLOT_PAD) * (t - own.start) / (own.end - own.start)
        if not spans or t <= spans[0][0]:
            return spans[0][2] if spans else LANES_X
        for (s, e, x0, x1), nxt in zip(spans, spans[1:] + [None]):
            if s <= t <= e:
                return x0 if e == s else x0 + (x1 - x0) * (t - s) / (e - s)
            if nxt is not None and e < t < nxt[0]:
                return x1 + (nxt[2] - x1) * (t - e) / (nxt[0] - e)  # the gap between two slots
        return WIDTH - 20

    return x_of


def _diagram(pic: Picture, state: LockState) -> None:
    axis = pic.layer("lq-axis")
    eps = pic.layer("lq-episodes")
    bands = pic.layer("lq-bands")
    names = lanes(state)
    heights = lane_heights(state)
    lane_y = {name: lanes_top() + sum(heights[:i]) + heights[i] / 2 for i, name in enumerate(names)}
    lanes_h = sum(heights)
    for i, name in enumerate(names):
        y = lane_y[name]
        kind = "client" if i < len(state.clients) else ("storage" if name == "storage" else "node")
        axis.add(f"lane-{i}", markup(
            "<g id='lane-{}' class='lane {}'><line x1='{}' x2='{}' y1='{}' y2='{}'/><text x='{}' y='{}'>{}</text></g>",
            i, kind, LANES_X, WIDTH - 20, f"{y:.0f}", f"{y:.0f}", LANES_X - 14, f"{y + 8:.0f}", _short(name, 8)))
    shown, first = _page(state)
    dropped = state.trace_count - len(state.trace)
    earlier = first - (state.trace[0].n if state.trace else 0) + dropped
    older_msgs = state.older_messages + sum(len(e.messages) for e in state.trace if e.n < first)
    axis.add("older", markup(
        "<text id='older' class='older' x='{}' y='{}'>{}<tspan x='{}' dy='26'>{}</tspan></text>", 24, DIAGRAM_Y + 20,
        f"← {earlier:,} earlier" if earlier else "time →", 24, f"{older_msgs:,} msgs" if earlier else ""))
    x_of = _timeline(shown, first)
    for e in shown:
        x0 = slot_x(e, first)
        parts = [markup("<rect class='slot' x='{}' y='{}' width='{}' height='{}'/><text class='elabel' x='{}' y='{}'>{}</text>",
                        f"{x0 + 4:.0f}", DIAGRAM_Y + 44, f"{SLOT_W - 8:.0f}", lanes_h + 16,
                        f"{x0 + 8:.0f}", DIAGRAM_Y + 36, short_label(e).replace(" write LOST", " LOST"))]
        strokes: dict[str, list[str]] = {}  # one <path> per kind of arrow: a slot costs little
        for m in e.messages:
            if m["kind"] == "mark":
                y = lane_y.get(m["to"])
                if y is not None:
                    parts.append(markup("<text class='grant' x='{}' y='{}'>→ {}</text>", f"{x0 + SLOT_PAD:.0f}", f"{y - 4:.0f}",
                                        _short(m["result"], 8)))
                continue
            y1, y2 = lane_y.get(m["from"]), lane_y.get(m["to"])
            if y1 is None or y2 is None:
                continue
            xa = x_of(m["sent"], e)
            if m["kind"] == "timeout":
                strokes.setdefault("tmo", []).append(f"M{xa:.0f} {y2 + 8:.0f}H{x_of(m['arrives'], e):.0f}")
                continue
            if m["arrives"] is None:  # lost on the way: half an arrow and a cross
                xb, yb = xa + 14, (y1 + y2) / 2
                strokes.setdefault("lost", []).append(f"M{xa:.0f} {y1:.0f}L{xb:.0f} {yb:.0f}")
                parts.append(markup("<text class='lostx' x='{}' y='{}'>✕</text>", f"{xb:.0f}", f"{yb + 6:.0f}"))
                continue
            xb = x_of(m["arrives"], e)
            if m["to"] == "storage":
                tone = "okw" if e.ok and "two writers" not in m["result"] else ("lostw" if e.ok else "rejw")
            elif m["kind"] == "request":
                tone = "req"
            else:
                tone = "okr" if m["result"] in ("OK", "1", "ack") or m["result"].startswith("OK") else "failr"
            strokes.setdefault(tone, []).append(f"M{xa:.0f} {y1:.0f}L{xb:.0f} {y2:.0f}")
        for tone, ds in strokes.items():
            parts.append(markup("<path class='{}' d='{}'/>", tone, "".join(ds)))
        pause = (e.detail or {}).get("event") == "client_paused"  # its hatched band starts here: no mark on top
        if e.kind in ("fault", "tick") and e.lane in lane_y and not pause:
            parts.append(markup("<text class='fmark' x='{}' y='{}'>⚡</text>", f"{x0 + SLOT_W / 2:.0f}", f"{lane_y[e.lane] + 8:.0f}"))
        eps.add(f"ep-{e.n}", markup("<g id='ep-{}' class='episode k-{}{}'><title>{}</title>{}</g>", e.n, e.kind,
                                    "" if e.ok is None else (" ok" if e.ok else " no"), e.label, mark_safe("".join(parts))))
    # Validity windows (what a client believes) and pauses, on the client lanes.
    right = WIDTH - 20
    page_start = shown[0].start if shown else 0
    for e in state.trace:  # a window or a pause that began on an earlier page still shows
        if e.n >= first:
            pass
        elif not ((e.window and e.window[1] > page_start) or ((e.detail or {}).get("until") or 0) > page_start):
            continue
        rel = next((r for r in state.trace if r.n > e.n and r.kind == "release" and r.lane == e.lane), None) \
            if e.window is not None else None
        if rel is not None and rel.n < first and rel.start < e.window[1]:
            pass  # held and released on earlier pages: nothing of it on this one
        elif e.window is not None and e.lane in lane_y:
            # A client that released stops believing it holds the lock: its band ends there.
            if rel is not None and rel.start < e.window[1]:
                a = x_of(e.window[0], e) if e.n >= first else LANES_X
                b = x_of(rel.start, rel) if rel.n >= first else LANES_X
                open_end, text = False, f"released at {_ms(rel.start)}"
            else:
                a, b = x_of(e.window[0], e) if e.n >= first else LANES_X, x_of(e.window[1])
                open_end = not shown or e.window[1] > shown[-1].end
                b = right if open_end else b
                text = f"valid until {_ms(e.window[1])}"
            # Above the lane's line (a pause's band and label are below it): the two never overlap.
            bands.add(f"win-{e.n}", markup(
                "<g id='win-{}' class='window'><rect x='{}' y='{}' width='{}' height='{}' rx='4'/>"
                "<text x='{}' y='{}'>{}{}</text></g>",
                e.n, f"{a:.0f}", f"{lane_y[e.lane] - 26:.0f}", f"{max(b - a, 4):.0f}", 25,
                f"{max(b - 6, a + 250):.0f}", f"{lane_y[e.lane] - 6:.0f}", text, " →" if open_end else ""))
        if e.kind == "fault" and (e.detail or {}).get("event") == "client_paused" and e.lane in lane_y:
            until = e.detail["until"]
            a = x_of(e.start, e) if e.n >= first else LANES_X
            b = right if until > (shown[-1].end if shown else 0) else x_of(until)
            bands.add(f"pz-{e.n}", markup(
                "<g id='pz-{}' class='pauseband'><rect x='{}' y='{}' width='{}' height='{}'/>"
                "<text x='{}' y='{}'>paused (GC)</text></g>",
                e.n, f"{a:.0f}", f"{lane_y[e.lane] + 2:.0f}", f"{max(b - a, 4):.0f}", 25, f"{a + 6:.0f}",
                f"{lane_y[e.lane] + 22:.0f}"))


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
    why = failure_reason(last.detail) if last is not None and not last.ok else None
    ctx = {"state": state, "last": last, "why": why, "holders": state.holders(), "modes": MODE_TITLES}
    for panel in ("lq-summary", "lq-math", "lq-clientctl", "lq-nodectl", "lq-time", "lq-settings", "lq-scene"):
        pic.panels[panel] = render_tight(f"lockquorums/_{panel}.html", ctx)


# -- entry points -----------------------------------------------------------------------------

_PICTURES: dict[int, tuple[Any, Picture]] = {}  # id(state) -> (weak reference, its picture)
_PICTURES_LOCK = threading.Lock()


def base_picture(state: LockState) -> Picture:
    """The picture of a state (without this update's flights). States are immutable and the
    engine keeps the live one, so the "before" picture of the next event is usually cached."""
    hit = _PICTURES.get(id(state))
    if hit is not None and hit[0]() is state:
        return hit[1]
    pic = _draw(state)
    with _PICTURES_LOCK:  # render threads may share the cache
        while len(_PICTURES) >= 16:
            _PICTURES.pop(next(iter(_PICTURES)))
        _PICTURES[id(state)] = (weakref.ref(state), pic)
    return pic


def _draw(state: LockState) -> Picture:
    pic = Picture()
    _titles(pic, state)
    _links(pic, state)
    _nodes(pic, state)
    _clients(pic, state)
    _storage(pic, state)
    _race(pic, state)
    _diagram(pic, state)
    _panels(pic, state)
    return pic


def picture(state: LockState, view: RoomView, events: list[dict[str, Any]] | None = None) -> Picture:
    base = base_picture(state)
    pic = Picture(layers=dict(base.layers), panels=dict(base.panels))  # the cached one stays as it was
    _flights(pic, state, events or [], view.seq)
    return pic
