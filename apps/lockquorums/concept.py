"""Lock quorums as the room engine sees it: decider, picture, narration, JSON, the class race."""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from apps.rooms import fragments
from apps.rooms.registry import Concept, RoomView, RoundSpec, simulation

from . import picture as pic
from . import sim
from .sim import LockState

SCENARIO_TITLES = {
    "process_pause": "Process pause (GC)",
    "clock_jump": "Clock jump on one node",
    "crash_restart": "Crash and instant restart, no fsync",
}
MODE_TITLES = pic.MODE_TITLES


def page_context(state: LockState, view: RoomView) -> dict[str, Any]:
    """What the page needs besides the picture (the engine puts that in): the comparison."""
    return {"lock": state, "compare": comparison(), "modes": MODE_TITLES, "scenarios": SCENARIO_TITLES}


# -- narration --------------------------------------------------------------------------------

def _ms(v: int) -> str:
    return f"{v:,} ms"


def late_sentence(d: dict[str, Any]) -> str:
    """A SET slower than the per-node timeout still lands: say where, and that nobody counts it."""
    late = [x["node"] for x in d.get("late", [])]
    if not late:
        return ""
    return (f" {', '.join(late)} answered after {d['client']}'s timeout, but the SET still landed: "
            f"{'they hold' if len(late) > 1 else 'it holds'} a key {d['client']} does not count, until released or expired.")


Before = LockState | None


def _acquire_sentence(before: Before, after: Before, d: dict[str, Any]) -> str:
    who = d["client"]
    if d["mode"] == "consensus":
        if d["acquired"]:
            return (f"{who} asked the consensus group for a lease: granted, revision {d['token']}, replicated to a majority; "
                    f"it counts the lease valid for {_ms(d['validity'])} (TTL − {_ms(d['elapsed'])} − drift {_ms(d['drift'])}).")
        return f"{who} asked for a lease: {d.get('result', 'refused')}."
    oks = f"{d['oks']} of {d['nodes']} said OK (quorum {d['quorum']})"
    if d["acquired"]:
        tok = f"; fencing token {d['token']}" if d.get("token") is not None else ""
        ttl = before.ttl_ms if before is not None else d["validity"] + d["elapsed"] + d["drift"]
        return (f"{who} got the lock: {oks} in {_ms(d['elapsed'])}. Validity = TTL − elapsed − drift = "
                f"{ttl:,} − {d['elapsed']:,} − {d['drift']:,} = {_ms(d['validity'])}{tok}.{late_sentence(d)}")
    return f"{who} try {d['attempt']}: {oks}: {_why_failed(before, d)}.{_retry_sentence(d)}"


def _why_failed(before: Before, d: dict[str, Any]) -> str:
    why = pic.failure_reason(d)
    fails = [m["from"] for m in d["messages"] if m["kind"] == "reply" and m["result"] == "FAIL"]
    if fails and before is not None:
        owners = sorted({k.owner for n in before.nodes if n.name in fails and (k := n.live_key(d["t1"])) is not None})
        why += f" ({', '.join(fails)} said FAIL" + (f": {' and '.join(owners)}'s key is there" if owners else "") + ")"
    timeouts = [m["from"] for m in d["messages"] if m["kind"] == "timeout"]
    if timeouts:
        why += f"; {', '.join(timeouts)} timed out"
    if d.get("late"):
        late = [x["node"] for x in d["late"]]
        why += f" ({', '.join(late)} still took the SET after the timeout: the release deletes {'them' if len(late) > 1 else 'it'})"
    return why


def _retry_sentence(d: dict[str, Any]) -> str:
    lost = [m["to"] for m in d["release"] if m["kind"] == "request" and m["arrives"] is None]
    sent = "It sent the release to every node" + (f" (the DEL to {', '.join(lost)} was lost: down or cut off)" if lost else "")
    if d.get("retry_delay") is not None:
        return f" {sent} and retries after a random {_ms(d['retry_delay'])}."
    return f" {sent} and gives up (no tries left)."


def _released_sentence(before: Before, after: Before, d: dict[str, Any]) -> str:
    return f"{d['client']} revoked its lease." if d.get("lease_revoked") else release_sentence(d)


