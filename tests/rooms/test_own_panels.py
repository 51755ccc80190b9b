"""A student's own panel stays true (issue 9, "Rounds and controls that stay true").

Over real sockets with real sessions, several students in one room: each one's ``#my-entry``
follows their part of the state (the log's partitions after every rebalance, the ring's owner
after a node goes), it reaches only that person (every tab of theirs, nobody else), it is
drawn for the round's entries only, and it goes away on every screen when the round closes,
a scene is loaded, or the game starts afresh. A student who has taken part sees that they
have, on the page and after a reconnect, and a second try says so.
"""
from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, AsyncIterator

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.rooms import frames, personal
from apps.rooms.models import Room, RoomEvent
from apps.rooms.registry import REGISTRY
from apps.rooms.services import room_command_apply, room_state

from .conftest import ORIGIN, PRESENTER, created_as_presenter
from .wire import astudent, connect, frame, is_my_entry, open_socket, quiet, reply, update

live = pytest.mark.django_db(transaction=True)

CLEARED_ENTRY = '<section id="my-entry" class="panel mine" hx-swap-oob="outerMorph"></section>'
CLEARED_STATUS = '<p id="my-round" class="round-done" role="status" hx-swap-oob="outerMorph"></p>'
OWNS = re.compile(r"you own <strong>(.*?)</strong>")


