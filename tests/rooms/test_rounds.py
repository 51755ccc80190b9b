"""Hands-on rounds: the presenter opens one, each student takes part once, the class sees where
its keys landed. Services first, then the same through the consumer with real sessions."""
from __future__ import annotations

import re

import pytest
from channels.db import database_sync_to_async
from django.utils.html import escape

from apps.hashring import concept as hashring
from apps.rooms.models import Room, RoomEvent
from apps.rooms.panels import room_bar_html
from apps.rooms.registry import get
from apps.rooms.services import CommandRejected, room_command_apply, room_state, room_view

from .conftest import ALICE, BOB, OWN_KEY, PARTICIPANT, PRESENTER, VIEWER, run_in_threads, student, refreshed
from .roomkit import assert_refused, code, presenter, presenter_headers, slug_presenter  # noqa: F401 - fixtures
from .wire import astudent, frame, is_my_entry, open_socket, quiet, reply, replies, update

MARKUP = '"><svg onload=alert(1)>'
ROW = re.compile(r'<strong class="lb-node">(.*?)</strong>.*?<strong class="lb-count">(\d+)</strong>'
                 r'<span class="lb-names">(.*?)</span>')

SLUG = "hashring"  # the room the socket fixtures (roomkit) open


def leaderboard(html: str) -> dict[str, tuple[int, list[str]]]:
    """The round panel's rows: node -> (count, names as written in the HTML)."""
    return {node: (int(count), names.split(", ")) for node, count, names in ROW.findall(html)}


def round_panel(room: Room) -> str:
    room = refreshed(room)
    return hashring.round_panel(room_state(room), room.round)


def round_marks(room: Room) -> str:
    room = refreshed(room)
    return hashring.round_marks(room_state(room), room.round)


# -- opening and closing: the presenter's --------------------------------------------------------

@pytest.mark.django_db
def test_round_open_by_the_presenter_starts_an_empty_round(room, apply):
    applied = apply(room, OWN_KEY)
    assert [(e.kind, e.data) for e in applied.events] == [("round_opened", {"kind": "own_key", "title": "Add your own key"})]
    assert refreshed(room).round == {"kind": "own_key", "title": "Add your own key", "open": True, "entries": []}
    assert applied.events[0].narration == "Round open: Add your own key."


@pytest.mark.django_db
@pytest.mark.parametrize("actor", [PARTICIPANT, ALICE, VIEWER], ids=["participant", "named-participant", "viewer"])
def test_round_open_is_refused_to_anyone_but_the_presenter(room, apply, log_size, actor):
    before = log_size(room)
    with pytest.raises(CommandRejected):
        apply(room, OWN_KEY, actor=actor)
    assert log_size(room) == before
    assert refreshed(room).round is None


@pytest.mark.django_db
def test_round_close_is_refused_to_a_participant_in_the_open_round(round_room, apply, log_size):
    assert_refused(round_room, {"type": "round_close"}, "In this round you can: add one key", ALICE)
    assert refreshed(round_room).round["open"]


@pytest.mark.django_db
def test_round_close_keeps_the_entries_and_counts_them(round_room, apply):
    apply(round_room, {"type": "add_my_key"}, actor=ALICE)
    apply(round_room, {"type": "add_my_key"}, actor=BOB)
    applied = apply(round_room, {"type": "round_close"})
    stored = refreshed(round_room).round
    assert [(e.kind, e.data) for e in applied.events] == [("round_closed", {"entries": 2})]
    assert applied.events[0].narration == "Round closed with 2 entries."
    assert (stored["open"], [e["name"] for e in stored["entries"]]) == (False, ["Alice", "Bob"])


@pytest.mark.django_db
@pytest.mark.parametrize(("before", "command", "message"), [
    ([], {"type": "round_open", "kind": "lottery"}, "no such round"),
    ([], {"type": "round_open"}, "no such round"),
    ([OWN_KEY], OWN_KEY, "already open"),
    ([], {"type": "round_close"}, "No round is open"),
    ([OWN_KEY, {"type": "round_close"}], {"type": "round_close"}, "No round is open"),
], ids=["unknown-kind", "no-kind", "open-twice", "close-without-round", "close-twice"])
def test_round_commands_that_do_not_fit_are_refused(room, apply, log_size, before, command, message):
    for earlier in before:
        apply(room, earlier)
    size = log_size(room)
    with pytest.raises(CommandRejected, match=message):
        apply(room, command)
    assert log_size(room) == size


