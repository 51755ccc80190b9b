"""Hands-on rounds: the presenter opens one, each student takes part once, the class sees who
took part and each student their own result. Services first, then the same through the consumer
with real sessions. The engine's own tests: they run on the counter board (tests/toyconcept),
whose round adds a token named as the student types it (or after them)."""
from __future__ import annotations

import pytest

from apps.rooms.models import RoomEvent
from apps.rooms.panels import room_bar_html, round_html
from apps.rooms.registry import get
from apps.rooms.services import CommandRejected, room_state, room_view

from .conftest import ALICE, BOB, PARTICIPANT, VIEWER, run_in_threads, student, refreshed
from .roomkit import (assert_refused, code, open_round, presenter, presenter_headers, room, round_entries,  # noqa: F401 - fixtures
                      round_room, slug_presenter)
from .wire import frame, is_my_entry, open_socket, quiet, reply, replies, update

SLUG = "counter-board"  # the engine's own toy concept: its rooms (roomkit.room) and sockets (roomkit.presenter)
ROUND = OWN_TOKEN = {"type": "round_open", "kind": "own_token"}  # the module's round (roomkit.round_room)
MY_TOKEN = {"type": "add_my_token"}  # a student's entry: the round's form, its field left as it is not
ONLY_THE_ROUND = "Only the presenter can do that. In this round you can: add your own token to the board"


# -- opening and closing: the presenter's --------------------------------------------------------

@pytest.mark.django_db
def test_round_open_by_the_presenter_starts_an_empty_round(room, apply):
    applied = apply(room, OWN_TOKEN)
    assert [(e.kind, e.data) for e in applied.events] == [("round_opened", {"kind": "own_token", "title": "Add your own token"})]
    assert refreshed(room).round == {"kind": "own_token", "title": "Add your own token", "open": True, "entries": []}
    assert applied.events[0].narration == "Round open: Add your own token."


@pytest.mark.django_db
@pytest.mark.parametrize(("actor", "message"), [(PARTICIPANT, "Wait for the presenter"), (ALICE, "Wait for the presenter"),
                                                (VIEWER, "view-only")], ids=["participant", "named-participant", "viewer"])
def test_round_open_is_refused_to_anyone_but_the_presenter(room, actor, message):
    assert_refused(room, OWN_TOKEN, message, actor)
    assert refreshed(room).round is None


@pytest.mark.django_db
def test_round_close_is_refused_to_a_participant_in_the_open_round(round_room):
    assert_refused(round_room, {"type": "round_close"}, ONLY_THE_ROUND, ALICE)
    assert refreshed(round_room).round["open"]


@pytest.mark.django_db
def test_round_close_keeps_the_entries_and_counts_them(round_room, apply):
    apply(round_room, MY_TOKEN, actor=ALICE)
    apply(round_room, MY_TOKEN, actor=BOB)
    applied = apply(round_room, {"type": "round_close"})
    stored = refreshed(round_room).round
    assert [(e.kind, e.data) for e in applied.events] == [("round_closed", {"entries": 2})]
    assert applied.events[0].narration == "Round closed with 2 entries."
    assert (stored["open"], [e["name"] for e in stored["entries"]]) == (False, ["Alice", "Bob"])


@pytest.mark.django_db
@pytest.mark.parametrize(("before", "command", "message"), [
    ([], {"type": "round_open", "kind": "lottery"}, "no such round"),
    ([], {"type": "round_open"}, "no such round"),
    ([OWN_TOKEN], OWN_TOKEN, "already open"),
    ([], {"type": "round_close"}, "No round is open"),
    ([OWN_TOKEN, {"type": "round_close"}], {"type": "round_close"}, "No round is open"),
], ids=["unknown-kind", "no-kind", "open-twice", "close-without-round", "close-twice"])
def test_round_commands_that_do_not_fit_are_refused(room, apply, before, command, message):
    for earlier in before:
        apply(room, earlier)
    assert_refused(room, command, message)


