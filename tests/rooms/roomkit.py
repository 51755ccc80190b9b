"""What the concepts' room tests share: the room's state as JSON (live, folded from the database,
folded by hand), a frame's elements, the checks that a long history folds to the live state,
and the consumer-side helpers. The concept contract (tests/contract/) checks the same rules
for every concept through its lessons; a concept's room test uses these over its own history of
every command."""
from __future__ import annotations

import json
import re
from typing import Any, AsyncIterator

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings

from apps.rooms.models import Room, RoomEvent, RoomSnapshot
from apps.rooms.registry import TICK_MS, get
from apps.rooms.services import (STATE_CACHE, Actor, Applied, CommandRejected, room_command_apply, room_create, room_state,
                                 state_at)
from tests.contract.kit import fold_of_the_log

from .conftest import ORIGIN, PRESENTER, apply_command, created_as_presenter, refreshed, room_log_size, session_headers
from .wire import astudent, frame, is_my_entry, open_socket, quiet, reply, update


TICK = {"type": "tick", "dt_ms": TICK_MS}  # what the room clock sends


def to_json(room: Room, state: Any) -> dict[str, Any]:
    return get(room.concept).to_json(state)


def live_json(room: Room) -> dict[str, Any]:
    return to_json(room, room_state(refreshed(room)))


def folded_json(room: Room, seq: int) -> dict[str, Any]:
    """The state at ``seq`` folded from the database alone, not from this process's cache."""
    STATE_CACHE.clear()
    return to_json(room, state_at(refreshed(room), seq))


def fresh_fold_json(room: Room) -> dict[str, Any]:
    """The whole log folded by hand, event by event, from ``room_created``: no snapshot, no cache."""
    room = refreshed(room)
    return to_json(room, fold_of_the_log(room, room.position))


def as_json(data: Any) -> Any:
    """What the database gives back for ``data`` (tuples become lists)."""
    return json.loads(json.dumps(data))


def content_of(text: str) -> str:
    return json.loads(text)["content"]


def element(content: str, element_id: str) -> str:
    """The markup of the element with ``element_id`` in a frame (quoted either way)."""
    m = re.search(rf"<(\w+)[^>]*\sid=['\"]{re.escape(element_id)}['\"][^>]*>.*?</\1>", content, re.S)
    assert m, f"no #{element_id} in the frame"
    return m.group(0)


def assert_history_folds(room: Room, history: list[dict[str, Any]]) -> list[Applied]:
    """Apply every command of ``history``; after each, the live state is the fold of the log
    (from the cache, from the database, by hand) and survives JSON."""
    concept = get(room.concept)
    applied = []
    for command in history:
        applied.append(apply_command(room, command))
        live = concept.to_json(applied[-1].after)
        assert live_json(room) == live, command
        assert folded_json(room, refreshed(room).seq) == live, command
        assert fresh_fold_json(room) == live, command
        assert concept.to_json(concept.from_json(as_json(live))) == live, command
    return applied


def assert_snapshots_fold(room: Room, history: list[dict[str, Any]], at_least: int = 5) -> None:
    """With a snapshot every four events, each snapshot loads back as it was written and the
    fold from the newest one is the live state."""
    concept = get(room.concept)
    with override_settings(DISTVIZ_SNAPSHOT_EVERY=4):
        for command in history:
            apply_command(room, command)
    snaps = list(RoomSnapshot.objects.filter(room=room))
    assert len(snaps) >= at_least
    for snap in snaps:
        assert concept.to_json(concept.from_json(snap.state)) == snap.state
    live = live_json(room)
    assert folded_json(room, refreshed(room).seq) == live  # refolded from the newest snapshot
    assert fresh_fold_json(room) == live


# -- through the consumer ------------------------------------------------------------------------

@database_sync_to_async
def room_json(code: str) -> dict[str, Any]:
    room = Room.objects.get(code=code)
    return get(room.concept).documented_state(room_state(room))


@database_sync_to_async
def presenter_applies(code: str, command: dict[str, Any]) -> Applied:
    """The presenter's ``command`` applied as its button would, from a test's event loop."""
    return room_command_apply(code=code, actor=PRESENTER, command=command)


