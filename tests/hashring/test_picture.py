"""The ring's picture as markup: labels apart, keyboard buttons, commands on data-send, escaping.

The browser tests measure the same things on screen; these check every lookup of many rings in
milliseconds, straight from the markup the room sends.
"""
from __future__ import annotations

import math
import random
import re

import pytest

from apps.hashring import geometry as g
from apps.hashring import picture as pic
from apps.hashring.sim import decide, evolve, initial_state
from apps.rooms.fragments import Change
from apps.rooms.registry import RoomView

TAU = 2 * math.pi


def view(seq: int = 1, round: dict | None = None) -> RoomView:
    return RoomView(code="TEST", seq=seq, position=seq, playing=False, speed=1.0, round=round)


def fold(state, *commands):
    for command in commands:
        for event in decide(state, dict(command, _seed="picture-test")):
            state = evolve(state, event)
    return state


def circular_gaps(angles: list[float]) -> list[float]:
    a = sorted(x % TAU for x in angles)
    return [(a[(i + 1) % len(a)] - a[i]) % TAU for i in range(len(a))] if len(a) > 1 else []


# -- spread ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(200))
def test_spread_keeps_neighbours_a_gap_apart_and_moves_them_little(seed):
    rnd = random.Random(seed)
    n = rnd.randint(2, 12)
    gap = rnd.uniform(0.05, 0.4)
    if n * gap >= TAU:
        gap = TAU / n * 0.9
    centre = rnd.uniform(0, TAU)
    angles = [(centre + rnd.gauss(0, 0.3)) % TAU if rnd.random() < 0.7 else rnd.uniform(0, TAU) for _ in range(n)]
    out = g.spread(angles, gap)
    assert min(circular_gaps(out)) >= gap - 1e-9, (angles, out)
    # Nobody travels further than the whole crowd is wide.
    assert all(abs((o - a + math.pi) % TAU - math.pi) <= n * gap for a, o in zip(angles, out))


def test_spread_leaves_labels_that_have_room_where_they_are():
    angles = [0.1, 1.0, 2.0, 4.0]
    assert g.spread(angles, 0.2) == pytest.approx(angles)


def test_spread_fans_a_crowd_around_its_middle():
    out = g.spread([1.0, 1.0, 1.0], 0.1)
    assert sorted(out) == pytest.approx([0.9, 1.0, 1.1])


def test_spread_across_twelve_oclock():
    out = g.spread([TAU - 0.01, 0.01], 0.2)
    assert min(circular_gaps(out)) == pytest.approx(0.2)


# -- the ring's labels, from the markup -------------------------------------------------------------

CIRCLE = re.compile(r"<circle cx='([\d.]+)' cy='([\d.]+)' r='(\d+)'/>")


def badge_boxes(markup: str, cls: str) -> list[tuple[float, float, float, float]]:
    boxes = []
    for group in re.findall(rf"<g[^>]*class='{cls}[^']*'[^>]*>.*?</g>", markup):
        x, y, r = (float(v) for v in CIRCLE.search(group).groups())
        boxes.append((x - r, y - r, x + r, y + r))
    return boxes


def overlapping(boxes) -> bool:
    return any(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
               for i, a in enumerate(boxes) for b in boxes[i + 1:])


RINGS = {
    "seed": lambda: initial_state(),
    "crowded-labels": lambda: fold(initial_state(), {"type": "add_node", "name": "BX"}, {"type": "add_node", "name": "SF"}),
    "three-of-two": lambda: fold(initial_state({"nodes": ["A", "B", "C"], "vnodes": 2}), {"type": "set_replicas", "replicas": 3}),
    "seven-replicas": lambda: fold(initial_state({"nodes": list("ABCDEFGH"), "vnodes": 3}), {"type": "set_replicas", "replicas": 7}),
}


@pytest.mark.parametrize("ring", RINGS)
def test_rank_badges_and_node_labels_never_overlap(ring):
    state = RINGS[ring]()
    labels = badge_boxes(pic.picture(state, view(), None).layers["ring-labels"].inner(), "node-label")
    assert len(labels) == len(state.nodes) and not overlapping(labels)
    for i in range(60):
        looked = fold(state, {"type": "lookup", "key": f"k{i}"})
        lookup = pic.picture(looked, view(), None).layers["ring-lookup"].inner()
        ranks = badge_boxes(lookup, "pref-badge")
        assert len(ranks) == min(state.replicas, len(state.nodes))
        assert not overlapping(ranks), (ring, f"k{i}")
        assert not overlapping(ranks + labels), (ring, f"k{i}")


