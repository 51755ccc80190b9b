"""``decide(state, command) -> events``: the presenter's commands, each checked (a bad value is
refused with a sentence: :class:`~apps.common.sim.validate.Rejected`), as a table (``COMMANDS``).

A command's own event comes first; then whatever the participants do at once because of it (the
first messages of a run, the orchestrator's resend after its restart), decided by the engine at
the same instant. ``tick`` runs both styles for ``dt_ms`` (always given: never defaulted).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from apps.common.sim.validate import Rejected, clean_int, clean_name, clean_number

from . import airflow
from .advance import advance
from .classroom import CLASS_COMMANDS
from .engine import Event, Out, awaiting, ev, network
from .evolve import evolve
from .process import PROCESSES
from .retry import KINDS, RetryPolicy
from .state import ORCHESTRATOR, WorkflowState, known_process
from .summary import topic_index

Command = dict[str, Any]
FAULTS = ("lose", "duplicate", "reorder")
MAX_DT_MS = 3_600_000
MAX_MS = 86_400_000


def clean_bool(raw: Any, what: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "on", "1", "false", "off", "0"):
        return raw.strip().lower() in ("true", "on", "1")
    raise Rejected(f"{what} must be true or false.")


def decide(state: WorkflowState, command: Command) -> list[Event]:
    kind = command.get("type") if isinstance(command, dict) else None
    handler = COMMANDS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise Rejected(f"Unknown command {str(kind)[:40]!r} for the workflow room.")
    events = handler(state, command)
    if kind == "tick" or not state.started and kind != "start":
        return events
    s = state
    for e in events:
        s = evolve(s, e)
    return events + advance(s, s.now_ms, network(s, f"{command.get('_seed', '')}:{kind}:{s.now_ms}"))[:-1]


def _step(state: WorkflowState, cmd: Command) -> int:
    p = state.proc
    name = clean_name(cmd.get("step"), "step", 40)
    names = [s.name for s in p.steps]
    if name not in names:
        raise Rejected(f"There is no step called {name[:40]!r} (steps: {', '.join(names)}).")
    return names.index(name)


def _service(state: WorkflowState, cmd: Command) -> str:
    name = clean_name(cmd.get("service"), "service", 40)
    if name not in state.proc.services:
        raise Rejected(f"There is no service called {name[:40]!r} (services: {', '.join(state.proc.services)}).")
    return name


def _start(state: WorkflowState, cmd: Command) -> list[Event]:
    if state.started:
        raise Rejected("The run has started already; load the scene again to start afresh.")
    return [ev("run_started", at=state.now_ms)]


def _tick(state: WorkflowState, cmd: Command) -> list[Event]:
    if "dt_ms" not in cmd:
        raise Rejected("A tick must say how long it is (dt_ms).")
    dt = clean_int(cmd["dt_ms"], "A tick's length in ms", 1, MAX_DT_MS)
    return advance(state, state.now_ms + dt, network(state, f"{cmd.get('_seed', '')}:tick:{state.now_ms}"))


def _fail_step(state: WorkflowState, cmd: Command) -> list[Event]:
    i = _step(state, cmd)
    p = state.proc
    on = clean_bool(cmd.get("on", True), "on")
    if on and not p.can_fail(i):
        why = "it comes after the pivot: it is retried until it succeeds" if p.retryable(i) else "it cannot fail"
        raise Rejected(f"{p.steps[i].name} cannot fail for a business reason: {why}.")
    return [ev("step_fail_set", step=i, on=on)]


def _fail_compensation(state: WorkflowState, cmd: Command) -> list[Event]:
    i = _step(state, cmd)
    if not state.proc.compensable(i):
        raise Rejected(f"{state.proc.steps[i].name} has no compensation.")
    return [ev("undo_fail_set", step=i, times=clean_int(cmd.get("times", 1), "How many times it fails", 0, 5))]


def _crash_service(state: WorkflowState, cmd: Command) -> list[Event]:
    name = _service(state, cmd)
    if not state.orch.service(name).up:
        raise Rejected(f"{name} is down already.")
    return [ev("service_crashed", service=name)]


def _restart_service(state: WorkflowState, cmd: Command) -> list[Event]:
    name = _service(state, cmd)
    svc = state.chor.service(name)
    if svc.up:
        raise Rejected(f"{name} is running.")
    out = Out(state, "chor", network(state, "restart"), state.now_ms)
    for f in svc.backlog:  # the bus kept them: delivered now
        out.sent += f.kind == "deliver"
        out.flight(f.kind, f.frm, f.to, state.now_ms, state.now_ms + state.settings.latency_ms, f.op, f.step, f.action,
                   f.key, f.attempt, f.ok)
    return [ev("service_restarted", **out.moves(), service=name)]


def _slow_service(state: WorkflowState, cmd: Command) -> list[Event]:
    name = _service(state, cmd)
    return [ev("service_slowed", service=name, ms=clean_int(cmd.get("ms"), "The extra time in ms", 0, MAX_MS))]


def _crash_orchestrator(state: WorkflowState, cmd: Command) -> list[Event]:
    if not state.orch.up:
        raise Rejected("The orchestrator is down already.")
    timers = [f.id for f in state.flights if f.style == "orch" and f.to == ORCHESTRATOR and f.kind in ("timeout", "retry")]
    return [ev("orchestrator_crashed", **Out(state, "orch", network(state, "crash"), state.now_ms).moves(timers))]


def _restart_orchestrator(state: WorkflowState, cmd: Command) -> list[Event]:
    side = state.orch
    if side.up:
        raise Rejected("The orchestrator is running.")
    completed = [h.step for h in side.history if h.kind == "succeeded" and h.action == "do"]
    pending = [i for i in range(len(state.proc.steps)) if awaiting(side, i, "do") or awaiting(side, i, "undo")]
    return [ev("orchestrator_restarted", replayed=len(side.history), completed=completed, pending=pending)]


def _bus_fault(state: WorkflowState, cmd: Command) -> list[Event]:
    topic = clean_name(cmd.get("topic"), "topic", 40)
    topics = list(topic_index(state.proc))
    if topic not in topics:
        raise Rejected(f"There is no topic called {topic[:40]!r} (topics: {', '.join(topics)}).")
    fault = cmd.get("fault")
    if fault not in FAULTS:
        raise Rejected(f"A bus fault is one of {', '.join(FAULTS)}.")
    return [ev("bus_fault_set", topic=topic, fault=fault)]


def _idempotency(state: WorkflowState, cmd: Command) -> list[Event]:
    return [ev("idempotency_set", on=clean_bool(cmd.get("on"), "Idempotency"))]


def clean_policy(cmd: Command, base: RetryPolicy = RetryPolicy()) -> RetryPolicy:
    kind = cmd.get("kind", base.kind)
    if kind not in KINDS:
        raise Rejected(f"A retry policy is one of {', '.join(KINDS)}.")
    p = asdict(base) | {"kind": kind}
    ints = {"initial_ms": (1, MAX_MS), "maximum_ms": (0, MAX_MS), "maximum_attempts": (0, 100), "retries": (0, 100),
            "retry_delay_ms": (0, MAX_MS), "max_retry_delay_ms": (0, MAX_MS)}
    for name, (low, high) in ints.items():
        if name in cmd:
            p[name] = clean_int(cmd[name], name, low, high)
    if "coefficient" in cmd:
        p["coefficient"] = clean_number(cmd["coefficient"], "coefficient", 1.0, 10.0)
    if "exponential" in cmd:
        p["exponential"] = clean_bool(cmd["exponential"], "exponential")
    return RetryPolicy(**p)


def _retry_policy(state: WorkflowState, cmd: Command) -> list[Event]:
    return [ev("policy_set", policy=asdict(clean_policy(cmd, RetryPolicy())))]


def _load_scene(state: WorkflowState, cmd: Command) -> list[Event]:
    name = cmd.get("process", "order_saga")
    if not isinstance(name, str):
        raise Rejected(f"A process is named by text: one of {', '.join(PROCESSES)}.")
    if not known_process(name):
        raise Rejected(f"There is no process called {name[:40]!r} (processes: {', '.join(PROCESSES)}).")
    params: dict[str, Any] = {"process": name, "seed": clean_int(cmd.get("seed", 0), "The seed", 0, 10**9),
                              "idempotency": clean_bool(cmd.get("idempotency", False), "Idempotency")}
    if "join_rule" in cmd:
        rule = cmd["join_rule"]
        if rule not in airflow.TRIGGER_RULES:
            raise Rejected(f"A trigger rule is one of {', '.join(airflow.TRIGGER_RULES)}.")
        params["rules"] = [[s.name, rule] for s in PROCESSES.get(name, PROCESSES["order_saga"]).steps
                           if len(s.upstream) > 1]
    if "policy" in cmd:
        params["policy"] = asdict(clean_policy({"kind": cmd["policy"]}))
    if "latency_ms" in cmd:
        params["settings"] = {"latency_ms": clean_int(cmd["latency_ms"], "The latency in ms", 1, 60_000)}
    return [ev("scene_loaded", params=params)]


COMMANDS: dict[str, Callable[[WorkflowState, Command], list[Event]]] = {
    "start": _start,
    "tick": _tick,
    "fail_step": _fail_step,
    "fail_compensation": _fail_compensation,
    "crash_service": _crash_service,
    "restart_service": _restart_service,
    "slow_service": _slow_service,
    "crash_orchestrator": _crash_orchestrator,
    "restart_orchestrator": _restart_orchestrator,
    "bus_fault": _bus_fault,
    "idempotency": _idempotency,
    "retry_policy": _retry_policy,
    "load_scene": _load_scene,
    **CLASS_COMMANDS,  # the class round: students are the services
}
