"""What each flight does when it is due: ``HANDLE[(style, kind)](state, flight, net) -> event``.

Orchestrated: a command reaches a service (it commits its local transaction, or refuses, and
replies); a reply reaches the orchestrator; the orchestrator's reply timeout or retry timer fires.
Choreographed: a publish reaches the bus (it logs the event and delivers it to each subscriber);
a delivery reaches a service (it reacts: joins, does its step, compensates, or ignores a
duplicate); a compensation's retry timer, the outbox relay or the reconciler fires.
"""
from __future__ import annotations

from typing import Any

from apps.common.sim.network import Network

from . import airflow
from .engine import Event, Handler, Out, armed, awaiting_reply, busy_ms, command_sent, ev, publish
from .events import Published
from .retry import arithmetic, may_retry, wait_ms
from .state import BUS, ORCHESTRATOR, Flight, Service, WorkflowState
from .summary import reactions


def _lost(state: WorkflowState, f: Flight, net: Network, why: str) -> Event:
    out = Out(state, f.style, net, f.at)
    return ev("message_lost", **{**out.moves([f.id]), "lost": 1}, to=f.to, op=f.op, why=why)


def _reply_topic(state: WorkflowState, step: int, action: str, ok: bool) -> str:
    s = state.proc.steps[step]
    if action == "do":
        return s.done_topic if ok else s.failed_topic
    return s.undone_topic if ok else f"{s.undo}Failed"


def _undo_result(state: WorkflowState, svc: Service, step: int) -> tuple[bool, bool, bool]:
    """(ok, applied, noop) of a compensation at ``svc``: it fails while its armed failures last;
    it undoes only what the service did (a compensation is idempotent by its own records)."""
    tries = dict(svc.undo_tries).get(step, 0)
    if tries < dict(state.undo_failures).get(step, 0):
        return False, False, False
    if step in svc.done:
        return True, True, False
    return True, False, True


def _held(state: WorkflowState, f: Flight, net: Network, step: int) -> Event:
    """The service has students (the class round): the command or event waits for one of them
    to answer, until the time limit on the room clock."""
    out = Out(state, f.style, net, f.at)
    due = f.at + state.settings.answer_ms
    timer = out.flight("ask", f.to, f.to, f.at, due, f.op, f.step, f.action, str(f.id))
    held: dict[str, Any] = {**f.__dict__}
    return ev("request_held", **out.moves([f.id]), ask=held, service=f.to, step=step, due=due, timer=timer["id"],
              students=[who for who, svc in state.seats if svc == f.to])


def _expired(state: WorkflowState, f: Flight, net: Network) -> Event:
    """Nobody answered in time. Orchestrated: the service gives no reply (the orchestrator's own
    timeout follows). Choreographed: the event was never acknowledged, so the bus delivers it
    again (as Kafka, RabbitMQ or NATS redeliver an unacknowledged message)."""
    ask = next(a for a in state.asks if a.timer == f.id)
    out = Out(state, f.style, net, f.at)
    if f.style == "chor":
        h = ask.held
        out.sent += 1
        out.flight("deliver", BUS, h.to, f.at, f.at + state.settings.latency_ms, h.op, h.step, h.action, h.key)
    return ev("request_expired", **out.moves([f.id]), ask=ask.id, op=ask.held.op, service=ask.held.to, step=ask.step,
              redelivered=f.style == "chor")


def _command(state: WorkflowState, f: Flight, net: Network) -> Event:
    svc = state.orch.service(f.to)
    if svc.up and f.action == "do" and state.seated(svc.name) and state.proc.decidable(f.step) and not (
            state.idempotency and f.key in svc.seen):
        return _held(state, f, net, f.step)
    return serve_command(state, f, net, None)


def serve_command(state: WorkflowState, f: Flight, net: Network, decision: bool | None) -> Event:
    """The service handles a command: as the scene says (``decision`` None), or as its student
    answered."""
    svc = state.orch.service(f.to)
    if not svc.up:
        return _lost(state, f, net, f"{svc.name} is down")
    dup = state.idempotency and f.key in svc.seen
    noop = False
    if dup:
        ok, applied = (f.step not in svc.failed) if f.action == "do" else True, False
    elif f.action == "do":
        ok = f.step not in state.fail_steps if decision is None else decision
        applied = ok
    else:
        ok, applied, noop = _undo_result(state, svc, f.step)
    at = f.at + busy_ms(state, svc)
    topic = _reply_topic(state, f.step, f.action, ok)
    fault = armed(state.orch, topic, ("lose", "duplicate", "reorder"))
    out = Out(state, "orch", net, f.at)
    extra = state.settings.reorder_ms if fault == "reorder" else 0
    for copy in range(2 if fault == "duplicate" else 1):
        out.send("reply", svc.name, ORCHESTRATOR, at + copy, topic, lose=fault == "lose", extra_ms=extra,
                 step=f.step, action=f.action, key=f.key, attempt=f.attempt, ok=ok)
    return ev("command_handled", **out.moves([f.id]), service=svc.name, step=f.step, action=f.action, key=f.key,
              attempt=f.attempt, duplicate=dup, applied=applied, ok=ok, noop=noop, topic=topic, fault=fault)


