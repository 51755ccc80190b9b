"""The live machinery of a room, tested by what it does, not only covered (issue 11).

Each test here guards one behaviour that a line of the engine provides, and was seen to fail
with that line removed: the clock stops when nobody watches, starts again on a reconnect to a
playing room and frees its lease when it stops; the clock passes its tick length; the state
cache notices a seq another process wrote; presence rows are kept fresh by a heartbeat, the room
hears when another process's rows go stale, and a lone process sweeps rows left from before a
restart; a closed viewer does not stop delivery to the others; an unexpected failure while
applying a command is answered and changes nothing; a taken join code is drawn again.

Every wait is for a condition, with a deadline (``eventually``): none is a quiet period that a
slow machine could pass wrongly.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError
from django.utils import timezone

from apps.rooms import clock, presence, registry, services
from apps.rooms.fanout import Relay, broadcast
from apps.rooms.models import Room, RoomEvent, RoomPresence
from apps.rooms.services import room_create, room_state, state_at

from .conftest import ORIGIN, apply_command, refreshed
from .wire import TIMEOUT, connect, frame, open_socket, reply, update, wait_presence

COULD_NOT_APPLY = "The server could not apply that command; nothing changed. Try again."


async def eventually(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll ``check`` (a function, or a coroutine function) until it returns something true, and
    return that; fail the test, saying ``what`` was awaited, once ``timeout`` seconds passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)


@database_sync_to_async
def room_row(code: str) -> Room:
    return Room.objects.get(code=code)


@database_sync_to_async
def log_size(code: str) -> tuple[int, int]:
    return RoomEvent.objects.filter(room__code=code).count(), Room.objects.get(code=code).seq


@database_sync_to_async
def count_present(code: str) -> int:
    return presence.presence_count(code)


@database_sync_to_async
def add_presence_row(code: str, channel: str, owner: str, age_seconds: float = 0.0) -> None:
    RoomPresence.objects.create(room=Room.objects.get(code=code), channel=channel, role="viewer", owner=owner,
                                last_seen=timezone.now() - timedelta(seconds=age_seconds))


@database_sync_to_async
def age_presence_rows(code: str, seconds: float, channel: str | None = None) -> None:
    """As if nobody had refreshed the room's rows (or the one of ``channel``) for ``seconds``."""
    rows = RoomPresence.objects.filter(room__code=code)
    if channel is not None:
        rows = rows.filter(channel=channel)
    assert rows.update(last_seen=timezone.now() - timedelta(seconds=seconds))


@pytest.fixture
def room_code(transactional_db: None) -> str:
    """A fresh hash ring room, for tests that reach the database from other threads too."""
    return room_create(concept="hashring")[0].code


@pytest.fixture
def playing_code(room_code: str) -> str:
    """A hash ring room playing at 8x (a tick every 0.125 s) that nobody watches yet: no clock runs."""
    room = Room.objects.get(code=room_code)
    apply_command(room, {"type": "speed", "speed": 8})
    apply_command(room, {"type": "play"})
    return room_code


@pytest.fixture
async def no_clock_left() -> AsyncIterator[None]:
    """Whatever a test (or a removed line) leaves running, the next test starts without a clock."""
    yield
    loop = asyncio.get_running_loop()
    for code, task in list(clock._TASKS.items()):
        if task.get_loop() is loop:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            clock._TASKS.pop(code, None)


