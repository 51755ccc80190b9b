"""The room clock: one lease per room across processes, ticks only while playing."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import types
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from channels.testing import WebsocketCommunicator

from apps.common.sim.validate import Rejected
from apps.rooms import clock, presence, registry
from apps.rooms.models import Room, RoomEvent
from distviz.asgi import application

from .conftest import room_log_size as log_size
from .wire import update

START = datetime(2026, 1, 1, 12, 0, tzinfo=dt_timezone.utc)


class FakeNow:
    """The clock module's idea of now, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = START

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def fake_now(monkeypatch) -> FakeNow:
    fake = FakeNow()
    monkeypatch.setattr(clock, "timezone", types.SimpleNamespace(now=lambda: fake.now))
    return fake


@pytest.fixture
def playing_room(room, apply) -> Room:
    apply(room, {"type": "play"})
    return Room.objects.get(pk=room.pk)


# -- the lease -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_lease_take_gives_a_free_lease(playing_room, fake_now):
    assert clock.lease_take(playing_room.code, "a", 5)
    assert Room.objects.get(pk=playing_room.pk).clock_owner == "a"


@pytest.mark.django_db
def test_lease_take_refuses_a_second_owner_before_expiry(playing_room, fake_now):
    clock.lease_take(playing_room.code, "a", 5)
    fake_now.advance(4.9)
    assert not clock.lease_take(playing_room.code, "b", 5)
    assert Room.objects.get(pk=playing_room.pk).clock_owner == "a"


@pytest.mark.django_db
def test_lease_take_lets_the_owner_renew(playing_room, fake_now):
    clock.lease_take(playing_room.code, "a", 5)
    fake_now.advance(4)
    assert clock.lease_take(playing_room.code, "a", 5)
    fake_now.advance(4)  # 8 s after the first take: the renewal still holds
    assert not clock.lease_take(playing_room.code, "b", 5)


@pytest.mark.django_db
def test_lease_take_passes_to_another_owner_after_expiry(playing_room, fake_now):
    clock.lease_take(playing_room.code, "a", 5)
    fake_now.advance(5.1)
    assert clock.lease_take(playing_room.code, "b", 5)
    assert not clock.lease_take(playing_room.code, "a", 5)
    assert Room.objects.get(pk=playing_room.pk).clock_owner == "b"


@pytest.mark.django_db
def test_lease_take_refuses_a_paused_room(room, fake_now):
    assert not clock.lease_take(room.code, "a", 5)


@pytest.mark.django_db
def test_lease_release_frees_the_lease_for_another_owner(playing_room, fake_now):
    clock.lease_take(playing_room.code, "a", 5)
    clock.lease_release(playing_room.code, "a")
    assert clock.lease_take(playing_room.code, "b", 5)


@pytest.mark.django_db
def test_lease_release_by_a_non_owner_changes_nothing(playing_room, fake_now):
    clock.lease_take(playing_room.code, "a", 5)
    clock.lease_release(playing_room.code, "b")
    assert not clock.lease_take(playing_room.code, "b", 5)


# -- clock_step ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_clock_step_stops_when_the_room_is_paused(room):
    before = log_size(room)
    assert clock.clock_step(room.code, owner="a") == ("stopped", 0.0, None)
    assert log_size(room) == before


@pytest.mark.django_db
def test_clock_step_stops_for_an_unknown_room(db):
    assert clock.clock_step("NOROOM", owner="a")[0] == "stopped"


@pytest.mark.django_db
def test_clock_step_ticks_as_the_owner(playing_room, fake_now):
    status, _wait, frame = clock.clock_step(playing_room.code, owner="a")
    assert status == "ticked"
    assert log_size(playing_room) == (playing_room.seq + 1, playing_room.seq + 1)
    last = RoomEvent.objects.get(room=playing_room, seq=playing_room.seq + 1)
    assert (last.kind, last.actor) == ("ticked", "system")
    assert json.loads(frame.frame)["seq"] == playing_room.seq + 1


