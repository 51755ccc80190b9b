"""Every number a lesson states is one its scene produces: for every concept, every lesson.

A lesson is read on a projector as the truth about the picture beside it, so a number in a
step's narration or question must be one the class can find in that step's state. For every
registered concept (``apps.rooms.registry.REGISTRY``, filled by each ``AppConfig.ready``) and
every lesson file it has (``apps.rooms.lessons.lessons_for``), the steps are folded through the
concept's pure ``decide``/``evolve`` exactly as the room engine applies them
(``services._lesson_command`` / ``_decide_all``: each command gets ``_seed =
"<room seed>:<seq + 1>:<index>"``, where seq counts the room's events so far, including
``room_created``, ``lesson_started`` and each ``lesson_step``), from a fresh room's state.
``test_the_fold_is_the_one_the_room_engine_makes`` checks that claim against a real room.

Each number in the step's narration and question must then be one of:

* a whole number in the state JSON (``concept.to_json`` and ``concept.state_json``, which adds
  the derived values) before or after the step, the length of a list or a map in it (how many
  nodes, members, keys...), a total of a table in it (the sum of a map of numbers, e.g. keys
  per node; the sum of one field over a list of records, e.g. vnodes over the nodes), or an
  argument of the step's commands. Thousands separators are read: "9,836" is 9836.
* a decimal ("0.698", "2.30") matching, at the precision printed, a number in that JSON: 0.70
  matches any value that rounds to 0.70.
* a percentage ("10.8%", "12.5%") matching, at the precision printed, a fraction in that JSON
  (0.108), a value already in per cent (10.8), a part's share of one of those totals (a node's
  keys of all keys, its vnodes of all vnodes), or the ratio of two numbers of one record
  (``last_change``: moved of ``total_keys``). "N% above" (below, more, less, over, under)
  also matches a ratio N% away from 1 (max/mean 1.31 is "31% above the mean").

Several room seeds are tried: a number in a lesson must not depend on the room it runs in.

Digits inside names are part of the name (C1, P0, user42, A#3, customer-1001, 0x7fffffff) and
not read as numbers. Anything else that is not from the scene is listed, with why, in
``EXEMPT`` below: one table, each entry as narrow as it can be. The test fails for a number
the scene does not produce; the fix is the lesson's text (or its scene), not this table.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator

import pytest

from apps.rooms.lessons import Lesson, lessons_for
from apps.rooms.registry import REGISTRY, Concept
from tests.lessonfold import StepRun, fold_lesson

ROOM_SEEDS = ["lesson", "room-7f3a", "x"]

# (concept slug or "*", lesson slug or "*", a regex for the words to leave out, why). Matched
# case-sensitively against the step's narration and question, after whitespace is collapsed.
EXEMPT: list[tuple[str, str, str, str]] = [
    ("*", "*", r"\blesson \d+\b|\bstep \d+\b", "a cross reference to another lesson or step"),
    ("*", "*", r"\b\d+(?:st|nd|rd|th)\b", "an ordinal"),
    ("hashring", "02-virtual-nodes-and-balance", r"memcached's ketama uses 160 points per server",
     "a fact about another system, not the scene"),
    ("hashring", "02-virtual-nodes-and-balance", r"Cassandra used 256 tokens, and 16 since 4\.0",
     "a fact about another system, not the scene"),
    ("hashring", "03-replication-and-preference-lists", r"\b[WR] = 2\b",
     "the quorum sizes the lesson asks about: the ring has replicas, not read/write quorums"),
    ("lock-quorums", "*", r"\bN/2 ?\+ ?1\b|\bint\(TTL x 0\.01\) \+ 2\b|\b\d+ // \d+ \+ \d+\b", "the spec's formulas"),
]

NAME = re.compile(r"[A-Za-z_][\w-]*\d[\w-]*|\w+#\d+|0x[0-9a-fA-F]+")  # C1, user42, customer-1001, A#3, 0x7f...
NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%?)(?![\w])")
RELATIVE = re.compile(r"\s+(?:above|below|more|less|over|under)\b")


def concepts() -> list[Concept]:
    return sorted(REGISTRY.values(), key=lambda c: c.slug)


def every_lesson() -> list[tuple[str, str]]:
    return [(c.slug, lesson.slug) for c in concepts() for lesson in lessons_for(c.slug)]


def documented(concept: Concept, state: Any) -> dict[str, Any]:
    """What ``/r/<code>/state.json`` shows: the concept's ``state_json``, or its ``to_json``."""
    return (getattr(concept, "state_json", None) or concept.to_json)(state)


def fold(concept: Concept, lesson: Lesson, room_seed: str) -> list[StepRun]:
    """The lesson's steps as a fresh room applies them (lesson_start, then lesson_next)."""
    return fold_lesson(concept, lesson, room_seed)


# -- what the state shows ------------------------------------------------------------------------