def _written_sentence(before: Before, after: Before, d: dict[str, Any]) -> str:
    if not d["accepted"]:
        return f"The storage rejected {d['client']}'s write: {d['reason']}. Fencing stopped the stale holder."
    if "two writers" in d["reason"]:
        return (f"The storage accepted {d['client']}'s write, but a newer holder had already written: two clients "
                f"acted under the same lock. Lost update.")
    return f"{d['client']} wrote to the storage ({d['reason']})."


def _restarted_sentence(before: Before, after: Before, d: dict[str, Any]) -> str:
    how = "with its data (fsync)" if d["persistence"] else "without persistence: it forgot every key"
    when = f"; delayed restart: silent until t={d['available_from']:,} ms (a whole TTL)" if d["delayed"] else ""
    return f"Node {d['node']} restarted {how}{when}."


def _ticked_sentence(before: Before, after: Before, d: dict[str, Any]) -> str:
    if before is None or after is None:
        return f"Time passes to t={d['to']:,} ms."
    notes = []
    expired = [n.name for n, m in zip(before.nodes, after.nodes) if n.key is not None and m.key is None]
    if expired:
        notes.append("keys expired on " + ", ".join(expired))
    for b, a in zip(before.clients, after.clients):
        if b.status == "paused" and a.status != "paused":
            notes.append(f"{a.name} woke up" + (" still believing it holds the lock" if a.status == "holding" else ""))
        if b.status == "holding" and a.status == "expired":
            notes.append(f"{a.name}'s validity ran out")
    if before.lease is not None and after.lease is None:
        notes.append("the lease expired")
    return f"Time passes to t={d['to']:,} ms" + (": " + "; ".join(notes) if notes else "") + "."


def _fencing_sentence(before: Before, after: Before, d: dict[str, Any]) -> str:
    if d["on"]:
        return ("Fencing tokens on: every grant carries a number that only grows, and the storage refuses a token "
                "older than the newest it has seen.")
    return "Fencing tokens off: the storage accepts any writer."


SETTING_NAMES = {"ttl_ms": "TTL", "node_timeout_ms": "per-node timeout", "latency_ms": "every link's round trip",
                 "retry_count": "tries", "retry_delay_max_ms": "longest retry delay"}


def _configured_sentence(before: Before, after: Before, d: dict[str, Any]) -> str:
    return "Settings: " + ", ".join(f"{SETTING_NAMES[k]} {v:,}" + (" ms" if k.endswith("_ms") else "")
                                    for k, v in d["changes"].items()) + "."


def _scene_sentence(before: Before, after: Before, d: dict[str, Any]) -> str:
    p = d["params"]
    nodes = "one Redis" if p["mode"] == "single" else f"{p['nodes']} {'consensus members' if p['mode'] == 'consensus' else 'lock nodes'}"
    return (f"New scene: {MODE_TITLES[p['mode']].split(' (')[0]}, {nodes}, {len(p['clients'])} clients, "
            f"TTL {_ms(p['ttl_ms'])}, fencing {'on' if p['fencing'] else 'off'}.")


def _race_reset_sentence(before: Before, after: Before, d: dict[str, Any]) -> str:
    freed: dict[str, list[str]] = {}
    for x in d.get("released", []):
        freed.setdefault(x["owner"], []).append(x["node"])
    rel = "".join(f" {o} released the lock on {', '.join(ns)}." for o, ns in freed.items())
    return f"The race was cleared.{rel} A new race can start from a free lock."


Sentence = Callable[[Before, Before, dict[str, Any]], str]

NARRATE: dict[str, Sentence] = {
    "acquire_attempted": _acquire_sentence,
    "released": _released_sentence,
    "written": _written_sentence,
    "node_crashed": lambda b, a, d: f"Node {d['node']} crashed: it answers nothing until it restarts.",
    "node_restarted": _restarted_sentence,
    "link_cut": lambda b, a, d: f"The network between {d['client']} and {d['node']} is cut: requests are lost.",
    "link_healed": lambda b, a, d: f"The link {d['client']}–{d['node']} works again.",
    "clock_jumped": lambda b, a, d: (f"Node {d['node']}'s clock jumped {_ms(d['ms'])} forward: its keys may expire "
                                     f"at once, although no real time passed."),
    "client_paused": lambda b, a, d: (f"{d['client']} stopped (a GC pause) until t={d['until']:,} ms. It cannot notice "
                                      f"the time passing: it wakes believing what it believed before."),
    "ticked": _ticked_sentence,
    "fencing_set": _fencing_sentence,
    "client_added": lambda b, a, d: f"Client {d['name']} joined.",
    "latency_set": lambda b, a, d: f"The round trip between {d['client']} and {d['node']} is now {_ms(d['ms'])}.",
    "configured": _configured_sentence,
    "scene_loaded": _scene_sentence,
    "contender_joined": lambda b, a, d: f"{d['name']} joined the race.",
    "race_reset": _race_reset_sentence,
    "race_run": lambda b, a, d: race_headline(d),
}


