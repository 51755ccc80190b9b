"""The lock quorums concept (RedLock) in a room: the engine glue (room_command_apply, the fold,
rewind, fork, refusals), the frames it renders, the class race round, the shipped lessons run
through the room engine, and the broadcast through the consumer (WebsocketCommunicator).

Presence frames (``{"presence": N}``, no seq) may land on any socket at any time; the helpers in
``wire.py`` read past them.
"""
from __future__ import annotations

import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils.html import escape

from apps.lockquorums import concept as lq
from apps.lockquorums import sim
from apps.rooms.frames import render_broadcast, render_full_frame
from apps.rooms.lessons import lessons_for
from apps.rooms.models import Room, RoomEvent
from apps.rooms.services import STATE_CACHE, SYSTEM, Actor, CommandRejected, room_fork, room_state
from tests.contract.kit import sentence_problem

from .conftest import VIEWER, apply_command as apply, refreshed, room_log_size as log_size
from .roomkit import (  # noqa: F401 - code, presenter(_headers), room, round_room, slug_presenter, viewer: fixtures
    TICK, as_json, assert_history_folds, assert_refused, assert_refused_alone, assert_snapshots_fold, code, content_of, element,
    folded_json, fresh_fold_json, live_json, log_size_of, open_round, presenter, presenter_headers, room, room_json,
    round_entries, round_room, slug_presenter, take_part, viewer,
)
from .wire import frame, open_socket, quiet, reply, update

SLUG = "lock-quorums"
RACE = {"type": "round_open", "kind": "race"}
ROUND = RACE  # the module's round (roomkit.round_room)
MARKUP = '"><svg onload=alert(1)>'  # 23 characters: a contender name (<= 40), too long for a client (<= 20)
SCRIPT = "<script>x</script>"  # 18 characters: a client name the sim accepts, drawn as text
LESSONS = Path(__file__).resolve().parents[2] / "apps" / "lockquorums" / "lessons"
LESSON_SLUGS = sorted(p.stem for p in LESSONS.glob("*.toml"))

live = pytest.mark.django_db(transaction=True)


