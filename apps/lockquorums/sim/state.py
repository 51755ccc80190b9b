"""The lock's state: nodes, clients, the storage, the race, the trace; and its JSON.

Frozen dataclasses: ``evolve`` makes a new state, nothing changes one in place. Time is logical
milliseconds carried by the state (``now_ms``); nothing reads a wall clock.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from apps.common.sim import Rejected
from apps.common.sim.network import Links
from apps.common.sim.trace import Bound, Episode, Trace, episode_from_json, episode_to_json

MODES = ("single", "redlock", "consensus")
NODE_NAMES = "ABCDEFG"
PEER_LATENCY_MS = 1  # one-way latency between consensus members (replication round)


@dataclass(frozen=True)
class Limits:
    max_clients: int = 6
    max_ttl_ms: int = 600_000
    max_dt_ms: int = 3_600_000
    max_name_length: int = 20
    max_contenders: int = 60  # students in a class race
    max_contender_name: int = 40


@dataclass(frozen=True)
class Key:
    value: str  # the random lock value (RedLock) or "lease" token text (consensus)
    owner: str
    expires_at: int  # node-local time


@dataclass(frozen=True)
class LockNode:
    name: str
    up: bool = True
    available_from: int = 0  # global ms: a delayed restart keeps the node silent until then
    clock_offset_ms: int = 0  # node-local time = now + offset (clock jumps add to it)
    persistence: bool = False  # fsync on every write (appendfsync always)
    key: Key | None = None
    latency: tuple[tuple[str, int], ...] = ()  # (client, round-trip ms) per link
    cut: tuple[str, ...] = ()  # clients whose link to this node is cut

    def local(self, t: int) -> int:
        return t + self.clock_offset_ms

    def answers(self, t: int, client: str) -> bool:
        return self.up and t >= self.available_from and client not in self.cut

    def rtt(self, client: str) -> int:
        return dict(self.latency).get(client, 3)

    def live_key(self, t: int) -> Key | None:
        return self.key if self.key is not None and self.local(t) < self.key.expires_at else None


@dataclass(frozen=True)
class Client:
    name: str
    status: str = "idle"  # idle | holding | paused | expired | released | failed
    value: str | None = None  # the random value it wrote (RedLock) / lease id (consensus)
    valid_until: int | None = None  # global ms: T2 + validity = T1 + TTL - drift (node-redlock's expiration)
    token: int | None = None  # fencing token (None with fencing off in redlock/single)
    grant: int | None = None  # which acquisition this is (always kept, used to spot lost updates)
    paused_until: int | None = None
    resume_status: str | None = None  # status to return to when the pause ends


@dataclass(frozen=True)
class Write:
    client: str
    at: int
    token: int | None
    grant: int | None
    accepted: bool
    reason: str


@dataclass(frozen=True)
class Lease:
    holder: str
    revision: int
    value: str
    expires_at: int  # global ms, measured on the leader's monotonic clock


@dataclass(frozen=True)
class Contender:
    name: str
    rtt: tuple[tuple[str, int], ...]  # (node, round-trip ms): each student's own network


@dataclass(frozen=True)
class Race:
    """The class race: every student sends SET NX PX to every node at once (a classroom round)."""

    contenders: tuple[Contender, ...] = ()
    result: dict[str, Any] | None = None  # the race_run event's data, once the presenter starts it


TRACE = Bound(episodes=40, messages=240)  # the diagram's history: older episodes are only counted
TRACE_EPISODES, TRACE_MESSAGES = TRACE.episodes, TRACE.messages


@dataclass(frozen=True)
class LockState:
    mode: str = "redlock"
    now_ms: int = 0
    ttl_ms: int = 10_000
    node_timeout_ms: int = 50
    retry_count: int = 3
    retry_delay_max_ms: int = 200
    fencing: bool = False
    nodes: tuple[LockNode, ...] = ()
    clients: tuple[Client, ...] = ()
    next_token: int = 33  # the next grant number / fencing token / consensus revision
    lease: Lease | None = None  # consensus mode only
    highest_token: int | None = None  # what the storage has seen (fencing on)
    writes: tuple[Write, ...] = ()
    lost_update: bool = False  # storage accepted a write from an older holder after a newer one
    attempts: int = 0  # acquisition attempts so far (part of the next attempt's random seed)
    latency_ms: int = 3  # the default round trip of a new link
    trace: tuple[Episode, ...] = ()  # the last episodes, for the space-time diagram
    trace_count: int = 0  # episodes ever traced (the next episode's number)
    older_messages: int = 0  # messages of episodes that fell out of the trace
    race: Race = field(default_factory=Race)
    last_acquire: Episode | None = None  # the newest acquisition try, whatever the trace has dropped

    @property
    def quorum(self) -> int:
        return len(self.nodes) // 2 + 1

    @property
    def drift_ms(self) -> int:
        return drift(self.ttl_ms)

    def node(self, name: str) -> LockNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    def client(self, name: str) -> Client | None:
        return next((c for c in self.clients if c.name == name), None)

    def holders(self) -> list[str]:
        """Clients that believe they hold the lock and whose validity has not run out."""
        return [c.name for c in self.clients
                if (c.status == "holding" or (c.status == "paused" and c.resume_status == "holding"))
                and c.valid_until is not None and self.now_ms < c.valid_until]

    @property
    def two_writers(self) -> bool:
        return self.lost_update

    @property
    def history(self) -> Trace:
        """The trace as ``apps.common.sim.trace`` keeps it (the state stores its three parts)."""
        return Trace(self.trace, self.trace_count, self.older_messages)

    def links(self) -> Links:
        """The network between the clients and the nodes: each link's round trip (the request
        takes half, the reply the rest) and the cut links, as ``apps.common.sim.network`` sees it."""
        return Links.round_trips(((c.name, n.name, n.rtt(c.name)) for n in self.nodes for c in self.clients),
                                 default_rtt=2 * PEER_LATENCY_MS,  # between members: the replication round
                                 cut=((c, n.name) for n in self.nodes for c in n.cut))


def quorum(n: int) -> int:
    return n // 2 + 1


def drift(ttl_ms: int) -> int:
    """Clock drift allowance of redlock-rb / redlock-py / node-redlock: 1% of the TTL plus 2 ms."""
    return int(ttl_ms * 0.01) + 2


def initial_state(params: dict[str, Any] | None = None) -> LockState:
    p = params or {}
    mode = p.get("mode", "redlock")
    if mode not in MODES:
        raise Rejected(f"The mode must be one of {', '.join(MODES)}.")
    n = 1 if mode == "single" else int(p.get("nodes", 5))
    if mode != "single" and n not in (3, 5, 7):
        raise Rejected("A lock cluster has 3, 5 or 7 nodes.")
    clients = list(p.get("clients", ["C1", "C2"]))
    lat = int(p.get("latency_ms", 3))
    persistence = bool(p.get("persistence", mode == "consensus"))
    names = ["R"] if mode == "single" else list(NODE_NAMES[:n])
    nodes = tuple(LockNode(name, persistence=persistence, latency=tuple((c, lat) for c in clients)) for name in names)
    return LockState(
        mode=mode, latency_ms=lat, ttl_ms=int(p.get("ttl_ms", 10_000)), node_timeout_ms=int(p.get("node_timeout_ms", 50)),
        retry_count=int(p.get("retry_count", 3)), retry_delay_max_ms=int(p.get("retry_delay_max_ms", 200)),
        fencing=bool(p.get("fencing", False)), nodes=nodes, clients=tuple(Client(c) for c in clients),
        next_token=int(p.get("first_token", 33)),
    )


# -- JSON -----------------------------------------------------------------------------------

def to_json(state: LockState) -> dict[str, Any]:
    out = asdict(state)
    for n in out["nodes"]:
        n["latency"] = [list(p) for p in n["latency"]]
        n["cut"] = list(n["cut"])
    out["writes"] = list(out["writes"])
    out["nodes"] = list(out["nodes"])
    out["clients"] = list(out["clients"])
    out["trace"] = [episode_to_json(e) for e in state.trace]
    out["last_acquire"] = None if state.last_acquire is None else episode_to_json(state.last_acquire)
    out["race"] = {"contenders": [{"name": c["name"], "rtt": [list(p) for p in c["rtt"]]} for c in out["race"]["contenders"]],
                   "result": out["race"]["result"]}
    out["quorum"] = state.quorum
    out["drift_ms"] = state.drift_ms
    out["holders"] = state.holders()
    return out


def from_json(data: dict[str, Any]) -> LockState:
    nodes = tuple(
        LockNode(name=n["name"], up=n["up"], available_from=n["available_from"], clock_offset_ms=n["clock_offset_ms"],
                 persistence=n["persistence"], key=None if n["key"] is None else Key(**n["key"]),
                 latency=tuple((c, ms) for c, ms in n["latency"]), cut=tuple(n["cut"]))
        for n in data["nodes"])
    race = data.get("race", {})
    last = data.get("last_acquire")
    return LockState(
        mode=data["mode"], now_ms=data["now_ms"], ttl_ms=data["ttl_ms"], node_timeout_ms=data["node_timeout_ms"],
        retry_count=data["retry_count"], retry_delay_max_ms=data["retry_delay_max_ms"], fencing=data["fencing"],
        nodes=nodes, clients=tuple(Client(**c) for c in data["clients"]), next_token=data["next_token"],
        lease=None if data["lease"] is None else Lease(**data["lease"]), highest_token=data["highest_token"],
        writes=tuple(Write(**w) for w in data["writes"]), lost_update=data["lost_update"], attempts=data["attempts"],
        latency_ms=data.get("latency_ms", 3),
        trace=tuple(episode_from_json(e) for e in data.get("trace", [])),
        trace_count=data.get("trace_count", 0), older_messages=data.get("older_messages", 0),
        race=Race(tuple(Contender(c["name"], tuple((n, ms) for n, ms in c["rtt"])) for c in race.get("contenders", [])),
                  race.get("result")),
        last_acquire=None if last is None else episode_from_json(last),
    )