# -- a student's entry ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_round_entry_adds_a_key_named_after_the_participant(round_room, apply):
    applied = apply(round_room, {"type": "add_my_key"}, actor=ALICE)
    assert [(e.kind, e.data) for e in applied.events] == [
        ("key_added", {"key": "Alice"}),
        ("round_entry", {"pid": "pid-alice", "name": "Alice", "entry": "Alice"}),
    ]
    assert "Alice" in applied.after.key_set
    assert applied.events[1].narration == "Alice took part: Alice."


@pytest.mark.django_db
def test_round_entry_uses_the_key_the_participant_typed(round_room, apply):
    applied = apply(round_room, {"type": "add_my_key", "key": "alice-phone"}, actor=ALICE)
    assert applied.events[0].data == {"key": "alice-phone"}
    assert refreshed(round_room).round["entries"] == [{"pid": "pid-alice", "name": "Alice", "entry": "alice-phone"}]


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["", "   ", 7, ["x"], None], ids=["empty", "blank", "number", "list", "null"])
def test_round_entry_without_a_usable_typed_key_uses_the_name(round_room, apply, typed):
    applied = apply(round_room, {"type": "add_my_key", "key": typed}, actor=ALICE)
    assert applied.events[0].data == {"key": "Alice"}


@pytest.mark.django_db
def test_round_entry_is_once_per_participant(round_room, apply, log_size):
    apply(round_room, {"type": "add_my_key"}, actor=ALICE)
    assert_refused(round_room, {"type": "add_my_key", "key": "another-key"}, "already taken part in this round", ALICE)
    apply(round_room, {"type": "add_my_key"}, actor=BOB)  # another student still can
    assert [e["pid"] for e in refreshed(round_room).round["entries"]] == ["pid-alice", "pid-bob"]


@pytest.mark.django_db
def test_round_entry_is_once_per_pid_whatever_the_name(round_room, apply):
    # A second tab, or a renamed student: the pid comes from the session, the name does not count.
    apply(round_room, {"type": "add_my_key"}, actor=student("Alice", pid="p1"))
    with pytest.raises(CommandRejected, match="already taken part"):
        apply(round_room, {"type": "add_my_key"}, actor=student("Alicia", pid="p1"))


@pytest.mark.django_db(transaction=True)
def test_round_entry_racing_from_two_tabs_is_taken_once(round_room, apply):
    jobs = [lambda i=i: apply(round_room, {"type": "add_my_key", "key": f"tab{i}"}, actor=ALICE) for i in range(6)]
    outcomes = run_in_threads(jobs)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert all(isinstance(o, CommandRejected) for o in outcomes if isinstance(o, Exception))
    assert len(refreshed(round_room).round["entries"]) == 1
    assert RoomEvent.objects.filter(room=round_room, kind="key_added").count() == 1


@pytest.mark.django_db
def test_round_entry_of_a_key_already_on_the_ring_is_refused_and_can_be_retried(round_room, apply, log_size):
    assert_refused(round_room, {"type": "add_my_key", "key": "user1"}, "Your entry could not run: The key user1 is already on the ring", ALICE)
    assert refreshed(round_room).round["entries"] == []
    apply(round_room, {"type": "add_my_key", "key": "alice-1"}, actor=ALICE)  # not counted as taking part


@pytest.mark.django_db
def test_round_entry_is_refused_when_no_round_was_opened(room, apply, log_size):
    assert_refused(room, {"type": "add_my_key"}, "Wait for the presenter to open a round", ALICE)


@pytest.mark.django_db
def test_round_entry_is_refused_once_the_round_is_closed(round_room, apply, log_size):
    apply(round_room, {"type": "round_close"})
    assert_refused(round_room, {"type": "add_my_key"}, "Wait for the presenter to open a round", ALICE)


@pytest.mark.django_db
def test_round_entry_is_refused_while_the_room_is_view_only(round_room, apply, log_size):
    apply(round_room, {"type": "view_only", "on": True})
    assert_refused(round_room, {"type": "add_my_key"}, "view-only", ALICE)
    apply(round_room, {"type": "view_only", "on": False})
    assert apply(round_room, {"type": "add_my_key"}, actor=ALICE).events[0].kind == "key_added"


@pytest.mark.django_db
def test_round_entry_from_a_viewer_is_refused(round_room, apply):
    with pytest.raises(CommandRejected, match="view-only"):
        apply(round_room, {"type": "add_my_key"}, actor=VIEWER)


