"""Lock quorums as a decider: ``initial_state``, ``decide`` and ``evolve``.

Time is logical milliseconds carried by the state (``now_ms``); nothing reads a wall clock.
``decide`` checks a command and returns the events it causes (or raises :class:`Rejected`);
``evolve`` folds one event into a new state. Every chance outcome (the random lock value, the
retry delay) is drawn in ``decide`` from ``Random(cmd["_seed"])`` and written into the event,
so a replay never re-rolls. Every message of an acquisition is in its event, for the
space-time diagram.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from random import Random
from typing import Any

Event = dict[str, Any]  # {"kind": str, "data": {...}}: plain JSON

MODES = ("single", "redlock", "consensus")
NODE_NAMES = "ABCDEFG"
PEER_LATENCY_MS = 1  # one-way latency between consensus members (replication round)


class Rejected(Exception):
    """A command that does not fit the state; the message is shown to its sender."""


@dataclass(frozen=True)
class Limits:
    max_clients: int = 6
    max_ttl_ms: int = 600_000
    max_dt_ms: int = 3_600_000
    max_name_length: int = 20


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
    valid_until: int | None = None  # global ms: T1 + validity
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
        mode=mode, ttl_ms=int(p.get("ttl_ms", 10_000)), node_timeout_ms=int(p.get("node_timeout_ms", 50)),
        retry_count=int(p.get("retry_count", 3)), retry_delay_max_ms=int(p.get("retry_delay_max_ms", 200)),
        fencing=bool(p.get("fencing", False)), nodes=nodes, clients=tuple(Client(c) for c in clients),
        next_token=int(p.get("first_token", 33)),
    )


# -- validation -----------------------------------------------------------------------------

def clean_int(raw: Any, what: str, low: int, high: int) -> int:
    if isinstance(raw, str) and re.fullmatch(r"\s*-?[0-9]{1,12}\s*", raw):
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise Rejected(f"{what} must be a whole number from {low:,} to {high:,}.")
    if not low <= raw <= high:
        got = f"{raw:,}" if abs(raw) < 10**12 else "a much larger number"
        raise Rejected(f"{what} must be from {low:,} to {high:,} (got {got}).")
    return raw


def clean_bool(raw: Any, what: str, default: bool) -> bool:
    if raw is None:
        return default
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
    sets: list[dict[str, Any]] = []
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
        if ok:
            sets.append({"node": n.name, "expires_at": n.local(arrive) + s.ttl_ms})
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
            "acquired": acquired, "sets": sets, "messages": messages, "release": []}
    if acquired:
        data.update(valid_until=t1 + validity, grant=s.next_token, token=s.next_token if s.fencing else None)
    else:
        # Release on ALL nodes, fire and forget, sent together at T2: compare-and-delete.
        after_sets = {x["node"] for x in sets}
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
    contact = None
    for n in s.nodes:  # find a reachable member, in turn, with the same per-node timeout
        if n.answers(t, client):
            contact = n
            break
        messages.append(_msg("request", "GRANT", client, n.name, t, None, "no answer"))
        messages.append(_msg("timeout", "GRANT", n.name, client, t, t + s.node_timeout_ms, "TIMEOUT"))
        t += s.node_timeout_ms
    acquired, result = False, "UNAVAILABLE"
    if contact is not None:
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
        if acks < s.quorum:
            result = f"NO QUORUM ({acks}/{len(s.nodes)})"
        elif lease is not None:
            result = f"FAIL (held by {lease.holder}, revision {lease.revision})"
        else:
            acquired, result = True, f"OK revision {s.next_token}"
        messages.append(_msg("reply", "GRANT", contact.name, client, arrive + 2 * PEER_LATENCY_MS, t + rtt + 2 * PEER_LATENCY_MS, result))
        t += rtt + 2 * PEER_LATENCY_MS
    t2 = t
    elapsed = t2 - t1
    d = drift(s.ttl_ms)
    validity = s.ttl_ms - elapsed - d
    acquired = acquired and validity > 0
    data = {"mode": s.mode, "client": client, "value": value, "t1": t1, "t2": t2, "elapsed": elapsed,
            "oks": 1 if acquired else 0, "nodes": len(s.nodes), "quorum": s.quorum, "drift": d,
            "validity": validity, "acquired": acquired, "sets": [], "messages": messages, "release": [],
            "result": result}
    if acquired:
        # The lease clock starts when the leader granted it (after T1), so it outlives T1 + validity.
        data.update(valid_until=t1 + validity, grant=s.next_token, token=s.next_token,
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
    return [{"kind": "client_added", "data": {"name": name.strip()}}]


def _set_latency(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    c, n = _client(state, cmd), _node(state, cmd)
    ms = clean_int(cmd.get("ms"), "A link latency", 0, 60_000)
    return [{"kind": "latency_set", "data": {"client": c.name, "node": n.name, "ms": ms}}]


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
}


# -- evolve ---------------------------------------------------------------------------------

def evolve(state: LockState, event: Event) -> LockState:
    kind, data = event["kind"], event["data"]
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
        nodes = tuple(replace(n, latency=n.latency + ((data["name"], 3),)) for n in state.nodes)
        return replace(state, nodes=nodes, clients=state.clients + (Client(data["name"]),))
    if kind == "latency_set":
        n = state.node(data["node"])
        lat = tuple((c, data["ms"] if c == data["client"] else ms) for c, ms in n.latency)
        if data["client"] not in dict(lat):
            lat += ((data["client"], data["ms"]),)
        return _set_node(state, n.name, latency=lat)
    raise ValueError(f"unknown lock quorum event {kind!r}")


def _apply_attempt(state: LockState, d: dict[str, Any]) -> LockState:
    client = d["client"]
    nodes = {n.name: n for n in state.nodes}
    for x in d["sets"]:
        nodes[x["node"]] = replace(nodes[x["node"]], key=Key(d["value"], client, x["expires_at"]))
    if not d["acquired"]:
        for m in d["release"]:
            if m["kind"] == "reply" and m["result"] == "1":
                nodes[m["from"]] = replace(nodes[m["from"]], key=None)
    s = replace(state, nodes=tuple(nodes[n.name] for n in state.nodes), attempts=state.attempts + 1)
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
    return LockState(
        mode=data["mode"], now_ms=data["now_ms"], ttl_ms=data["ttl_ms"], node_timeout_ms=data["node_timeout_ms"],
        retry_count=data["retry_count"], retry_delay_max_ms=data["retry_delay_max_ms"], fencing=data["fencing"],
        nodes=nodes, clients=tuple(Client(**c) for c in data["clients"]), next_token=data["next_token"],
        lease=None if data["lease"] is None else Lease(**data["lease"]), highest_token=data["highest_token"],
        writes=tuple(Write(**w) for w in data["writes"]), lost_update=data["lost_update"], attempts=data["attempts"],
    )
