"""The hash ring as a decider: ``initial_state``, ``decide`` and ``evolve``.

``decide(state, command, limits)`` checks a command against the ring and returns the events it
causes, or raises :class:`Rejected` with a sentence for the person who sent it. ``evolve`` folds
one event into a new state; it is pure and deterministic, so replaying a room's log always
rebuilds the same ring. Random keys carry their seed inside the event: a replay never re-rolls.
"""
from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, TypedDict

import mmh3
import numpy as np

from apps.common.sim import Rejected, clean_int
from apps.common.sim import clean_name as _clean_name

from .events import (
    KeyAdded,
    KeyLookedUp,
    KeyRemoved,
    KeysAdded,
    KeysCleared,
    NodeAdded,
    NodeRemoved,
    ReplicasSet,
    SceneLoaded,
    StreamRateSet,
    Ticked,
    VnodesSet,
)
from .ring import VnodeTable, key_position, key_positions

Event = dict[str, Any]  # {"kind": str, "data": {...}}: plain JSON, stored as is in the log


@dataclass(frozen=True)
class Limits:
    max_nodes: int = 64
    max_vnodes: int = 1000
    max_keys: int = 100_000
    max_name_length: int = 40


@dataclass(frozen=True)
class Node:
    name: str
    vnodes: int
    slot: int = 0  # a stable colour slot for the picture: the lowest one free when it joined


class MoveExample(TypedDict):
    """One key a membership change moved, and the vnodes behind the move (for the narration)."""

    key: str
    from_node: str
    from_vnode: int
    to_node: str
    to_vnode: int


@dataclass(frozen=True)
class Change:
    """What the last membership change did, kept for the "keys moved" panel."""

    kind: str  # "added" | "removed" | "reweighted"
    node: str
    total_keys: int
    moved: int
    ideal: float | None  # keys expected to move: K * w/W (the node's w of the ring's W vnodes)
    modulo_moved: int  # what hash % N would have moved on the same keys
    nodes_before: int
    nodes_after: int
    example: MoveExample | None = None  # one moved key, explained in the narration
    # The weights behind ``ideal``: the added (or removed) node's vnodes, out of all the vnodes
    # on the ring with it (after an add, before a removal). None for a reweighting.
    ideal_vnodes: int | None = None
    ideal_of_vnodes: int | None = None


@dataclass(frozen=True)
class RingState:
    nodes: tuple[Node, ...] = ()  # join order; modulo hashing numbers buckets in this order
    keys: tuple[str, ...] = ()  # insertion order
    replicas: int = 3
    default_vnodes: int = 8
    stream_rate: int = 5  # keys added per clock tick while playing
    clock_ms: int = 0
    lookup: str | None = None
    lookups: int = 0  # how many lookups so far: each one is drawn (and animated) as a new element
    last_change: Change | None = None
    keys_seeded: int = 0  # how many random-key batches so far (names the next batch's seed)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # -- derived, computed once per state object ---------------------------------------
    @cached_property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    @cached_property
    def key_set(self) -> frozenset[str]:
        return frozenset(self.keys)

    @cached_property
    def table(self) -> VnodeTable:
        return VnodeTable.build([(n.name, n.vnodes) for n in self.nodes])

    @cached_property
    def key_hashes(self) -> np.ndarray:
        cached: np.ndarray | None = self._cache.get("key_hashes")
        if cached is not None and len(cached) == len(self.keys):
            return cached
        return key_positions(self.keys)

    @cached_property
    def owner_slots(self) -> np.ndarray:
        """Per key: the slot in ``table`` of its owning virtual node (-1 with no nodes)."""
        return self.table.owner_slots(self.key_hashes)

    @cached_property
    def owners(self) -> np.ndarray:
        """Per key: index into ``node_names`` of its owner (-1 with no nodes)."""
        if not self.nodes:
            return np.full(len(self.keys), -1, dtype=np.int64)
        owners: np.ndarray = self.table.node_index[self.owner_slots].astype(np.int64)
        return owners

    @cached_property
    def counts(self) -> dict[str, int]:
        if not self.nodes:
            return {}
        tally = np.bincount(self.owners, minlength=len(self.nodes)) if len(self.keys) else np.zeros(len(self.nodes), dtype=np.int64)
        return {name: int(tally[i]) for i, name in enumerate(self.node_names)}

    def node(self, name: str) -> Node | None:
        for n in self.nodes:
            if n.name == name:
                return n
        return None

    def owner_of(self, key: str) -> str | None:
        if not self.nodes:
            return None
        slot = self.table.owner_slot(key_position(key))
        return self.node_names[int(self.table.node_index[slot])]

    def preference_list(self, key: str) -> list[tuple[str, int]]:
        return self.table.preference_list(key_position(key), self.replicas)