def _timers(state: WorkflowState, step: int, action: str) -> list[int]:
    return [x.id for x in state.flights if x.style == "orch" and x.to == ORCHESTRATOR and x.step == step
            and x.action == action and x.kind in ("timeout", "retry")]


def _reply(state: WorkflowState, f: Flight, net: Network) -> Event:
    if not state.orch.up:
        return _lost(state, f, net, "the orchestrator is down")
    p = state.proc
    stale = not awaiting_reply(state.orch, f.step, f.action)
    out = Out(state, "orch", net, f.at)
    remove = [f.id] + ([] if stale else _timers(state, f.step, f.action))
    wait, how = 0, ""
    if not stale and not f.ok and f.action == "undo":  # a compensation failed: retried until it succeeds
        wait = wait_ms(state.policy, f.attempt, p.name, p.steps[f.step].name)
        how = arithmetic(state.policy, f.attempt, p.name, p.steps[f.step].name)
        out.flight("retry", ORCHESTRATOR, ORCHESTRATOR, f.at, f.at + wait, f.op, f.step, "undo", f.key, f.attempt + 1)
    return ev("reply_received", **out.moves(remove), step=f.step, action=f.action, attempt=f.attempt, ok=f.ok,
              stale=stale, retry_wait_ms=wait, how=how)


def _timeout(state: WorkflowState, f: Flight, net: Network) -> Event:
    p = state.proc
    must_finish = f.action == "undo" or p.retryable(f.step)  # retried until it succeeds
    retry = must_finish or may_retry(state.policy, f.attempt)
    out = Out(state, "orch", net, f.at)
    wait, how = 0, ""
    if retry:
        wait = wait_ms(state.policy, f.attempt, p.name, p.steps[f.step].name)
        how = arithmetic(state.policy, f.attempt, p.name, p.steps[f.step].name)
        out.flight("retry", ORCHESTRATOR, ORCHESTRATOR, f.at, f.at + wait, f.op, f.step, f.action, f.key,
                   f.attempt + 1)
    return ev("reply_timed_out", **out.moves([f.id]), step=f.step, action=f.action, attempt=f.attempt, retry=retry,
              wait_ms=wait, how=how)


def _retry(state: WorkflowState, f: Flight, net: Network) -> Event:
    return command_sent(state, net, f.at, f.step, f.action, f.attempt, remove=[f.id])


# -- choreography ---------------------------------------------------------------------------------

def _route(state: WorkflowState, f: Flight, net: Network) -> Event:
    fault = armed(state.chor, f.op, ("duplicate", "reorder"))
    out = Out(state, "chor", net, f.at)
    subscribers = [svc for svc, _, _ in reactions(state.proc, f.op)]
    extra = state.settings.reorder_ms if fault == "reorder" else 0
    for svc in dict.fromkeys(subscribers):
        for copy in range(2 if fault == "duplicate" else 1):
            out.sent += 1
            out.flight("deliver", BUS, svc, f.at, f.at + state.settings.latency_ms + extra + copy, f.op, f.step,
                       f.action, f.key)
    return ev("event_routed", **out.moves([f.id]), topic=f.op, event_id=f.key, step=f.step, outcome=f.action,
              publisher=f.frm, fault=fault, subscribers=list(dict.fromkeys(subscribers)))


def _join(state: WorkflowState, svc: Service, i: int, f: Flight) -> str:
    """The trigger rule of step ``i`` on the upstream outcomes this service has heard (its own
    local view: the latest event per upstream step, this one included)."""
    p = state.proc
    latest = dict(svc.heard + ((f.step, f.action),))
    ups = p.upstream_of(i)
    states = ["success" if latest[u] == "done" else "failed" for u in ups if u in latest]
    return airflow.trigger_outcome(p.steps[i].trigger_rule, states, len(states) == len(ups))


