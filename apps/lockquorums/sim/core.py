"""Lock quorums as a decider: ``initial_state``, ``decide`` and ``evolve``.

Time is logical milliseconds carried by the state (``now_ms``); nothing reads a wall clock.
``decide`` checks a command and returns the events it causes (or raises :class:`Rejected`);
``evolve`` folds one event into a new state. Every chance outcome (the random lock value, the
retry delay) is drawn in ``decide`` from ``Random(cmd["_seed"])`` and written into the event,
so a replay never re-rolls. Every message of an acquisition is in its event, for the
space-time diagram.
"""
from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field, replace
from random import Random
from typing import Any

from apps.common.sim import Rejected, clean_int

Event = dict[str, Any]  # {"kind": str, "data": {...}}: plain JSON

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
class Episode:
    """One row-group of the space-time diagram: what one event sent and when (global ms)."""

    n: int  # running number of the episode in the room
    kind: str  # acquire | release | write | fault | tick | race
    label: str
    start: int
    end: int
    client: str | None = None
    messages: tuple[dict[str, Any], ...] = ()
    window: tuple[int, int] | None = None  # the client's validity window [from, to)
    ok: bool | None = None  # acquired / accepted
    detail: dict[str, Any] | None = None  # the numbers behind the label (quorum, elapsed, drift, ...)


@dataclass(frozen=True)
class Contender:
    name: str
    rtt: tuple[tuple[str, int], ...]  # (node, round-trip ms): each student's own network


@dataclass(frozen=True)
class Race:
    """The class race: every student sends SET NX PX to every node at once (a classroom round)."""

    contenders: tuple[Contender, ...] = ()
    result: dict[str, Any] | None = None  # the race_run event's data, once the presenter starts it


TRACE_EPISODES = 40  # the diagram's history: older episodes are only counted
TRACE_MESSAGES = 240


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


# -- validation -----------------------------------------------------------------------------

def clean_bool(raw: Any, what: str, default: bool) -> bool:
    if raw is None:
        return default
    if isinstance(raw, str) and raw.strip().lower() in ("true", "on", "1", "false", "off", "0"):
        return raw.strip().lower() in ("true", "on", "1")  # what an HTML form or a data attribute sends
    if not isinstance(raw, bool):
        raise Rejected(f"{what} must be true or false.")
    return raw


def _client(state: LockState, cmd: dict[str, Any]) -> Client:
    name = cmd.get("client")
    c = state.client(name) if isinstance(name, str) else None
    if c is None:
        raise Rejected(f"There is no client called {str(name)[:20]!r} (clients: {', '.join(x.name for x in state.clients)}).")
    return c


def _node(state: LockState, cmd: dict[str, Any]) -> LockNode:
    name = cmd.get("node")
    n = state.node(name) if isinstance(name, str) else None
    if n is None:
        raise Rejected(f"There is no lock node called {str(name)[:20]!r} (nodes: {', '.join(x.name for x in state.nodes)}).")
    return n


# -- decide ---------------------------------------------------------------------------------

def decide(state: LockState, command: dict[str, Any], limits: Limits = Limits()) -> list[Event]:
    kind = command.get("type") if isinstance(command, dict) else None
    handler = COMMANDS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise Rejected(f"Unknown command {str(kind)[:40]!r} for the lock quorum.")
    return handler(state, command, limits)


