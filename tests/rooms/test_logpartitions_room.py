"""The log partitions concept in a room: the engine glue (room_command_apply, the fold, JSON views,
rounds) and the broadcast through the consumer (WebsocketCommunicator, real sessions).

Presence frames (``{"presence": N}``, no seq) may land on any socket at any time; the helpers in
``wire.py`` read past them.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from apps.logpartitions import concept as lp
from apps.logpartitions import picture as pic
from apps.logpartitions import sim
from apps.rooms.frames import render_broadcast
from apps.rooms.models import Room, RoomEvent
from apps.rooms.services import STATE_CACHE, Actor, CommandRejected, room_command_apply, room_state

from .conftest import ALICE, BOB, PRESENTER, apply_command as apply, refreshed, room_log_size as log_size
from .roomkit import (  # noqa: F401 - code, presenter(_headers), room, round_room, slug_presenter, viewer: fixtures
    TICK, assert_history_folds, assert_refused, assert_refused_alone, assert_snapshots_fold, code, element, folded_json, last_events,
    live_json, log_size_of, open_round, presenter, presenter_headers, room, room_json, round_room, slug_presenter,
    take_part, viewer,
)
from .wire import astudent, frame, open_socket, quiet, reply, update

SLUG = "log-partitions"
JOIN_GROUP = {"type": "round_open", "kind": "join_group"}
ROUND = JOIN_GROUP  # the module's round (roomkit.round_room)
MARKUP = "<b>x</b>"
CELL_ID = re.compile(r"id='c-(\d+)-(\d+)'")

live = pytest.mark.django_db(transaction=True)


# -- helpers -----------------------------------------------------------------------------------

def values(state: sim.ClusterState, partition: int) -> list[str]:
    part = state.partitions[partition]
    return [r.value for r in sim.read_records(state, partition, part.log.start, part.log.end)]


def produced(events: list[RoomEvent]) -> dict[str, Any]:
    [ev] = [e for e in events if e.kind == "record_produced"]
    return ev.data


# -- the seed's picture ------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_new_room_starts_at_the_seeds_picture(room):
    state = room_state(room)
    assert state.config.name == "orders"
    assert len(state.partitions) == 3
    assert state.brokers_up == (True, True, True)
    assert values(state, 0) == ["order_id=1001", "order_id=1002", "order_id=1003"]
    assert values(state, 1) == values(state, 2) == []
    assert [g.name for g in state.groups] == ["analytics"]
    assert [p.name for p in state.producers] == ["producer"]
    assert sim.to_json(state) == sim.to_json(sim.initial_state())


@pytest.mark.django_db
def test_new_room_by_post_serves_the_seeds_picture_and_its_state_json(client: Client):
    response = client.post(f"/new/{SLUG}/")
    assert response.status_code == 302
    code = response["Location"].strip("/").split("/")[-1]
    page = client.get(f"/r/{code}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="lp-frame"' in html
    assert len(re.findall(r"id='ph-\d+'", html)) == 3
    assert len(re.findall(r"id='br-\d+'", html)) == 3
    assert len(re.findall(r"id='c-0-\d+'", html)) == 3
    doc = client.get(f"/r/{code}/state.json").json()
    assert (doc["concept"], doc["seq"], doc["position"]) == (SLUG, 1, 1)
    state = doc["state"]
    assert state["config"]["name"] == "orders"
    assert [p["log_end"] for p in state["derived"]["partitions"]] == [3, 0, 0]
    assert [p["high_watermark"] for p in state["derived"]["partitions"]] == [3, 0, 0]
    batch_ids = {run[0] for seg in state["partitions"][0]["log"]["segments"] for run in seg[2]}
    firsts = sorted(b["first_order_id"] for b in state["batches"] if b["id"] in batch_ids)
    assert firsts == [1001, 1002, 1003]


# -- the fold is the truth -----------------------------------------------------------------------

MIXED = [
    {"type": "produce", "producer": "producer", "key": "order-42"},
    {"type": "produce", "producer": "producer"},  # keyless: the sticky partitioner, by the seed
    {"type": "produce", "producer": "web", "key": "user-7", "value": "clicked"},  # a new producer
    {"type": "produce_burst", "producer": "producer", "count": 500, "pattern": "order-{i}"},
    {"type": "produce_burst", "producer": "producer", "count": 300, "pattern": "random-users"},
    {"type": "produce_burst", "producer": "web", "count": 50, "pattern": "none"},
    TICK,
    {"type": "step"},
    {"type": "broker_stop", "broker": 1},
    {"type": "produce", "producer": "producer", "key": "order-43"},
    TICK,
    {"type": "broker_start", "broker": 1},
    TICK,
    {"type": "group_join", "group": "analytics", "member": "consumer-2"},
    {"type": "group_join", "group": "audit", "member": "auditor-1"},
    {"type": "set_assignor", "group": "analytics", "assignor": "roundrobin"},
    {"type": "set_consumer_speed", "group": "analytics", "member": "consumer-2", "speed": 50},
    {"type": "set_producer_rate", "producer": "producer", "rate": 7, "pattern": "random-users"},
    TICK,
    TICK,
    # Streaming stops before the faults below: a streaming tick that fails on every partition
    # with NotEnoughReplicas is a known bug (test_a_burst_failing_everywhere_is_narrated...).
    {"type": "set_producer_rate", "producer": "producer", "rate": 0},
    {"type": "set_producer", "producer": "web", "acks": "0"},
    {"type": "set_min_insync", "value": 2},
    {"type": "broker_stop", "broker": 2},
    {"type": "produce", "producer": "producer", "key": "order-44"},  # may fail: NotEnoughReplicas
    {"type": "set_unclean", "on": True},
    {"type": "broker_stop", "broker": 0},
    TICK,
    {"type": "broker_start", "broker": 0},
    {"type": "broker_start", "broker": 2},
    {"type": "set_assignor", "group": "analytics", "assignor": "cooperative-sticky"},
    {"type": "group_leave", "group": "analytics", "member": "consumer-1"},
    TICK,
    {"type": "load_scene", "partitions": 6, "brokers": 4, "replication_factor": 3},
    {"type": "produce_burst", "producer": "producer", "count": 40, "pattern": "order-{i}"},
    {"type": "group_join", "group": "analytics", "member": "consumer-2"},
    TICK,
]


@pytest.mark.django_db
def test_the_live_state_equals_the_fold_of_the_log_after_every_command_of_a_mixed_history(room):
    assert_history_folds(room, MIXED)
    assert refreshed(room).seq > len(MIXED)  # some commands are several events (a new producer, a streaming tick)
    live = live_json(room)
    assert live["config"]["partitions"] == 6 and len(live["brokers_up"]) == 4


@pytest.mark.django_db
def test_the_fold_from_snapshots_equals_the_live_state(room):
    assert_snapshots_fold(room, MIXED)


@pytest.mark.django_db
def test_step_back_and_rewind_show_the_state_at_the_target(room):
    apply(room, {"type": "produce", "producer": "producer", "key": "a"})
    at_2 = folded_json(room, 2)
    apply(room, {"type": "broker_stop", "broker": 0})
    apply(room, TICK)
    apply(room, {"type": "rewind", "to_seq": 2})
    assert live_json(room) == at_2
    apply(room, {"type": "step_back"})
    assert live_json(room) == folded_json(room, 1)
    assert folded_json(room, refreshed(room).seq) == live_json(room)


# -- JSON views --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_events_json_lists_this_concepts_events_with_their_narration(room, client: Client):
    apply(room, {"type": "produce", "producer": "producer", "key": "order-42"})
    apply(room, {"type": "broker_stop", "broker": 0})
    apply(room, {"type": "group_join", "group": "analytics", "member": "consumer-2"})
    doc = client.get(f"/r/{room.code}/events.json").json()
    assert (doc["room"], doc["concept"], doc["seq"], doc["more"]) == (room.code, SLUG, 4, False)
    assert [e["kind"] for e in doc["events"]] == ["room_created", "record_produced", "broker_stopped", "member_joined"]
    for e in doc["events"]:
        assert set(e) == {"seq", "kind", "data", "command_id", "actor", "narration", "created"}
    rec = doc["events"][1]
    assert rec["actor"] == "presenter"
    assert {"producer", "key", "value", "partition", "offset", "hash", "positive", "chosen_by", "ack"} <= set(rec["data"])
    assert rec["data"]["partition"] == sim.partition_for("order-42", 3)
    assert "murmur2" in rec["narration"]
    stop = doc["events"][2]["data"]
    assert stop["broker"] == 0 and {"elections", "fenced_from_isr"} <= set(stop)
    assert doc["events"][3]["data"]["rebalance"]["generation"] == 2
    later = client.get(f"/r/{room.code}/events.json?after=2").json()
    assert [e["seq"] for e in later["events"]] == [3, 4]


@pytest.mark.django_db
def test_state_json_has_the_state_and_its_derived_views(room, client: Client):
    apply(room, {"type": "produce", "producer": "producer", "key": "order-42"})
    doc = client.get(f"/r/{room.code}/state.json").json()
    assert set(doc) == {"room", "concept", "seq", "position", "clock", "forked_from", "state"}
    assert doc["clock"] == {"playing": False, "speed": 1.0}
    state = doc["state"]
    assert set(state) == {"config", "brokers_up", "partitions", "batches", "producers", "groups", "clock_ms", "tick",
                          "next_order_id", "next_batch_id", "lost_records", "derived"}
    derived = state["derived"]
    assert set(derived) == {"partitions", "groups", "producers", "totals"}
    assert [p["index"] for p in derived["partitions"]] == [0, 1, 2]
    p = derived["partitions"][sim.partition_for("order-42", 3)]
    assert {"leader", "isr", "replicas", "high_watermark", "log_start", "log_end", "records", "online",
            "under_replicated"} <= set(p)
    assert derived["groups"][0]["name"] == "analytics"
    assert {"members", "partitions", "total_lag", "assignor", "generation"} <= set(derived["groups"][0])
    assert derived["producers"][0]["name"] == "producer"
    assert derived["totals"]["records"] == 4
    # The JSON without "derived" is exactly the concept's to_json, and it loads back.
    plain = {k: v for k, v in state.items() if k != "derived"}
    assert plain == live_json(room)
    assert sim.to_json(sim.from_json(plain)) == plain


# -- the picture in the broadcast ---------------------------------------------------------------

@pytest.mark.django_db
def test_produce_broadcast_appends_the_new_cell_where_the_event_says(room):
    applied = apply(room, {"type": "produce", "producer": "producer", "key": "order-42"})
    data = produced(applied.events)
    assert data["partition"] == sim.partition_for("order-42", 3)
    content = json.loads(render_broadcast(applied))["content"]
    cell = element(content, f"c-{data['partition']}-{data['offset']}")
    assert "data-key='order-42'" in cell
    assert f'beforeend:#lp-cells"><g id=\'c-{data["partition"]}-{data["offset"]}\'' in content
    assert f"offset {data['offset']}" in content and "murmur2" in content


@pytest.mark.django_db
def test_a_burst_broadcast_stays_small(room):
    applied = apply(room, {"type": "produce_burst", "producer": "producer", "count": 5000, "pattern": "order-{i}"})
    frame_text = render_broadcast(applied)
    assert len(frame_text.encode()) < 16 * 1024  # the rows show a page of offsets, not the burst
    assert "a burst of 5,000 records: 5,000 written" in frame_text


@pytest.mark.django_db
def test_load_scene_with_other_sizes_repaints_the_whole_frame(room):
    applied = apply(room, {"type": "load_scene", "partitions": 5, "brokers": 4, "replication_factor": 3})
    content = json.loads(render_broadcast(applied))["content"]
    assert '<svg hx-swap-oob="outerMorph" id="lp-rows"' in content  # the rows' region, drawn again whole
    assert 'viewBox="0 0 {} {}"'.format(pic.WIDTH, pic.ROWS_Y + 5 * pic.ROW_H) in content
    assert len(re.findall(r"id='ph-\d+'", content)) == 5
    assert len(re.findall(r"id='br-\d+'", content)) == 4


# -- produce failures are events, narrated -------------------------------------------------------

def _all_below_min_insync(room: Room) -> None:
    """RF 3 with min.insync.replicas 3 and one broker down: every partition refuses acks=all."""
    apply(room, {"type": "load_scene", "partitions": 3, "brokers": 3, "replication_factor": 3})
    apply(room, {"type": "set_min_insync", "value": 3})
    apply(room, {"type": "broker_stop", "broker": 0})


@pytest.mark.django_db
def test_a_single_produce_below_min_insync_fails_and_is_narrated(room):
    _all_below_min_insync(room)
    applied = apply(room, {"type": "produce", "producer": "producer", "key": "k"})
    assert [e.kind for e in applied.events] == ["produce_failed"]
    assert "NotEnoughReplicas" in applied.narration[0] and "min.insync.replicas is 3" in applied.narration[0]


@pytest.mark.django_db
@pytest.mark.parametrize("commands", [
    [{"type": "produce_burst", "producer": "producer", "count": 5, "pattern": "order-{i}"}],
    [{"type": "set_producer_rate", "producer": "producer", "rate": 3, "pattern": "order-{i}"}, TICK],
], ids=["burst", "streaming-tick"])
def test_a_burst_failing_everywhere_is_narrated_not_a_server_error(room, commands):
    _all_below_min_insync(room)
    for command in commands:
        applied = apply(room, command)
    assert any(e.kind == "produce_failed" for e in applied.events)
    assert any("NotEnoughReplicas" in line for line in applied.narration)


@pytest.mark.django_db
def test_a_keyless_produce_with_every_partition_offline_names_no_partition(room):
    for b in (0, 1, 2):
        apply(room, {"type": "broker_stop", "broker": b})
    applied = apply(room, {"type": "produce", "producer": "producer"})
    assert [e.kind for e in applied.events] == ["produce_failed"]
    assert "LeaderNotAvailable" in applied.narration[0]
    assert "PNone" not in applied.narration[0]


# -- refused: nothing appended ------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("command, message", [
    ({"type": "broker_stop", "broker": 9}, "The broker must be from 0 to 2"),
    ({"type": "broker_start", "broker": 9}, "The broker must be from 0 to 2"),
    ({"type": "broker_start", "broker": 0}, "already running"),
    ({"type": "load_scene", "partitions": 13}, "partitions must be from 1 to 12"),
    ({"type": "load_scene", "partitions": 3, "brokers": 7}, "brokers must be from 1 to 6"),
    ({"type": "load_scene", "brokers": 2, "replication_factor": 3}, "replication factor must be from 1 to 2"),
    ({"type": "set_assignor", "group": "nobody", "assignor": "range"}, "no consumer group called nobody"),
    ({"type": "group_leave", "group": "nobody", "member": "consumer-1"}, "no consumer group called nobody"),
    ({"type": "group_leave", "group": "analytics", "member": "ghost"}, "no consumer ghost in analytics"),
    ({"type": "set_consumer_speed", "group": "nobody", "member": "consumer-1", "speed": 3}, "no consumer group"),
    ({"type": "group_join", "group": "analytics", "member": "consumer-1"}, "already in analytics"),
    ({"type": "set_assignor", "group": "analytics", "assignor": "sticky"}, "The assignor is one of"),
    ({"type": "set_producer_rate", "producer": "nobody", "rate": 3}, "no producer called nobody"),
    ({"type": "set_min_insync", "value": 3}, "min.insync.replicas must be from 1 to 2"),
    ({"type": "produce_burst", "producer": "producer", "count": 0}, "number of records must be from 1"),
    ({"type": "produce", "producer": "producer", "key": "k" * 41}, "at most 40 characters"),
    ({"type": "produce", "producer": ""}, "Give the producer a name"),
    ({"type": "no_such_command"}, "Unknown command"),
])
def test_rejected_commands_append_nothing(room, command, message):
    assert_refused(room, command, re.escape(message))


# -- participants and the join_group round ---------------------------------------------------------

@pytest.mark.django_db
def test_in_a_join_group_round_a_participant_joins_the_class_group_as_themselves(round_room):
    applied = apply(round_room, {"type": "join_my_group"}, actor=ALICE)
    assert [e.kind for e in applied.events] == ["member_joined", "round_entry"]
    assert applied.events[0].data["group"] == "class" and applied.events[0].data["member"] == "Alice"
    assert applied.events[1].data == {"pid": ALICE.pid, "name": "Alice", "entry": "Alice"}
    group = applied.after.group("class")
    assert [m.name for m in group.members] == ["Alice"]
    assert group.members[0].partitions == (0, 1, 2)
    stored = refreshed(round_room)
    assert stored.round["entries"] == [applied.events[1].data]
    # A second student: the range assignor splits three partitions 2 + 1.
    applied = apply(round_room, {"type": "join_my_group"}, actor=BOB)
    owned = {m.name: m.partitions for m in applied.after.group("class").members}
    assert owned == {"Alice": (0, 1), "Bob": (2,)}
    panel = lp.round_panel(applied.after, refreshed(round_room).round)
    assert "<strong>2</strong> students in group <strong>class</strong>" in panel
    assert "Alice" in panel and "Bob" in panel


@pytest.mark.django_db
def test_in_a_join_group_round_other_commands_and_a_second_entry_are_refused(round_room):
    apply(round_room, {"type": "join_my_group"}, actor=ALICE)
    before = log_size(round_room)
    with pytest.raises(CommandRejected, match="In this round you can: join the consumer group"):
        apply(round_room, {"type": "produce", "producer": "producer"}, actor=ALICE)
    with pytest.raises(CommandRejected, match="already taken part"):
        apply(round_room, {"type": "join_my_group"}, actor=ALICE)
    assert log_size(round_room) == before


@pytest.mark.django_db
def test_my_entry_names_the_participants_partitions_or_says_idle(round_room):
    apply(round_room, {"type": "load_scene", "partitions": 2, "brokers": 3, "replication_factor": 2})
    names = ["Ann", "Ben", "Cat"]
    for name in names:
        applied = apply(round_room, {"type": "join_my_group"}, actor=Actor("participant", name, f"pid-{name}"))
    state = applied.after
    owned = {m.name: m.partitions for m in state.group("class").members}
    for name in names:
        html = lp.my_entry(state, {"entry": name, "name": name})
        assert f"You joined as {name}" in html
        if owned[name]:
            assert "you own <strong>" + ", ".join(f"P{p}" for p in owned[name]) + "</strong> of 2 partitions" in html
        else:
            assert "<strong>idle</strong>" in html
    assert sum(1 for p in owned.values() if not p) == 1


# -- markup in names is text --------------------------------------------------------------------

@pytest.mark.django_db
def test_markup_in_names_is_escaped_in_broadcasts_and_pages(room, client: Client):
    frames = []
    for command in [
        {"type": "produce", "producer": MARKUP, "key": MARKUP, "value": MARKUP},
        {"type": "produce_burst", "producer": MARKUP, "count": 3, "pattern": MARKUP + "{i}"},
        {"type": "group_join", "group": MARKUP, "member": MARKUP},
        {"type": "group_join", "group": "analytics", "member": MARKUP},
        {"type": "set_producer", "producer": MARKUP, "acks": "1"},
        {"type": "set_producer_rate", "producer": MARKUP, "rate": 2, "pattern": MARKUP},
        TICK,
        {"type": "set_assignor", "group": MARKUP, "assignor": "roundrobin"},
        {"type": "set_consumer_speed", "group": MARKUP, "member": MARKUP, "speed": 9},
        {"type": "group_leave", "group": "analytics", "member": MARKUP},
    ]:
        frames.append(render_broadcast(apply(room, command)))
    for text in frames:
        content = json.loads(text)["content"]
        assert MARKUP not in content, content
        assert "&lt;b&gt;" in content
    STATE_CACHE.clear()
    page = client.get(f"/r/{room.code}/").content.decode()
    assert MARKUP not in page
    assert page.count("&lt;b&gt;x&lt;/b&gt;") >= 3


@pytest.mark.django_db
def test_markup_in_a_students_name_is_escaped_in_the_round_and_my_entry(round_room):
    evil = Actor("participant", MARKUP, "pid-evil")
    applied = apply(round_room, {"type": "join_my_group"}, actor=evil)
    content = json.loads(render_broadcast(applied))["content"]
    assert MARKUP not in content and "&lt;b&gt;x&lt;/b&gt;" in content
    mine = lp.my_entry(applied.after, applied.events[-1].data)
    assert MARKUP not in mine and "You joined as &lt;b&gt;x&lt;/b&gt;" in mine


# -- through the consumer ---------------------------------------------------------------------

@database_sync_to_async
def presenter_applies(code: str, command: dict[str, Any]) -> None:
    room_command_apply(code=code, actor=PRESENTER, command=command)


@live
async def test_socket_produce_reaches_the_other_window_with_the_new_cell(code, presenter, viewer):
    await presenter.send_to(text_data=frame({"type": "produce", "producer": "producer", "key": "order-42"}))
    got = await update(viewer)
    mine = await update(presenter)
    assert got == mine
    [event] = await last_events(code, 1)
    data = event.data
    assert (got["seq"], got["from"]) == (2, 2)
    state = (await room_json(code))["derived"]["partitions"][data["partition"]]
    assert data["offset"] == state["log_end"] - 1
    assert f"id='c-{data['partition']}-{data['offset']}'" in got["content"]
    assert [m for m in CELL_ID.findall(got["content"])] == [(str(data["partition"]), str(data["offset"]))]
    assert f"to P{data['partition']} at offset {data['offset']}" in got["content"]
    assert await quiet(viewer)


@live
async def test_socket_keyless_produce_cell_is_where_the_sticky_partitioner_put_it(code, presenter, viewer):
    await presenter.send_to(text_data=frame({"type": "produce", "producer": "producer"}))
    got = await update(viewer)
    [event] = await last_events(code, 1)
    p, o = event.data["partition"], event.data["offset"]
    assert f"id='c-{p}-{o}'" in got["content"]
    assert "sticky partitioner" in got["content"]


@live
async def test_socket_broker_stop_moves_leadership_and_the_other_window_sees_the_new_leader(code, presenter, viewer):
    before = (await room_json(code))["derived"]["partitions"]
    led = [p["index"] for p in before if p["leader"] == 0]
    assert led == [0]
    await presenter.send_to(text_data=frame({"type": "broker_stop", "broker": "0"}))  # as room.js sends it
    got = await update(viewer)
    after = (await room_json(code))["derived"]["partitions"]
    assert "class='broker down'" in element(got["content"], "br-0")
    for p in led:
        new = after[p]["leader"]
        assert new is not None and new != 0
        assert f"leader b{new}" in element(got["content"], f"ph-{p}")
    assert "Broker 0 stopped" in got["content"]
    # And back: broker_start, the broker is up again (leadership stays where it is).
    await presenter.send_to(text_data=frame({"type": "broker_start", "broker": "0"}))
    got = await update(viewer)
    assert "class='broker up'" in element(got["content"], "br-0")
    assert "Broker 0 restarted" in got["content"]


@live
async def test_socket_rejection_goes_to_the_sender_alone_and_appends_nothing(code, presenter, viewer):
    before = await log_size_of(code)
    for bad in ({"type": "broker_stop", "broker": 9}, {"type": "load_scene", "partitions": 13},
                {"type": "set_assignor", "group": "nobody", "assignor": "range"}):
        await presenter.send_to(text_data=frame(bad, request_id="bad-1"))
        answer = await reply(presenter)
        assert answer["command_id"] == "bad-1" and answer["error"]
    assert await quiet(viewer)
    assert await log_size_of(code) == before


@live
async def test_socket_participant_is_refused_outside_a_round(code, presenter):
    headers, _ = await astudent(code, "Alice")
    async with open_socket(code, headers) as alice:
        for body in ({"type": "produce", "producer": "producer"}, {"type": "join_my_group"}):
            await alice.send_to(text_data=frame(body))
            await assert_refused_alone(alice, presenter, code, "Wait for the presenter to open a round")


@live
async def test_socket_join_group_round_sends_the_student_their_partitions(code, presenter):
    (alice_headers, _), (bob_headers, _) = await open_round(presenter, code, "join_group", "Alice", "Bob")
    async with open_socket(code, alice_headers) as alice, open_socket(code, bob_headers) as bob:
        broadcast, mine = await take_part(alice, presenter, {"type": "join_my_group", "key": "ignored"})
        assert "Alice joined class" in broadcast["content"]
        assert "You joined as Alice" in mine["content"]
        assert "you own <strong>P0, P1, P2</strong> of 3 partitions" in mine["content"]
        assert 'id="my-entry"' not in broadcast["content"]
        broadcast, mine = await take_part(bob, presenter, {"type": "join_my_group"})
    group = next(g for g in (await room_json(code))["derived"]["groups"] if g["name"] == "class")
    owned = {m["name"]: m["partitions"] for m in group["members"]}
    assert owned == {"Alice": [0, 1], "Bob": [2]}
    assert "you own <strong>P2</strong> of 3 partitions" in mine["content"]
    assert "Bob joined class" in broadcast["content"]
    assert "rebalance" in broadcast["content"]


@live
async def test_socket_markup_in_names_is_escaped_in_the_broadcast(code, presenter, viewer):
    for body in ({"type": "produce", "producer": MARKUP, "key": MARKUP},
                 {"type": "group_join", "group": MARKUP, "member": MARKUP}):
        await presenter.send_to(text_data=frame(body))
        got = await update(viewer)
        assert MARKUP not in got["content"]
        assert "&lt;b&gt;x&lt;/b&gt;" in got["content"]
