"""Rate limits shared by all of a person's sockets and all of an address's, counted when a frame
arrives (``apps/rooms/ratelimit.py``); every refusal names its command. The flood's effect on
another room is measured on a real server in ``test_flood.py``."""
from __future__ import annotations

import contextlib
import json
import types
import uuid
from typing import AsyncIterator

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from apps.rooms import consumers, ratelimit
from apps.rooms.models import Room
from apps.rooms.ratelimit import Limits
from distviz.asgi import application

from .conftest import ORIGIN
from .wire import TIMEOUT, frame, quiet, receive_json, reply, student

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    """The consumers' clock, moved by the test: no bucket refills unless the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(consumers, "time", types.SimpleNamespace(monotonic=c.monotonic))
    return c


@contextlib.asynccontextmanager
async def sockets(code: str, headers, count: int, address: str = "192.0.2.7") -> AsyncIterator[list[WebsocketCommunicator]]:
    comms = []
    try:
        for _ in range(count):
            comm = WebsocketCommunicator(application, f"/ws/r/{code}/", headers=headers)
            comm.scope["client"] = (address, 40000 + len(comms))
            connected, _ = await comm.connect(timeout=TIMEOUT)
            assert connected
            assert (await receive_json(comm))["full"]
            comms.append(comm)
        yield comms
    finally:
        for comm in comms:
            await comm.disconnect()


async def seq(code: str) -> int:
    return await database_sync_to_async(lambda: Room.objects.get(code=code).seq)()


async def answers_to(comm: WebsocketCommunicator, ids: set[str]) -> dict[str, dict]:
    """Read until every id in ``ids`` is answered (an error or a broadcast naming it)."""
    got: dict[str, dict] = {}
    while ids - set(got):
        msg = await reply(comm)
        if msg.get("command_id") in ids:
            got[msg["command_id"]] = msg
    return got


PER_SOCKET = 5  # 100 frames: 84 refused, under the flood threshold (more is test_a_flood_over_many_sockets...)


async def test_twenty_sockets_of_one_person_share_one_budget(presenter_client, presenter_headers, clock):
    _client, code = presenter_client
    async with sockets(code, presenter_headers, 20) as comms:
        answers = {}
        for i, comm in enumerate(comms):
            ids = set()
            for j in range(PER_SOCKET):
                ids.add(f"c{i}-{j}")
                await comm.send_to(text_data=frame({"type": "add_key", "key": f"k{i}-{j}"}, request_id=f"c{i}-{j}"))
            answers.update(await answers_to(comm, ids))
    applied = [a for a in answers.values() if "error" not in a]
    slowed = [a for a in answers.values() if a.get("error", "").startswith("Slow down")]
    assert len(answers) == 20 * PER_SOCKET
    assert len(applied) == ratelimit.PERSON_BURST  # not 20 x 16
    assert len(slowed) == 20 * PER_SOCKET - ratelimit.PERSON_BURST  # each refusal names its command
    assert await seq(code) == 1 + ratelimit.PERSON_BURST


async def test_sync_requests_count_too(presenter_client, presenter_headers, clock):
    _client, code = presenter_client
    async with sockets(code, presenter_headers, 2) as (first, second):
        for _ in range(int(ratelimit.PERSON_BURST)):
            await first.send_to(text_data=json.dumps({"body": {"type": "sync"}}))
            assert (await reply(first))["full"]
        await second.send_to(text_data=json.dumps({"body": {"type": "sync"}}))
        assert (await reply(second))["error"].startswith("Slow down")
        clock.now += 1  # a second later the bucket has refilled some
        await second.send_to(text_data=json.dumps({"body": {"type": "sync"}}))
        assert (await reply(second))["full"]


async def test_sockets_without_a_session_share_one_budget_per_address(presenter_client, clock):
    _client, code = presenter_client
    async with sockets(code, [ORIGIN], 4) as comms, sockets(code, [ORIGIN], 1, address="198.51.100.9") as (elsewhere,):
        refused = 0
        for i in range(int(ratelimit.PERSON_BURST) + 8):
            comm = comms[i % 4]
            await comm.send_to(text_data=frame({"type": "add_node"}, request_id=f"a{i}"))
            answer = await reply(comm)
            assert answer["command_id"] == f"a{i}"
            refused += answer["error"].startswith("Slow down")
        assert refused == 8
        await elsewhere.send_to(text_data=frame({"type": "add_node"}, request_id="other"))
        assert (await reply(elsewhere))["error"].startswith("Only the presenter")  # its own budget: not slowed


async def test_a_refused_frame_of_any_kind_names_its_command(presenter_client, presenter_headers, clock):
    _client, code = presenter_client
    limit = 16 * 1024
    async with sockets(code, presenter_headers, 1) as (comm,):
        cases = {
            "big": json.dumps({"headers": {"HX-Request-ID": "big"}, "body": {"type": "add_key", "key": "x" * (limit + 10)}}),
            "notjson": '{"headers": {"HX-Request-ID": "notjson"}, "body": {"type": ',
            "deep": '{"headers": {"HX-Request-ID": "deep"}, "body": ' + "[" * 5000 + "]" * 5000 + "}",
            "inf": '{"headers": {"HX-Request-ID": "inf"}, "body": {"type": "rewind", "to_seq": Infinity}}',
            "body": '{"headers": {"HX-Request-ID": "body"}, "body": ["add_key"]}',
            "notype": '{"headers": {"HX-Request-ID": "notype"}, "body": {"key": "k"}}',
            "unknown": '{"headers": {"HX-Request-ID": "unknown"}, "body": {"type": "launch_rockets"}}',
        }
        for rid, text in cases.items():
            await comm.send_to(text_data=text)
            answer = await reply(comm)
            assert "error" in answer, rid
            assert answer["command_id"] == rid, (rid, answer["error"])
    assert await seq(code) == 1


async def test_a_socket_far_past_slow_down_is_ignored_for_a_while_and_told_to_settle_everything(presenter_client, presenter_headers, clock):
    _client, code = presenter_client
    async with sockets(code, presenter_headers, 1) as (comm,):
        n = int(ratelimit.CONNECTION_BURST) + ratelimit.FLOOD_REFUSALS + 1
        for i in range(n):
            await comm.send_to(text_data=frame({"type": "add_key", "key": f"k{i}"}, request_id=f"f{i}"))
        answers = [await reply(comm) for _ in range(n)]  # refusals are answered on arrival, before the broadcasts
        flooded = [a for a in answers if a.get("settle_all")]
        assert len(flooded) == 1 and flooded[0]["command_id"] == f"f{n - 1}"
        assert "ignored for a few seconds" in flooded[0]["error"]
        assert sorted(a["command_id"] for a in answers) == sorted(f"f{i}" for i in range(n))
        for i in range(50):  # dropped unread and unanswered
            await comm.send_to(text_data=frame({"type": "add_key", "key": f"late{i}"}))
        assert await quiet(comm)
        clock.now += ratelimit.COOL_DOWN + 1
        await comm.send_to(text_data=frame({"type": "add_key", "key": "after"}, request_id="after"))
        assert await reply(comm) == {"settle_all": True}
        assert (await reply(comm))["command_id"] == "after"
    assert await seq(code) == 1 + ratelimit.CONNECTION_BURST + 1


async def drain(comm: WebsocketCommunicator) -> list[dict]:
    """Every non-presence frame that has arrived, until nothing more does."""
    got = []
    while not await comm.receive_nothing(timeout=0.2):
        msg = await receive_json(comm)
        if "presence" not in msg:
            got.append(msg)
    return got


async def test_a_flood_over_many_sockets_is_counted_for_the_person(presenter_client, presenter_headers, clock):
    _client, code = presenter_client
    async with sockets(code, presenter_headers, 20) as comms:
        for j in range(8):  # 160 frames, 144 refused: past the person's flood threshold
            for i, comm in enumerate(comms):
                await comm.send_to(text_data=frame({"type": "add_key", "key": f"k{i}-{j}"}, request_id=f"c{i}-{j}"))
        told = [sum(1 for m in await drain(comm) if m.get("settle_all")) for comm in comms]
        assert 1 <= sum(told) < 20
        # One more frame on every socket: a muted one drops it, any other is muted by it (the
        # person is flooding, whichever socket sends), so every socket has been told exactly once.
        for i, comm in enumerate(comms):
            await comm.send_to(text_data=frame({"type": "add_key", "key": f"more{i}"}, request_id=f"more{i}"))
        told = [t + sum(1 for m in await drain(comm) if m.get("settle_all")) for t, comm in zip(told, comms)]
        assert told == [1] * 20
    assert await seq(code) == 1 + ratelimit.PERSON_BURST


# -- the buckets themselves ------------------------------------------------------------------------

def test_a_class_behind_one_address_enters_a_round_at_once():
    limits = Limits()
    for i in range(300):
        limits.joined("203.0.113.1", f"student{i}")
    # Every student's entry in the same instant, and a sync each from a third of them.
    assert all(limits.allow("203.0.113.1", f"student{i}", 5.0) for i in range(300))
    assert all(limits.allow("203.0.113.1", f"student{i}", 5.0) for i in range(100))


def test_one_machine_gets_the_base_allowance_whatever_it_claims_to_be():
    limits = Limits()
    limits.joined("203.0.113.2", "me")
    allowed = sum(limits.allow("203.0.113.2", "me", 5.0) for _ in range(500))
    assert allowed == ratelimit.PERSON_BURST
    anonymous = sum(limits.allow("203.0.113.3", "", 5.0) for _ in range(500))
    assert anonymous == ratelimit.PERSON_BURST


def test_the_address_budget_grows_with_the_people_connected_from_it():
    limits = Limits()
    assert limits.persons("203.0.113.4") == 0
    for i in range(10):
        limits.joined("203.0.113.4", f"p{i}")
        limits.joined("203.0.113.4", f"p{i}")  # a second tab: still one person
    assert limits.persons("203.0.113.4") == 10
    # Ten people, each within their own budget, together past the base address burst.
    allowed = sum(limits.allow("203.0.113.4", f"p{i % 10}", 5.0) for i in range(160))
    assert allowed == min(160, ratelimit.ADDRESS_BURST + 10 * ratelimit.ADDRESS_BURST_PER_PERSON)
    for i in range(10):
        limits.left("203.0.113.4", f"p{i}")
        limits.left("203.0.113.4", f"p{i}")
    assert limits.persons("203.0.113.4") == 0 and not limits.persons_at


def test_idle_buckets_are_forgotten(monkeypatch):
    monkeypatch.setattr(ratelimit, "MAX_BUCKETS", 100)
    limits = Limits()
    for i in range(1000):
        limits.allow(f"198.51.100.{i % 250}", f"p{i}", float(i))
    assert len(limits.people) <= 100 and len(limits.addresses) <= 100


def test_frame_id_is_found_without_parsing():
    assert ratelimit.frame_id(json.dumps({"headers": {"HX-Request-ID": "abc-1"}, "body": {}})) == "abc-1"
    assert ratelimit.frame_id('{"body": {"type": "x", "command_id": "id2"}}') == "id2"
    assert ratelimit.frame_id('{"headers": {"HX-Request-ID": "\\ud800"}}') is None
    assert ratelimit.frame_id('{"headers": {"HX-Request-ID": "' + "x" * 65 + '"}}') is None
    assert ratelimit.frame_id("x" * 20000 + '"HX-Request-ID": "late"') == "late"
    assert ratelimit.frame_id(None) is None
    uuid_id = str(uuid.uuid4())
    assert ratelimit.frame_id(json.dumps({"headers": {"HX-Request": "true", "HX-Request-ID": uuid_id}})) == uuid_id
