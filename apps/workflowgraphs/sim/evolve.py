"""``evolve(state, event)``: one event folded into a new state, as a table of small functions
(``EVOLVE``). Every chance outcome is in the event already; nothing here draws or decides.

Events of a style's run first apply their ``Moves`` (flights added and removed, messages counted,
each message added to that style's trace for the space-time diagram), then their own change.
"""
from __future__ import annotations

from bisect import insort

from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from apps.common.sim.network import message
from apps.common.sim.trace import Bound, Episode

from . import airflow
from .events import (
    BusFaultSet,
    ClockAdvanced,
    CommandHandled,
    CommandSent,
    EventDeferred,
    EventHandled,
    EventRouted,
    FlightData,
    IdempotencySet,
    Moves,
    OrchestratorRestarted,
    OriginDone,
    PolicySet,
    Published,
    ReplyReceived,
    ReplyTimedOut,
    RequestAnswered,
    RequestExpired,
    RequestHeld,
    RunStarted,
    SagaFinished,
    SceneLoaded,
    SeatsCleared,
    SeatTaken,
    ServiceCrashed,
    ServiceRestarted,
    ServiceSlowed,
    StepFailSet,
    TaskMarked,
    UndoFailSet,
)
from .retry import RetryPolicy
from .state import Answer, Ask, BusRecord, Effect, Flight, HistoryEntry, Service, Side, WorkflowState, initial_state

Event = dict[str, Any]
TRACE = Bound(episodes=40, messages=120)
MESSAGE_KINDS = frozenset({"command", "reply", "publish", "deliver"})
EPISODE_MESSAGES = 6


def evolve(state: WorkflowState, event: Event) -> WorkflowState:
    kind, data = event["kind"], event["data"]
    fold = EVOLVE.get(kind)
    if fold is None:
        raise ValueError(f"unknown workflow event {kind!r}")
    if "add" in data:
        state = _moves(state, kind, cast(Moves, data))
    return fold(state, data)


# -- helpers ---------------------------------------------------------------------------------

def flight(d: FlightData) -> Flight:
    return Flight(**d)


def _moves(state: WorkflowState, kind: str, m: Moves) -> WorkflowState:
    gone = set(m["remove"])
    added = [flight(d) for d in m["add"]]
    # The flights stay sorted by (arrival, id): the kept ones already are, the few added go in.
    flights = [f for f in state.flights if f.id not in gone] if gone else list(state.flights)
    for f in added:
        insort(flights, f, key=_arrival)
    side = state.side(m["style"])
    trace = side.trace
    for f in added:
        if f.kind in MESSAGE_KINDS:
            msg = message(f.kind, f.op, f.frm, f.to, f.sent, f.at, "ok" if f.ok else "failed")
            trace = trace.add(Episode(0, kind, f.op, f.sent, f.at, f.frm, (msg,), ok=f.ok), TRACE, _overlapping)
    side = replace(side, messages=side.messages + m["sent"], lost=side.lost + m["lost"], trace=trace)
    next_id = max(state.next_id, m["next_id"])
    if m["style"] == "orch":  # one copy of the state, not two
        return replace(state, orch=side, flights=tuple(flights), next_id=next_id)
    return replace(state, chor=side, flights=tuple(flights), next_id=next_id)


def _arrival(f: Flight) -> tuple[int, int]:
    return (f.at, f.id)


def _overlapping(last: Episode, new: Episode) -> Episode | None:
    """A message sent while the newest episode's are still on their way joins that episode (a
    few at most): one slot of the space-time diagram holds a flurry, not one arrow."""
    if new.start >= last.end or len(last.messages) >= EPISODE_MESSAGES:
        return None
    n = len(last.messages) + 1
    head = last.label.split(" +")[0]
    return replace(last, end=max(last.end, new.end), messages=last.messages + new.messages, label=f"{head} +{n - 1}",
                   ok=bool(last.ok) and bool(new.ok))


def _with_side(state: WorkflowState, style: str, side: Side) -> WorkflowState:
    return replace(state, orch=side) if style == "orch" else replace(state, chor=side)


def _service(side: Side, name: str, **changes: Any) -> Side:
    return replace(side, services=tuple(replace(s, **changes) if s.name == name else s for s in side.services))


def _both(state: WorkflowState, name: str, **changes: Any) -> WorkflowState:
    return replace(state, orch=_service(state.orch, name, **changes), chor=_service(state.chor, name, **changes))


