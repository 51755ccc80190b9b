"""The lock's ``evolve``: one event folded into a new state, as two tables of small functions.

``EVOLVE`` (kind -> how the event changes the state) and ``EPISODES`` (kind -> what the
space-time diagram draws for it, if anything); the episode goes into the bounded trace
(``apps.common.sim.trace``), where ticks in a row make one stretch.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from apps.common.sim.trace import Episode

from .events import (
    AcquireAttempted,
    ClientAdded,
    ClientPaused,
    ClockJumped,
    Configured,
    ContenderJoined,
    FencingSet,
    LatencySet,
    LinkChanged,
    NodeCrashed,
    NodeRestarted,
    RaceReset,
    RaceRun,
    Released,
    SceneLoaded,
    Ticked,
    Written,
)
from .state import TRACE, Client, Contender, Key, Lease, LockNode, LockState, Race, Write, initial_state

Event = dict[str, Any]  # {"kind": str, "data": {...}}


def evolve(state: LockState, event: Event) -> LockState:
    kind, data = event["kind"], event["data"]
    fold = EVOLVE.get(kind)
    if fold is None:
        raise ValueError(f"unknown lock quorum event {kind!r}")
    after = fold(state, data)
    draw = EPISODES.get(kind)
    episode = None if draw is None else draw(state, after, data)
    return after if episode is None else _traced(after, episode)


# -- how each event changes the state ---------------------------------------------------------

def _scene_loaded(state: LockState, d: SceneLoaded) -> LockState:
    return initial_state(d["params"])


def _configured(state: LockState, d: Configured) -> LockState:
    ch = d["changes"]
    s = replace(state, **ch)  # type: ignore[arg-type]  # the keys are LockState's own setting fields
    if "latency_ms" in ch:
        s = replace(s, nodes=tuple(replace(n, latency=tuple((c, ch["latency_ms"]) for c, _ in n.latency)) for n in s.nodes))
    return s


def _contender_joined(state: LockState, d: ContenderJoined) -> LockState:
    c = Contender(d["name"], tuple((n, ms) for n, ms in d["rtt"]))
    return replace(state, race=Race(contenders=state.race.contenders + (c,)))


def _race_reset(state: LockState, d: RaceReset) -> LockState:
    gone = {x["node"] for x in d.get("released", [])}
    nodes = tuple(replace(n, key=None) if n.name in gone else n for n in state.nodes)
    return replace(state, nodes=nodes, race=Race())


def _race_run(state: LockState, d: RaceRun) -> LockState:
    keys = {x["node"]: None if x["key"] is None else Key(**x["key"]) for x in d["keys"]}
    nodes = tuple(replace(n, key=keys[n.name]) if n.name in keys else n for n in state.nodes)
    s = replace(state, nodes=nodes, race=replace(state.race, result=dict(d)), attempts=state.attempts + 1)
    return _advance(s, d["t_end"])


def _acquire_attempted(state: LockState, d: AcquireAttempted) -> LockState:
    client = d["client"]
    nodes = {n.name: n for n in state.nodes}
    for x in d["sets"] + d.get("late", []):
        nodes[x["node"]] = replace(nodes[x["node"]], key=Key(d["value"], client, x["expires_at"]))
    if not d["acquired"]:
        for m in d["release"]:
            if m["kind"] == "reply" and m["result"] == "1":
                nodes[m["from"]] = replace(nodes[m["from"]], key=None)
    s = replace(state, nodes=tuple(nodes[n.name] for n in state.nodes), attempts=state.attempts + 1)
    late_lease = d.get("late_lease")
    if late_lease is not None:  # a grant committed after the client stopped waiting for it
        s = replace(s, lease=Lease(**late_lease), next_token=s.next_token + 1)
    if d["acquired"]:
        lease = s.lease
        if d["mode"] == "consensus":
            lease = Lease(client, d["grant"], d["value"], d["lease_expires_at"])
        s = replace(s, next_token=s.next_token + 1, lease=lease, clients=_set_client(
            s, client, status="holding", value=d["value"], valid_until=d["valid_until"], token=d.get("token"),
            grant=d["grant"], paused_until=None, resume_status=None))
        return _advance(s, d["t2"])
    s = replace(s, clients=_set_client(s, client, status="failed", value=None, valid_until=None, token=None, grant=None))
    return _advance(s, d["t2"] + (d["retry_delay"] or 0))


def _released(state: LockState, d: Released) -> LockState:
    gone = set(d["deletes"])
    nodes = tuple(replace(n, key=None) if n.name in gone else n for n in state.nodes)
    lease = None if d["lease_revoked"] else state.lease
    return replace(state, nodes=nodes, lease=lease, clients=_set_client(
        state, d["client"], status="released", valid_until=None, token=None, grant=None, value=None))


def _written(state: LockState, d: Written) -> LockState:
    w = Write(d["client"], d["at"], d["token"], d["grant"], d["accepted"], d["reason"])
    highest = state.highest_token
    if w.accepted and w.token is not None:
        highest = w.token if highest is None else max(highest, w.token)
    lost = state.lost_update or (w.accepted and "two writers" in w.reason)
    return replace(state, writes=state.writes + (w,), highest_token=highest, lost_update=lost)


def _node_crashed(state: LockState, d: NodeCrashed) -> LockState:
    return _set_node(state, d["node"], up=False)


def _node_restarted(state: LockState, d: NodeRestarted) -> LockState:
    n = _the_node(state, d["node"])
    return _set_node(state, n.name, up=True, persistence=d["persistence"], key=n.key if d["keeps_key"] else None,
                     available_from=d["available_from"])


def _link_cut(state: LockState, d: LinkChanged) -> LockState:
    n = _the_node(state, d["node"])
    return _set_node(state, n.name, cut=tuple(sorted(set(n.cut) | {d["client"]})))


def _link_healed(state: LockState, d: LinkChanged) -> LockState:
    n = _the_node(state, d["node"])
    return _set_node(state, n.name, cut=tuple(sorted(set(n.cut) - {d["client"]})))


def _clock_jumped(state: LockState, d: ClockJumped) -> LockState:
    n = _the_node(state, d["node"])
    after = _set_node(state, n.name, clock_offset_ms=n.clock_offset_ms + d["ms"])
    return _advance(after, state.now_ms)  # its keys may expire right away


def _client_paused(state: LockState, d: ClientPaused) -> LockState:
    c = _the_client(state, d["client"])
    return replace(state, clients=_set_client(state, c.name, status="paused", paused_until=d["until"],
                                              resume_status=c.status))


def _ticked(state: LockState, d: Ticked) -> LockState:
    return _advance(state, d["to"])


def _fencing_set(state: LockState, d: FencingSet) -> LockState:
    return replace(state, fencing=d["on"])


def _client_added(state: LockState, d: ClientAdded) -> LockState:
    nodes = tuple(replace(n, latency=n.latency + ((d["name"], state.latency_ms),)) for n in state.nodes)
    return replace(state, nodes=nodes, clients=state.clients + (Client(d["name"]),))


def _latency_set(state: LockState, d: LatencySet) -> LockState:
    n = _the_node(state, d["node"])
    lat = tuple((c, d["ms"] if c == d["client"] else ms) for c, ms in n.latency)
    if d["client"] not in dict(lat):
        lat += ((d["client"], d["ms"]),)
    return _set_node(state, n.name, latency=lat)


EVOLVE: dict[str, Callable[[LockState, Any], LockState]] = {
    "scene_loaded": _scene_loaded,
    "configured": _configured,
    "contender_joined": _contender_joined,
    "race_reset": _race_reset,
    "race_run": _race_run,
    "acquire_attempted": _acquire_attempted,
    "released": _released,
    "written": _written,
    "node_crashed": _node_crashed,
    "node_restarted": _node_restarted,
    "link_cut": _link_cut,
    "link_healed": _link_healed,
    "clock_jumped": _clock_jumped,
    "client_paused": _client_paused,
    "ticked": _ticked,
    "fencing_set": _fencing_set,
    "client_added": _client_added,
    "latency_set": _latency_set,
}


# -- what the space-time diagram draws for each event -----------------------------------------

def _acquire_episode(before: LockState, after: LockState, d: AcquireAttempted) -> Episode:
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
    raw: dict[str, Any] = dict(d)
    detail = {k: raw.get(k) for k in ("mode", "attempt", "oks", "nodes", "quorum", "elapsed", "drift", "validity",
                                      "retry_delay", "token", "t1", "t2", "result")}
    detail["ttl"] = before.ttl_ms
    return Episode(after.trace_count, "acquire", label, d["t1"], end, d["client"], msgs, window, d["acquired"], detail)


def _release_episode(before: LockState, after: LockState, d: Released) -> Episode:
    t = before.now_ms
    msgs = tuple(d["messages"])
    end = max([t] + [m["arrives"] for m in msgs if m["arrives"] is not None])
    return Episode(after.trace_count, "release", f"{d['client']} releases", t, end, d["client"], msgs)


def _write_episode(before: LockState, after: LockState, d: Written) -> Episode:
    msg = {"kind": "request", "op": "WRITE", "from": d["client"], "to": "storage", "sent": d["at"],
           "arrives": d["at"], "result": d["reason"]}
    tok = f" token {d['token']}" if d["token"] is not None else ""
    return Episode(after.trace_count, "write", f"{d['client']} writes{tok}", d["at"], d["at"], d["client"],
                   (msg,), None, d["accepted"], {"reason": d["reason"], "token": d["token"]})  # type: ignore[arg-type]


def _tick_episode(before: LockState, after: LockState, d: Ticked) -> Episode:
    return Episode(after.trace_count, "tick", f"+{d['to'] - before.now_ms:,} ms", before.now_ms, d["to"])


def _race_episode(before: LockState, after: LockState, d: RaceRun) -> Episode:
    winners = d["winners"]
    grants = tuple({"kind": "mark", "op": "RACE", "from": "", "to": x["node"], "sent": d["t0"], "arrives": d["t0"],
                    "result": (x["key"] or {}).get("owner") or "free"} for x in d["keys"])
    # With a TTL shorter than the race, several may win one after another: the last holds the lock.
    label = f"class race: {winners[-1]} wins" if winners else "class race: nobody won"
    return Episode(after.trace_count, "race", label, d["t0"], d["t_end"], None, grants, None,  # type: ignore[arg-type]
                   bool(winners))


Lane = Callable[[Any], str]
Label = Callable[[LockState, Any], str]


def _fault(kind: str, lane: Lane, label: Label) -> Callable[[LockState, LockState, Any], Episode]:
    """A fault is an instant on one lane (a node's, or a paused client's)."""
    def draw(before: LockState, after: LockState, d: Any) -> Episode:
        return Episode(after.trace_count, "fault", label(before, d), before.now_ms, before.now_ms, lane(d),
                       detail={"event": kind, "until": d.get("until")})
    return draw


def _restart_label(before: LockState, d: NodeRestarted) -> str:
    forgot = not d["keeps_key"] and _the_node(before, d["node"]).key is not None
    return f"{d['node']} restarts" + (", key forgotten" if forgot else "")


_FAULT_LANES_AND_LABELS: dict[str, tuple[Lane, Label]] = {
    "node_crashed": (lambda d: d["node"], lambda b, d: f"{d['node']} crashes"),
    "node_restarted": (lambda d: d["node"], _restart_label),
    "clock_jumped": (lambda d: d["node"], lambda b, d: f"{d['node']} clock +{d['ms']:,} ms"),
    "client_paused": (lambda d: d["client"], lambda b, d: f"{d['client']} paused {d['until'] - b.now_ms:,} ms"),
    "link_cut": (lambda d: d["node"], lambda b, d: f"{d['client']}–{d['node']} cut"),
    "link_healed": (lambda d: d["node"], lambda b, d: f"{d['client']}–{d['node']} healed"),
}
_FAULTS = {kind: _fault(kind, lane, label) for kind, (lane, label) in _FAULT_LANES_AND_LABELS.items()}

EPISODES: dict[str, Callable[[LockState, LockState, Any], Episode | None]] = {
    "acquire_attempted": _acquire_episode,
    "released": _release_episode,
    "written": _write_episode,
    "ticked": _tick_episode,
    "race_run": _race_episode,
    **_FAULTS,
}


def _merge_ticks(prev: Episode, ep: Episode) -> Episode | None:
    """Time passing tick after tick (the room clock playing) is one stretch of the diagram."""
    if ep.kind == "tick" and prev.kind == "tick":
        return replace(prev, end=ep.end, label=f"+{ep.end - prev.start:,} ms")
    return None


def _traced(state: LockState, ep: Episode) -> LockState:
    if ep.kind == "acquire":
        state = replace(state, last_acquire=ep)
    trace = state.history.add(ep, TRACE, merge=_merge_ticks)
    return replace(state, trace=trace.episodes, trace_count=trace.count, older_messages=trace.older_messages)


# -- helpers ----------------------------------------------------------------------------------

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


def _the_node(state: LockState, name: str) -> LockNode:
    n = state.node(name)
    if n is None:
        raise ValueError(f"no lock node {name!r} in this state")
    return n


def _the_client(state: LockState, name: str) -> Client:
    c = state.client(name)
    if c is None:
        raise ValueError(f"no client {name!r} in this state")
    return c


def _set_node(state: LockState, name: str, **changes: Any) -> LockState:
    return replace(state, nodes=tuple(replace(n, **changes) if n.name == name else n for n in state.nodes))


def _set_client(state: LockState, name: str, **changes: Any) -> tuple[Client, ...]:
    return tuple(replace(c, **changes) if c.name == name else c for c in state.clients)
