"""RoomConsumer over a real ASGI stack: origin check, session roles, broadcast, garbage, rate limit.

Presence frames (``{"presence": N}``, no seq) reach every socket some 0.4 s after a connect; the
helpers in ``wire.py`` read past them (``reply``, ``quiet``), so these tests do not depend on
when one lands. ``test_presence.py`` tests them.
"""
from __future__ import annotations

import json
import types
import uuid
from typing import AsyncIterator

import pytest
from channels.testing import WebsocketCommunicator

from apps.rooms import consumers
from apps.rooms.consumers import RATE_BURST
from distviz.asgi import application

from .conftest import ORIGIN
from .roomkit import TICK, code, presenter, presenter_applies, presenter_headers, slug_presenter  # noqa: F401 - fixtures
from .roomkit import log_size_of as log_size
from .wire import TIMEOUT, astudent, frame, is_my_entry, open_socket, quiet, raw_reply, replies, reply, update

pytestmark = pytest.mark.django_db(transaction=True)

SLUG = "counter-board"  # the room the socket fixtures (roomkit) open: the engine's own toy concept
OWN_TOKEN = {"type": "round_open", "kind": "own_token"}
ADD_ANN = {"type": "add_token", "name": "Ann", "slot": 1}
MARKUP = '"><svg onload=alert(1)>'


async def open_round(code: str) -> None:
    """The presenter opens the "add your own token" round (seq 2), as its button would."""
    await presenter_applies(code, OWN_TOKEN)


@pytest.fixture
async def participant(code) -> AsyncIterator[WebsocketCommunicator]:
    """A student's browser: it opened the room page (so its session says who it is), no name."""
    headers, _session = await astudent(code)
    async with open_socket(code, headers) as comm:
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


async def test_a_page_rendered_at_the_rooms_seq_is_not_sent_the_whole_state_again(code, presenter_headers):
    """A repeat visit's bytes: the page's HTML already holds the state at its seq (?seq=N), so the
    socket skips the full frame; a page from an older seq still gets it."""
    comm = WebsocketCommunicator(application, f"/ws/r/{code}/?seq=1", headers=presenter_headers)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    first = json.loads(await comm.receive_from(timeout=TIMEOUT))
    await comm.disconnect()
    assert connected and "full" not in first and "presence" in first
    stale = WebsocketCommunicator(application, f"/ws/r/{code}/?seq=0", headers=presenter_headers)
    await stale.connect(timeout=TIMEOUT)
    first = json.loads(await stale.receive_from(timeout=TIMEOUT))
    await stale.disconnect()
    assert (first["full"], first["seq"]) == (True, 1)


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
    await presenter.send_to(text_data=frame(ADD_ANN))
    await update(presenter)
    again = WebsocketCommunicator(application, f"/ws/r/{code}/", headers=[ORIGIN])
    try:
        await again.connect(timeout=TIMEOUT)
        first = json.loads(await again.receive_from(timeout=TIMEOUT))
    finally:
        await again.disconnect()
    assert (first["full"], first["seq"]) == (True, 2)


# -- broadcast -------------------------------------------------------------------------------

async def test_consumer_broadcasts_a_command_to_everyone_in_the_room(code, presenter, participant):
    await presenter.send_to(text_data=frame(ADD_ANN))
    to_presenter = await raw_reply(presenter)
    to_participant = await raw_reply(participant)
    assert to_presenter == to_participant  # rendered once, forwarded as is
    update = json.loads(to_participant)
    assert (update["seq"], update["from"]) == (2, 2)
    assert "full" not in update
    assert await log_size(code) == (2, 2)


async def test_consumer_broadcasts_one_frame_per_command(presenter, participant):
    await presenter.send_to(text_data=frame(ADD_ANN))
    await reply(presenter)
    await reply(participant)
    assert await quiet(presenter)
    assert await quiet(participant)


async def test_consumer_broadcast_carries_the_room_bar_and_narration(code, presenter, participant):
    await open_round(code)
    await participant.send_to(text_data=frame({"type": "add_my_token", "key": "alice"}))
    got = await update(presenter)
    assert 'id="room-bar"' in got["content"]
    assert "alice joined the board in slot 0." in got["content"]
    assert "took part: alice" in got["content"]


async def test_consumer_broadcast_escapes_markup_in_names(code, presenter, participant):
    await open_round(code)
    await participant.send_to(text_data=frame({"type": "add_my_token", "key": MARKUP}))
    from_participant = await update(presenter)
    await presenter.send_to(text_data=frame({"type": "add_token", "name": MARKUP.replace("1", "2"), "slot": 3}))
    from_presenter = await update(presenter)
    for got in (from_participant, from_presenter):
        assert "<svg onload" not in got["content"]
        assert "&lt;svg onload" in got["content"]


