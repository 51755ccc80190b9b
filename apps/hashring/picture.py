"""The hash ring's picture as keyed fragments (see ``apps.rooms.fragments``).

Geometry is computed here from the state; templates only draw. Element ids are stable
(``v-<node>-<i>`` for a vnode, ``k-<key>`` for a key dot) so an update morphs the element that is
already on the page and CSS transitions animate the change. Ids are built from a hash of the
user's name, never from the name itself; names reach the page only through escaping.

With many keys the ring stays readable and the broadcast small: at most ``KEY_SAMPLE`` key
dots (a stable sample: the same keys stay picked while others come and go), and above
``DENSE_VNODES`` virtual nodes the ring is drawn as 360 one-degree bins in the colour of the
node owning most of each bin, with each node's exact share in the inner donut.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mmh3
import numpy as np
from django.conf import settings
from django.utils.safestring import mark_safe

from apps.rooms.fragments import Change, Layer, Picture, markup, render_tight
from apps.rooms.frames import memo
from apps.rooms.registry import RoomView

from . import geometry as g
from .sim import RingState, key_position, lookup_view, moved_mask, vnode_positions
from .sim import placement  # noqa: F401 - read as picture.placement by the engine's own-panel tests
from .sim.core import next_free_name

KEY_SAMPLE = 240
DENSE_VNODES = 256
BINS = 360
LABEL_NODES = 24  # above this many nodes the ring carries no name labels (the legend does)
SHARE_NODES = 16  # above this many nodes no inner share donut, and lean node rows


def uid(name: str) -> str:
    """A DOM-safe, stable id fragment for a user-given name."""
    return format(mmh3.hash(name, 0x1D, signed=False), "08x")


def colour(slot: int) -> str:
    return f"c{slot % len(g.PALETTE)}"


def scramble(hashes: np.ndarray) -> np.ndarray:
    """A second, independent-looking order of the keys (Knuth's multiplicative hash)."""
    return (hashes * np.uint64(2654435761)) % np.uint64(2**32)


def key_sample(state: RingState) -> np.ndarray:
    """Indices of the keys drawn as dots: the KEY_SAMPLE with the smallest scrambled hash."""
    n = len(state.keys)
    if n <= KEY_SAMPLE:
        return np.arange(n)
    mixed = scramble(state.key_hashes)
    idx = np.argpartition(mixed, KEY_SAMPLE)[:KEY_SAMPLE]
    return np.sort(idx)


@dataclass(frozen=True)
class NodeRow:
    name: str
    uid: str
    colour: str
    vnodes: int
    keys: int
    share: float  # fraction of the ring's arc length this node owns
    pct_keys: float

    @property
    def share_pct(self) -> float:
        return 100 * self.share


def node_rows(state: RingState) -> list[NodeRow]:
    shares = arc_shares(state)
    total = max(len(state.keys), 1)
    counts = state.counts
    return [
        NodeRow(n.name, uid(n.name), colour(n.slot), n.vnodes, counts.get(n.name, 0), shares.get(n.name, 0.0),
                100 * counts.get(n.name, 0) / total)
        for n in state.nodes
    ]


def arc_shares(state: RingState) -> dict[str, float]:
    table = state.table
    if not len(table):
        return {}
    pos = table.positions.astype(np.float64)
    spans = np.diff(np.concatenate([[pos[-1] - g.RING_SIZE], pos]))
    if len(pos) == 1:
        spans = np.array([float(g.RING_SIZE)])
    owned = np.bincount(table.node_index, weights=spans, minlength=len(state.nodes)) / g.RING_SIZE
    return {name: float(owned[i]) for i, name in enumerate(state.node_names)}


def load_stats(state: RingState) -> dict[str, float] | None:
    """Keys per node: mean, std/mean and max/mean. The spread is the population std (numpy's
    default ddof=0): the n nodes are the whole ring, not a sample (DOMAIN.md's figures)."""
    if not state.nodes or not state.keys:
        return None
    counts = np.array(list(state.counts.values()), dtype=np.float64)
    mean = counts.mean()
    return {"mean": float(mean), "std_over_mean": float(counts.std() / mean), "max_over_mean": float(counts.max() / mean)}


# -- the ring (SVG layers) ---------------------------------------------------------------------

def _ring_layers(pic: Picture, state: RingState) -> None:
    """Arcs, vnodes, labels and the share donut depend on the nodes alone: the engine's memo keeps
    them while the membership stays the same (adding keys, lookups and ticks redraw none of it)."""
    pic.layers.update(memo(("hashring-ring", state.nodes), lambda: _drawn_ring(state)))


def _drawn_ring(state: RingState) -> dict[str, Layer]:
    fresh = Picture()
    _draw_ring(fresh, state)
    return fresh.layers


def _draw_ring(pic: Picture, state: RingState) -> None:
    slots = {n.name: n.slot for n in state.nodes}
    table = state.table
    arcs = pic.layer("ring-arcs")
    vnodes = pic.layer("ring-vnodes")
    labels = pic.layer("ring-labels")
    dense = len(table) > DENSE_VNODES
    if not len(table):
        arcs.add("arc-empty", mark_safe(f"<circle id='arc-empty' class='own empty' cx='{g.CX:g}' cy='{g.CY:g}' r='{g.R_RING}'/>"))
    elif dense:
        # Majority owner of each one-degree bin, from the arc lengths inside it.
        edges = np.linspace(0, g.RING_SIZE, BINS + 1)
        owners = _bin_owners(state)
        for b in range(BINS):
            name = state.node_names[owners[b]]
            arcs.add(f"b{b}", markup("<path id='b{}' class='own {}' d='{}'/>", b, colour(slots[name]),
                                           g.arc_path(edges[b], edges[b + 1] - 1, g.R_RING)))
    else:
        pos = table.positions
        for s in range(len(table)):
            name = table.names[int(table.node_index[s])]
            i = int(table.vnode_index[s])
            prev = int(pos[s - 1]) if len(table) > 1 else int(pos[s])
            arcs.add(
                f"a-{uid(name)}-{i}",
                markup("<path id='a-{}-{}' class='own {}' d='{}'/>", uid(name), i, colour(slots[name]),
                            g.arc_path(prev, int(pos[s]), g.R_RING)),
            )
            x, y = g.point(int(pos[s]), g.R_VNODE)
            # A click removes the node (room.js sends data-send with its data-arg-*). Not a tab
            # stop: hundreds of vnodes would bury the page; the node's label (one per node) and
            # its row in the node list are the keyboard's way to the same command.
            vnodes.add(
                f"v-{uid(name)}-{i}",
                markup(
                    "<circle id='v-{}-{}' class='vnode {}' cx='{}' cy='{}' r='9' data-node='{}' "
                    "data-send='remove_node' data-arg-name='{}'><title>{}#{} at {}</title></circle>",
                    uid(name), i, colour(slots[name]), g.fmt(x), g.fmt(y), name, name, name, i, f"{int(pos[s]):,}",
                ),
            )
    if len(state.nodes) <= LABEL_NODES:
        _label_layer(labels, state)
    _share_layer(pic, state)


def _label_layer(labels: Layer, state: RingState) -> None:
    """One label per node beside its vnode 0, fanned out where vnodes 0 sit close together (a
    leader line joins a moved label to its vnode). Each is a button: Enter or a click removes the
    node."""
    wanted = [g.angle(_label_position(state, n.name)) for n in state.nodes]
    # Apart by the diagonal of their boxes (2·√2·r), so not even their bounding boxes touch.
    gap = (2 * math.sqrt(2) * g.LABEL_BADGE + 4) / g.R_LABEL
    placed = g.spread(wanted, gap)
    for n, want, a in zip(state.nodes, wanted, placed):
        x, y = g.polar(a, g.R_LABEL)
        vx, vy = g.polar(want, g.R_VNODE + 12)
        ex, ey = g.polar(a, g.R_LABEL - g.LABEL_BADGE)
        labels.add(
            f"l-{uid(n.name)}",
            markup(
                "<g id='l-{}' class='node-label {}{}' data-node='{}' data-send='remove_node' data-arg-name='{}' "
                "tabindex='0' role='button' aria-label='Remove node {}'>"
                "<line class='leader' x1='{}' y1='{}' x2='{}' y2='{}'/>"
                "<circle cx='{}' cy='{}' r='{}'/><text x='{}' y='{}'>{}</text>"
                "<title>Node {} (click or Enter to remove it)</title></g>",
                uid(n.name), colour(n.slot), _fanned(want, a), n.name, n.name, n.name,
                g.fmt(vx), g.fmt(vy), g.fmt(ex), g.fmt(ey),
                g.fmt(x), g.fmt(y), g.LABEL_BADGE, g.fmt(x), g.fmt(y + 1), _short(n.name), n.name,
            ),
        )


def _fanned(wanted: float, placed: float) -> str:
    """' fanned' for a label moved off its own spot to make room (its leader line shows where)."""
    off = abs((placed - wanted + math.pi) % (2 * math.pi) - math.pi)
    return " fanned" if off > 1e-3 else ""


def _label_position(state: RingState, name: str) -> int:
    """A node's label sits beside its vnode 0, the one you can compute by hand."""
    return vnode_positions(name, 1)[0]


def _short(name: str) -> str:
    return name if len(name) <= 3 else name[:2] + "…"


def _bin_owners(state: RingState, samples_per_bin: int = 32) -> np.ndarray:
    """For each one-degree bin, the node owning most of it (sampled at evenly spaced points)."""
    table = state.table
    points = (np.arange(BINS * samples_per_bin, dtype=np.float64) + 0.5) * (g.RING_SIZE / (BINS * samples_per_bin))
    owners = table.node_index[table.owner_slots(points.astype(np.uint64))].astype(np.int64)
    n = len(state.nodes)
    bins = np.repeat(np.arange(BINS), samples_per_bin)
    tally = np.bincount(bins * n + owners, minlength=BINS * n).reshape(BINS, n)
    majority: np.ndarray = tally.argmax(axis=1)
    return majority


def _share_layer(pic: Picture, state: RingState) -> None:
    """The inner donut: every node's exact share of the ring, in join order."""
    layer = pic.layer("ring-share")
    if len(state.nodes) > SHARE_NODES:
        return  # fifty slivers explain nothing: the load chart carries the numbers
    shares = arc_shares(state)
    start = 0.0
    for n in state.nodes:
        share = shares.get(n.name, 0.0)
        if share <= 0:
            continue
        end = start + share * g.RING_SIZE
        layer.add(
            f"s-{uid(n.name)}",
            markup("<path id='s-{}' class='share {}' d='{}'><title>{} owns {}% of the ring</title></path>",
                        uid(n.name), colour(n.slot), g.arc_path(start, end - 1, g.R_SHARE), n.name, f"{100 * share:.1f}"),
        )
        start = end


def _key_layers(pic: Picture, state: RingState) -> None:
    layer = pic.layer("ring-keys")
    sample = key_sample(state)
    if not len(sample):
        return
    hashes = state.key_hashes[sample]
    mixed = scramble(hashes)
    owners = state.owners[sample] if state.nodes else None
    slot_of = [n.slot for n in state.nodes]
    for j, i in enumerate(sample.tolist()):
        key = state.keys[i]
        x, y = g.point(int(hashes[j]), g.key_radius(int(mixed[j])))
        owner = state.node_names[int(owners[j])] if owners is not None else None
        cls = colour(slot_of[int(owners[j])]) if owners is not None else "none"
        layer.add(
            f"k-{uid(key)}",
            markup("<circle id='k-{}' class='key {}' cx='{}' cy='{}' r='7' data-key='{}' data-send='lookup' data-arg-key='{}'>"
                   "<title>{} at {} → {}</title></circle>",
                   uid(key), cls, g.fmt(x), g.fmt(y), key, key, key, f"{int(hashes[j]):,}", owner or "no node"),
        )


def _moves_layer(pic: Picture, state: RingState, seq: int, before: RingState | None) -> None:
    """Trails from each moved (drawn) key to its new owner's vnode; a pip travels along it."""
    layer = pic.layer("ring-moves", transient=True)
    if before is None or state.last_change is None or before.keys != state.keys or not state.nodes:
        return
    if before.nodes == state.nodes:
        return
    moved = moved_mask(before, state)
    sample = key_sample(state)
    picked = sample[moved[sample]]
    table = state.table
    for i in picked.tolist():
        key = state.keys[i]
        h = int(state.key_hashes[i])
        slot = int(state.owner_slots[i])
        kx, ky = g.point(h, g.key_radius(int(scramble(np.array([h], dtype=np.uint64))[0])))
        ox, oy = g.point(int(table.positions[slot]), g.R_VNODE)
        node = state.node_names[int(table.node_index[slot])]
        path = f"M{g.fmt(kx)} {g.fmt(ky)}L{g.fmt(ox)} {g.fmt(oy)}"
        # The pip is drawn at the key and its motion is relative to it: until the animation
        # starts it waits on the key (not at the picture's corner), then glides to the owner.
        glide = f"M0 0L{g.fmt(ox - kx)} {g.fmt(oy - ky)}"
        layer.add(
            f"m{seq}-{uid(key)}",
            markup(
                "<g id='m{}-{}' class='move {}'><path class='trail' d='{}'/>"
                "<circle class='pip' cx='{}' cy='{}' r='7'><animateMotion begin='indefinite' dur='1.4s' fill='freeze' path='{}'/></circle></g>",
                seq, uid(key), colour(state.node(node).slot), path,  # type: ignore[union-attr]
                g.fmt(kx), g.fmt(ky), glide,
            ),
        )


def _lookup_layer(pic: Picture, state: RingState, seq: int) -> None:
    layer = pic.layer("ring-lookup")
    key = state.lookup
    if not key or not state.nodes:
        return
    h = key_position(key)
    table = state.table
    owner_slot = table.owner_slot(h)
    owner_pos = int(table.positions[owner_slot])
    kid = uid(key)
    kx, ky = g.point(h, g.R_RING)
    walk = g.arc_path(h, owner_pos if owner_pos != h else h + 1, g.R_RING + 22)
    prefs = table.preference_list(h, state.replicas)
    parts = [
        markup("<path class='walk' d='{}' pathLength='100'/>", walk),
        markup("<line class='lookup-spoke' x1='{}' y1='{}' x2='{}' y2='{}'/>", g.fmt(g.CX), g.fmt(g.CY), g.fmt(kx), g.fmt(ky)),
        markup("<circle class='lookup-key' cx='{}' cy='{}' r='12'/>", g.fmt(kx), g.fmt(ky)),
    ]
    # Each replica's vnode is ringed; its rank sits on a badge just inside the ring (the node
    # labels are outside it), fanned out where the replicas' vnodes are close, with a leader line.
    wanted = [g.angle(_vnode_position(state, node, vi)) for node, vi in prefs]
    placed = g.spread(wanted, (2 * math.sqrt(2) * g.RANK_BADGE + 4) / g.R_RANK)
    for rank, ((node, vi), want, a) in enumerate(zip(prefs, wanted, placed), start=1):
        x, y = g.polar(want, g.R_VNODE)
        parts.append(markup("<circle class='pref pref-{}' cx='{}' cy='{}' r='{}'/>", rank, g.fmt(x), g.fmt(y), 20 if rank == 1 else 16))
        bx, by = g.polar(a, g.R_RANK)
        lx, ly = g.polar(want, g.R_VNODE - 18)
        parts.append(markup(
            "<g class='pref-badge{}' data-rank='{}'><line class='leader' x1='{}' y1='{}' x2='{}' y2='{}'/>"
            "<circle cx='{}' cy='{}' r='{}'/><text class='pref-rank' x='{}' y='{}'>{}</text>"
            "<title>Replica {}: {} (via {}#{})</title></g>",
            _fanned(want, a), rank, g.fmt(lx), g.fmt(ly), g.fmt(bx), g.fmt(by), g.fmt(bx), g.fmt(by), g.RANK_BADGE,
            g.fmt(bx), g.fmt(by + 1), rank, rank, node, node, vi))
    layer.add(f"lookup-{seq}-{kid}", markup("<g id='lookup-{}-{}' class='lookup'>{}</g>", seq, kid, mark_safe("".join(parts))))


def _vnode_position(state: RingState, node: str, index: int) -> int:
    n = state.node(node)
    return vnode_positions(node, n.vnodes)[index] if n else 0


# -- panels (HTML) -----------------------------------------------------------------------------

def _panels(pic: Picture, state: RingState) -> None:
    rows = node_rows(state)
    stats = load_stats(state)
    total_vnodes = sum(n.vnodes for n in state.nodes)
    ctx: dict[str, Any] = {
        "state": state, "rows": rows, "stats": stats,
        "change": change_view(state), "chart": load_chart(state, rows, stats), "lookup": lookup_view(state),
        "total_vnodes": total_vnodes, "dense": total_vnodes > DENSE_VNODES,
        "sampled": len(state.keys) > KEY_SAMPLE, "key_sample": KEY_SAMPLE,
    }
    ctx["next_name"] = next_free_name(state)
    ctx["max_vnodes"] = settings.DISTVIZ_LIMITS["max_vnodes"]
    # The add-node vnodes field starts from the room's default, and is a new element (a new id)
    # whenever the membership or the default changes: a stale number typed earlier never stays.
    ctx["forms_version"] = format(mmh3.hash(repr((state.nodes, state.default_vnodes)), 0x5F, signed=False), "08x")
    # The replication factor and the stream rate as the room has them now, in a morphed panel:
    # a choice made in another window, by a lesson or by a rewind shows here too.
    ctx["replica_choices"] = range(1, 8)
    ctx["rates"] = sorted({1, 5, 20, 100, 1000, state.stream_rate})
    for panel in ("ring-summary", "moved", "load", "lookup-panel", "node-forms", "ring-settings"):
        # Autoescaping templates render these; the result is markup, not user text.
        pic.panels[panel] = render_tight(f"hashring/_{panel}.html", ctx)
    _node_rows_layer(pic, rows)


def _node_rows_layer(pic: Picture, rows: list[NodeRow]) -> None:
    """One keyed row per node; with many nodes the rows leave out the counts (the load chart
    has them), so adding a node sends one row, not fifty."""
    layer = pic.layer("nodes", svg=False)
    if not rows:
        layer.add("nodes-empty", mark_safe("<li id='nodes-empty' class='empty'>No nodes. Add one: every key needs a node to live on.</li>"))
        return
    detail = len(rows) <= SHARE_NODES
    for r in rows:
        counts = markup("<span class='node-keys'>{} key{}</span><span class='node-share'>{}% of ring</span>",
                             r.keys, "" if r.keys == 1 else "s", f"{r.share_pct:.1f}") if detail else ""
        layer.add(
            f"node-{r.uid}",
            markup(
                # The row names its node once (data-arg-name) for both its controls.
                "<li id='node-{}' class='node-row' data-arg-name='{}'><span class='swatch {}'></span>"
                "<span class='node-name'>{}</span>{}"
                "<input type='number' min='1' value='{}' data-command='set_vnodes' name='vnodes' aria-label='virtual nodes of {}'>"
                "<button type='button' class='danger' data-send='remove_node' aria-label='Remove node {}'>✕</button></li>",
                r.uid, r.name, r.colour, r.name, counts, r.vnodes, r.name, r.name,
            ),
        )


def change_view(state: RingState) -> dict[str, Any] | None:
    c = state.last_change
    if c is None:
        return None
    total = max(c.total_keys, 1)
    pct = 100 * c.moved / total
    mod_pct = 100 * c.modulo_moved / total
    ideal_pct = None if c.ideal is None else 100 * c.ideal / total
    if c.ideal_vnodes is not None and c.ideal_of_vnodes:
        # The share of the ring the node's weight should give it: w of the W vnodes.
        ideal_label = f"{c.ideal_vnodes:,}/{c.ideal_of_vnodes:,} of vnodes"
    else:  # a change stored before weights were recorded
        ideal_label = {"added": "K/(n+1)", "removed": "K/n"}.get(c.kind, "")
    return {
        "c": c, "pct": pct, "mod_pct": mod_pct, "ideal_pct": ideal_pct, "ideal_label": ideal_label,
        "bar": 560, "moved_w": round(5.6 * pct, 1), "mod_w": round(5.6 * mod_pct, 1),
        "ideal_x": None if ideal_pct is None else round(5.6 * ideal_pct, 1),
    }


def load_chart(state: RingState, rows: list[NodeRow], stats: dict[str, float] | None) -> dict[str, Any] | None:
    """Keys per node as bars, against the ideal: K/n when every node weighs the same, else each
    node's own K·w/W (a node with twice the vnodes should hold twice the keys)."""
    if not rows or stats is None:
        return None
    width, height, top = 560.0, 200.0, 10.0
    total_keys = len(state.keys)
    total_w = sum(r.vnodes for r in rows)
    weighted = len({r.vnodes for r in rows}) > 1
    ideals = [total_keys * r.vnodes / total_w for r in rows]
    most = max(max(r.keys for r in rows), stats["mean"], max(ideals) if weighted else 0) or 1
    step = width / len(rows)
    bars: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        h = height * r.keys / most
        bars.append({"row": r, "x": round(i * step + step * 0.12, 1), "w": round(step * 0.76, 1),
                     "y": round(top + height - h, 1), "h": round(h, 1), "cx": round(i * step + step / 2, 1),
                     "ideal": round(ideals[i], 1), "ideal_y": round(top + height - height * ideals[i] / most, 1),
                     "ideal_x1": round(i * step + step * 0.04, 1), "ideal_x2": round(i * step + step * 0.96, 1)})
    ideal_y = round(top + height - height * stats["mean"] / most, 1)
    lean = len(rows) > SHARE_NODES  # many nodes: one path of bars, one of ideals (no per-bar tooltips)
    return {"bars": bars, "ideal_y": ideal_y, "width": width, "height": height + top, "labels": len(rows) <= SHARE_NODES,
            "weighted": weighted, "top_ideal_y": min(b["ideal_y"] for b in bars),
            "lean_path": None if not lean else
            "".join(f"M{b['x']:.0f} {b['y']:.0f}h{b['w']:.0f}v{b['h']:.0f}h-{b['w']:.0f}z" for b in bars),
            "ideal_path": None if not (lean and weighted) else
            "".join(f"M{b['ideal_x1']:.0f} {b['ideal_y']:.0f}H{b['ideal_x2']:.0f}" for b in bars)}


# -- the class round ----------------------------------------------------------------------------

def draw_round(pic: Picture, state: RingState, current: dict[str, Any] | None) -> None:
    """An open round's keys on the ring itself, each labelled with its student's name."""
    layer = pic.layer("ring-round")
    for i, entry in enumerate((current or {}).get("entries", [])):
        key = entry["entry"]
        if key not in state.key_set:
            continue
        h = key_position(key)
        # Inside the band the lookup's rank badges use (R_RANK): a student's name never sits
        # under a replica's number when the presenter looks that student's key up.
        x, y = g.point(h, g.R_ROUND_MARK)
        lx, ly = g.point(h, g.R_ROUND_NAME)
        layer.add(f"rm-{i}-{uid(key)}", markup(
            "<g id='rm-{}-{}' class='round-mark'><circle cx='{}' cy='{}' r='13'/><text x='{}' y='{}'>{}</text></g>",
            i, uid(key), g.fmt(x), g.fmt(y), g.fmt(lx), g.fmt(ly), entry["name"],
        ))


def open_round(view: RoomView) -> dict[str, Any] | None:
    """The round the class sees: the open one (a closed round's marks are gone from every screen)."""
    return view.round if view.round and view.round.get("open") else None


# -- the picture ------------------------------------------------------------------------------

def picture(state: RingState, view: RoomView, change: Change | None) -> Picture:
    """The whole picture of ``state``. On an update (``change``) the keys that just moved are
    drawn too. Each lookup is a new element (numbered by the state's lookup count), so its walk
    animates once."""
    pic = Picture()
    _ring_layers(pic, state)
    _key_layers(pic, state)
    _panels(pic, state)
    _moves_layer(pic, state, view.seq, change.before if change is not None else None)
    _lookup_layer(pic, state, state.lookups)
    draw_round(pic, state, open_round(view))
    return pic
