"""The class round: students are the services.

Each student who joins takes a service of the process, in turn (``Process.class_services``: the
order saga's Inventory, Payment, Shipping, then Inventory again: students beyond the services
share one). While a service has a student, a command (orchestrated) or an event (choreographed)
that asks it to do its step waits for them (``handlers._held``): it shows on their phone with two
buttons, and the first of them to answer decides (``answer``). No answer by the time limit
(``Settings.answer_ms`` on the room clock): the request expires (``handlers._expired``) and the
saga handles it as any silence: the orchestrator's reply timeout and retries, the bus's
redelivery of an unacknowledged event.

Every answer is checked strictly: only a student who has a service, only for a request waiting
at their own service, only once (the first answer removes the request).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from apps.common.sim.validate import Rejected, clean_int, clean_name

from .engine import Event, ev, network
from .evolve import evolve
from .handlers import serve_command, serve_delivery
from .state import Ask, WorkflowState

Command = dict[str, Any]
MAX_NAME = 40
DECISIONS = {"yes": True, "no": False}
# The two buttons of a step, and the verbs that say what a student did: (yes, no).
CHOICES: dict[str, tuple[str, str]] = {
    "reserve_inventory": ("Reserve", "Refuse"),
    "charge_payment": ("Charge", "Decline"),
    "schedule_shipment": ("Schedule", "Fail"),
}
DONE_VERBS: dict[str, tuple[str, str]] = {
    "reserve_inventory": ("reserved the stock", "refused: out of stock"),
    "charge_payment": ("charged the card", "declined the card"),
    "schedule_shipment": ("scheduled the shipment", "failed to schedule it"),
}


def choices(step: str) -> tuple[str, str]:
    return CHOICES.get(step, ("Do it", "Refuse"))


def done_verb(step: str, ok: bool) -> str:
    yes, no = DONE_VERBS.get(step, ("did it", "refused"))
    return yes if ok else no


def asks_for(state: WorkflowState, service: str) -> list[Ask]:
    """The requests waiting at ``service``, oldest first."""
    return [a for a in state.asks if a.held.to == service]


def _student(cmd: Command) -> str:
    return clean_name(cmd.get("name"), "student", MAX_NAME)


def _take_service(state: WorkflowState, cmd: Command) -> list[Event]:
    name = _student(cmd)
    mine = state.seat_of(name)
    if mine:
        raise Rejected(f"{name} is {mine} already.")
    services = state.proc.class_services
    if not services:
        raise Rejected(f"{state.proc.title} has no step a student can decide.")
    return [ev("seat_taken", name=name, service=services[len(state.seats) % len(services)])]


def _answer(state: WorkflowState, cmd: Command) -> list[Event]:
    name = _student(cmd)
    service = state.seat_of(name)
    if not service:
        raise Rejected(f"{name} has no service yet: take one first.")
    decision = cmd.get("decision")
    if not isinstance(decision, str) or decision not in DECISIONS:
        raise Rejected("An answer is yes or no.")
    ask_id = clean_int(cmd.get("ask"), "The request's number", 0, 10**9)
    ask = next((a for a in state.asks if a.id == ask_id), None)
    if ask is None:
        done = next((x for x in reversed(state.answers) if x.service == service), None)
        already = f" {done.name} answered first: {done_verb(state.proc.steps[done.step].name, done.ok)}." if done else ""
        raise Rejected(f"No request {ask_id} is waiting for {service}.{already}")
    if ask.held.to != service:
        raise Rejected(f"That request is for {ask.held.to}; you are {service}.")
    return _answered(state, ask, name, DECISIONS[decision], cmd)


def _answered(state: WorkflowState, ask: Ask, name: str, ok: bool, cmd: Command) -> list[Event]:
    """The answer, then the service acting on it at once (its reply, or the event it publishes)."""
    h = ask.held
    net = network(state, f"{cmd.get('_seed', '')}:answer:{ask.id}")
    moves = {"style": h.style, "add": [], "remove": [ask.timer], "next_id": state.next_id, "sent": 0, "lost": 0,
             "at": state.now_ms}
    first = ev("request_answered", **moves, ask=ask.id, op=h.op, name=name, service=h.to, step=ask.step, ok=ok)
    after = evolve(state, first)
    serve = serve_command if h.style == "orch" else serve_delivery
    return [first, serve(after, replace(h, at=state.now_ms), net, ok)]


def _class_reset(state: WorkflowState, cmd: Command) -> list[Event]:
    if not state.seats and not state.answers:
        raise Rejected("No student has a service: there is nothing to clear.")
    return [ev("seats_cleared", seats=len(state.seats))]


CLASS_COMMANDS: dict[str, Callable[[WorkflowState, Command], list[Event]]] = {
    "take_service": _take_service,
    "answer": _answer,
    "class_reset": _class_reset,
}