def initial_state(params: dict[str, Any] | None = None) -> RingState:
    """The seed's picture: four lockers (A-D) on a ring and a dozen users."""
    params = params or {}
    vnodes = int(params.get("vnodes", 8))
    names = params.get("nodes", ["A", "B", "C", "D"])
    keys = params.get("keys", [f"user{i}" for i in range(1, 13)])
    return RingState(
        nodes=tuple(Node(n, vnodes, i) for i, n in enumerate(names)),
        keys=tuple(keys),
        default_vnodes=vnodes,
    )


# -- validation helpers ------------------------------------------------------------------

def clean_name(raw: Any, what: str, limits: Limits) -> str:
    return _clean_name(raw, what, limits.max_name_length)


def next_free_name(state: RingState) -> str:
    """A, B, ..., Z, AA, AB, ...: the first name no node has."""
    taken = set(state.node_names)
    letters = string.ascii_uppercase
    i = 0
    while True:
        name, n = "", i
        while True:
            name = letters[n % 26] + name
            n = n // 26 - 1
            if n < 0:
                break
        if name not in taken:
            return name
        i += 1


def random_key_names(seed: str, count: int, existing: frozenset[str]) -> list[str]:
    """Deterministic "random" user keys: the seed and the count are all a replay needs.

    Built on mmh3 rather than ``random`` so the names are the same on every Python version.
    """
    names: list[str] = []
    seen = set()
    i = 0
    while len(names) < count:
        n = mmh3.hash(f"{seed}:{i}", 0x5EED, signed=False) % 10_000_000
        i += 1
        name = f"user{n}"
        if name in existing or name in seen:
            continue
        seen.add(name)
        names.append(name)
    return names


# -- decide -----------------------------------------------------------------------------

def decide(state: RingState, command: dict[str, Any], limits: Limits = Limits()) -> list[Event]:
    kind = command.get("type")
    handler = COMMANDS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise Rejected(f"Unknown command {str(kind)[:40]!r} for the hash ring.")
    return handler(state, command, limits)


