"""RoomConsumer over a real ASGI stack: origin check, session roles, broadcast, garbage, rate limit."""
from __future__ import annotations

import contextlib
import json
import types
import uuid
from typing import Any, AsyncIterator

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from apps.rooms import consumers
from apps.rooms.consumers import RATE_BURST
from apps.rooms.models import Room, RoomEvent
from distviz.asgi import application

from .conftest import ORIGIN

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5  # seconds: an upper bound on a wait, never a pause


def frame(body: dict[str, Any], request_id: str | None = None) -> str:
    """A frame as htmx's hx-ws extension sends it."""
    return json.dumps({"headers": {"HX-Request": "true", "HX-Request-ID": request_id or str(uuid.uuid4())}, "body": body})


@database_sync_to_async
def log_size(code: str) -> tuple[int, int]:
    return RoomEvent.objects.filter(room__code=code).count(), Room.objects.get(code=code).seq


@contextlib.asynccontextmanager
async def open_socket(code: str, headers: list[tuple[bytes, bytes]]) -> AsyncIterator[WebsocketCommunicator]:
    """Connect, swallow the full-state frame every connection starts with, always disconnect."""
    comm = WebsocketCommunicator(application, f"/ws/r/{code}/", headers=headers)
    try:
        connected, _ = await comm.connect(timeout=TIMEOUT)
        assert connected
        first = json.loads(await comm.receive_from(timeout=TIMEOUT))
        assert first["full"] is True
        yield comm
    finally:
        await comm.disconnect()


async def reply(comm: WebsocketCommunicator) -> dict[str, Any]:
    return json.loads(await comm.receive_from(timeout=TIMEOUT))


@pytest.fixture
def code(presenter_client) -> str:
    return presenter_client[1]


@pytest.fixture
async def presenter(code, presenter_headers) -> AsyncIterator[WebsocketCommunicator]:
    async with open_socket(code, presenter_headers) as comm:
        yield comm


@pytest.fixture
async def participant(code) -> AsyncIterator[WebsocketCommunicator]:
    async with open_socket(code, [ORIGIN]) as comm:
        yield comm


# -- connecting ------------------------------------------------------------------------------

async def test_consumer_first_frame_is_the_full_state(code, presenter_headers):
    comm = WebsocketCommunicator(application, f"/ws/r/{code}/", headers=presenter_headers)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    first = json.loads(await comm.receive_from(timeout=TIMEOUT))
    await comm.disconnect()
    assert connected
    assert (first["full"], first["seq"]) == (True, 1)
    assert 'id="room-bar"' in first["content"]


