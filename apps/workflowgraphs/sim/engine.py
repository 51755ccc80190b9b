"""The run's engine, on the deciding side: what a participant does next, as events.

:func:`move` says what a participant does on its own (the orchestrator's next command, an early
mark by a trigger rule, the saga's end); ``handlers.HANDLE`` what each due flight does;
``advance.advance`` runs both in turn up to a time. Every chance outcome (a lost message) is
drawn here from the network (``apps.common.sim.network``) and written into the event.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apps.common.sim.network import Links, Network

from . import airflow
from .events import FlightData, Published
from .process import Process
from .state import BUS, ORCHESTRATOR, RECONCILER, Flight, HistoryEntry, Service, Side, WorkflowState
from .summary import reconstruct

Event = dict[str, Any]


def network(state: WorkflowState, salt: object) -> Network:
    links = Links(default_ms=state.settings.latency_ms, loss=state.settings.loss)
    return Network(links, seed=f"{state.seed}:{salt}")


@dataclass
class Out:
    """The flights one event adds: ids from the state's next free id, messages counted."""

    state: WorkflowState
    style: str
    net: Network
    at: int
    next_id: int = 0
    add: list[FlightData] = field(default_factory=list)
    sent: int = 0
    lost: int = 0

    def __post_init__(self) -> None:
        self.next_id = self.state.next_id

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def flight(self, kind: str, frm: str, to: str, sent: int, at: int, op: str, step: int = -1, action: str = "do",
               key: str = "", attempt: int = 1, ok: bool = True) -> FlightData:
        f: FlightData = {"id": self.new_id(), "style": self.style, "kind": kind, "frm": frm, "to": to, "sent": sent,
                         "at": at, "op": op, "step": step, "action": action, "key": key, "attempt": attempt, "ok": ok}
        self.add.append(f)
        return f

    def send(self, kind: str, frm: str, to: str, sent: int, op: str, lose: bool = False, extra_ms: int = 0,
             **kw: Any) -> bool:
        """A message over the network: False when it is lost (an armed fault or the link's loss)."""
        self.sent += 1
        arrives = None if lose else self.net.delivery(frm, to, sent)
        if arrives is None:
            self.lost += 1
            return False
        self.flight(kind, frm, to, sent, arrives + extra_ms, op, **kw)
        return True

    def moves(self, remove: list[int] | None = None) -> dict[str, Any]:
        return {"style": self.style, "add": self.add, "remove": remove or [], "next_id": self.next_id,
                "sent": self.sent, "lost": self.lost, "at": self.at}


def ev(kind: str, **data: Any) -> Event:
    return {"kind": kind, "data": data}


def armed(side: Side, topic: str, faults: tuple[str, ...]) -> str:
    return next((f for t, f in side.armed if t == topic and f in faults), "")


def busy_ms(state: WorkflowState, svc: Service) -> int:
    return state.settings.process_ms + svc.slow_ms


# -- the orchestrator ----------------------------------------------------------------------------

def last_entry(side: Side, step: int, action: str) -> HistoryEntry | None:
    return next((h for h in reversed(side.history) if h.step == step and h.action == action and h.kind != "marked"),
                None)


def awaiting(side: Side, step: int, action: str) -> bool:
    """Sent and not yet answered for good (waiting for a reply, or for the next try)."""
    h = last_entry(side, step, action)
    return h is not None and (h.kind == "sent" or (h.kind == "timed_out" and h.note != "gave up"))


def awaiting_reply(side: Side, step: int, action: str) -> bool:
    """Waiting for a reply to its last command (a reply that comes while it waits to try again
    is dropped: the retry will ask again, as Temporal drops a late activity result)."""
    h = last_entry(side, step, action)
    return h is not None and h.kind == "sent"


def has_timer(state: WorkflowState, step: int, action: str) -> bool:
    return any(f.style == "orch" and f.to == ORCHESTRATOR and f.kind in ("timeout", "retry") and f.step == step
               and f.action == action for f in state.flights)


def idem_key(p: Process, step: int, action: str) -> str:
    return f"{p.name}:{p.steps[step].name}:{action}"


def reply_timeout(state: WorkflowState, step: int, action: str) -> int:
    """How long the orchestrator waits for a reply: longer by the students' time limit when a
    student answers for the service (the class round)."""
    p = state.proc
    asks = action == "do" and p.decidable(step) and state.seated(p.steps[step].service)
    return state.settings.reply_timeout_ms + (state.settings.answer_ms if asks else 0)


def command_sent(state: WorkflowState, net: Network, at: int, step: int, action: str, attempt: int,
                 recovered: bool = False, remove: list[int] | None = None) -> Event:
    p = state.proc
    s = p.steps[step]
    out = Out(state, "orch", net, at)
    key = idem_key(p, step, action)
    op = s.command if action == "do" else s.undo
    out.send("command", ORCHESTRATOR, s.service, at, op, step=step, action=action, key=key, attempt=attempt)
    out.flight("timeout", ORCHESTRATOR, ORCHESTRATOR, at, at + reply_timeout(state, step, action), op, step, action,
               key, attempt)
    return ev("command_sent", **out.moves(remove), step=step, action=action, attempt=attempt, key=key,
              recovered=recovered)


def _recover(state: WorkflowState, net: Network, at: int) -> Event | None:
    """After a restart: every step sent and unanswered with no timer running is asked again."""
    last: dict[tuple[int, str], HistoryEntry] = {}
    for h in state.orch.history:
        if h.kind != "marked" and h.step >= 0:
            last[(h.step, h.action)] = h
    timers = {(f.step, f.action) for f in state.flights
              if f.style == "orch" and f.to == ORCHESTRATOR and f.kind in ("timeout", "retry")}
    for (step, action), h in sorted(last.items()):
        waiting = h.kind == "sent" or (h.kind == "timed_out" and h.note != "gave up")
        if waiting and (step, action) not in timers:
            return command_sent(state, net, at, step, action, h.attempt + 1, recovered=True)
    return None


