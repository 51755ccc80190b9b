"""Guided lessons: TOML data that steps a room forward (and back) through commands. The engine's
own tests: they run on the counter board (tests/toyconcept) and its lesson, "A row of slots"
(four steps: an empty board of four slots; Ann and Bo join; a tick and a move; Ann leaves)."""
from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from django.apps import apps
from django.test import Client

from apps.rooms.lessons import LessonError, lessons_for, parse_lesson
from apps.rooms.panels import room_bar_html
from apps.rooms.registry import REGISTRY, get
from apps.rooms.services import room_view

from .conftest import ALICE, refreshed
from .roomkit import assert_refused, folded_json, live_json, room, round_room  # noqa: F401 - fixtures of SLUG's room

SLUG = "counter-board"  # the engine's own toy concept: the rooms (roomkit.room) are counter boards
ROUND = {"type": "round_open", "kind": "own_token"}  # the module's round (roomkit.round_room)
SHIPPED = Path(__file__).resolve().parents[1] / "toyconcept" / "lessons"
SLUGS = sorted(p.stem for p in SHIPPED.glob("*.toml"))
LESSON = "01-a-row-of-slots"


@pytest.fixture
def fresh_lessons():
    """lessons_for() caches per concept: start and end each test without what it cached."""
    lessons_for.cache_clear()
    yield
    lessons_for.cache_clear()


def steps_of(slug: str) -> int:
    return len(next(lesson for lesson in lessons_for(SLUG) if lesson.slug == slug).steps)


# -- the concept's lesson files ------------------------------------------------------------------

def test_lessons_are_found_in_the_folder_of_the_app_that_registered_the_concept(fresh_lessons):
    found = lessons_for(SLUG)
    assert SLUGS == [LESSON]  # the folder is where we think it is
    assert [lesson.slug for lesson in found] == SLUGS
    for lesson in found:
        assert lesson.title and lesson.steps
        assert all(step.title and step.narration for step in lesson.steps)


def test_lessons_follow_the_app_not_a_guess_from_the_slug(monkeypatch, fresh_lessons):
    """The same app registering its concept under a slug unlike its label still finds its lessons."""
    monkeypatch.setitem(REGISTRY, "tokens-in-a-row", replace(get(SLUG), slug="tokens-in-a-row"))
    assert [lesson.slug for lesson in lessons_for("tokens-in-a-row")] == SLUGS


@pytest.mark.django_db
@pytest.mark.parametrize("slug", SLUGS)
def test_lesson_every_step_runs_in_order_on_a_fresh_room(room, apply, slug, fresh_lessons):
    steps = next(lesson for lesson in lessons_for(SLUG) if lesson.slug == slug).steps
    applied = apply(room, {"type": "lesson_start", "lesson": slug})
    assert applied.events[0].kind == "lesson_started"
    for number in range(1, len(steps)):
        assert refreshed(room).lesson["step"] == number - 1
        applied = apply(room, {"type": "lesson_next"})
        assert applied.events[-1].kind == "lesson_step"
        assert applied.events[-1].narration == f"Lesson step {number + 1}: {steps[number].title}."
    stored = refreshed(room).lesson
    assert (stored["slug"], stored["step"], len(stored["starts"])) == (slug, len(steps) - 1, len(steps))
    assert_refused(room, {"type": "lesson_next"}, "last step")


@pytest.mark.django_db
@pytest.mark.parametrize("slug", SLUGS)
def test_lesson_steps_back_through_every_step_to_the_same_pictures(room, apply, slug, fresh_lessons):
    count = steps_of(slug)
    apply(room, {"type": "lesson_start", "lesson": slug})
    seen = [live_json(room)]
    for _ in range(count - 1):
        apply(room, {"type": "lesson_next"})
        seen.append(live_json(room))
    assert len({str(picture) for picture in seen}) == count  # every step changes the board
    for step in reversed(range(count - 1)):
        apply(room, {"type": "lesson_prev"})
        assert refreshed(room).lesson["step"] == step
        assert live_json(room) == seen[step]
    assert_refused(room, {"type": "lesson_prev"}, "first step")
    # Forward again: the same steps draw the same pictures.
    for step in range(1, count):
        apply(room, {"type": "lesson_next"})
        assert live_json(room) == seen[step]


