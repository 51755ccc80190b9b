"""Fixtures for the room engine: rooms, actors, and a way to count what the log holds."""
from __future__ import annotations

from typing import Any, Callable

import pytest
from django.test import Client

from apps.rooms.models import Room, RoomEvent
from apps.rooms.services import Actor, Applied, room_command_apply, room_create

PRESENTER = Actor("presenter")
PARTICIPANT = Actor("participant")  # a student with no name and no pid: outside a round, refused everything
VIEWER = Actor("viewer")
OWN_KEY = {"type": "round_open", "kind": "own_key"}


def student(name: str, pid: str | None = None) -> Actor:
    """A participant as the consumer makes one from a student's session: role, name, pid."""
    return Actor("participant", name, pid or f"pid-{name.lower()}")


ALICE = student("Alice")
BOB = student("Bob")

# What a browser sends: AllowedHostsOriginValidator refuses a socket without an Origin.
ORIGIN = (b"origin", b"http://localhost")


def run_in_threads(jobs: list) -> list:
    """Run each job in its own thread (its own database connection) and collect the outcomes."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def run(job):
        try:
            return job()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(run, jobs))


@pytest.fixture
def room(db: None) -> Room:
    """A fresh hash ring room (nodes A-D, keys user1..user12), its log at seq 1."""
    created, _key = room_create(concept="hashring")
    return created


def refreshed(room: Room) -> Room:
    """The room's row as the database has it now."""
    return Room.objects.get(pk=room.pk)


def apply_command(room: Room, command: dict[str, Any], actor: Actor = PRESENTER, command_id: str | None = None) -> Applied:
    """Apply a command to a room as the presenter (or ``actor``), returning what was applied."""
    return room_command_apply(code=room.code, actor=actor, command=command, command_id=command_id)


def room_log_size(room: Room) -> tuple[int, int]:
    """(RoomEvent rows, room.seq as stored) for a room: both must stay put on a rejection."""
    return RoomEvent.objects.filter(room=room).count(), Room.objects.get(pk=room.pk).seq


@pytest.fixture
def apply() -> Callable[..., Applied]:
    return apply_command


@pytest.fixture
def round_room(room: Room, apply: Callable[..., Applied]) -> Room:
    """A fresh room in which the presenter has opened the "add your own key" round (seq 2)."""
    return apply(room, OWN_KEY).room


@pytest.fixture
def log_size() -> Callable[[Room], tuple[int, int]]:
    return room_log_size


@pytest.fixture
def presenter_client(transactional_db: None) -> tuple[Client, str]:
    """A browser that created a hash ring room through the home page: (client, room code).

    Its session cookie (signed_cookies, "sessionid") makes it the room's presenter.
    """
    return created_as_presenter("hashring")


def created_as_presenter(slug: str) -> tuple[Client, str]:
    """A browser that created a room of ``slug`` with the home page's card (its POST): the
    client, whose session makes it the room's presenter, and the room code."""
    client = Client()
    response = client.post(f"/new/{slug}/")
    assert response.status_code == 302
    return client, response["Location"].strip("/").split("/")[-1]


def session_headers(client: Client) -> list[tuple[bytes, bytes]]:
    """WebSocket headers of a browser: its Origin and its session cookie."""
    return [ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


@pytest.fixture
def presenter_headers(presenter_client: tuple[Client, str]) -> list[tuple[bytes, bytes]]:
    """WebSocket headers of the presenter's browser: its Origin and its session cookie."""
    return session_headers(presenter_client[0])


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Each test starts with full person and address buckets (they are shared by the process)."""
    from apps.rooms.ratelimit import LIMITS

    LIMITS.clear()
    yield
    LIMITS.clear()