# -- helpers -----------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Balance(HTMLParser):
    """Every opened tag is closed, in order (SVG's ``<circle .../>`` is a start-end tag)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()


def assert_well_formed(content: str) -> None:
    parser = _Balance()
    parser.feed(content)
    parser.close()
    assert not parser.errors, parser.errors[:5]
    assert not parser.stack, f"unclosed: {parser.stack[:5]}"


def assert_valid_broadcast(text: str, applied) -> dict[str, Any]:  # noqa: ANN001
    doc = json.loads(text)
    assert set(doc) == {"seq", "from", "command_id", "content"}
    assert doc["seq"] == applied.room.seq
    assert doc["from"] == applied.events[0].seq
    assert isinstance(doc["content"], str) and doc["content"]
    assert_well_formed(doc["content"])
    for line in applied.narration:
        assert escape(line) in doc["content"], line
    return doc


def assert_valid_full_frame(room: Room) -> dict[str, Any]:
    STATE_CACHE.clear()
    room = refreshed(room)
    doc = json.loads(render_full_frame(room))
    assert doc["full"] is True and doc["seq"] == room.seq
    assert_well_formed(doc["content"])
    assert "id='nb-" in doc["content"]  # the lock nodes are drawn
    return doc


@pytest.fixture
def fresh_lessons():
    """lessons_for() caches per concept: start and end each test without what it cached."""
    lessons_for.cache_clear()
    yield
    lessons_for.cache_clear()


# == 1. services ==================================================================================

@pytest.mark.django_db
def test_a_new_room_starts_with_five_guards_two_clients_and_the_room_created_event(room):
    state = room_state(room)
    assert (state.mode, [n.name for n in state.nodes], [c.name for c in state.clients]) == (
        "redlock", list("ABCDE"), ["C1", "C2"])
    assert (state.quorum, state.ttl_ms, state.drift_ms, state.fencing) == (3, 10_000, 102, False)
    assert sim.to_json(state) == sim.to_json(sim.initial_state())
    [created] = RoomEvent.objects.filter(room=room)
    assert (created.seq, created.kind, created.narration) == (1, "room_created", "Room created: Lock quorums.")


# Every presenter command of the concept, in an order in which each one is accepted.
HISTORY: list[dict[str, Any]] = [
    {"type": "acquire", "client": "C1"},
    {"type": "write", "client": "C1"},
    {"type": "client_pause", "client": "C1", "ms": 15_000},
    TICK,  # one room-clock second
    {"type": "tick", "dt_ms": "10500"},  # as a form sends it
    {"type": "acquire", "client": "C2"},
    {"type": "write", "client": "C2"},
    {"type": "tick", "dt_ms": 5000},
    {"type": "write", "client": "C1"},  # C1 woke: lost update
    {"type": "release", "client": "C2"},
    {"type": "release", "client": "C1"},  # the late holder: its keys are long gone, nothing to delete
    {"type": "node_crash", "node": "C"},
    {"type": "node_restart", "node": "C", "persistence": "false", "delayed": "true"},
    {"type": "clock_jump", "node": "B", "ms": 10_000},
    {"type": "link_cut", "client": "C1", "node": "D"},
    {"type": "link_cut", "client": "C2", "node": "A"},
    {"type": "acquire", "client": "C1"},
    {"type": "link_heal", "client": "C2", "node": "A"},
    {"type": "set_fencing", "on": True},
    {"type": "add_client"},  # C3
    {"type": "add_client", "name": "worker-9"},
    {"type": "set_latency", "client": "C2", "node": "E", "ms": 40},
    {"type": "configure", "ttl_ms": 20_000, "node_timeout_ms": 30, "retry_count": 2},
    {"type": "configure", "latency_ms": 5, "retry_delay_max_ms": "100"},
    {"type": "acquire", "client": "C3"},
    {"type": "tick", "dt_ms": 20_000},  # one TTL: the race starts from a free lock
    {"type": "race_join", "name": "Zed"},
    {"type": "race_join", "name": "Yan"},
    {"type": "race_start"},
    {"type": "race_reset"},
    {"type": "step"},  # the engine's one tick
    {"type": "load_scene", "mode": "redlock", "nodes": 7, "clients": 3, "ttl_ms": 8000, "fencing": True,
     "persistence": True},
    {"type": "acquire", "client": "C3"},
    {"type": "node_crash", "node": "G"},
    {"type": "node_restart", "node": "G"},  # with its fsync'd key
    {"type": "load_scene", "mode": "consensus", "nodes": 5, "clients": 2, "fencing": True},
    {"type": "acquire", "client": "C1"},
    {"type": "acquire", "client": "C2"},  # refused by the lease: an event, not a rejection
    {"type": "release", "client": "C1"},
    {"type": "load_scene", "mode": "single", "clients": 2},
    {"type": "acquire", "client": "C1"},
    {"type": "node_crash", "node": "R"},
    {"type": "node_restart", "node": "R", "persistence": False, "delayed": False},
    {"type": "acquire", "client": "C2"},
    {"type": "write", "client": "C2"},
]


def test_the_history_uses_every_command_of_the_concept():
    assert {c["type"] for c in HISTORY} - {"step"} == set(sim.COMMANDS)


@pytest.mark.django_db
def test_every_accepted_command_is_in_the_log_with_its_narration(room):
    for command in HISTORY:
        rows_before, seq_before = log_size(room)
        applied = apply(room, command)
        assert applied.events, command
        assert log_size(room) == (rows_before + len(applied.events), seq_before + len(applied.events))
        stored = list(RoomEvent.objects.filter(room=room, seq__gt=seq_before).order_by("seq"))
        assert [(e.kind, e.data) for e in stored] == [(e.kind, as_json(e.data)) for e in applied.events]
        assert [e.narration for e in stored] == applied.narration
        for ev in stored:
            assert ev.actor == "presenter"
            assert sentence_problem(ev.narration, ev.kind) is None, (command, ev.kind)


@pytest.mark.django_db
def test_the_live_state_equals_the_fold_of_the_log_after_every_command(room):
    applied = assert_history_folds(room, HISTORY)
    assert applied[8].after.lost_update is True  # C1 woke and wrote: the history reached the lost update


@pytest.mark.django_db
def test_the_fold_from_snapshots_equals_the_live_state(room):
    assert_snapshots_fold(room, HISTORY)


@pytest.mark.django_db
def test_the_room_clock_ticks_one_simulated_second(room):
    apply(room, {"type": "acquire", "client": "C1"})
    now = room_state(refreshed(room)).now_ms
    with pytest.raises(CommandRejected, match="The clock is paused"):
        apply(room, TICK, actor=SYSTEM)
    apply(room, {"type": "play"})
    applied = apply(room, TICK, actor=SYSTEM)
    assert [(e.kind, e.data, e.actor) for e in applied.events] == [("ticked", {"to": now + 1000}, "system")]
    assert applied.narration == [f"Time passes to t={now + 1000:,} ms."]
    with pytest.raises(CommandRejected, match="may only tick"):
        apply(room, {"type": "acquire", "client": "C2"}, actor=SYSTEM)
    apply(room, {"type": "pause"})
    assert refreshed(room).playing is False


def play_for(room: Room, seconds: int) -> None:
    """The room clock plays: one system tick (one simulated second) per second."""
    if not refreshed(room).playing:
        apply(room, {"type": "play"})
    for _ in range(seconds):
        apply(room, TICK, actor=SYSTEM)


def math_panel(room: Room) -> str:
    return element(content_of(render_full_frame(refreshed(room))), "lq-math")


@pytest.mark.django_db
def test_the_last_acquisition_panel_survives_a_few_seconds_of_play(room):
    apply(room, {"type": "acquire", "client": "C1"})
    play_for(room, 12)  # the lock expires meanwhile
    derived = lq.state_json(room_state(refreshed(room)))["derived"]
    assert derived["last_acquisition"]["validity"] == 9_883
    assert derived["holders"] == []
    assert "<strong>C1</strong>" in math_panel(room) and "9,883 ms" in math_panel(room)


@pytest.mark.django_db
def test_the_last_acquisition_panel_survives_a_minute_of_play(room):
    apply(room, {"type": "acquire", "client": "C1"})
    play_for(room, 60)
    derived = lq.state_json(room_state(refreshed(room)))["derived"]
    assert derived["last_acquisition"] is not None
    assert "<strong>C1</strong>" in math_panel(room)


@pytest.mark.django_db
def test_step_back_and_rewind_show_the_state_at_the_target(room):
    apply(room, {"type": "acquire", "client": "C1"})
    at_2 = folded_json(room, 2)
    assert at_2["clients"][0]["status"] == "holding"
    apply(room, {"type": "node_crash", "node": "C"})
    apply(room, {"type": "tick", "dt_ms": 20_000})
    apply(room, {"type": "rewind", "to_seq": 2})
    stored = refreshed(room)
    assert (stored.seq, stored.position) == (5, 2)
    assert live_json(room) == at_2
    assert fresh_fold_json(stored) == at_2
    apply(room, {"type": "step_back"})
    assert refreshed(room).position == 1
    assert live_json(room) == folded_json(room, 1) == sim.to_json(sim.initial_state())
    # A command after a rewind continues from the rewound-to state.
    applied = apply(room, {"type": "acquire", "client": "C2"})
    assert applied.after.client("C2").status == "holding"
    assert applied.after.node("C").up
    assert folded_json(room, refreshed(room).seq) == live_json(room)


@pytest.mark.django_db
@pytest.mark.parametrize("command, message", [
    ({"type": "rewind", "to_seq": "lots"}, "Rewind needs the event number"),
    ({"type": "rewind", "to_seq": str(10**30)}, "Rewind goes to an event from 1 to"),
    ({"type": "rewind", "to_seq": 1}, "already shows event 1"),
    ({"type": "step_back"}, "nothing to step back to"),
], ids=["not-a-number", "huge", "same", "step-back-at-start"])
def test_history_commands_that_do_not_fit_append_nothing(room, command, message):
    before = log_size(room)
    with pytest.raises(CommandRejected, match=message):
        apply(room, command)
    assert log_size(room) == before


@pytest.mark.django_db
def test_a_fork_copies_the_state_and_goes_its_own_way(room):
    for command in HISTORY[:10]:
        apply(room, command)
    parent = refreshed(room)
    parent_json = live_json(parent)
    fork, key = room_fork(room=parent)
    assert key and fork.code != parent.code
    assert (fork.parent_id, fork.parent_seq, fork.concept) == (parent.pk, parent.seq, SLUG)
    [created] = RoomEvent.objects.filter(room=fork)
    assert created.kind == "room_created"
    assert created.data["forked_from"] == {"code": parent.code, "seq": parent.seq}
    STATE_CACHE.clear()
    assert live_json(fork) == parent_json
    assert live_json(fork)["lost_update"] is True
    apply(fork, {"type": "node_crash", "node": "A"})
    assert live_json(fork)["nodes"][0]["up"] is False
    assert live_json(parent) == parent_json
    assert log_size(parent) == (parent.seq, parent.seq)


BAD = [
    ({"type": "node_crash", "node": "Z"}, "There is no lock node called 'Z' (nodes: A, B, C, D, E)"),
    ({"type": "node_crash"}, "There is no lock node called that: a node is named by text"),
    ({"type": "node_restart", "node": "A"}, "Node A is up; crash it first"),
    ({"type": "clock_jump", "node": "Q", "ms": 100}, "There is no lock node called 'Q'"),
    ({"type": "link_cut", "client": "C1", "node": ["A"]}, "There is no lock node called"),
    ({"type": "acquire", "client": "C9"}, "There is no client called 'C9' (clients: C1, C2)"),
    ({"type": "write", "client": "C1"}, "C1 does not believe it holds the lock"),
    ({"type": "release", "client": "C1"}, "C1 has no lock to release"),
    ({"type": "clock_jump", "node": "C", "ms": str(10**30)}, "A clock jump must be a whole number from 1 to 3,600,000"),
    ({"type": "clock_jump", "node": "C", "ms": 10**30}, "A clock jump must be from 1 to 3,600,000 (got a much larger number)"),
    ({"type": "tick", "dt_ms": str(10**30)}, "A tick must be a whole number from 1 to 3,600,000"),
    ({"type": "tick", "dt_ms": 10**30}, "got a much larger number"),
    ({"type": "tick", "dt_ms": 0}, "A tick must be from 1 to 3,600,000 (got 0)"),
    ({"type": "tick", "dt_ms": 1.5}, "A tick must be a whole number"),
    ({"type": "client_pause", "client": "C1", "ms": "lots"}, "A pause must be a whole number from 1 to 3,600,000"),
    ({"type": "client_pause", "client": "C1", "ms": True}, "A pause must be a whole number"),
    ({"type": "client_pause", "client": "C1"}, "A pause must be a whole number"),
    ({"type": "set_latency", "client": "C1", "node": "A", "ms": "lots"}, "A link latency must be a whole number"),
    ({"type": "configure", "ttl_ms": str(10**30)}, "The TTL (ms) must be a whole number from 100 to 600,000"),
    ({"type": "configure", "ttl_ms": 10**30}, "got a much larger number"),
    ({"type": "configure", "node_timeout_ms": 20_000}, "The per-node timeout must be far below the TTL (10,000 ms)"),
    ({"type": "configure", "ttl_ms": 10_000}, "Those are the settings already"),
    ({"type": "load_scene", "nodes": str(10**30)}, "The number of lock nodes must be a whole number from 1 to 7"),
    ({"type": "load_scene", "nodes": 4}, "A lock cluster has 3, 5 or 7 nodes"),
    ({"type": "load_scene", "mode": "paxos"}, "The mode must be one of single, redlock, consensus"),
    ({"type": "load_scene", "clients": 10**30}, "The number of clients must be from 1 to 6"),
    ({"type": "set_fencing", "on": "lots"}, "fencing must be true or false"),
    ({"type": "add_client", "name": MARKUP}, "A client name is printable text of 1 to 20 characters"),
    ({"type": "add_client", "name": "<b>x</b>\n<i>"}, "A client name is printable text of 1 to 20 characters"),
    ({"type": "add_client", "name": "   "}, "A client name is printable text"),
    ({"type": "add_client", "name": 7}, "A client name is printable text"),
    ({"type": "add_client", "name": "C1"}, "There is already a client called C1"),
    ({"type": "race_start"}, "Nobody has joined the race yet"),
    ({"type": "race_reset"}, "There is no race to clear"),
    ({"type": "race_join", "name": "C2"}, "C2 is the name of one of the room's own clients"),
    ({"type": "no_such_command"}, "Unknown command 'no_such_command' for the lock quorum"),
    ({"type": "speed", "speed": "lots"}, "Speed must be a number"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("command, message", BAD, ids=[f"{i}-{c['type']}" for i, (c, _m) in enumerate(BAD)])
def test_bad_input_is_refused_with_a_clear_message_and_appends_nothing(room, command, message):
    apply(room, {"type": "tick", "dt_ms": 5})  # a log with something in it
    assert_refused(room, command, re.escape(message))


# == 2. rendering ================================================================================

# (name, commands that set the scene, the command whose broadcast is checked)
EVERY: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = [
    ("acquire", [], {"type": "acquire", "client": "C1"}),
    ("acquire-fails", [{"type": "acquire", "client": "C1"}], {"type": "acquire", "client": "C2"}),
    ("release", [{"type": "acquire", "client": "C1"}], {"type": "release", "client": "C1"}),
    ("write", [{"type": "acquire", "client": "C1"}], {"type": "write", "client": "C1"}),
    ("write-stale", [{"type": "set_fencing", "on": True}, {"type": "acquire", "client": "C1"},
                     {"type": "client_pause", "client": "C1", "ms": 15_000}, {"type": "tick", "dt_ms": 11_000},
                     {"type": "acquire", "client": "C2"}, {"type": "write", "client": "C2"}, {"type": "tick", "dt_ms": 5000}],
     {"type": "write", "client": "C1"}),
    ("node_crash", [], {"type": "node_crash", "node": "C"}),
    ("node_restart", [{"type": "node_crash", "node": "C"}], {"type": "node_restart", "node": "C", "delayed": True}),
    ("link_cut", [], {"type": "link_cut", "client": "C1", "node": "D"}),
    ("link_heal", [{"type": "link_cut", "client": "C1", "node": "D"}], {"type": "link_heal", "client": "C1", "node": "D"}),
    ("clock_jump", [{"type": "acquire", "client": "C1"}], {"type": "clock_jump", "node": "C", "ms": 10_000}),
    ("client_pause", [{"type": "acquire", "client": "C1"}], {"type": "client_pause", "client": "C1", "ms": 15_000}),
    ("tick", [{"type": "acquire", "client": "C1"}], TICK),
    ("tick-expires", [{"type": "acquire", "client": "C1"}], {"type": "tick", "dt_ms": 11_000}),
    ("step", [], {"type": "step"}),
    ("set_fencing", [], {"type": "set_fencing", "on": True}),
    ("add_client", [], {"type": "add_client", "name": "C3"}),
    ("set_latency", [], {"type": "set_latency", "client": "C1", "node": "A", "ms": 30}),
    ("configure", [], {"type": "configure", "ttl_ms": 30_000, "latency_ms": 7}),
    ("load_scene-same-shape", [], {"type": "load_scene", "ttl_ms": 5000, "fencing": True}),
    ("load_scene-seven", [], {"type": "load_scene", "nodes": 7, "clients": 4}),
    ("load_scene-single", [], {"type": "load_scene", "mode": "single"}),
    ("load_scene-consensus", [], {"type": "load_scene", "mode": "consensus", "fencing": True}),
    ("race_join", [], {"type": "race_join", "name": "Zed"}),
    ("race_start", [{"type": "race_join", "name": "Zed"}, {"type": "race_join", "name": "Yan"}], {"type": "race_start"}),
    ("race_reset", [{"type": "race_join", "name": "Zed"}, {"type": "race_start"}], {"type": "race_reset"}),
    ("rewind", [{"type": "acquire", "client": "C1"}, TICK], {"type": "rewind", "to_seq": 2}),
    ("step_back", [{"type": "acquire", "client": "C1"}], {"type": "step_back"}),
    ("play", [], {"type": "play"}),
    ("speed", [], {"type": "speed", "speed": 2}),
    ("round_open", [], RACE),
    ("round_close", [RACE], {"type": "round_close"}),
    ("present", [], {"type": "present"}),
    ("view_only", [], {"type": "view_only", "on": True}),
    ("lesson_start", [], {"type": "lesson_start", "lesson": "02-the-process-pause"}),
    ("lesson_next", [{"type": "lesson_start", "lesson": "02-the-process-pause"}], {"type": "lesson_next"}),
    ("lesson_stop", [{"type": "lesson_start", "lesson": "01-five-guards-and-a-quorum"}], {"type": "lesson_stop"}),
]


def test_every_command_of_the_concept_has_a_rendering_case():
    assert set(sim.COMMANDS) <= {command["type"] for _name, _setup, command in EVERY}


@pytest.mark.django_db
@pytest.mark.parametrize("setup, command", [(s, c) for _n, s, c in EVERY], ids=[n for n, _s, _c in EVERY])
def test_every_command_renders_a_valid_broadcast_and_full_frame(room, setup, command, fresh_lessons):
    for earlier in setup:
        apply(room, earlier)
    applied = apply(room, command)
    assert_valid_broadcast(render_broadcast(applied), applied)
    assert_valid_full_frame(room)


@pytest.mark.django_db
@pytest.mark.parametrize("commands", [
    [],
    [{"type": "load_scene", "mode": "single"}, {"type": "acquire", "client": "C1"}],
    [{"type": "load_scene", "mode": "consensus", "fencing": True}, {"type": "acquire", "client": "C1"}],
    [{"type": "load_scene", "nodes": 7, "clients": 6}, {"type": "node_crash", "node": "G"}],
    [{"type": "race_join", "name": "Zed"}, {"type": "race_start"}],
], ids=["seed", "single", "consensus", "seven-nodes", "after-a-race"])
def test_the_room_page_and_state_json_serve_every_mode(room, commands, client: Client):
    for command in commands:
        apply(room, command)
    STATE_CACHE.clear()
    page = client.get(f"/r/{room.code}/")
    assert page.status_code == 200
    html = page.content.decode()
    nodes = room_state(refreshed(room)).nodes
    assert sorted(re.findall(r"id='nb-(\w)'", html)) == sorted(n.name for n in nodes)
    doc = client.get(f"/r/{room.code}/state.json").json()
    assert (doc["concept"], doc["seq"]) == (SLUG, refreshed(room).seq)
    assert doc["state"]["derived"]["quorum"] == len(nodes) // 2 + 1


@pytest.mark.django_db
def test_a_new_scene_of_another_shape_adds_its_parts_and_redraws_the_diagram(room):
    applied = apply(room, {"type": "load_scene", "nodes": 7, "clients": 4})
    content = content_of(render_broadcast(applied))
    # The stage is a diff: the nodes move along the arc to make room (A, at its end, stays put),
    # and two nodes and two clients are new.
    assert sorted(re.findall(r"id='nb-(\w)'", content)) == list("BCDEFG")
    assert {"2", "3"} <= set(re.findall(r"id='cl-(\d)'", content))
    assert "tt-nodes" in content and "4 of 7 make a quorum" in content
    # The diagram has a lane per client, node and the storage: 12 lanes now, drawn whole.
    assert 'id="lq-diagram"' in content and 'hx-swap-oob="outerMorph"' in content
    assert len(re.findall(r"id='lane-\d+'", content)) == 12


@pytest.mark.django_db
def test_node_crash_broadcast_draws_the_node_down(room):
    content = content_of(render_broadcast(apply(room, {"type": "node_crash", "node": "C"})))
    assert "class='nbody down'" in element(content, "nb-C")
    assert "Node C crashed" in content
    assert "id='nb-A'" not in content  # a diff: the nodes that did not change are not sent


@pytest.mark.django_db
@pytest.mark.parametrize("fencing", [False, True], ids=["fencing-off", "fencing-on"])
def test_the_process_pause_broadcasts_stay_small(room, fencing):
    sizes = []
    for cmd in sim.scenario_commands("process_pause", fencing):
        applied = apply(room, {k: v for k, v in cmd.items() if k != "_seed"})
        text = render_broadcast(applied)
        assert_valid_broadcast(text, applied)
        sizes.append(len(text.encode()))
    print(f"process_pause fencing={fencing}: broadcast bytes {sizes}, median {statistics.median(sizes):.0f}")
    assert max(sizes) <= 12 * 1024, sizes
    assert statistics.median(sizes) <= 8 * 1024, sizes
    state = room_state(refreshed(room))
    if fencing:
        assert (state.lost_update, state.writes[-1].accepted) == (False, False)
    else:
        assert state.lost_update is True


@pytest.mark.django_db
def test_a_client_name_with_markup_is_text_in_every_frame_and_the_page(room, client: Client):
    frames = []
    for command in [
        {"type": "add_client", "name": SCRIPT},
        {"type": "acquire", "client": SCRIPT},
        {"type": "write", "client": SCRIPT},
        {"type": "set_latency", "client": SCRIPT, "node": "B", "ms": 9},
        {"type": "link_cut", "client": SCRIPT, "node": "A"},
        {"type": "client_pause", "client": SCRIPT, "ms": 2000},
        {"type": "tick", "dt_ms": 3000},
        {"type": "release", "client": SCRIPT},
        {"type": "acquire", "client": "C1"},
    ]:
        frames.append(render_broadcast(apply(room, command)))
    frames.append(render_full_frame(refreshed(room)))
    for text in frames:
        content = content_of(text)
        assert "<script" not in content.lower()
        assert "<svg onload" not in content
    assert any("&lt;script&gt;x&lt;/script&gt;" in content_of(text) for text in frames)
    STATE_CACHE.clear()
    page = client.get(f"/r/{room.code}/").content.decode()
    assert SCRIPT not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page


# == 3. the class race round ======================================================================

def racer(name: str, n: int) -> Actor:
    return Actor("participant", name, f"pid-racer-{n}")


RACERS = [racer("Ann", 1), racer("Bo", 2), racer(MARKUP, 3)]


def race_panel(room: Room) -> str:
    room = refreshed(room)
    return lq.round_panel(room_state(room), room.round)


@pytest.mark.django_db
def test_the_class_race_names_the_winner_and_every_contender_escaped(round_room):
    assert refreshed(round_room).round == {"kind": "race", "title": "Race for the lock", "open": True, "entries": []}
    for actor in RACERS:
        applied = apply(round_room, {"type": "race_me"}, actor=actor)
        assert [e.kind for e in applied.events] == ["contender_joined", "round_entry"]
        assert applied.events[0].data["name"] == actor.name
        assert applied.events[1].data == {"pid": actor.pid, "name": actor.name, "entry": actor.name}
        assert applied.narration[0] == f"{actor.name} joined the race."
        content = assert_valid_broadcast(render_broadcast(applied), applied)["content"]
        assert "<svg onload" not in content
        mine = lq.my_entry(applied.after, applied.events[-1].data)
        assert f"You are in the race as {escape(actor.name)}" in mine and "<svg onload" not in mine
    assert [e["name"] for e in refreshed(round_room).round["entries"]] == [a.name for a in RACERS]
    waiting = race_panel(round_room)
    assert "<strong>3</strong> clients in the race" in waiting
    assert "<svg onload" not in waiting and escape(MARKUP) in waiting

    before = log_size(round_room)
    with pytest.raises(CommandRejected, match="Only the presenter can do that. In this round you can: join the race"):
        apply(round_room, {"type": "race_start"}, actor=RACERS[0])
    assert log_size(round_room) == before

    applied = apply(round_room, {"type": "race_start"})
    assert [e.kind for e in applied.events] == ["race_run"]
    content = assert_valid_broadcast(render_broadcast(applied), applied)["content"]
    assert "<svg onload" not in content
    state = room_state(refreshed(round_room))
    result = state.race.result
    assert result is not None and [c["name"] for c in result["contenders"]] == [a.name for a in RACERS]
    assert result["winners"], "three clients racing for five free nodes: someone wins"
    winner = result["winners"][-1]
    assert lq.state_json(state)["derived"]["race_winner"] == winner
    panel = race_panel(round_room)
    assert "<svg onload" not in panel
    tries = next(c["tries"] for c in result["contenders"] if c["name"] == winner)
    won = tries[-1]
    assert won["acquired"] and won["oks"] >= 3
    headline = f"got the lock: {won['oks']} of 5 ({', '.join(won['ok'])}) on try {len(tries)}"
    assert f"<p class=\"big\"><strong>{escape(winner)}</strong> {headline} · 3 clients" in panel
    for actor in RACERS:
        assert f"<strong>{escape(actor.name)}</strong>" in panel
        assert f'data-student="{escape(actor.name)}"' in panel
    assert panel.count('class="won"') == len(result["winners"])
    assert f"{escape(winner)} {headline}" in content  # the narration says what the headline says, escaped


@pytest.mark.django_db
def test_a_second_race_me_is_refused_and_race_reset_allows_a_new_race(round_room):
    for actor in RACERS[:2]:
        apply(round_room, {"type": "race_me"}, actor=actor)
    apply(round_room, {"type": "race_start"})
    before = log_size(round_room)
    with pytest.raises(CommandRejected, match="You have already taken part in this round"):
        apply(round_room, {"type": "race_me"}, actor=RACERS[0])
    with pytest.raises(CommandRejected, match="This race has run: clear it to start a new one"):
        apply(round_room, {"type": "race_start"})
    assert log_size(round_room) == before
    # A late student cannot join a race that has run.
    with pytest.raises(CommandRejected, match="This race has run: wait for the presenter"):
        apply(round_room, {"type": "race_me"}, actor=racer("Late", 9))

    applied_state = room_state(refreshed(round_room))
    winner = applied_state.race.result["winners"][-1]
    held = [n.name for n in applied_state.nodes if n.key is not None and n.key.owner == winner]
    assert len(held) >= 3
    applied = apply(round_room, {"type": "race_reset"})
    # The winner's keys are released as part of the reset (an explicit event): the next race
    # starts from a free lock.
    assert applied.narration == [f"The race was cleared. {winner} released the lock on {', '.join(held)}. "
                                 "A new race can start from a free lock."]
    assert room_state(refreshed(round_room)).race == sim.Race()
    assert all(n.key is None for n in room_state(refreshed(round_room)).nodes)
    assert "<strong>0</strong> clients in the race" in race_panel(round_room)
    # A new student joins the new race and the presenter can run it.
    apply(round_room, {"type": "race_me"}, actor=racer("Cy", 4))
    applied = apply(round_room, {"type": "race_start"})
    assert [c["name"] for c in applied.after.race.result["contenders"]] == ["Cy"]
    # Closing and reopening the round lets everyone race again.
    apply(round_room, {"type": "race_reset"})
    apply(round_room, {"type": "round_close"})
    apply(round_room, RACE)
    for actor in RACERS:
        apply(round_room, {"type": "race_me"}, actor=actor)
    assert [c.name for c in room_state(refreshed(round_room)).race.contenders] == [a.name for a in RACERS]


def race_run(round_room: Room, close: bool = False) -> None:
    """Two students race in the open round (and the presenter closes it)."""
    for actor in RACERS[:2]:
        apply(round_room, {"type": "race_me"}, actor=actor)
    apply(round_room, {"type": "race_start"})
    if close:
        apply(round_room, {"type": "round_close"})


@pytest.mark.django_db
def test_after_race_reset_the_students_who_raced_can_join_the_new_race(round_room):
    race_run(round_room)
    apply(round_room, {"type": "race_reset"})
    applied = apply(round_room, {"type": "race_me"}, actor=RACERS[0])
    assert applied.events[0].kind == "contender_joined"


@pytest.mark.django_db
def test_reopening_the_race_round_starts_a_new_race_with_its_opening_commands_in_the_log(round_room):
    """round_open runs the race round's opening commands (``race_round_opened``: a race_reset
    when a race is left over), so the last round's contenders and winner are gone, and nothing
    is left over to warn of."""
    race_run(round_room, close=True)
    assert "race-leftover" not in race_panel(round_room)  # a closed round warns of nothing
    assert lq.race_round_opened(room_state(refreshed(round_room))) == [{"type": "race_reset"}]
    applied = apply(round_room, RACE)
    assert [e.kind for e in applied.events][:2] == ["round_opened", "race_reset"]
    assert room_state(refreshed(round_room)).race == sim.Race() and refreshed(round_room).round["entries"] == []
    assert "race-leftover" not in race_panel(round_room)
    assert lq.race_round_opened(room_state(refreshed(round_room))) == []  # nothing left to clear


@pytest.mark.django_db
def test_opening_a_new_race_round_starts_from_no_contenders(round_room):
    race_run(round_room, close=True)
    apply(round_room, RACE)  # no "New race" in between: a new round is a new race all the same
    applied = apply(round_room, {"type": "race_me"}, actor=racer("Cy", 4))
    assert applied.events[-2].kind == "contender_joined"
    assert [c.name for c in room_state(refreshed(round_room)).race.contenders] == ["Cy"]


@pytest.mark.django_db
def test_race_me_refusals_in_the_round(round_room):
    before = log_size(round_room)
    with pytest.raises(CommandRejected, match="Your entry could not run: C1 is the name of one of the room's own clients"):
        apply(round_room, {"type": "race_me"}, actor=racer("C1", 5))
    with pytest.raises(CommandRejected, match="Your entry could not run: A name in the race is printable text"):
        apply(round_room, {"type": "race_me"}, actor=racer("x" * 41, 6))
    with pytest.raises(CommandRejected, match="In this round you can: join the race"):
        apply(round_room, {"type": "acquire", "client": "C1"}, actor=RACERS[0])
    with pytest.raises(CommandRejected, match="view-only"):
        apply(round_room, {"type": "race_me"}, actor=VIEWER)
    assert log_size(round_room) == before
    assert refreshed(round_room).round["entries"] == []


# == 4. lessons ==================================================================================

def test_the_lessons_folder_has_the_five_lessons(fresh_lessons):
    assert [lesson.slug for lesson in lessons_for(SLUG)] == LESSON_SLUGS
    assert len(LESSON_SLUGS) == 5


@pytest.mark.django_db
def test_lesson_two_shows_the_lost_update_then_the_fenced_write(room, client: Client, fresh_lessons):
    steps = next(lesson for lesson in lessons_for(SLUG) if lesson.slug == "02-the-process-pause").steps
    fenced_from = next(i for i, s in enumerate(steps) if "fencing" in s.title.lower())
    apply(room, {"type": "lesson_start", "lesson": "02-the-process-pause"})
    for _ in range(1, fenced_from):
        apply(room, {"type": "lesson_next"})
    assert refreshed(room).lesson["step"] == fenced_from - 1  # the end of the fencing-off part
    state = room_state(refreshed(room))
    assert state.lost_update is True and state.fencing is False
    assert [(w.client, w.accepted) for w in state.writes] == [("C2", True), ("C1", True)]
    doc = client.get(f"/r/{room.code}/state.json").json()
    assert doc["concept"] == SLUG and doc["seq"] == refreshed(room).seq
    derived = doc["state"]["derived"]
    assert {"holders", "quorum", "drift_ms"} <= set(derived)
    assert (derived["holders"], derived["quorum"], derived["drift_ms"]) == (["C2"], 3, 102)
    assert doc["state"]["lost_update"] is True
    plain = {k: v for k, v in doc["state"].items() if k != "derived"}
    assert plain == live_json(room)
    # The fenced replay: the storage refuses C1's stale token.
    for _ in range(fenced_from, len(steps)):
        apply(room, {"type": "lesson_next"})
    state = room_state(refreshed(room))
    assert (state.lost_update, state.fencing) == (False, True)
    assert (state.writes[-1].client, state.writes[-1].accepted) == ("C1", False)
    assert "stale token 33 < 34" in state.writes[-1].reason
    derived = client.get(f"/r/{room.code}/state.json").json()["state"]["derived"]
    assert (derived["holders"], derived["quorum"], derived["drift_ms"]) == (["C2"], 3, 102)


# == 5. through the consumer ======================================================================

@pytest.fixture
async def second_presenter(code, presenter_headers) -> AsyncIterator[WebsocketCommunicator]:
    """The presenter's second window (the projector tab): the same session."""
    async with open_socket(code, presenter_headers) as comm:
        yield comm