def narrate(before: Before, after: Before, event: dict[str, Any]) -> str:
    say = NARRATE.get(event["kind"])
    return say(before, after, event["data"]) if say is not None else event["kind"].replace("_", " ") + "."


def release_sentence(d: dict[str, Any]) -> str:
    """Compare-and-delete on every node: deleted where the value was the client's; a node that
    held someone else's value (or nothing) left it alone; a DEL to a node that was down or cut off
    never arrived."""
    lost = [m["to"] for m in d["messages"] if m["kind"] == "request" and m["arrives"] is None]
    kept = [m["from"] for m in d["messages"] if m["kind"] == "reply" and m["result"] == "0"]
    text = f"{d['client']} released with compare-and-delete: deleted on {', '.join(d['deletes']) or 'no node'}"
    if kept:
        text += f"; {', '.join(kept)} held someone else's value (or nothing) and left it alone"
    if lost:
        text += f"; the DEL to {', '.join(lost)} was lost (down or cut off): it never arrived"
    return text + "."


def race_outcome(d: dict[str, Any]) -> tuple[str, str]:
    """Who came out of the race holding the lock, and the rest of the headline, computed from the
    same rows the leaderboard shows (so the headline never says "split votes" while the rows say
    the nodes were someone else's)."""
    q, nodes = d["quorum"], d["nodes"]
    if d["winners"]:
        w = d["winners"][-1]
        tries = next(c["tries"] for c in d["contenders"] if c["name"] == w)
        won = next(t for t in tries if t.get("acquired"))
        return w, f"got the lock: {won['oks']} of {nodes} ({', '.join(won['ok'])}) on try {tries.index(won) + 1}"
    names = {c["name"] for c in d["contenders"]}
    all_tries = [t for c in d["contenders"] for t in c["tries"]]
    outsiders = sorted({o for t in all_tries for o in t["held_by"].values()} - names)
    if outsiders:
        return "Nobody", f"got {q} of {nodes}: the lock was already held by {', '.join(outsiders)}"
    answering = nodes - min((len(t["timeouts"]) for t in all_tries), default=0)
    if answering < q:
        return "Nobody", f"got {q} of {nodes}: only {answering} node{'s' if answering != 1 else ''} answered"
    if any(t["oks"] >= q for t in all_tries):
        return "Nobody", f"got the lock in time: a quorum came too late (elapsed + drift ≥ TTL)"
    return "Nobody", f"got {q} of {nodes}: split votes on every try"


def race_headline(d: dict[str, Any]) -> str:
    """The race's narration: the panel's headline, and what it means."""
    n = len(d["contenders"])
    who, rest = race_outcome(d)
    text = f"The race: {n} client{'s' if n != 1 else ''} sent SET NX PX to every node at once. {who} {rest}."
    if d["winners"]:
        text += " Everyone else released what they got."
        if len(d["winners"]) > 1:
            text += (f" With a TTL this short, {len(d['winners'])} clients held the lock one after another "
                     f"({', '.join(d['winners'])}): each lock expired during the race.")
    elif "split votes" in rest:
        text += " Every client released; the random retry delays were not enough this time."
    elif "already held" in rest:
        text += " Their keys stay until they expire or are released."
    return text + f" {d['messages']:,} messages."


# -- JSON -------------------------------------------------------------------------------------

def state_json(state: LockState) -> dict[str, Any]:
    doc = sim.to_json(state)
    last = pic.last_acquisition(state)
    doc["derived"] = {
        "holders": state.holders(),
        "quorum": state.quorum,
        "drift_ms": state.drift_ms,
        "last_acquisition": None if last is None else last.detail,
        "race_winner": state.race.result["winners"][-1] if state.race.result and state.race.result["winners"] else None,
        # What each node's own clock reads now (its offset after a clock jump): the picture shows it.
        "node_clocks": {n.name: n.local(state.now_ms) for n in state.nodes},
    }
    return doc


