"""The room services: the log is append-only, a rejection appends nothing, the fold is the truth."""
from __future__ import annotations

import pytest
from django.test import override_settings

from apps.hashring import sim
from apps.rooms.models import Room, RoomEvent, RoomSnapshot
from apps.rooms.services import (
    JOIN_ALPHABET,
    STATE_CACHE,
    CommandRejected,
    new_join_code,
    room_command_apply,
    room_create,
    room_fork,
    room_state,
    state_at,
)

from .conftest import ALICE, OWN_KEY, PARTICIPANT, VIEWER, run_in_threads, student, refreshed

pytestmark = pytest.mark.django_db


def folded_json(room: Room, seq: int) -> dict:
    """The state at ``seq`` folded from the database alone, ignoring this process's cache."""
    STATE_CACHE.clear()
    return sim.to_json(state_at(refreshed(room), seq))


# -- room_create -----------------------------------------------------------------------------

def test_room_create_logs_room_created_at_seq_1(room):
    events = list(RoomEvent.objects.filter(room=room).values_list("seq", "kind"))
    assert events == [(1, "room_created")]


def test_room_create_sets_seq_and_position_to_1(room):
    assert (room.seq, room.position) == (1, 1)


def test_room_create_stores_only_a_hash_of_the_presenter_key(db):
    room, key = room_create(concept="hashring")
    assert len(key) >= 32
    assert key not in room.presenter_key_hash


def test_join_codes_use_only_the_unambiguous_alphabet(db):
    codes = [new_join_code() for _ in range(500)] + [room_create(concept="hashring")[0].code for _ in range(5)]
    used = set("".join(codes))
    assert used <= set(JOIN_ALPHABET)
    assert not used & set("0O1IL5S8B")


# -- accepted commands -----------------------------------------------------------------------

def test_room_command_apply_appends_an_event_at_the_next_seq(room, apply):
    applied = apply(room, {"type": "add_node", "name": "E"})
    assert [(e.seq, e.kind, e.data) for e in applied.events] == [(2, "node_added", {"name": "E", "vnodes": 8})]


def test_room_command_apply_advances_room_seq_and_position(room, apply):
    apply(room, {"type": "add_key", "key": "alice"})
    stored = refreshed(room)
    assert (stored.seq, stored.position) == (2, 2)


def test_room_command_apply_keeps_seqs_contiguous(room, apply):
    apply(room, {"type": "add_node"})
    apply(room, {"type": "add_random_keys", "count": 50})
    apply(room, OWN_KEY)
    apply(room, {"type": "add_my_key", "key": "bob"}, actor=ALICE)  # two events: key_added, round_entry
    apply(room, {"type": "lookup", "key": "bob"})
    apply(room, {"type": "remove_node", "name": "A"})
    seqs = list(RoomEvent.objects.filter(room=room).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, refreshed(room).seq + 1)) == [1, 2, 3, 4, 5, 6, 7, 8]


def test_room_command_apply_records_actor_and_command_id(room, apply):
    applied = apply(room, {"type": "add_key", "key": "carol"}, command_id="c-1")
    event = RoomEvent.objects.get(room=room, seq=applied.events[0].seq)
    assert (event.actor, event.command_id) == ("presenter", "c-1")


def test_room_command_apply_records_a_participants_entry_under_its_command_id(round_room, apply):
    applied = apply(round_room, {"type": "add_my_key", "key": "carol"}, actor=ALICE, command_id="c-1")
    rows = list(RoomEvent.objects.filter(room=round_room, seq__gte=applied.events[0].seq).order_by("seq")
                .values_list("kind", "actor", "command_id"))
    # The id marks the command's first event only: (room, command_id) is unique.
    assert rows == [("key_added", "participant", "c-1"), ("round_entry", "participant", None)]