# -- a student's entry ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_round_entry_adds_a_token_named_after_the_participant(round_room, apply):
    applied = apply(round_room, MY_TOKEN, actor=ALICE)
    assert [(e.kind, e.data) for e in applied.events] == [
        ("token_added", {"name": "Alice", "slot": 0}),
        ("round_entry", {"pid": "pid-alice", "name": "Alice", "entry": "Alice"}),
    ]
    assert applied.after.slot_of("Alice") == 0
    assert applied.events[1].narration == "Alice took part: Alice."


@pytest.mark.django_db
def test_round_entry_uses_the_token_the_participant_typed(round_room, apply):
    applied = apply(round_room, {**MY_TOKEN, "key": "alice-phone"}, actor=ALICE)
    assert applied.events[0].data == {"name": "alice-phone", "slot": 0}
    assert refreshed(round_room).round["entries"] == [{"pid": "pid-alice", "name": "Alice", "entry": "alice-phone"}]


@pytest.mark.django_db
def test_round_entry_is_once_per_participant(round_room, apply):
    apply(round_room, MY_TOKEN, actor=ALICE)
    assert_refused(round_room, {**MY_TOKEN, "key": "another-token"}, "already taken part in this round", ALICE)
    apply(round_room, MY_TOKEN, actor=BOB)  # another student still can
    assert [e["pid"] for e in refreshed(round_room).round["entries"]] == ["pid-alice", "pid-bob"]


@pytest.mark.django_db
def test_a_round_of_moves_takes_a_participants_later_commands_as_moves_not_entries(round_room, apply, monkeypatch):
    """``RoundSpec.moves`` (the workflow room's students who answer each request of their
    service): the first command makes the entry, later ones go through ``to_command``."""
    import dataclasses

    from apps.rooms import registry

    concept = get(SLUG)
    spec = dataclasses.replace(concept.rounds[0], moves=True,
                               to_command=lambda state, body, name: {"type": "add_token", "name": body.get("key") or name, "slot": 0})
    monkeypatch.setitem(registry.REGISTRY, SLUG, dataclasses.replace(concept, rounds=(spec,)))
    apply(round_room, MY_TOKEN, actor=ALICE)
    applied = apply(round_room, {**MY_TOKEN, "key": "second-move"}, actor=ALICE)
    assert [e.kind for e in applied.events] == ["token_added"]  # a move: no second round_entry
    assert [e["pid"] for e in refreshed(round_room).round["entries"]] == ["pid-alice"]
    assert room_state(refreshed(round_room)).slot_of("second-move") == 0


@pytest.mark.django_db
def test_round_entry_is_once_per_pid_whatever_the_name(round_room, apply):
    # A second tab, or a renamed student: the pid comes from the session, the name does not count.
    apply(round_room, MY_TOKEN, actor=student("Alice", pid="p1"))
    assert_refused(round_room, MY_TOKEN, "already taken part", student("Alicia", pid="p1"))


@pytest.mark.django_db(transaction=True)
def test_round_entry_racing_from_two_tabs_is_taken_once(round_room, apply):
    jobs = [lambda i=i: apply(round_room, {**MY_TOKEN, "key": f"tab{i}"}, actor=ALICE) for i in range(6)]
    outcomes = run_in_threads(jobs)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert all(isinstance(o, CommandRejected) for o in outcomes if isinstance(o, Exception))
    assert len(refreshed(round_room).round["entries"]) == 1
    assert RoomEvent.objects.filter(room=round_room, kind="token_added").count() == 1


@pytest.mark.django_db
def test_round_entry_the_concept_refuses_is_not_counted_and_can_be_retried(round_room, apply):
    apply(round_room, {"type": "add_token", "name": "Ann", "slot": 2})
    assert_refused(round_room, {**MY_TOKEN, "key": "Ann"}, "Your entry could not run: There is already a token called Ann", ALICE)
    assert refreshed(round_room).round["entries"] == []
    apply(round_room, {**MY_TOKEN, "key": "alice-1"}, actor=ALICE)  # not counted as taking part


