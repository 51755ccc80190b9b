"""Contracts 5, 6 and 7, on the room page itself (rendered through the Django test client):

5. every layer, region and panel the picture swaps (``picture_full``) has its element in the
   page, at every step of every lesson (and in every role's page of a new room);
6. every command the presenter's page can send (``data-send`` and ``data-arg-*``, ``hx-vals``,
   the ``hx-ws:send`` forms) is accepted, its events narrated with sentences (and typed, once
   declared) and its picture update checked as in contract 2, or refused with a sentence: on a
   new room and at the end of every lesson;
7. each of those commands with a bad value from the shared table (``bad_inputs.py``) in each of
   its fields is refused with a sentence and appends nothing; markup in a text field is refused
   or shown as text.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from django.test import Client

from apps.rooms import frames
from apps.rooms.models import Room, RoomEvent
from apps.rooms.registry import REGISTRY
from apps.rooms.services import Actor, CommandRejected, room_command_apply, room_create, room_state, room_view
from tests.contract import bad_inputs, dom, kit, typed
from tests.contract.test_picture import update_problems
from tests.lessonfold import Moment

PRESENTER = Actor("presenter")


def presenter_room(slug: str) -> tuple[Client, Room]:
    """A browser that made a room of ``slug`` with the home page's card: it presents it."""
    client = Client()
    response = client.post(f"/new/{slug}/")
    assert response.status_code == 302
    return client, Room.objects.get(code=response["Location"].strip("/").split("/")[-1])


def page_of(client: Client, room: Room, query: str = "") -> str:
    response = client.get(f"/r/{room.code}/{query}")
    assert response.status_code == 200
    return response.content.decode()


def fresh(room: Room) -> Room:
    return Room.objects.get(pk=room.pk)


def log_of(room: Room) -> tuple[int, int]:
    return RoomEvent.objects.filter(room=room).count(), fresh(room).seq


# -- 5. the picture's ids are in the page --------------------------------------------------------

def missing_ids(room: Room, page: str) -> list[str]:
    room = fresh(room)
    concept = REGISTRY[room.concept]
    targets = [s.target for s in dom.swaps(frames.picture_full(concept, room_state(room), room_view(room)))]
    there = dom.ids_in(page)
    return sorted({t for t in targets if t not in there})


@pytest.mark.django_db
@pytest.mark.parametrize("concept_slug", kit.slugs())
def test_every_picture_id_is_in_every_roles_page_of_a_new_room(concept_slug):
    client, room = presenter_room(concept_slug)
    pages = {"presenter": page_of(client, room), "participant": page_of(Client(), room),
             "viewer": page_of(Client(), room, "?as=viewer")}
    problems = [f"the {role}'s page has no element for #{' #'.join(missing)}"
                for role, page in pages.items() for missing in [missing_ids(room, page)] if missing]
    assert not problems, f"{concept_slug}: " + "; ".join(problems)


@pytest.mark.django_db
@pytest.mark.parametrize(("concept_slug", "lesson_slug"), kit.every_lesson())
def test_every_picture_id_is_in_the_page_at_every_step(concept_slug, lesson_slug):
    client, room = presenter_room(concept_slug)
    steps = kit.runs(concept_slug, lesson_slug)
    problems = []
    for index, _applied in kit.lesson_in_a_room(room, lesson_slug, len(steps)):
        missing = missing_ids(room, page_of(client, room))
        if missing:
            problems.append(f"step {index + 1} ({steps[index].title}): no element for #{' #'.join(missing)}")
    assert not problems, f"{concept_slug}/{lesson_slug}:\n  " + "\n  ".join(problems)


# -- 6. every command a page sends is accepted or refused with a sentence ------------------------