@pytest.mark.django_db
def test_clock_step_advances_logical_time(playing_room, fake_now, client):
    clock.clock_step(playing_room.code, owner="a")
    fake_now.advance(1.0)
    clock.clock_step(playing_room.code, owner="a")
    state = client.get(f"/r/{playing_room.code}/state.json").json()["state"]
    assert state["clock_ms"] == 2 * clock.TICK_MS


@pytest.mark.django_db
def test_clock_step_stands_by_while_another_owner_ticks(playing_room, fake_now):
    clock.clock_step(playing_room.code, owner="a")
    before = log_size(playing_room)
    status, wait, frame = clock.clock_step(playing_room.code, owner="b")
    assert (status, frame) == ("standby", None)
    assert wait == clock.TURN_SECONDS  # it looks again soon: a dead owner's lease runs out in a second
    assert log_size(playing_room) == before


@pytest.mark.django_db
def test_clock_step_takes_over_when_the_owner_stops_renewing(playing_room, fake_now):
    clock.clock_step(playing_room.code, owner="a")
    fake_now.advance(60)  # "a" died: its lease ran out
    assert clock.clock_step(playing_room.code, owner="b")[0] == "ticked"


@pytest.mark.django_db
def test_clock_step_keeps_ticking_a_full_ring(playing_room, fake_now, settings):
    settings.DISTVIZ_LIMITS = {**settings.DISTVIZ_LIMITS, "max_keys": 12}  # no room for streamed keys
    status, _wait, frame = clock.clock_step(playing_room.code, owner="a")
    room = Room.objects.get(pk=playing_room.pk)
    assert status == "ticked"
    assert room.playing
    assert RoomEvent.objects.get(room=room, seq=room.seq).data["count"] == 0


@pytest.mark.django_db
def test_clock_step_pauses_a_room_whose_concept_refuses_to_tick(playing_room, fake_now, monkeypatch):
    concept = registry.get("hashring")

    def decide(state, command):
        if command["type"] == "tick":
            raise Rejected("The ring is full.")  # how every concept refuses
        return concept.decide(state, command)

    monkeypatch.setitem(registry.REGISTRY, "hashring", dataclasses.replace(concept, decide=decide))
    status, _wait, frame = clock.clock_step(playing_room.code, owner="a")
    room = Room.objects.get(pk=playing_room.pk)
    last = RoomEvent.objects.get(room=room, seq=room.seq)
    assert status == "stopped"
    assert not room.playing
    assert (last.kind, last.data["reason"]) == ("clock_set", "The ring is full.")
    assert json.loads(frame.frame)["seq"] == room.seq


# -- speed -----------------------------------------------------------------------------------

def test_interval_for_shrinks_as_speed_grows():
    assert clock.interval_for(1.0) == 1.0
    assert clock.interval_for(2.0) == 0.5
    assert clock.interval_for(0.25) == 4.0


@pytest.mark.django_db
def test_clock_step_waits_the_interval_of_the_room_speed(playing_room, apply, fake_now):
    """The owner ticks once per interval of the room's speed, renewing its lease every turn
    in between (a turn is at most TURN_SECONDS)."""
    code = playing_room.code
    assert clock.clock_step(code, owner="a")[0] == "ticked"
    fake_now.advance(0.5)
    assert clock.clock_step(code, owner="a") == ("waiting", 0.25, None)  # renewed, not ticked
    fake_now.advance(0.5)
    assert clock.clock_step(code, owner="a")[0] == "ticked"
    apply(playing_room, {"type": "speed", "speed": 4})  # a new speed: the clock ticks at its next turn
    assert clock.clock_step(code, owner="a")[0] == "ticked"
    fake_now.advance(0.1)
    assert clock.clock_step(code, owner="a")[:2] == ("waiting", 0.15)  # then every quarter second
    fake_now.advance(0.15)
    assert clock.clock_step(code, owner="a")[0] == "ticked"


