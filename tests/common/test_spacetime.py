"""apps/common/spacetime.py: lanes, slots, arrows and pages of the space-time diagram."""
from __future__ import annotations

import re

from apps.common import spacetime
from apps.common.sim.network import message
from apps.common.sim.trace import Bound, Episode, Trace
from apps.rooms.fragments import Picture, render_tight

GEOMETRY = spacetime.Geometry(top=100, slots=9, carry=4)
LANES = [spacetime.Lane("C1", "client", 50), spacetime.Lane("A", "node", 30), spacetime.Lane("B", "node", 30)]
STYLE = spacetime.Style(label=lambda e: e.label, tone=lambda e, m: "req" if m["kind"] == "request" else "okr",
                        mark=lambda e: "!" if e.kind == "fault" else None)
LAYERS = ("st-axis", "st-episodes", "st-bands")


def walk(n: int) -> Episode:
    t = n * 100
    return Episode(0, "acquire", f"try {n}", t, t + 10, "C1", (
        message("request", "SET", "C1", "A", t, t + 2, "SET"), message("reply", "SET", "A", "C1", t + 2, t + 4, "OK"),
        message("request", "SET", "C1", "B", t + 4, None, "lost")))


def trace_of(n: int) -> Trace:
    t = Trace()
    for i in range(n):
        t = t.add(walk(i), Bound(episodes=40, messages=1000))
    return t


def draw(trace: Trace) -> tuple[Picture, spacetime.Page]:
    pic = Picture()
    return pic, spacetime.draw(pic, LAYERS, GEOMETRY, LANES, trace, STYLE)


def test_one_lane_per_participant_and_one_slot_per_episode():
    pic, page = draw(trace_of(3))
    assert list(pic.layers["st-axis"].children) == ["lane-0", "lane-1", "lane-2", "older"]
    assert list(pic.layers["st-episodes"].children) == ["ep-0", "ep-1", "ep-2"]
    assert page.lane_y == {"C1": 173.0, "A": 213.0, "B": 243.0}  # lanes start 48 below the top


def test_arrows_go_from_sender_to_receiver_and_a_lost_one_is_half_an_arrow_with_a_cross():
    pic, page = draw(trace_of(1))
    slot = pic.layers["st-episodes"].children["ep-0"]
    req = re.search(r"class='req' d='M(\d+) (\d+)L(\d+) (\d+)'", slot)
    assert req is not None and (int(req[2]), int(req[4])) == (173, 213)  # C1 -> A
    assert int(req[1]) < int(req[3])  # time runs right
    assert "class='lost'" in slot and "✕" in slot and "class='okr'" in slot


def test_adding_an_episode_adds_one_slot_and_moves_nothing_until_the_page_turns():
    for n in range(1, 9):
        before, after = draw(trace_of(n))[0], draw(trace_of(n + 1))[0]
        old, new = before.layers["st-episodes"].children, after.layers["st-episodes"].children
        assert set(new) - set(old) == {f"ep-{n}"} and all(new[k] == old[k] for k in old), n
    turned = draw(trace_of(10))[1]
    assert [e.n for e in turned.shown] == [5, 6, 7, 8, 9]  # the next page keeps the last four
    assert "← 5 earlier" in draw(trace_of(10))[0].layers["st-axis"].children["older"]


def test_a_mark_is_drawn_on_the_episodes_lane():
    fault = Trace().add(Episode(0, "fault", "A crashes", 0, 0, "A"))
    slot = draw(fault)[0].layers["st-episodes"].children["ep-0"]
    assert "class='fmark'" in slot and "y='221'" in slot  # A's lane (213) + 8


def test_a_band_is_at_least_four_wide():
    b = spacetime.band("win-1", "window", 300, 300, 10, 25, "valid until 9,000", 310, 30, rx=4)
    assert "width='4'" in b and "rx='4'" in b and "valid until 9,000" in b


def test_the_region_template_places_the_layers_in_an_svg_with_its_viewbox():
    pic = Picture()  # the lock's region template (kit/spacetime.html with the lock's three layers)
    spacetime.draw(pic, ("lq-axis", "lq-episodes", "lq-bands"), GEOMETRY, LANES, trace_of(2), STYLE)
    ctx = GEOMETRY.context(LANES, region_id="lq-diagram", title_id="lq-dtitle", cls="lq-frame lq-diagram")
    assert (ctx["view_top"], ctx["view_h"]) == (60, 148 + 110 + 20 - 60)
    pic.region("lq-diagram", "lockquorums/_diagram.html", ctx)
    svg = render_tight("lockquorums/_diagram.html", {**ctx, "picture": pic})
    assert svg.startswith('<svg id="lq-diagram" class="lq-frame lq-diagram" viewBox="0 60 1600 218"')
    assert '<g id="lq-episodes"><g id=\'ep-0\'' in svg