def _set(values: tuple[str, ...], i: int, *steps: str) -> tuple[str, ...]:
    """The Airflow state of task ``i`` walked through ``steps``, each move checked."""
    return values[:i] + (airflow.path(values[i], *steps),) + values[i + 1:]


def _effect(side: Side, kind: str, step: int, service: str, at: int, key: str) -> Side:
    return replace(side, ledger=side.ledger + (Effect(kind, step, service, at, key),))


def _did(svc: Service, action: str, step: int) -> dict[str, Any]:
    """The service's own record after it did (``do``) or undid a step."""
    if action == "do":
        return {"done": svc.done + (step,)}
    return {"done": tuple(x for x in svc.done if x != step), "undone": svc.undone + (step,)}


def _history(side: Side, kind: str, step: int, action: str, attempt: int, at: int, note: str = "") -> Side:
    return replace(side, history=side.history + (HistoryEntry(kind, step, action, attempt, at, note),))


# -- presenter's commands ----------------------------------------------------------------------

def _scene_loaded(state: WorkflowState, d: SceneLoaded) -> WorkflowState:
    return initial_state(d["params"])


def _run_started(state: WorkflowState, d: RunStarted) -> WorkflowState:
    return replace(state, started=True, started_at=d["at"])


def _clock_advanced(state: WorkflowState, d: ClockAdvanced) -> WorkflowState:
    return replace(state, now_ms=d["to"])


def _step_fail_set(state: WorkflowState, d: StepFailSet) -> WorkflowState:
    rest = tuple(x for x in state.fail_steps if x != d["step"])
    return replace(state, fail_steps=tuple(sorted(rest + ((d["step"],) if d["on"] else ()))))


def _undo_fail_set(state: WorkflowState, d: UndoFailSet) -> WorkflowState:
    rest = tuple(x for x in state.undo_failures if x[0] != d["step"])
    return replace(state, undo_failures=tuple(sorted(rest + (((d["step"], d["times"]),) if d["times"] else ()))))


def _service_crashed(state: WorkflowState, d: ServiceCrashed) -> WorkflowState:
    return _both(state, d["service"], up=False)


def _service_restarted(state: WorkflowState, d: ServiceRestarted) -> WorkflowState:
    return _both(state, d["service"], up=True, backlog=())


def _service_slowed(state: WorkflowState, d: ServiceSlowed) -> WorkflowState:
    return _both(state, d["service"], slow_ms=d["ms"])


def _orchestrator_crashed(state: WorkflowState, d: Moves) -> WorkflowState:
    return replace(state, orch=replace(state.orch, up=False))


def _orchestrator_restarted(state: WorkflowState, d: OrchestratorRestarted) -> WorkflowState:
    return replace(state, orch=replace(state.orch, up=True))


def _bus_fault_set(state: WorkflowState, d: BusFaultSet) -> WorkflowState:
    arm = ((d["topic"], d["fault"]),)
    return replace(state, orch=replace(state.orch, armed=state.orch.armed + arm),
                   chor=replace(state.chor, armed=state.chor.armed + arm))


def _idempotency_set(state: WorkflowState, d: IdempotencySet) -> WorkflowState:
    return replace(state, idempotency=d["on"])


def _policy_set(state: WorkflowState, d: PolicySet) -> WorkflowState:
    return replace(state, policy=RetryPolicy(**d["policy"]))


# -- both styles -------------------------------------------------------------------------------

def _used_faults(side: Side, published: list[Published]) -> Side:
    for p in published:
        if p["fault"]:
            side = replace(side, armed=_disarm(side.armed, p["topic"], p["fault"]))
    return side


def _origin_done(state: WorkflowState, d: OriginDone) -> WorkflowState:
    side = _used_faults(state.side(d["style"]), d["published"])
    svc = side.service(d["service"])
    if not d["ok"]:
        return _with_side(state, d["style"], _service(side, svc.name, failed=svc.failed + (d["step"],)))
    side = _effect(_service(side, svc.name, **_did(svc, "do", d["step"])), "T", d["step"], svc.name, d["at"],
                   d["event_id"])
    if d["style"] == "orch":
        side = _history(side, "started", d["step"], "do", 1, d["at"])
        side = _history(side, "succeeded", d["step"], "do", 1, d["at"])
        side = replace(side, ti=_set(side.ti, d["step"], "scheduled", "queued", "running", "success"))
    return _with_side(state, d["style"], side)


