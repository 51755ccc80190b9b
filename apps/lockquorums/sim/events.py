"""The lock's events, one typed description per kind (``EVENTS``: kind -> the TypedDict of its
``data``). ``decide`` writes them, ``evolve`` and ``narrate`` read them; an event is plain JSON
(``{"kind": ..., "data": ...}``) stored in the room's log, so a field added later is
``NotRequired`` (old logs lack it).
"""
from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from apps.common.sim.network import Message


class KeySet(TypedDict):
    node: str
    expires_at: int  # on the node's own clock


class LeaseData(TypedDict):
    holder: str
    revision: int
    value: str
    expires_at: int


class AcquireAttempted(TypedDict):
    """One try of an acquisition (RedLock, single or a consensus lease), with every message."""

    mode: str
    client: str
    value: str
    t1: int
    t2: int
    elapsed: int
    oks: int
    nodes: int
    quorum: int
    drift: int
    validity: int
    acquired: bool
    sets: list[KeySet]  # keys set by an OK the client counted
    messages: list[Message]
    release: list[Message]  # a failed try's compare-and-delete on every node
    attempt: int
    retry_delay: int | None  # None: acquired, or no tries left
    late: NotRequired[list[KeySet]]  # redlock: SETs that landed after the per-node timeout
    result: NotRequired[str]  # consensus: what the group answered
    late_lease: NotRequired[LeaseData | None]  # consensus: a grant committed after the timeout
    valid_until: NotRequired[int]  # acquired
    grant: NotRequired[int]
    token: NotRequired[int | None]
    lease_expires_at: NotRequired[int]  # consensus, acquired


class Released(TypedDict):
    client: str
    value: str
    deletes: list[str]
    messages: list[Message]
    lease_revoked: bool


class Written(TypedDict):
    client: str
    at: int
    token: int | None
    grant: int | None
    accepted: bool
    reason: str


class NodeCrashed(TypedDict):
    node: str


class NodeRestarted(TypedDict):
    node: str
    persistence: bool
    delayed: bool
    keeps_key: bool
    available_from: int


class LinkChanged(TypedDict):
    """link_cut and link_healed."""

    client: str
    node: str


class ClockJumped(TypedDict):
    node: str
    ms: int


class ClientPaused(TypedDict):
    client: str
    until: int


class Ticked(TypedDict):
    to: int


class FencingSet(TypedDict):
    on: bool


class ClientAdded(TypedDict):
    name: str


class LatencySet(TypedDict):
    client: str
    node: str
    ms: int


class Configured(TypedDict):
    changes: dict[str, int]  # ttl_ms, node_timeout_ms, latency_ms, retry_count, retry_delay_max_ms
    previous: dict[str, int]


class SceneLoaded(TypedDict):
    params: dict[str, Any]  # initial_state's parameters: mode, nodes, ttl_ms, ..., clients, fencing


class ContenderJoined(TypedDict):
    name: str
    rtt: list[list[Any]]  # [node, round-trip ms] per node: each student's own network


class Freed(TypedDict):
    node: str
    owner: str


class RaceReset(TypedDict):
    contenders: int
    released: list[Freed]


class RaceKey(TypedDict):
    node: str
    key: dict[str, Any] | None  # the node's key after the race (value, owner, expires_at), or None


class RaceRun(TypedDict):
    t0: int
    t_end: int
    quorum: int
    nodes: int
    ttl: int
    drift: int
    winners: list[str]
    messages: int
    keys: list[RaceKey]
    contenders: list[dict[str, Any]]  # {"name", "tries": [one dict per try]}


EVENTS: dict[str, type] = {
    "acquire_attempted": AcquireAttempted,
    "released": Released,
    "written": Written,
    "node_crashed": NodeCrashed,
    "node_restarted": NodeRestarted,
    "link_cut": LinkChanged,
    "link_healed": LinkChanged,
    "clock_jumped": ClockJumped,
    "client_paused": ClientPaused,
    "ticked": Ticked,
    "fencing_set": FencingSet,
    "client_added": ClientAdded,
    "latency_set": LatencySet,
    "configured": Configured,
    "scene_loaded": SceneLoaded,
    "contender_joined": ContenderJoined,
    "race_reset": RaceReset,
    "race_run": RaceRun,
}
