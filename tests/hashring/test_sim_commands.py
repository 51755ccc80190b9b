"""``decide``: good commands give events, bad ones a sentence the sender can act on."""
from __future__ import annotations

import string

import pytest

from apps.hashring.sim import Limits, Rejected, RingState, decide, evolve, initial_state

# Every value that is not a usable name: the WebSocket hands us whatever JSON the client sent.
NOT_TEXT = [5, 1.5, True, ["A"], {"name": "A"}]


@pytest.fixture
def ring() -> RingState:
    """The seed picture: nodes A-D with 8 vnodes each, keys user1..user12."""
    return initial_state()


def _fold(state: RingState, *commands: dict, limits: Limits = Limits()) -> RingState:
    for command in commands:
        for event in decide(state, command, limits):
            state = evolve(state, event)
    return state


def _with_nodes(names: list[str]) -> RingState:
    return initial_state({"nodes": names, "keys": []})


# -- unknown commands ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["explode", "", None, 5, ["add_node"], {"add_node": 1}])
def test_decide_rejects_unknown_command_type(ring, kind):
    with pytest.raises(Rejected, match="Unknown command"):
        decide(ring, {"type": kind})


def test_decide_rejects_command_without_type(ring):
    with pytest.raises(Rejected, match="Unknown command"):
        decide(ring, {"name": "E"})


def test_decide_unknown_command_message_is_truncated(ring):
    with pytest.raises(Rejected) as excinfo:
        decide(ring, {"type": "x" * 5000})
    assert len(str(excinfo.value)) < 100


# -- add_node ---------------------------------------------------------------------------------

def test_add_node_gives_node_added_event(ring):
    assert decide(ring, {"type": "add_node", "name": "E", "vnodes": 16}) == [
        {"kind": "node_added", "data": {"name": "E", "vnodes": 16}}
    ]


def test_add_node_without_vnodes_uses_the_default(ring):
    assert decide(ring, {"type": "add_node", "name": "E"})[0]["data"]["vnodes"] == ring.default_vnodes


def test_add_node_strips_surrounding_spaces(ring):
    assert decide(ring, {"type": "add_node", "name": "  E  "})[0]["data"]["name"] == "E"


def test_add_node_accepts_vnodes_as_digit_string(ring):
    assert decide(ring, {"type": "add_node", "name": "E", "vnodes": " 12 "})[0]["data"]["vnodes"] == 12


def test_add_node_accepts_the_vnode_bounds(ring):
    low = decide(ring, {"type": "add_node", "name": "E", "vnodes": 1})[0]["data"]["vnodes"]
    high = decide(ring, {"type": "add_node", "name": "E", "vnodes": 1000})[0]["data"]["vnodes"]
    assert (low, high) == (1, 1000)


def test_add_node_rejects_duplicate_name(ring):
    with pytest.raises(Rejected, match="already a node called B"):
        decide(ring, {"type": "add_node", "name": "B"})


def test_add_node_rejects_duplicate_name_after_stripping(ring):
    with pytest.raises(Rejected, match="already a node called B"):
        decide(ring, {"type": "add_node", "name": " B "})


def test_add_node_rejects_name_with_hash(ring):
    with pytest.raises(Rejected, match="cannot contain '#'"):
        decide(ring, {"type": "add_node", "name": "E#1"})


def test_add_node_accepts_name_of_40_characters(ring):
    assert decide(ring, {"type": "add_node", "name": "n" * 40})[0]["data"]["name"] == "n" * 40


def test_add_node_rejects_name_over_40_characters(ring):
    with pytest.raises(Rejected, match="at most 40 characters"):
        decide(ring, {"type": "add_node", "name": "n" * 41})


def test_add_node_name_limit_counts_characters_not_bytes(ring):
    assert decide(ring, {"type": "add_node", "name": "é" * 40})[0]["data"]["name"] == "é" * 40


@pytest.mark.parametrize("name", ["E\x00", "a\nb", "tab\there", "E\u200b", "\x1b[31mred"])
def test_add_node_rejects_non_printable_name(ring, name):
    with pytest.raises(Rejected, match="printable"):
        decide(ring, {"type": "add_node", "name": name})


@pytest.mark.parametrize("name", NOT_TEXT)
def test_add_node_rejects_name_that_is_not_text(ring, name):
    with pytest.raises(Rejected, match="must be text"):
        decide(ring, {"type": "add_node", "name": name})


@pytest.mark.parametrize("name", [None, "", "   "])
def test_add_node_without_a_name_takes_the_next_free_name(ring, name):
    assert decide(ring, {"type": "add_node", "name": name})[0]["data"]["name"] == "E"