# -- side by side -----------------------------------------------------------------------------

def outcome(state: LockState, rejected: list[tuple[dict[str, Any], str]]) -> dict[str, str]:
    """What a scenario's end state teaches, in a few words, with a tone for its colour."""
    stale = next((w for w in state.writes if not w.accepted), None)
    if state.lost_update:
        return {"tone": "bad", "text": "two writers: lost update"}
    if stale is not None:
        return {"tone": "good", "text": f"stale write refused ({stale.reason.split('token ')[-1]})"}
    c2 = state.client("C2")
    if c2 is not None and c2.status != "holding":
        return {"tone": "good", "text": "C2 could not get the lock"}
    return {"tone": "good", "text": "one writer at a time"}


@lru_cache(maxsize=1)
def comparison() -> list[dict[str, Any]]:
    """Kleppmann's three scenarios in each mode, fencing off and on: real runs of the simulation,
    each with its storyboard (one card per step, in order) for the side-by-side view."""
    rows = []
    for name in sim.SCENARIOS:
        cells: list[dict[str, Any]] = []
        boards: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for mode in sim.MODES:
            cell: dict[str, Any] = {"mode": mode}
            for fencing, key in ((False, "off"), (True, "on")):
                state, steps, rejected = _run(name, fencing, mode)
                cell[key] = outcome(state, rejected)
                boards[key].append({"mode": mode, "title": MODE_TITLES[mode], "steps": steps, "outcome": cell[key]})
            cells.append(cell)
        rows.append({"scenario": name, "title": SCENARIO_TITLES[name], "cells": cells,
                     "boards": [{"fencing": "off", "modes": boards["off"]}, {"fencing": "on", "modes": boards["on"]}]})
    return rows


def _run(name: str, fencing: bool, mode: str) -> tuple[LockState, list[dict[str, str]], list[tuple[dict[str, Any], str]]]:
    """Fold a scenario and keep one card per step: what the diagram labels each new episode (or
    why the state refused a command, which is part of the lesson: a client that did not get the
    lock cannot write)."""
    state = sim.initial_state({"mode": mode})
    steps: list[dict[str, str]] = []
    rejected: list[tuple[dict[str, Any], str]] = []
    for cmd, after, _events, refusal in sim.steps(name, fencing, mode):
        if refusal is not None:
            rejected.append((cmd, refusal))
            steps.append({"tone": "refused", "text": f"{cmd.get('client', '')} {cmd['type']} refused".strip(), "why": refusal})
            continue
        added = after.trace_count - state.trace_count  # ticks in a row stretch one episode: no new card
        for ep in after.trace[len(after.trace) - added:] if added else ():
            steps.append({"tone": _tone(ep), "text": pic.short_label(ep), "why": ep.label})
        state = after
    return state, steps, rejected


def _tone(ep: Any) -> str:
    if ep.kind == "write" and ep.ok and "two writers" in (ep.detail or {}).get("reason", ""):
        return "lost"
    if ep.kind == "write" and not ep.ok:
        return "fenced"  # the storage refused a stale token: fencing at work
    return {True: "ok", False: "no"}.get(ep.ok, "fault" if ep.kind == "fault" else "plain")


# -- the class race (a round) -----------------------------------------------------------------

def race_join_command(state: LockState, body: dict[str, Any], name: str) -> dict[str, Any]:
    return {"type": "race_join", "name": name}


def race_round_opened(state: LockState) -> list[dict[str, Any]]:
    """A new race round is a new race: the commands opening the round must run. A race left
    from an earlier round (its contenders, its result, the winner's keys) is cleared exactly as
    "New race" clears it; with no race left, nothing. The room engine runs no concept command
    when a round opens (``round_opened`` never reaches ``evolve``, and ``RoundSpec`` has no
    hook), so until it does, ``round_panel`` tells the presenter which clients are left over."""
    return [{"type": "race_reset"}] if state.race.contenders else []


