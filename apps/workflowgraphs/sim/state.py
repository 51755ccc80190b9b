"""The room's one state: the same run of one process in both styles, on one logical clock.

Frozen dataclasses; ``evolve`` makes new ones. Time is integer logical milliseconds (``now_ms``).

- ``flights``: everything on its way, in both styles, due at ``at``: messages (a command, a reply,
  a publish to the bus, a delivery from the bus) and timers (a reply timeout, a retry, the outbox
  relay, the reconciler). Sorted by ``(at, id)``, so two things due at one instant keep their order.
- ``orch``: the orchestrated run: the orchestrator (up or crashed) and its durable history, the
  Airflow state of each task (forward steps and their compensations), the services' local state.
- ``chor``: the choreographed run: the services' local state only, and the bus's log (what a
  tracing system sees), from which :func:`~.summary.reconstruct` rebuilds the saga's progress.
- ``ledger`` (per style): every local transaction a service committed, in order (``T`` a step,
  ``C`` a compensation): the saga's outcome, and where a duplicate did its damage twice.
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Union, get_args, get_origin, get_type_hints

from apps.common.sim.trace import Trace, episode_from_json, episode_to_json

from .airflow import TRIGGER_RULES
from .process import PROCESSES, Process, scaled_saga, with_rule
from .retry import RetryPolicy

STYLES = ("orch", "chor")
ORCHESTRATOR = "orchestrator"
BUS = "bus"
RECONCILER = "reconciler"


@dataclass(frozen=True)
class Flight:
    """A message on its way, or a timer, in one style."""

    id: int
    style: str  # orch | chor
    kind: str  # command | reply | publish | deliver | timeout | retry | relay | reconcile
    frm: str
    to: str
    sent: int
    at: int  # when it arrives / fires
    op: str  # the command's name, or the event's topic
    step: int = -1
    action: str = "do"  # do | undo
    key: str = ""  # the idempotency key (orch) or the event id (chor)
    attempt: int = 1
    ok: bool = True  # a reply's or an event's result


@dataclass(frozen=True)
class Effect:
    """One committed local transaction: ``T`` (a step) or ``C`` (its compensation)."""

    kind: str  # T | C
    step: int
    service: str
    at: int
    key: str


@dataclass(frozen=True)
class Service:
    name: str
    up: bool = True
    slow_ms: int = 0
    seen: tuple[str, ...] = ()  # idempotency keys / event ids it has processed (kept when idempotency is on)
    done: tuple[int, ...] = ()  # steps it has done (and not undone)
    undone: tuple[int, ...] = ()  # steps it has compensated
    failed: tuple[int, ...] = ()  # steps that failed here (business error)
    heard: tuple[tuple[int, str], ...] = ()  # chor: upstream (step, outcome) events it has seen
    marked: tuple[tuple[int, str], ...] = ()  # chor: its steps skipped / upstream_failed by their rule
    undo_tries: tuple[tuple[int, int], ...] = ()  # (step, failed compensation attempts so far)
    backlog: tuple[Flight, ...] = ()  # chor: deliveries that came while it was down (the bus keeps them)


@dataclass(frozen=True)
class HistoryEntry:
    """One record of the orchestrator's durable history (what Temporal replays)."""

    kind: str  # started | sent | succeeded | failed | timed_out | marked | finished
    step: int
    action: str
    attempt: int
    at: int
    note: str = ""


@dataclass(frozen=True)
class BusRecord:
    """An event as the bus (and a tracing system) saw it."""

    event_id: str
    topic: str
    publisher: str
    step: int
    outcome: str  # done | failed | undone
    at: int


@dataclass(frozen=True)
class Side:
    """One style's run."""

    services: tuple[Service, ...] = ()
    ledger: tuple[Effect, ...] = ()
    messages: int = 0  # messages sent (commands, replies, publishes, deliveries), lost ones included
    lost: int = 0
    outcome: str = ""  # "" running | completed | compensated | failed
    finished_at: int = -1
    knew: tuple[tuple[str, int], ...] = ()  # who learned the outcome, when
    armed: tuple[tuple[str, str], ...] = ()  # bus faults not yet used: (topic, lose | duplicate | reorder)
    trace: Trace = field(default_factory=Trace)
    # orchestrated only
    up: bool = True  # the orchestrator
    history: tuple[HistoryEntry, ...] = ()
    ti: tuple[str, ...] = ()  # Airflow state of each step's task
    undo_ti: tuple[str, ...] = ()  # Airflow state of each step's compensation task
    # choreographed only
    bus_log: tuple[BusRecord, ...] = ()

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)


@dataclass(frozen=True)
class Ask:
    """A request held for the students who are its service (the class round): the command or
    event that reached the service, waiting for one of them to answer until ``due``."""

    id: int  # the held flight's id (what a student's answer names)
    held: Flight  # the command (orch) or delivery (chor), as it arrived
    step: int  # the step the students decide (chor: the step the event asks the service to do)
    due: int  # the room clock's time limit
    timer: int  # the id of the timer flight that fires at ``due``


@dataclass(frozen=True)
class Answer:
    """A student's answer to a request: who, for which service, which step, in which style."""

    name: str
    service: str
    style: str
    step: int
    ok: bool
    at: int


@dataclass(frozen=True)
class Settings:
    latency_ms: int = 300  # one way, every link
    process_ms: int = 200  # a service's local transaction
    reply_timeout_ms: int = 3000
    relay_ms: int = 1000  # the outbox relay publishes again what the bus did not take
    reconcile_ms: int = 10_000  # the reconciler finds an event that was never published
    reorder_ms: int = 1500  # how long the bus holds back a reordered event
    loss: float = 0.0  # chance any one message is lost
    answer_ms: int = 15_000  # the class round: how long a student has to answer a request