# -- stepping ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_lesson_start_runs_the_first_step_after_a_lesson_started_event(room, apply, fresh_lessons):
    applied = apply(room, {"type": "lesson_start", "lesson": LESSON})
    kinds = [e.kind for e in applied.events]
    assert kinds == ["lesson_started", "scene_loaded", "lesson_step"]
    assert applied.events[0].data == {"slug": LESSON, "title": "A row of slots", "steps": 4}
    assert (applied.after.slots, applied.after.tokens) == (4, ())
    assert refreshed(room).lesson == {"slug": LESSON, "title": "A row of slots", "steps": 4, "step": 0, "starts": [1]}


@pytest.mark.django_db
def test_lesson_prev_rewinds_to_where_the_current_step_began(room, apply, fresh_lessons):
    apply(room, {"type": "add_token", "name": "Zed", "slot": 1})  # the lesson does not start at seq 1
    apply(room, {"type": "lesson_start", "lesson": LESSON})
    apply(room, {"type": "lesson_next"})
    apply(room, {"type": "lesson_next"})
    start = refreshed(room).lesson["starts"][2]
    applied = apply(room, {"type": "lesson_prev"})
    stored = refreshed(room)
    assert [(e.kind, e.data.get("to_seq")) for e in applied.events] == [("rewound", start), ("lesson_step", None)]
    assert stored.position == start
    assert (stored.lesson["step"], stored.lesson["starts"]) == (1, refreshed(room).lesson["starts"][:2])
    assert live_json(room) == folded_json(room, start)
    assert live_json(room)["tokens"] == [["Ann", 0], ["Bo", 2]]


@pytest.mark.django_db
def test_lesson_prev_drops_what_the_presenter_did_during_the_step(room, apply, fresh_lessons):
    apply(room, {"type": "lesson_start", "lesson": LESSON})
    apply(room, {"type": "lesson_next"})
    start = refreshed(room).lesson["starts"][1]
    apply(room, {"type": "add_token", "name": "Q", "slot": 1})
    apply(room, {"type": "lesson_prev"})
    assert live_json(room) == folded_json(room, start)
    assert "Q" not in [name for name, _slot in live_json(room)["tokens"]]


@pytest.mark.django_db
def test_lesson_prev_on_the_first_step_is_refused(room, apply, fresh_lessons):
    apply(room, {"type": "lesson_start", "lesson": LESSON})
    assert_refused(room, {"type": "lesson_prev"}, "first step of the lesson")


@pytest.mark.django_db
def test_lesson_stop_ends_the_lesson_and_keeps_the_picture(room, apply, fresh_lessons):
    apply(room, {"type": "lesson_start", "lesson": LESSON})
    apply(room, {"type": "lesson_next"})
    picture = live_json(room)
    applied = apply(room, {"type": "lesson_stop"})
    assert [(e.kind, e.data) for e in applied.events] == [("lesson_stopped", {"slug": LESSON})]
    assert refreshed(room).lesson is None
    assert live_json(room) == picture


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["lesson_next", "lesson_prev", "lesson_stop"])
def test_lesson_steps_without_a_running_lesson_are_refused(room, kind, fresh_lessons):
    assert_refused(room, {"type": kind}, "No lesson is running")


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["no-such-lesson", "", "../../settings"])
def test_lesson_start_of_an_unknown_lesson_is_refused(room, slug, fresh_lessons):
    assert_refused(room, {"type": "lesson_start", "lesson": slug}, "no such lesson")


@pytest.mark.django_db
def test_lesson_step_that_does_not_fit_the_state_changes_nothing(room, apply, fresh_lessons):
    apply(room, {"type": "lesson_start", "lesson": LESSON})
    apply(room, {"type": "add_token", "name": "Bo", "slot": 1})  # step 2 adds Ann, then Bo: now it cannot
    assert_refused(room, {"type": "lesson_next"}, r"Step 2 \(Two tokens\) could not run: There is already a token called Bo")
    assert refreshed(room).lesson["step"] == 0