async def test_consumer_broadcasts_a_participants_token_to_the_presenter(code, presenter, participant):
    await open_round(code)
    await participant.send_to(text_data=frame({"type": "add_my_token", "key": "bob"}))
    got = await update(presenter)
    assert (got["from"], got["seq"]) == (3, 4)  # token_added, round_entry
    assert await log_size(code) == (4, 4)


async def test_consumer_refuses_a_participants_token_outside_a_round(code, presenter, participant):
    await participant.send_to(text_data=frame({"type": "add_token", "name": "bob"}))
    answer = await reply(participant)
    assert answer["error"] == "Only the presenter can do that. Wait for the presenter to open a round."
    assert await quiet(presenter)
    assert await log_size(code) == (1, 1)


# -- rejections ------------------------------------------------------------------------------

async def test_consumer_sends_a_rejection_to_the_sender_only(code, presenter, participant):
    await presenter.send_to(text_data=frame({"type": "remove_token", "name": "Zed"}))
    answer = await reply(presenter)
    assert answer["error"] == "There is no token called Zed."
    assert 'id="flash"' in answer["content"]
    assert await quiet(participant)
    assert await log_size(code) == (1, 1)


async def test_consumer_refuses_a_presenters_command_from_a_participant(code, presenter, participant):
    await participant.send_to(text_data=frame({"type": "remove_token", "name": "Ann"}))
    answer = await reply(participant)
    assert "Only the presenter" in answer["error"]
    assert await quiet(presenter)
    assert await log_size(code) == (1, 1)


async def test_consumer_ignores_a_role_claimed_in_the_frame(code, participant):
    await participant.send_to(text_data=frame({"type": "remove_token", "name": "Ann", "role": "presenter", "_actor": "presenter"}))
    answer = await reply(participant)
    assert "error" in answer
    assert await log_size(code) == (1, 1)


GARBAGE = [
    pytest.param({"text_data": "{not json"}, "not JSON", id="not-json"),
    pytest.param({"text_data": "[1, 2, 3]"}, "not understood", id="json-list"),
    pytest.param({"text_data": "[" * 8000 + "]" * 8000}, "not understood", id="json-nested-too-deep"),
    pytest.param({"text_data": '"add_token"'}, "not understood", id="json-string"),
    pytest.param({"text_data": json.dumps({"body": ["add_token"]})}, "not understood", id="body-not-an-object"),
    pytest.param({"bytes_data": b"\x00\x01binary"}, "Binary frames", id="binary"),
    pytest.param({"text_data": frame({"type": "add_token", "name": "x" * 17_000})}, "too large", id="over-16kb"),
    pytest.param({"text_data": frame({"type": "add_token", "name": "long-id"}, request_id="x" * 65)}, "at most 64", id="command-id-over-64"),
    pytest.param({"text_data": frame({"type": "add_token", "name": "n", "command_id": 7})}, "at most 64", id="command-id-not-text"),
    pytest.param({"text_data": frame({"name": "no-type"})}, "needs a type", id="missing-type"),
    pytest.param({"text_data": frame({"type": "add_token", "name": "n", "slot": "9" * 40})}, "whole number", id="huge-number"),
]


@pytest.mark.parametrize(("payload", "message"), GARBAGE)
async def test_consumer_answers_garbage_with_an_error(code, presenter, payload, message):
    await presenter.send_to(**payload)
    answer = await reply(presenter)
    assert message in answer["error"]


@pytest.mark.parametrize(("payload", "message"), GARBAGE)
async def test_consumer_garbage_changes_nothing(code, presenter, participant, payload, message):
    await presenter.send_to(**payload)
    assert "error" in await reply(presenter)
    assert await quiet(participant)
    assert await log_size(code) == (1, 1)


async def test_consumer_keeps_working_after_garbage(code, presenter):
    await presenter.send_to(bytes_data=b"\xff")
    await reply(presenter)
    await presenter.send_to(text_data="[]")
    await reply(presenter)
    await presenter.send_to(text_data=frame(ADD_ANN))
    assert (await reply(presenter))["seq"] == 2


# -- sync and resend -------------------------------------------------------------------------

async def test_consumer_answers_sync_with_a_full_frame(presenter):
    await presenter.send_to(text_data=frame(ADD_ANN))
    await update(presenter)
    await presenter.send_to(text_data=json.dumps({"body": {"type": "sync"}}))
    full = await reply(presenter)
    assert (full["full"], full["seq"]) == (True, 2)