def walk(value: Any) -> Iterator[int | float]:
    """Every number in a JSON value, and the length of every list and map in it."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return
        yield value
    elif isinstance(value, dict):
        yield len(value)
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, (list, tuple)):
        yield len(value)
        for v in value:
            yield from walk(v)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def tables(value: Any) -> Iterator[list[int | float]]:
    """Every column of numbers in a JSON value: a map whose values are all numbers, and each
    numeric field over a list of records."""
    if isinstance(value, dict):
        nums = list(value.values())
        if nums and all(is_number(v) for v in nums):
            yield nums
        for v in value.values():
            yield from tables(v)
    elif isinstance(value, (list, tuple)):
        records = [v for v in value if isinstance(v, dict)]
        if records and len(records) == len(value):
            for field in {k for r in records for k, v in r.items() if is_number(v)}:
                column = [r.get(field) for r in records]
                if all(is_number(v) for v in column):
                    yield column
        for v in value:
            yield from tables(v)


def record_ratios(value: Any) -> Iterator[float]:
    """a / b for every two numbers of one record (a map with at least two numeric fields)."""
    if isinstance(value, dict):
        nums = [v for v in value.values() if is_number(v)]
        yield from (a / b for a in nums for b in nums if b)
        for v in value.values():
            yield from record_ratios(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from record_ratios(v)


@dataclass
class Shown:
    numbers: list[int | float]  # for whole numbers and decimals
    shares: list[float]  # for percentages, besides ``numbers``


def shown(concept: Concept, run: StepRun) -> Shown:
    numbers: list[int | float] = []
    shares: list[float] = []
    docs = []
    for state in (run.before, run.after):
        docs += [concept.to_json(state), documented(concept, state)]
    docs += [{k: v for k, v in command.items() if k != "type"} for command in run.commands]
    for doc in docs:
        numbers += walk(doc)
        for column in tables(doc):
            total = sum(column)
            numbers.append(total)
            shares += [v / total for v in column if total]
        shares += record_ratios(doc)
    return Shown(numbers, shares)


@dataclass(frozen=True)
class Quoted:
    text: str
    value: Decimal
    decimals: int
    percent: bool
    relative: bool = False  # "31% above": a ratio's distance from 1


def exempted(concept: str, lesson: str, text: str) -> str:
    for c, l, pattern, _why in EXEMPT:
        if c in ("*", concept) and l in ("*", lesson):
            text = re.sub(pattern, " ", text)
    return NAME.sub(" ", text)


def quoted(text: str) -> list[Quoted]:
    found = []
    for m in NUMBER.finditer(text):
        whole, frac, pct = m.groups()
        relative = pct == "%" and RELATIVE.match(text, m.end()) is not None
        found.append(Quoted(m.group(0), Decimal(whole.replace(",", "") + (frac or "")), len(frac or ".") - 1, pct == "%",
                            relative))
    return found


def matches(q: Quoted, seen: Shown | list[int | float]) -> bool:
    if not isinstance(seen, Shown):
        seen = Shown(list(seen), [])
    numbers = seen.numbers
    half = Decimal(5) / Decimal(10) ** (q.decimals + 1)  # half a unit of the last digit printed
    target = float(q.value)
    tolerance = float(half) + 1e-9
    if q.percent:
        fractions = numbers + seen.shares
        if q.relative:
            fractions = fractions + [abs(n - 1) for n in numbers]
        return any(abs(n * 100 - target) <= tolerance for n in fractions) or any(abs(n - target) <= tolerance for n in numbers)
    if q.decimals == 0:
        return any(n == int(q.value) for n in numbers if isinstance(n, int) or float(n).is_integer())
    return any(abs(n - target) <= tolerance for n in numbers)


def unmatched(concept: Concept, run: StepRun) -> list[str]:
    numbers = shown(concept, run)
    wrong = []
    for what, text in (("narration", run.narration), ("question", run.question)):
        for q in quoted(exempted(run.concept, run.lesson, text)):
            if not matches(q, numbers):
                wrong.append(f"{what}: {q.text!r}")
    return wrong


# -- the contract ------------------------------------------------------------------------------

def test_every_registered_concept_is_covered():
    assert {c.slug for c in concepts()} >= {"hashring", "log-partitions", "lock-quorums"}
    assert every_lesson(), "no lessons found"
    for c in concepts():
        assert lessons_for(c.slug), f"{c.slug} has no lesson: nothing to check (add one, or remove this line)"


def problems(concept: Concept, lesson: Lesson, room_seed: str) -> list[str]:
    found = []
    for run in fold(concept, lesson, room_seed):
        wrong = unmatched(concept, run)
        if wrong:
            found.append(f"step {run.index + 1} ({run.title}): " + ", ".join(wrong))
    return found


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
@pytest.mark.parametrize(("concept_slug", "lesson_slug"), every_lesson())
def test_every_number_in_a_lesson_is_one_its_scene_produces(concept_slug, lesson_slug, room_seed):
    concept = REGISTRY[concept_slug]
    lesson = next(x for x in lessons_for(concept_slug) if x.slug == lesson_slug)
    wrong = problems(concept, lesson, room_seed)
    assert not wrong, (f"{concept_slug}/{lesson_slug} (room seed {room_seed!r}) states numbers its scene does not "
                       "produce:\n  " + "\n  ".join(wrong))


# -- the checker itself ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "numbers", "ok"), [
    ("9,836 ms", [9836], True),
    ("9,836 ms", [9837], False),
    ("std/mean 0.70", [0.6981], True),
    ("std/mean 0.70", [0.7051], False),
    ("std/mean 0.698", [0.6981], True),
    ("12.5%", [0.125], True),
    ("12.5%", [0.1262], False),
    ("12.5%", [12.5], True),
    ("31% above the mean", [1.307], True),
    ("31% of them", [1.307], False),
    ("31% above", [0.3], False),
    ("max/mean 2.30", [2.297], True),
    ("1,000 users", [1000.0], True),
    ("C1 and P0 and user42 and A#3", [], True),  # names, not numbers
])
def test_the_checker_reads_numbers_as_printed(text, numbers, ok):
    found = quoted(exempted("-", "-", text))
    assert all(matches(q, numbers) for q in found) is ok, found


@pytest.mark.parametrize("concept_slug", sorted(REGISTRY))
def test_a_lesson_that_states_a_number_its_scene_does_not_produce_fails(concept_slug):
    """Each concept's lessons, one number at a time made wrong in memory (the files are left
    alone): the contract names it. Whole numbers are moved by 7 units, decimals and percentages
    by 7 units of their last printed digit."""
    concept = REGISTRY[concept_slug]
    checked = 0
    for lesson in lessons_for(concept_slug):
        runs = fold(concept, lesson, ROOM_SEEDS[0])
        for run in runs:
            numbers = shown(concept, run)
            for q in quoted(exempted(run.concept, run.lesson, run.narration)):
                if not matches(q, numbers):
                    continue  # already reported by the contract itself
                unit = Decimal(1).scaleb(-q.decimals)
                wrong_value = q.value + 7 * unit
                body = f"{wrong_value:,.{q.decimals}f}" if "," in q.text else f"{wrong_value:.{q.decimals}f}"
                wrong = Quoted(body + ("%" if q.percent else ""), wrong_value, q.decimals, q.percent, q.relative)
                if matches(wrong, numbers):
                    continue  # the scene happens to show that number too: not a wrong one
                steps = list(lesson.steps)
                at = NUMBER.search(run.narration, run.narration.index(q.text))
                narration = run.narration[: at.start()] + wrong.text + run.narration[at.end():]
                steps[run.index] = dataclasses.replace(steps[run.index], narration=narration)
                broken = dataclasses.replace(lesson, steps=tuple(steps))
                reported = problems(concept, broken, ROOM_SEEDS[0])
                assert any(repr(wrong.text) in line for line in reported), (lesson.slug, run.title, q.text, wrong.text)
                checked += 1
                break  # one number per step is enough
    assert checked >= 1, f"{concept_slug}: no number in its lessons to show the contract at work"


def test_every_exemption_still_exempts_something():
    """An exemption whose words no lesson uses any more is removed, not kept "just in case"."""
    texts = {(c, l): [] for c, l in every_lesson()}
    for c, l in texts:
        for lesson in lessons_for(c):
            if lesson.slug == l:
                texts[(c, l)] = [s.narration + " " + s.question for s in lesson.steps]
    for concept, lesson, pattern, why in EXEMPT:
        used = any(re.search(pattern, t) for (c, l), ts in texts.items() if concept in ("*", c) and lesson in ("*", l)
                   for t in ts)
        assert used or concept == "*", f"exemption {pattern!r} ({why}) matches no lesson text"


@pytest.mark.django_db
@pytest.mark.parametrize("concept_slug", sorted(REGISTRY))
def test_the_fold_is_the_one_the_room_engine_makes(concept_slug):
    """The pure fold above gives the state a real room reaches through lesson_start and
    lesson_next (same seeds, same order), for each concept's first lesson."""
    from apps.rooms.models import Room
    from apps.rooms.services import Actor, room_command_apply, room_create, room_state

    concept = REGISTRY[concept_slug]
    lesson = lessons_for(concept_slug)[0]
    room, _key = room_create(concept=concept_slug)
    presenter = Actor("presenter")
    room_command_apply(code=room.code, actor=presenter, command={"type": "lesson_start", "lesson": lesson.slug})
    for _ in lesson.steps[1:]:
        room_command_apply(code=room.code, actor=presenter, command={"type": "lesson_next"})
    room = Room.objects.get(pk=room.pk)
    runs = fold(concept, lesson, room.seed)
    assert documented(concept, room_state(room)) == documented(concept, runs[-1].after)