def shapes(commands: list[kit.PageCommand], each: int = 2) -> list[kit.PageCommand]:
    """At most ``each`` commands of one shape (type, fields and control): the ring draws a
    lookup button on every key, and two of them say what a thousand would."""
    seen: Counter[tuple[Any, ...]] = Counter()
    kept = []
    for item in commands:
        shape = (item.command.get("type"), tuple(sorted(item.command)), item.source)
        seen[shape] += 1
        if seen[shape] <= each:
            kept.append(item)
    return kept


def fork(room: Room) -> Room:
    """A new room at ``room``'s state (as "Try it yourself" makes one), to spend on commands."""
    created, _key = room_create(concept=room.concept, state=room_state(fresh(room)))
    return created


def accepted_problems(concept: Any, applied: Any, what: str) -> list[str]:
    problems = [] if applied.events else [f"{what}: accepted with no event"]
    for event, line in zip(applied.events, applied.narration):
        problem = kit.sentence_problem(line, event.kind)
        if problem:
            problems.append(f"{what}: the narration of {event.kind}: {problem}")
    concept_events = [{"kind": e.kind, "data": e.data} for e in applied.events if e.kind not in ENGINE_KINDS]
    if getattr(concept, "events", None):
        problems += [f"{what}: {p}" for event in concept_events for p in typed.event_problems(concept.events, event)]
    if concept_events and len(concept_events) == len(applied.events):
        step = kit.Transition(what, applied.before, applied.after, [Moment(None, e, None) for e in concept_events], applied.room.seq)
        problems += update_problems(concept.slug, step)
    frames.render_broadcast(applied)  # renders without an error
    return problems


def refusal_problem(exc: CommandRejected, what: str) -> str | None:
    problem = kit.sentence_problem(str(exc))
    return f"{what}: refused, but {problem}" if problem else None


def command_problems(room: Room, commands: list[kit.PageCommand], where: str) -> list[str]:
    concept = REGISTRY[room.concept]
    problems: list[str] = []
    target = fork(room)
    for item in commands:
        what = f"{where}: {item}"
        before = log_of(target)
        try:
            applied = room_command_apply(code=target.code, actor=PRESENTER, command=dict(item.command))
        except CommandRejected as exc:
            problems += [p for p in [refusal_problem(exc, what)] if p]
            if log_of(target) != before:
                problems.append(f"{what}: refused, yet the log grew")
            continue
        except Exception as exc:  # noqa: BLE001 - what the contract reports
            problems.append(f"{what}: raised {type(exc).__name__}: {exc}")
            target = fork(room)
            continue
        problems += accepted_problems(concept, applied, what)
        target = fork(room)
    return problems


try:
    from apps.rooms.services import ROOM_KINDS as ENGINE_KINDS
except ImportError:  # pragma: no cover
    ENGINE_KINDS = frozenset()


@pytest.mark.django_db
@pytest.mark.parametrize("concept_slug", kit.slugs())
def test_every_command_a_page_sends_is_accepted_or_refused_with_a_sentence(concept_slug):
    client, room = presenter_room(concept_slug)
    commands = shapes(kit.page_commands(page_of(client, room)))
    assert len(commands) >= 5, f"{concept_slug}: only {len(commands)} commands found on the page"
    problems = command_problems(room, commands, "a new room")
    for lesson_slug in [slug for c, slug in kit.every_lesson() if c == concept_slug]:
        client, room = presenter_room(concept_slug)
        steps = kit.runs(concept_slug, lesson_slug)
        for _step in kit.lesson_in_a_room(room, lesson_slug, len(steps)):
            pass
        commands = shapes(kit.page_commands(page_of(client, room)))
        problems += command_problems(room, commands, f"the end of {lesson_slug}")
    assert not problems, f"{concept_slug}:\n  " + "\n  ".join(problems[:20])


# -- 7. bad input is refused, and appends nothing --------------------------------------------------