@pytest.mark.django_db
def test_round_entry_is_refused_when_no_round_was_opened(room):
    assert_refused(room, MY_TOKEN, "Wait for the presenter to open a round", ALICE)


@pytest.mark.django_db
def test_round_entry_is_refused_once_the_round_is_closed(round_room, apply):
    apply(round_room, {"type": "round_close"})
    assert_refused(round_room, MY_TOKEN, "Wait for the presenter to open a round", ALICE)


@pytest.mark.django_db
def test_round_entry_is_refused_while_the_room_is_view_only(round_room, apply):
    apply(round_room, {"type": "view_only", "on": True})
    assert_refused(round_room, MY_TOKEN, "view-only", ALICE)
    apply(round_room, {"type": "view_only", "on": False})
    assert apply(round_room, MY_TOKEN, actor=ALICE).events[0].kind == "token_added"


@pytest.mark.django_db
def test_round_entry_from_a_viewer_is_refused(round_room):
    assert_refused(round_room, MY_TOKEN, "view-only", VIEWER)


@pytest.mark.django_db
@pytest.mark.parametrize("command", [
    {"type": "add_token", "name": "sneaky", "slot": 1},
    {"type": "move_token", "name": "sneaky", "slot": 2},
    {"type": "remove_token", "name": "sneaky"},
    {"type": "tick", "dt_ms": 1000},
    {"type": "load_scene", "slots": 3},
    {"type": "step_back"},
    {"type": "round_close"},
    {"type": "lesson_start", "lesson": "01-a-row-of-slots"},
], ids=lambda c: c["type"])
def test_round_refuses_every_other_command_from_a_participant(round_room, command):
    assert_refused(round_room, command, ONLY_THE_ROUND, ALICE)


@pytest.mark.django_db
def test_round_open_again_clears_the_entries_and_lets_everyone_take_part_again(round_room, apply):
    apply(round_room, MY_TOKEN, actor=ALICE)
    apply(round_room, {"type": "round_close"})
    apply(round_room, OWN_TOKEN)
    assert refreshed(round_room).round["entries"] == []
    apply(round_room, {**MY_TOKEN, "key": "alice-again"}, actor=ALICE)
    assert [e["entry"] for e in refreshed(round_room).round["entries"]] == ["alice-again"]


# -- what the class sees -------------------------------------------------------------------------

@pytest.mark.django_db
def test_room_bar_says_which_round_is_open(room, apply):
    def bar() -> str:
        return room_bar_html(room_view(refreshed(room)), get(SLUG))

    assert 'data-round=""' in bar()
    apply(room, OWN_TOKEN)
    assert 'data-round="own_token"' in bar()
    apply(room, {"type": "round_close"})
    assert 'data-round=""' in bar()


@pytest.mark.django_db
def test_round_panel_shows_the_open_round_and_not_a_closed_one(round_room, apply):
    def panel() -> str:
        stored = refreshed(round_room)
        return round_html(stored, get(SLUG), room_state(stored))

    apply(round_room, MY_TOKEN, actor=ALICE)
    apply(round_room, MY_TOKEN, actor=BOB)
    assert "From the class: Alice, Bob" in panel()
    apply(round_room, {"type": "round_close"})  # its entries stay in the row, off every screen
    assert [e["name"] for e in refreshed(round_room).round["entries"]] == ["Alice", "Bob"]
    assert panel() == '<section id="round" class="panel round" hx-swap-oob="outerMorph"></section>'


# -- through the consumer, with real sessions ------------------------------------------------------

live = pytest.mark.django_db(transaction=True)  # the consumer tests: real transactions


@live
async def test_round_entry_over_the_socket_is_named_from_the_session(code, presenter):
    [(headers, session)] = await open_round(presenter, code, "own_token", "Alice")
    async with open_socket(code, headers) as alice:
        await alice.send_to(text_data=frame(MY_TOKEN))
        got = await update(presenter)
    assert "Alice joined the board in slot 0." in got["content"]
    assert await round_entries(code) == [{"pid": session["pid"], "name": "Alice", "entry": "Alice"}]


