"""The hash ring in a room: what the engine's tests checked on the ring before they moved to the
counter board (tests/toyconcept), and that only the ring has: its limits from the settings, its
random keys replayed from the seed in the log, the key a student types (or their name), the
round's leaderboard by owning node, the marks' and the own panel's text."""
from __future__ import annotations

import re

import pytest
from django.utils.html import escape

from apps.hashring import concept as hashring
from apps.hashring import sim
from apps.rooms.models import Room
from apps.rooms.services import room_state
from tests.rooms.conftest import ALICE, BOB, OWN_KEY, apply_command, refreshed, student
from tests.rooms.roomkit import assert_refused, folded_json, room, round_room  # noqa: F401 - fixtures of SLUG's room

pytestmark = pytest.mark.django_db

SLUG = "hashring"  # the rooms (tests.rooms.roomkit.room) are hash rings: nodes A-D, keys user1..user12
ROUND = OWN_KEY  # the module's round (roomkit.round_room)
MARKUP = '"><svg onload=alert(1)>'
ROW = re.compile(r'<strong class="lb-node">(.*?)</strong>.*?<strong class="lb-count">(\d+)</strong>'
                 r'<span class="lb-names">(.*?)</span>')


def leaderboard(html: str) -> dict[str, tuple[int, list[str]]]:
    """The round panel's rows: node -> (count, names as written in the HTML)."""
    return {node: (int(count), names.split(", ")) for node, count, names in ROW.findall(html)}


def round_panel(room: Room) -> str:
    room = refreshed(room)
    return hashring.round_panel(room_state(room), room.round)


def enter(room: Room, *names: str) -> None:
    for name in names:
        apply_command(room, {"type": "add_my_key"}, student(name))


# -- the ring's commands in a room ---------------------------------------------------------------

def test_the_node_limit_comes_from_the_settings(room, settings):
    settings.DISTVIZ_LIMITS = {**settings.DISTVIZ_LIMITS, "max_nodes": 4}
    assert_refused(room, {"type": "add_node"}, "already has 4 nodes")


def test_random_keys_are_replayed_from_the_logged_seed_not_rolled_again(room):
    applied = apply_command(room, {"type": "add_random_keys", "count": 200, "_seed": "chosen"})
    assert applied.events[0].data["seed"].startswith(f"{room.seed}:2")  # the engine's seed, not the client's
    assert folded_json(room, applied.room.seq)["keys"] == list(applied.after.keys)
    assert folded_json(room, applied.room.seq) == sim.to_json(applied.after)


# -- the round: a key the student types, or their name ---------------------------------------------

@pytest.mark.parametrize("typed", ["", "   ", 7, ["x"], None], ids=["empty", "blank", "number", "list", "null"])
def test_round_entry_without_a_usable_typed_key_uses_the_name(round_room, typed):
    applied = apply_command(round_room, {"type": "add_my_key", "key": typed}, ALICE)
    assert applied.events[0].data == {"key": "Alice"}


def test_round_entry_of_a_key_already_on_the_ring_is_refused(round_room):
    assert_refused(round_room, {"type": "add_my_key", "key": "user1"},
                   "Your entry could not run: The key user1 is already on the ring", ALICE)


def test_my_entry_says_which_node_stores_the_students_key(round_room):
    apply_command(round_room, {"type": "add_my_key"}, ALICE)
    stored = refreshed(round_room)
    state = room_state(stored)
    mine = hashring.my_entry(state, stored.round["entries"][0])
    assert "Your key: Alice" in mine
    assert f"so <strong>{state.owner_of('Alice')}</strong> stores it" in mine


# -- the round's leaderboard and marks -------------------------------------------------------------

def test_round_panel_groups_the_entries_by_the_node_that_stores_them(round_room):
    names = ["Ada", "Bo", "Cy", "Di", "Ed", "Flo", "Gus"]
    enter(round_room, *names)
    state = room_state(refreshed(round_room))
    expected: dict[str, list[str]] = {}
    for name in names:
        expected.setdefault(state.owner_of(name), []).append(name)
    board = leaderboard(round_panel(round_room))
    assert board == {node: (len(group), group) for node, group in expected.items()}
    assert "<strong>7</strong> keys from the class" in round_panel(round_room)


def test_round_panel_follows_ownership_when_a_node_leaves(round_room):
    enter(round_room, "Ada", "Bo", "Cy", "Di", "Ed")
    gone = room_state(refreshed(round_room)).owner_of("Ada")
    apply_command(round_room, {"type": "remove_node", "name": gone})
    board = leaderboard(round_panel(round_room))
    state = room_state(refreshed(round_room))
    assert gone not in board
    assert "Ada" in board[state.owner_of("Ada")][1]


def test_round_panel_lists_a_removed_key_apart(round_room):
    enter(round_room, "Alice")
    apply_command(round_room, {"type": "remove_key", "key": "Alice"})
    assert leaderboard(round_panel(round_room)) == {"(removed)": (1, ["Alice"])}


def test_round_panel_and_marks_escape_names(round_room):
    apply_command(round_room, {"type": "add_my_key", "key": "k1"}, student(MARKUP, pid="p-markup"))
    apply_command(round_room, {"type": "add_my_key", "key": "bobs-key"}, BOB)
    apply_command(round_room, {"type": "remove_key", "key": "bobs-key"})  # off the ring: no mark
    html = round_panel(round_room)
    assert MARKUP not in html and "<svg onload" not in html
    assert escape(MARKUP) in [names[0] for _count, names in leaderboard(html).values()]
    stored = refreshed(round_room)
    marks = hashring.round_marks(room_state(stored), stored.round)
    assert "<svg onload" not in marks
    assert re.findall(r"<text [^>]*>(.*?)</text>", marks) == [escape(MARKUP)]