def test_room_command_apply_writes_narration_into_the_log(room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    assert RoomEvent.objects.get(room=room, seq=2).narration.startswith("Added node E with 8 virtual nodes")


def test_room_command_apply_lets_a_participant_add_their_key_in_an_open_round(round_room, apply):
    applied = apply(round_room, {"type": "add_my_key", "key": "dave"}, actor=ALICE)
    assert "dave" in applied.after.keys
    assert [(e.kind, e.data) for e in applied.events] == [
        ("key_added", {"key": "dave"}),
        ("round_entry", {"pid": ALICE.pid, "name": "Alice", "entry": "dave"}),
    ]


def test_room_command_apply_refuses_a_participants_key_outside_a_round(room, apply, log_size):
    before = log_size(room)
    with pytest.raises(CommandRejected, match="Wait for the presenter to open a round"):
        apply(room, {"type": "add_my_key", "key": "dave"}, actor=ALICE)
    assert log_size(room) == before


# -- rejected commands append nothing ----------------------------------------------------------

REJECTED = [
    pytest.param(None, {"type": "remove_node", "name": "Z"}, "There is no node called Z", id="unknown-node"),
    pytest.param(None, {"type": "add_node", "name": "A"}, "There is already a node called A", id="duplicate-node"),
    pytest.param(None, {"type": "add_key", "key": "user1"}, "already on the ring", id="duplicate-key"),
    pytest.param(None, {"type": "add_node", "vnodes": 5000}, "from 1 to 1,000", id="over-vnode-limit"),
    pytest.param(None, {"type": "add_random_keys", "count": 10**9}, "from 1 to 100,000", id="over-key-limit"),
    pytest.param(None, {"type": "set_replicas", "replicas": "lots"}, "whole number", id="not-a-number"),
    pytest.param(None, {"type": "fly"}, "Unknown command 'fly'", id="unknown-command"),
    pytest.param(None, {"name": "E"}, "A command needs a type", id="missing-type"),
    pytest.param(None, {"type": 7}, "A command needs a type", id="type-not-text"),
    pytest.param(PARTICIPANT, {"type": "remove_node", "name": "A"}, "Only the presenter", id="participant-remove-node"),
    pytest.param(PARTICIPANT, {"type": "rewind", "to_seq": 1}, "Only the presenter", id="participant-rewind"),
    pytest.param(PARTICIPANT, {"type": "add_key", "key": "eve"}, "Wait for the presenter to open a round", id="participant-add-key"),
    pytest.param(PARTICIPANT, {"type": "lookup", "key": "user1"}, "Wait for the presenter to open a round", id="participant-lookup"),
    pytest.param(PARTICIPANT, {"type": "add_my_key"}, "Wait for the presenter to open a round", id="participant-no-round"),
    pytest.param(VIEWER, {"type": "add_key", "key": "eve"}, "view-only", id="viewer-add-key"),
    pytest.param(VIEWER, {"type": "lookup", "key": "user1"}, "view-only", id="viewer-lookup"),
    pytest.param(None, {"type": "step_back"}, "nothing to step back to", id="step-back-at-start"),
    pytest.param(None, {"type": "rewind", "to_seq": 99}, "from 1 to 1", id="rewind-past-the-end"),
    pytest.param(None, {"type": "rewind"}, "needs the event number", id="rewind-without-seq"),
    pytest.param(None, {"type": "pause"}, "already paused", id="pause-when-paused"),
    pytest.param(None, {"type": "speed", "speed": 100}, "Speed goes from", id="speed-out-of-range"),
]


@pytest.mark.parametrize(("actor", "command", "message"), REJECTED)
def test_room_command_apply_rejects_with_a_clear_message(room, apply, actor, command, message):
    with pytest.raises(CommandRejected, match=message):
        apply(room, command, **({"actor": actor} if actor else {}))


@pytest.mark.parametrize(("actor", "command", "message"), REJECTED)
def test_room_command_apply_appends_nothing_when_rejected(room, apply, log_size, actor, command, message):
    before = log_size(room)
    with pytest.raises(CommandRejected):
        apply(room, command, **({"actor": actor} if actor else {}))
    assert log_size(room) == before


def test_room_command_apply_rejects_over_the_node_limit(room, apply, log_size, settings):
    settings.DISTVIZ_LIMITS = {**settings.DISTVIZ_LIMITS, "max_nodes": 4}
    before = log_size(room)
    with pytest.raises(CommandRejected, match="already has 4 nodes"):
        apply(room, {"type": "add_node"})
    assert log_size(room) == before


def test_room_command_apply_rejects_an_unknown_room(db):
    with pytest.raises(CommandRejected, match="does not exist"):
        room_command_apply(code="NOROOM", actor=PARTICIPANT, command={"type": "add_key", "key": "x"})


def test_room_command_apply_rejects_a_non_dict_command(room, apply):
    with pytest.raises(CommandRejected, match="needs a type"):
        apply(room, ["add_node"])  # type: ignore[arg-type]


def test_room_command_apply_lets_the_system_only_tick(room, apply, log_size):
    from apps.rooms.services import SYSTEM

    before = log_size(room)
    with pytest.raises(CommandRejected, match="may only tick"):
        apply(room, {"type": "add_node"}, actor=SYSTEM)
    assert log_size(room) == before


def test_room_command_apply_leaves_the_cached_state_alone_when_rejected(room, apply):
    state = room_state(room)
    with pytest.raises(CommandRejected):
        apply(room, {"type": "remove_node", "name": "Z"})
    assert room_state(refreshed(room)) is state


# -- idempotency -----------------------------------------------------------------------------

def test_room_command_apply_applies_a_repeated_command_id_once(room, apply, log_size):
    apply(room, {"type": "add_key", "key": "frank"}, command_id="same")
    after_first = log_size(room)
    again = apply(room, {"type": "add_key", "key": "frank"}, command_id="same")
    assert again.duplicate
    assert again.events == []
    assert log_size(room) == after_first == (2, 2)


def test_room_command_apply_answers_a_repeated_command_id_without_rejecting(room, apply):
    # The resend would be a duplicate key if decided again; it must be recognised instead.
    apply(room, {"type": "add_key", "key": "grace"}, command_id="k-1")
    again = apply(room, {"type": "add_key", "key": "grace"}, command_id="k-1")
    assert again.duplicate


def test_room_command_apply_treats_different_command_ids_as_different_commands(room, apply, log_size):
    apply(room, {"type": "add_node"}, command_id="one")
    apply(room, {"type": "add_node"}, command_id="two")
    assert log_size(room) == (3, 3)


# -- the fold --------------------------------------------------------------------------------

def mixed_history(room, apply) -> None:
    apply(room, {"type": "add_random_keys", "count": 300})
    apply(room, {"type": "add_node", "name": "E", "vnodes": 20})
    apply(room, {"type": "set_vnodes", "vnodes": 12})
    apply(room, {"type": "remove_node", "name": "B"})
    apply(room, OWN_KEY)
    apply(room, {"type": "add_my_key", "key": "heidi"}, actor=ALICE)
    apply(room, {"type": "add_my_key"}, actor=student("Ivan"))  # a key named after the student
    apply(room, {"type": "round_close"})
    apply(room, {"type": "lookup", "key": "heidi"})
    apply(room, {"type": "set_replicas", "replicas": 2})
    apply(room, {"type": "rewind", "to_seq": 4})
    apply(room, {"type": "add_random_keys", "count": 40})
    apply(room, {"type": "step_back"})
    apply(room, {"type": "set_vnodes", "name": "A", "vnodes": 3})
    apply(room, {"type": "step"})
    apply(room, {"type": "remove_key", "key": "user3"})
    apply(room, {"type": "set_stream_rate", "rate": 20})
    apply(room, {"type": "step"})


def test_state_at_the_last_seq_equals_the_live_state(room, apply):
    mixed_history(room, apply)
    live = sim.to_json(room_state(refreshed(room)))
    assert folded_json(room, refreshed(room).seq) == live


def test_state_at_replays_random_keys_without_rerolling(room, apply):
    applied = apply(room, {"type": "add_random_keys", "count": 200})
    assert folded_json(room, applied.room.seq)["keys"] == list(applied.after.keys)


@override_settings(DISTVIZ_SNAPSHOT_EVERY=4)
def test_state_at_the_last_seq_equals_the_live_state_with_snapshots(room, apply):
    mixed_history(room, apply)
    live = sim.to_json(room_state(refreshed(room)))
    assert RoomSnapshot.objects.filter(room=room).exists()
    assert folded_json(room, refreshed(room).seq) == live


# -- history: rewind and step back -------------------------------------------------------------

def test_rewind_moves_the_position_to_the_target(room, apply):
    for name in ("E", "F", "G"):
        apply(room, {"type": "add_node", "name": name})
    apply(room, {"type": "rewind", "to_seq": 2})
    stored = refreshed(room)
    assert (stored.seq, stored.position) == (5, 2)


def test_rewind_appends_a_rewound_event_carrying_to_seq(room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    apply(room, {"type": "add_node", "name": "F"})
    applied = apply(room, {"type": "rewind", "to_seq": 2})
    assert [(e.seq, e.kind, e.data) for e in applied.events] == [(4, "rewound", {"to_seq": 2, "from_seq": 3})]


def test_rewind_state_equals_state_at_the_target(room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    apply(room, {"type": "add_random_keys", "count": 100})
    apply(room, {"type": "remove_node", "name": "A"})
    applied = apply(room, {"type": "rewind", "to_seq": 2})
    assert sim.to_json(applied.after) == folded_json(room, 2)


def test_rewind_never_edits_earlier_events(room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    apply(room, {"type": "add_key", "key": "ivan"})
    before = list(RoomEvent.objects.filter(room=room).order_by("seq").values())
    apply(room, {"type": "rewind", "to_seq": 1})
    after = list(RoomEvent.objects.filter(room=room).order_by("seq").values())
    assert after[: len(before)] == before
    assert len(after) == len(before) + 1


def test_rewind_to_the_shown_event_is_rejected(room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    with pytest.raises(CommandRejected, match="already shows event 2"):
        apply(room, {"type": "rewind", "to_seq": 2})


def test_rewind_stops_a_playing_clock(room, apply):
    apply(room, {"type": "play"})
    apply(room, {"type": "rewind", "to_seq": 1})
    assert not refreshed(room).playing


def test_rewind_then_a_command_continues_from_the_rewound_state(room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    apply(room, {"type": "rewind", "to_seq": 1})
    applied = apply(room, {"type": "add_node", "name": "F"})
    assert [n.name for n in applied.after.nodes] == ["A", "B", "C", "D", "F"]
    assert refreshed(room).position == refreshed(room).seq == 4


def test_step_back_goes_to_the_event_before_the_position(room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    apply(room, {"type": "add_node", "name": "F"})
    applied = apply(room, {"type": "step_back"})
    assert applied.events[0].data == {"to_seq": 2, "from_seq": 3}
    assert refreshed(room).position == 2


def test_step_back_twice_goes_back_two_events(room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    apply(room, {"type": "add_node", "name": "F"})
    apply(room, {"type": "step_back"})
    applied = apply(room, {"type": "step_back"})
    assert refreshed(room).position == 1
    assert sim.to_json(applied.after) == folded_json(room, 1)


def test_step_back_state_equals_state_at_the_event_before(room, apply):
    apply(room, {"type": "add_random_keys", "count": 100})
    apply(room, {"type": "remove_node", "name": "C"})
    applied = apply(room, {"type": "step_back"})
    assert sim.to_json(applied.after) == folded_json(room, 2)


# -- snapshots -------------------------------------------------------------------------------

@override_settings(DISTVIZ_SNAPSHOT_EVERY=3)
def test_snapshots_are_written_every_n_events(room, apply):
    for i in range(8):
        apply(room, {"type": "add_key", "key": f"snap{i}"})
    assert list(RoomSnapshot.objects.filter(room=room).order_by("seq").values_list("seq", flat=True)) == [3, 6, 9]


@override_settings(DISTVIZ_SNAPSHOT_EVERY=3)
def test_snapshot_holds_the_state_at_its_seq(room, apply):
    for i in range(4):
        apply(room, {"type": "add_key", "key": f"snap{i}"})
    snapshot = RoomSnapshot.objects.get(room=room, seq=3)
    assert snapshot.state == folded_json(room, 3)


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
    apply(room, {"type": "add_random_keys", "count": 100})
    apply(room, {"type": "remove_node", "name": "B"})
    fork, _key = room_fork(room=refreshed(room))
    assert folded_json(fork, fork.seq) == folded_json(room, refreshed(room).seq)


def test_room_fork_is_a_new_room_with_its_own_code(room):
    fork, _key = room_fork(room=room)
    assert fork.pk != room.pk
    assert fork.code != room.code
    assert (fork.seq, fork.parent_id, fork.parent_seq) == (1, room.pk, room.seq)


def test_room_fork_first_event_records_forked_from(room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    fork, _key = room_fork(room=refreshed(room))
    first = RoomEvent.objects.get(room=fork, seq=1)
    assert first.kind == "room_created"
    assert first.data["forked_from"] == {"code": room.code, "seq": 2}


def test_room_fork_of_a_rewound_room_copies_the_shown_state(room, apply):
    apply(room, {"type": "add_node", "name": "E"})
    apply(room, {"type": "rewind", "to_seq": 1})
    fork, _key = room_fork(room=refreshed(room))
    assert [n["name"] for n in folded_json(fork, 1)["nodes"]] == ["A", "B", "C", "D"]


def test_room_fork_commands_leave_the_parent_untouched(room, apply, log_size):
    apply(room, {"type": "add_node", "name": "E"})
    parent_state = folded_json(room, 2)
    parent_log = log_size(room)
    fork, _key = room_fork(room=refreshed(room))
    apply(fork, {"type": "remove_node", "name": "E"})
    apply(fork, {"type": "add_random_keys", "count": 50})
    assert log_size(room) == parent_log
    assert folded_json(room, 2) == parent_state
    assert sim.to_json(room_state(refreshed(room))) == parent_state


# -- the client cannot pick the dice ------------------------------------------------------------

def test_room_command_apply_ignores_a_seed_sent_by_the_client(room, apply):
    applied = apply(room, {"type": "add_random_keys", "count": 5, "_seed": "chosen"})
    assert applied.events[0].data["seed"].startswith(f"{room.seed}:2")


# -- concurrent writers ----------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_room_command_apply_keeps_seqs_contiguous_under_concurrent_writers(room, apply):
    apply(room, OWN_KEY)
    # A class answering at once: 24 students' entries (two events each) and the presenter's keys.
    jobs = [lambda i=i: apply(room, {"type": "add_my_key", "key": f"t{i}"}, actor=student(f"S{i}")) for i in range(24)]
    jobs += [lambda i=i: apply(room, {"type": "add_key", "key": f"p{i}"}) for i in range(8)]
    outcomes = run_in_threads(jobs)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    seqs = list(RoomEvent.objects.filter(room=room).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 2 + 48 + 8 + 1))
    assert refreshed(room).seq == 58
    # Each entry was added to the round under the room lock: none was lost to a race.
    assert sorted(e["entry"] for e in refreshed(room).round["entries"]) == sorted(f"t{i}" for i in range(24))


@pytest.mark.django_db(transaction=True)
def test_room_command_apply_applies_a_racing_command_id_once(room, apply):
    jobs = [lambda: apply(room, {"type": "add_node"}, command_id="raced")] * 8
    outcomes = run_in_threads(jobs)
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert sum(not o.duplicate for o in outcomes) == 1
    assert refreshed(room).seq == 2


@pytest.mark.django_db(transaction=True)
def test_state_at_equals_the_live_state_after_concurrent_writers(room, apply):
    jobs = [lambda i=i: apply(room, {"type": "add_random_keys", "count": 10 + i}) for i in range(8)]
    run_in_threads(jobs)
    live = sim.to_json(room_state(refreshed(room)))
    assert folded_json(room, refreshed(room).seq) == live