@pytest.mark.parametrize("vnodes", [0, -1, 1001, "0", "1001", 10**50])
def test_add_node_rejects_vnodes_out_of_range(ring, vnodes):
    with pytest.raises(Rejected, match="Virtual nodes must be from 1 to 1,000"):
        decide(ring, {"type": "add_node", "name": "E", "vnodes": vnodes})


@pytest.mark.parametrize("vnodes", ["abc", "9" * 50, "1.5", "1e3", "0x10", "+5", "1_000", 2.0, [8], {"n": 8}])
def test_add_node_rejects_vnodes_that_are_not_a_whole_number(ring, vnodes):
    with pytest.raises(Rejected, match="Virtual nodes must be a whole number"):
        decide(ring, {"type": "add_node", "name": "E", "vnodes": vnodes})


@pytest.mark.parametrize("vnodes", [True, False])
def test_add_node_rejects_boolean_vnodes(ring, vnodes):
    with pytest.raises(Rejected, match="Virtual nodes must be a whole number"):
        decide(ring, {"type": "add_node", "name": "E", "vnodes": vnodes})


@pytest.mark.parametrize("vnodes", ["--5", "-", "²", "¹²"])
def test_add_node_rejects_malformed_digit_strings(ring, vnodes):
    # str.isdigit() accepts these but int() does not: they must be refused, not crash decide.
    with pytest.raises(Rejected, match="Virtual nodes must be a whole number"):
        decide(ring, {"type": "add_node", "name": "E", "vnodes": vnodes})


def test_add_node_rejects_vnodes_over_a_smaller_limit(ring):
    with pytest.raises(Rejected, match="from 1 to 50"):
        decide(ring, {"type": "add_node", "name": "E", "vnodes": 51}, Limits(max_vnodes=50))


def test_add_node_rejects_over_max_nodes(ring):
    with pytest.raises(Rejected, match="already has 4 nodes"):
        decide(ring, {"type": "add_node", "name": "E"}, Limits(max_nodes=4))


def test_add_node_accepts_up_to_max_nodes(ring):
    assert decide(ring, {"type": "add_node", "name": "E"}, Limits(max_nodes=5))[0]["kind"] == "node_added"


# -- next free name ----------------------------------------------------------------------------

def test_next_free_name_after_a_to_d_is_e(ring):
    assert decide(ring, {"type": "add_node"})[0]["data"]["name"] == "E"


def test_next_free_name_fills_the_first_gap():
    assert decide(_with_nodes(["B", "C"]), {"type": "add_node"})[0]["data"]["name"] == "A"


def test_next_free_name_after_z_is_aa():
    assert decide(_with_nodes(list(string.ascii_uppercase)), {"type": "add_node"})[0]["data"]["name"] == "AA"


def test_next_free_name_after_aa_is_ab():
    state = _with_nodes([*string.ascii_uppercase, "AA"])
    assert decide(state, {"type": "add_node"})[0]["data"]["name"] == "AB"


def test_next_free_name_after_az_is_ba():
    state = _with_nodes([*string.ascii_uppercase, *(f"A{c}" for c in string.ascii_uppercase)])
    assert decide(state, {"type": "add_node"})[0]["data"]["name"] == "BA"


# -- remove_node -------------------------------------------------------------------------------

def test_remove_node_gives_node_removed_event(ring):
    assert decide(ring, {"type": "remove_node", "name": "C"}) == [{"kind": "node_removed", "data": {"name": "C"}}]


def test_remove_node_rejects_unknown_node(ring):
    with pytest.raises(Rejected, match="no node called Q"):
        decide(ring, {"type": "remove_node", "name": "Q"})


@pytest.mark.parametrize("name", ["", "   ", None])
def test_remove_node_rejects_empty_name(ring, name):
    with pytest.raises(Rejected, match="Give the node a name|must be text"):
        decide(ring, {"type": "remove_node", "name": name})


@pytest.mark.parametrize("name", NOT_TEXT)
def test_remove_node_rejects_name_that_is_not_text(ring, name):
    with pytest.raises(Rejected, match="must be text"):
        decide(ring, {"type": "remove_node", "name": name})


# -- set_vnodes --------------------------------------------------------------------------------

def test_set_vnodes_for_one_node(ring):
    assert decide(ring, {"type": "set_vnodes", "name": "A", "vnodes": 20}) == [
        {"kind": "vnodes_set", "data": {"name": "A", "vnodes": 20}}
    ]


def test_set_vnodes_without_name_sets_every_node(ring):
    assert decide(ring, {"type": "set_vnodes", "vnodes": 20})[0]["data"] == {"name": None, "vnodes": 20}


def test_set_vnodes_rejects_unknown_node(ring):
    with pytest.raises(Rejected, match="no node called Q"):
        decide(ring, {"type": "set_vnodes", "name": "Q", "vnodes": 20})


