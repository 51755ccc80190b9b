"""Contract 1: at every step of every lesson, in a real room, the fold of the event log equals
the live state (``to_json`` equal): the state the command left, the room's cached state, the
state folded from the newest snapshot, and the log folded by hand from its first event. The
room clock's tick and a step back (lesson_prev, a rewind) are folded too. Snapshots are taken
every three events, so the fold from a snapshot is exercised."""
from __future__ import annotations

import pytest
from django.test import override_settings

from apps.rooms.models import Room
from apps.rooms.registry import REGISTRY
from apps.rooms.services import STATE_CACHE, SYSTEM, Actor, room_command_apply, room_create, room_state, state_at
from tests.contract import kit
from tests.lessonfold import fold_lesson

PRESENTER = Actor("presenter")


def fold_problems(room: Room, live: dict, where: str) -> list[str]:
    concept = REGISTRY[room.concept]
    room = Room.objects.get(pk=room.pk)
    seen = {"the room's state": concept.to_json(room_state(room))}
    STATE_CACHE.clear()
    seen["the fold from the newest snapshot"] = concept.to_json(state_at(room, room.position))
    seen["the log folded by hand"] = concept.to_json(kit.fold_of_the_log(room, room.position))
    return [f"{where}: {name} differs from the live state: {diff_keys(value, live)}"
            for name, value in seen.items() if value != live]


def diff_keys(got: dict, want: dict) -> str:
    keys = sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k))
    return ", ".join(f"{k}: {str(got.get(k))[:120]} != {str(want.get(k))[:120]}" for k in keys[:4])


@pytest.mark.django_db
@override_settings(DISTVIZ_SNAPSHOT_EVERY=3)
@pytest.mark.parametrize(("concept_slug", "lesson_slug"), kit.every_lesson())
def test_the_fold_of_the_log_is_the_live_state_at_every_step(concept_slug, lesson_slug):
    concept = REGISTRY[concept_slug]
    room, _key = room_create(concept=concept_slug)
    steps = fold_lesson(concept, kit.lesson(concept_slug, lesson_slug), room.seed)  # the room's seeds
    problems, shown = [], []
    for index, applied in kit.lesson_in_a_room(room, lesson_slug, len(steps)):
        live = concept.to_json(applied.after)
        where = f"{lesson_slug}, step {index + 1} ({steps[index].title})"
        if live != concept.to_json(steps[index].after):
            problems.append(f"{where}: the room's state is not the pure fold of the lesson: {diff_keys(live, concept.to_json(steps[index].after))}")
        problems += fold_problems(applied.room, live, where)
        shown.append(live)
    if concept.ticks:
        room_command_apply(code=room.code, actor=PRESENTER, command={"type": "play"})
        applied = room_command_apply(code=room.code, actor=SYSTEM, command=dict(kit.TICK))
        problems += fold_problems(applied.room, concept.to_json(applied.after), f"{lesson_slug}, a clock tick after the last step")
        room_command_apply(code=room.code, actor=PRESENTER, command={"type": "pause"})
    if len(steps) > 1:
        applied = room_command_apply(code=room.code, actor=PRESENTER, command={"type": "lesson_prev"})
        live = concept.to_json(room_state(Room.objects.get(pk=room.pk)))
        assert live == shown[-2], f"{lesson_slug}: a step back does not show the step before"
        problems += fold_problems(applied.room, live, f"{lesson_slug}, a step back")
    assert not problems, f"{concept_slug}:\n  " + "\n  ".join(problems)
