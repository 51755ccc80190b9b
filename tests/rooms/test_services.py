"""The room services: the log is append-only, a rejection appends nothing, the fold is the truth."""
from __future__ import annotations

from dataclasses import replace

import pytest
from django.test import override_settings

from apps.rooms import registry
from apps.rooms.models import RoomEvent, RoomSnapshot
from apps.rooms.services import (
    JOIN_ALPHABET,
    CommandRejected,
    new_join_code,
    room_command_apply,
    room_create,
    room_fork,
    room_state,
)

from .conftest import ALICE, PARTICIPANT, VIEWER, refreshed, run_in_threads, student
from .roomkit import TICK, assert_refused, folded_json, live_json, room, round_room  # noqa: F401 - fixtures of SLUG's room

pytestmark = pytest.mark.django_db

SLUG = "counter-board"  # the engine's own tests run on the toy concept (tests/toyconcept)
ROUND = OWN_TOKEN = {"type": "round_open", "kind": "own_token"}


def add(name: str, slot: int = 0) -> dict:
    return {"type": "add_token", "name": name, "slot": slot}


# -- room_create -----------------------------------------------------------------------------

def test_room_create_logs_room_created_at_seq_1(room):
    events = list(RoomEvent.objects.filter(room=room).values_list("seq", "kind"))
    assert events == [(1, "room_created")]


def test_room_create_sets_seq_and_position_to_1(room):
    assert (room.seq, room.position) == (1, 1)


def test_room_create_stores_only_a_hash_of_the_presenter_key(db):
    room, key = room_create(concept=SLUG)
    assert len(key) >= 32
    assert key not in room.presenter_key_hash


def test_join_codes_use_only_the_unambiguous_alphabet(db):
    codes = [new_join_code() for _ in range(500)] + [room_create(concept=SLUG)[0].code for _ in range(5)]
    used = set("".join(codes))
    assert used <= set(JOIN_ALPHABET)
    assert not used & set("0O1IL5S8B")


# -- accepted commands -----------------------------------------------------------------------

def test_room_command_apply_appends_an_event_at_the_next_seq(room, apply):
    applied = apply(room, add("Ann", 2))
    assert [(e.seq, e.kind, e.data) for e in applied.events] == [(2, "token_added", {"name": "Ann", "slot": 2})]


def test_room_command_apply_advances_room_seq_and_position(room, apply):
    apply(room, add("Ann"))
    stored = refreshed(room)
    assert (stored.seq, stored.position) == (2, 2)


def test_room_command_apply_keeps_seqs_contiguous(room, apply):
    apply(room, add("Ann"))
    apply(room, {"type": "move_token", "name": "Ann", "slot": 3})
    apply(room, OWN_TOKEN)
    apply(room, {"type": "add_my_token", "key": "bob"}, actor=ALICE)  # two events: token_added, round_entry
    apply(room, TICK)
    apply(room, {"type": "remove_token", "name": "Ann"})
    seqs = list(RoomEvent.objects.filter(room=room).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, refreshed(room).seq + 1)) == [1, 2, 3, 4, 5, 6, 7, 8]


def test_room_command_apply_records_actor_and_command_id(room, apply):
    applied = apply(room, add("Carol"), command_id="c-1")
    event = RoomEvent.objects.get(room=room, seq=applied.events[0].seq)
    assert (event.actor, event.command_id) == ("presenter", "c-1")


def test_room_command_apply_records_a_participants_entry_under_its_command_id(round_room, apply):
    applied = apply(round_room, {"type": "add_my_token", "key": "carol"}, actor=ALICE, command_id="c-1")
    rows = list(RoomEvent.objects.filter(room=round_room, seq__gte=applied.events[0].seq).order_by("seq")
                .values_list("kind", "actor", "command_id"))
    # The id marks the command's first event only: (room, command_id) is unique.
    assert rows == [("token_added", "participant", "c-1"), ("round_entry", "participant", None)]