@live
async def test_socket_node_crash_reaches_the_other_windows_with_the_node_down(code, presenter, second_presenter, viewer):
    await presenter.send_to(text_data=frame({"type": "node_crash", "node": "C"}, request_id="crash-c"))
    got = await update(second_presenter)
    seen = await update(viewer)
    mine = await update(presenter)
    assert got == seen == mine
    assert (got["seq"], got["from"], got["command_id"]) == (2, 2, "crash-c")
    assert "class='nbody down'" in element(got["content"], "nb-C")
    assert "Node C crashed" in got["content"]
    assert [n["up"] for n in (await room_json(code))["nodes"]] == [True, True, False, True, True]
    for comm in (presenter, second_presenter, viewer):
        assert await quiet(comm)
    # And back up.
    await second_presenter.send_to(text_data=frame({"type": "node_restart", "node": "C"}))
    got = await update(presenter)
    assert "class='nbody up'" in element(got["content"], "nb-C")
    assert (await update(viewer)) == got


@live
@pytest.mark.parametrize("payload, message", [
    ({"text_data": "{not json"}, "not JSON"),
    ({"text_data": "[1, 2]"}, "not understood"),
    ({"text_data": json.dumps({"body": "node_crash"})}, "not understood"),
    ({"bytes_data": b"\x00garbage"}, "Binary frames"),
    ({"text_data": frame({"node": "C"})}, "needs a type"),
    ({"text_data": frame({"type": "node_crash", "node": "Z"})}, "There is no lock node called 'Z'"),
    ({"text_data": frame({"type": "clock_jump", "node": "C", "ms": "9" * 30})}, "whole number"),
    ({"text_data": frame({"type": "client_pause", "client": "C1", "ms": "lots"})}, "whole number"),
], ids=["not-json", "list", "body-not-an-object", "binary", "no-type", "unknown-node", "huge-number", "ms-lots"])
async def test_socket_garbage_gets_an_error_and_changes_nothing(code, presenter, viewer, payload, message):
    before = await room_json(code)
    await presenter.send_to(**payload)
    answer = await reply(presenter)
    assert message in answer["error"]
    assert "flash" in answer["content"]
    assert await quiet(viewer)
    assert await log_size_of(code) == (1, 1)
    assert await room_json(code) == before
    # The connection still works.
    await presenter.send_to(text_data=frame({"type": "node_crash", "node": "C"}))
    assert "class='nbody down'" in element((await update(viewer))["content"], "nb-C")