@live
async def test_round_entry_over_the_socket_defaults_to_a_name_made_from_the_pid(code, presenter):
    [(headers, session)] = await open_round(presenter, code, "own_token", None)  # opened the page, never gave a name
    async with open_socket(code, headers) as anon:
        await anon.send_to(text_data=frame(MY_TOKEN))
        await update(presenter)
    name = f"Student {session['pid'][:4].upper()}"
    assert await round_entries(code) == [{"pid": session["pid"], "name": name, "entry": name}]


@live
async def test_round_entry_over_the_socket_takes_the_typed_token(code, presenter):
    [(headers, _session)] = await open_round(presenter, code, "own_token", "Alice")
    async with open_socket(code, headers) as alice:
        await alice.send_to(text_data=frame({**MY_TOKEN, "key": "my-laptop"}))
        await update(presenter)
    assert [(e["name"], e["entry"]) for e in await round_entries(code)] == [("Alice", "my-laptop")]


@live
async def test_round_entry_sends_the_sender_alone_its_result(code, presenter):
    [(alice_headers, _), (bob_headers, _)] = await open_round(presenter, code, "own_token", "Alice", "Bob")
    async with open_socket(code, alice_headers) as alice, open_socket(code, bob_headers) as bob:
        await alice.send_to(text_data=frame(MY_TOKEN))
        to_alice = await replies(alice, 2)
        to_bob = await update(bob)
        to_presenter = await update(presenter)
        assert await quiet(bob)
        assert await quiet(presenter)
    broadcast = next(m for m in to_alice if "seq" in m)
    mine = next(m for m in to_alice if is_my_entry(m))
    assert broadcast == to_bob == to_presenter
    assert 'id="my-entry"' not in broadcast["content"]
    assert "Your token Alice is in slot 0." in mine["content"]
    assert "You have taken part in <strong>Add your own token</strong>: Alice." in mine["content"]


@live
async def test_round_entry_from_a_second_tab_of_the_same_browser_is_refused(code, presenter):
    [(headers, _)] = await open_round(presenter, code, "own_token", "Alice")
    async with open_socket(code, headers) as tab1, open_socket(code, headers) as tab2:
        await tab1.send_to(text_data=frame(MY_TOKEN))
        await update(tab1)
        await tab2.send_to(text_data=frame({**MY_TOKEN, "key": "second-try"}))
        answer = await reply(tab2)
        while "error" not in answer:  # tab2 also saw tab1's broadcast
            answer = await reply(tab2)
    assert answer["error"] == "You have already taken part in this round: Alice. One entry each."
    assert len(await round_entries(code)) == 1


@live
async def test_round_opened_broadcast_clears_last_rounds_result_panel(code, presenter):
    await presenter.send_to(text_data=frame(OWN_TOKEN))
    got = await update(presenter)
    assert '<section id="my-entry" class="panel mine" hx-swap-oob="outerMorph"></section>' in got["content"]
    assert 'data-round="own_token"' in got["content"]
    assert '<section id="round" class="panel round" hx-swap-oob="outerMorph"><p>From the class: </p></section>' in got["content"]


@live
async def test_round_entry_resent_after_a_reconnect_is_acknowledged_not_refused(code, presenter):
    # The page's outbox resends an unanswered command with its id when the socket comes back.
    [(headers, _)] = await open_round(presenter, code, "own_token", "Alice")
    async with open_socket(code, headers) as first:
        await first.send_to(text_data=frame(MY_TOKEN, request_id="entry-1"))
        await update(first)
    async with open_socket(code, headers) as again:
        await again.send_to(text_data=frame(MY_TOKEN, request_id="entry-1"))
        assert await reply(again) == {"duplicate": True, "command_id": "entry-1"}
    assert len(await round_entries(code)) == 1
