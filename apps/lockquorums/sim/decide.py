"""The lock's decider: ``decide(state, command)`` checks a command and returns the events it
causes, or raises :class:`Rejected` with a sentence for the sender.

Every chance outcome (the random lock value, the retry delay) is drawn here from
``Random(cmd["_seed"])`` and written into the event, so a replay never re-rolls. Every message
of an acquisition is in its event (``apps.common.sim.network.Message``), for the space-time
diagram; the network (latency per link, cut links) is ``apps.common.sim.network``.
"""
from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Any

from apps.common.sim import Rejected, clean_int
from apps.common.sim.network import Message, Network, message

from .evolve import evolve
from .race import race_join, race_reset, race_start
from .state import MODES, PEER_LATENCY_MS, Client, Lease, Limits, LockNode, LockState, drift

Event = dict[str, Any]  # {"kind": str, "data": {...}}: plain JSON, typed per kind in events.py


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
    if not isinstance(name, str):
        raise Rejected(f"There is no client called that: a client is named by text (clients: {', '.join(x.name for x in state.clients)}).")
    c = state.client(name)
    if c is None:
        raise Rejected(f"There is no client called {str(name)[:20]!r} (clients: {', '.join(x.name for x in state.clients)}).")
    return c


def _node(state: LockState, cmd: dict[str, Any]) -> LockNode:
    name = cmd.get("node")
    if not isinstance(name, str):
        raise Rejected(f"There is no lock node called that: a node is named by text (nodes: {', '.join(x.name for x in state.nodes)}).")
    n = state.node(name)
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


def _serving(n: LockNode, t: int) -> bool:
    """Up, and past a delayed restart: the node takes requests (whether they reach it is the network's)."""
    return n.up and t >= n.available_from


def _redlock_attempt(s: LockState, client: str, value: str) -> dict[str, Any]:
    """One try of the spec: SET NX PX on every node in turn, then count and time it."""
    net = Network(s.links())
    t1 = t = s.now_ms
    messages: list[Message] = []
    sets: list[dict[str, Any]] = []  # keys set by an OK the client counted
    late: list[dict[str, Any]] = []  # keys set by a SET whose reply came after the per-node timeout
    for n in s.nodes:
        arrive = net.delivery(client, n.name, t)
        if arrive is None or not _serving(n, t):  # cut off (lost on the way), or down
            messages.append(message("request", "SET", client, n.name, t, arrive, "lost" if arrive is None else "no answer (down)"))
            messages.append(message("timeout", "SET", n.name, client, t, t + s.node_timeout_ms, "TIMEOUT"))
            t += s.node_timeout_ms
            continue
        back = arrive + net.links.one_way(n.name, client)  # the reply is back one round trip after t
        messages.append(message("request", "SET", client, n.name, t, arrive, f"SET lock {value} NX PX {s.ttl_ms}"))
        ok = n.live_key(arrive) is None
        key = {"node": n.name, "expires_at": n.local(arrive) + s.ttl_ms}
        if back - t > s.node_timeout_ms:
            # Up but slower than the per-node timeout: the client counts this node as failed and
            # moves on at T + timeout. The SET was sent, so it still reaches the node and takes the
            # key there if it is free: a key the client does not count (its failure release, a DEL
            # on every node, or the TTL removes it). The reply arrives after the client gave up.
            if ok:
                late.append(key)
            messages.append(message("reply", "SET", n.name, client, arrive, back, "OK (too late)" if ok else "FAIL (too late)"))
            messages.append(message("timeout", "SET", n.name, client, t, t + s.node_timeout_ms, "TIMEOUT"))
            t += s.node_timeout_ms
            continue
        if ok:
            sets.append(key)
        messages.append(message("reply", "SET", n.name, client, arrive, back, "OK" if ok else "FAIL"))
        t = back
    t2 = t
    elapsed = t2 - t1
    d = drift(s.ttl_ms)
    validity = s.ttl_ms - elapsed - d
    oks = len(sets)
    acquired = oks >= s.quorum and elapsed < s.ttl_ms and validity > 0
    data: dict[str, Any] = {
        "mode": s.mode, "client": client, "value": value, "t1": t1, "t2": t2, "elapsed": elapsed, "oks": oks,
        "nodes": len(s.nodes), "quorum": s.quorum, "drift": d, "validity": validity, "acquired": acquired,
        "sets": sets, "late": late, "messages": messages, "release": []}
    if acquired:
        # The validity counts from the moment the client has its answers (T2): the lock is safe
        # until T1 + TTL - drift, because every key was set after T1 (node-redlock: start + duration - drift).
        data.update(valid_until=t2 + validity, grant=s.next_token, token=s.next_token if s.fencing else None)
    else:
        data["release"] = _release_everywhere(s, net, client, value, t2, {x["node"] for x in sets + late})
    return data