def test_set_vnodes_rejects_unchanged_count(ring):
    with pytest.raises(Rejected, match="already has 8 virtual nodes"):
        decide(ring, {"type": "set_vnodes", "name": "A", "vnodes": 8})


@pytest.mark.parametrize("vnodes", [None, 0, 1001, "abc", True, "9" * 50])
def test_set_vnodes_rejects_bad_count(ring, vnodes):
    with pytest.raises(Rejected, match="Virtual nodes must be"):
        decide(ring, {"type": "set_vnodes", "name": "A", "vnodes": vnodes})


# -- add_key -----------------------------------------------------------------------------------

def test_add_key_gives_key_added_event(ring):
    assert decide(ring, {"type": "add_key", "key": "alice"}) == [{"kind": "key_added", "data": {"key": "alice"}}]


def test_add_key_rejects_duplicate_key(ring):
    with pytest.raises(Rejected, match="user3 is already on the ring"):
        decide(ring, {"type": "add_key", "key": "user3"})


@pytest.mark.parametrize("key", ["", "   ", None])
def test_add_key_rejects_empty_key(ring, key):
    with pytest.raises(Rejected, match="Give the key a name|must be text"):
        decide(ring, {"type": "add_key", "key": key})


def test_add_key_rejects_key_over_40_characters(ring):
    with pytest.raises(Rejected, match="at most 40 characters"):
        decide(ring, {"type": "add_key", "key": "k" * 41})


def test_add_key_rejects_non_printable_key(ring):
    with pytest.raises(Rejected, match="printable"):
        decide(ring, {"type": "add_key", "key": "bob\x07"})


@pytest.mark.parametrize("key", NOT_TEXT)
def test_add_key_rejects_key_that_is_not_text(ring, key):
    with pytest.raises(Rejected, match="must be text"):
        decide(ring, {"type": "add_key", "key": key})


def test_add_key_rejects_over_max_keys(ring):
    with pytest.raises(Rejected, match="at most 12 keys"):
        decide(ring, {"type": "add_key", "key": "alice"}, Limits(max_keys=12))


def test_add_key_accepts_a_key_with_hash_sign(ring):
    assert decide(ring, {"type": "add_key", "key": "B#3"})[0]["data"]["key"] == "B#3"


# -- add_random_keys ---------------------------------------------------------------------------

def test_add_random_keys_gives_seed_and_count_not_names(ring):
    assert decide(ring, {"type": "add_random_keys", "count": 5, "_seed": "room:7"}) == [
        {"kind": "keys_added", "data": {"seed": "room:7:0", "count": 5}}
    ]


@pytest.mark.parametrize("count", [0, -3, 100_001, "abc", None, True, 2.5, "9" * 50, [5]])
def test_add_random_keys_rejects_count_out_of_bounds(ring, count):
    with pytest.raises(Rejected, match="The number of keys must be"):
        decide(ring, {"type": "add_random_keys", "count": count})


def test_add_random_keys_rejects_more_than_the_room_left(ring):
    with pytest.raises(Rejected, match="Only 8 more keys fit"):
        decide(ring, {"type": "add_random_keys", "count": 9}, Limits(max_keys=20))


def test_add_random_keys_accepts_exactly_the_room_left(ring):
    assert decide(ring, {"type": "add_random_keys", "count": 8}, Limits(max_keys=20))[0]["data"]["count"] == 8


def test_add_random_keys_rejects_when_full(ring):
    with pytest.raises(Rejected, match="Only 0 more keys fit"):
        decide(ring, {"type": "add_random_keys", "count": 1}, Limits(max_keys=12))


def test_add_random_keys_adds_count_keys(ring):
    after = _fold(ring, {"type": "add_random_keys", "count": 50, "_seed": "s"})
    assert len(after.keys) == len(ring.keys) + 50


def test_add_random_keys_same_seed_gives_same_names(ring):
    first = _fold(ring, {"type": "add_random_keys", "count": 30, "_seed": "room:1"})
    second = _fold(ring, {"type": "add_random_keys", "count": 30, "_seed": "room:1"})
    assert first.keys == second.keys


def test_add_random_keys_other_seed_gives_other_names(ring):
    first = _fold(ring, {"type": "add_random_keys", "count": 30, "_seed": "room:1"})
    second = _fold(ring, {"type": "add_random_keys", "count": 30, "_seed": "room:2"})
    assert set(first.keys[12:]).isdisjoint(second.keys[12:])


def test_add_random_keys_second_batch_with_same_seed_differs(ring):
    command = {"type": "add_random_keys", "count": 30, "_seed": "room:1"}
    after = _fold(ring, command, command)
    assert set(after.keys[12:42]).isdisjoint(after.keys[42:])


def test_add_random_keys_names_are_distinct(ring):
    after = _fold(ring, {"type": "add_random_keys", "count": 5000, "_seed": "s"})
    assert len(set(after.keys)) == len(after.keys)