def _add_node(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    if len(state.nodes) >= limits.max_nodes:
        raise Rejected(f"The ring already has {limits.max_nodes} nodes, the most it can hold.")
    raw = cmd.get("name")
    name = next_free_name(state) if raw is None or (isinstance(raw, str) and not raw.strip()) else clean_name(raw, "node", limits)
    if "#" in name:
        raise Rejected("A node name cannot contain '#': it separates the node from its vnode number.")
    if state.node(name) is not None:
        raise Rejected(f"There is already a node called {name}.")
    raw_v = cmd.get("vnodes")
    vnodes = state.default_vnodes if raw_v in (None, "") else clean_int(raw_v, "Virtual nodes", 1, limits.max_vnodes)
    return [_event("node_added", NodeAdded(name=name, vnodes=vnodes))]


def _remove_node(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    if cmd.get("owner_of") is not None:  # "remove the server that owns this key" (lessons use it)
        key = clean_name(cmd["owner_of"], "key", limits)
        owner = state.owner_of(key)
        if owner is None:
            raise Rejected("There is no node to remove.")
        return [_event("node_removed", NodeRemoved(name=owner))]
    name = clean_name(cmd.get("name"), "node", limits)
    if state.node(name) is None:
        raise Rejected(f"There is no node called {name}.")
    return [_event("node_removed", NodeRemoved(name=name))]


def _set_vnodes(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    vnodes = clean_int(cmd.get("vnodes"), "Virtual nodes", 1, limits.max_vnodes)
    raw = cmd.get("name")
    if raw in (None, ""):
        if state.nodes and all(n.vnodes == vnodes for n in state.nodes):
            raise Rejected(f"Every node already has {vnodes} virtual nodes.")
        return [_event("vnodes_set", VnodesSet(name=None, vnodes=vnodes))]
    name = clean_name(raw, "node", limits)
    node = state.node(name)
    if node is None:
        raise Rejected(f"There is no node called {name}.")
    if node.vnodes == vnodes:
        raise Rejected(f"{name} already has {vnodes} virtual nodes.")
    return [_event("vnodes_set", VnodesSet(name=name, vnodes=vnodes))]


def _add_key(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    key = clean_name(cmd.get("key"), "key", limits)
    if key in state.key_set:
        raise Rejected(f"The key {key} is already on the ring.")
    if len(state.keys) >= limits.max_keys:
        raise Rejected(f"The ring holds at most {limits.max_keys:,} keys.")
    return [_event("key_added", KeyAdded(key=key))]


def _add_random_keys(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    room_left = max(limits.max_keys - len(state.keys), 0)
    count = clean_int(cmd.get("count"), "The number of keys", 1, limits.max_keys)
    if count > room_left:
        raise Rejected(f"Only {room_left:,} more keys fit (the ring holds at most {limits.max_keys:,}).")
    seed = f"{cmd.get('_seed', 'seed')}:{state.keys_seeded}"
    return [_event("keys_added", KeysAdded(seed=seed, count=count))]


def _remove_key(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    key = clean_name(cmd.get("key"), "key", limits)
    if key not in state.key_set:
        raise Rejected(f"There is no key {key} on the ring.")
    return [_event("key_removed", KeyRemoved(key=key))]


def _clear_keys(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    if not state.keys:
        raise Rejected("There are no keys to clear.")
    return [_event("keys_cleared", KeysCleared(count=len(state.keys)))]


def _lookup(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    key = clean_name(cmd.get("key"), "key", limits)
    if not state.nodes:
        raise Rejected("Add a node first: with no nodes, no key has an owner.")
    return [_event("key_looked_up", KeyLookedUp(key=key))]


def _set_replicas(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    r = clean_int(cmd.get("replicas"), "The replication factor", 1, 7)
    return [_event("replicas_set", ReplicasSet(replicas=r))]


def _set_stream_rate(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    rate = clean_int(cmd.get("rate"), "Keys per tick", 1, 1000)
    return [_event("stream_rate_set", StreamRateSet(rate=rate))]


def _load_scene(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    """Replace the ring with a prepared scene (a lesson step starts from a known picture)."""
    names = cmd.get("nodes", [])
    if not isinstance(names, list) or len(names) > limits.max_nodes:
        raise Rejected(f"A scene has a list of at most {limits.max_nodes} node names.")
    nodes = [clean_name(n, "node", limits) for n in names]
    if len(set(nodes)) != len(nodes) or any("#" in n for n in nodes):
        raise Rejected("A scene's node names must be distinct and contain no '#'.")
    vnodes = clean_int(cmd.get("vnodes", state.default_vnodes), "Virtual nodes", 1, limits.max_vnodes)
    keys = cmd.get("keys", [])
    if not isinstance(keys, list):
        raise Rejected("A scene's keys are a list of names.")
    keys = [clean_name(k, "key", limits) for k in keys]
    if len(set(keys)) != len(keys):
        raise Rejected("A scene's keys must be distinct.")
    random_count = clean_int(cmd.get("random_keys", 0), "Random keys", 0, limits.max_keys)
    if len(keys) + random_count > limits.max_keys:
        raise Rejected(f"A scene holds at most {limits.max_keys:,} keys.")
    replicas = clean_int(cmd.get("replicas", state.replicas), "The replication factor", 1, 7)
    seed = f"{cmd.get('_seed', 'seed')}:{state.keys_seeded}"
    raw_seed = cmd.get("seed")
    if raw_seed not in (None, ""):
        if not isinstance(raw_seed, str) or len(raw_seed) > 100 or not raw_seed.isprintable():
            raise Rejected("A scene's seed is printable text of at most 100 characters.")
        seed = raw_seed
    return [_event("scene_loaded", SceneLoaded(nodes=nodes, vnodes=vnodes, keys=keys, random_keys=random_count,
                                               seed=seed, replicas=replicas))]


def _tick(state: RingState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    dt = clean_int(cmd.get("dt_ms"), "A tick", 1, 60_000)  # the room clock always says how long
    count = min(state.stream_rate, limits.max_keys - len(state.keys))
    seed = f"{cmd.get('_seed', 'seed')}:{state.keys_seeded}"
    return [_event("ticked", Ticked(dt_ms=dt, seed=seed, count=max(count, 0)))]


def _event(kind: str, data: Mapping[str, object]) -> Event:
    return {"kind": kind, "data": data}


COMMANDS: Mapping[str, Callable[[RingState, dict[str, Any], Limits], list[Event]]] = {
    "add_node": _add_node,
    "remove_node": _remove_node,
    "set_vnodes": _set_vnodes,
    "add_key": _add_key,
    "add_random_keys": _add_random_keys,
    "remove_key": _remove_key,
    "clear_keys": _clear_keys,
    "lookup": _lookup,
    "set_replicas": _set_replicas,
    "set_stream_rate": _set_stream_rate,
    "tick": _tick,
    "load_scene": _load_scene,
}


# -- evolve -----------------------------------------------------------------------------

def evolve(state: RingState, event: Event) -> RingState:
    """Fold one event (``EVOLVE[kind]``) into a new state."""
    step = EVOLVE.get(event["kind"])
    if step is None:
        raise ValueError(f"unknown hash ring event {event['kind']!r}")
    return step(state, event["data"])


def _node_added(state: RingState, data: NodeAdded) -> RingState:
    used = {n.slot for n in state.nodes}
    slot = next(i for i in range(len(state.nodes) + 1) if i not in used)
    after = replace(state, nodes=state.nodes + (Node(data["name"], data["vnodes"], slot),), _cache=_carry(state))
    return _with_change(state, after, "added", data["name"])


def _node_removed(state: RingState, data: NodeRemoved) -> RingState:
    after = replace(state, nodes=tuple(n for n in state.nodes if n.name != data["name"]), _cache=_carry(state))
    return _with_change(state, after, "removed", data["name"])


def _vnodes_set(state: RingState, data: VnodesSet) -> RingState:
    name = data["name"]
    nodes = tuple(replace(n, vnodes=data["vnodes"]) if name is None or n.name == name else n for n in state.nodes)
    defaults = data["vnodes"] if name is None else state.default_vnodes
    after = replace(state, nodes=nodes, default_vnodes=defaults, _cache=_carry(state))
    return _with_change(state, after, "reweighted", name or "every node")


def _key_added(state: RingState, data: KeyAdded) -> RingState:
    return _with_keys(state, [data["key"]])


def _keys_added(state: RingState, data: KeysAdded) -> RingState:
    return _with_keys(state, random_key_names(data["seed"], data["count"], state.key_set), seeded=True)


def _ticked(state: RingState, data: Ticked) -> RingState:
    names = random_key_names(data["seed"], data["count"], state.key_set) if data["count"] else []
    return replace(_with_keys(state, names, seeded=True), clock_ms=state.clock_ms + data["dt_ms"])


def _key_removed(state: RingState, data: KeyRemoved) -> RingState:
    keep = [i for i, k in enumerate(state.keys) if k != data["key"]]
    cache = {"key_hashes": state.key_hashes[keep]}
    return replace(state, keys=tuple(state.keys[i] for i in keep), _cache=cache)


def _scene_loaded(state: RingState, data: SceneLoaded) -> RingState:
    keys = list(data["keys"])
    if data["random_keys"]:
        keys += random_key_names(data["seed"], data["random_keys"], frozenset(keys))
    return RingState(
        nodes=tuple(Node(n, data["vnodes"], i) for i, n in enumerate(data["nodes"])),
        keys=tuple(keys),
        replicas=data["replicas"],
        default_vnodes=data["vnodes"],
        stream_rate=state.stream_rate,
        clock_ms=state.clock_ms,
        keys_seeded=state.keys_seeded + 1,
    )


def _keys_cleared(state: RingState, data: KeysCleared) -> RingState:
    return replace(state, keys=(), lookup=None, _cache={})


def _key_looked_up(state: RingState, data: KeyLookedUp) -> RingState:
    return _replace_keeping_derived(state, lookup=data["key"], lookups=state.lookups + 1)


def _replicas_set(state: RingState, data: ReplicasSet) -> RingState:
    return _replace_keeping_derived(state, replicas=data["replicas"])


def _stream_rate_set(state: RingState, data: StreamRateSet) -> RingState:
    return _replace_keeping_derived(state, stream_rate=data["rate"])


# kind -> how the event changes the state (its data typed by ``events.EVENTS[kind]``).
EVOLVE: Mapping[str, Callable[[RingState, Any], RingState]] = {
    "node_added": _node_added,
    "node_removed": _node_removed,
    "vnodes_set": _vnodes_set,
    "key_added": _key_added,
    "keys_added": _keys_added,
    "ticked": _ticked,
    "key_removed": _key_removed,
    "scene_loaded": _scene_loaded,
    "keys_cleared": _keys_cleared,
    "key_looked_up": _key_looked_up,
    "replicas_set": _replicas_set,
    "stream_rate_set": _stream_rate_set,
}


def _carry(state: RingState) -> dict[str, Any]:
    """Pass the per-key hashes on to the next state when its keys are the same."""
    return {"key_hashes": state.key_hashes}


def _with_keys(state: RingState, new_keys: list[str], seeded: bool = False) -> RingState:
    added = key_positions(new_keys)
    hashes = np.concatenate([state.key_hashes, added]) if new_keys else state.key_hashes
    after = replace(
        state,
        keys=state.keys + tuple(new_keys),
        keys_seeded=state.keys_seeded + (1 if seeded else 0),
        _cache={"key_hashes": hashes},
    )
    # Same nodes: the old keys keep their owners, so place only the new ones.
    if "owner_slots" in state.__dict__:
        after.__dict__["table"] = state.table
        after.__dict__["owner_slots"] = np.concatenate([state.owner_slots, state.table.owner_slots(added)])
    return after


def moved_mask(before: RingState, after: RingState) -> np.ndarray:
    """Per key (both states hold the same keys): True where the owning node changed."""
    if not before.nodes or not after.nodes or not len(before.keys):
        return np.zeros(len(after.keys), dtype=bool)
    union = sorted(set(before.node_names) | set(after.node_names))
    rank = {name: i for i, name in enumerate(union)}
    b_ids = np.array([rank[n] for n in before.node_names])[before.owners]
    a_ids = np.array([rank[n] for n in after.node_names])[after.owners]
    moved: np.ndarray = b_ids != a_ids
    return moved


def modulo_moved(before: RingState, after: RingState) -> int:
    """Keys that ``hash % N`` placement would move between the same two memberships."""
    nb, na = len(before.nodes), len(after.nodes)
    if nb == 0 or na == 0 or not len(before.keys):
        return 0
    h = before.key_hashes
    b_names = np.array(before.node_names, dtype=object)[(h % nb).astype(np.int64)]
    a_names = np.array(after.node_names, dtype=object)[(h % na).astype(np.int64)]
    return int(np.count_nonzero(b_names != a_names))


def _with_change(before: RingState, after: RingState, kind: str, node: str) -> RingState:
    moved = moved_mask(before, after)
    total = len(after.keys)
    nb, na = len(before.nodes), len(after.nodes)
    # A node with w of the ring's W vnodes owns about w/W of the ring, so about K * w/W keys
    # move to it when it joins, or away from it when it leaves (K/(n+1) when all weigh the same).
    ideal: float | None = None
    w = big_w = None
    if kind == "added" and na:
        w, big_w = after.node(node).vnodes, sum(n.vnodes for n in after.nodes)  # type: ignore[union-attr]
    elif kind == "removed" and nb:
        w, big_w = before.node(node).vnodes, sum(n.vnodes for n in before.nodes)  # type: ignore[union-attr]
    if w is not None and big_w:
        ideal = total * w / big_w
    example = None
    if moved.any():
        i = int(np.flatnonzero(moved)[0])
        example = _explain_move(before, after, i)
    change = Change(
        kind=kind,
        node=node,
        total_keys=total,
        moved=int(moved.sum()),
        ideal=ideal,
        modulo_moved=modulo_moved(before, after),
        nodes_before=nb,
        nodes_after=na,
        example=example,
        ideal_vnodes=w,
        ideal_of_vnodes=big_w,
    )
    return _replace_keeping_derived(after, last_change=change)


def _replace_keeping_derived(state: RingState, **changes: Any) -> RingState:
    """``replace`` for fields that do not affect placement: keep what was already derived."""
    new = replace(state, _cache={}, **changes)  # a fresh cache: what hangs on it may depend on any field
    for name in ("node_names", "key_set", "table", "key_hashes", "owner_slots", "owners", "counts"):
        if name in state.__dict__:
            new.__dict__[name] = state.__dict__[name]
    return new


def _explain_move(before: RingState, after: RingState, i: int) -> MoveExample:
    """Name the vnodes behind one key's move, for the narration line."""
    key = after.keys[i]
    b_slot, a_slot = int(before.owner_slots[i]), int(after.owner_slots[i])
    bt, at = before.table, after.table
    return {
        "key": key,
        "from_node": bt.names[int(bt.node_index[b_slot])],
        "from_vnode": int(bt.vnode_index[b_slot]),
        "to_node": at.names[int(at.node_index[a_slot])],
        "to_vnode": int(at.vnode_index[a_slot]),
    }


# -- JSON ---------------------------------------------------------------------------------

def to_json(state: RingState) -> dict[str, Any]:
    return {
        "nodes": [{"name": n.name, "vnodes": n.vnodes, "slot": n.slot} for n in state.nodes],
        "keys": list(state.keys),
        "replicas": state.replicas,
        "default_vnodes": state.default_vnodes,
        "stream_rate": state.stream_rate,
        "clock_ms": state.clock_ms,
        "lookup": state.lookup,
        "lookups": state.lookups,
        "last_change": None if state.last_change is None else state.last_change.__dict__.copy(),
        "keys_seeded": state.keys_seeded,
    }


def from_json(data: dict[str, Any]) -> RingState:
    change = data.get("last_change")
    return RingState(
        nodes=tuple(Node(n["name"], n["vnodes"], n.get("slot", 0)) for n in data["nodes"]),
        keys=tuple(data["keys"]),
        replicas=data["replicas"],
        default_vnodes=data["default_vnodes"],
        stream_rate=data["stream_rate"],
        clock_ms=data["clock_ms"],
        lookup=data["lookup"],
        lookups=data.get("lookups", 0),
        last_change=None if change is None else Change(**change),
        keys_seeded=data["keys_seeded"],
    )