@live
async def test_socket_viewer_cannot_crash_a_node(code, presenter, viewer):
    await viewer.send_to(text_data=frame({"type": "node_crash", "node": "C"}, request_id="v-1"))
    answer = await assert_refused_alone(viewer, presenter, code, "This screen is view-only.")
    assert answer["command_id"] == "v-1" and answer["error"] == "This screen is view-only."


@live
async def test_socket_race_round_from_the_students_sessions(code, presenter):
    (ann_headers, ann_session), (bo_headers, _) = await open_round(presenter, code, "race", "Ann", "Bo")
    async with open_socket(code, ann_headers) as ann, open_socket(code, bo_headers) as bo:
        for comm, name in ((ann, "Ann"), (bo, "Bo")):
            broadcast, mine = await take_part(comm, presenter, {"type": "race_me"})
            assert f"{name} joined the race" in broadcast["content"]
            assert f"You are in the race as {name}" in mine["content"]
        await ann.send_to(text_data=frame({"type": "race_start"}))
        await assert_refused_alone(ann, presenter, code, "Only the presenter", log=await log_size_of(code))
        await presenter.send_to(text_data=frame({"type": "race_start"}))
        got = await update(bo)
    state = await room_json(code)
    winner = state["derived"]["race_winner"]
    assert winner in ("Ann", "Bo")
    assert f"<strong>{winner}</strong> got the lock" in got["content"]
    assert [e["pid"] for e in await round_entries(code)][0] == ann_session["pid"]


