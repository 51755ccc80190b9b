"""Who is connected: a RoomPresence row per socket, and a coalesced "N connected" frame to the room."""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone

from apps.rooms import clock, consumers, frames, presence
from apps.rooms.models import Room, RoomPresence

from .conftest import ORIGIN
from .wire import TIMEOUT, connect, is_presence, receive_json, wait_presence

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def code(presenter_client) -> str:
    return presenter_client[1]


@database_sync_to_async
def rows(code: str) -> list[tuple[str, str]]:
    return sorted(RoomPresence.objects.filter(room__code=code).values_list("role", "name"))


@database_sync_to_async
def add_stale_row(code: str, channel: str, age_seconds: float) -> None:
    RoomPresence.objects.create(room=Room.objects.get(code=code), channel=channel, role="participant", name="Gone",
                                owner="dead-process", last_seen=timezone.now() - timedelta(seconds=age_seconds))


async def test_presence_frame_counts_both_sockets(code, presenter_headers):
    first, _ = await connect(f"/ws/r/{code}/", presenter_headers)
    second, _ = await connect(f"/ws/r/{code}/", [ORIGIN])
    try:
        to_first = await wait_presence(first, 2)
        to_second = await wait_presence(second, 2)
    finally:
        await first.disconnect()
        await second.disconnect()
    assert to_first == to_second
    assert set(to_first) == {"presence", "content"}  # no seq: it is not an event of the log
    assert '<span id="presence" class="presence" hx-swap-oob="outerMorph"><strong>2</strong> connected</span>' in to_first["content"]


async def test_presence_frame_follows_a_disconnect(code, presenter_headers):
    first, _ = await connect(f"/ws/r/{code}/", presenter_headers)
    second, _ = await connect(f"/ws/r/{code}/", [ORIGIN])
    try:
        await wait_presence(first, 2)
        await second.disconnect()
        assert (await wait_presence(first, 1))["presence"] == 1
    finally:
        await first.disconnect()


async def test_presence_rows_are_written_on_connect_and_removed_on_disconnect(code, presenter_headers):
    first, _ = await connect(f"/ws/r/{code}/", presenter_headers)
    second, _ = await connect(f"/ws/r/{code}/?as=viewer", [ORIGIN])
    try:
        await wait_presence(first, 2)  # announced after both rows were written
        assert await rows(code) == [("presenter", "Student"), ("viewer", "Student")]
        await second.disconnect()
        assert await rows(code) == [("presenter", "Student")]
    finally:
        await first.disconnect()
    assert await rows(code) == []
    assert presence.count(code) == 0


@database_sync_to_async
def sweep_now(code: str) -> None:
    """This process sweeps rows left over from before a restart on its first join: do it now,
    so the rows a test writes afterwards stand for another process that is still running."""
    presence.presence_join(code=code, channel="sweeper", role="viewer", name="", owner=clock.OWNER)
    presence.presence_leave(code=code, channel="sweeper")


async def test_presence_ignores_stale_rows(code, presenter_headers):
    await sweep_now(code)
    await add_stale_row(code, "old-socket", presence.STALE_SECONDS + 5)  # its process died
    await add_stale_row(code, "recent-socket", presence.STALE_SECONDS / 2)  # its process still heartbeats
    comm, _ = await connect(f"/ws/r/{code}/", presenter_headers)
    try:
        # This socket and the recent row, not the stale one: in the frame sent at once, and the room's.
        assert (await receive_json(comm))["presence"] == 2
        assert (await wait_presence(comm, 2))["presence"] == 2
    finally:
        await comm.disconnect()


async def test_presence_frame_reaches_a_new_socket_at_once(code, presenter_headers):
    first, _ = await connect(f"/ws/r/{code}/", presenter_headers)
    try:
        second, _ = await connect(f"/ws/r/{code}/", [ORIGIN])
        try:
            assert (await receive_json(second))["presence"] == 2  # right after the full state
        finally:
            await second.disconnect()
    finally:
        await first.disconnect()