@pytest.mark.django_db
def test_a_process_taking_over_ticks_when_the_next_tick_is_due_not_at_once(playing_room, apply, fake_now):
    apply(playing_room, {"type": "speed", "speed": 0.25})  # a tick every 4 s
    code = playing_room.code
    assert clock.clock_step(code, owner="a")[0] == "ticked"
    fake_now.advance(clock.LEASE_SECONDS + 0.1)  # "a" died a moment after ticking
    before = log_size(playing_room)
    assert clock.clock_step(code, owner="b")[0] == "waiting"  # "b" holds the lease, the tick is not due
    assert log_size(playing_room) == before
    assert Room.objects.get(pk=playing_room.pk).clock_owner == "b"
    fake_now.advance(4.0 - clock.LEASE_SECONDS - 0.1)
    assert clock.clock_step(code, owner="b")[0] == "ticked"


@pytest.mark.django_db
def test_a_tick_from_a_process_that_lost_the_lease_is_refused(playing_room, fake_now):
    """"a" stalled (a long GC pause) while "b" took the clock over: "a"'s tick, when it wakes,
    is refused under the room row's lock, so the room is not ticked twice."""
    from apps.rooms.services import SYSTEM, ClockLost, room_command_apply

    code = playing_room.code
    assert clock.clock_step(code, owner="a")[0] == "ticked"
    fake_now.advance(5)
    assert clock.clock_step(code, owner="b")[0] == "ticked"
    before = log_size(playing_room)
    with pytest.raises(ClockLost):
        room_command_apply(code=code, actor=SYSTEM, command={"type": "tick", "dt_ms": clock.TICK_MS, "_owner": "a"})
    assert log_size(playing_room) == before


@pytest.mark.django_db
def test_speed_is_recorded_in_the_log(room, apply):
    applied = apply(room, {"type": "speed", "speed": 2})
    assert (applied.events[0].kind, applied.events[0].data) == ("clock_set", {"playing": False, "speed": 2.0})
    assert Room.objects.get(pk=room.pk).speed == 2.0


@pytest.mark.django_db
def test_play_then_pause_sets_the_room_clock(room, apply):
    apply(room, {"type": "play"})
    assert Room.objects.get(pk=room.pk).playing
    apply(room, {"type": "pause"})
    assert not Room.objects.get(pk=room.pk).playing


@pytest.mark.django_db
def test_step_ticks_once_while_paused(room, apply):
    applied = apply(room, {"type": "step"})
    assert [e.kind for e in applied.events] == ["ticked"]
    assert not Room.objects.get(pk=room.pk).playing


# -- the clock loop, through a real consumer ----------------------------------------------------

@pytest.mark.django_db(transaction=True)
async def test_clock_loop_ticks_a_playing_room_and_stops_on_pause(presenter_client, presenter_headers):
    _client, code = presenter_client
    comm = WebsocketCommunicator(application, f"/ws/r/{code}/", headers=presenter_headers)
    try:
        assert (await comm.connect(timeout=5))[0]
        await comm.receive_from(timeout=5)  # the full state
        await comm.send_to(text_data=json.dumps({"body": {"type": "speed", "speed": 8}}))
        await update(comm)  # (update() reads past the presence frame that follows a connect)
        await comm.send_to(text_data=json.dumps({"body": {"type": "play"}}))
        played = await update(comm)
        tick = await update(comm)  # the clock's first tick, at 8x
        assert tick["seq"] == played["seq"] + 1
        assert "Tick" in tick["content"]
        await comm.send_to(text_data=json.dumps({"body": {"type": "pause"}}))
        task = clock._TASKS.get(code)
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        assert code not in clock._TASKS
    finally:
        await comm.disconnect()
    assert presence.count(code) == 0