def test_room_command_apply_writes_narration_into_the_log(room, apply):
    applied = apply(room, add("Ann", 2))
    assert RoomEvent.objects.get(room=room, seq=2).narration == "Ann joined the board in slot 2."
    assert applied.narration == ["Ann joined the board in slot 2."]


def test_room_command_apply_lets_a_participant_add_their_token_in_an_open_round(round_room, apply):
    applied = apply(round_room, {"type": "add_my_token", "key": "dave"}, actor=ALICE)
    assert applied.after.slot_of("dave") == 0
    assert [(e.kind, e.data) for e in applied.events] == [
        ("token_added", {"name": "dave", "slot": 0}),
        ("round_entry", {"pid": ALICE.pid, "name": "Alice", "entry": "dave"}),
    ]


def test_room_command_apply_refuses_a_participants_token_outside_a_round(room):
    assert_refused(room, {"type": "add_my_token", "key": "dave"}, "Wait for the presenter to open a round", ALICE)


# -- rejected commands append nothing ----------------------------------------------------------

REJECTED = [
    pytest.param(None, {"type": "remove_token", "name": "Zed"}, "There is no token called Zed", id="unknown-token"),
    pytest.param(None, {"type": "move_token", "name": "Zed", "slot": 1}, "There is no token called Zed", id="move-unknown-token"),
    pytest.param(None, add("Ann", 6), "from 0 to 5", id="slot-off-the-board"),
    pytest.param(None, {"type": "load_scene", "slots": 5000}, "from 2 to 12", id="over-slot-limit"),
    pytest.param(None, add("Ann", "lots"), "whole number", id="not-a-number"),  # type: ignore[arg-type]
    pytest.param(None, {"type": "tick"}, "A tick must be a whole number", id="tick-without-its-length"),
    pytest.param(None, {"type": "fly"}, "no such command", id="unknown-command"),
    pytest.param(None, {"name": "E"}, "A command needs a type", id="missing-type"),
    pytest.param(None, {"type": 7}, "A command needs a type", id="type-not-text"),
    pytest.param(PARTICIPANT, {"type": "remove_token", "name": "Ann"}, "Only the presenter", id="participant-remove-token"),
    pytest.param(PARTICIPANT, {"type": "rewind", "to_seq": 1}, "Only the presenter", id="participant-rewind"),
    pytest.param(PARTICIPANT, add("Eve"), "Wait for the presenter to open a round", id="participant-add-token"),
    pytest.param(PARTICIPANT, TICK, "Wait for the presenter to open a round", id="participant-tick"),
    pytest.param(PARTICIPANT, {"type": "add_my_token"}, "Wait for the presenter to open a round", id="participant-no-round"),
    pytest.param(VIEWER, add("Eve"), "view-only", id="viewer-add-token"),
    pytest.param(VIEWER, {"type": "move_token", "name": "Eve", "slot": 1}, "view-only", id="viewer-move-token"),
    pytest.param(None, {"type": "step_back"}, "nothing to step back to", id="step-back-at-start"),
    pytest.param(None, {"type": "rewind", "to_seq": 99}, "from 1 to 1", id="rewind-past-the-end"),
    pytest.param(None, {"type": "rewind"}, "needs the event number", id="rewind-without-seq"),
    pytest.param(None, {"type": "pause"}, "already paused", id="pause-when-paused"),
    pytest.param(None, {"type": "speed", "speed": 100}, "Speed goes from", id="speed-out-of-range"),
]


@pytest.mark.parametrize(("actor", "command", "message"), REJECTED)
def test_room_command_apply_rejects_with_a_clear_message_and_appends_nothing(room, actor, command, message):
    assert_refused(room, command, message, **({"actor": actor} if actor else {}))


def test_room_command_apply_rejects_over_the_concepts_limit(room, apply):
    for i in range(12):
        apply(room, add(f"t{i}", i % 6))
    assert_refused(room, add("one-too-many"), "at most 12 tokens")


def test_room_command_apply_rejects_an_unknown_room(db):
    with pytest.raises(CommandRejected, match="does not exist"):
        room_command_apply(code="NOROOM", actor=PARTICIPANT, command=add("x"))


