"""The hash ring lessons run, and every number their text states is what the scene shows.

Pure: each lesson file is read with tomllib and folded through ``apps.hashring.sim`` the way a
room does it (each command gets a ``_seed`` from the room's seed, the step's sequence number and
the command's index). The numbers a step's title, narration and question state (and the
lesson's summary) are read out of the text and looked for among the numbers of the scene, all
computed independently from mmh3 positions (tests/hashring/reference.py): node, vnode and key
counts, keys per node, moved keys, arc shares, std/mean and max/mean. A decimal or a percentage
must match to the precision printed; "std/mean 0.698" must be this step's std/mean, not any
number that happens to match. Facts from DOMAIN.md that are no scene's (ketama's 160 points)
are listed in EXEMPT with where they come from.
"""
from __future__ import annotations

import re
import statistics
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apps.hashring.sim import COMMANDS, Rejected, RingState, decide, evolve, initial_state
from tests import lessonfold

from . import reference as ref

LESSONS = Path(__file__).resolve().parents[2] / "apps" / "hashring" / "lessons"
SLUGS = sorted(p.stem for p in LESSONS.glob("*.toml"))
ROOM_SEEDS = ["lesson", "room-7f3a", "x"]

# Not the scene's: DOMAIN.md section 1's real-world vnode counts, and the 1/sqrt(V) rule.
EXEMPT = re.compile(r"ketama uses 160 points|Cassandra used 256 tokens, and 16 since 4\.0|1/sqrt\(V\)")
NUMBER = re.compile(r"(?<![\w.#])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%?)")
VNODE = re.compile(r"\b([A-Z][A-Za-z]*)#(\d+)\b")
KEY_NAME = re.compile(r"\b[a-z]+\d+\b")  # user42: a key's name, not a number
WORDS = {"three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
         "eleven": 11, "twelve": 12, "hundred": 100, "thousand": 1000}
# Fractions in words, as a percentage: "about a quarter" of the mean must be 25% of something.
# ("a fifth server" is an ordinal: a fraction is followed by "of" or ends the phrase.)
FRACTIONS = re.compile(r"\b(?:(?:a quarter|a third|a fifth|a tenth|half)(?=\s+of\b|\s*[.,;:)!?]|$)|one in (\w+))")
FRACTION_PCT = {"a quarter": 25.0, "a third": 100 / 3, "a fifth": 20.0, "a tenth": 10.0, "half": 50.0}


@dataclass
class StepRun:
    title: str
    text: str  # title, narration and question
    commands: list[dict[str, Any]]
    before: RingState
    after: RingState
    change: tuple[RingState, RingState] | None = None  # the last membership change the panel shows


def load(slug: str) -> dict[str, Any]:
    return lessonfold.load(LESSONS, slug)


def fold_lesson(slug: str, room_seed: str = "lesson", start: RingState | None = None) -> list[StepRun]:
    runs: list[StepRun] = []
    for f in lessonfold.fold_steps(LESSONS, slug, start or initial_state(), decide, evolve, Rejected, room_seed):
        step, before, state = f.step, f.before, f.after
        text = " ".join(" ".join((step["title"], step["narration"], step.get("question", ""))).split())
        change = runs[-1].change if runs else None
        if before.nodes != state.nodes and before.keys == state.keys:
            change = (before, state)
        elif state.last_change is None:
            change = None
        runs.append(StepRun(step["title"], text, list(step.get("commands", [])), before, state, change))
    return runs


def step(runs: list[StepRun], title: str) -> StepRun:
    [found] = [r for r in runs if r.title == title]
    return found


# -- the scene's numbers, computed independently --------------------------------------------------

@dataclass
class Numbers:
    ints: set[int]
    ratios: list[float]  # printed without a % sign
    percents: list[float]


