"""Every number the ring's panels print, against an independent computation (tests/hashring/reference.py).

The panels are rendered exactly as a room sends them; the numbers are read back out of the
markup at the precision printed and compared with plain-Python arithmetic on mmh3 positions,
never with the functions that drew them. std/mean is the population spread (ddof=0, as
DOMAIN.md's figures): a ddof=1 slip is 15% off with four nodes and fails here.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from apps.hashring import concept
from apps.hashring import picture as pic
from apps.hashring.sim import RingState, decide, evolve, initial_state, narrate
from apps.rooms.registry import RoomView

from . import reference as ref


def drawn(state: RingState):
    """The ring's whole picture, as a room's full frame draws it."""
    return pic.picture(state, RoomView(code="TEST", seq=1, position=1, playing=False, speed=1.0), None)


def fold(state: RingState, *commands: dict[str, Any]) -> RingState:
    for command in commands:
        for event in decide(state, dict(command, _seed="panel-test")):
            state = evolve(state, event)
    return state


def scene(nodes: list[str], vnodes: int, random_keys: int, seed: str) -> RingState:
    return fold(initial_state(), {"type": "load_scene", "nodes": nodes, "vnodes": vnodes,
                                  "random_keys": random_keys, "seed": seed})


def weighted() -> RingState:
    """Four nodes of 64, 64, 16 and 12 vnodes (156 in all) and 5,000 keys."""
    state = scene(["A", "B", "C", "D"], 64, 5000, "weighted")
    return fold(state, {"type": "set_vnodes", "name": "C", "vnodes": 16}, {"type": "set_vnodes", "name": "D", "vnodes": 12})


STATES = {
    "seed-picture": initial_state,
    "ten-nodes-one-vnode": lambda: scene(list("ABCDEFGHJK"), 1, 10_000, "lesson-vnodes"),
    "three-nodes-100-vnodes": lambda: scene(["x", "y", "z"], 100, 3000, "three"),
    "weighted": weighted,
}


def printed(html: str, label: str) -> str:
    m = re.search(rf"<dt>{re.escape(label)}</dt><dd>(.*?)</dd>", html)
    assert m, f"no {label!r} in the panel: {html[:300]}"
    return m.group(1).strip()


def close(shown: str, exact: float) -> bool:
    """``shown`` is ``exact`` rounded to the decimals printed (either way at a half)."""
    decimals = len(shown.rstrip("%").split(".")[1]) if "." in shown else 0
    return abs(float(shown.replace(",", "").rstrip("%")) - exact) <= 0.5 * 10**-decimals + 1e-9


@pytest.mark.parametrize("name", STATES)
def test_load_panel_prints_the_population_spread_and_peak(name):
    state = STATES[name]()
    per_node = ref.counts(ref.state_nodes(state), state.keys)
    assert per_node == state.counts  # the placement itself, by bisect over mmh3 positions
    html = drawn(state).panels["load"]
    mean = sum(per_node.values()) / len(per_node)
    assert close(printed(html, "mean"), mean)
    assert close(printed(html, "std / mean"), ref.std_over_mean(per_node)), (name, printed(html, "std / mean"))
    assert close(printed(html, "max / mean"), ref.max_over_mean(per_node))
    # The JSON a script reads says the same, unrounded.
    load = concept.state_json(state)["derived"]["load"]
    assert load["std_over_mean"] == pytest.approx(ref.std_over_mean(per_node), rel=1e-12)
    assert load["max_over_mean"] == pytest.approx(ref.max_over_mean(per_node), rel=1e-12)


def test_a_sample_spread_would_be_caught():
    """The check above tells ddof=0 from ddof=1 on these states (it is not loose enough to pass both)."""
    import statistics

    for name, make in STATES.items():
        state = make()
        per_node = ref.counts(ref.state_nodes(state), state.keys)
        values = list(per_node.values())
        sample = statistics.stdev(values) / statistics.fmean(values)
        shown = printed(drawn(state).panels["load"], "std / mean")
        assert not close(shown, sample), name


@pytest.mark.parametrize("name", STATES)
def test_arc_shares_are_each_nodes_part_of_the_2_to_the_32_positions(name):
    state = STATES[name]()
    shares = ref.arc_shares(ref.state_nodes(state))
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    assert concept.state_json(state)["derived"]["shares"] == pytest.approx(shares, abs=1e-12)
    rows = drawn(state).layers["nodes"].inner()
    shown = dict(re.findall(r"<span class='node-name'>([^<]+)</span>.*?<span class='node-share'>([\d.]+)% of ring</span>", rows))
    assert set(shown) == set(shares)
    for node, pct in shown.items():
        assert close(pct, 100 * shares[node]), (node, pct, shares[node])
    donut = drawn(state).layers["ring-share"].inner()
    titled = dict(re.findall(r"<title>(\S+) owns ([\d.]+)% of the ring</title>", donut))
    assert set(titled) == {n for n, s in shares.items() if s > 0}
    for node, pct in titled.items():
        assert close(pct, 100 * shares[node]), (node, pct)


def test_keys_per_node_in_the_rows_and_the_chart():
    state = weighted()
    per_node = ref.counts(ref.state_nodes(state), state.keys)
    rows = drawn(state).layers["nodes"].inner()
    assert dict(re.findall(r"<span class='node-name'>([^<]+)</span><span class='node-keys'>(\d+) keys?</span>", rows)) == {
        n: str(c) for n, c in per_node.items()}
    chart = drawn(state).panels["load"]
    assert dict(re.findall(r"<title>([^:<]+): (\d+) keys?</title>", chart)) == {n: str(c) for n, c in per_node.items()}


# -- the "Last change" panel: the ideal counts weights ------------------------------------------------

def _ideal_text(w: int, big_w: int) -> str:
    return f"{w}/{big_w} of vnodes ≈ {100 * w / big_w:.1f}%"


def test_adding_a_light_node_to_a_heavy_ring_expects_its_weight_not_one_in_n():
    before = weighted()
    assert sum(n.vnodes for n in before.nodes) == 156
    after = fold(before, {"type": "add_node", "name": "E", "vnodes": 3})
    html = drawn(after).panels["moved"]
    assert printed(html, "ideal") == _ideal_text(3, 159) == "3/159 of vnodes ≈ 1.9%"
    # Independently: the keys that move are exactly those the new node owns now, and its arc share
    # is close to its weight.
    per_node = ref.counts(ref.state_nodes(after), after.keys)
    assert after.last_change.moved == per_node["E"]
    assert after.last_change.ideal == pytest.approx(len(after.keys) * 3 / 159)
    line = narrate(before, after, {"kind": "node_added", "data": {"name": "E", "vnodes": 3}})
    assert "ideal 3/159 of the vnodes ≈ 1.9%" in line, line
    assert "12.5%" not in html + line  # what K/(n+1) said


def test_removing_a_node_expects_its_share_of_the_vnodes_before():
    before = fold(weighted(), {"type": "add_node", "name": "E", "vnodes": 3})
    after = fold(before, {"type": "remove_node", "name": "B"})
    html = drawn(after).panels["moved"]
    assert printed(html, "ideal") == _ideal_text(64, 159)
    per_before = ref.counts(ref.state_nodes(before), before.keys)
    assert after.last_change.moved == per_before["B"]
    line = narrate(before, after, {"kind": "node_removed", "data": {"name": "B"}})
    assert f"ideal 64/159 of the vnodes ≈ {100 * 64 / 159:.1f}%" in line, line


def test_equal_weights_give_one_in_n_plus_one():
    before = scene(list("ABCD"), 8, 1000, "equal")
    after = fold(before, {"type": "add_node", "name": "E"})
    assert printed(drawn(after).panels["moved"], "ideal") == "8/40 of vnodes ≈ 20.0%"


def test_moved_and_modulo_percentages_are_the_counts_over_k():
    before = weighted()
    after = fold(before, {"type": "add_node", "name": "E", "vnodes": 3})
    html = drawn(after).panels["moved"]
    k = len(after.keys)
    # hash % N, by hand: bucket h % N names the N-th node in join order.
    names_b, names_a = [n.name for n in before.nodes], [n.name for n in after.nodes]
    modulo = sum(names_b[ref.position(key) % 4] != names_a[ref.position(key) % 5] for key in after.keys)
    assert close(printed(html, "moved"), 100 * ref.counts(ref.state_nodes(after), after.keys)["E"] / k)
    shown = re.sub(r"<small>.*", "", printed(html, "hash % N would move")).strip().rstrip("%")
    assert close(shown, 100 * modulo / k)


def test_load_chart_ideal_is_each_nodes_weight_when_weights_differ():
    state = weighted()
    chart = drawn(state).panels["load"]
    ideals = dict(re.findall(r"<title>(\w+): ideal (\d+/\d+) of the keys ≈ ([\d.]+)</title>", chart)[i][::2]
                  for i in range(4))
    k = len(state.keys)
    for name, w in ref.state_nodes(state):
        assert close(ideals[name], k * w / 156), (name, ideals[name])
    assert "ideal K·w/W" in chart and "ideal K/n" not in chart
    equal = drawn(STATES["three-nodes-100-vnodes"]()).panels["load"]
    assert "ideal K/n" in equal and "K·w/W" not in equal
