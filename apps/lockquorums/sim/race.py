"""The class race (a classroom round): every student sends SET NX PX to every node at once.

``race_join``, ``race_start`` and ``race_reset`` are commands of the lock's decider
(``decide.COMMANDS``). ``race_start`` runs every student's RedLock in parallel as a
discrete-event simulation on ``apps.common.sim.network.EventQueue``.
"""
from __future__ import annotations

from dataclasses import asdict
from random import Random
from typing import Any

from apps.common.sim import Rejected
from apps.common.sim.network import EventQueue

from .state import Key, Limits, LockState, drift

Event = dict[str, Any]


def race_join(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
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
    rtt = [[n.name, rng.randint(2, 60)] for n in state.nodes]
    return [{"kind": "contender_joined", "data": {"name": name, "rtt": rtt}}]


def _held_keys(state: LockState) -> dict[str, Key]:
    """The live keys on the nodes right now, by node."""
    return {n.name: k for n in state.nodes if (k := n.live_key(state.now_ms)) is not None}


def race_reset(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
    """Clear the race. The students' clients release what they hold (compare-and-delete on every
    node that answers), so the next race starts from a free lock; a DEL to a node that is down is
    lost and its key stays until its TTL runs out."""
    if not state.race.contenders:
        raise Rejected("There is no race to clear.")
    students = {c.name for c in state.race.contenders}
    released = [{"node": n.name, "owner": k.owner} for n in state.nodes
                if (k := n.live_key(state.now_ms)) is not None and k.owner in students and n.answers(state.now_ms, k.owner)]
    return [{"kind": "race_reset", "data": {"contenders": len(state.race.contenders), "released": released}}]


def race_start(state: LockState, cmd: dict[str, Any], limits: Limits) -> list[Event]:
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
    run = _RaceRun(state, Random(f"{cmd.get('_seed', 'seed')}:race:{state.attempts}"))
    return [{"kind": "race_run", "data": run.play()}]


# At one instant, the rank (phase, then join order): deletes and starts come before SETs, and
# SETs before a client counts its replies; then the order the students joined.
START, SET, DONE, DEL = "start", "set", "done", "del"
PHASE = {START: 0, DEL: 0, SET: 1, DONE: 2}
Step = tuple[str, str, int, int]  # (kind, client, node index, try index)
Held = tuple[str, str, int]  # a key while the race runs: (value, owner, expires_at on the node's clock)


class _RaceRun:
    """Every student's parallel RedLock as a discrete-event simulation (one instance per race)."""

    def __init__(self, state: LockState, rng: Random) -> None:
        self.rng = rng
        self.t0, self.ttl, self.drift, self.quorum = state.now_ms, state.ttl_ms, drift(state.ttl_ms), state.quorum
        self.timeout, self.tries_max, self.delay_max = state.node_timeout_ms, state.retry_count, state.retry_delay_max_ms
        self.names = [n.name for n in state.nodes]
        self.offset = {n.name: n.clock_offset_ms for n in state.nodes}
        # A student is never one of the room's clients, so no cut link applies: a node answers when
        # it is up and past a delayed restart.
        self.up_from = {n.name: (n.available_from if n.up else None) for n in state.nodes}
        self.keys: dict[str, Held | None] = {}
        for n in state.nodes:
            k = n.live_key(self.t0)
            self.keys[n.name] = None if k is None else (k.value, k.owner, k.expires_at)
        self.before = dict(self.keys)
        self.contenders = [c.name for c in state.race.contenders]
        self.rtts = {c.name: [dict(c.rtt).get(name, state.latency_ms) for name in self.names] for c in state.race.contenders}
        self.order = {name: i for i, name in enumerate(self.contenders)}
        self.tries: dict[str, list[dict[str, Any]]] = {name: [] for name in self.contenders}
        self.queue: EventQueue[Step] = EventQueue()
        count = len(self.contenders)
        self.rank = {kind: {name: phase * count + i for name, i in self.order.items()} for kind, phase in PHASE.items()}
        self.winners: list[str] = []
        self.messages = 0

    def push(self, t: int, kind: str, client: str, ni: int = 0, k: int = 0) -> None:
        self.queue.push(t, (kind, client, ni, k), self.rank[kind][client])

    def play(self) -> dict[str, Any]:
        for name in self.contenders:
            self.push(self.t0, START, name)
        handlers = {START: self.start, SET: self.set, DONE: self.done, DEL: self.delete}
        t_end = self.t0
        for t, (kind, client, ni, k) in self.queue.drain():
            if t > t_end:
                t_end = t
            handlers[kind](t, client, ni, k)
        changed = [{"node": name, "key": None if held is None else asdict(Key(*held))}
                   for name, held in self.keys.items() if held != self.before[name]]
        return {"t0": self.t0, "t_end": t_end, "quorum": self.quorum, "nodes": len(self.names), "ttl": self.ttl,
                "drift": self.drift, "winners": self.winners, "messages": self.messages, "keys": changed,
                "contenders": [{"name": name, "tries": self.tries[name]} for name in self.contenders]}

    def start(self, t: int, client: str, _ni: int, _k: int) -> None:
        # timeouts: the nodes that did not answer within the per-node timeout, down or slow;
        # slow: up, but with a round trip over the timeout (the SET still lands there); late:
        # the slow nodes where it took the key, which this try does not count.
        attempt: dict[str, Any] = {"start": t, "value": f"{client}:{self.rng.getrandbits(40):010x}", "ok": [],
                                   "held_by": {}, "timeouts": [], "slow": [], "late": []}
        self.tries[client].append(attempt)
        k = len(self.tries[client]) - 1
        wait = 0
        push, rank = self.queue.push, self.rank[SET][client]
        for ni, rtt in enumerate(self.rtts[client]):
            since = self.up_from[self.names[ni]]
            if since is not None and t >= since:
                push(t + rtt // 2, (SET, client, ni, k), rank)
                if rtt > self.timeout:
                    attempt["timeouts"].append(self.names[ni])
                    attempt["slow"].append(self.names[ni])
                wait = max(wait, min(rtt, self.timeout))
            else:
                attempt["timeouts"].append(self.names[ni])
                wait = max(wait, self.timeout)
        self.messages += 2 * len(self.names)
        self.push(t + wait, DONE, client, 0, k)

    def set(self, t: int, client: str, ni: int, k: int) -> None:
        attempt = self.tries[client][k]
        node = self.names[ni]
        held = self.keys[node]
        slow = node in attempt["slow"]  # its reply comes after the client stopped waiting
        if held is None or t + self.offset[node] >= held[2]:
            self.keys[node] = (attempt["value"], client, t + self.offset[node] + self.ttl)
            attempt["late" if slow else "ok"].append(node)
        elif not slow:
            attempt["held_by"][node] = held[1]

    def done(self, t: int, client: str, _ni: int, k: int) -> None:
        attempt = self.tries[client][k]
        elapsed = t - attempt["start"]
        validity = self.ttl - elapsed - self.drift
        oks = len(attempt["ok"])
        acquired = oks >= self.quorum and elapsed < self.ttl and validity > 0
        attempt.update(end=t, elapsed=elapsed, validity=validity, acquired=acquired, oks=oks)
        if acquired:
            attempt["valid_until"] = t + validity  # T2 + validity
            self.winners.append(client)
            return
        # Compare-and-delete goes to every node (the messages count them all); it can only
        # delete where this try's own SET succeeded, so only those are simulated: the OKs, and
        # the slow nodes, whose SET may land (or have landed) after the client gave up. A DEL
        # leaves after its SET on the same link, so it arrives after it.
        for node in attempt["ok"] + attempt["slow"]:
            ni = self.names.index(node)
            since = self.up_from[node]
            if since is not None and t >= since:
                self.push(t + self.rtts[client][ni] // 2, DEL, client, ni, k)
        self.messages += 2 * len(self.names)
        if len(self.tries[client]) < self.tries_max:
            delay = self.rng.randint(0, self.delay_max)
            attempt["retry_delay"] = delay
            self.push(t + delay, START, client)

    def delete(self, t: int, client: str, ni: int, k: int) -> None:
        """Only if the node still holds this try's value."""
        node = self.names[ni]
        held = self.keys[node]
        if held is not None and t + self.offset[node] < held[2] and held[0] == self.tries[client][k]["value"]:
            self.keys[node] = None
