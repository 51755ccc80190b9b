"""The class round of the workflow room: students are the services (``sim.classroom``).

A student's one round command (``be_the_service``) takes a service the first time (in turn:
Inventory, Payment, Shipping, then again), and afterwards answers a request waiting at their
service: ``{"ask": <the request's number>, "decision": "yes" | "no"}``. Their own panel
(``my_entry``, sent to them only) shows their service's requests with two large buttons each,
the time left on the room clock, their class's answers and how the saga ended in both styles.
"""
from __future__ import annotations

from typing import Any

from apps.rooms import fragments
from apps.rooms.registry import RoundSpec

from .sim import WorkflowState
from .sim.classroom import asks_for, choices, done_verb

STYLE = {"orch": "Orchestrated", "chor": "Choreographed"}
OUTCOME = {"completed": "completed", "compensated": "compensated", "failed": "failed", "": "still running"}


def service_command(state: WorkflowState, body: dict[str, Any], name: str) -> dict[str, Any]:
    """The student's first press takes a service; every later one answers a request."""
    if not state.seat_of(name):
        services = state.proc.class_services
        service = services[len(state.seats) % len(services)] if services else ""
        return {"type": "take_service", "name": name, "service": service}
    return {"type": "answer", "name": name, "service": state.seat_of(name), "ask": body.get("ask"),
            "decision": body.get("decision")}


def round_opened(state: WorkflowState) -> list[dict[str, Any]]:
    """A new round is a new class: the last round's students give their services back."""
    return [{"type": "class_reset"}] if state.seats or state.answers else []


SERVICES_ROUND = RoundSpec(
    kind="services",
    title="Be a service",
    instructions="take a service of the saga; when a request reaches it, answer it on your phone before the time runs out.",
    student_command="be_the_service",
    to_command=service_command,
    entry_key="service",
    input_label=None,
    resets_entries=frozenset({"seats_cleared", "scene_loaded"}),
    on_open=round_opened,
    moves=True,
)


def _request(state: WorkflowState, ask: Any) -> dict[str, Any]:
    h = ask.held
    step = state.proc.steps[ask.step]
    yes, no = choices(step.name)
    what = (f"The orchestrator sends you {h.op}" if h.style == "orch" else f"The bus brings you {h.op}")
    what += f": {yes.lower()} or {no.lower()}?"
    return {"id": ask.id, "style": STYLE[h.style], "what": what, "yes": yes, "no": no,
            "left_s": max(0, ask.due - state.now_ms) // 1000, "attempt": h.attempt}


def _answers(state: WorkflowState, service: str) -> list[dict[str, Any]]:
    return [{"who": a.name, "style": STYLE[a.style], "ok": a.ok, "verb": done_verb(state.proc.steps[a.step].name, a.ok),
             "at": a.at} for a in state.answers if a.service == service]


def my_entry(state: WorkflowState, entry: dict[str, Any]) -> str:
    """The student's phone: their service, its requests with two buttons each, the answers."""
    name = str(entry.get("name", ""))
    service = state.seat_of(name)
    return fragments.render_tight("workflowgraphs/_my_entry.html", {
        "name": name, "service": service, "started": state.started,
        "others": [who for who, svc in state.seats if svc == service and who != name],
        "requests": [_request(state, a) for a in asks_for(state, service)] if service else [],
        "answers": _answers(state, service) if service else [],
        "outcomes": [(STYLE[s], OUTCOME.get(state.side(s).outcome, state.side(s).outcome)) for s in ("orch", "chor")]})


def my_entry_basis(state: WorkflowState, entry: dict[str, Any]) -> Any:
    """What the panel shows: the student's service and who shares it, its requests (and the
    seconds left while one waits), its answers, the outcomes."""
    service = state.seat_of(str(entry.get("name", "")))
    asks = tuple(a for a in state.asks if a.held.to == service)
    left = tuple(max(0, a.due - state.now_ms) // 1000 for a in asks)
    return (service, state.seats, asks, left, state.answers, state.started, state.orch.outcome, state.chor.outcome)


def round_panel(state: WorkflowState, current: dict[str, Any] | None) -> str:
    """The class board: who is which service, what waits for whom, who answered what."""
    services = [{"name": svc, "students": [who for who, s in state.seats if s == svc],
                 "waiting": len(asks_for(state, svc))} for svc in state.proc.class_services]
    answers = [{"who": a.name, "service": a.service, "style": STYLE[a.style], "ok": a.ok,
                "verb": done_verb(state.proc.steps[a.step].name, a.ok)} for a in state.answers]
    return fragments.render_tight("workflowgraphs/_round.html", {
        "round": current, "services": services, "answers": answers[-8:], "seats": len(state.seats),
        "answer_s": state.settings.answer_ms // 1000})