@pytest.mark.django_db
@pytest.mark.parametrize("command", [
    {"type": "add_key", "key": "sneaky"},
    {"type": "lookup", "key": "user1"},
    {"type": "add_node", "name": "Z"},
    {"type": "remove_key", "key": "user1"},
    {"type": "add_random_keys", "count": 1000},
    {"type": "step_back"},
    {"type": "round_close"},
    {"type": "lesson_start", "lesson": "01-why-modulo-hurts"},
], ids=lambda c: c["type"])
def test_round_refuses_every_other_command_from_a_participant(round_room, apply, log_size, command):
    assert_refused(round_room, command, "Only the presenter can do that. In this round you can: add one key", ALICE)


@pytest.mark.django_db
def test_round_open_again_clears_the_entries_and_lets_everyone_take_part_again(round_room, apply):
    apply(round_room, {"type": "add_my_key"}, actor=ALICE)
    apply(round_room, {"type": "round_close"})
    apply(round_room, OWN_KEY)
    assert refreshed(round_room).round["entries"] == []
    apply(round_room, {"type": "add_my_key", "key": "alice-again"}, actor=ALICE)
    assert [e["entry"] for e in refreshed(round_room).round["entries"]] == ["alice-again"]


# -- what the class sees -------------------------------------------------------------------------

@pytest.mark.django_db
def test_round_panel_groups_the_entries_by_the_node_that_stores_them(round_room, apply):
    names = ["Ada", "Bo", "Cy", "Di", "Ed", "Flo", "Gus"]
    for name in names:
        apply(round_room, {"type": "add_my_key"}, actor=student(name))
    state = room_state(refreshed(round_room))
    expected: dict[str, list[str]] = {}
    for name in names:
        expected.setdefault(state.owner_of(name), []).append(name)
    board = leaderboard(round_panel(round_room))
    assert board == {node: (len(group), group) for node, group in expected.items()}
    assert "<strong>7</strong> keys from the class" in round_panel(round_room)


@pytest.mark.django_db
def test_round_panel_follows_ownership_when_a_node_leaves(round_room, apply):
    for name in ("Ada", "Bo", "Cy", "Di", "Ed"):
        apply(round_room, {"type": "add_my_key"}, actor=student(name))
    gone = room_state(refreshed(round_room)).owner_of("Ada")
    apply(round_room, {"type": "remove_node", "name": gone})
    board = leaderboard(round_panel(round_room))
    state = room_state(refreshed(round_room))
    assert gone not in board
    assert "Ada" in board[state.owner_of("Ada")][1]


@pytest.mark.django_db
def test_round_panel_lists_a_removed_key_apart(round_room, apply):
    apply(round_room, {"type": "add_my_key"}, actor=ALICE)
    apply(round_room, {"type": "remove_key", "key": "Alice"})
    assert leaderboard(round_panel(round_room)) == {"(removed)": (1, ["Alice"])}


@pytest.mark.django_db
def test_round_panel_escapes_names(round_room, apply):
    apply(round_room, {"type": "add_my_key", "key": "k1"}, actor=student(MARKUP, pid="p-markup"))
    html = round_panel(round_room)
    assert MARKUP not in html
    assert "<svg onload" not in html
    assert [names for _count, names in leaderboard(html).values()] == [[escape(MARKUP)]]


@pytest.mark.django_db
def test_round_marks_label_each_key_on_the_ring_with_its_students_name(round_room, apply):
    apply(round_room, {"type": "add_my_key"}, actor=ALICE)
    apply(round_room, {"type": "add_my_key", "key": "bobs-key"}, actor=BOB)
    apply(round_room, {"type": "remove_key", "key": "bobs-key"})  # off the ring: no mark
    marks = round_marks(round_room)
    assert marks.count("class='round-mark'") == 1
    assert re.findall(r"<text [^>]*>(.*?)</text>", marks) == ["Alice"]


@pytest.mark.django_db
def test_round_marks_escape_names(round_room, apply):
    apply(round_room, {"type": "add_my_key", "key": "k1"}, actor=student(MARKUP, pid="p-markup"))
    marks = round_marks(round_room)
    assert "<svg onload" not in marks
    assert re.findall(r"<text [^>]*>(.*?)</text>", marks) == [escape(MARKUP)]


@pytest.mark.django_db
def test_room_bar_says_which_round_is_open(room, apply):
    def bar() -> str:
        return room_bar_html(room_view(refreshed(room)), get("hashring"))

    assert 'data-round=""' in bar()
    apply(room, OWN_KEY)
    assert 'data-round="own_key"' in bar()
    apply(room, {"type": "round_close"})
    assert 'data-round=""' in bar()


# -- through the consumer, with real sessions ------------------------------------------------------

live = pytest.mark.django_db(transaction=True)  # the consumer tests: real transactions