@pytest.fixture
async def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """A presence heartbeat every 0.05 s instead of every 5 s; stopped after the test."""
    monkeypatch.setattr(presence, "HEARTBEAT_SECONDS", 0.05)
    yield
    task = presence._HEARTBEATS.pop(asyncio.get_running_loop(), None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def clock_ticked_past(code: str, seq: int) -> None:
    async def ticked() -> bool:
        return bool((await room_row(code)).seq > seq)

    await eventually(ticked, f"the clock of {code} appended a tick after seq {seq}")


@contextlib.asynccontextmanager
async def watched_and_ticking(code: str) -> AsyncIterator[asyncio.Task[None]]:
    """Someone here watches the playing room, and its clock has ticked once; on leaving the
    block nobody watches any more. Gives the clock's task."""
    start = (await room_row(code)).seq
    presence.joined(code)
    try:
        clock.ensure(code)
        task = clock._TASKS[code]
        await clock_ticked_past(code, start)
        yield task
    finally:
        presence.left(code)


# -- the room clock ------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
async def test_the_clock_stops_when_nobody_here_watches_a_playing_room(playing_code, no_clock_left):
    async with watched_and_ticking(playing_code) as task:
        pass
    await eventually(task.done, "the clock loop ended once nobody watched")
    assert playing_code not in clock._TASKS
    assert (await room_row(playing_code)).playing  # it stopped for want of viewers, not for a pause


@pytest.mark.django_db(transaction=True)
async def test_the_clock_goes_on_after_a_turn_fails_and_stops_after_failing_again_and_again(playing_code, no_clock_left,
                                                                                          monkeypatch):
    """A passing failure (the database restarting) costs a turn, not the clock; a lasting one
    stops it (the next viewer or command starts it again)."""
    monkeypatch.setattr(clock, "RETRY_SECONDS", 0.01)
    real_step, failing = clock.clock_step, {"left": 1}

    def flaky(code: str, owner: str = clock.OWNER) -> Any:
        if failing["left"] > 0:
            failing["left"] -= 1
            raise RuntimeError("database is restarting")
        return real_step(code, owner)

    monkeypatch.setattr(clock, "clock_step", flaky)
    async with watched_and_ticking(playing_code) as task:  # it ticked after the failed turn
        assert failing["left"] == 0 and not task.done()
        failing["left"] = 10**6
        await eventually(task.done, "the clock stopped after failing again and again")
        assert playing_code not in clock._TASKS


@pytest.mark.django_db(transaction=True)
async def test_the_clock_releases_its_lease_when_it_stops(playing_code, no_clock_left):
    async with watched_and_ticking(playing_code) as task:
        assert (await room_row(playing_code)).clock_owner == clock.OWNER
    await eventually(task.done, "the clock loop ended once nobody watched")
    row = await room_row(playing_code)
    assert (row.clock_owner, row.clock_lease_until) == ("", None)
    # Another process with a viewer of the room may tick at once, not after the lease runs out.
    assert await database_sync_to_async(clock.lease_take)(playing_code, "another-process", 5)


@pytest.mark.django_db(transaction=True)
async def test_the_clock_starts_again_when_someone_reconnects_to_a_playing_room(presenter_client, presenter_headers,
                                                                                no_clock_left):
    _client, code = presenter_client
    async with open_socket(code, presenter_headers) as comm:
        await comm.send_to(text_data=frame({"type": "speed", "speed": 8}))
        await update(comm)
        await comm.send_to(text_data=frame({"type": "play"}))
        played = await update(comm)
        assert (await update(comm))["seq"] == played["seq"] + 1  # the clock's first tick
        task = clock._TASKS[code]
    await eventually(task.done, "the clock stopped once the only viewer left")
    stopped = await room_row(code)
    assert stopped.playing
    again, first = await connect(f"/ws/r/{code}/", [ORIGIN])  # a viewer comes back: nobody presses play
    try:
        assert first["seq"] >= stopped.seq
        tick = await update(again)
    finally:
        await again.disconnect()
    assert tick["seq"] == first["seq"] + 1
    assert "Tick" in tick["content"]


@pytest.mark.django_db
def test_the_clock_sends_its_tick_length_with_every_tick(room, monkeypatch):
    apply_command(room, {"type": "play"})
    sent: list[dict[str, Any]] = []
    real = clock.room_command_apply

    def spy(**kwargs: Any) -> services.Applied:
        sent.append(kwargs["command"])
        return real(**kwargs)

    monkeypatch.setattr(clock, "room_command_apply", spy)
    monkeypatch.setattr(clock, "TICK_MS", 250)  # not the 1000 a concept might guess
    assert clock.clock_step(room.code, owner="a")[0] == "ticked"
    assert sent == [{"type": "tick", "dt_ms": 250, "_owner": "a"}]
    last = RoomEvent.objects.get(room=room, seq=refreshed(room).seq)
    assert (last.kind, last.data["dt_ms"]) == ("ticked", 250)  # the concept was told, not left to guess


# -- the state cache ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_state_cache_notices_a_newer_seq_written_by_another_process(room, monkeypatch):
    room_state(refreshed(room))  # this process has folded the room at seq 1: its cache holds it
    with monkeypatch.context() as elsewhere:
        elsewhere.setattr(services, "STATE_CACHE", services._StateCache())  # another process, its own cache
        apply_command(room, {"type": "add_node", "name": "E"})
    assert refreshed(room).seq == 2
    seen_here = room_state(refreshed(room))
    assert "E" in [node.name for node in seen_here.nodes]
    applied = apply_command(room, {"type": "add_node", "name": "F"})  # and this process appends on top of it
    assert [node.name for node in applied.after.nodes][-2:] == ["E", "F"]
    concept = registry.get("hashring")
    assert concept.to_json(applied.after) == concept.to_json(state_at(applied.room, applied.room.seq))


# -- presence ------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
async def test_the_presence_heartbeat_keeps_this_process_rows_fresh(presenter_client, presenter_headers, fast_heartbeat):
    _client, code = presenter_client
    async with open_socket(code, presenter_headers) as comm:
        await wait_presence(comm, 1)  # its row is written
        # As if no heartbeat had run for 30 s: the row no longer counts until one runs again.
        # (Not asserted here: at one heartbeat per 0.05 s it may already have.)
        await age_presence_rows(code, 2 * presence.STALE_SECONDS)

        async def counted_again() -> bool:
            return await count_present(code) == 1

        await eventually(counted_again, "the heartbeat refreshed the socket's row")


@pytest.mark.django_db(transaction=True)
async def test_the_presence_heartbeat_tells_the_room_when_another_process_rows_go_stale(room_code, monkeypatch,
                                                                                       fast_heartbeat):
    code = room_code
    seen: list[int] = []
    real_count = presence.presence_count

    def counting(room_code: str) -> int:
        seen.append(real_count(room_code))
        return seen[-1]

    monkeypatch.setattr(presence, "presence_count", counting)
    await add_presence_row(code, "mine", owner="this-process")
    await add_presence_row(code, "theirs", owner="other-process")
    announced: list[str] = []
    presence.joined(code)
    try:
        presence.ensure_heartbeat("this-process", announced.append)
        await eventually(lambda: 2 in seen, "the heartbeat counted both processes' sockets")
        assert announced == []
        await age_presence_rows(code, presence.STALE_SECONDS + 5, channel="theirs")  # the other process died
        await eventually(lambda: announced, "the heartbeat told the room its count changed")
    finally:
        presence.left(code)
    assert announced[0] == code
    assert seen[-1] == 1


@pytest.mark.django_db(transaction=True)
async def test_the_presence_heartbeat_beats_on_after_the_database_fails_once(room_code, monkeypatch, fast_heartbeat):
    code = room_code
    failures: list[str] = []
    real_refresh = presence.presence_refresh

    def busy_once(owner: str) -> None:
        if not failures:
            failures.append(owner)
            raise OperationalError("database is locked")  # SQLite under a burst; PostgreSQL restarting
        real_refresh(owner)

    monkeypatch.setattr(presence, "presence_refresh", busy_once)
    await add_presence_row(code, "mine", owner="this-process", age_seconds=2 * presence.STALE_SECONDS)
    presence.joined(code)
    try:
        presence.ensure_heartbeat("this-process", lambda _code: None)

        async def counted_again() -> bool:
            return await count_present(code) == 1

        await eventually(counted_again, "a heartbeat after the failed one refreshed the row")
    finally:
        presence.left(code)
    assert failures == ["this-process"]


@pytest.mark.django_db
def test_the_first_join_of_a_lone_process_sweeps_rows_left_from_before_a_restart(room, monkeypatch, settings):
    settings.DISTVIZ_WORKERS = 1
    monkeypatch.setattr(presence, "_SWEPT", set())  # this process has not let anyone in yet
    # A socket of the process before the restart, which died a moment ago: its row still looks fresh.
    RoomPresence.objects.create(room=room, channel="left-over", role="participant", owner="previous-process",
                                last_seen=timezone.now())
    assert presence.presence_join(code=room.code, channel="new", role="viewer", name="", owner="this-process") == 1
    assert list(RoomPresence.objects.values_list("channel", flat=True)) == ["new"]


@pytest.mark.django_db
def test_a_process_among_several_does_not_sweep_the_others_rows(room, monkeypatch, settings):
    settings.DISTVIZ_WORKERS = 2
    monkeypatch.setattr(presence, "_SWEPT", set())
    RoomPresence.objects.create(room=room, channel="theirs", role="participant", owner="other-process",
                                last_seen=timezone.now())
    assert presence.presence_join(code=room.code, channel="new", role="viewer", name="", owner="this-process") == 2


# -- fan-out -------------------------------------------------------------------------------------

class Viewer:
    def __init__(self, person: str = "") -> None:
        self.person = person
        self.frames: list[str] = []

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        assert text_data is not None
        self.frames.append(text_data)


class ClosedViewer(Viewer):
    """A viewer whose socket just closed: every send raises (its disconnect has not run yet)."""

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        self.frames.append(text_data or "")
        raise RuntimeError("the socket is closed")


async def test_one_closed_viewer_does_not_stop_delivery_to_the_rest():
    code = "LIVEFO"
    r = Relay()
    closed = ClosedViewer(person="gone")
    open_ones = [Viewer(), Viewer(person="p1"), Viewer()]
    for viewer in (open_ones[0], closed, *open_ones[1:]):
        await r.join(code, viewer)
    try:
        await broadcast(code, '{"seq": 2}', {"gone": "own-of-gone", "p1": "own-of-p1"})
        await broadcast(code, '{"seq": 3}')
        await eventually(lambda: all(len(v.frames) >= 2 for v in open_ones) and len(open_ones[1].frames) >= 3,
                         "both broadcasts reached every open viewer")
    finally:
        for viewer in (*open_ones, closed):
            await r.leave(code, viewer)
        assert r.task is not None
        r.task.cancel()
        await asyncio.gather(r.task, return_exceptions=True)
    assert open_ones[0].frames == open_ones[2].frames == ['{"seq": 2}', '{"seq": 3}']
    assert open_ones[1].frames == ['{"seq": 2}', "own-of-p1", '{"seq": 3}']
    assert closed.frames == ['{"seq": 2}', '{"seq": 3}']  # tried each time, dropped each time


# -- the consumer's catch-all ----------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
async def test_an_unexpected_failure_in_apply_is_answered_and_changes_nothing(presenter_client, presenter_headers,
                                                                              monkeypatch, caplog):
    _client, code = presenter_client
    concept = registry.get("hashring")

    def decide(state: Any, command: dict[str, Any]) -> list[dict[str, Any]]:
        if command.get("name") == "BUG":
            raise KeyError("a bug in the concept")  # not a refusal: nothing the sender did wrong
        return concept.decide(state, command)

    monkeypatch.setitem(registry.REGISTRY, "hashring", dataclasses.replace(concept, decide=decide))
    async with open_socket(code, presenter_headers) as presenter, open_socket(code, [ORIGIN]) as viewer:
        request_id = str(uuid.uuid4())
        await presenter.send_to(text_data=frame({"type": "add_node", "name": "BUG"}, request_id=request_id))
        answer = await reply(presenter)
        assert (answer["error"], answer["command_id"]) == (COULD_NOT_APPLY, request_id)
        assert await log_size(code) == (1, 1)
        # The connection stays open and works; the room got nothing from the failed command:
        # the next frame either socket reads is the next command's broadcast.
        await presenter.send_to(text_data=frame({"type": "add_node", "name": "E"}))
        to_presenter, to_viewer = await reply(presenter), await reply(viewer)
    assert to_presenter == to_viewer
    assert (to_viewer["from"], to_viewer["seq"]) == (2, 2)
    assert "failed" in caplog.text  # logged for whoever runs the server


# -- join codes ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_room_creation_draws_another_code_when_the_first_is_taken(room, monkeypatch):
    fresh = next(c for c in ("ACDEFG", "HJKMNP") if c != room.code)
    drawn = iter([room.code, fresh])
    monkeypatch.setattr(services, "new_join_code", lambda: next(drawn))
    created, _key = room_create(concept="hashring")
    assert created.code == fresh
    assert list(RoomEvent.objects.filter(room=created).values_list("seq", "kind")) == [(1, "room_created")]
    assert (refreshed(room).pk, refreshed(room).seq) == (room.pk, 1)  # the room that had the code is untouched
    assert Room.objects.count() == 2


@pytest.mark.django_db
def test_room_creation_gives_up_when_every_code_is_taken(room, monkeypatch):
    monkeypatch.setattr(services, "new_join_code", lambda: room.code)
    with pytest.raises(RuntimeError, match="free join code"):
        room_create(concept="hashring")
    assert Room.objects.count() == 1

