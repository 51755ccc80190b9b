"""Each event in one plain sentence (``NARRATE``: kind -> a small function of (before, after,
data)). Every number is read from the event or the state after it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .classroom import done_verb
from .state import WorkflowState

Say = Callable[[WorkflowState, WorkflowState, Any], str]
STYLE = {"orch": "Orchestrated", "chor": "Choreographed"}



def _count(n: int, word: str) -> str:
    """"1 time", "2 times": a number and its noun, as a person would say it."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _the_students(n: int) -> str:
    return "the one student" if n == 1 else f"the {n:,} students"

def _name(s: WorkflowState, i: int) -> str:
    return s.proc.steps[i].name if 0 <= i < len(s.proc.steps) else "?"


def _lost(d: Any) -> str:
    return f" ({d['lost']} lost on the way)" if d.get("lost") else ""


def _scene(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return (f"Scene loaded: {a.proc.title}, {len(a.proc.steps)} steps over {len(a.proc.services)} services, "
            f"idempotency {'on' if a.idempotency else 'off'}, {a.policy.kind} retries.")


def _started(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return f"The run starts at t={d['at']:,} ms, in both styles at once."


def _clock(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return (f"The clock moves to t={d['to']:,} ms: {len(a.flights)} messages and timers are on their way "
            f"({a.orch.messages} messages sent orchestrated, {a.chor.messages} choreographed).")


def _fail_set(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    verb = "will refuse" if d["on"] else "no longer refuses"
    return f"{a.proc.steps[d['step']].service} {verb} {_name(a, d['step'])} (a business error, like a declined card)."


def _undo_fail(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return f"The compensation of {_name(a, d['step'])} will fail {_count(d['times'], 'time')} before it succeeds."


def _svc(verb: str) -> Say:
    return lambda b, a, d: f"{d['service']} {verb}."


def _restarted(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return f"{d['service']} restarts; the bus delivers the {_count(len(d['add']), 'event')} it kept while it was down."


def _slowed(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return f"{d['service']} now takes {d['ms']:,} ms longer for each request."


def _orch_crashed(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return (f"The orchestrator crashes, losing {_count(len(d['remove']), 'timer')}; its history of "
            f"{len(a.orch.history)} records is safe on disk.")


def _orch_restarted(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    done = ", ".join(_name(a, i) for i in d["completed"]) or "none"
    return (f"The orchestrator restarts and replays its {d['replayed']} history records: completed steps ({done}) "
            f"are not run again; {_count(len(d['pending']), 'unanswered step')} will be asked again.")


def _bus_fault(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return f"The next {d['topic']} message will be {'lost' if d['fault'] == 'lose' else d['fault'] + 'd'}, in both styles."


def _idem(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return ("Idempotency keys and an outbox are on: a repeated message is answered, not redone." if d["on"]
            else "Idempotency is off: a repeated message is processed again.")


def _policy(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    p = a.policy
    if p.kind == "temporal":
        return (f"Retries follow Temporal: {p.initial_ms:,} ms, x{p.coefficient:g} per attempt, at most "
                f"{p.temporal_max_ms:,} ms, {p.maximum_attempts or 'unlimited'} attempts.")
    return (f"Retries follow Airflow: {p.retries} retries, retry_delay {p.retry_delay_ms:,} ms, exponential backoff "
            f"{'on' if p.exponential else 'off'}.")


def _origin(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    also = f" and publishes {d['topic']}" if d["style"] == "chor" else " and starts the orchestrator"
    verb = "does" if d["ok"] else "fails"
    return f"{STYLE[d['style']]}: {d['service']} {verb} {_name(a, d['step'])} at t={d['at']:,} ms{also}."


def _sent(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    s = a.proc.steps[d["step"]]
    op = s.command if d["action"] == "do" else s.undo
    again = " again after replaying its history" if d["recovered"] else ""
    return (f"Orchestrated: the orchestrator sends {op} to {s.service}{again} (attempt {d['attempt']}) at "
            f"t={d['at']:,} ms{_lost(d)}.")


def _handled(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    what = ("answers again without redoing it (key seen)" if d["duplicate"] else
            "has nothing to undo" if d["noop"] else "commits it" if d["applied"] else "refuses it" if d["action"] == "do"
            else "fails to compensate")
    n = sum(1 for e in a.orch.ledger if e.step == d["step"] and e.kind == ("T" if d["action"] == "do" else "C"))
    return f"Orchestrated: {d['service']} {what} and replies {d['topic']}; it has done this {_count(n, 'time')}{_lost(d)}."


def _reply(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    if d["stale"]:
        return f"Orchestrated: a reply about {_name(a, d['step'])} arrives when nothing waits for it; it is ignored."
    if d["retry_wait_ms"]:
        return f"Orchestrated: the compensation of {_name(a, d['step'])} failed; {d['how']}, then it tries again."
    verb = "succeeded" if d["ok"] else "failed"
    return f"Orchestrated: the orchestrator records that {_name(a, d['step'])} ({d['action']}) {verb}."


def _timed_out(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    head = f"Orchestrated: no reply for {_name(a, d['step'])} (attempt {d['attempt']}) by t={d['at']:,} ms"
    return f"{head}; {d['how']}." if d["retry"] else f"{head}; no retries left, the step has failed."


def _marked(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    ups = ", ".join(d["upstream"]) or "none"
    return f"Orchestrated: trigger rule {d['rule']} on upstream ({ups}) marks {_name(a, d['step'])} {d['state']}."


def _finished(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    side = a.side(d["style"])
    took = d["at"] - a.started_at
    what = f"the saga is {d['outcome']}" if a.proc.saga else f"the run {'has failed' if d['outcome'] == 'failed' else 'is ' + d['outcome']}"
    return (f"{STYLE[d['style']]}: {what} at t={d['at']:,} ms, {took:,} ms after the start, "
            f"after {side.messages} messages; {_count(len([e for e in side.ledger if e.kind == 'C']), 'compensation')}.")


def _msg_lost(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return f"{STYLE[d['style']]}: {d['op']} reaches {d['to']} but is lost: {d['why']}."


def _ev_handled(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    who, step = d["service"], _name(a, d["step"])
    pub = ", ".join(p["topic"] + (" (lost)" if p["lost"] else "") for p in d["published"])
    says: dict[str, str] = {
        "duplicate": f"{who} has seen {d['event_id']} before and ignores it",
        "wait": f"{who} notes {d['topic']} and waits for the rest of {step}'s upstream",
        "mark": f"{who} marks {step} {d['mark']} by its trigger rule",
        "none": f"{who} ignores {d['topic']}",
        "do": f"{who} {'does' if d['ok'] else 'fails'} {step} and publishes {pub}",
        "undo": (f"{who} compensates {step} and publishes {pub}" if d["ok"] and d["applied"] else
                 f"{who} has nothing of {step} to undo" + (f" and publishes {pub}" if pub else "") if d["ok"] else
                 f"{who} fails to compensate {step}; {d['how']}"),
    }
    n = sum(1 for e in a.chor.ledger if e.step == d["step"] and e.kind == "T")
    times = f" ({step} done {_count(n, 'time')} here)" if d["reaction"] == "do" else ""
    return f"Choreographed: {says[d['reaction']]}{times}."


def _routed(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    fault = f", {d['fault']}d by the bus" if d["fault"] else ""
    subs = ", ".join(d["subscribers"]) or "no subscriber"
    return f"Choreographed: the bus takes {d['topic']} from {d['publisher']} and delivers it to {subs}{fault}."


def _deferred(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return f"Choreographed: {d['service']} is down; the bus keeps {d['topic']} for it."


def _republished(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    again = " and it is lost again" if d["lost_again"] else ""
    return f"Choreographed: the {d['by']} publishes {d['topic']} again at t={d['at']:,} ms{again}."


# -- the class round: students are the services --------------------------------------------------

def _students(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _seat(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    n = sum(1 for _, svc in a.seats if svc == d["service"])
    share = f" ({n} students share it: the first to answer decides)" if n > 1 else ""
    return f"{d['name']} is {d['service']}: its requests now wait for a student's answer{share}."


def _seats_cleared(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    return f"A new class round: {_the_students(d['seats'])} give back their services, which decide by themselves again."


def _held(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    what = "the command" if d["style"] == "orch" else "the event"
    return (f"{STYLE[d['style']]}: {what} {d['ask']['op']} reaches {d['service']}, which waits for "
            f"{_students(d['students'])} to answer by t={d['due']:,} ms.")


def _answered(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    verb = done_verb(_name(a, d["step"]), d["ok"])
    return f"{STYLE[d['style']]}: {d['name']}, as {d['service']}, {verb} ({d['op']}) at t={d['at']:,} ms."


def _expired(b: WorkflowState, a: WorkflowState, d: Any) -> str:
    head = f"{STYLE[d['style']]}: nobody answered {d['op']} at {d['service']} by t={d['at']:,} ms"
    if d["redelivered"]:
        return f"{head}: the event was never acknowledged, so the bus delivers it again."
    return f"{head}: {d['service']} gives no reply; the orchestrator's own timeout decides what follows."


NARRATE: dict[str, Say] = {
    "scene_loaded": _scene, "run_started": _started, "clock_advanced": _clock, "step_fail_set": _fail_set,
    "undo_fail_set": _undo_fail, "service_crashed": _svc("crashes"), "service_restarted": _restarted,
    "service_slowed": _slowed, "orchestrator_crashed": _orch_crashed, "orchestrator_restarted": _orch_restarted,
    "bus_fault_set": _bus_fault, "idempotency_set": _idem, "policy_set": _policy, "origin_done": _origin,
    "command_sent": _sent, "command_handled": _handled, "reply_received": _reply, "reply_timed_out": _timed_out,
    "task_marked": _marked, "saga_finished": _finished, "message_lost": _msg_lost, "event_handled": _ev_handled,
    "event_routed": _routed, "event_deferred": _deferred, "event_republished": _republished,
    "seat_taken": _seat, "seats_cleared": _seats_cleared, "request_held": _held, "request_answered": _answered,
    "request_expired": _expired,
}


def narrate(before: WorkflowState, after: WorkflowState, event: dict[str, Any]) -> str:
    say = NARRATE.get(event["kind"])
    return "Something happened." if say is None else say(before, after, event["data"])
