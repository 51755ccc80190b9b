"""Contracts 3 and 4, over every event the concept's lessons make (each step, and a room-clock
tick after each step):

3. every event is narrated with a sentence (not its bare kind, not code), and, once the concept
   declares ``events`` (kind -> TypedDict of its data), every kind emitted is declared and every
   event's data, as the log stores it, matches its TypedDict;
4. every state round-trips through JSON: ``from_json(json.loads(json.dumps(to_json(s))))`` has
   the same ``to_json``.
"""
from __future__ import annotations

import json
from typing import Any

import pytest

from apps.rooms.registry import REGISTRY
from tests.contract import kit, typed


def moments(concept_slug: str, lesson_slug: str) -> list[tuple[str, kit.Moment]]:
    return [(t.what, m) for t in kit.transitions(concept_slug, lesson_slug) for m in t.moments]


def narration_problems(concept: Any, before: Any, after: Any, event: dict[str, Any]) -> list[str]:
    line = concept.narrate(before, after, event)
    problem = kit.sentence_problem(line, event["kind"])
    return [f"{event['kind']}: {problem}"] if problem else []


@pytest.mark.parametrize(("concept_slug", "lesson_slug"), kit.every_lesson())
def test_every_event_is_narrated_with_a_sentence(concept_slug, lesson_slug):
    concept = REGISTRY[concept_slug]
    problems = [f"{what}: {p}" for what, m in moments(concept_slug, lesson_slug)
                for p in narration_problems(concept, m.before, m.after, m.event)]
    assert not problems, "\n  ".join(problems[:12])


def declared(concept_slug: str) -> Any:
    events = getattr(REGISTRY[concept_slug], "events", None)
    if not events:
        pytest.skip(f"{concept_slug} declares no event types yet (Concept.events, kind -> TypedDict): "
                    "nothing to check the events against")
    return events


@pytest.mark.parametrize(("concept_slug", "lesson_slug"), kit.every_lesson())
def test_every_event_is_declared_and_its_data_matches_its_type(concept_slug, lesson_slug):
    events = declared(concept_slug)
    problems = [f"{what}: {p}" for what, m in moments(concept_slug, lesson_slug) for p in typed.event_problems(events, m.event)]
    assert not problems, "\n  ".join(problems[:12])


@pytest.mark.parametrize("concept_slug", kit.slugs())
def test_every_declared_event_type_is_a_typeddict(concept_slug):
    events = declared(concept_slug)
    wrong = [kind for kind, hint in events.items() if not typed.is_typeddict(hint)]
    assert not wrong, f"{concept_slug}: not a TypedDict: {wrong}"


def round_trip_problem(concept: Any, state: Any) -> str | None:
    doc = concept.to_json(state)
    again = concept.to_json(concept.from_json(json.loads(json.dumps(doc))))
    if again == doc:
        return None
    keys = sorted(k for k in doc.keys() | again.keys() if doc.get(k) != again.get(k))
    return f"the JSON differs after a round trip at {keys[:5]}"


@pytest.mark.parametrize(("concept_slug", "lesson_slug"), kit.every_lesson())
def test_every_state_round_trips_through_json(concept_slug, lesson_slug):
    concept = REGISTRY[concept_slug]
    problems = [f"the initial state: {p}" for p in [round_trip_problem(concept, concept.initial_state({}))] if p]
    for what, m in moments(concept_slug, lesson_slug):
        problem = round_trip_problem(concept, m.after)
        if problem:
            problems.append(f"{what}, after {m.event['kind']}: {problem}")
    assert not problems, "\n  ".join(problems[:12])