def bad_variants(item: kit.PageCommand) -> list[tuple[str, dict[str, Any]]]:
    """(what, command) for every bad value of every field of a page's command."""
    fields = [k for k in item.command if k != "type"]
    out = []
    for n, field in enumerate(fields):
        for value in bad_inputs.bad_values(item.kinds[field], first=n == 0):
            out.append((f"{field}={value!r:.40}", {**item.command, field: value}))
    if not fields:
        out += [(f"a stray field x={value!r:.40}", {**item.command, "x": value}) for value in bad_inputs.ANY_FIELD]
    out += [(f"a field named {name!r}", {**item.command, name: 1}) for name in bad_inputs.FIELD_NAMES]
    return out


def markup_problems(room: Room, item: kit.PageCommand, field: str, value: str) -> list[str]:
    what = f"{item} with {field}={value!r}"
    try:
        applied = room_command_apply(code=room.code, actor=PRESENTER, command={**item.command, field: value})
    except CommandRejected as exc:
        return [p for p in [refusal_problem(exc, what)] if p]
    sent = json.loads(frames.render_broadcast(applied))["content"] + frames.render_full_frame(fresh(room))
    return [f"{what}: accepted, and the markup is sent as markup"] if value in sent or value in json.loads(frames.render_full_frame(fresh(room)))["content"] else []


@pytest.mark.django_db
@pytest.mark.parametrize("concept_slug", kit.slugs())
def test_bad_input_to_every_command_a_page_sends_is_refused_and_appends_nothing(concept_slug):
    client, room = presenter_room(concept_slug)
    start = room
    problems: list[str] = []
    checked = 0
    for item in shapes(kit.page_commands(page_of(client, room)), each=1):
        for what, command in bad_variants(item):
            before = log_of(room)
            try:
                room_command_apply(code=room.code, actor=PRESENTER, command=command, command_id="bad-1")
            except CommandRejected as exc:
                problems += [p for p in [refusal_problem(exc, f"{item} with {what}")] if p]
                if log_of(room) != before:
                    problems.append(f"{item} with {what}: refused, yet the log grew")
                checked += 1
                continue
            except Exception as exc:  # noqa: BLE001 - what the contract reports
                problems.append(f"{item} with {what}: raised {type(exc).__name__}: {exc}")
            else:
                problems.append(f"{item} with {what}: accepted")
            room = fork(start)
        for field in [f for f, kind in item.kinds.items() if kind == bad_inputs.TEXT]:
            for value in bad_inputs.MARKUP:
                problems += markup_problems(room, item, field, value)
                room = fork(start)
    assert checked > 20, f"{concept_slug}: only {checked} bad inputs checked"
    assert not problems, f"{concept_slug}:\n  " + "\n  ".join(problems[:25]) + (f"\n  ... {len(problems) - 25} more" if len(problems) > 25 else "")


@pytest.mark.django_db
@pytest.mark.parametrize("concept_slug", kit.slugs())
def test_every_command_a_page_sends_is_refused_to_a_viewer_and_to_a_participant_outside_a_round(concept_slug):
    client, room = presenter_room(concept_slug)
    commands = shapes(kit.page_commands(page_of(client, room)), each=1)
    commands += [kit.PageCommand("a round's form", {"type": r.student_command}, {}) for r in REGISTRY[concept_slug].rounds]
    before, problems = log_of(room), []
    for item in commands:
        for actor, message in ((Actor("viewer"), "This screen is view-only."),
                               (Actor("participant", "Ann", "pid-ann"), "Wait for the presenter to open a round."),
                               (Actor("participant"), "Wait for the presenter to open a round.")):
            try:
                room_command_apply(code=room.code, actor=actor, command=dict(item.command))
            except CommandRejected as exc:
                if message not in str(exc):
                    problems.append(f"{item} from a {actor.role}: refused with {str(exc)!r}")
            else:
                problems.append(f"{item} from a {actor.role}: accepted")
    assert log_of(room) == before
    assert not problems, f"{concept_slug}:\n  " + "\n  ".join(problems[:20])