def test_room_command_apply_rejects_a_non_dict_command(room, apply):
    with pytest.raises(CommandRejected, match="needs a type"):
        apply(room, ["add_token"])  # type: ignore[arg-type]


def test_room_command_apply_lets_the_system_only_tick(room):
    from apps.rooms.services import SYSTEM

    assert_refused(room, add("Ann"), "may only tick", SYSTEM)


def test_room_command_apply_leaves_the_cached_state_alone_when_rejected(room, apply):
    state = room_state(room)
    with pytest.raises(CommandRejected):
        apply(room, {"type": "remove_token", "name": "Zed"})
    assert room_state(refreshed(room)) is state


# -- idempotency -----------------------------------------------------------------------------

def test_room_command_apply_applies_a_repeated_command_id_once(room, apply, log_size):
    apply(room, add("Frank"), command_id="same")
    after_first = log_size(room)
    again = apply(room, add("Frank"), command_id="same")
    assert again.duplicate
    assert again.events == []
    assert log_size(room) == after_first == (2, 2)


def test_room_command_apply_answers_a_repeated_command_id_without_rejecting(room, apply):
    # The resend would be a duplicate token if decided again; it must be recognised instead.
    apply(room, add("Grace"), command_id="k-1")
    again = apply(room, add("Grace"), command_id="k-1")
    assert again.duplicate


def test_room_command_apply_treats_different_command_ids_as_different_commands(room, apply, log_size):
    apply(room, TICK, command_id="one")
    apply(room, TICK, command_id="two")
    assert log_size(room) == (3, 3)


# -- the fold --------------------------------------------------------------------------------

def mixed_history(room, apply) -> None:
    for slot, name in enumerate(("Ann", "Bo", "Cy", "Di")):
        apply(room, add(name, slot))
    apply(room, {"type": "move_token", "name": "Bo", "slot": 5})
    apply(room, {"type": "remove_token", "name": "Cy"})
    apply(room, OWN_TOKEN)
    apply(room, {"type": "add_my_token", "key": "heidi"}, actor=ALICE)
    apply(room, {"type": "add_my_token"}, actor=student("Ivan"))  # a token named after the student
    apply(room, {"type": "round_close"})
    apply(room, TICK)
    apply(room, {"type": "rewind", "to_seq": 4})
    apply(room, add("Eve", 3))
    apply(room, {"type": "step_back"})
    apply(room, {"type": "move_token", "name": "Ann", "slot": 4})
    apply(room, {"type": "step"})
    apply(room, {"type": "load_scene", "slots": 8})
    apply(room, add("Flo", 7))
    apply(room, {"type": "step"})


def test_state_at_the_last_seq_equals_the_live_state(room, apply):
    mixed_history(room, apply)
    assert folded_json(room, refreshed(room).seq) == live_json(room) == {
        "slots": 8, "tokens": [["Flo", 0]], "clock_ms": 2000, "ticks": 1}


@override_settings(DISTVIZ_SNAPSHOT_EVERY=4)
def test_state_at_the_last_seq_equals_the_live_state_with_snapshots(room, apply):
    mixed_history(room, apply)
    live = live_json(room)
    assert RoomSnapshot.objects.filter(room=room).exists()
    assert folded_json(room, refreshed(room).seq) == live


# -- history: rewind and step back -------------------------------------------------------------

def test_rewind_moves_the_position_to_the_target(room, apply):
    for name in ("E", "F", "G"):
        apply(room, add(name))
    apply(room, {"type": "rewind", "to_seq": 2})
    stored = refreshed(room)
    assert (stored.seq, stored.position) == (5, 2)


def test_rewind_appends_a_rewound_event_carrying_to_seq(room, apply):
    apply(room, add("E"))
    apply(room, add("F"))
    applied = apply(room, {"type": "rewind", "to_seq": 2})
    assert [(e.seq, e.kind, e.data) for e in applied.events] == [(4, "rewound", {"to_seq": 2, "from_seq": 3})]