def _react(state: WorkflowState, svc: Service, f: Flight, out: Out, answer: bool | None = None) -> dict[str, Any]:
    p = state.proc
    found = [(i, how) for s, i, how in reactions(p, f.op) if s == svc.name] if f.kind == "deliver" else [(f.step, "undo")]
    if not found:
        return {"step": -1, "reaction": "none", "ok": True, "applied": False, "mark": "", "published": []}
    i, how = found[0]
    at = f.at + busy_ms(state, svc)
    step = p.steps[i]
    published: list[Published] = []
    if how == "undo":
        ok, applied, noop = _undo_result(state, svc, i)
        if not ok:
            return {"step": i, "reaction": "undo", "ok": False, "applied": False, "mark": "", "published": []}
        if not (noop and i in svc.undone):
            published.append(publish(state, out, svc.name, at, step.undone_topic, f"{step.undone_topic}#{out.new_id()}",
                                      i, "undone"))
        return {"step": i, "reaction": "undo", "ok": True, "applied": applied, "mark": "", "published": published}
    decision = _join(state, svc, i, f)
    if decision == "wait":
        return {"step": i, "reaction": "wait", "ok": True, "applied": False, "mark": "", "published": []}
    if decision != "run":
        return {"step": i, "reaction": "mark", "ok": True, "applied": False, "mark": decision, "published": []}
    ok = i not in state.fail_steps if answer is None else answer
    topic = step.done_topic if ok else step.failed_topic
    published.append(publish(state, out, svc.name, at, topic, f"{topic}#{out.new_id()}", i, "done" if ok else "failed"))
    return {"step": i, "reaction": "do", "ok": ok, "applied": ok, "mark": "", "published": published}


def student_step(state: WorkflowState, svc: Service, f: Flight) -> int:
    """The step its students decide that the service would do because of this delivery (-1: none)."""
    if f.kind != "deliver" or not svc.up or not state.seated(svc.name) or (state.idempotency and f.key in svc.seen):
        return -1
    found = [(i, how) for s, i, how in reactions(state.proc, f.op) if s == svc.name]
    if not found or found[0][1] != "join" or not state.proc.decidable(found[0][0]):
        return -1
    return found[0][0] if _join(state, svc, found[0][0], f) == "run" else -1


def _deliver(state: WorkflowState, f: Flight, net: Network) -> Event:
    step = student_step(state, state.chor.service(f.to), f)
    if step >= 0:
        return _held(state, f, net, step)
    return serve_delivery(state, f, net, None)


def serve_delivery(state: WorkflowState, f: Flight, net: Network, answer: bool | None) -> Event:
    """The service reacts to a delivery (or its retry timer): as the scene says (``answer``
    None), or as its student answered (``answer``)."""
    svc = state.chor.service(f.to)
    out = Out(state, "chor", net, f.at)
    base = dict(service=svc.name, topic=f.op if f.kind == "deliver" else "", event_id=f.key if f.kind == "deliver" else "",
                from_step=f.step, outcome=f.action)
    if not svc.up:
        parked: dict[str, Any] = {**f.__dict__}
        return ev("event_deferred", **out.moves([f.id]), parked=parked, service=svc.name, topic=f.op, event_id=f.key)
    if f.kind == "deliver" and state.idempotency and f.key in svc.seen:
        return ev("event_handled", **out.moves([f.id]), **base, step=-1, reaction="duplicate", ok=True, applied=False,
                  mark="", published=[], retry_wait_ms=0, how="")
    r = _react(state, svc, f, out, answer)
    wait, how = 0, ""
    if r["reaction"] == "undo" and not r["ok"]:  # the compensation failed: the service tries again later
        p, tries = state.proc, dict(svc.undo_tries).get(r["step"], 0) + 1
        wait, how = wait_ms(state.policy, tries, p.name, p.steps[r["step"]].name), arithmetic(
            state.policy, tries, p.name, p.steps[r["step"]].name)
        out.flight("retry", svc.name, svc.name, f.at, f.at + wait, p.steps[r["step"]].undo, r["step"], "undo", "", tries + 1)
    return ev("event_handled", **out.moves([f.id]), **base, **r, retry_wait_ms=wait, how=how)


def _republish(state: WorkflowState, f: Flight, net: Network) -> Event:
    out = Out(state, "chor", net, f.at)
    publisher = f.frm
    got = publish(state, out, publisher, f.at, f.op, f.key, f.step, f.action)
    return ev("event_republished", **out.moves([f.id]), by="outbox relay" if f.kind == "relay" else "reconciler",
              topic=f.op, event_id=f.key, lost_again=got["lost"])


HANDLE: dict[tuple[str, str], Handler] = {
    ("orch", "command"): _command,
    ("orch", "reply"): _reply,
    ("orch", "timeout"): _timeout,
    ("orch", "retry"): _retry,
    ("chor", "publish"): _route,
    ("chor", "deliver"): _deliver,
    ("chor", "retry"): _deliver,
    ("orch", "ask"): _expired,
    ("chor", "ask"): _expired,
    ("chor", "relay"): _republish,
    ("chor", "reconcile"): _republish,
}