@pytest.mark.django_db
def test_lesson_commands_are_the_presenters(round_room, fresh_lessons):
    assert_refused(round_room, {"type": "lesson_start", "lesson": LESSON}, "Only the presenter", ALICE)


@pytest.mark.django_db
def test_lesson_that_loads_a_scene_keeps_the_round_open_and_starts_its_game_afresh(round_room, apply, fresh_lessons):
    # The new scene has none of the class's tokens: their entries (the round's panel, "your
    # token") are over, and each student may take part again in the new scene.
    apply(round_room, {"type": "add_my_token"}, actor=ALICE)
    apply(round_room, {"type": "lesson_start", "lesson": LESSON})
    assert refreshed(round_room).round["open"]
    assert refreshed(round_room).round["entries"] == []
    apply(round_room, {"type": "add_my_token", "key": "alice-in-the-lesson"}, actor=ALICE)
    assert [e["entry"] for e in refreshed(round_room).round["entries"]] == ["alice-in-the-lesson"]


@pytest.mark.django_db
def test_room_bar_says_a_lesson_is_running(room, apply, fresh_lessons):
    def bar() -> str:
        return room_bar_html(room_view(refreshed(room)), get(SLUG))

    assert 'data-lesson="0"' in bar()
    apply(room, {"type": "lesson_start", "lesson": LESSON})
    assert 'data-lesson="1"' in bar()
    apply(room, {"type": "lesson_stop"})
    assert 'data-lesson="0"' in bar()


@pytest.mark.django_db
def test_room_page_shows_the_running_step(room, apply, fresh_lessons):
    apply(room, {"type": "lesson_start", "lesson": LESSON})
    apply(room, {"type": "lesson_next"})
    html = Client().get(f"/r/{room.code}/").content.decode()
    assert "step 2 of 4" in html
    assert "Two tokens" in html


# -- malformed lessons -----------------------------------------------------------------------------

def with_steps(*steps: object) -> dict:
    return {"title": "Broken", "steps": list(steps)}


STEP = {"title": "A step", "narration": "Words.", "commands": []}

MALFORMED = [
    pytest.param({"title": "No steps"}, "needs at least one", id="missing-steps"),
    pytest.param({"title": "Empty", "steps": []}, "needs at least one", id="empty-steps"),
    pytest.param({"title": "Table", "steps": {"title": "x"}}, "needs at least one", id="steps-not-a-list"),
    pytest.param(with_steps("add_token"), "a step is a table", id="step-not-a-table"),
    pytest.param(with_steps({**STEP, "commands": ["add_token"]}), "commands are tables", id="command-not-a-table"),
    pytest.param(with_steps({**STEP, "commands": {"type": "add_token"}}), "commands are tables", id="commands-not-a-list"),
    pytest.param(with_steps({**STEP, "commands": [{"name": "E"}]}), "commands are tables with a 'type'", id="command-without-type"),
    pytest.param(with_steps({**STEP, "commands": [{"type": 3}]}), "commands are tables with a 'type'", id="type-not-text"),
    pytest.param(with_steps({**STEP, "title": ""}), "'title' must be text", id="step-without-title"),
    pytest.param(with_steps({**STEP, "narration": 5}), "'narration' must be text", id="narration-not-text"),
    pytest.param({"steps": [STEP]}, "'title' must be text", id="lesson-without-title"),
]


@pytest.mark.parametrize(("raw", "message"), MALFORMED)
def test_parse_lesson_refuses_a_malformed_lesson(raw, message):
    with pytest.raises(LessonError, match=message):
        parse_lesson("broken", SLUG, raw)


def test_parse_lesson_names_the_lesson_and_step_in_its_error():
    with pytest.raises(LessonError, match=r"lesson counter-board/broken, step 2: a step is a table"):
        parse_lesson("broken", SLUG, with_steps(STEP, "oops"))