def test_a_rank_is_drawn_for_its_own_vnode():
    state = fold(initial_state(), {"type": "lookup", "key": "user42"})
    lookup = pic.picture(state, view(), None).layers["ring-lookup"].inner()
    titles = re.findall(r"<title>Replica (\d): (\w+) \(via (\w+)#(\d+)\)</title>", lookup)
    assert [(int(r), n, int(v)) for r, n, _, v in titles] == [
        (i, n, v) for i, (n, v) in enumerate(state.preference_list("user42"), start=1)]


# -- keyboard and commands ------------------------------------------------------------------------

def test_node_labels_are_buttons_vnodes_and_keys_are_clicks_not_tab_stops():
    state = initial_state()
    base = pic.picture(state, view(), None)
    labels = base.layers["ring-labels"].inner()
    for name in ("A", "B", "C", "D"):
        assert re.search(rf"<g [^>]*data-send='remove_node' data-arg-name='{name}' tabindex='0' role='button' "
                         rf"aria-label='Remove node {name}'>", labels), name
    vnodes = base.layers["ring-vnodes"].inner()
    assert vnodes.count("data-send='remove_node'") == 32 and "tabindex" not in vnodes and "role=" not in vnodes
    keys = base.layers["ring-keys"].inner()
    assert keys.count("data-send='lookup'") == 12 and "tabindex" not in keys
    assert "data-arg-key='user7'" in keys


def test_user_text_is_escaped_in_the_new_attributes():
    evil_node, evil_key = "<b>x'</b>", "'><svg onload=alert(1)>"
    state = fold(initial_state(), {"type": "add_node", "name": evil_node}, {"type": "add_key", "key": evil_key},
                 {"type": "lookup", "key": evil_key})
    picture = pic.picture(state, view(), None)
    everything = "".join(layer.inner() for layer in picture.layers.values()) + "".join(picture.panels.values())
    assert "<svg onload" not in everything and "<b>x" not in everything
    assert "data-arg-name='&lt;b&gt;x&#x27;&lt;/b&gt;'" in everything
    assert "aria-label='Remove node &lt;b&gt;x&#x27;&lt;/b&gt;'" in everything
    assert "data-arg-key='&#x27;&gt;&lt;svg onload=alert(1)&gt;'" in everything


def test_add_node_fields_carry_the_rooms_default_and_change_identity_with_it():
    state = initial_state()
    forms = pic.picture(state, view(), None).panels["node-forms"]
    assert re.search(r'id="add-vnodes-(\w+)" name="vnodes"[^>]*value="8"', forms)
    assert 'placeholder="E"' in forms and "maxlength" not in forms
    after = fold(state, {"type": "set_vnodes", "vnodes": 64})
    forms2 = pic.picture(after, view(), None).panels["node-forms"]
    assert 'value="64"' in forms2
    # A new id, so the page puts in a fresh field (a number typed earlier does not survive).
    assert re.search(r'id="(add-vnodes-\w+)"', forms).group(1) != re.search(r'id="(add-vnodes-\w+)"', forms2).group(1)
    added = fold(after, {"type": "add_node", "name": "E", "vnodes": 16})
    forms3 = pic.picture(added, view(), None).panels["node-forms"]
    assert 'value="64"' in forms3 and 'placeholder="F"' in forms3
    assert re.search(r'id="(add-vnodes-\w+)"', forms3).group(1) != re.search(r'id="(add-vnodes-\w+)"', forms2).group(1)
    # Keys and lookups leave the fields alone (no morph while someone types).
    looked = fold(added, {"type": "lookup", "key": "user1"}, {"type": "add_key", "key": "zz"})
    assert pic.picture(looked, view(), None).panels["node-forms"] == forms3


def test_moving_pips_start_on_their_key():
    before = fold(initial_state(), {"type": "add_random_keys", "count": 100})
    after = fold(before, {"type": "add_node", "name": "E"})
    moves = pic.picture(after, view(5), Change(before, [])).layers["ring-moves"].inner()
    found = re.findall(r"<path class='trail' d='M([\d.]+) ([\d.]+)L([\d.]+) ([\d.]+)'/>"
                       r"<circle class='pip' cx='([\d.]+)' cy='([\d.]+)' r='7'><animateMotion [^>]*path='M0 0L([-\d.]+) ([-\d.]+)'", moves)
    assert found
    for kx, ky, ox, oy, px, py, dx, dy in ((float(v) for v in f) for f in found):
        assert (px, py) == (kx, ky)
        assert abs(px + dx - ox) < 0.11 and abs(py + dy - oy) < 0.11