def test_rewind_state_equals_state_at_the_target(room, apply):
    apply(room, add("E"))
    apply(room, add("F", 3))
    apply(room, TICK)
    applied = apply(room, {"type": "rewind", "to_seq": 2})
    assert registry.get(SLUG).to_json(applied.after) == folded_json(room, 2) == {
        "slots": 6, "tokens": [["E", 0]], "clock_ms": 0, "ticks": 0}


def test_rewind_never_edits_earlier_events(room, apply):
    apply(room, add("E"))
    apply(room, add("Ivan"))
    before = list(RoomEvent.objects.filter(room=room).order_by("seq").values())
    apply(room, {"type": "rewind", "to_seq": 1})
    after = list(RoomEvent.objects.filter(room=room).order_by("seq").values())
    assert after[: len(before)] == before
    assert len(after) == len(before) + 1


def test_rewind_to_the_shown_event_is_rejected(room, apply):
    apply(room, add("E"))
    assert_refused(room, {"type": "rewind", "to_seq": 2}, "already shows event 2")


def test_rewind_stops_a_playing_clock(room, apply):
    apply(room, {"type": "play"})
    apply(room, {"type": "rewind", "to_seq": 1})
    assert not refreshed(room).playing


def test_rewind_then_a_command_continues_from_the_rewound_state(room, apply):
    apply(room, add("E"))
    apply(room, {"type": "rewind", "to_seq": 1})
    applied = apply(room, add("F", 2))
    assert applied.after.tokens == (("F", 2),)
    assert refreshed(room).position == refreshed(room).seq == 4


def test_step_back_goes_to_the_event_before_the_position(room, apply):
    apply(room, add("E"))
    apply(room, add("F"))
    applied = apply(room, {"type": "step_back"})
    assert applied.events[0].data == {"to_seq": 2, "from_seq": 3}
    assert refreshed(room).position == 2


def test_step_back_twice_goes_back_two_events(room, apply):
    apply(room, add("E"))
    apply(room, add("F"))
    apply(room, {"type": "step_back"})
    applied = apply(room, {"type": "step_back"})
    assert refreshed(room).position == 1
    assert applied.after.tokens == ()
    assert registry.get(SLUG).to_json(applied.after) == folded_json(room, 1)


def test_step_back_state_equals_state_at_the_event_before(room, apply):
    apply(room, add("E", 1))
    apply(room, {"type": "move_token", "name": "E", "slot": 4})
    applied = apply(room, {"type": "step_back"})
    assert applied.after.tokens == (("E", 1),)
    assert registry.get(SLUG).to_json(applied.after) == folded_json(room, 2)


# -- snapshots -------------------------------------------------------------------------------

@override_settings(DISTVIZ_SNAPSHOT_EVERY=3)
def test_snapshots_are_written_every_n_events(room, apply):
    for i in range(8):
        apply(room, add(f"snap{i}"))
    assert list(RoomSnapshot.objects.filter(room=room).order_by("seq").values_list("seq", flat=True)) == [3, 6, 9]


@override_settings(DISTVIZ_SNAPSHOT_EVERY=3)
def test_snapshot_holds_the_state_at_its_seq(room, apply):
    for i in range(4):
        apply(room, add(f"snap{i}"))
    snapshot = RoomSnapshot.objects.get(room=room, seq=3)
    assert snapshot.state == folded_json(room, 3)
    assert [name for name, _slot in snapshot.state["tokens"]] == ["snap0", "snap1"]


@override_settings(DISTVIZ_SNAPSHOT_EVERY=3)
def test_state_at_from_a_snapshot_equals_the_fold_from_scratch(room, apply):
    mixed_history(room, apply)
    seq = refreshed(room).seq
    with_snapshots = {s: folded_json(room, s) for s in range(1, seq + 1)}
    RoomSnapshot.objects.filter(room=room).delete()
    from_scratch = {s: folded_json(room, s) for s in range(1, seq + 1)}
    assert with_snapshots == from_scratch


# -- fork ------------------------------------------------------------------------------------