def test_parse_lesson_tidies_whitespace_in_text():
    lesson = parse_lesson("ok", SLUG, {"title": "  Two\n  lines ", "steps": [{**STEP, "narration": "a\n   b"}]})
    assert (lesson.title, lesson.steps[0].narration) == ("Two lines", "a b")


# -- DISTVIZ_LESSONS_DIR -------------------------------------------------------------------------

def write_lesson(folder: Path, slug: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.toml"
    path.write_text(body)
    return path


GOOD_TOML = '''title = "Extra lesson"
summary = "From the extra folder."

[[steps]]
title = "Three slots"
narration = "Start small."
commands = [{ type = "load_scene", slots = 3 }]

[[steps]]
title = "Cy joins"
narration = "Cy sits in the last slot."
question = "Where does the next tick move Cy?"
commands = [{ type = "add_token", name = "Cy", slot = 2 }]
'''


def test_lessons_dir_adds_a_folder_per_concept(tmp_path, monkeypatch, fresh_lessons):
    write_lesson(tmp_path / SLUG, "99-extra", GOOD_TOML)
    write_lesson(tmp_path / "other-concept", "ignored", GOOD_TOML)
    monkeypatch.setenv("DISTVIZ_LESSONS_DIR", str(tmp_path))
    found = lessons_for(SLUG)
    assert [lesson.slug for lesson in found] == SLUGS + ["99-extra"]
    extra = found[-1]
    assert (extra.title, [s.title for s in extra.steps], extra.steps[1].question) == (
        "Extra lesson", ["Three slots", "Cy joins"], "Where does the next tick move Cy?")


def test_lessons_dir_that_does_not_exist_adds_nothing(tmp_path, monkeypatch, fresh_lessons):
    monkeypatch.setenv("DISTVIZ_LESSONS_DIR", str(tmp_path / "nowhere"))
    assert [lesson.slug for lesson in lessons_for(SLUG)] == SLUGS


@pytest.mark.django_db
def test_lessons_dir_lesson_runs_in_a_room(tmp_path, monkeypatch, room, apply, fresh_lessons):
    write_lesson(tmp_path / SLUG, "99-extra", GOOD_TOML)
    monkeypatch.setenv("DISTVIZ_LESSONS_DIR", str(tmp_path))
    apply(room, {"type": "lesson_start", "lesson": "99-extra"})
    applied = apply(room, {"type": "lesson_next"})
    assert (applied.after.slots, applied.after.tokens) == (3, (("Cy", 2),))
    html = Client().get(f"/r/{room.code}/").content.decode()
    assert "Extra lesson" in html


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["title = 'Broken'\nsteps = 'not a list'\n", "title = 'Broken\n[[steps]\n"],
                         ids=["not-a-lesson", "not-toml"])
def test_lessons_dir_with_a_malformed_file_does_not_take_the_rooms_down(tmp_path, monkeypatch, room, fresh_lessons, body):
    # One teacher's typo in an extra lesson file must not make every room page of the concept
    # fail (the page and the socket's first frame list the lessons): the broken file is skipped
    # and reported (the log, manage.py check), the shipped lessons and the room keep working.
    write_lesson(tmp_path / SLUG, "98-broken", body)
    monkeypatch.setenv("DISTVIZ_LESSONS_DIR", str(tmp_path))
    response = Client(raise_request_exception=False).get(f"/r/{room.code}/")
    assert response.status_code == 200
    assert "A row of slots" in response.content.decode()


def test_shipped_lesson_files_are_valid_toml_with_only_known_keys():
    # A misspelt key ("comands") would be ignored silently and the step would do nothing. Every
    # registered concept's lesson files (their shape is the engine's, so this checks them all).
    folders = [Path(apps.get_app_config(concept.app).path) / "lessons" for concept in REGISTRY.values()]
    assert SHIPPED in folders and len(folders) >= 4
    for path in (path for folder in folders for path in folder.glob("*.toml")):
        raw = tomllib.loads(path.read_text())
        assert set(raw) <= {"title", "summary", "steps"}, path.name
        for step in raw["steps"]:
            assert set(step) <= {"title", "narration", "question", "commands"}, (path.name, step.get("title"))