def _release_everywhere(s: LockState, net: Network, client: str, value: str, t2: int, mine: set[str]) -> list[Message]:
    """A failed try's release on ALL nodes, fire and forget, sent together at T2:
    compare-and-delete. A DEL to a node that is down or cut off is lost."""
    out: list[Message] = []
    for n in s.nodes:
        arrive = net.delivery(client, n.name, t2)
        if arrive is None or not _serving(n, t2):
            out.append(message("request", "DEL", client, n.name, t2, None, "lost"))
            continue
        key = n.live_key(arrive)
        deletes = n.name in mine or (key is not None and key.value == value)
        out.append(message("request", "DEL", client, n.name, t2, arrive, f"DEL if value == {value}"))
        out.append(message("reply", "DEL", n.name, client, arrive, arrive + net.links.one_way(n.name, client),
                           "1" if deletes else "0"))
    return out


def _replicate(s: LockState, net: Network, contact: LockNode, at: int, messages: list[Message]) -> int:
    """The contact member appends the grant to every peer's log (a peer that is down gets
    nothing); returns the acks, its own included."""
    acks = 1
    for peer in s.nodes:
        if peer.name == contact.name:
            continue
        alive = _serving(peer, at)
        arrive = net.delivery(contact.name, peer.name, at) if alive else None
        messages.append(message("request", "APPEND", contact.name, peer.name, at, arrive, "replicate"))
        if arrive is not None:
            acks += 1
            messages.append(message("reply", "APPEND", peer.name, contact.name, arrive,
                                    arrive + net.links.one_way(peer.name, contact.name), "ack"))
    return acks


def _consensus_attempt(s: LockState, client: str, value: str) -> dict[str, Any]:
    """A lease grant through one member, replicated to a majority (etcd / ZooKeeper style)."""
    net = Network(s.links())
    t1 = t = s.now_ms
    messages: list[Message] = []
    acquired, result, arrive = False, "UNAVAILABLE", t
    late_lease: dict[str, Any] | None = None  # a grant whose reply came after the timeout
    for contact in s.nodes:  # ask the members in turn, each with the same per-node timeout
        reached = net.delivery(client, contact.name, t)
        if reached is None or not _serving(contact, t):
            messages.append(message("request", "GRANT", client, contact.name, t, None, "no answer"))
            messages.append(message("timeout", "GRANT", contact.name, client, t, t + s.node_timeout_ms, "TIMEOUT"))
            t += s.node_timeout_ms
            continue
        arrive = reached
        messages.append(message("request", "GRANT", client, contact.name, t, arrive, f"lease {s.ttl_ms} ms if free"))
        acks = _replicate(s, net, contact, arrive, messages)
        committed = arrive + 2 * PEER_LATENCY_MS
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
        answer = committed + net.links.one_way(contact.name, client)
        if answer - t > s.node_timeout_ms:
            # The answer would come after the per-node timeout: the client counts this member as
            # failed and asks the next one at T + timeout. The request was sent, so a grant still
            # commits: the group holds a lease for this client under a revision it never hears of,
            # until the lease expires.
            if granted:
                late_lease = {"holder": client, "revision": s.next_token, "value": value, "expires_at": arrive + s.ttl_ms}
            messages.append(message("reply", "GRANT", contact.name, client, committed, answer, f"{result} (too late)"))
            messages.append(message("timeout", "GRANT", contact.name, client, t, t + s.node_timeout_ms, "TIMEOUT"))
            t += s.node_timeout_ms
            continue
        acquired = granted
        messages.append(message("reply", "GRANT", contact.name, client, committed, answer, result))
        t = answer
        break
    else:  # no member answered within the timeout
        result = "UNAVAILABLE" if late_lease is None else f"UNAVAILABLE (revision {late_lease['revision']} was granted too late to count)"
    data: dict[str, Any] = {"mode": s.mode, "client": client, "value": value, "t1": t1, "t2": t, "nodes": len(s.nodes),
                            "quorum": s.quorum, "sets": [], "messages": messages, "release": [], "late_lease": late_lease}
    return _lease_outcome(s, data, acquired, result, arrive)


