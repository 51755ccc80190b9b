"""One plain-words line per event, written into the room's log when the event is appended.

``narrate`` looks the event's kind up in ``NARRATE``: one small function per kind, given the
state after the event (None when there is none) and the event's data (``events.EVENTS[kind]``).
A membership change (a node added, removed or reweighted) is told with what it moved: how many
keys, against the ideal and against ``hash % N``, and one moved key with the vnodes behind it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .core import Change, Event, RingState
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
from .lookup import lookup_view, placement


def narrate(before: RingState | None, after: RingState | None, event: Event) -> str:
    tell = NARRATE.get(event["kind"])
    return event["kind"] if tell is None else tell(after, event["data"])


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def _vnodes(count: int) -> str:
    return f"{count} virtual node{'' if count == 1 else 's'}"


# -- membership changes ------------------------------------------------------------------------

# Why the example key moved, by the change's kind (``Change.kind``).
WHY_IT_MOVED = {
    "added": "{to_node}'s vnode {to_node}#{to_vnode} now sits between the key and {from_node}#{from_vnode}.",
    "removed": "{from_node}#{from_vnode} is gone, so the walk clockwise now reaches {to_node}#{to_vnode}.",
    "reweighted": "the first vnode clockwise from it is now {to_node}#{to_vnode}.",
}


def _moved(head: str, after: RingState, change: Change) -> str:
    """The head of the line ("Added node E with 8 virtual nodes"), then what the change moved."""
    total = change.total_keys
    if not total:
        return f"{head}. There are no keys yet, so nothing moves."
    if not after.nodes:
        return f"{head}: no node is left, so none of the {total:,} keys has an owner."
    if change.kind == "added" and change.nodes_before == 0:
        return f"{head}: the only node on the ring now stores all {total:,} keys."
    line = f"{head}: {change.moved:,} of {total:,} keys moved ({_pct(change.moved, total)}"
    if change.ideal is not None:
        if change.ideal_vnodes is not None:
            line += (f"; ideal {change.ideal_vnodes:,}/{change.ideal_of_vnodes:,} of the vnodes "
                     f"≈ {_pct(change.ideal, total)}")
        else:
            line += f"; ideal {'K/(n+1)' if change.kind == 'added' else 'K/n'} = {_pct(change.ideal, total)}"
    if change.kind == "reweighted":
        line += "). hash % N has no weights, so it would have moved nothing here."
    else:
        line += f"). hash % N would have moved {change.modulo_moved:,} ({_pct(change.modulo_moved, total)})."
    ex = change.example
    if ex:
        line += f" {ex['key']} moved from {ex['from_node']} to {ex['to_node']}: " + WHY_IT_MOVED[change.kind].format(**ex)
    return line


def _node_added(after: RingState | None, data: NodeAdded) -> str:
    if after is None or after.last_change is None:
        return f"Added node {data['name']} with {data['vnodes']} virtual nodes."
    return _moved(f"Added node {data['name']} with {_vnodes(data['vnodes'])}", after, after.last_change)


def _node_removed(after: RingState | None, data: NodeRemoved) -> str:
    if after is None or after.last_change is None:
        return f"Removed node {data['name']}."
    return _moved(f"Removed node {data['name']}", after, after.last_change)


def _vnodes_set(after: RingState | None, data: VnodesSet) -> str:
    if after is None or after.last_change is None:
        return f"Set {data['name'] or 'every node'} to {data['vnodes']} virtual nodes."
    return _moved(f"Set {data['name'] or 'every node'} to {_vnodes(data['vnodes'])}", after, after.last_change)


# -- keys ------------------------------------------------------------------------------------------

def _key_added(after: RingState | None, data: KeyAdded) -> str:
    key = data["key"]
    where = placement(after, key) if after is not None else None
    if where is not None:
        return (f"Added key {key}: it hashes to {where['hash']:,} ({where['degrees']}°) and the first vnode "
                f"clockwise is {where['owner']}#{where['vnode']}, so {where['owner']} stores it.")
    return f"Added key {key} (no node to store it yet)."


def _keys_added(after: RingState | None, data: KeysAdded) -> str:
    return f"Added {data['count']:,} random keys."


def _ticked(after: RingState | None, data: Ticked) -> str:
    return f"Tick: {data['count']:,} keys streamed in." if data["count"] else "Tick."


def _key_removed(after: RingState | None, data: KeyRemoved) -> str:
    return f"Removed key {data['key']}."


def _keys_cleared(after: RingState | None, data: KeysCleared) -> str:
    return f"Cleared all {data['count']:,} keys."


def _key_looked_up(after: RingState | None, data: KeyLookedUp) -> str:
    view = lookup_view(after) if after is not None and after.nodes else None
    if view is None:
        return f"Looked up {data['key']}."
    prefs = ", ".join(n for n, _ in view["prefs"])
    wrap = " (past the top of the ring, so the walk wraps to the lowest position)" if view["wrapped"] else ""
    return (f"Looked up {data['key']}: position {view['hash']:,} ({view['degrees']}°). Walking clockwise, the first "
            f"vnode is {view['owner']}#{view['vnode']} at {view['vnode_pos']:,}{wrap}, so {view['owner']} owns it. "
            f"Preference list (replication factor RF={view['replicas']}): {prefs}.")


# -- the scene and the settings ------------------------------------------------------------------

def _scene_loaded(after: RingState | None, data: SceneLoaded) -> str:
    each = "s" if data["vnodes"] != 1 else ""
    return (f"New scene: {len(data['nodes'])} nodes ({', '.join(data['nodes'])}) with {data['vnodes']} virtual "
            f"node{each} each, {len(data['keys']) + data['random_keys']:,} keys.")


def _replicas_set(after: RingState | None, data: ReplicasSet) -> str:
    r = data["replicas"]
    return f"Replication factor set to {r}: each key is kept on the next {r} distinct nodes clockwise."


def _stream_rate_set(after: RingState | None, data: StreamRateSet) -> str:
    return f"While playing, {data['rate']} keys stream in per tick."


# kind -> its line (the data typed by ``events.EVENTS[kind]``); an unknown kind is told by its name.
NARRATE: Mapping[str, Callable[[RingState | None, Any], str]] = {
    "node_added": _node_added,
    "node_removed": _node_removed,
    "vnodes_set": _vnodes_set,
    "key_added": _key_added,
    "keys_added": _keys_added,
    "ticked": _ticked,
    "key_removed": _key_removed,
    "keys_cleared": _keys_cleared,
    "key_looked_up": _key_looked_up,
    "scene_loaded": _scene_loaded,
    "replicas_set": _replicas_set,
    "stream_rate_set": _stream_rate_set,
}
