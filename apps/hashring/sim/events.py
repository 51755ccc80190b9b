"""Every event the hash ring writes, one typed description per kind (``EVENTS``).

An event is plain JSON in the room's log: ``{"kind": <a key of EVENTS>, "data": <that kind's
TypedDict>}``. ``decide`` builds each event's data with its TypedDict, ``evolve`` folds it and
``narrate`` tells it, each through a table keyed by kind; mypy checks all three against these
descriptions, and the tests check every event a command produces against ``EVENTS``.

No ``from __future__ import annotations`` here, as in the other sims' event modules: a TypedDict
reads its keys from the evaluated annotations.
"""
from typing import TypedDict


class NodeAdded(TypedDict):
    name: str
    vnodes: int


class NodeRemoved(TypedDict):
    name: str


class VnodesSet(TypedDict):
    name: str | None  # None: every node (and the room's default for new nodes)
    vnodes: int


class KeyAdded(TypedDict):
    key: str


class KeysAdded(TypedDict):
    """``count`` random keys, named from ``seed``: a replay makes the same names."""

    seed: str
    count: int


class KeyRemoved(TypedDict):
    key: str


class KeysCleared(TypedDict):
    count: int  # how many keys there were


class KeyLookedUp(TypedDict):
    key: str


class ReplicasSet(TypedDict):
    replicas: int


class StreamRateSet(TypedDict):
    rate: int  # keys streamed in per tick while playing


class Ticked(TypedDict):
    """One tick of the room clock: ``dt_ms`` of simulated time, ``count`` keys streamed in."""

    dt_ms: int
    seed: str
    count: int


class SceneLoaded(TypedDict):
    """A prepared ring replacing the one there was: named keys, then ``random_keys`` from ``seed``."""

    nodes: list[str]
    vnodes: int
    keys: list[str]
    random_keys: int
    seed: str
    replicas: int


EVENTS: dict[str, type] = {
    "node_added": NodeAdded,
    "node_removed": NodeRemoved,
    "vnodes_set": VnodesSet,
    "key_added": KeyAdded,
    "keys_added": KeysAdded,
    "key_removed": KeyRemoved,
    "keys_cleared": KeysCleared,
    "key_looked_up": KeyLookedUp,
    "replicas_set": ReplicasSet,
    "stream_rate_set": StreamRateSet,
    "ticked": Ticked,
    "scene_loaded": SceneLoaded,
}