def test_add_random_keys_never_duplicate_existing_keys():
    event = {"kind": "keys_added", "data": {"seed": "s:0", "count": 20}}
    would_be = evolve(initial_state({"keys": []}), event).keys
    # The ring already holds half of the names this seed would pick: they must be skipped.
    state = initial_state({"keys": list(would_be[::2])})
    after = evolve(state, event)
    assert (len(after.keys), len(set(after.keys))) == (30, 30)


def test_add_random_keys_event_replays_to_same_names(ring):
    events = decide(ring, {"type": "add_random_keys", "count": 25, "_seed": "room:9"})
    assert evolve(ring, events[0]).keys == evolve(ring, events[0]).keys


# -- remove_key / clear_keys ---------------------------------------------------------------------

def test_remove_key_gives_key_removed_event(ring):
    assert decide(ring, {"type": "remove_key", "key": "user4"}) == [{"kind": "key_removed", "data": {"key": "user4"}}]


def test_remove_key_rejects_unknown_key(ring):
    with pytest.raises(Rejected, match="no key nobody on the ring"):
        decide(ring, {"type": "remove_key", "key": "nobody"})


def test_clear_keys_rejects_an_empty_ring():
    with pytest.raises(Rejected, match="no keys to clear"):
        decide(initial_state({"keys": []}), {"type": "clear_keys"})


def test_clear_keys_gives_the_count(ring):
    assert decide(ring, {"type": "clear_keys"}) == [{"kind": "keys_cleared", "data": {"count": 12}}]


# -- lookup ------------------------------------------------------------------------------------

def test_lookup_gives_key_looked_up_event(ring):
    assert decide(ring, {"type": "lookup", "key": "someone"}) == [{"kind": "key_looked_up", "data": {"key": "someone"}}]


def test_lookup_rejects_a_ring_with_no_nodes():
    with pytest.raises(Rejected, match="Add a node first"):
        decide(initial_state({"nodes": []}), {"type": "lookup", "key": "user1"})


@pytest.mark.parametrize("key", ["", None, ["user1"], "k" * 41])
def test_lookup_rejects_bad_key(ring, key):
    with pytest.raises(Rejected):
        decide(ring, {"type": "lookup", "key": key})


# -- replicas, stream rate, tick -------------------------------------------------------------------

@pytest.mark.parametrize("replicas", [0, 8, "x", None, False])
def test_set_replicas_rejects_out_of_range(ring, replicas):
    with pytest.raises(Rejected, match="The replication factor must be"):
        decide(ring, {"type": "set_replicas", "replicas": replicas})


def test_set_replicas_gives_replicas_set_event(ring):
    assert decide(ring, {"type": "set_replicas", "replicas": 2}) == [{"kind": "replicas_set", "data": {"replicas": 2}}]


@pytest.mark.parametrize("rate", [0, 1001, "fast", None])
def test_set_stream_rate_rejects_out_of_range(ring, rate):
    with pytest.raises(Rejected, match="Keys per tick must be"):
        decide(ring, {"type": "set_stream_rate", "rate": rate})


@pytest.mark.parametrize("dt", [0, 60_001, "soon", True])
def test_tick_rejects_bad_duration(ring, dt):
    with pytest.raises(Rejected, match="A tick must be"):
        decide(ring, {"type": "tick", "dt_ms": dt})


def test_a_tick_without_its_length_is_refused(ring):
    # The room clock always says how long a tick is (dt_ms); the ring never guesses one.
    with pytest.raises(Rejected, match=r"^A tick must be a whole number from 1 to 60,000\.$"):
        decide(ring, {"type": "tick", "_seed": "s"})


def test_tick_adds_stream_rate_keys_and_advances_the_clock(ring):
    after = _fold(ring, {"type": "tick", "dt_ms": 250, "_seed": "s"})
    assert (len(after.keys), after.clock_ms) == (12 + ring.stream_rate, 250)


def test_tick_adds_no_keys_when_full(ring):
    assert decide(ring, {"type": "tick", "dt_ms": 1000, "_seed": "s"}, Limits(max_keys=12))[0]["data"]["count"] == 0


@pytest.mark.parametrize("bad", [True, False, ["a"], 3.5, "x" * 101, "a\x00b"])
def test_load_scene_refuses_a_seed_that_is_not_short_text(bad):
    with pytest.raises(Rejected, match="seed is printable text"):
        decide(initial_state(), {"type": "load_scene", "nodes": ["A"], "seed": bad})


def test_load_scene_takes_a_text_seed_as_given():
    [event] = decide(initial_state(), {"type": "load_scene", "nodes": ["A"], "random_keys": 3, "seed": "lesson-x"})
    assert event["data"]["seed"] == "lesson-x"