def _acquire(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    c = _client(state, cmd)
    if c.status == "paused":
        raise Rejected(f"{c.name} is paused (GC) until t={c.paused_until} ms; it cannot send anything.")
    if c.status == "holding":
        raise Rejected(f"{c.name} already holds the lock (valid until t={c.valid_until} ms).")
    # The seed, the client and the attempt counter: two commands with the same seed still draw
    # different values, and the client's name in the value keeps two clients' values apart.
    rng = Random(f"{cmd.get('_seed', 'seed')}:{c.name}:{state.attempts}")
    events: list[Event] = []
    s = state
    for attempt in range(1, s.retry_count + 1):
        value = f"{c.name}:{rng.getrandbits(40):010x}"
        delay = rng.randint(0, s.retry_delay_max_ms)
        last = attempt == s.retry_count
        attempt_fn = _consensus_attempt if s.mode == "consensus" else _redlock_attempt
        data = attempt_fn(s, c.name, value)
        data.update(attempt=attempt, retry_delay=None if data["acquired"] or last else delay)
        ev = {"kind": "acquire_attempted", "data": data}
        events.append(ev)
        s = evolve(s, ev)
        if data["acquired"]:
            break
    return events


def _redlock_attempt(s: LockState, client: str, value: str) -> dict[str, Any]:
    """One try of the spec: SET NX PX on every node in turn, then count and time it."""
    t1 = t = s.now_ms
    messages: list[dict[str, Any]] = []
    sets: list[dict[str, Any]] = []  # keys set by an OK the client counted
    late: list[dict[str, Any]] = []  # keys set by a SET whose reply came after the per-node timeout
    for n in s.nodes:
        rtt = n.rtt(client)
        half = rtt // 2
        if not n.answers(t, client):
            lost = client in n.cut
            messages.append(_msg("request", "SET", client, n.name, t, None if lost else t + half, "lost" if lost else "no answer (down)"))
            messages.append(_msg("timeout", "SET", n.name, client, t, t + s.node_timeout_ms, "TIMEOUT"))
            t += s.node_timeout_ms
            continue
        arrive = t + half
        messages.append(_msg("request", "SET", client, n.name, t, arrive, f"SET lock {value} NX PX {s.ttl_ms}"))
        ok = n.live_key(arrive) is None
        key = {"node": n.name, "expires_at": n.local(arrive) + s.ttl_ms}
        if rtt > s.node_timeout_ms:
            # Up but slower than the per-node timeout: the client counts this node as failed and
            # moves on at T + timeout. The SET was sent, so it still reaches the node and takes the
            # key there if it is free: a key the client does not count (its failure release, a DEL
            # on every node, or the TTL removes it). The reply arrives after the client gave up.
            if ok:
                late.append(key)
            messages.append(_msg("reply", "SET", n.name, client, arrive, t + rtt, "OK (too late)" if ok else "FAIL (too late)"))
            messages.append(_msg("timeout", "SET", n.name, client, t, t + s.node_timeout_ms, "TIMEOUT"))
            t += s.node_timeout_ms
            continue
        if ok:
            sets.append(key)
        messages.append(_msg("reply", "SET", n.name, client, arrive, t + rtt, "OK" if ok else "FAIL"))
        t += rtt
    t2 = t
    elapsed = t2 - t1
    d = drift(s.ttl_ms)
    validity = s.ttl_ms - elapsed - d
    oks = len(sets)
    acquired = oks >= s.quorum and elapsed < s.ttl_ms and validity > 0
    data = {"mode": s.mode, "client": client, "value": value, "t1": t1, "t2": t2, "elapsed": elapsed,
            "oks": oks, "nodes": len(s.nodes), "quorum": s.quorum, "drift": d, "validity": validity,
            "acquired": acquired, "sets": sets, "late": late, "messages": messages, "release": []}
    if acquired:
        # The validity counts from the moment the client has its answers (T2): the lock is safe
        # until T1 + TTL - drift, because every key was set after T1 (node-redlock: start + duration - drift).
        data.update(valid_until=t2 + validity, grant=s.next_token, token=s.next_token if s.fencing else None)
    else:
        # Release on ALL nodes, fire and forget, sent together at T2: compare-and-delete.
        after_sets = {x["node"] for x in sets + late}
        for n in s.nodes:
            if not n.answers(t2, client):
                data["release"].append(_msg("request", "DEL", client, n.name, t2, None, "lost"))
                continue
            arrive = t2 + n.rtt(client) // 2
            mine = n.name in after_sets or (n.live_key(arrive) is not None and n.live_key(arrive).value == value)
            data["release"].append(_msg("request", "DEL", client, n.name, t2, arrive, f"DEL if value == {value}"))
            data["release"].append(_msg("reply", "DEL", n.name, client, arrive, t2 + n.rtt(client), "1" if mine else "0"))
    return data


def _consensus_attempt(s: LockState, client: str, value: str) -> dict[str, Any]:
    """A lease grant through one member, replicated to a majority (etcd / ZooKeeper style)."""
    t1 = t = s.now_ms
    messages: list[dict[str, Any]] = []
    acquired, result, arrive = False, "UNAVAILABLE", t
    late_lease: dict[str, Any] | None = None  # a grant whose reply came after the timeout
    for contact in s.nodes:  # ask the members in turn, each with the same per-node timeout
        if not contact.answers(t, client):
            messages.append(_msg("request", "GRANT", client, contact.name, t, None, "no answer"))
            messages.append(_msg("timeout", "GRANT", contact.name, client, t, t + s.node_timeout_ms, "TIMEOUT"))
            t += s.node_timeout_ms
            continue
        rtt = contact.rtt(client)
        arrive = t + rtt // 2
        messages.append(_msg("request", "GRANT", client, contact.name, t, arrive, f"lease {s.ttl_ms} ms if free"))
        acks = 1
        for peer in s.nodes:
            if peer.name == contact.name:
                continue
            alive = peer.up and arrive >= peer.available_from
            messages.append(_msg("request", "APPEND", contact.name, peer.name, arrive, arrive + PEER_LATENCY_MS if alive else None, "replicate"))
            if alive:
                acks += 1
                messages.append(_msg("reply", "APPEND", peer.name, contact.name, arrive + PEER_LATENCY_MS, arrive + 2 * PEER_LATENCY_MS, "ack"))
        lease = s.lease if s.lease is not None and arrive < s.lease.expires_at else None
        if late_lease is not None:
            lease = Lease(**late_lease)
        granted = False
        if acks < s.quorum:
            result = f"NO QUORUM ({acks}/{len(s.nodes)})"
        elif lease is not None:
            result = f"FAIL (held by {lease.holder}, revision {lease.revision})"
        else:
            granted, result = True, f"OK revision {s.next_token}"
        answer = t + rtt + 2 * PEER_LATENCY_MS
        if answer - t > s.node_timeout_ms:
            # The answer would come after the per-node timeout: the client counts this member as
            # failed and asks the next one at T + timeout. The request was sent, so a grant still
            # commits: the group holds a lease for this client under a revision it never hears of,
            # until the lease expires.
            if granted:
                late_lease = {"holder": client, "revision": s.next_token, "value": value, "expires_at": arrive + s.ttl_ms}
            messages.append(_msg("reply", "GRANT", contact.name, client, arrive + 2 * PEER_LATENCY_MS, answer, f"{result} (too late)"))
            messages.append(_msg("timeout", "GRANT", contact.name, client, t, t + s.node_timeout_ms, "TIMEOUT"))
            t += s.node_timeout_ms
            continue
        acquired = granted
        messages.append(_msg("reply", "GRANT", contact.name, client, arrive + 2 * PEER_LATENCY_MS, answer, result))
        t = answer
        break
    else:  # no member answered within the timeout
        result = "UNAVAILABLE" if late_lease is None else f"UNAVAILABLE (revision {late_lease['revision']} was granted too late to count)"
    t2 = t
    elapsed = t2 - t1
    d = drift(s.ttl_ms)
    validity = s.ttl_ms - elapsed - d
    if acquired and validity <= 0:  # granted, but too late to count on: the client lets it go
        acquired, result = False, f"TOO SLOW (elapsed {elapsed:,} + drift {d:,} ≥ TTL {s.ttl_ms:,})"
    acquired = acquired and validity > 0
    data = {"mode": s.mode, "client": client, "value": value, "t1": t1, "t2": t2, "elapsed": elapsed,
            "oks": 1 if acquired else 0, "nodes": len(s.nodes), "quorum": s.quorum, "drift": d,
            "validity": validity, "acquired": acquired, "sets": [], "messages": messages, "release": [],
            "result": result, "late_lease": late_lease}
    if acquired:
        # The lease clock starts when the leader granted it (after T1), so it outlives T1 + validity.
        data.update(valid_until=t2 + validity, grant=s.next_token, token=s.next_token,
                    lease_expires_at=arrive + s.ttl_ms)
    return data


def _msg(kind: str, op: str, frm: str, to: str, sent: int, arrives: int | None, result: str) -> dict[str, Any]:
    return {"kind": kind, "op": op, "from": frm, "to": to, "sent": sent, "arrives": arrives, "result": result}


def _release(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    c = _client(state, cmd)
    if c.status == "paused":
        raise Rejected(f"{c.name} is paused (GC) until t={c.paused_until} ms; it cannot send anything.")
    if c.value is None or c.status not in ("holding", "expired"):
        raise Rejected(f"{c.name} has no lock to release.")
    t = state.now_ms
    messages, deletes = [], []
    for n in state.nodes:
        if not n.answers(t, c.name):
            messages.append(_msg("request", "DEL", c.name, n.name, t, None, "lost"))
            continue
        arrive = t + n.rtt(c.name) // 2
        if state.mode == "consensus":  # one member takes the revoke and replicates it
            ok = state.lease is not None and state.lease.value == c.value
            messages.append(_msg("request", "REVOKE", c.name, n.name, t, arrive, f"revoke lease {c.value}"))
            messages.append(_msg("reply", "REVOKE", n.name, c.name, arrive, t + n.rtt(c.name), "OK" if ok else "no such lease"))
            break
        key = n.live_key(arrive)
        mine = key is not None and key.value == c.value
        if mine:
            deletes.append(n.name)
        messages.append(_msg("request", "DEL", c.name, n.name, t, arrive, f"DEL if value == {c.value}"))
        messages.append(_msg("reply", "DEL", n.name, c.name, arrive, t + n.rtt(c.name), "1" if mine else "0"))
    revoke = state.mode == "consensus" and state.lease is not None and state.lease.value == c.value
    return [{"kind": "released", "data": {"client": c.name, "value": c.value, "deletes": deletes,
                                          "messages": messages, "lease_revoked": revoke}}]


def _write(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    c = _client(state, cmd)
    if c.status != "holding":
        raise Rejected(f"{c.name} does not believe it holds the lock (it is {c.status}); a client writes only while holding it.")
    token = c.token if state.fencing else None
    if token is not None and state.highest_token is not None and token < state.highest_token:
        accepted, reason = False, f"rejected stale token {token} < {state.highest_token}"
    else:
        accepted = True
        newest = max((w.grant for w in state.writes if w.accepted and w.grant is not None), default=None)
        if newest is not None and c.grant is not None and c.grant < newest:
            reason = "accepted, but a newer holder already wrote: two writers, lost update"
        else:
            reason = "accepted" + (f" (token {token})" if token is not None else "")
    return [{"kind": "written", "data": {"client": c.name, "at": state.now_ms, "token": token,
                                         "grant": c.grant, "accepted": accepted, "reason": reason}}]


def _node_crash(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    n = _node(state, cmd)
    if not n.up:
        raise Rejected(f"Node {n.name} is already down.")
    return [{"kind": "node_crashed", "data": {"node": n.name}}]


def _node_restart(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    n = _node(state, cmd)
    if n.up:
        raise Rejected(f"Node {n.name} is up; crash it first.")
    persistence = clean_bool(cmd.get("persistence"), "persistence", n.persistence)
    delayed = clean_bool(cmd.get("delayed"), "delayed", False)
    if state.mode == "consensus" and not persistence:
        raise Rejected("Consensus members fsync their log before they acknowledge; a member that lost its "
                       "disk must rejoin as a new member, which this simulation does not model.")
    keeps = persistence and state.mode != "consensus"
    return [{"kind": "node_restarted", "data": {
        "node": n.name, "persistence": persistence, "delayed": delayed, "keeps_key": keeps and n.key is not None,
        "available_from": state.now_ms + (state.ttl_ms if delayed else 0)}}]


def _link(state: LockState, cmd: dict[str, Any], cut: bool) -> list[Event]:
    c, n = _client(state, cmd), _node(state, cmd)
    if (c.name in n.cut) == cut:
        raise Rejected(f"The link {c.name}-{n.name} is already {'cut' if cut else 'up'}.")
    return [{"kind": "link_cut" if cut else "link_healed", "data": {"client": c.name, "node": n.name}}]


def _clock_jump(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    n = _node(state, cmd)
    ms = clean_int(cmd.get("ms"), "A clock jump", 1, limits.max_dt_ms)
    return [{"kind": "clock_jumped", "data": {"node": n.name, "ms": ms}}]


def _client_pause(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    c = _client(state, cmd)
    if c.status == "paused":
        raise Rejected(f"{c.name} is already paused until t={c.paused_until} ms.")
    ms = clean_int(cmd.get("ms"), "A pause", 1, limits.max_dt_ms)
    return [{"kind": "client_paused", "data": {"client": c.name, "until": state.now_ms + ms}}]


def _tick(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    dt = clean_int(cmd.get("dt_ms", 1000), "A tick", 1, limits.max_dt_ms)
    return [{"kind": "ticked", "data": {"to": state.now_ms + dt}}]


def _set_fencing(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    on = clean_bool(cmd.get("on"), "fencing", not state.fencing)
    return [{"kind": "fencing_set", "data": {"on": on}}]


def _add_client(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    if len(state.clients) >= limits.max_clients:
        raise Rejected(f"At most {limits.max_clients} clients.")
    name = cmd.get("name")
    if name is None:
        name = next(f"C{i}" for i in range(1, 100) if state.client(f"C{i}") is None)
    if not isinstance(name, str) or not name.strip() or len(name) > limits.max_name_length or not name.isprintable():
        raise Rejected(f"A client name is printable text of 1 to {limits.max_name_length} characters.")
    if state.client(name.strip()) is not None:
        raise Rejected(f"There is already a client called {name.strip()}.")
    if any(c.name == name.strip() for c in state.race.contenders):
        raise Rejected(f"{name.strip()} is racing for the lock in the class race; pick another name.")
    return [{"kind": "client_added", "data": {"name": name.strip()}}]


def _set_latency(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    c, n = _client(state, cmd), _node(state, cmd)
    ms = clean_int(cmd.get("ms"), "A link latency", 0, 60_000)
    return [{"kind": "latency_set", "data": {"client": c.name, "node": n.name, "ms": ms}}]


# -- scenes and settings --------------------------------------------------------------------

SCENE_DEFAULTS = {"mode": "redlock", "nodes": 5, "ttl_ms": 10_000, "node_timeout_ms": 50, "latency_ms": 3,
                  "retry_count": 3, "retry_delay_max_ms": 200, "clients": 2, "fencing": False}


def _settings(raw: dict[str, Any], limits: Limits, ttl_ms: int | None = None) -> dict[str, int]:
    """The numeric settings present in ``raw``, checked; the node timeout must stay below the TTL."""
    out: dict[str, int] = {}
    bounds = {"ttl_ms": ("The TTL (ms)", 100, limits.max_ttl_ms),
              "node_timeout_ms": ("The per-node timeout (ms)", 1, 60_000),
              "latency_ms": ("The round trip of a link (ms)", 0, 60_000),
              "retry_count": ("The number of tries", 1, 10),
              "retry_delay_max_ms": ("The longest retry delay (ms)", 0, 60_000)}
    for key, (what, low, high) in bounds.items():
        if raw.get(key) not in (None, ""):
            out[key] = clean_int(raw[key], what, low, high)
    ttl = out.get("ttl_ms", ttl_ms)
    if ttl is not None and out.get("node_timeout_ms", 0) >= ttl:
        raise Rejected(f"The per-node timeout must be far below the TTL ({ttl:,} ms), or one slow node eats the whole lock.")
    return out


def _load_scene(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    mode = cmd.get("mode", SCENE_DEFAULTS["mode"])
    if mode not in MODES:
        raise Rejected(f"The mode must be one of {', '.join(MODES)}.")
    nodes = clean_int(cmd.get("nodes", 5), "The number of lock nodes", 1, 7)
    if mode != "single" and nodes not in (3, 5, 7):
        raise Rejected("A lock cluster has 3, 5 or 7 nodes (an odd number: a majority is then one more than a minority).")
    clients = clean_int(cmd.get("clients", 2), "The number of clients", 1, limits.max_clients)
    params: dict[str, Any] = {**SCENE_DEFAULTS, "mode": mode, "nodes": 1 if mode == "single" else nodes}
    params.update(_settings({k: cmd.get(k) for k in ("ttl_ms", "node_timeout_ms", "latency_ms", "retry_count", "retry_delay_max_ms")},
                            limits, ttl_ms=None))
    if params["node_timeout_ms"] >= params["ttl_ms"]:
        raise Rejected(f"The per-node timeout must be far below the TTL ({params['ttl_ms']:,} ms).")
    params["fencing"] = clean_bool(cmd.get("fencing"), "fencing", False)
    if cmd.get("persistence") is not None:
        params["persistence"] = clean_bool(cmd.get("persistence"), "persistence", False)
    params["clients"] = [f"C{i}" for i in range(1, clients + 1)]
    return [{"kind": "scene_loaded", "data": {"params": params}}]


def _configure(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    changes = _settings(cmd, limits, ttl_ms=state.ttl_ms)
    if "ttl_ms" in changes and "node_timeout_ms" not in changes and state.node_timeout_ms >= changes["ttl_ms"]:
        raise Rejected(f"A TTL of {changes['ttl_ms']:,} ms is not far above the per-node timeout ({state.node_timeout_ms:,} ms).")
    current = {"ttl_ms": state.ttl_ms, "node_timeout_ms": state.node_timeout_ms, "retry_count": state.retry_count,
               "retry_delay_max_ms": state.retry_delay_max_ms, "latency_ms": state.latency_ms}
    changed = {k: v for k, v in changes.items() if current[k] != v
               or (k == "latency_ms" and any(ms != v for n in state.nodes for _, ms in n.latency))}
    if not changed:
        raise Rejected("Those are the settings already.")
    return [{"kind": "configured", "data": {"changes": changed, "previous": {k: current[k] for k in changed}}}]


# -- the class race (a classroom round) -----------------------------------------------------

def _race_join(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    race = state.race
    if state.mode == "consensus":
        raise Rejected("The race plays RedLock, and this scene is a consensus lease: wait for the presenter to load a RedLock scene.")
    if race.result is not None:
        raise Rejected("This race has run: wait for the presenter to start a new one.")
    name = cmd.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > limits.max_contender_name or not name.isprintable():
        raise Rejected(f"A name in the race is printable text of 1 to {limits.max_contender_name} characters.")
    name = name.strip()
    if any(c.name == name for c in race.contenders):
        raise Rejected(f"{name} is already in the race.")
    if len(race.contenders) >= limits.max_contenders:
        raise Rejected(f"The race is full ({limits.max_contenders} clients).")
    if state.client(name) is not None:
        raise Rejected(f"{name} is the name of one of the room's own clients; pick another name.")
    rng = Random(f"{cmd.get('_seed', 'seed')}:{name}")
    # Each student's network: round trips from 2 to 60 ms, so the requests reach the nodes in
    # different orders, as they would across a real network.
    rtt = [(n.name, rng.randint(2, 60)) for n in state.nodes]
    return [{"kind": "contender_joined", "data": {"name": name, "rtt": rtt}}]


def _held_keys(state: LockState) -> dict[str, Key]:
    """The live keys on the nodes right now, by node."""
    return {n.name: k for n in state.nodes if (k := n.live_key(state.now_ms)) is not None}


def _race_reset(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    """Clear the race. The students' clients release what they hold (compare-and-delete on every
    node that answers), so the next race starts from a free lock; a DEL to a node that is down is
    lost and its key stays until its TTL runs out."""
    if not state.race.contenders:
        raise Rejected("There is no race to clear.")
    students = {c.name for c in state.race.contenders}
    released = [{"node": name, "owner": k.owner} for name, k in _held_keys(state).items()
                if k.owner in students and state.node(name).answers(state.now_ms, k.owner)]
    return [{"kind": "race_reset", "data": {"contenders": len(state.race.contenders), "released": released}}]


def _race_start(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    """Everyone in the race runs RedLock at the same moment, with parallel requests, retries and
    compare-and-delete, as a discrete-event simulation: each node answers SETs in the order they
    arrive (ties by join order), so the first request at a node wins it."""
    race = state.race
    if state.mode == "consensus":
        raise Rejected("The race plays RedLock; switch the scene to RedLock or a single instance first.")
    if not race.contenders:
        raise Rejected("Nobody has joined the race yet: open the round so students can press 'Try for the lock'.")
    if race.result is not None:
        raise Rejected("This race has run: clear it to start a new one.")
    held = _held_keys(state)
    if held:
        # A race from a held lock teaches nothing about the race: every student would find the
        # notes taken. Say who holds what, and how to free it.
        owners: dict[str, list[str]] = {}
        for name, k in held.items():
            owners.setdefault(k.owner, []).append(name)
        who = "; ".join(f"{o} holds the lock on {len(ns)} node{'s' if len(ns) > 1 else ''} ({', '.join(ns)})"
                        for o, ns in owners.items())
        raise Rejected(f"The race starts from a free lock, and it is not free: {who}. "
                       f"Release it (click the client) or let it expire (+1 TTL), then start the race.")
    rng = Random(f"{cmd.get('_seed', 'seed')}:race:{state.attempts}")
    t0, ttl, d, q = state.now_ms, state.ttl_ms, drift(state.ttl_ms), state.quorum
    names = [n.name for n in state.nodes]
    offset = {n.name: n.clock_offset_ms for n in state.nodes}
    # A student is never one of the room's clients, so no cut link applies: a node answers when
    # it is up and past a delayed restart.
    up_from = {n.name: (n.available_from if n.up else None) for n in state.nodes}
    # Keys as (value, owner, expires_at on the node's clock) while the race runs.
    keys: dict[str, tuple[str, str, int] | None] = {
        n.name: (None if (k := n.live_key(t0)) is None else (k.value, k.owner, k.expires_at)) for n in state.nodes}
    before = dict(keys)
    rtts = {c.name: [dict(c.rtt).get(name, state.latency_ms) for name in names] for c in race.contenders}
    tries: dict[str, list[dict[str, Any]]] = {c.name: [] for c in race.contenders}
    # (time, phase, join order, kind, client, node index, try index): at one instant, deletes and
    # starts come before SETs, and SETs before a client counts its replies.
    heap: list[tuple[int, int, int, str, str, int, int]] = []
    order = {c.name: i for i, c in enumerate(race.contenders)}
    for c in race.contenders:
        heapq.heappush(heap, (t0, 0, order[c.name], "start", c.name, 0, 0))
    winners: list[str] = []
    messages = 0
    t_end = t0
    timeout, tries_max, delay_max = state.node_timeout_ms, state.retry_count, state.retry_delay_max_ms
    push, pop = heapq.heappush, heapq.heappop

    while heap:
        t, _, o, kind, c, ni, k = pop(heap)
        if t > t_end:
            t_end = t
        if kind == "set":
            attempt = tries[c][k]
            node = names[ni]
            held = keys[node]
            slow = node in attempt["slow"]  # its reply comes after the client stopped waiting
            if held is None or t + offset[node] >= held[2]:
                keys[node] = (attempt["value"], c, t + offset[node] + ttl)
                attempt["late" if slow else "ok"].append(node)
            elif not slow:
                attempt["held_by"][node] = held[1]
        elif kind == "start":
            # timeouts: the nodes that did not answer within the per-node timeout, down or slow;
            # slow: up, but with a round trip over the timeout (the SET still lands there); late:
            # the slow nodes where it took the key, which this try does not count.
            attempt = {"start": t, "value": f"{c}:{rng.getrandbits(40):010x}", "ok": [], "held_by": {}, "timeouts": [],
                       "slow": [], "late": []}
            tries[c].append(attempt)
            k = len(tries[c]) - 1
            wait = 0
            for ni, rtt in enumerate(rtts[c]):
                since = up_from[names[ni]]
                if since is not None and t >= since:
                    push(heap, (t + rtt // 2, 1, o, "set", c, ni, k))
                    if rtt > timeout:
                        attempt["timeouts"].append(names[ni])
                        attempt["slow"].append(names[ni])
                    wait = max(wait, min(rtt, timeout))
                else:
                    attempt["timeouts"].append(names[ni])
                    wait = max(wait, timeout)
            messages += 2 * len(names)
            push(heap, (t + wait, 2, o, "done", c, 0, k))
        elif kind == "done":
            attempt = tries[c][k]
            elapsed = t - attempt["start"]
            validity = ttl - elapsed - d
            oks = len(attempt["ok"])
            acquired = oks >= q and elapsed < ttl and validity > 0
            attempt.update(end=t, elapsed=elapsed, validity=validity, acquired=acquired, oks=oks)
            if acquired:
                attempt["valid_until"] = t + validity  # T2 + validity
                winners.append(c)
                continue
            # Compare-and-delete goes to every node (the messages count them all); it can only
            # delete where this try's own SET succeeded, so only those are simulated: the OKs, and
            # the slow nodes, whose SET may land (or have landed) after the client gave up. A DEL
            # leaves after its SET on the same link, so it arrives after it.
            for node in attempt["ok"] + attempt["slow"]:
                ni = names.index(node)
                since = up_from[node]
                if since is not None and t >= since:
                    push(heap, (t + rtts[c][ni] // 2, 0, o, "del", c, ni, k))
            messages += 2 * len(names)
            if len(tries[c]) < tries_max:
                delay = rng.randint(0, delay_max)
                attempt["retry_delay"] = delay
                push(heap, (t + delay, 0, o, "start", c, 0, 0))
        else:  # del: only if the node still holds this try's value
            node = names[ni]
            held = keys[node]
            if held is not None and t + offset[node] < held[2] and held[0] == tries[c][k]["value"]:
                keys[node] = None
    changed = [{"node": name, "key": None if k is None else asdict(Key(*k))} for name, k in keys.items() if k != before[name]]
    return [{"kind": "race_run", "data": {
        "t0": t0, "t_end": t_end, "quorum": q, "nodes": len(state.nodes), "ttl": ttl, "drift": d,
        "winners": winners, "messages": messages, "keys": changed,
        "contenders": [{"name": c.name, "tries": tries[c.name]} for c in race.contenders],
    }}]


COMMANDS = {
    "acquire": _acquire,
    "release": _release,
    "write": _write,
    "node_crash": _node_crash,
    "node_restart": _node_restart,
    "link_cut": lambda s, c, l: _link(s, c, True),
    "link_heal": lambda s, c, l: _link(s, c, False),
    "clock_jump": _clock_jump,
    "client_pause": _client_pause,
    "tick": _tick,
    "set_fencing": _set_fencing,
    "add_client": _add_client,
    "set_latency": _set_latency,
    "load_scene": _load_scene,
    "configure": _configure,
    "race_join": _race_join,
    "race_start": _race_start,
    "race_reset": _race_reset,
}


# -- evolve ---------------------------------------------------------------------------------

def evolve(state: LockState, event: Event) -> LockState:
    after = _evolve(state, event)
    episode = _episode(state, after, event)
    return after if episode is None else _traced(after, episode)


def _evolve(state: LockState, event: Event) -> LockState:
    kind, data = event["kind"], event["data"]
    if kind == "scene_loaded":
        return initial_state(data["params"])
    if kind == "configured":
        ch = data["changes"]
        s = replace(state, **{k: v for k, v in ch.items()})
        if "latency_ms" in ch:
            s = replace(s, nodes=tuple(replace(n, latency=tuple((c, ch["latency_ms"]) for c, _ in n.latency)) for n in s.nodes))
        return s
    if kind == "contender_joined":
        c = Contender(data["name"], tuple((n, ms) for n, ms in data["rtt"]))
        return replace(state, race=Race(contenders=state.race.contenders + (c,)))
    if kind == "race_reset":
        gone = {x["node"] for x in data.get("released", [])}
        nodes = tuple(replace(n, key=None) if n.name in gone else n for n in state.nodes)
        return replace(state, nodes=nodes, race=Race())
    if kind == "race_run":
        keys = {x["node"]: None if x["key"] is None else Key(**x["key"]) for x in data["keys"]}
        nodes = tuple(replace(n, key=keys[n.name]) if n.name in keys else n for n in state.nodes)
        s = replace(state, nodes=nodes, race=replace(state.race, result=data), attempts=state.attempts + 1)
        return _advance(s, data["t_end"])
    if kind == "acquire_attempted":
        return _apply_attempt(state, data)
    if kind == "released":
        gone = set(data["deletes"])
        nodes = tuple(replace(n, key=None) if n.name in gone else n for n in state.nodes)
        lease = None if data["lease_revoked"] else state.lease
        return replace(state, nodes=nodes, lease=lease, clients=_set_client(
            state, data["client"], status="released", valid_until=None, token=None, grant=None, value=None))
    if kind == "written":
        w = Write(data["client"], data["at"], data["token"], data["grant"], data["accepted"], data["reason"])
        highest = state.highest_token
        if w.accepted and w.token is not None:
            highest = w.token if highest is None else max(highest, w.token)
        lost = state.lost_update or (w.accepted and "two writers" in w.reason)
        return replace(state, writes=state.writes + (w,), highest_token=highest, lost_update=lost)
    if kind == "node_crashed":
        return _set_node(state, data["node"], up=False)
    if kind == "node_restarted":
        n = state.node(data["node"])
        return _set_node(state, data["node"], up=True, persistence=data["persistence"],
                         key=n.key if data["keeps_key"] else None, available_from=data["available_from"])
    if kind in ("link_cut", "link_healed"):
        n = state.node(data["node"])
        cut = set(n.cut) | {data["client"]} if kind == "link_cut" else set(n.cut) - {data["client"]}
        return _set_node(state, n.name, cut=tuple(sorted(cut)))
    if kind == "clock_jumped":
        n = state.node(data["node"])
        after = _set_node(state, n.name, clock_offset_ms=n.clock_offset_ms + data["ms"])
        return _advance(after, state.now_ms)  # its keys may expire right away
    if kind == "client_paused":
        c = state.client(data["client"])
        return replace(state, clients=_set_client(state, c.name, status="paused", paused_until=data["until"],
                                                  resume_status=c.status))
    if kind == "ticked":
        return _advance(state, data["to"])
    if kind == "fencing_set":
        return replace(state, fencing=data["on"])
    if kind == "client_added":
        nodes = tuple(replace(n, latency=n.latency + ((data["name"], state.latency_ms),)) for n in state.nodes)
        return replace(state, nodes=nodes, clients=state.clients + (Client(data["name"]),))
    if kind == "latency_set":
        n = state.node(data["node"])
        lat = tuple((c, data["ms"] if c == data["client"] else ms) for c, ms in n.latency)
        if data["client"] not in dict(lat):
            lat += ((data["client"], data["ms"]),)
        return _set_node(state, n.name, latency=lat)
    raise ValueError(f"unknown lock quorum event {kind!r}")


def _episode(before: LockState, after: LockState, event: Event) -> Episode | None:
    """What the space-time diagram draws for an event (None: nothing on the time line)."""
    kind, d = event["kind"], event["data"]
    n = after.trace_count
    t = before.now_ms
    if kind == "acquire_attempted":
        msgs = tuple(d["messages"]) + tuple(d["release"])
        end = max([d["t2"]] + [m["arrives"] for m in msgs if m["arrives"] is not None])
        if d["acquired"]:
            label = f"{d['client']} got {d['oks']} of {d['nodes']}: validity {d['validity']:,} ms"
        else:
            if d["mode"] == "consensus":
                why = str(d.get("result"))
            elif d["oks"] < d["quorum"]:
                why = f"{d['oks']} of {d['nodes']} < quorum {d['quorum']}"
            else:
                why = f"{d['oks']} of {d['nodes']} but too slow: elapsed + drift ≥ TTL"
            label = f"{d['client']} try {d['attempt']} failed: {why}"
        window = (d["t2"], d["valid_until"]) if d["acquired"] else None  # it holds from T2
        detail = {k: d.get(k) for k in ("mode", "attempt", "oks", "nodes", "quorum", "elapsed", "drift", "validity",
                                          "retry_delay", "token", "t1", "t2", "result")}
        detail["ttl"] = before.ttl_ms
        return Episode(n, "acquire", label, d["t1"], end, d["client"], msgs, window, d["acquired"], detail)
    if kind == "released":
        msgs = tuple(d["messages"])
        end = max([t] + [m["arrives"] for m in msgs if m["arrives"] is not None])
        return Episode(n, "release", f"{d['client']} releases", t, end, d["client"], msgs)
    if kind == "written":
        msg = {"kind": "request", "op": "WRITE", "from": d["client"], "to": "storage", "sent": d["at"],
               "arrives": d["at"], "result": d["reason"]}
        tok = f" token {d['token']}" if d["token"] is not None else ""
        return Episode(n, "write", f"{d['client']} writes{tok}", d["at"], d["at"], d["client"], (msg,), None, d["accepted"],
                       {"reason": d["reason"], "token": d["token"]})
    if kind == "ticked":
        return Episode(n, "tick", f"+{d['to'] - t:,} ms", t, d["to"])
    faults = {
        "node_crashed": lambda: (d["node"], f"{d['node']} crashes"),
        "node_restarted": lambda: (d["node"], f"{d['node']} restarts" + ("" if d["keeps_key"] or not before.node(d["node"]).key else ", key forgotten")),
        "clock_jumped": lambda: (d["node"], f"{d['node']} clock +{d['ms']:,} ms"),
        "client_paused": lambda: (d["client"], f"{d['client']} paused {d['until'] - t:,} ms"),
        "link_cut": lambda: (d["node"], f"{d['client']}–{d['node']} cut"),
        "link_healed": lambda: (d["node"], f"{d['client']}–{d['node']} healed"),
    }
    if kind in faults:
        lane, label = faults[kind]()
        return Episode(n, "fault", label, t, t, lane, detail={"event": kind, "until": d.get("until")})
    if kind == "race_run":
        winners = d["winners"]
        grants = tuple({"kind": "mark", "op": "RACE", "from": "", "to": x["node"], "sent": d["t0"], "arrives": d["t0"],
                        "result": (x["key"] or {}).get("owner") or "free"} for x in d["keys"])
        # With a TTL shorter than the race, several may win one after another: the last holds the lock.
        label = f"class race: {winners[-1]} wins" if winners else "class race: nobody won"
        return Episode(n, "race", label, d["t0"], d["t_end"], None, grants, None, bool(winners))
    return None


def _traced(state: LockState, ep: Episode) -> LockState:
    if ep.kind == "acquire":
        state = replace(state, last_acquire=ep)
    if ep.kind == "tick" and state.trace and state.trace[-1].kind == "tick":
        # Time passing tick after tick (the room clock playing) is one stretch of the diagram.
        prev = state.trace[-1]
        merged = replace(prev, end=ep.end, label=f"+{ep.end - prev.start:,} ms")
        return replace(state, trace=state.trace[:-1] + (merged,))
    trace = state.trace + (ep,)
    older = state.older_messages
    while len(trace) > 1 and (len(trace) > TRACE_EPISODES or sum(len(e.messages) for e in trace) > TRACE_MESSAGES):
        older += len(trace[0].messages)
        trace = trace[1:]
    return replace(state, trace=trace, trace_count=state.trace_count + 1, older_messages=older)


def _apply_attempt(state: LockState, d: dict[str, Any]) -> LockState:
    client = d["client"]
    nodes = {n.name: n for n in state.nodes}
    for x in d["sets"] + d.get("late", []):
        nodes[x["node"]] = replace(nodes[x["node"]], key=Key(d["value"], client, x["expires_at"]))
    if not d["acquired"]:
        for m in d["release"]:
            if m["kind"] == "reply" and m["result"] == "1":
                nodes[m["from"]] = replace(nodes[m["from"]], key=None)
    s = replace(state, nodes=tuple(nodes[n.name] for n in state.nodes), attempts=state.attempts + 1)
    if d.get("late_lease") is not None:  # a grant committed after the client stopped waiting for it
        s = replace(s, lease=Lease(**d["late_lease"]), next_token=s.next_token + 1)
    if d["acquired"]:
        lease = s.lease
        if d["mode"] == "consensus":
            lease = Lease(client, d["grant"], d["value"], d["lease_expires_at"])
        s = replace(s, next_token=s.next_token + 1, lease=lease, clients=_set_client(
            s, client, status="holding", value=d["value"], valid_until=d["valid_until"], token=d["token"],
            grant=d["grant"], paused_until=None, resume_status=None))
        return _advance(s, d["t2"])
    s = replace(s, clients=_set_client(s, client, status="failed", value=None, valid_until=None, token=None, grant=None))
    return _advance(s, d["t2"] + (d["retry_delay"] or 0))


def _advance(state: LockState, to: int) -> LockState:
    """Move the clock: keys and leases expire, paused clients wake, running clients see validity end."""
    nodes = tuple(replace(n, key=None) if n.key is not None and n.live_key(to) is None else n for n in state.nodes)
    lease = state.lease if state.lease is not None and to < state.lease.expires_at else None
    clients = []
    for c in state.clients:
        if c.status == "paused" and c.paused_until is not None and to >= c.paused_until:
            # It wakes exactly where it stopped: between its validity check and its next step, so it
            # still believes what it believed before the pause (Kleppmann's scenario).
            c = replace(c, status=c.resume_status or "idle", paused_until=None, resume_status=None)
        elif to > state.now_ms and c.status == "holding" and c.valid_until is not None and to >= c.valid_until:
            c = replace(c, status="expired")
        clients.append(c)
    return replace(state, now_ms=max(to, state.now_ms), nodes=nodes, lease=lease, clients=tuple(clients))


def _set_node(state: LockState, name: str, **changes: Any) -> LockState:
    return replace(state, nodes=tuple(replace(n, **changes) if n.name == name else n for n in state.nodes))


def _set_client(state: LockState, name: str, **changes: Any) -> tuple[Client, ...]:
    return tuple(replace(c, **changes) if c.name == name else c for c in state.clients)


# -- JSON -----------------------------------------------------------------------------------

def to_json(state: LockState) -> dict[str, Any]:
    out = asdict(state)
    for n in out["nodes"]:
        n["latency"] = [list(p) for p in n["latency"]]
        n["cut"] = list(n["cut"])
    out["writes"] = list(out["writes"])
    out["nodes"] = list(out["nodes"])
    out["clients"] = list(out["clients"])
    out["trace"] = [_episode_json(e) for e in out["trace"]]
    out["last_acquire"] = None if out["last_acquire"] is None else _episode_json(out["last_acquire"])
    out["race"] = {"contenders": [{"name": c["name"], "rtt": [list(p) for p in c["rtt"]]} for c in out["race"]["contenders"]],
                   "result": out["race"]["result"]}
    out["quorum"] = state.quorum
    out["drift_ms"] = state.drift_ms
    out["holders"] = state.holders()
    return out


def _episode_json(e: dict[str, Any]) -> dict[str, Any]:
    return dict(e, messages=list(e["messages"]), window=None if e["window"] is None else list(e["window"]))


def _episode_from_json(e: dict[str, Any] | None) -> Episode | None:
    if e is None:
        return None
    return Episode(**dict(e, messages=tuple(e["messages"]), window=None if e["window"] is None else tuple(e["window"])))


def from_json(data: dict[str, Any]) -> LockState:
    nodes = tuple(
        LockNode(name=n["name"], up=n["up"], available_from=n["available_from"], clock_offset_ms=n["clock_offset_ms"],
                 persistence=n["persistence"], key=None if n["key"] is None else Key(**n["key"]),
                 latency=tuple((c, ms) for c, ms in n["latency"]), cut=tuple(n["cut"]))
        for n in data["nodes"])
    return LockState(
        mode=data["mode"], now_ms=data["now_ms"], ttl_ms=data["ttl_ms"], node_timeout_ms=data["node_timeout_ms"],
        retry_count=data["retry_count"], retry_delay_max_ms=data["retry_delay_max_ms"], fencing=data["fencing"],
        nodes=nodes, clients=tuple(Client(**c) for c in data["clients"]), next_token=data["next_token"],
        lease=None if data["lease"] is None else Lease(**data["lease"]), highest_token=data["highest_token"],
        writes=tuple(Write(**w) for w in data["writes"]), lost_update=data["lost_update"], attempts=data["attempts"],
        latency_ms=data.get("latency_ms", 3),
        trace=tuple(_episode_from_json(e) for e in data.get("trace", [])),
        trace_count=data.get("trace_count", 0), older_messages=data.get("older_messages", 0),
        race=Race(tuple(Contender(c["name"], tuple((n, ms) for n, ms in c["rtt"])) for c in data.get("race", {}).get("contenders", [])),
                  data.get("race", {}).get("result")),
        last_acquire=_episode_from_json(data.get("last_acquire")),
    )