async def test_consumer_refuses_a_foreign_origin(code):
    comm = WebsocketCommunicator(application, f"/ws/r/{code}/", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await comm.connect(timeout=TIMEOUT)
    await comm.disconnect()
    assert not connected


async def test_consumer_refuses_a_missing_origin(code):
    comm = WebsocketCommunicator(application, f"/ws/r/{code}/")
    connected, _ = await comm.connect(timeout=TIMEOUT)
    await comm.disconnect()
    assert not connected


async def test_consumer_closes_on_an_unknown_room(transactional_db):
    comm = WebsocketCommunicator(application, "/ws/r/NOROOM/", headers=[ORIGIN])
    connected, close_code = await comm.connect(timeout=TIMEOUT)
    await comm.disconnect()
    assert not connected
    assert close_code == 4404


async def test_consumer_accepts_a_lower_case_code(code):
    comm = WebsocketCommunicator(application, f"/ws/r/{code.lower()}/", headers=[ORIGIN])
    connected, _ = await comm.connect(timeout=TIMEOUT)
    first = json.loads(await comm.receive_from(timeout=TIMEOUT))
    await comm.disconnect()
    assert connected
    assert first["seq"] == 1


async def test_consumer_sends_the_current_seq_on_reconnect(code, presenter):
    await presenter.send_to(text_data=frame({"type": "add_node", "name": "E"}))
    await reply(presenter)
    again = WebsocketCommunicator(application, f"/ws/r/{code}/", headers=[ORIGIN])
    try:
        await again.connect(timeout=TIMEOUT)
        first = json.loads(await again.receive_from(timeout=TIMEOUT))
    finally:
        await again.disconnect()
    assert (first["full"], first["seq"]) == (True, 2)


# -- broadcast -------------------------------------------------------------------------------

async def test_consumer_broadcasts_a_command_to_everyone_in_the_room(code, presenter, participant):
    await presenter.send_to(text_data=frame({"type": "add_node", "name": "E"}))
    to_presenter = await presenter.receive_from(timeout=TIMEOUT)
    to_participant = await participant.receive_from(timeout=TIMEOUT)
    assert to_presenter == to_participant  # rendered once, forwarded as is
    update = json.loads(to_participant)
    assert (update["seq"], update["from"]) == (2, 2)
    assert "full" not in update
    assert await log_size(code) == (2, 2)


async def test_consumer_broadcasts_one_frame_per_command(presenter, participant):
    await presenter.send_to(text_data=frame({"type": "add_node", "name": "E"}))
    await presenter.receive_from(timeout=TIMEOUT)
    await participant.receive_from(timeout=TIMEOUT)
    assert await presenter.receive_nothing()
    assert await participant.receive_nothing()


async def test_consumer_broadcast_carries_the_room_bar_and_narration(presenter, participant):
    await participant.send_to(text_data=frame({"type": "add_key", "key": "alice"}))
    update = await reply(presenter)
    assert 'id="room-bar"' in update["content"]
    assert "Added key alice" in update["content"]


async def test_consumer_broadcast_escapes_markup_in_names(presenter, participant):
    await participant.send_to(text_data=frame({"type": "add_key", "key": '"><svg onload=alert(1)>'}))
    await presenter.send_to(text_data=frame({"type": "add_node", "name": '"><svg onload=alert(1)>'}))
    contents = (await reply(presenter))["content"] + (await reply(presenter))["content"]
    assert "<svg onload" not in contents
    assert "&lt;svg onload" in contents


async def test_consumer_broadcasts_a_participants_key_to_the_presenter(code, presenter, participant):
    await participant.send_to(text_data=frame({"type": "add_key", "key": "bob"}))
    update = await reply(presenter)
    assert update["seq"] == 2
    assert await log_size(code) == (2, 2)


# -- rejections ------------------------------------------------------------------------------

async def test_consumer_sends_a_rejection_to_the_sender_only(code, presenter, participant):
    await presenter.send_to(text_data=frame({"type": "remove_node", "name": "Z"}))
    answer = await reply(presenter)
    assert answer["error"] == "There is no node called Z."
    assert 'id="flash"' in answer["content"]
    assert await participant.receive_nothing()
    assert await log_size(code) == (1, 1)


async def test_consumer_refuses_remove_node_from_a_participant(code, presenter, participant):
    await participant.send_to(text_data=frame({"type": "remove_node", "name": "A"}))
    answer = await reply(participant)
    assert "Only the presenter" in answer["error"]
    assert await presenter.receive_nothing()
    assert await log_size(code) == (1, 1)


async def test_consumer_ignores_a_role_claimed_in_the_frame(code, participant):
    await participant.send_to(text_data=frame({"type": "remove_node", "name": "A", "role": "presenter", "_actor": "presenter"}))
    answer = await reply(participant)
    assert "error" in answer
    assert await log_size(code) == (1, 1)


GARBAGE = [
    pytest.param({"text_data": "{not json"}, "not JSON", id="not-json"),
    pytest.param({"text_data": "[1, 2, 3]"}, "not understood", id="json-list"),
    pytest.param({"text_data": "[" * 8000 + "]" * 8000}, "not understood", id="json-nested-too-deep"),
    pytest.param({"text_data": '"add_node"'}, "not understood", id="json-string"),
    pytest.param({"text_data": json.dumps({"body": ["add_node"]})}, "not understood", id="body-not-an-object"),
    pytest.param({"bytes_data": b"\x00\x01binary"}, "Binary frames", id="binary"),
    pytest.param({"text_data": frame({"type": "add_key", "key": "x" * 17_000})}, "too large", id="over-16kb"),
    pytest.param({"text_data": frame({"type": "add_key", "key": "long-id"}, request_id="x" * 65)}, "at most 64", id="command-id-over-64"),
    pytest.param({"text_data": frame({"type": "add_key", "key": "n", "command_id": 7})}, "at most 64", id="command-id-not-text"),
    pytest.param({"text_data": frame({"key": "no-type"})}, "needs a type", id="missing-type"),
    pytest.param({"text_data": frame({"type": "add_node", "vnodes": "9" * 40})}, "whole number", id="huge-number"),
]


@pytest.mark.parametrize(("payload", "message"), GARBAGE)
async def test_consumer_answers_garbage_with_an_error(code, presenter, payload, message):
    await presenter.send_to(**payload)
    answer = await reply(presenter)
    assert message in answer["error"]


@pytest.mark.parametrize(("payload", "message"), GARBAGE)
async def test_consumer_garbage_changes_nothing(code, presenter, participant, payload, message):
    await presenter.send_to(**payload)
    await reply(presenter)
    assert await participant.receive_nothing()
    assert await log_size(code) == (1, 1)


async def test_consumer_keeps_working_after_garbage(code, presenter):
    await presenter.send_to(bytes_data=b"\xff")
    await reply(presenter)
    await presenter.send_to(text_data="[]")
    await reply(presenter)
    await presenter.send_to(text_data=frame({"type": "add_node", "name": "E"}))
    assert (await reply(presenter))["seq"] == 2


# -- sync and resend -------------------------------------------------------------------------

async def test_consumer_answers_sync_with_a_full_frame(presenter):
    await presenter.send_to(text_data=frame({"type": "add_node", "name": "E"}))
    await reply(presenter)
    await presenter.send_to(text_data=json.dumps({"body": {"type": "sync"}}))
    full = await reply(presenter)
    assert (full["full"], full["seq"]) == (True, 2)


async def test_consumer_sync_appends_nothing(code, presenter, participant):
    await presenter.send_to(text_data=json.dumps({"body": {"type": "sync"}}))
    await reply(presenter)
    assert await participant.receive_nothing()
    assert await log_size(code) == (1, 1)


async def test_consumer_applies_a_resent_request_id_once(code, presenter, participant):
    request_id = str(uuid.uuid4())
    await presenter.send_to(text_data=frame({"type": "add_node", "name": "E"}, request_id=request_id))
    await reply(participant)
    await presenter.send_to(text_data=frame({"type": "add_node", "name": "E"}, request_id=request_id))
    await reply(presenter)  # the first command's broadcast
    ack = await reply(presenter)  # the resend: acknowledged to its sender only, not applied
    assert ack == {"duplicate": True, "command_id": request_id}
    assert await participant.receive_nothing()
    assert await log_size(code) == (2, 2)


async def test_consumer_applies_a_resend_after_reconnect_once(code, presenter_headers):
    request_id = str(uuid.uuid4())
    async with open_socket(code, presenter_headers) as first:
        await first.send_to(text_data=frame({"type": "add_key", "key": "carol"}, request_id=request_id))
        await reply(first)
    async with open_socket(code, presenter_headers) as second:
        await second.send_to(text_data=frame({"type": "add_key", "key": "carol"}, request_id=request_id))
        assert await reply(second) == {"duplicate": True, "command_id": request_id}
        assert await second.receive_nothing()
    assert await log_size(code) == (2, 2)


# -- rate limit ------------------------------------------------------------------------------

async def test_consumer_rate_limit_slows_down_a_flood(code, monkeypatch):
    # Freeze the consumer's clock so the token bucket never refills: the outcome does not
    # depend on how fast this machine is.
    monkeypatch.setattr(consumers, "time", types.SimpleNamespace(monotonic=lambda: 1000.0))
    async with open_socket(code, [ORIGIN]) as comm:
        for i in range(40):
            await comm.send_to(text_data=frame({"type": "add_key", "key": f"flood{i}"}))
        answers = [json.loads(await comm.receive_from(timeout=TIMEOUT)) for _ in range(40)]
    slow_downs = [a for a in answers if a.get("error", "").startswith("Slow down")]
    assert len(slow_downs) == 40 - RATE_BURST
    assert await log_size(code) == (1 + RATE_BURST, 1 + RATE_BURST)


async def test_consumer_rate_limit_lets_a_burst_through(code, monkeypatch):
    monkeypatch.setattr(consumers, "time", types.SimpleNamespace(monotonic=lambda: 1000.0))
    async with open_socket(code, [ORIGIN]) as comm:
        for i in range(int(RATE_BURST)):
            await comm.send_to(text_data=frame({"type": "add_key", "key": f"burst{i}"}))
        answers = [json.loads(await comm.receive_from(timeout=TIMEOUT)) for _ in range(int(RATE_BURST))]
    assert not [a for a in answers if "error" in a]


async def test_consumer_rate_limit_is_per_connection(code, monkeypatch):
    monkeypatch.setattr(consumers, "time", types.SimpleNamespace(monotonic=lambda: 1000.0))
    async with open_socket(code, [ORIGIN]) as flooder, open_socket(code, [ORIGIN]) as calm:
        for i in range(int(RATE_BURST) + 1):
            await flooder.send_to(text_data=frame({"type": "lookup", "key": f"k{i}"}))
        answers = [json.loads(await flooder.receive_from(timeout=TIMEOUT)) for _ in range(int(RATE_BURST) + 1)]
        for _ in range(int(RATE_BURST)):  # the flooder's accepted lookups, broadcast to the room
            await calm.receive_from(timeout=TIMEOUT)
        assert await calm.receive_nothing()
        await calm.send_to(text_data=frame({"type": "add_key", "key": "calm"}))
        calm_answer = json.loads(await calm.receive_from(timeout=TIMEOUT))
    assert any(a.get("error", "").startswith("Slow down") for a in answers)
    assert "error" not in calm_answer