@pytest.mark.django_db
def test_the_page_shows_each_scenario_step_by_step_in_each_kind_of_lock(room, client: Client):
    """Side by side: the same fault against a single Redis, RedLock and a consensus lease, as
    rows of step cards computed by real runs (fencing off, then on)."""
    from apps.lockquorums.concept import comparison

    rows = {r["scenario"]: r for r in comparison()}
    pause_off = {b["mode"]: b for b in rows["process_pause"]["boards"][0]["modes"]}
    assert [s["text"] for s in pause_off["redlock"]["steps"]] == [
        "C1 ✓ 5/5", "C1 pause", "+11 s", "C2 ✓ 5/5", "C2 write ✓", "+5 s", "C1 write LOST"]
    assert pause_off["redlock"]["steps"][-1]["tone"] == "lost"
    pause_on = {b["mode"]: b for b in rows["process_pause"]["boards"][1]["modes"]}
    assert pause_on["consensus"]["steps"][-1]["text"] == "C1 write ✗"
    # A forgetful single Redis loses the lock; a consensus member that restarts keeps the lease.
    crash_off = {b["mode"]: b for b in rows["crash_restart"]["boards"][0]["modes"]}
    assert crash_off["single"]["outcome"]["text"] == "two writers: lost update"
    assert crash_off["consensus"]["outcome"]["text"] == "C2 could not get the lock"
    assert "C2 write refused" in [s["text"] for s in crash_off["consensus"]["steps"]]
    html = client.get(f"/r/{room.code}/").content.decode()
    assert html.count('class="storyboard"') == 3 * 2 * 3
    assert "Crash and instant restart, no fsync: step by step in each lock" in html
