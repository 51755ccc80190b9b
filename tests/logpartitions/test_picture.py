"""The log's picture as data: what its cells carry for the local highlight, when its partitions'
SVG (a region) is drawn again whole, and that a produced record's flight belongs to its update."""
from __future__ import annotations

import re
from typing import Any

from apps.logpartitions import picture
from apps.logpartitions.sim import ClusterState, decide, evolve, initial_state
from apps.rooms import fragments
from apps.rooms.fragments import Change
from apps.rooms.registry import RoomView

VIEW = RoomView(code="ABC", seq=3, position=3, playing=False, speed=1.0, role="presenter")


def run(state: ClusterState, *commands: dict[str, Any]) -> tuple[ClusterState, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    for i, cmd in enumerate(commands):
        for ev in decide(state, {"_seed": f"p{i}", **cmd}):
            state = evolve(state, ev)
            events.append(ev)
    return state, events


def cells(state: ClusterState) -> dict[str, str]:
    return dict(picture.picture(state, VIEW).layers["lp-cells"].children)


def test_cells_of_one_key_share_a_highlight_and_keyless_cells_have_none():
    state, _ = run(initial_state({"partitions": 1, "records": 2}),
                   {"type": "produce", "key": "order-7"}, {"type": "produce", "key": "order-9"},
                   {"type": "produce", "key": "order-7"})
    marks = {cid: re.search(r"data-highlight='([^']*)'", markup) for cid, markup in cells(state).items()}
    assert marks["c-0-0"] is None and marks["c-0-1"] is None  # the seed's keyless records
    assert marks["c-0-2"] and marks["c-0-4"] and marks["c-0-3"]
    assert marks["c-0-2"].group(1) == marks["c-0-4"].group(1) != marks["c-0-3"].group(1)
    assert "data-key='order-7'" in cells(state)["c-0-2"]


def test_the_partitions_svg_is_a_region_drawn_again_only_when_the_partitions_change():
    state = initial_state()
    before = picture.picture(state, VIEW)
    assert before.regions["lp-rows"].context == {"width": picture.WIDTH, "height": picture.height(state)}
    same, events = run(state, {"type": "produce", "key": "order-7"}, {"type": "tick", "dt_ms": 1000})
    frame = fragments.diff(before, picture.picture(same, VIEW, Change(state, events)))
    assert 'id="lp-rows"' not in frame and "beforeend:#lp-cells" in frame
    bigger, events = run(state, {"type": "load_scene", "partitions": 5})
    frame = fragments.diff(before, picture.picture(bigger, VIEW, Change(state, events)))
    assert re.search(r'<svg hx-swap-oob="outerMorph" id="lp-rows"[^>]* viewBox="0 0 {} {}"'.format(
        picture.WIDTH, picture.height(bigger)), frame)


def test_a_produced_record_flies_in_its_update_only():
    state = initial_state()
    after, events = run(state, {"type": "produce", "key": "order-7"})
    flying = picture.picture(after, VIEW, Change(state, events)).layers["lp-flights"]
    assert flying.transient and list(flying.children) == [f"f{VIEW.seq}-0"]
    assert "animateMotion" in flying.children[f"f{VIEW.seq}-0"]
    assert picture.picture(after, VIEW).layers["lp-flights"].children == {}  # a full render shows none


def test_the_picture_is_drawn_from_the_state_alone():
    state, _ = run(initial_state(), {"type": "produce_burst", "count": 30, "pattern": "order-{i}"})
    first, second = picture.picture(state, VIEW), picture.picture(state, VIEW)
    assert first is not second
    assert {k: v.children for k, v in first.layers.items()} == {k: v.children for k, v in second.layers.items()}
    assert first.panels == second.panels