@database_sync_to_async
def log_size_of(code: str) -> tuple[int, int]:
    return RoomEvent.objects.filter(room__code=code).count(), Room.objects.get(code=code).seq


@database_sync_to_async
def round_entries(code: str) -> list[dict[str, Any]]:
    return Room.objects.get(code=code).round["entries"]


@database_sync_to_async
def last_events(code: str, n: int = 5) -> list[RoomEvent]:
    return list(reversed(RoomEvent.objects.filter(room__code=code).order_by("-seq")[:n]))


# -- a presenter's browser and sockets in a room of the test module's concept (its SLUG) --------

@pytest.fixture
def slug_presenter(request: pytest.FixtureRequest, transactional_db: None) -> tuple[Client, str]:
    """A browser that created a room of the module's concept (``SLUG``) with the home page's
    card: (client, room code)."""
    return created_as_presenter(request.module.SLUG)


@pytest.fixture
def code(slug_presenter: tuple[Client, str]) -> str:
    return slug_presenter[1]


@pytest.fixture
def presenter_headers(slug_presenter: tuple[Client, str]) -> list[tuple[bytes, bytes]]:
    return session_headers(slug_presenter[0])


@pytest.fixture
async def presenter(code: str, presenter_headers: list[tuple[bytes, bytes]]) -> AsyncIterator[WebsocketCommunicator]:
    async with open_socket(code, presenter_headers) as comm:
        yield comm


@pytest.fixture
async def viewer(code: str) -> AsyncIterator[WebsocketCommunicator]:
    """A socket without the presenter's session: the page of someone who follows."""
    async with open_socket(code, [ORIGIN], "?as=viewer") as comm:
        yield comm


async def open_round(presenter: WebsocketCommunicator, code: str, kind: str, *names: str) -> list[Any]:
    """Students named ``names`` open the room's page (each gets a session), then the presenter
    opens a round from their socket (the frame they get back shows it open): the students'
    (socket headers, session)."""
    students = [await astudent(code, name) for name in names]
    await presenter.send_to(text_data=frame({"type": "round_open", "kind": kind}))
    opened = await update(presenter)
    assert f'data-round="{kind}"' in opened["content"]
    return students


async def take_part(student: WebsocketCommunicator, presenter: WebsocketCommunicator,
                    body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A student's entry from their socket: (the broadcast everyone gets, their own panel)."""
    await student.send_to(text_data=frame(body))
    broadcast = await update(presenter)
    while True:
        mine = await reply(student)
        if is_my_entry(mine):
            return broadcast, mine


async def assert_refused_alone(comm: WebsocketCommunicator, presenter: WebsocketCommunicator, code: str,
                               message: str, log: tuple[int, int] = (1, 1)) -> dict[str, Any]:
    """The next answer on ``comm`` refuses with ``message``; the presenter hears nothing and the
    log is as it was."""
    answer = await reply(comm)
    while "error" not in answer:  # a broadcast the socket also saw
        answer = await reply(comm)
    assert message in answer["error"]
    assert await quiet(presenter)
    assert await log_size_of(code) == log
    return answer


# -- rooms of the test module's concept (a module that imports these names them SLUG and ROUND) --

@pytest.fixture
def room(request: pytest.FixtureRequest, db: None) -> Room:
    """A new room of the module's concept (``SLUG``), its log at seq 1."""
    created, _key = room_create(concept=request.module.SLUG)
    return created


@pytest.fixture
def round_room(request: pytest.FixtureRequest, room: Room) -> Room:
    """The module's room with its round open (``ROUND``: the round_open command)."""
    return apply_command(room, request.module.ROUND).room


def assert_refused(room: Room, command: dict[str, Any], message: str, actor: Actor = PRESENTER) -> None:
    """The presenter's (or ``actor``'s) ``command`` is refused with ``message`` (a regex); the
    log, the live state and its fold are as they were."""
    before = room_log_size(room)
    state_before = live_json(room)
    with pytest.raises(CommandRejected, match=message):
        apply_command(room, command, actor)
    assert room_log_size(room) == before
    assert live_json(room) == state_before
    assert folded_json(room, before[1]) == state_before