def _lease_outcome(s: LockState, data: dict[str, Any], acquired: bool, result: str, granted_at: int) -> dict[str, Any]:
    """Count the lease as the client does: valid for TTL - elapsed - drift, if that is positive."""
    elapsed = data["t2"] - data["t1"]
    d = drift(s.ttl_ms)
    validity = s.ttl_ms - elapsed - d
    if acquired and validity <= 0:  # granted, but too late to count on: the client lets it go
        acquired, result = False, f"TOO SLOW (elapsed {elapsed:,} + drift {d:,} ≥ TTL {s.ttl_ms:,})"
    acquired = acquired and validity > 0
    data.update(elapsed=elapsed, oks=1 if acquired else 0, drift=d, validity=validity, acquired=acquired, result=result)
    if acquired:
        # The lease clock starts when the leader granted it (after T1), so it outlives T1 + validity.
        data.update(valid_until=data["t2"] + validity, grant=s.next_token, token=s.next_token,
                    lease_expires_at=granted_at + s.ttl_ms)
    return data


def _release(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    c = _client(state, cmd)
    if c.status == "paused":
        raise Rejected(f"{c.name} is paused (GC) until t={c.paused_until} ms; it cannot send anything.")
    if c.value is None or c.status not in ("holding", "expired"):
        raise Rejected(f"{c.name} has no lock to release.")
    net = Network(state.links())
    t = state.now_ms
    messages: list[Message] = []
    deletes: list[str] = []
    for n in state.nodes:
        arrive = net.delivery(c.name, n.name, t)
        if arrive is None or not _serving(n, t):
            messages.append(message("request", "DEL", c.name, n.name, t, None, "lost"))
            continue
        back = arrive + net.links.one_way(n.name, c.name)
        if state.mode == "consensus":  # one member takes the revoke and replicates it
            ok = state.lease is not None and state.lease.value == c.value
            messages.append(message("request", "REVOKE", c.name, n.name, t, arrive, f"revoke lease {c.value}"))
            messages.append(message("reply", "REVOKE", n.name, c.name, arrive, back, "OK" if ok else "no such lease"))
            break
        key = n.live_key(arrive)
        mine = key is not None and key.value == c.value
        if mine:
            deletes.append(n.name)
        messages.append(message("request", "DEL", c.name, n.name, t, arrive, f"DEL if value == {c.value}"))
        messages.append(message("reply", "DEL", n.name, c.name, arrive, back, "1" if mine else "0"))
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
    dt = clean_int(cmd.get("dt_ms"), "A tick", 1, limits.max_dt_ms)  # the room clock always says how long
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


Handler = Callable[[LockState, dict[str, Any], Limits], list[Event]]

COMMANDS: dict[str, Handler] = {
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
    "race_join": race_join,
    "race_start": race_start,
    "race_reset": race_reset,
}