def test_replicas_and_rate_selects_show_the_rooms_values():
    state = initial_state()
    panel = pic.picture(state, view(), None).panels["ring-settings"]
    assert re.search(r"<select name=\"replicas\">.*<option value=\"3\" selected>", panel)
    after = fold(state, {"type": "set_replicas", "replicas": 5}, {"type": "set_stream_rate", "rate": 20})
    panel = pic.picture(after, view(), None).panels["ring-settings"]
    assert '<option value="5" selected>' in panel and '<option value="20" selected>' in panel
    assert panel.count(" selected>") == 2


def test_a_class_rounds_marks_stay_clear_of_the_lookups_rank_badges():
    state = fold(initial_state(), {"type": "add_key", "key": "Ada"}, {"type": "lookup", "key": "Ada"})
    drawn = pic.picture(state, view(round={"open": True, "entries": [{"entry": "Ada", "name": "Ada"}]}), None)
    marks = drawn.layers["ring-round"].inner()
    mx, my = (float(v) for v in re.search(r"<circle cx='([\d.]+)' cy='([\d.]+)' r='13'/>", marks).groups())
    lx, ly = (float(v) for v in re.search(r"<text x='([\d.]+)' y='([\d.]+)'>Ada</text>", marks).groups())
    ranks = badge_boxes(drawn.layers["ring-lookup"].inner(), "pref-badge")
    mark = (mx - 13, my - 13, mx + 13, my + 13)
    name = (lx - 40, ly - 15, lx + 40, ly + 15)  # a short name at 26px
    assert ranks and not overlapping(ranks + [mark]) and not overlapping(ranks + [name])


def test_only_an_open_rounds_keys_on_the_ring_are_marked_each_by_its_own_element():
    state = fold(initial_state(), {"type": "add_key", "key": "Ada"}, {"type": "add_key", "key": "Bob"})
    entries = [{"entry": "Ada", "name": "Ada"}, {"entry": "gone", "name": "Cy"}, {"entry": "Bob", "name": "Bob"}]
    marks = pic.picture(state, view(round={"open": True, "entries": entries}), None).layers["ring-round"]
    assert [re.search(r"<text [^>]*>(.*)</text>", m).group(1) for m in marks.children.values()] == ["Ada", "Bob"]
    assert all(f"id='{cid}'" in m for cid, m in marks.children.items())
    closed = pic.picture(state, view(round={"open": False, "entries": entries}), None)
    assert closed.layers["ring-round"].children == {}


# -- the load chart with many nodes ---------------------------------------------------------------

def test_many_weighted_nodes_draw_their_ideals_as_one_path_each_at_its_own_share():
    """Above SHARE_NODES nodes the chart is lean (no per-bar tooltips): one path of bars and, when
    the weights differ, one path of ideals with a segment per node at K·w/W of the scale."""
    nodes = [f"N{i}" for i in range(pic.SHARE_NODES + 4)]
    state = fold(initial_state({}), {"type": "load_scene", "nodes": nodes, "vnodes": 8, "random_keys": 4000, "seed": "s"},
                 {"type": "set_vnodes", "name": "N0", "vnodes": 32})
    rows = pic.node_rows(state)
    chart = pic.load_chart(state, rows, pic.load_stats(state))
    assert chart is not None and chart["weighted"] and chart["lean_path"]
    segments = re.findall(r"M(\d+) (\d+)H(\d+)", chart["ideal_path"])
    assert len(segments) == len(nodes)
    total_w = sum(r.vnodes for r in rows)
    most = max(max(r.keys for r in rows), 4000 * 32 / total_w)
    for (x1, y, x2), r in zip(segments, rows):
        ideal = 4000 * r.vnodes / total_w
        assert int(y) == round(10 + 200 - 200 * ideal / most)
        assert int(x1) < int(x2)
    html = pic.picture(state, view(), None).panels["load"]
    assert "<line" not in html and f'd="{chart["ideal_path"]}"' in html