def test_room_fork_copies_the_parents_state(room, apply):
    apply(room, add("Ann", 3))
    apply(room, TICK)
    fork, _key = room_fork(room=refreshed(room))
    assert folded_json(fork, fork.seq) == folded_json(room, refreshed(room).seq)
    assert folded_json(fork, fork.seq)["tokens"] == [["Ann", 4]]


def test_room_fork_is_a_new_room_with_its_own_code(room):
    fork, _key = room_fork(room=room)
    assert fork.pk != room.pk
    assert fork.code != room.code
    assert (fork.seq, fork.parent_id, fork.parent_seq) == (1, room.pk, room.seq)


def test_room_fork_first_event_records_forked_from(room, apply):
    apply(room, add("E"))
    fork, _key = room_fork(room=refreshed(room))
    first = RoomEvent.objects.get(room=fork, seq=1)
    assert first.kind == "room_created"
    assert first.data["forked_from"] == {"code": room.code, "seq": 2}


def test_room_fork_of_a_rewound_room_copies_the_shown_state(room, apply):
    apply(room, add("E"))
    apply(room, {"type": "rewind", "to_seq": 1})
    fork, _key = room_fork(room=refreshed(room))
    assert folded_json(fork, 1)["tokens"] == []


def test_room_fork_commands_leave_the_parent_untouched(room, apply, log_size):
    apply(room, add("E"))
    parent_state = folded_json(room, 2)
    parent_log = log_size(room)
    fork, _key = room_fork(room=refreshed(room))
    apply(fork, {"type": "remove_token", "name": "E"})
    apply(fork, add("X", 5))
    assert log_size(room) == parent_log
    assert folded_json(room, 2) == parent_state
    assert live_json(room) == parent_state


# -- the client cannot pick the dice ------------------------------------------------------------

def test_room_command_apply_ignores_a_seed_sent_by_the_client(room, apply, monkeypatch):
    """The concept's decide gets the engine's seed (the room's seed and the event number), never
    the one a client wrote into the command."""
    toy, seeds = registry.get(SLUG), []

    def decide(state, command):
        seeds.append(command["_seed"])
        return toy.decide(state, command)

    monkeypatch.setitem(registry.REGISTRY, SLUG, replace(toy, decide=decide))
    apply(room, {**add("Ann"), "_seed": "chosen"})
    apply(room, {**TICK, "_seed": "chosen"})
    assert seeds == [f"{room.seed}:2", f"{room.seed}:3"]


# -- concurrent writers ----------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_room_command_apply_keeps_seqs_contiguous_under_concurrent_writers(room, apply):
    apply(room, OWN_TOKEN)
    # A class answering at once: 10 students' entries (two events each) and the presenter's ticks.
    jobs = [lambda i=i: apply(room, {"type": "add_my_token", "key": f"t{i}"}, actor=student(f"S{i}")) for i in range(10)]
    jobs += [lambda: apply(room, TICK)] * 8
    outcomes = run_in_threads(jobs)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    seqs = list(RoomEvent.objects.filter(room=room).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 2 + 20 + 8 + 1))
    assert refreshed(room).seq == 30
    # Each entry was added to the round under the room lock: none was lost to a race.
    assert sorted(e["entry"] for e in refreshed(room).round["entries"]) == sorted(f"t{i}" for i in range(10))


@pytest.mark.django_db(transaction=True)
def test_room_command_apply_applies_a_racing_command_id_once(room, apply):
    jobs = [lambda: apply(room, add("Ann"), command_id="raced")] * 8
    outcomes = run_in_threads(jobs)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert sum(not o.duplicate for o in outcomes) == 1
    assert refreshed(room).seq == 2


@pytest.mark.django_db(transaction=True)
def test_state_at_equals_the_live_state_after_concurrent_writers(room, apply):
    jobs = [lambda i=i: apply(room, add(f"t{i}", i % 6)) for i in range(8)] + [lambda: apply(room, TICK)] * 4
    run_in_threads(jobs)
    live = live_json(room)
    assert len(live["tokens"]) == 8 and live["ticks"] == 4
    assert folded_json(room, refreshed(room).seq) == live