def _saga_finished(state: WorkflowState, d: SagaFinished) -> WorkflowState:
    side = state.side(d["style"])
    side = replace(side, outcome=d["outcome"], finished_at=d["at"], knew=tuple((str(w), int(t)) for w, t in d["knew"]))
    if d["style"] == "orch":
        side = _history(side, "finished", -1, "", 0, d["at"], d["outcome"])
        undo = side.undo_ti
        for i, s in enumerate(undo):
            if s == "none" and state.proc.compensable(i):
                undo = _set(undo, i, "skipped")
        side = replace(side, undo_ti=undo)
    return _with_side(state, d["style"], side)


# -- the orchestrated run ----------------------------------------------------------------------

def _command_sent(state: WorkflowState, d: CommandSent) -> WorkflowState:
    side, i = state.orch, d["step"]
    tasks = side.ti if d["action"] == "do" else side.undo_ti
    walk: tuple[str, ...] = ("scheduled", "queued", "running")
    if tasks[i] == "running":  # the orchestrator restarted while the task ran: Airflow restarts it
        walk = ("restarting", "none") + walk
    tasks = _set(tasks, i, *walk)
    side = replace(side, ti=tasks) if d["action"] == "do" else replace(side, undo_ti=tasks)
    side = _history(side, "sent", i, d["action"], d["attempt"], d["at"], "recovered" if d["recovered"] else "")
    return replace(state, orch=side)


def _command_handled(state: WorkflowState, d: CommandHandled) -> WorkflowState:
    side = state.orch
    if d["fault"]:
        side = replace(side, armed=_disarm(side.armed, d["topic"], d["fault"]))
    svc = side.service(d["service"])
    keep = state.idempotency and not d["duplicate"] and (d["ok"] or d["action"] == "do")  # a failed undo is tried again
    seen = svc.seen + ((d["key"],) if keep else ())
    changes: dict[str, Any] = {"seen": seen}
    if d["applied"]:
        changes.update(_did(svc, d["action"], d["step"]))
        side = _effect(side, "T" if d["action"] == "do" else "C", d["step"], svc.name, d["at"], d["key"])
    elif not d["ok"] and d["action"] == "do" and not d["duplicate"]:
        changes["failed"] = svc.failed + (d["step"],)
    elif not d["ok"] and d["action"] == "undo":
        changes["undo_tries"] = _bump(svc.undo_tries, d["step"])
    return replace(state, orch=_service(side, svc.name, **changes))


def _bump(tries: tuple[tuple[int, int], ...], step: int) -> tuple[tuple[int, int], ...]:
    n = dict(tries).get(step, 0) + 1
    return tuple(sorted({**dict(tries), step: n}.items()))


def _reply_received(state: WorkflowState, d: ReplyReceived) -> WorkflowState:
    if d["stale"]:
        return state
    side, i, action = state.orch, d["step"], d["action"]
    tasks = side.ti if action == "do" else side.undo_ti
    if d["ok"]:
        side = _history(side, "succeeded", i, action, d["attempt"], d["at"])
        tasks = _set(tasks, i, "success")
    elif action == "do":
        side = _history(side, "failed", i, action, d["attempt"], d["at"], "business error")
        tasks = _set(tasks, i, "failed")
    else:
        side = _history(side, "timed_out", i, action, d["attempt"], d["at"], "compensation failed")
        tasks = _set(tasks, i, "up_for_retry")
    side = replace(side, ti=tasks) if action == "do" else replace(side, undo_ti=tasks)
    return replace(state, orch=side)


def _reply_timed_out(state: WorkflowState, d: ReplyTimedOut) -> WorkflowState:
    side, i, action = state.orch, d["step"], d["action"]
    note = "retry" if d["retry"] else "gave up"
    side = _history(side, "timed_out", i, action, d["attempt"], d["at"], note)
    tasks = side.ti if action == "do" else side.undo_ti
    if d["retry"]:
        tasks = _set(tasks, i, "up_for_retry")
        side = replace(side, ti=tasks) if action == "do" else replace(side, undo_ti=tasks)
    else:
        side = _history(side, "failed", i, action, d["attempt"], d["at"], "no reply")
        tasks = _set(tasks, i, "failed")
        side = replace(side, ti=tasks) if action == "do" else replace(side, undo_ti=tasks)
    return replace(state, orch=side)


def _task_marked(state: WorkflowState, d: TaskMarked) -> WorkflowState:
    side = state.orch
    side = _history(side, "marked", d["step"], "do", 0, d["at"], d["state"])
    return replace(state, orch=replace(side, ti=_set(side.ti, d["step"], d["state"])))


# -- the choreographed run ---------------------------------------------------------------------