async def test_consumer_sync_appends_nothing(code, presenter, participant):
    await presenter.send_to(text_data=json.dumps({"body": {"type": "sync"}}))
    assert (await reply(presenter))["full"]
    assert await quiet(participant)
    assert await log_size(code) == (1, 1)


async def test_consumer_applies_a_resent_request_id_once(code, presenter, participant):
    request_id = str(uuid.uuid4())
    await presenter.send_to(text_data=frame(ADD_ANN, request_id=request_id))
    await update(participant)
    await presenter.send_to(text_data=frame(ADD_ANN, request_id=request_id))
    assert (await reply(presenter))["command_id"] == request_id  # the first command's broadcast
    ack = await reply(presenter)  # the resend: acknowledged to its sender only, not applied
    assert ack == {"duplicate": True, "command_id": request_id}
    assert await quiet(participant)
    assert await log_size(code) == (2, 2)


async def test_consumer_applies_a_resend_after_reconnect_once(code, presenter_headers):
    request_id = str(uuid.uuid4())
    async with open_socket(code, presenter_headers) as first:
        await first.send_to(text_data=frame(ADD_ANN, request_id=request_id))
        await update(first)
    async with open_socket(code, presenter_headers) as second:
        await second.send_to(text_data=frame(ADD_ANN, request_id=request_id))
        assert await reply(second) == {"duplicate": True, "command_id": request_id}
        assert await quiet(second)
    assert await log_size(code) == (2, 2)


# -- rate limit ------------------------------------------------------------------------------

@pytest.fixture
def frozen_clock(monkeypatch) -> None:
    """Freeze the consumer's clock so the token bucket never refills: the outcome does not
    depend on how fast this machine is."""
    monkeypatch.setattr(consumers, "time", types.SimpleNamespace(monotonic=lambda: 1000.0))


async def test_consumer_rate_limit_slows_down_a_flood(code, presenter_headers, frozen_clock):
    async with open_socket(code, presenter_headers) as comm:
        for i in range(40):
            await comm.send_to(text_data=frame(TICK))
        answers = await replies(comm, 40)
    slow_downs = [a for a in answers if a.get("error", "").startswith("Slow down")]
    assert len(slow_downs) == 40 - RATE_BURST
    assert len([a for a in answers if "seq" in a]) == RATE_BURST
    assert await log_size(code) == (1 + RATE_BURST, 1 + RATE_BURST)


async def test_consumer_rate_limit_lets_a_burst_through(code, presenter_headers, frozen_clock):
    async with open_socket(code, presenter_headers) as comm:
        for i in range(int(RATE_BURST)):
            await comm.send_to(text_data=frame(TICK))
        answers = await replies(comm, int(RATE_BURST))
    assert not [a for a in answers if "error" in a]
    assert await log_size(code) == (1 + RATE_BURST, 1 + RATE_BURST)


async def test_consumer_rate_limit_counts_refused_commands_too(code, frozen_clock):
    # A student hammering a button outside a round costs tokens like anyone else.
    async with open_socket(code, [ORIGIN]) as comm:
        for i in range(int(RATE_BURST) + 4):
            await comm.send_to(text_data=frame({"type": "add_my_token", "key": f"k{i}"}))
        answers = await replies(comm, int(RATE_BURST) + 4)
    # The four over the limit are answered as they arrive, ahead of the service's refusals.
    assert sorted(a["error"].startswith("Slow down") for a in answers) == [False] * int(RATE_BURST) + [True] * 4


async def test_consumer_rate_limit_is_per_connection(code, presenter_headers, frozen_clock):
    await open_round(code)
    calm_headers, _session = await astudent(code)
    async with open_socket(code, presenter_headers) as flooder, open_socket(code, calm_headers) as calm:
        for i in range(int(RATE_BURST) + 1):
            await flooder.send_to(text_data=frame(TICK))
        answers = await replies(flooder, int(RATE_BURST) + 1)
        for _ in range(int(RATE_BURST)):  # the flooder's accepted ticks, broadcast to the room
            await update(calm)
        assert await quiet(calm)
        await calm.send_to(text_data=frame({"type": "add_my_token", "key": "calm"}))
        calm_answers = await replies(calm, 2)  # the broadcast and the student's own result
    assert any(a.get("error", "").startswith("Slow down") for a in answers)
    assert not [a for a in calm_answers if "error" in a]
    assert sorted(("seq" in a, is_my_entry(a)) for a in calm_answers) == [(False, True), (True, False)]
    assert await log_size(code) == (2 + RATE_BURST + 2, 2 + RATE_BURST + 2)