def headers_of(client: Client) -> list[tuple[bytes, bytes]]:
    return [ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


@database_sync_to_async
def presenter_applies(code: str, command: dict[str, Any]) -> None:
    room_command_apply(code=code, actor=PRESENTER, command=command)


@database_sync_to_async
def state_json(code: str) -> dict[str, Any]:
    room = Room.objects.get(code=code)
    return REGISTRY[room.concept].state_json(room_state(room))


@database_sync_to_async
def log_size(code: str) -> tuple[int, int]:
    return RoomEvent.objects.filter(room__code=code).count(), Room.objects.get(code=code).seq


async def own_panel(comm: WebsocketCommunicator) -> dict[str, Any]:
    """The next frame for this person alone (passing the broadcasts before it)."""
    while True:
        msg = await reply(comm)
        assert "error" not in msg, msg["error"]
        if is_my_entry(msg):
            return msg


async def update_after(comm: WebsocketCommunicator, seq: int) -> dict[str, Any]:
    """The broadcast of the first command after event ``seq`` (passing earlier ones)."""
    while True:
        got = await update(comm)
        if got["from"] > seq:
            return got


async def next_broadcast_then_nothing_own(comm: WebsocketCommunicator) -> dict[str, Any]:
    """The next broadcast, and no own panel after it (the relay writes one right behind it)."""
    got = await update(comm)
    assert await quiet(comm), "a frame of someone's own followed a broadcast that changed nothing of theirs"
    return got


def owned(content: str) -> list[str]:
    found = OWNS.search(content)
    return found.group(1).split(", ") if found else []


def class_members(doc: dict[str, Any]) -> dict[str, list[str]]:
    group = next(g for g in doc["derived"]["groups"] if g["name"] == "class")
    return {m["name"]: [f"P{p}" for p in m["partitions"]] for m in group["members"]}


# -- the log: the partitions a student owns NOW -------------------------------------------------

@pytest.fixture
def log_room(transactional_db: None) -> tuple[Client, str]:
    return created_as_presenter("log-partitions")


@pytest.fixture
async def log_presenter(log_room) -> AsyncIterator[WebsocketCommunicator]:
    client, code = log_room
    async with open_socket(code, headers_of(client)) as comm:
        yield comm


@live
async def test_after_each_rebalance_every_student_sees_the_partitions_they_own_now(log_room, log_presenter):
    _client, code = log_room
    await presenter_applies(code, {"type": "round_open", "kind": "join_group"})
    students = {name: (await astudent(code, name))[0] for name in ("Ann", "Bo", "Cy")}
    async with open_socket(code, students["Ann"]) as ann, open_socket(code, students["Bo"]) as bo, \
            open_socket(code, students["Cy"]) as cy:
        socks = {"Ann": ann, "Bo": bo, "Cy": cy}
        seen: dict[str, list[str]] = {}
        for joined, name in enumerate(("Ann", "Bo", "Cy"), start=1):
            await socks[name].send_to(text_data=frame({"type": "join_my_group"}))
            await next_broadcast_then_nothing_own(log_presenter)  # the presenter has no panel of their own
            truth = class_members(await state_json(code))
            assert len(truth) == joined
            for who in list(socks)[:joined]:  # everyone in the group so far: the newcomer and each one moved
                panel = (await own_panel(socks[who]))["content"]
                assert f"You joined as {who}" in panel
                assert owned(panel) == truth[who], (who, owned(panel), truth)
                seen[who] = owned(panel)
            for who in list(socks)[joined:]:  # not in the round yet: the broadcast only
                await next_broadcast_then_nothing_own(socks[who])
    assert seen == {"Ann": ["P0"], "Bo": ["P1"], "Cy": ["P2"]}


@live
async def test_a_students_panel_is_sent_only_when_it_changed(log_room, log_presenter):
    _client, code = log_room
    await presenter_applies(code, {"type": "round_open", "kind": "join_group"})
    ann_headers, _ = await astudent(code, "Ann")
    async with open_socket(code, ann_headers) as ann:
        await ann.send_to(text_data=frame({"type": "join_my_group"}))
        assert owned((await own_panel(ann))["content"]) == ["P0", "P1", "P2"]
        # A record produced changes the state but not what Ann owns: no panel of hers.
        await log_presenter.send_to(text_data=frame({"type": "produce", "producer": "producer", "key": "order-7"}))
        await next_broadcast_then_nothing_own(ann)


# -- the ring: the owner of a student's key after a node goes ------------------------------------

@pytest.fixture
def ring_room(transactional_db: None) -> tuple[Client, str]:
    return created_as_presenter("hashring")


@live
async def test_a_students_key_panel_names_the_new_owner_when_its_node_goes(ring_room):
    client, code = ring_room
    await presenter_applies(code, {"type": "round_open", "kind": "own_key"})
    alice_headers, _ = await astudent(code, "Alice")
    async with open_socket(code, headers_of(client)) as presenter, open_socket(code, alice_headers) as alice:
        await alice.send_to(text_data=frame({"type": "add_my_key"}))
        first = (await own_panel(alice))["content"]
        doc = await state_json(code)
        nodes = [n["name"] for n in doc["nodes"]]
        owner = re.search(r"so <strong>(\w+)</strong> stores it", first).group(1)
        assert owner in nodes
        await presenter.send_to(text_data=frame({"type": "remove_node", "owner_of": "Alice"}))
        second = (await own_panel(alice))["content"]
        new_owner = re.search(r"so <strong>(\w+)</strong> stores it", second).group(1)
        assert new_owner != owner and new_owner in nodes
        room = await database_sync_to_async(Room.objects.get)(code=code)
        assert new_owner == (await database_sync_to_async(room_state)(room)).owner_of("Alice")
        # A look-up changes the state (the highlighted key), not Alice's placement: nothing of hers.
        await presenter.send_to(text_data=frame({"type": "lookup", "key": "user1"}))
        await next_broadcast_then_nothing_own(alice)


# -- every tab of the person, nobody else ---------------------------------------------------------

@live
async def test_a_panel_reaches_every_tab_of_its_person_and_no_one_else(ring_room):
    client, code = ring_room
    await presenter_applies(code, {"type": "round_open", "kind": "own_key"})
    alice_headers, _ = await astudent(code, "Alice")
    bob_headers, _ = await astudent(code, "Bob")
    async with open_socket(code, alice_headers) as tab1, open_socket(code, alice_headers) as tab2, \
            open_socket(code, bob_headers) as bob, open_socket(code, headers_of(client)) as presenter:
        await tab1.send_to(text_data=frame({"type": "add_my_key"}))
        for tab in (tab1, tab2):
            assert "Your key: Alice" in (await own_panel(tab))["content"]
        for other in (bob, presenter):
            await next_broadcast_then_nothing_own(other)


# -- the game is over: on every screen ---------------------------------------------------------------

@live
@pytest.mark.parametrize("ending", [
    {"type": "round_close"},
    {"type": "load_scene", "nodes": ["P", "Q"], "vnodes": 4, "random_keys": 10, "seed": "s"},
    {"type": "lesson_start", "lesson": "01-why-modulo-hurts"},
], ids=["round-closed", "scene-loaded", "lesson-loads-a-scene"])
@pytest.mark.parametrize("kept", [True, False], ids=["last-picture-kept", "last-picture-drawn-again"])
async def test_when_the_game_ends_boards_marks_and_own_panels_go_away_on_every_screen(ring_room, ending, kept):
    """``kept=False``: this process no longer has the room's last picture (another process drew
    it, or it was evicted), so the picture before is drawn again, from the room as it was."""
    client, code = ring_room
    await presenter_applies(code, {"type": "round_open", "kind": "own_key"})
    alice_headers, _ = await astudent(code, "Alice")
    bob_headers, _ = await astudent(code, "Bob")
    async with open_socket(code, alice_headers) as alice, open_socket(code, bob_headers) as bob, \
            open_socket(code, headers_of(client)) as presenter:
        await alice.send_to(text_data=frame({"type": "add_my_key"}))
        await own_panel(alice)
        await bob.send_to(text_data=frame({"type": "add_my_key"}))
        await own_panel(bob)
        seq = (await log_size(code))[1]
        got = await update_after(presenter, seq - 2)  # Bob's entry, as the presenter saw it
        assert "class='round-mark'" in got["content"] and "lb-names" in got["content"]
        if not kept:
            frames._LAST.clear()
        await presenter.send_to(text_data=frame(ending))
        ends = [await update_after(comm, seq) for comm in (alice, bob, presenter)]
        for got in ends:
            content = got["content"]
            assert CLEARED_ENTRY in content and CLEARED_STATUS in content
            assert "round-mark" not in content and "lb-names" not in content  # no labels, no leaderboard
            assert content.count('hx-swap-oob="delete" id="rm-') == 2  # both marks leave the ring
        assert ends[0] == ends[1] == ends[2]  # one frame for all
        for comm in (alice, bob):
            assert await quiet(comm)  # and nothing of their own brings a panel back
    # A reconnecting page is told the same.
    async with open_socket(code, alice_headers) as again:
        await again.send_to(text_data=frame({"type": "sync"}))
        full = await update(again)
    assert CLEARED_ENTRY in full["content"] and "Your key: Alice" not in full["content"]


@live
async def test_a_closed_rounds_board_is_not_on_the_page_any_more(ring_room):
    client, code = ring_room
    await presenter_applies(code, {"type": "round_open", "kind": "own_key"})
    alice_headers, _ = await astudent(code, "Alice")
    async with open_socket(code, alice_headers) as alice:
        await alice.send_to(text_data=frame({"type": "add_my_key"}))
        await own_panel(alice)
    await presenter_applies(code, {"type": "round_close"})
    page = (await database_sync_to_async(client.get)(f"/r/{code}/")).content.decode()
    assert "round-mark" not in page and "lb-names" not in page and "Round closed:" not in page


# -- taken part: done, not a form to be refused ----------------------------------------------------

@live
async def test_a_student_who_took_part_sees_it_on_the_page_after_a_reload_and_on_a_reconnect(ring_room):
    _client, code = ring_room
    await presenter_applies(code, {"type": "round_open", "kind": "own_key"})
    student = Client()
    await database_sync_to_async(student.get)(f"/r/{code}/")
    await database_sync_to_async(student.post)(f"/r/{code}/name/", {"name": "Alice"})
    page = (await database_sync_to_async(student.get)(f"/r/{code}/")).content.decode()
    assert 'id="my-round"' in page and "You have taken part" not in page  # not yet
    async with open_socket(code, headers_of(student)) as alice:
        await alice.send_to(text_data=frame({"type": "add_my_key", "key": "alice-key"}))
        mine = (await own_panel(alice))["content"]
    assert "Your key: alice-key" in mine
    assert "You have taken part in <strong>Add your own key</strong>: alice-key." in mine
    # Reloaded: the page itself says so (and carries the panel that hides the form).
    page = (await database_sync_to_async(student.get)(f"/r/{code}/")).content.decode()
    assert "Your key: alice-key" in page
    assert "You have taken part in <strong>Add your own key</strong>: alice-key." in page
    # Reconnected: the full frame says so too.
    comm, first = await connect(f"/ws/r/{code}/", headers_of(student))
    try:
        assert "Your key: alice-key" in first["content"] and "You have taken part" in first["content"]
        # A second try is refused with what they entered, and appends nothing.
        before = await log_size(code)
        await comm.send_to(text_data=frame({"type": "add_my_key", "key": "again"}))
        answer = await reply(comm)
    finally:
        await comm.disconnect()
    assert answer["error"] == "You have already taken part in this round: alice-key. One entry each."
    assert await log_size(code) == before


@live
async def test_the_presenter_and_other_students_get_no_panel_in_their_full_frame(ring_room):
    client, code = ring_room
    await presenter_applies(code, {"type": "round_open", "kind": "own_key"})
    alice_headers, _ = await astudent(code, "Alice")
    bob_headers, _ = await astudent(code, "Bob")
    async with open_socket(code, alice_headers) as alice:
        await alice.send_to(text_data=frame({"type": "add_my_key"}))
        await own_panel(alice)
    for headers in (bob_headers, headers_of(client)):
        comm, first = await connect(f"/ws/r/{code}/", headers)
        await comm.disconnect()
        assert CLEARED_ENTRY in first["content"] and "Your key" not in first["content"]


@live
async def test_a_socket_without_the_pages_session_cannot_take_part(ring_room):
    _client, code = ring_room
    await presenter_applies(code, {"type": "round_open", "kind": "own_key"})
    before = await log_size(code)
    for _ in range(2):  # a new socket is not a new person
        async with open_socket(code, [ORIGIN]) as nobody:
            await nobody.send_to(text_data=frame({"type": "add_my_key", "key": "sneaky"}))
            answer = await reply(nobody)
        assert answer["error"].startswith("Open the room's page (or reload it) to take part")
    assert await log_size(code) == before


# -- the lock race: a student's result once the race runs ----------------------------------------

@pytest.fixture
def lock_room(transactional_db: None) -> tuple[Client, str]:
    return created_as_presenter("lock-quorums")


@live
async def test_a_panel_that_shows_the_race_result_reaches_each_racer_when_the_race_runs(lock_room, monkeypatch):
    # The engine's part: whatever the concept's own panel depends on, a change reaches its
    # student. Here a panel that names the student's result (as the lock room's should).
    concept = REGISTRY["lock-quorums"]

    def my_entry(state: Any, entry: dict[str, Any]) -> str:
        result = state.race.result
        row = next((c for c in (result or {}).get("contenders", []) if c["name"] == entry["entry"]), None)
        won = row is not None and any(t.get("acquired") for t in row["tries"])
        said = "waiting" if row is None else ("won" if won else "lost")
        return f'<section id="my-entry" hx-swap-oob="outerMorph"><p class="result">{entry["entry"]}: {said}</p></section>'

    monkeypatch.setitem(REGISTRY, "lock-quorums", dataclasses.replace(concept, my_entry=my_entry))
    personal.PANELS.clear()
    client, code = lock_room
    await presenter_applies(code, {"type": "round_open", "kind": "race"})
    racers = {name: (await astudent(code, name))[0] for name in ("Ann", "Bo")}
    async with open_socket(code, racers["Ann"]) as ann, open_socket(code, racers["Bo"]) as bo, \
            open_socket(code, headers_of(client)) as presenter:
        for comm in (ann, bo):
            await comm.send_to(text_data=frame({"type": "race_me"}))
            assert ": waiting" in (await own_panel(comm))["content"]
        await presenter.send_to(text_data=frame({"type": "race_start"}))
        results = {name: (await own_panel(comm))["content"] for name, comm in (("Ann", ann), ("Bo", bo))}
        winner = (await state_json(code))["derived"]["race_winner"]
        assert {name: ("won" if ": won" in c else "lost") for name, c in results.items()} == {
            name: ("won" if name == winner else "lost") for name in results}
        # A new race: every panel goes, on every screen, and they may race again.
        seq = (await log_size(code))[1]
        await presenter.send_to(text_data=frame({"type": "race_reset"}))
        for comm in (ann, bo, presenter):
            assert CLEARED_ENTRY in (await update_after(comm, seq))["content"]
    personal.PANELS.clear()


# -- the cost: drawn for the entries, once per state --------------------------------------------------

RING_BASIS = object()  # the ring's own my_entry_basis


def ring_round_with_counted_panels(monkeypatch: pytest.MonkeyPatch, students: list[tuple[str, str]],
                                   basis: Any = RING_BASIS) -> tuple[str, list[str]]:
    """A hash ring room with an open round and a key for each (name, person) in ``students``,
    whose own panels are counted as they are drawn; ``basis`` replaces the ring's my_entry_basis
    (None: no basis)."""
    from apps.rooms.frames import render_outgoing
    from apps.rooms.services import Actor, room_create

    calls: list[str] = []
    concept = REGISTRY["hashring"]
    draw = concept.my_entry

    def counted(state: Any, entry: dict[str, Any]) -> str:
        calls.append(entry["entry"])
        return draw(state, entry)

    changes: dict[str, Any] = {"my_entry": counted} if basis is RING_BASIS else {"my_entry": counted, "my_entry_basis": basis}
    monkeypatch.setitem(REGISTRY, "hashring", dataclasses.replace(concept, **changes))
    personal.PANELS.clear()
    room, _ = room_create(concept="hashring")
    room_command_apply(code=room.code, actor=PRESENTER, command={"type": "round_open", "kind": "own_key"})
    for name, person in students:
        render_outgoing(room_command_apply(code=room.code, actor=Actor("participant", name, person),
                                           command={"type": "add_my_key"}))
    calls.clear()
    return room.code, calls


def presenter_does(code: str, command: dict[str, Any]) -> Any:
    from apps.rooms.frames import render_outgoing

    return render_outgoing(room_command_apply(code=code, actor=PRESENTER, command=command))


def students(n: int) -> list[tuple[str, str]]:
    return [(f"S{i}", f"p{i}") for i in range(n)]


@pytest.mark.django_db
def test_with_a_basis_a_panel_is_drawn_only_when_its_basis_moved(monkeypatch):
    """A concept may say what a panel depends on (``my_entry_basis``): then a change of state
    that does not move it (a tick, a look-up) draws nothing, and one that does draws that panel."""
    def basis(state: Any, entry: dict[str, Any]) -> Any:
        return state.owner_of(entry["entry"]) if entry["entry"] in state.key_set else None

    code, calls = ring_round_with_counted_panels(monkeypatch, [("Ada", "p-ada")], basis=basis)
    out = presenter_does(code, {"type": "lookup", "key": "user1"})
    assert (calls, out.mine) == ([], {})
    owner = room_state(Room.objects.get(code=code)).owner_of("Ada")
    out = presenter_does(code, {"type": "remove_node", "name": owner})
    assert calls == ["Ada"] and list(out.mine) == ["p-ada"]
    personal.PANELS.clear()


@pytest.mark.django_db
def test_own_panels_are_drawn_once_per_entry_and_state_not_per_viewer(monkeypatch):
    # Without a basis every entry's panel is drawn for a new state (the ring has one: see below).
    code, calls = ring_round_with_counted_panels(monkeypatch, students(5), basis=None)
    out = presenter_does(code, {"type": "add_node", "name": "Z"})
    assert sorted(calls) == [f"S{i}" for i in range(5)]  # the new state's panels, once each; the old ones were kept
    assert set(out.mine) <= {f"p{i}" for i in range(5)}
    for person, text in out.mine.items():
        assert set(json.loads(text)) == {"content"}
    calls.clear()
    out = presenter_does(code, {"type": "present"})
    assert (calls, out.mine) == ([], {})  # the state did not change: nothing drawn
    personal.PANELS.clear()


@pytest.mark.django_db(transaction=True)
def test_with_the_rings_basis_only_the_students_whose_key_moved_are_drawn(monkeypatch):
    """The ring's basis is where a student's key lands: a new node redraws only the panels of
    the students whose key it took, and a tick that moves nobody's key draws none."""
    assert REGISTRY["hashring"].my_entry_basis is not None
    code, calls = ring_round_with_counted_panels(monkeypatch, students(8))
    owners_before = dict(owner_of_key(code, f"S{i}") for i in range(8))
    out = presenter_does(code, {"type": "add_node", "name": "Z"})
    owners_after = dict(owner_of_key(code, f"S{i}") for i in range(8))
    moved = sorted(k for k in owners_after if owners_after[k] != owners_before[k])
    assert sorted(calls) == moved and set(out.mine) == {f"p{k[1:]}" for k in moved}
    calls.clear()
    out = presenter_does(code, {"type": "step"})
    assert (calls, out.mine) == ([], {})
    personal.PANELS.clear()


def owner_of_key(code: str, key: str) -> tuple[str, str]:
    from apps.hashring import picture as pic

    place = pic.placement(room_state(Room.objects.get(code=code)), key)
    assert place is not None
    return key, place["owner"]