def _event_handled(state: WorkflowState, d: EventHandled) -> WorkflowState:
    side = _used_faults(state.chor, d["published"])
    svc = side.service(d["service"])
    changes: dict[str, Any] = {}
    if state.idempotency and d["reaction"] != "duplicate" and d["event_id"]:
        changes["seen"] = svc.seen + (d["event_id"],)
    if d["reaction"] in ("do", "wait", "mark"):
        changes["heard"] = svc.heard + ((d["from_step"], d["outcome"]),)
    if d["reaction"] == "mark":
        changes["marked"] = svc.marked + ((d["step"], d["mark"]),)
    if d["applied"]:
        action = "do" if d["reaction"] == "do" else "undo"
        changes.update(_did(svc, action, d["step"]))
        side = _effect(side, "T" if action == "do" else "C", d["step"], svc.name, d["at"], d["event_id"])
    elif d["reaction"] == "do" and not d["ok"]:
        changes["failed"] = svc.failed + (d["step"],)
    elif d["reaction"] == "undo" and not d["ok"]:
        changes["undo_tries"] = _bump(svc.undo_tries, d["step"])
    return replace(state, chor=_service(side, svc.name, **changes))


def _event_routed(state: WorkflowState, d: EventRouted) -> WorkflowState:
    side = state.chor
    rec = BusRecord(d["event_id"], d["topic"], d["publisher"], d["step"], d["outcome"], d["at"])
    armed = side.armed
    if d["fault"]:
        armed = _disarm(armed, d["topic"], d["fault"])
    return replace(state, chor=replace(side, bus_log=side.bus_log + (rec,), armed=armed))


def _disarm(armed: tuple[tuple[str, str], ...], topic: str, fault: str) -> tuple[tuple[str, str], ...]:
    i = armed.index((topic, fault))
    return armed[:i] + armed[i + 1:]


def _event_deferred(state: WorkflowState, d: EventDeferred) -> WorkflowState:
    svc = state.chor.service(d["service"])
    return replace(state, chor=_service(state.chor, svc.name, backlog=svc.backlog + (flight(d["parked"]),)))


def _moved_only(state: WorkflowState, d: Moves) -> WorkflowState:
    return state


# -- the class round: students are the services --------------------------------------------------

def _seat_taken(state: WorkflowState, d: SeatTaken) -> WorkflowState:
    return replace(state, seats=state.seats + ((d["name"], d["service"]),))


def _seats_cleared(state: WorkflowState, d: SeatsCleared) -> WorkflowState:
    return replace(state, seats=(), answers=())


def _request_held(state: WorkflowState, d: RequestHeld) -> WorkflowState:
    ask = Ask(id=d["ask"]["id"], held=flight(d["ask"]), step=d["step"], due=d["due"], timer=d["timer"])
    return replace(state, asks=state.asks + (ask,))


def _request_answered(state: WorkflowState, d: RequestAnswered) -> WorkflowState:
    answer = Answer(d["name"], d["service"], d["style"], d["step"], d["ok"], d["at"])
    return replace(state, asks=tuple(a for a in state.asks if a.id != d["ask"]), answers=state.answers + (answer,))


def _request_expired(state: WorkflowState, d: RequestExpired) -> WorkflowState:
    return replace(state, asks=tuple(a for a in state.asks if a.id != d["ask"]))


EVOLVE: dict[str, Callable[[WorkflowState, Any], WorkflowState]] = {
    "scene_loaded": _scene_loaded,
    "run_started": _run_started,
    "clock_advanced": _clock_advanced,
    "step_fail_set": _step_fail_set,
    "undo_fail_set": _undo_fail_set,
    "service_crashed": _service_crashed,
    "service_restarted": _service_restarted,
    "service_slowed": _service_slowed,
    "orchestrator_crashed": _orchestrator_crashed,
    "orchestrator_restarted": _orchestrator_restarted,
    "bus_fault_set": _bus_fault_set,
    "idempotency_set": _idempotency_set,
    "policy_set": _policy_set,
    "origin_done": _origin_done,
    "command_sent": _command_sent,
    "command_handled": _command_handled,
    "reply_received": _reply_received,
    "reply_timed_out": _reply_timed_out,
    "task_marked": _task_marked,
    "saga_finished": _saga_finished,
    "message_lost": _moved_only,
    "event_handled": _event_handled,
    "event_routed": _event_routed,
    "event_deferred": _event_deferred,
    "event_republished": _moved_only,
    "seat_taken": _seat_taken,
    "seats_cleared": _seats_cleared,
    "request_held": _request_held,
    "request_answered": _request_answered,
    "request_expired": _request_expired,
}