async def test_room_page_shows_how_many_are_connected(code, presenter_headers):
    first, _ = await connect(f"/ws/r/{code}/", presenter_headers)
    try:
        await wait_presence(first, 1)
        html = (await sync_to_async(Client().get)(f"/r/{code}/")).content.decode()
    finally:
        await first.disconnect()
    assert '<span id="presence" class="presence"><strong>1</strong> connected</span>' in html


async def test_presence_announcements_in_a_burst_make_one_frame(code, presenter_headers):
    comm, _ = await connect(f"/ws/r/{code}/", presenter_headers)
    try:
        await wait_presence(comm, 1)  # sent at once on connect
        await wait_presence(comm, 1)  # the room's announcement of that connect
        for _ in range(10):
            consumers.announce_presence(code)
        assert (await receive_json(comm))["presence"] == 1  # the burst's frame
        # Then a connect, announced later: its frame is the next one here, not another of the
        # burst's (those would all come first: each waits the same time). No quiet period to trust.
        second, _ = await connect(f"/ws/r/{code}/", [ORIGIN])
        try:
            assert (await receive_json(comm))["presence"] == 2
        finally:
            await second.disconnect()
    finally:
        await comm.disconnect()


async def test_presence_of_a_class_joining_at_once_is_coalesced(code, presenter_headers):
    joining = 8
    first, _ = await connect(f"/ws/r/{code}/", presenter_headers)
    others = await asyncio.gather(*(connect(f"/ws/r/{code}/", [ORIGIN]) for _ in range(joining - 1)))
    seen = []
    try:
        async with asyncio.timeout(TIMEOUT):
            while not seen or seen[-1] != joining:
                msg = await receive_json(first)
                assert is_presence(msg), msg
                seen.append(msg["presence"])
    finally:
        for comm, _ in others:
            await comm.disconnect()
        await first.disconnect()
    assert len(seen) < joining  # fewer frames than connections


def test_presence_count_counts_only_fresh_rows(room):
    now = timezone.now()
    for channel, age in (("a", 0), ("b", presence.STALE_SECONDS - 1), ("c", presence.STALE_SECONDS + 1), ("d", 3600)):
        RoomPresence.objects.create(room=room, channel=channel, role="participant", owner="p", last_seen=now - timedelta(seconds=age))
    assert presence.presence_count(room.code) == 2


def test_presence_refresh_keeps_its_own_rows_fresh_and_drops_long_dead_ones(room):
    old = timezone.now() - timedelta(seconds=presence.STALE_SECONDS + 1)
    ancient = timezone.now() - timedelta(seconds=11 * presence.STALE_SECONDS)
    RoomPresence.objects.create(room=room, channel="mine", role="participant", owner="me", last_seen=old)
    RoomPresence.objects.create(room=room, channel="theirs", role="participant", owner="them", last_seen=old)
    RoomPresence.objects.create(room=room, channel="dead", role="participant", owner="gone", last_seen=ancient)
    presence.presence_refresh("me")
    assert presence.presence_count(room.code) == 1
    assert sorted(RoomPresence.objects.values_list("channel", flat=True)) == ["mine", "theirs"]


def test_presence_join_and_leave_return_the_count(room):
    assert presence.presence_join(code=room.code, channel="c1", role="participant", name="A" * 60, owner="me") == 1
    assert presence.presence_join(code=room.code, channel="c2", role="viewer", name="B", owner="me") == 2
    assert RoomPresence.objects.get(channel="c1").name == "A" * 40
    assert presence.presence_leave(code=room.code, channel="c1") == 1
    assert presence.presence_leave(code=room.code, channel="c1") == 1  # twice is harmless


def test_presence_frame_is_json_with_the_count():
    msg = json.loads(frames.presence_frame(30))
    assert msg["presence"] == 30
    assert "<strong>30</strong> connected" in msg["content"]
