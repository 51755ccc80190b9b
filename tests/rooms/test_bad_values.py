"""Bad values, table-driven: every engine command and every concept's commands, every field,
every kind of wrong value. Each is refused with a sentence for its sender and appends nothing;
none raises anything but ``CommandRejected`` (no traceback).

The rule the table checks (``apps/common/sim/validate.py``): an integer field takes a JSON
integer or text of digits (what a form's ``<input>`` sends), never ``true``, never ``2.5`` or
``"2.5"``, never a number past its range; a fractional field (speed) a finite number or decimal
text; an on/off field ``true``/``false`` or a form's "on"/"off"; a name text. In any field, a
nested object, a list of lists, Infinity/NaN, a NUL character or a lone surrogate is refused,
and so is a NUL or a lone surrogate in a field's name or in the command id. The values are the
shared table of ``tests/contract/bad_inputs.py``; the contract suite applies it to every command a
room page can send, this module to a hand-written table of commands and fields (some no page
sends as written: a rewind to a number, a scene's lists).

The same module runs on PostgreSQL (``test_postgres.py`` runs it there in a child pytest).
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async

from apps.rooms.models import Room, RoomEvent
from apps.rooms.services import Actor, CommandRejected, room_command_apply, room_create

from tests.contract.bad_inputs import ANY_FIELD, BAD, FIELD_NAMES, INT, NAMES, NONE, NUMBER, SWITCH, TEXT

from .conftest import ORIGIN, PRESENTER
from .roomkit import code, presenter_headers, slug_presenter  # noqa: F401 - fixtures of SLUG's room
from .wire import open_socket, reply, student

SLUG = "counter-board"  # the engine's own toy concept (tests/toyconcept): its rooms carry the engine's rows
LESSON = "01-a-row-of-slots"
ADD = {"type": "add_token", "name": "k", "slot": 0}

# (concept, commands that set the scene, the command, {field: kind}). The command as written is
# accepted (test_every_table_command_is_accepted_as_written), so a refusal is the bad value's.
TABLE: list[tuple[str, list[dict[str, Any]], dict[str, Any], dict[str, str]]] = [
    # The engine's own commands (the same for every concept; the engine's toy concept's room here).
    (SLUG, [ADD], {"type": "rewind", "to_seq": 1}, {"to_seq": INT}),
    (SLUG, [ADD], {"type": "step_back"}, {"x": NONE}),
    (SLUG, [], {"type": "speed", "speed": 2}, {"speed": NUMBER}),
    (SLUG, [], {"type": "speed", "speed": "0.5"}, {"speed": NUMBER}),
    (SLUG, [], {"type": "play"}, {"x": NONE}),
    (SLUG, [{"type": "play"}], {"type": "pause"}, {"x": NONE}),
    (SLUG, [], {"type": "step"}, {"x": NONE}),
    (SLUG, [], {"type": "present"}, {"x": NONE}),
    (SLUG, [{"type": "present"}], {"type": "stop_presenting"}, {"x": NONE}),
    (SLUG, [], {"type": "view_only", "on": True}, {"on": SWITCH}),
    (SLUG, [], {"type": "view_only", "on": "on"}, {"on": SWITCH}),
    (SLUG, [], {"type": "round_open", "kind": "own_token"}, {"kind": TEXT}),
    (SLUG, [{"type": "round_open", "kind": "own_token"}], {"type": "round_close"}, {"x": NONE}),
    (SLUG, [], {"type": "lesson_start", "lesson": LESSON}, {"lesson": TEXT}),
    (SLUG, [{"type": "lesson_start", "lesson": LESSON}], {"type": "lesson_next"}, {"x": NONE}),
    (SLUG, [{"type": "lesson_start", "lesson": LESSON}, {"type": "lesson_next"}], {"type": "lesson_prev"}, {"x": NONE}),
    (SLUG, [{"type": "lesson_start", "lesson": LESSON}], {"type": "lesson_stop"}, {"x": NONE}),
    # The hash ring.
    ("hashring", [], {"type": "add_node", "name": "E", "vnodes": 8}, {"name": TEXT, "vnodes": INT}),
    ("hashring", [], {"type": "remove_node", "name": "A"}, {"name": TEXT}),
    ("hashring", [], {"type": "remove_node", "owner_of": "user1"}, {"owner_of": TEXT}),
    ("hashring", [], {"type": "set_vnodes", "vnodes": 4, "name": "A"}, {"vnodes": INT, "name": TEXT}),
    ("hashring", [], {"type": "add_key", "key": "k"}, {"key": TEXT}),
    ("hashring", [], {"type": "add_random_keys", "count": 10}, {"count": INT}),
    ("hashring", [], {"type": "remove_key", "key": "user1"}, {"key": TEXT}),
    ("hashring", [], {"type": "clear_keys"}, {"x": NONE}),
    ("hashring", [], {"type": "lookup", "key": "user1"}, {"key": TEXT}),
    ("hashring", [], {"type": "set_replicas", "replicas": 2}, {"replicas": INT}),
    ("hashring", [], {"type": "set_stream_rate", "rate": 5}, {"rate": INT}),
    ("hashring", [], {"type": "tick", "dt_ms": 500}, {"dt_ms": INT}),
    ("hashring", [], {"type": "load_scene", "nodes": ["X", "Y"], "vnodes": 2, "keys": ["a"], "random_keys": 5,
                      "replicas": 1, "seed": "s"},
     {"nodes": NAMES, "vnodes": INT, "keys": NAMES, "random_keys": INT, "replicas": INT, "seed": TEXT}),
    # The log.
    ("log-partitions", [], {"type": "produce", "producer": "producer", "key": "k", "value": "v"},
     {"producer": TEXT, "key": TEXT, "value": TEXT}),
    ("log-partitions", [], {"type": "produce_burst", "producer": "producer", "count": 10, "pattern": "order-{i}"},
     {"producer": TEXT, "count": INT, "pattern": TEXT}),
    ("log-partitions", [], {"type": "set_producer", "producer": "producer", "acks": "1"}, {"producer": TEXT, "acks": TEXT}),
    ("log-partitions", [], {"type": "tick", "dt_ms": 500}, {"dt_ms": INT}),
    ("log-partitions", [], {"type": "broker_stop", "broker": 1}, {"broker": INT}),
    ("log-partitions", [{"type": "broker_stop", "broker": 1}], {"type": "broker_start", "broker": 1}, {"broker": INT}),
    ("log-partitions", [], {"type": "set_producer_rate", "producer": "producer", "rate": 5}, {"producer": TEXT, "rate": INT}),
    ("log-partitions", [], {"type": "set_unclean", "on": True}, {"on": SWITCH}),
    ("log-partitions", [], {"type": "set_min_insync", "value": 2}, {"value": INT}),
    ("log-partitions", [], {"type": "set_batch_size", "size": 10}, {"size": INT}),
    ("log-partitions", [], {"type": "set_follower_fetch", "records": 10}, {"records": INT}),
    ("log-partitions", [], {"type": "set_lag_time", "ms": 5000}, {"ms": INT}),
    ("log-partitions", [], {"type": "group_join", "group": "analytics", "member": "c2", "speed": 5},
     {"group": TEXT, "member": TEXT, "speed": INT}),
    ("log-partitions", [], {"type": "group_leave", "group": "analytics", "member": "consumer-1"}, {"group": TEXT, "member": TEXT}),
    ("log-partitions", [], {"type": "set_assignor", "group": "analytics", "assignor": "roundrobin"},
     {"group": TEXT, "assignor": TEXT}),
    ("log-partitions", [], {"type": "set_consumer_speed", "group": "analytics", "member": "consumer-1", "speed": 7},
     {"group": TEXT, "member": TEXT, "speed": INT}),
    ("log-partitions", [], {"type": "reset_offsets", "group": "analytics", "to": "latest"}, {"group": TEXT, "to": TEXT}),
    ("log-partitions", [], {"type": "load_scene", "partitions": 4, "brokers": 3, "replication_factor": 2,
                            "members": ["a", "b"], "topic": "t", "unclean": True},
     {"partitions": INT, "brokers": INT, "replication_factor": INT, "members": NAMES, "topic": TEXT, "unclean": SWITCH}),
    # The lock quorums.
    ("lock-quorums", [], {"type": "acquire", "client": "C1"}, {"client": TEXT}),
    ("lock-quorums", [], {"type": "node_crash", "node": "A"}, {"node": TEXT}),
    ("lock-quorums", [{"type": "node_crash", "node": "A"}], {"type": "node_restart", "node": "A", "persistence": True, "delayed": False},
     {"node": TEXT, "persistence": SWITCH, "delayed": SWITCH}),
    ("lock-quorums", [], {"type": "link_cut", "client": "C1", "node": "A"}, {"client": TEXT, "node": TEXT}),
    ("lock-quorums", [], {"type": "clock_jump", "node": "A", "ms": 1000}, {"node": TEXT, "ms": INT}),
    ("lock-quorums", [], {"type": "client_pause", "client": "C1", "ms": 1000}, {"client": TEXT, "ms": INT}),
    ("lock-quorums", [], {"type": "tick", "dt_ms": 500}, {"dt_ms": INT}),
    ("lock-quorums", [], {"type": "set_fencing", "on": True}, {"on": SWITCH}),
    ("lock-quorums", [], {"type": "add_client", "name": "C3"}, {"name": TEXT}),
    ("lock-quorums", [], {"type": "set_latency", "client": "C1", "node": "A", "ms": 10}, {"client": TEXT, "node": TEXT, "ms": INT}),
    ("lock-quorums", [], {"type": "configure", "ttl_ms": 5000}, {"ttl_ms": INT}),
    ("lock-quorums", [], {"type": "load_scene", "mode": "redlock", "nodes": 3, "clients": 2, "ttl_ms": 10000, "fencing": True},
     {"mode": TEXT, "nodes": INT, "clients": INT, "ttl_ms": INT, "fencing": SWITCH}),
]


def _cases() -> list[Any]:
    cases = []
    for concept, setup, command, fields in TABLE:
        for n, (field, kind) in enumerate(fields.items()):
            # What is refused in any field is checked on each command's first field (the check
            # does not look at which field it is), the wrong kinds of value on every field.
            for i, value in enumerate((ANY_FIELD if n == 0 else []) + BAD[kind]):
                bad = {**command, field: value}
                cases.append(pytest.param(concept, setup, bad, id=f"{concept}-{command['type']}-{field}-{kind}{i}"))
        # A field name no database stores.
        for j, name in enumerate(FIELD_NAMES):
            cases.append(pytest.param(concept, setup, {**command, name: 1}, id=f"{concept}-{command['type']}-fieldname{j}"))
    return cases


def _room(concept: str, setup: list[dict[str, Any]]) -> Room:
    room, _key = room_create(concept=concept)
    for command in setup:
        room_command_apply(code=room.code, actor=PRESENTER, command=command)
    return Room.objects.get(pk=room.pk)


def _log(room: Room) -> tuple[int, int, int]:
    fresh = Room.objects.get(pk=room.pk)
    return RoomEvent.objects.filter(room=room).count(), fresh.seq, fresh.position


@pytest.mark.django_db
@pytest.mark.parametrize(("concept", "setup", "command", "fields"), [pytest.param(*row, id=f"{row[0]}-{row[2]['type']}-{i}")
                                                                     for i, row in enumerate(TABLE)])
def test_every_table_command_is_accepted_as_written(concept, setup, command, fields):
    room = _room(concept, setup)
    applied = room_command_apply(code=room.code, actor=PRESENTER, command=command)
    assert applied.events


@pytest.mark.django_db
@pytest.mark.parametrize(("concept", "setup", "command"), _cases())
def test_a_bad_value_is_refused_with_a_sentence_and_appends_nothing(concept, setup, command):
    room = _room(concept, setup)
    before = _log(room)
    with pytest.raises(CommandRejected) as refused:
        room_command_apply(code=room.code, actor=PRESENTER, command=command, command_id="fuzz-1")
    message = str(refused.value)
    assert len(message) > 10 and message.rstrip().endswith((".", ")")), message
    assert "\x00" not in message and "\ud800" not in message
    assert _log(room) == before
    assert not RoomEvent.objects.filter(room=room, command_id="fuzz-1").exists()


BAD_IDS = ["\x00", "id\x00", "\ud800", "a\udfffb", "x" * 65, ""]


@pytest.mark.django_db
@pytest.mark.parametrize("command_id", BAD_IDS, ids=[f"id{i}" for i in range(len(BAD_IDS))])
@pytest.mark.parametrize("actor", [PRESENTER, Actor("participant"), Actor("viewer")], ids=["presenter", "no-session", "viewer"])
def test_a_command_id_no_database_stores_is_refused(actor, command_id):
    room = _room(SLUG, [])
    before = _log(room)
    with pytest.raises(CommandRejected):
        room_command_apply(code=room.code, actor=actor, command=ADD, command_id=command_id)
    assert _log(room) == before


# -- the same through the socket, as text (what JSON can say that Python cannot) ---------------------

WIRE = [
    ('{"type": "rewind", "to_seq": Infinity}', "finite"),
    ('{"type": "rewind", "to_seq": -Infinity}', "finite"),
    ('{"type": "rewind", "to_seq": NaN}', "finite"),
    ('{"type": "rewind", "to_seq": 1e309}', "finite"),
    ('{"type": "speed", "speed": 1e999}', "finite"),
    ('{"type": "speed", "speed": true}', "Speed must be a number"),
    ('{"type": "add_token", "name": "\\ud800"}', "lone surrogate"),
    ('{"type": "add_token", "name": "a\\u0000b"}', "NUL"),
    ('{"type": "add_token", "name\\u0000": "k"}', "NUL"),
    ('{"type": "add_token", "name": {"nested": {"deeper": 1}}}', "fields hold"),
    ('{"type": "add_token", "name": [["A"]]}', "fields hold"),
    ('{"type": "rewind", "to_seq": 1.5}', "Rewind needs the event number"),
    ('{"type": "rewind", "to_seq": true}', "Rewind needs the event number"),
]


async def _wire_case(headers: list[tuple[bytes, bytes]], code: str, body: str, command_id: str) -> dict[str, Any]:
    async with open_socket(code, headers) as comm:
        await comm.send_to(text_data='{"headers": {"HX-Request-ID": %s}, "body": %s}' % (json.dumps(command_id), body))
        return await reply(comm)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("body", "message"), WIRE, ids=[f"wire{i}" for i in range(len(WIRE))])
async def test_a_bad_frame_is_refused_with_its_id_and_appends_nothing(code, presenter_headers, body, message):
    await database_sync_to_async(room_command_apply)(code=code, actor=PRESENTER, command=ADD)
    answer = await _wire_case(presenter_headers, code, body, "wire-1")
    assert message in answer["error"]
    assert answer["command_id"] == "wire-1"
    assert (await database_sync_to_async(lambda: _log(Room.objects.get(code=code)))())[:2] == (2, 2)


WIRE_IDS = ['"\\ud800"', '"a\\u0000"', '"\\udfff-x"']


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("raw_id", WIRE_IDS, ids=[f"wire-id{i}" for i in range(len(WIRE_IDS))])
@pytest.mark.parametrize("who", ["presenter", "no-session", "student"])
async def test_a_command_id_with_a_surrogate_or_nul_is_refused_on_every_socket(code, presenter_headers, raw_id, who):
    headers = {"presenter": presenter_headers, "no-session": [ORIGIN],
               "student": (await database_sync_to_async(student)(code, "Alice"))[0] if who == "student" else None}[who]
    async with open_socket(code, headers) as comm:
        await comm.send_to(text_data='{"headers": {"HX-Request-ID": %s}, "body": %s}' % (raw_id, json.dumps(ADD)))
        answer = await reply(comm)
    assert answer["error"].startswith("A command id is text")
    assert (await database_sync_to_async(lambda: _log(Room.objects.get(code=code)))())[:2] == (1, 1)


# -- the pages that take text --------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("raw", [b"name=Al%00ice", b"name=%00", b"name=%ED%A0%80x", b"name=a%C0%80b", b"name=%F4%90%80%80"],
                         ids=["nul", "only-nul", "encoded-surrogate", "overlong-nul", "past-unicode"])
def test_the_name_form_refuses_or_repairs_text_no_database_stores(raw):
    from django.test import Client

    room = _room(SLUG, [])
    browser = Client()
    browser.get(f"/r/{room.code}/")
    response = browser.post(f"/r/{room.code}/name/", data=raw, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 302
    name = browser.session.get("names", {}).get(room.code)
    error = browser.session.get("name_error")
    assert name is None or not any(ch == "\x00" or "\ud800" <= ch <= "\udfff" for ch in name)
    if b"%00" in raw:
        assert name is None and error["message"] == "A name is printable characters only."
        assert "\x00" not in error["typed"]
    page = browser.get(f"/r/{room.code}/").content.decode()
    assert "\x00" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["code=%00", "code=AB%00CD", "code=%ED%A0%80", "code=" + "A" * 5000])
def test_the_join_form_refuses_text_no_room_code_has(query):
    from django.test import Client

    response = Client().get(f"/join/?{query}")
    assert (response.status_code, response["Location"]) == (302, "/?error=no-room")