@database_sync_to_async
def open_round(code: str) -> None:
    room_command_apply(code=code, actor=PRESENTER, command=OWN_KEY)


@database_sync_to_async
def round_entries(code: str) -> list[dict]:
    return Room.objects.get(code=code).round["entries"]


@database_sync_to_async
def owner_of(code: str, key: str) -> str | None:
    return room_state(Room.objects.get(code=code)).owner_of(key)


@live
async def test_round_entry_over_the_socket_is_named_from_the_session(code, presenter):
    headers, session = await astudent(code, "Alice")
    await open_round(code)
    async with open_socket(code, headers) as alice:
        await alice.send_to(text_data=frame({"type": "add_my_key"}))
        got = await update(presenter)
    assert "Added key Alice" in got["content"]
    assert await round_entries(code) == [{"pid": session["pid"], "name": "Alice", "entry": "Alice"}]


@live
async def test_round_entry_over_the_socket_defaults_to_a_name_made_from_the_pid(code, presenter):
    headers, session = await astudent(code)  # opened the page, never gave a name
    await open_round(code)
    async with open_socket(code, headers) as anon:
        await anon.send_to(text_data=frame({"type": "add_my_key"}))
        await update(presenter)
    name = f"Student {session['pid'][:4].upper()}"
    assert await round_entries(code) == [{"pid": session["pid"], "name": name, "entry": name}]


@live
async def test_round_entry_over_the_socket_takes_the_typed_key(code, presenter):
    headers, _session = await astudent(code, "Alice")
    await open_round(code)
    async with open_socket(code, headers) as alice:
        await alice.send_to(text_data=frame({"type": "add_my_key", "key": "my-laptop"}))
        await update(presenter)
    assert [(e["name"], e["entry"]) for e in await round_entries(code)] == [("Alice", "my-laptop")]


@live
async def test_round_entry_sends_the_sender_alone_its_result(code, presenter):
    alice_headers, _ = await astudent(code, "Alice")
    bob_headers, _ = await astudent(code, "Bob")
    await open_round(code)
    async with open_socket(code, alice_headers) as alice, open_socket(code, bob_headers) as bob:
        await alice.send_to(text_data=frame({"type": "add_my_key"}))
        to_alice = await replies(alice, 2)
        to_bob = await update(bob)
        to_presenter = await update(presenter)
        assert await quiet(bob)
        assert await quiet(presenter)
    broadcast = next(m for m in to_alice if "seq" in m)
    mine = next(m for m in to_alice if is_my_entry(m))
    assert broadcast == to_bob == to_presenter
    assert 'id="my-entry"' not in broadcast["content"]
    assert "Your key: Alice" in mine["content"]
    assert f"so <strong>{await owner_of(code, 'Alice')}</strong> stores it" in mine["content"]


@live
async def test_round_entry_from_a_second_tab_of_the_same_browser_is_refused(code, presenter):
    headers, _ = await astudent(code, "Alice")
    await open_round(code)
    async with open_socket(code, headers) as tab1, open_socket(code, headers) as tab2:
        await tab1.send_to(text_data=frame({"type": "add_my_key"}))
        await update(tab1)
        await tab2.send_to(text_data=frame({"type": "add_my_key", "key": "second-try"}))
        answer = await reply(tab2)
        while "error" not in answer:  # tab2 also saw tab1's broadcast
            answer = await reply(tab2)
    assert answer["error"] == "You have already taken part in this round: Alice. One entry each."
    assert len(await round_entries(code)) == 1


@live
async def test_round_opened_broadcast_clears_last_rounds_result_panel(code, presenter):
    await presenter.send_to(text_data=frame(OWN_KEY))
    got = await update(presenter)
    assert '<section id="my-entry" class="panel mine" hx-swap-oob="outerMorph"></section>' in got["content"]
    assert 'data-round="own_key"' in got["content"]
    assert 'id="round"' in got["content"]


@live
async def test_round_entry_resent_after_a_reconnect_is_acknowledged_not_refused(code, presenter):
    # The page's outbox resends an unanswered command with its id when the socket comes back.
    headers, _ = await astudent(code, "Alice")
    await open_round(code)
    async with open_socket(code, headers) as first:
        await first.send_to(text_data=frame({"type": "add_my_key"}, request_id="entry-1"))
        await update(first)
    async with open_socket(code, headers) as again:
        await again.send_to(text_data=frame({"type": "add_my_key"}, request_id="entry-1"))
        assert await reply(again) == {"duplicate": True, "command_id": "entry-1"}
    assert len(await round_entries(code)) == 1
