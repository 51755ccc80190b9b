"""What can be read off the state: the choreographed saga's progress rebuilt from the events the
bus carried (as a tracing system would), the subscriptions, and the comparison of both styles."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .process import Process
from .state import BusRecord, Service, WorkflowState


@dataclass(frozen=True)
class Progress:
    steps: tuple[str, ...]  # per step: pending | done | failed | undone | skipped | upstream_failed
    finished: bool
    outcome: str  # "" | completed | compensated | failed


def topic_index(p: Process) -> dict[str, tuple[int, str]]:
    """topic -> (step, outcome) for every event a step can publish."""
    out: dict[str, tuple[int, str]] = {}
    for i, s in enumerate(p.steps):
        out[s.done_topic] = (i, "done")
        if s.failed_topic:
            out[s.failed_topic] = (i, "failed")
        if s.undone_topic:
            out[s.undone_topic] = (i, "undone")
    return out


def reactions(p: Process, topic: str) -> list[tuple[str, int, str]]:
    """Who reacts to ``topic`` and how: (service, step, "join" | "undo"). A step joins its
    upstream steps' done events (and their failures too when its trigger rule is not
    all_success); in a saga, a compensable step is undone when the next step failed or was undone."""
    known = topic_index(p).get(topic)
    if known is None:
        return []
    u, outcome = known
    out: list[tuple[str, int, str]] = []
    for i, s in enumerate(p.steps):
        if u in p.upstream_of(i):
            if outcome == "done" or (outcome == "failed" and s.trigger_rule != "all_success"):
                out.append((s.service, i, "join"))
    if p.saga and outcome in ("failed", "undone") and u >= 1 and p.compensable(u - 1):
        out.append((p.steps[u - 1].service, u - 1, "undo"))
    return out


def subscriptions(p: Process) -> dict[str, list[str]]:
    """service -> the topics it subscribes to."""
    subs: dict[str, list[str]] = {s: [] for s in p.services}
    for topic in topic_index(p):
        for service, _, _ in reactions(p, topic):
            if topic not in subs[service]:
                subs[service].append(topic)
    return subs


def reconstruct(p: Process, log: tuple[BusRecord, ...], services: tuple[Service, ...] = ()) -> Progress:
    """The saga's progress from the events seen on the bus (a step's latest outcome wins), plus,
    for a DAG, the marks services made locally (skipped / upstream_failed publish nothing)."""
    steps = ["pending"] * len(p.steps)
    for r in log:
        steps[r.step] = r.outcome
    for svc in services:
        for i, mark in svc.marked:
            steps[i] = mark
    failed = "failed" in steps
    if p.saga:
        if failed:
            done = steps[0] == "undone"
            return Progress(tuple(steps), done, "compensated" if done else "")
        done = all(steps[i] == "done" for i in p.sinks)
        return Progress(tuple(steps), done, "completed" if done else "")
    done = all(s != "pending" for s in steps)
    return Progress(tuple(steps), done, ("completed" if all(s == "done" for s in steps) else "failed") if done else "")


def outcome_sequence(state: WorkflowState, style: str) -> list[str]:
    """The ledger as T1..Tn / C1..Cn names (1-based step numbers)."""
    return [f"{e.kind}{e.step + 1}" for e in state.side(style).ledger]


def comparison(state: WorkflowState) -> dict[str, Any]:
    """The comparison strip: per style, messages sent, time to completion, who knew the outcome
    when, what was compensated, and how many times each step's effect was committed."""
    out: dict[str, Any] = {}
    p = state.proc
    for style in ("orch", "chor"):
        side = state.side(style)
        counts = {s.name: sum(1 for e in side.ledger if e.kind == "T" and e.step == i) for i, s in enumerate(p.steps)}
        out[style] = {
            "messages": side.messages,
            "lost": side.lost,
            "outcome": side.outcome,
            "time_ms": side.finished_at - state.started_at if side.finished_at >= 0 else None,
            "knew": [list(k) for k in side.knew],
            "compensated": [p.steps[e.step].name for e in side.ledger if e.kind == "C"],
            "effects": counts,
            "doubled": [n for n, c in counts.items() if c > 1],
        }
    return out