@dataclass(frozen=True)
class WorkflowState:
    process: str = "order_saga"
    rules: tuple[tuple[str, str], ...] = ()  # trigger rules changed from the process's own
    seed: int = 0
    now_ms: int = 0
    started: bool = False
    started_at: int = -1
    idempotency: bool = False  # idempotency keys + outbox
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    settings: Settings = field(default_factory=Settings)
    fail_steps: tuple[int, ...] = ()  # steps whose service refuses (business error)
    undo_failures: tuple[tuple[int, int], ...] = ()  # (step, how many times its compensation fails first)
    flights: tuple[Flight, ...] = ()
    next_id: int = 0
    orch: Side = field(default_factory=Side)
    chor: Side = field(default_factory=Side)
    # The class round (students are the services): who took which service, in turn; the requests
    # waiting for them; their answers so far. A service with a student waits for them.
    seats: tuple[tuple[str, str], ...] = ()  # (student's name, service)
    asks: tuple[Ask, ...] = ()
    answers: tuple[Answer, ...] = ()

    @property
    def proc(self) -> Process:
        return get_process(self.process, self.rules)

    def side(self, style: str) -> Side:
        return self.orch if style == "orch" else self.chor

    def seat_of(self, name: str) -> str:
        """The service a student is ("" : none)."""
        return next((svc for who, svc in self.seats if who == name), "")

    def seated(self, service: str) -> bool:
        return any(svc == service for _, svc in self.seats)


def _variants(p: Process) -> dict[tuple[tuple[str, str], ...], Process]:
    """The process with its own rules, and with each join's trigger rule changed (what a scene
    can ask for: ``decide`` sets every join of the process to one rule)."""
    joins = [s.name for s in p.steps if len(s.upstream) > 1]
    out: dict[tuple[tuple[str, str], ...], Process] = {(): p}
    for rule in TRIGGER_RULES:
        q = p
        for join in joins:
            q = with_rule(q, join, rule)
            out[((join, rule),)] = with_rule(p, join, rule)
        out[tuple((join, rule) for join in joins)] = q
    return out


# Every process a room can hold, built once at import: a process is a constant of its name and
# rules, never rebuilt per event. The bench's scaled sagas (saga_4 .. saga_40) are here too.
ALL_PROCESSES: dict[str, Process] = {**PROCESSES, **{f"saga_{n}": scaled_saga(n) for n in range(4, 41)}}
PROCESS_TABLE: dict[tuple[str, tuple[tuple[str, str], ...]], Process] = {
    (name, rules): q for name, p in ALL_PROCESSES.items() for rules, q in _variants(p).items()}


def get_process(name: str, rules: tuple[tuple[str, str], ...] = ()) -> Process:
    known = PROCESS_TABLE.get((name, rules))
    if known is not None:
        return known
    p = ALL_PROCESSES[name]  # rules no scene sets (a hand-made state): built, not kept
    for step, rule in rules:
        p = with_rule(p, step, rule)
    return p


def known_process(name: str) -> bool:
    return name in ALL_PROCESSES


def fresh_side(p: Process, style: str) -> Side:
    services = tuple(Service(n) for n in p.services)
    if style == "chor":
        return Side(services=services)
    return Side(services=services, ti=("none",) * len(p.steps), undo_ti=("none",) * len(p.steps))


def initial_state(params: dict[str, Any] | None = None) -> WorkflowState:
    """A fresh room: the process loaded, nothing started. ``params`` as a scene gives them
    (already checked by ``decide``): process, seed, idempotency, rules, policy, settings."""
    p = params or {}
    s = WorkflowState(process=str(p.get("process", "order_saga")), seed=int(p.get("seed", 0)),
                      idempotency=bool(p.get("idempotency", False)),
                      rules=tuple((str(a), str(b)) for a, b in p.get("rules", [])),
                      policy=RetryPolicy(**p.get("policy", {})), settings=Settings(**p.get("settings", {})))
    return replace(s, orch=fresh_side(s.proc, "orch"), chor=fresh_side(s.proc, "chor"))


# -- JSON: every field is an int, float, str, bool, a tuple of them, a dataclass, or a Trace -------

def _dump(v: Any) -> Any:
    if isinstance(v, Trace):
        return {"episodes": [episode_to_json(e) for e in v.episodes], "count": v.count,
                "older_messages": v.older_messages}
    if is_dataclass(v) and not isinstance(v, type):
        return {f.name: _dump(getattr(v, f.name)) for f in fields(v)}
    if isinstance(v, tuple):
        return [_dump(x) for x in v]
    return v


def _load(tp: Any, v: Any) -> Any:
    if tp is Trace:
        return Trace(tuple(episode_from_json(e) for e in v["episodes"]), v["count"], v["older_messages"])
    if isinstance(tp, type) and is_dataclass(tp):
        hints = get_type_hints(tp, vars(sys.modules[tp.__module__]))
        return tp(**{f.name: _load(hints[f.name], v[f.name]) for f in fields(tp) if f.init})
    origin = get_origin(tp)
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_load(args[0], x) for x in v)
        return tuple(_load(a, x) for a, x in zip(args, v))
    if origin in (Union, types.UnionType):
        return v
    if tp is float:
        return float(v)
    return v


def to_json(state: WorkflowState) -> dict[str, Any]:
    out: dict[str, Any] = _dump(state)
    return out


def from_json(data: dict[str, Any]) -> WorkflowState:
    out: WorkflowState = _load(WorkflowState, data)
    return out