def _origin(state: WorkflowState, net: Network, at: int, style: str) -> Event | None:
    p, side = state.proc, state.side(style)
    for i, s in enumerate(p.steps):
        starts = s.origin or (style == "chor" and not s.upstream)  # a root step of a DAG starts by itself
        if starts and not any(e.step == i for e in side.ledger) and i not in side.service(s.service).failed:
            out = Out(state, style, net, at)
            published: list[Published] = []
            ok = s.origin or i not in state.fail_steps
            topic = s.done_topic if ok else s.failed_topic
            event_id = f"{topic}#{out.new_id()}"
            if style == "chor":
                published.append(publish(state, out, s.service, at, topic, event_id, i, "done" if ok else "failed"))
            return ev("origin_done", **out.moves(), step=i, service=s.service, topic=topic, event_id=event_id,
                      published=published, ok=ok)
    return None


def _forward(state: WorkflowState, at: int, net: Network) -> Event | None:
    p, ti = state.proc, state.orch.ti
    for i, s in enumerate(p.steps):
        if ti[i] != "none" or s.origin:
            continue
        ups = [ti[u] for u in p.upstream_of(i)]
        if ups and s.trigger_rule != "always" and not any(x in airflow.FINISHED for x in ups):
            continue  # nothing upstream has finished: every rule but "always" waits
        outcome = airflow.trigger_for(s.trigger_rule, ups)
        if outcome == "run":
            return command_sent(state, net, at, i, "do", 1)
        if outcome in ("skipped", "upstream_failed"):
            return ev("task_marked", style="orch", step=i, state=outcome, at=at, rule=s.trigger_rule, upstream=ups)
    return None


def undo_order(state: WorkflowState) -> list[int]:
    """The steps to compensate, in reverse order of completion: every compensable step the
    orchestrator recorded as done, and one whose reply never came (it may be done: the service
    compensates only what it did)."""
    p, side = state.proc, state.orch
    done = [h.step for h in side.history if h.action == "do" and (h.kind == "succeeded" or h.note == "no reply")]
    return [i for i in reversed(list(dict.fromkeys(done))) if p.compensable(i)]


def _compensate(state: WorkflowState, at: int, net: Network) -> Event | None:
    side = state.orch
    if not state.proc.saga or "failed" not in side.ti:
        return None
    if any(s in ("scheduled", "queued", "running", "up_for_retry") for s in side.undo_ti + side.ti):
        return None
    todo = [i for i in undo_order(state) if side.undo_ti[i] == "none"]
    if todo:
        return command_sent(state, net, at, todo[0], "undo", 1)
    return finished(state, "orch", at, "compensated")


def _complete(state: WorkflowState, at: int) -> Event | None:
    side = state.orch
    if any(s not in airflow.FINISHED for s in side.ti) or (state.proc.saga and "failed" in side.ti):
        return None
    if any(f.style == "orch" and f.to == ORCHESTRATOR and f.kind in ("timeout", "retry") for f in state.flights):
        return None
    return finished(state, "orch", at, "completed" if all(s == "success" for s in side.ti) else "failed")


def finished(state: WorkflowState, style: str, at: int, outcome: str) -> Event:
    side = state.side(style)
    knew: list[list[Any]] = []
    if side.ledger:
        knew.append([side.ledger[-1].service, side.ledger[-1].at])
    knew.append([ORCHESTRATOR if style == "orch" else "tracing (bus log)", at])
    return ev("saga_finished", style=style, outcome=outcome, at=at, knew=knew)


def _orchestrator(state: WorkflowState, net: Network, at: int) -> Event | None:
    if not state.orch.up or state.orch.outcome:
        return None
    return (_origin(state, net, at, "orch") or _recover(state, net, at) or _forward(state, at, net)
            or _compensate(state, at, net) or _complete(state, at))


def _choreography(state: WorkflowState, net: Network, at: int) -> Event | None:
    if state.chor.outcome:
        return None
    origin = _origin(state, net, at, "chor")
    if origin is not None:
        return origin
    r = reconstruct(state.proc, state.chor.bus_log, state.chor.services)
    return finished(state, "chor", at, r.outcome) if r.finished else None


def move(state: WorkflowState, net: Network, at: int) -> Event | None:
    """What a participant does now on its own, if anything."""
    if not state.started:
        return None
    return _orchestrator(state, net, at) or _choreography(state, net, at)


# -- publishing (choreography) ---------------------------------------------------------------------

def publish(state: WorkflowState, out: Out, service: str, at: int, topic: str, event_id: str, step: int,
            outcome: str) -> Published:
    """The service publishes an event to the bus. An armed "lose" fault (or the network) loses
    it; then the outbox relay (idempotency on) or the reconciler (off) publishes it again later."""
    fault = armed(state.chor, topic, ("lose",))
    ok = out.send("publish", service, BUS, at, topic, lose=bool(fault), step=step, action=outcome, key=event_id)
    if not ok:
        by, delay = ("relay", state.settings.relay_ms) if state.idempotency else ("reconcile", state.settings.reconcile_ms)
        out.flight(by, service, service if by == "relay" else RECONCILER, at, at + delay, topic, step, outcome,
                   event_id)
    return {"topic": topic, "event_id": event_id, "step": step, "outcome": outcome, "lost": not ok, "fault": fault}


Handler = Callable[[WorkflowState, Flight, Network], Event]
