"""The workflow room's events, one typed description per kind (``EVENTS``: kind -> the TypedDict
of its ``data``). ``decide`` writes them with every chance outcome already drawn (which message
was lost, when each arrives); ``evolve`` and ``narrate`` only read them.

Events of one style's run carry ``Moves``: the style, the flights they add (messages and timers,
with their ids and arrival times) and remove, the next free id, and how many messages they sent
and lost (a lost message is counted as sent).
"""
from __future__ import annotations

from typing import Any, TypedDict


class FlightData(TypedDict):
    id: int
    style: str
    kind: str
    frm: str
    to: str
    sent: int
    at: int
    op: str
    step: int
    action: str
    key: str
    attempt: int
    ok: bool


class Moves(TypedDict):
    style: str
    add: list[FlightData]
    remove: list[int]
    next_id: int
    sent: int
    lost: int
    at: int


class SceneLoaded(TypedDict):
    params: dict[str, Any]


class RunStarted(TypedDict):
    at: int


class ClockAdvanced(TypedDict):
    to: int


class StepFailSet(TypedDict):
    step: int
    on: bool


class UndoFailSet(TypedDict):
    step: int
    times: int


class ServiceCrashed(TypedDict):
    service: str


class ServiceRestarted(Moves):
    service: str


class ServiceSlowed(TypedDict):
    service: str
    ms: int


class OrchestratorCrashed(Moves):
    pass


class OrchestratorRestarted(TypedDict):
    replayed: int
    completed: list[int]
    pending: list[int]


class BusFaultSet(TypedDict):
    topic: str
    fault: str


class IdempotencySet(TypedDict):
    on: bool


class PolicySet(TypedDict):
    policy: dict[str, Any]


class Published(TypedDict):
    topic: str
    event_id: str
    step: int
    outcome: str
    lost: bool
    fault: str  # "lose" when an armed fault took it


class OriginDone(Moves):
    step: int
    service: str
    topic: str
    event_id: str
    published: list[Published]  # choreography: the event it publishes
    ok: bool  # False: a root step of a DAG that failed (nothing committed)


class CommandSent(Moves):
    step: int
    action: str
    attempt: int
    key: str
    recovered: bool  # re-sent after the orchestrator replayed its history


class CommandHandled(Moves):
    service: str
    step: int
    action: str
    key: str
    attempt: int
    duplicate: bool  # the key was seen before (idempotency on): answered again, nothing done
    applied: bool  # a local transaction was committed
    ok: bool
    noop: bool  # a compensation of a step this service never did
    topic: str  # the fact the reply carries (the event choreography would publish)
    fault: str  # a bus fault armed on that topic, used up by this reply: lose | duplicate | reorder


class ReplyReceived(Moves):
    step: int
    action: str
    attempt: int
    ok: bool
    stale: bool  # nothing was waiting for it (a duplicate, or an answer after the orchestrator gave up)
    retry_wait_ms: int  # a failed compensation: the wait before trying again (0: none)
    how: str  # the wait's arithmetic


class ReplyTimedOut(Moves):
    step: int
    action: str
    attempt: int
    retry: bool
    wait_ms: int
    how: str


class TaskMarked(TypedDict):
    style: str
    step: int
    state: str
    at: int
    rule: str
    upstream: list[str]  # the upstream tasks' states the rule read


class SagaFinished(TypedDict):
    style: str
    outcome: str
    at: int
    knew: list[list[Any]]  # [who, ms]


class MessageLost(Moves):
    to: str
    op: str
    why: str


class EventHandled(Moves):
    service: str
    topic: str
    event_id: str
    from_step: int  # the step the delivered event is about (-1: a retry timer)
    outcome: str  # the delivered event's outcome: done | failed | undone
    step: int  # the step the service acted for (-1: none)
    reaction: str  # do | undo | wait | mark | duplicate | none
    ok: bool
    applied: bool
    mark: str  # skipped | upstream_failed, when reaction is mark
    published: list[Published]
    retry_wait_ms: int
    how: str


class EventRouted(Moves):
    topic: str
    event_id: str
    step: int
    outcome: str
    publisher: str
    fault: str  # "" | duplicate | reorder
    subscribers: list[str]


class EventDeferred(Moves):
    parked: FlightData  # kept by the bus for the service until it is back
    service: str
    topic: str
    event_id: str


class EventRepublished(Moves):
    by: str  # outbox relay | reconciler
    topic: str
    event_id: str
    lost_again: bool


class SeatTaken(TypedDict):
    name: str
    service: str


class SeatsCleared(TypedDict):
    seats: int  # how many students had a service


class RequestHeld(Moves):
    ask: FlightData  # the command (orch) or delivery (chor) that reached the service, held
    service: str
    step: int
    due: int  # the time limit on the room clock
    timer: int  # the id of the timer flight that fires at ``due``
    students: list[str]  # who is this service


class RequestAnswered(Moves):
    ask: int
    op: str  # the held command's name, or the held event's topic
    name: str
    service: str
    step: int
    ok: bool


class RequestExpired(Moves):
    ask: int
    op: str
    service: str
    step: int
    redelivered: bool  # chor: the bus delivers the unacknowledged event again


EVENTS: dict[str, type] = {
    "scene_loaded": SceneLoaded,
    "run_started": RunStarted,
    "clock_advanced": ClockAdvanced,
    "step_fail_set": StepFailSet,
    "undo_fail_set": UndoFailSet,
    "service_crashed": ServiceCrashed,
    "service_restarted": ServiceRestarted,
    "service_slowed": ServiceSlowed,
    "orchestrator_crashed": OrchestratorCrashed,
    "orchestrator_restarted": OrchestratorRestarted,
    "bus_fault_set": BusFaultSet,
    "idempotency_set": IdempotencySet,
    "policy_set": PolicySet,
    "origin_done": OriginDone,
    "command_sent": CommandSent,
    "command_handled": CommandHandled,
    "reply_received": ReplyReceived,
    "reply_timed_out": ReplyTimedOut,
    "task_marked": TaskMarked,
    "saga_finished": SagaFinished,
    "message_lost": MessageLost,
    "event_handled": EventHandled,
    "event_routed": EventRouted,
    "event_deferred": EventDeferred,
    "event_republished": EventRepublished,
    "seat_taken": SeatTaken,
    "seats_cleared": SeatsCleared,
    "request_held": RequestHeld,
    "request_answered": RequestAnswered,
    "request_expired": RequestExpired,
}