RACE_ROUND = RoundSpec(
    kind="race",
    title="Race for the lock",
    instructions="join the race for the lock; when the presenter starts it, everyone sends SET NX PX to every node at once.",
    student_command="race_me",
    to_command=race_join_command,
    entry_key="name",
    input_label=None,
    resets_entries=frozenset({"race_reset", "scene_loaded"}),
    on_open=race_round_opened,  # a new round is a new race: the last one's contenders and winner go
)


ROUND_ROWS = 12  # the class board's rows; every student also gets their own row in their panel


def leftover_contenders(state: LockState, current: dict[str, Any] | None) -> int:
    """How many clients in the race did not join in the open round. Every entry of the round
    since it opened (or since the last "New race", which empties both) added one contender at
    the end, so any more than the round's entries were left by an earlier round."""
    if not current or not current.get("open"):
        return 0
    return max(0, len(state.race.contenders) - len(current.get("entries", [])))


def race_rows(state: LockState) -> list[dict[str, Any]]:
    """One row per contender: the best try, and why it failed (who held the nodes it missed)."""
    result = state.race.result
    if result is None:
        return [{"name": c.name, "waiting": True} for c in state.race.contenders]
    rows = []
    for c in result["contenders"]:
        tries = c["tries"]
        won = next((t for t in tries if t.get("acquired")), None)
        best = won or max(tries, key=lambda t: t["oks"])
        held: dict[str, list[str]] = {}
        for node, owner in sorted(best["held_by"].items()):
            held.setdefault(owner, []).append(node)
        why = "; ".join(f"{''.join(ns)} had {owner}'s" for owner, ns in held.items())
        if best["timeouts"]:
            why = (why + "; " if why else "") + f"{''.join(best['timeouts'])} timed out"
        rows.append({"name": c["name"], "won": won is not None, "oks": best["oks"], "ok": sorted(best["ok"]),
                     "tries": len(tries), "best_try": tries.index(best) + 1, "why": why, "validity": best.get("validity"),
                     "elapsed": best.get("elapsed")})
    rows.sort(key=lambda r: (not r["won"], -r["oks"], r["name"]))
    return rows


def held_sentence(state: LockState) -> str | None:
    """Why the race cannot start yet (someone holds the lock), as the presenter reads it."""
    owners: dict[str, list[str]] = {}
    for n in state.nodes:
        k = n.live_key(state.now_ms)
        if k is not None:
            owners.setdefault(k.owner, []).append(n.name)
    if not owners:
        return None
    return "; ".join(f"{o} holds the lock on {', '.join(ns)}" for o, ns in owners.items())


def round_panel(state: LockState, current: dict[str, Any] | None) -> str:
    result = state.race.result
    who, rest = race_outcome(result) if result else (None, None)
    return fragments.render_tight("lockquorums/_round.html", {
        "round": current, "rows": race_rows(state)[:ROUND_ROWS], "count": len(state.race.contenders), "result": result,
        "quorum": state.quorum, "nodes": len(state.nodes), "who": who, "rest": rest,
        "winner": result["winners"][-1] if result and result["winners"] else None,
        "held": None if result else held_sentence(state), "leftover": leftover_contenders(state, current),
        "more": max(0, len(state.race.contenders) - ROUND_ROWS)})


def my_entry(state: LockState, entry: dict[str, Any]) -> str:
    """A student's own panel: before the race, what will happen; after it, their own row (the
    class board shows only the first rows), so every student finds their result."""
    mine = next((r for r in race_rows(state) if r["name"] == entry.get("entry") and not r.get("waiting")), None)
    return fragments.render_tight("lockquorums/_my_entry.html", {"entry": entry, "quorum": state.quorum,
                                                                "nodes": len(state.nodes), "mine": mine})


CONCEPT = Concept(
    slug="lock-quorums",
    title="Lock quorums",
    blurb="RedLock on five nodes, TTLs and validity, and the faults that break it: pauses, clock jumps, crashes.",
    **simulation(sim, narrate=narrate),
    page_template="lockquorums/page.html",
    page_context=page_context,
    picture=pic.picture,
    state_json=state_json,
    ticks=True,
    rounds=(RACE_ROUND,),
    round_panel=round_panel,
    my_entry=my_entry,
    # A student's panel shows the quorum before the race and their own row after it: it moves
    # only with those (a student joining the race, or a playing tick, draws nothing).
    my_entry_basis=lambda state, entry: (state.quorum, len(state.nodes), state.race.result),
)