def scene_numbers(run: StepRun) -> Numbers:
    ints: set[int] = {1}
    ratios: list[float] = []
    percents: list[float] = []
    for command in run.commands:
        ints |= {v for v in command.values() if isinstance(v, int) and not isinstance(v, bool)}
    for state in (run.before, run.after):
        nodes = ref.state_nodes(state)
        if not nodes:
            continue
        k = len(state.keys)
        weights = sum(w for _, w in nodes)
        per_node = ref.counts(nodes, state.keys)
        shares = ref.arc_shares(nodes)
        mean = k / len(nodes)
        ints |= {len(nodes), weights, k, state.replicas, state.replicas // 2 + 1, *range(1, state.replicas + 1)}
        ints |= {w for _, w in nodes} | set(per_node.values())
        if mean == int(mean):
            ints.add(int(mean))
        if k:
            ratios += [ref.std_over_mean(per_node), ref.max_over_mean(per_node), mean]
            percents += [100 * c / k for c in per_node.values()]
            percents.append(100 * (ref.max_over_mean(per_node) - 1))  # the busiest, above the mean
        percents += [100 * s for s in shares.values()] + [100 * w / weights for _, w in nodes]
    # What the last membership change moved (the Last change panel still shows it), by comparing
    # owners before and after it.
    b, a = run.change or (run.before, run.before)
    if b.nodes and a.nodes and b.keys == a.keys and b.keys and ref.state_nodes(b) != ref.state_nodes(a):
        k = len(a.keys)
        rb, ra = ref.vnodes(ref.state_nodes(b)), ref.vnodes(ref.state_nodes(a))
        moved = sum(ref.owner(rb, key) != ref.owner(ra, key) for key in a.keys)
        nb, na = [n.name for n in b.nodes], [n.name for n in a.nodes]
        modulo = sum(nb[ref.position(key) % len(nb)] != na[ref.position(key) % len(na)] for key in a.keys)
        ints |= {moved, modulo, k - modulo, len(nb), len(na)}
        percents += [100 * moved / k, 100 * modulo / k, 100 * (k - modulo) / k]
    return Numbers(ints, ratios, percents)


def matches(value: float, decimals: int, candidates: list[float]) -> bool:
    return any(abs(c - value) <= 0.5 * 10**-decimals + 1e-9 for c in candidates)


def numbers_in(text: str) -> list[tuple[str, float, int, bool]]:
    """(as written, value, decimals, is a percentage) for every number in the text."""
    text = EXEMPT.sub(" ", text)
    text = VNODE.sub(" ", text)
    text = KEY_NAME.sub(" ", text)
    found = []
    for m in NUMBER.finditer(text):
        whole, frac, pct = m.groups()
        value = float(whole.replace(",", "") + (frac or ""))
        found.append((m.group(0), value, len(frac) - 1 if frac else 0, bool(pct)))
    for m in FRACTIONS.finditer(text.lower()):
        if m.group(1):  # "one in five"
            n = WORDS.get(m.group(1)) or (int(m.group(1)) if m.group(1).isdigit() else None)
            if n:
                found.append((m.group(0), 100 / n, 0, True))
        else:
            found.append((m.group(0), FRACTION_PCT[m.group(0)], 0, True))
    text = FRACTIONS.sub(" ", text.lower())
    for word in re.findall(r"[a-z]+", text):
        if word in WORDS:
            found.append((word, float(WORDS[word]), 0, False))
    return found


def unknown_numbers(run: StepRun) -> list[str]:
    known = scene_numbers(run)
    bad = []
    for written, value, decimals, pct in numbers_in(run.text):
        if pct:
            ok = matches(value, decimals, known.percents + [100 * r for r in known.ratios])
        elif decimals:
            ok = matches(value, decimals, known.ratios)
        else:
            ok = int(value) in known.ints
        if not ok:
            bad.append(written)
    return bad


# -- every lesson -------------------------------------------------------------------------------

def test_the_three_lessons_are_there():
    assert SLUGS == ["01-why-modulo-hurts", "02-virtual-nodes-and-balance", "03-replication-and-preference-lists"]


@pytest.mark.parametrize("slug", SLUGS)
def test_lesson_has_the_shape_the_rooms_parser_wants(slug):
    raw = load(slug)
    assert raw["title"].strip() and raw["summary"].strip()
    for s in raw["steps"]:
        for key in ("title", "narration", "question"):
            assert isinstance(s.get(key), str) and s[key].strip(), (slug, s.get("title"), key)
        assert all(c.get("type") in COMMANDS for c in s["commands"]), (slug, s["title"])
    assert raw["steps"][0]["commands"][0]["type"] == "load_scene"


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
@pytest.mark.parametrize("slug", SLUGS)
def test_every_number_in_the_text_is_one_the_scene_shows(slug, room_seed):
    runs = fold_lesson(slug, room_seed)
    for r in runs:
        assert not unknown_numbers(r), f"{slug}, step {r.title!r}: {unknown_numbers(r)} not in the scene: {r.text}"
    # The summary speaks for the whole lesson: each of its numbers is in some step's scene.
    summary = load(slug)["summary"]
    assert any(not unknown_numbers(StepRun("summary", summary, [], r.before, r.after)) for r in runs), summary


@pytest.mark.parametrize("slug", SLUGS)
def test_the_lesson_runs_the_same_from_a_busy_room(slug):
    """Every lesson starts with load_scene: a room with other nodes, keys and lookups changes nothing."""
    busy = initial_state()
    for cmd in ({"type": "add_node", "name": "Z", "vnodes": 3}, {"type": "add_random_keys", "count": 500, "_seed": "b"},
                {"type": "lookup", "key": "zzz"}, {"type": "set_replicas", "replicas": 5}):
        for ev in decide(busy, cmd):
            busy = evolve(busy, ev)
    for quiet, loud in zip(fold_lesson(slug), fold_lesson(slug, start=busy)):
        assert (quiet.after.nodes, quiet.after.keys, quiet.after.replicas) == (loud.after.nodes, loud.after.keys, loud.after.replicas)


# -- labelled numbers: the std/mean a sentence names is this step's --------------------------------

def _per_node(s: RingState) -> dict[str, int]:
    return ref.counts(ref.state_nodes(s), s.keys)


LABELLED = [
    (re.compile(r"std/mean (?:is |drops to |of )?(\d+(?:\.\d+)?)"), lambda s: ref.std_over_mean(_per_node(s))),
    (re.compile(r"max/mean (?:is |to |of )?(\d+(?:\.\d+)?)"), lambda s: ref.max_over_mean(_per_node(s))),
    (re.compile(r"(\d+(?:\.\d+)?)% above the mean"), lambda s: 100 * (ref.max_over_mean(_per_node(s)) - 1)),
]
# "within 10% of the mean": every node's load is (no claim of a rounded value: a bound).
WITHIN = re.compile(r"within (?:about )?(\d+(?:\.\d+)?)% of the mean")


def _widest(s: RingState) -> float:
    per_node = _per_node(s)
    mean = statistics.fmean(per_node.values())
    return 100 * max(abs(c - mean) for c in per_node.values()) / mean


def mislabelled(run: StepRun) -> list[str]:
    """Numbers a sentence names (std/mean, max/mean, % above the mean) that are not this step's."""
    bad = []
    for pattern, exact in LABELLED:
        for m in pattern.finditer(run.text):
            decimals = len(m.group(1).split(".")[1]) if "." in m.group(1) else 0
            if not matches(float(m.group(1)), decimals, [exact(run.after)]):
                bad.append(m.group(0))
    for m in WITHIN.finditer(run.text):
        if _widest(run.after) > float(m.group(1)) + 0.5:
            bad.append(m.group(0))
    return bad


@pytest.mark.parametrize("slug", SLUGS)
def test_a_named_statistic_is_the_steps_own(slug):
    for r in fold_lesson(slug):
        assert not mislabelled(r), (slug, r.title, mislabelled(r))


# -- what each lesson teaches, step by step ---------------------------------------------------------

def test_lesson_1_the_new_locker_takes_keys_from_one_neighbour_and_modulo_moves_most():
    runs = fold_lesson("01-why-modulo-hurts")
    add = step(runs, "Add a fifth locker")
    rb, ra = ref.vnodes(ref.state_nodes(add.before)), ref.vnodes(ref.state_nodes(add.after))
    moved = [k for k in add.after.keys if ref.owner(rb, k) != ref.owner(ra, k)]
    assert {ref.owner(ra, k) for k in moved} == {"E"} and {ref.owner(rb, k) for k in moved} == {"B"}
    assert "all of them from B" in add.text
    assert add.after.last_change.modulo_moved > 0.75 * len(add.after.keys)
    lookup = step(runs, "One key, two ways")
    assert ref.owner(ra, "user42") == "D" and "its owner, D" in lookup.text
    broken = step(runs, "A locker breaks")
    assert ref.counts(ref.state_nodes(broken.after), broken.after.keys)["C"] == 547


def test_lesson_2_spread_falls_as_vnodes_grow_and_weight_doubles_the_share():
    runs = fold_lesson("02-virtual-nodes-and-balance")
    spreads = [ref.std_over_mean(ref.counts(ref.state_nodes(r.after), r.after.keys)) for r in runs[:3]]
    assert spreads[0] > spreads[1] > spreads[2]
    per_node = ref.counts(ref.state_nodes(runs[0].after), runs[0].after.keys)
    assert max(per_node, key=per_node.get) == "A" and "busiest server, A" in runs[0].text
    per_node = ref.counts(ref.state_nodes(runs[2].after), runs[2].after.keys)
    assert max(per_node, key=per_node.get) == "H" and "busiest server, H" in runs[2].text
    weights = step(runs, "Weights")
    shares = ref.arc_shares(ref.state_nodes(weights.after))
    others = [s for n, s in shares.items() if n != "K"]
    assert 1.5 < shares["K"] / statistics.fmean(others) < 2.5


def test_lesson_3_preference_lists_skip_repeats_and_move_on_when_the_coordinator_goes():
    runs = fold_lesson("03-replication-and-preference-lists")

    def prefs(state: RingState, key: str = "user42") -> list[str]:
        ring, found = ref.vnodes(ref.state_nodes(state)), []
        start = bisect_left([p for p, _, _ in ring], ref.position(key))
        for j in range(len(ring)):
            node = ring[(start + j) % len(ring)][1]
            if node not in found:
                found.append(node)
        return found[: state.replicas]

    first = step(runs, "Where does user42 live?")
    assert prefs(first.after) == ["C"] and "C#3" in first.text and first.after.preference_list("user42") == [("C", 3)]
    three = step(runs, "Three replicas")
    assert prefs(three.after) == ["C", "D", "E"] and "C, D and E" in three.text
    fails = step(runs, "The coordinator fails")
    assert prefs(fails.after) == ["D", "E", "A"] and "D#0" in fails.text and "server, A" in fails.text
    assert fails.after.preference_list("user42")[0] == ("D", 0)


@pytest.mark.parametrize("slug", SLUGS)
def test_replication_and_quorum_have_distinct_names(slug):
    """RF is the replication factor; R and W are read and write quorums (Dynamo's N, R, W)."""
    raw = load(slug)
    for s in raw["steps"]:
        text = " ".join((s["narration"], s["question"]))
        assert not re.search(r"\bR = 3\b.*\bkept\b|\bnext R\b|\bthe R replicas\b", text), (slug, s["title"])
        for m in re.finditer(r"\bR = (\d+)", text):
            assert "read" in text[max(0, m.start() - 40): m.end() + 5], (slug, s["title"], m.group(0))


# -- the test itself catches a wrong number ------------------------------------------------------

@pytest.mark.parametrize("slug, title, shipped, wrong", [
    ("02-virtual-nodes-and-balance", "One spot each", "std/mean is 0.698", "std/mean is 0.8"),  # the old "about 0.8"
    ("02-virtual-nodes-and-balance", "One spot each", "std/mean is 0.698", "std/mean is 0.699"),
    ("02-virtual-nodes-and-balance", "A hundred spots each", "31% above", "10% above"),
    ("02-virtual-nodes-and-balance", "One spot each", "2,297 keys", "2,300 keys"),
    ("02-virtual-nodes-and-balance", "Ten spots each", "ten times", "eleven times"),
    ("01-why-modulo-hurts", "Add a fifth locker", "(10.8%)", "(12.5%)"),
    ("01-why-modulo-hurts", "Add a fifth locker", "20.0%", "20.5%"),
])
def test_a_changed_number_is_caught(slug, title, shipped, wrong):
    run = step(fold_lesson(slug), title)
    assert shipped in run.text and not unknown_numbers(run) and not mislabelled(run)
    altered = StepRun(run.title, run.text.replace(shipped, wrong), run.commands, run.before, run.after, run.change)
    assert unknown_numbers(altered) or mislabelled(altered), altered.text
