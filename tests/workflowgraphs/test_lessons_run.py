"""The workflow room's lessons run, end where they say, and every number their text states is
true of the state the step describes.

Pure: each lesson file is parsed as the room parses it (``apps.rooms.lessons.parse_lesson``) and
folded through ``apps.workflowgraphs.sim`` with ``tests/lessonfold.fold_lesson``, the seeds a
real room gives each command (the concept need not be registered: the sim's functions are the
concept's). Three checks on the numbers, from loose to strict:

* the lesson-number contract's own reading (``tests/contract/test_lesson_numbers.py``: each
  number is one the state JSON before or after the step shows), ahead of the concept's
  registration, on ``to_json`` alone (a registered ``state_json`` only adds numbers);
* ``CLAIMS``: per step, each fragment of the text that states a number, with what it must be in
  the folded state (a time in the ledger or the orchestrator's history, a count of messages, a
  retry's wait);
* every number in a step's narration and question lies inside one of its claimed fragments, so
  no number goes unchecked.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from apps.rooms.lessons import Lesson, parse_lesson
from apps.workflowgraphs import sim
from apps.workflowgraphs.sim import COMMANDS, WorkflowState, comparison, outcome_sequence, reconstruct
from apps.workflowgraphs.sim.retry import airflow_min_backoff_s, airflow_wait_ms, temporal_wait_ms
from tests.contract.test_lesson_numbers import exempted, quoted, unmatched
from tests.lessonfold import StepRun, fold_lesson, fold_steps

LESSONS = Path(__file__).resolve().parents[2] / "apps" / "workflowgraphs" / "lessons"
SLUGS = sorted(p.stem for p in LESSONS.glob("*.toml"))
ROOM_SEEDS = ["lesson", "room-7f3a", "x"]
SLUG = "workflow-graphs"
CONCEPT = SimpleNamespace(slug=SLUG, decide=sim.decide, evolve=sim.evolve, initial_state=sim.initial_state,
                          to_json=sim.to_json)


def raw(slug: str) -> dict[str, Any]:
    with (LESSONS / f"{slug}.toml").open("rb") as fh:
        return tomllib.load(fh)


def lesson(slug: str) -> Lesson:
    return parse_lesson(slug, SLUG, raw(slug))


@lru_cache(maxsize=64)
def runs(slug: str, room_seed: str = "lesson") -> tuple[StepRun, ...]:
    return tuple(fold_lesson(CONCEPT, lesson(slug), room_seed))


def step(slug: str, title: str, room_seed: str = "lesson") -> StepRun:
    found = [r for r in runs(slug, room_seed) if r.title == title]
    assert len(found) == 1, f"{slug}: no single step titled {title!r}"
    return found[0]


# -- reading the state -------------------------------------------------------------------------

def index(s: WorkflowState, name: str) -> int:
    return s.proc.index(name)


def did(s: WorkflowState, style: str, name: str, kind: str = "T") -> list[int]:
    """When each local transaction of step ``name`` (T) or its compensation (C) was committed."""
    return [e.at for e in s.side(style).ledger if e.step == index(s, name) and e.kind == kind]


def hist(s: WorkflowState, kind: str, name: str, action: str = "do") -> list[int]:
    """When the orchestrator's history recorded ``kind`` (sent, succeeded, failed, timed_out) for a step."""
    return [h.at for h in s.orch.history if h.kind == kind and h.step == index(s, name) and h.action == action]


def attempts(s: WorkflowState, name: str) -> list[int]:
    return [h.attempt for h in s.orch.history if h.kind == "sent" and h.step == index(s, name) and h.action == "do"]


def bus(s: WorkflowState, topic: str) -> list[int]:
    """When the bus took each event on ``topic`` (what a tracing system sees)."""
    return [r.at for r in s.chor.bus_log if r.topic == topic]


def in_flight(s: WorkflowState, style: str, kind: str, op: str) -> list[int]:
    return [f.at for f in s.flights if f.style == style and f.kind == kind and f.op == op]


def knew(s: WorkflowState, style: str) -> dict[str, int]:
    return dict(s.side(style).knew)


def waits(s: WorkflowState, name: str) -> list[int]:
    """The orchestrator's wait after each timed-out attempt of ``name``: from the timeout to the next send."""
    out = hist(s, "timed_out", name)
    sent = hist(s, "sent", name)
    return [next(x for x in sent if x >= t) - t for t in out if any(x >= t for x in sent)]


def effects(s: WorkflowState, style: str) -> dict[str, int]:
    counts: dict[str, int] = comparison(s)[style]["effects"]
    return counts


Check = Callable[[StepRun], object]
A = lambda r: r.after  # noqa: E731

# -- what each step states ---------------------------------------------------------------------
# slug -> step title -> [(a fragment of the narration or question that states numbers, what must
# be true of the folded step for it)]. Every number in the text must lie in one of its fragments.

CLAIMS: dict[str, dict[str, list[tuple[str, Check]]]] = {}


def claims(slug: str, table: dict[str, list[tuple[str, Check]]]) -> None:
    CLAIMS[slug] = table


claims("01-what-a-saga-is", {
    "One order, four services": [
        ("touches 4 services", lambda r: len(A(r).proc.services) == 4),
        ("lock 4 databases", lambda r: len(A(r).orch.services) == 4),
        ("a saga: 5 local transactions", lambda r: len(A(r).proc.steps) == 5 and A(r).proc.saga),
        ("takes 300 ms", lambda r: A(r).settings.latency_ms == 300),
        ("transaction 200 ms", lambda r: A(r).settings.process_ms == 200),
    ],
    "The run starts": [
        ("At t=0 ms Order creates", lambda r: did(A(r), "orch", "create_order") == did(A(r), "chor", "create_order") == [0]),
        ("reply timer of 3,000 ms", lambda r: in_flight(A(r), "orch", "timeout", "ReserveInventory") == [3000]),
    ],
    "One hop each": [
        ("t=1,000 ms", lambda r: A(r).now_ms == 1000),
        ("Inventory at 300 ms", lambda r: did(A(r), "orch", "reserve_inventory") == [300]),
        ("at 800 ms the orchestrator", lambda r: hist(A(r), "succeeded", "reserve_inventory") == [800]
         and hist(A(r), "sent", "charge_payment") == [800]),
        ("Inventory at 600 ms", lambda r: did(A(r), "chor", "reserve_inventory") == [600] and bus(A(r), "OrderCreated") == [300]),
        ("still on its way to the bus", lambda r: in_flight(A(r), "chor", "publish", "InventoryReserved") != []),
        ("300 + 200 + 300 = 800 ms", lambda r: 2 * A(r).settings.latency_ms + A(r).settings.process_ms == 800
         == hist(A(r), "sent", "charge_payment")[0] - hist(A(r), "sent", "reserve_inventory")[0]),
    ],
    "Past the pivot": [
        ("t=2,000 ms", lambda r: A(r).now_ms == 2000),
        ("charged the card at 1,100 ms", lambda r: did(A(r), "orch", "charge_payment") == [1100]),
        ("ScheduleShipment at 1,600 ms", lambda r: hist(A(r), "sent", "schedule_shipment") == [1600]),
        ("the delivery at 1,900 ms", lambda r: did(A(r), "orch", "schedule_shipment") == [1900]
         and A(r).proc.pivot == "schedule_shipment"),
        ("charged the card at 1,400 ms", lambda r: did(A(r), "chor", "charge_payment") == [1400]),
        ("from the bus to Shipping", lambda r: in_flight(A(r), "chor", "deliver", "PaymentCompleted") != []),
    ],
    "Everything is committed": [
        ("t=3,000 ms", lambda r: A(r).now_ms == 3000),
        ("approved the order at 2,700 ms", lambda r: did(A(r), "orch", "approve_order") == [2700]),
        ("scheduled at 2,200 ms", lambda r: did(A(r), "chor", "schedule_shipment") == [2200]),
        ("approved at 3,000 ms", lambda r: did(A(r), "chor", "approve_order") == [3000]),
        ("All 5 local transactions are committed in both runs", lambda r: outcome_sequence(A(r), "orch")
         == outcome_sequence(A(r), "chor") == ["T1", "T2", "T3", "T4", "T5"]),
        ("neither run has said so", lambda r: A(r).orch.outcome == A(r).chor.outcome == ""),
    ],
    "Who knew, and when": [
        ("the orchestrator at 3,200 ms", lambda r: knew(A(r), "orch")["orchestrator"] == 3200
         and A(r).orch.outcome == "completed"),
        ("after 8 messages", lambda r: A(r).orch.messages == 8 == 2 * (len(A(r).proc.steps) - 1)),
        ("reached the bus at 3,500 ms", lambda r: bus(A(r), "OrderApproved") == [3500]),
        ("sum of 4 local states", lambda r: len(A(r).chor.services) == 4),
        ("after 9 messages (5 publishes, 4 deliveries)", lambda r: A(r).chor.messages == 9 == len(A(r).chor.bus_log) + 4),
        ("complete at 3,500 ms", lambda r: knew(A(r), "chor")["tracing (bus log)"] == 3500 == A(r).chor.finished_at
         and reconstruct(A(r).proc, A(r).chor.bus_log).outcome == "completed"),
    ],
})


claims("02-the-same-failure-both-ways", {
    "The card is declined": [
        ("those 2 are undone", lambda r: [i for i in range(2) if A(r).proc.compensable(i)] == [0, 1]
         and A(r).fail_steps == (index(A(r), "charge_payment"),)),
    ],
    "The charge fails": [
        ("t=2,000 ms", lambda r: A(r).now_ms == 2000),
        ("refused ProcessPayment at 1,100 ms", lambda r: 2 in A(r).orch.service("Payment").failed
         and did(A(r), "orch", "charge_payment") == [] and hist(A(r), "sent", "charge_payment") == [800]),
        ("At 1,600 ms the orchestrator recorded the failure", lambda r: hist(A(r), "failed", "charge_payment") == [1600]
         and A(r).orch.ti[3:] == ("upstream_failed", "upstream_failed")
         and hist(A(r), "sent", "reserve_inventory", "undo") == [1600]),
        ("took it at 1,900 ms and is delivering it to Inventory", lambda r: bus(A(r), "PaymentFailed") == [1900]
         and [f.to for f in A(r).flights if f.style == "chor" and f.op == "PaymentFailed"] == ["Inventory"]
         and sim.summary.subscriptions(A(r).proc)["Inventory"].count("PaymentFailed") == 1
         and [v for v, t in sim.summary.subscriptions(A(r).proc).items() if "PaymentFailed" in t] == ["Inventory"]),
    ],
    "Undone, in reverse order": [
        ("released the goods at 1,900 ms", lambda r: did(A(r), "orch", "reserve_inventory", "C") == [1900]),
        ("RejectOrder at 2,400 ms", lambda r: hist(A(r), "sent", "create_order", "undo") == [2400]),
        ("rejected the order at 2,700 ms", lambda r: did(A(r), "orch", "create_order", "C") == [2700]),
        ("at 3,200 ms the saga was compensated: 2 compensations, 8 messages", lambda r: A(r).orch.finished_at == 3200
         and A(r).orch.outcome == "compensated" and len(comparison(A(r))["orch"]["compensated"]) == 2
         and A(r).orch.messages == 8),
        ("released the goods at 2,200 ms", lambda r: did(A(r), "chor", "reserve_inventory", "C") == [2200]),
        ("rejected the order at 3,000 ms", lambda r: did(A(r), "chor", "create_order", "C") == [3000]),
        ("the bus took at 3,500 ms", lambda r: bus(A(r), "OrderRejected") == [3500] and A(r).chor.outcome == "compensated"),
        ("T1 T2 C2 C1", lambda r: outcome_sequence(A(r), "orch") == outcome_sequence(A(r), "chor")
         == ["T1", "T2", "C2", "C1"]),
    ],
    "Failing at the pivot": [
        ("Now 3 steps completed, and 3 compensations run in reverse order: RefundPayment, ReleaseInventory, "
         "RejectOrder", lambda r: outcome_sequence(A(r), "orch") == outcome_sequence(A(r), "chor")
         == ["T1", "T2", "T3", "C3", "C2", "C1"]
         and [A(r).proc.steps[h.step].undo for h in A(r).orch.history if h.kind == "sent" and h.action == "undo"]
         == ["RefundPayment", "ReleaseInventory", "RejectOrder"]),
        ("ShipmentFailed, then PaymentRefunded, InventoryReleased, OrderRejected", lambda r: [x.topic for x in A(r).chor.bus_log][3:]
         == ["ShipmentFailed", "PaymentRefunded", "InventoryReleased", "OrderRejected"]),
        ("compensated at 4,800 ms after 12 messages", lambda r: (A(r).orch.outcome, A(r).orch.finished_at, A(r).orch.messages)
         == ("compensated", 4800, 12)),
        ("compensated at 5,100 ms after 13", lambda r: (A(r).chor.outcome, A(r).chor.finished_at, A(r).chor.messages)
         == ("compensated", 5100, 13)),
        ("approve_order comes after the pivot", lambda r: A(r).proc.retryable(index(A(r), "approve_order"))
         and did(A(r), "orch", "approve_order", "C") == []),
    ],
})


def temporal_defaults(s: WorkflowState) -> bool:
    p = s.policy
    return (p.kind, p.initial_ms, p.coefficient, p.maximum_ms, p.maximum_attempts) == ("temporal", 1000, 2.0, 0, 0)


def airflow_try(r: StepRun, n: int, low_s: int, jitter_s: int, wait: int, timed_out: int) -> bool:
    """Try ``n`` timed out at ``timed_out`` and waited ``low_s`` s (retry_delay x 2^(n-1)) plus a
    jitter of ``jitter_s`` s: ``wait`` ms, as the orchestrator's history shows and Airflow computes."""
    s = A(r)
    p, task = s.policy, "charge_payment"
    return (hist(s, "timed_out", task)[n - 1] == timed_out and waits(s, task)[n - 1] == wait
            and airflow_min_backoff_s(p.retry_delay_ms, n) == low_s and low_s <= wait // 1000 < 2 * low_s
            and airflow_wait_ms(p, n, s.proc.name, task) == wait == (low_s + jitter_s) * 1000)


claims("03-retries-and-backoff", {
    "Payment crashes": [
        ("waits 3,000 ms for each reply", lambda r: A(r).settings.reply_timeout_ms == 3000),
        ("wait 1,000 ms, then twice as long after each failure (coefficient 2), never more than a hundred times the "
         "first wait, with no limit on attempts (maximum attempts 0)", lambda r: temporal_defaults(A(r))
         and A(r).policy.temporal_max_ms == 100 * A(r).policy.initial_ms
         and not A(r).orch.service("Payment").up and not A(r).chor.service("Payment").up),
    ],
    "No reply": [
        ("t=4,000 ms", lambda r: A(r).now_ms == 4000),
        ("ProcessPayment left at 800 ms", lambda r: hist(A(r), "sent", "charge_payment") == [800]
         and A(r).orch.lost == 1),
        ("by 3,800 ms (800 + 3,000), so attempt 1 timed out, and Temporal waits 1,000 ms x 2^0 = 1,000 ms",
         lambda r: hist(A(r), "timed_out", "charge_payment") == [3800] and temporal_wait_ms(A(r).policy, 1) == 1000
         and in_flight(A(r), "orch", "retry", "ProcessPayment") == [4800]),
        ("up_for_retry until 4,800 ms", lambda r: A(r).orch.ti[2] == "up_for_retry"),
        ("The bus keeps InventoryReserved for Payment", lambda r: [f.op for f in A(r).chor.service("Payment").backlog]
         == ["InventoryReserved"]),
    ],
    "Backing off": [
        ("t=13,000 ms", lambda r: A(r).now_ms == 13000),
        ("Attempt 2 left at 4,800 ms and timed out at 7,800 ms; the wait doubled, 1,000 ms x 2^1, so attempt 3 left at "
         "9,800 ms", lambda r: hist(A(r), "sent", "charge_payment")[1:3] == [4800, 9800]
         and hist(A(r), "timed_out", "charge_payment")[1] == 7800 and waits(A(r), "charge_payment")[:2] == [1000, 2000]
         and attempts(A(r), "charge_payment")[1:3] == [2, 3] and temporal_wait_ms(A(r).policy, 2) == 1000 * 2 ** 1),
        ("It timed out at 12,800 ms; now the wait is 1,000 ms x 2^2, so attempt 4 leaves at 16,800 ms",
         lambda r: hist(A(r), "timed_out", "charge_payment")[2] == 12800 and temporal_wait_ms(A(r).policy, 3) == 1000 * 2 ** 2
         and in_flight(A(r), "orch", "retry", "ProcessPayment") == [12800 + 4000]),
        ("one second, two, four, eight, sixteen, thirty-two, sixty-four, and then stay at the cap of a hundred seconds",
         lambda r: [temporal_wait_ms(A(r).policy, n) // 1000 for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 64, 100, 100]),
    ],
    "Payment is back": [
        ("At t=17,000 ms Payment restarts", lambda r: r.before.now_ms + 4000 == 17000 and A(r).orch.service("Payment").up),
        ("attempt 4 of ProcessPayment, sent at 16,800 ms, reaches it at 17,100 ms", lambda r: attempts(A(r), "charge_payment")
         == [1, 2, 3, 4] and hist(A(r), "sent", "charge_payment")[3] == 16800
         and did(A(r), "orch", "charge_payment") == [17100]),
        ("charged once in each run", lambda r: effects(A(r), "orch")["charge_payment"] == effects(A(r), "chor")["charge_payment"] == 1),
        ("completes at 19,200 ms after 11 messages, 3 of them lost", lambda r: (A(r).orch.outcome, A(r).orch.finished_at,
                                                                               A(r).orch.messages, A(r).orch.lost)
         == ("completed", 19200, 11, 3)),
        ("at 19,400 ms after 10", lambda r: (A(r).chor.outcome, A(r).chor.finished_at, A(r).chor.messages)
         == ("completed", 19400, 10)),
        ("Attempts 1 to 3 never reached Payment", lambda r: A(r).orch.lost == 3),
    ],
    "Airflow's backoff, with jitter": [
        ("retries = 3 (so at most 4 tries), retry_delay 2 s", lambda r: (A(r).policy.kind, A(r).policy.retries,
                                                                         A(r).policy.retry_delay_ms, A(r).policy.exponential)
         == ("airflow", 3, 2000, True) and sim.retry.may_retry(A(r).policy, 3) and not sim.retry.may_retry(A(r).policy, 4)),
        ("retry_delay x 2^(n-1)", lambda r: all(airflow_min_backoff_s(2000, n) == 2 * 2 ** (n - 1) for n in (1, 2, 3))),
        ("Try 1 timed out at 3,800 ms: 2 s plus a jitter of 1 s = 3,000 ms (anywhere from 2 s up to 4 s was possible)",
         lambda r: airflow_try(r, 1, 2, 1, 3000, 3800)),
        ("Try 2 timed out at 9,800 ms: 4 s plus a jitter of 0 s, so try 3 left at 13,800 ms",
         lambda r: airflow_try(r, 2, 4, 0, 4000, 9800) and hist(A(r), "sent", "charge_payment")[2] == 13800),
        ("Try 3 timed out at 16,800 ms: 8 s plus a jitter of 3 s, so try 4 waits until 27,800 ms",
         lambda r: airflow_min_backoff_s(2000, 3) == 8 and hist(A(r), "timed_out", "charge_payment")[2] == 16800
         and airflow_wait_ms(A(r).policy, 3, "order_saga", "charge_payment") == (8 + 3) * 1000
         and in_flight(A(r), "orch", "retry", "ProcessPayment") == [27800]),
    ],
    "Back before the last try": [
        ("restarts at t=17,000 ms", lambda r: r.before.now_ms == 17000 and A(r).chor.service("Payment").up),
        ("completes at 19,400 ms", lambda r: A(r).chor.finished_at == 19400 and A(r).chor.outcome == "completed"),
        ("its try 4, due at 27,800 ms: it reaches Payment only at 28,100 ms", lambda r: hist(A(r), "sent",
                                                                                              "charge_payment")[3] == 27800
         and did(A(r), "orch", "charge_payment") == [28100] and attempts(A(r), "charge_payment")[-1] == 4),
        ("completes at 30,200 ms", lambda r: A(r).orch.finished_at == 30200 and A(r).orch.outcome == "completed"),
        ("Had try 4 failed", lambda r: not sim.retry.may_retry(A(r).policy, 4)),
    ],
})


def republished(r: StepRun) -> list[tuple[str, int]]:
    return [(e["data"]["by"], e["data"]["at"]) for e in r.events if e["kind"] == "event_republished"]


def stale_replies(r: StepRun) -> list[int]:
    return [e["data"]["at"] for e in r.events if e["kind"] == "reply_received" and e["data"]["stale"]]


claims("04-duplicates-and-idempotency", {
    "The bus will repeat itself": [
        ("the next InventoryReserved twice", lambda r: ("InventoryReserved", "duplicate") in A(r).chor.armed
         and not A(r).idempotency and "InventoryReserved" in sim.summary.subscriptions(A(r).proc)["Payment"]),
    ],
    "Charged twice": [
        ("charged the card 2 times", lambda r: effects(A(r), "chor")["charge_payment"] == 2),
        ("scheduled 2 deliveries and Order approved the order 2 times", lambda r: effects(A(r), "chor")["schedule_shipment"]
         == effects(A(r), "chor")["approve_order"] == 2 and len(bus(A(r), "PaymentCompleted")) == 2),
        ("15 messages instead of 9", lambda r: A(r).chor.messages == 15 and A(r).chor.messages - 6 == 9),
        ("1 ms after the first", lambda r: stale_replies(r) == [hist(A(r), "succeeded", "reserve_inventory")[0] + 1]),
        ("charged once, 9 messages", lambda r: effects(A(r), "orch")["charge_payment"] == 1 and A(r).orch.messages == 9),
    ],
    "Idempotency keys": [
        ("charged once in both runs", lambda r: A(r).idempotency
         and effects(A(r), "orch")["charge_payment"] == effects(A(r), "chor")["charge_payment"] == 1
         and effects(A(r), "chor") == dict.fromkeys(effects(A(r), "chor"), 1)),
        ("10 in the choreographed run", lambda r: A(r).chor.messages == 10 and A(r).chor.outcome == "completed"),
    ],
    "A lost event": [
        ("t=4,000 ms", lambda r: A(r).now_ms == 4000 and not A(r).idempotency),
        ("reserved the goods at 600 ms", lambda r: did(A(r), "chor", "reserve_inventory") == [600]
         and bus(A(r), "InventoryReserved") == [] and A(r).chor.lost == 1
         and reconstruct(A(r).proc, A(r).chor.bus_log).steps[1:] == ("pending",) * 4),
        ("at 3,000 ms its timer fired", lambda r: hist(A(r), "timed_out", "reserve_inventory") == [3000]),
        ("at 4,000 ms it sent ReserveInventory again", lambda r: hist(A(r), "sent", "reserve_inventory") == [0, 4000]),
    ],
    "The reconciler": [
        ("a second time at 4,300 ms", lambda r: did(A(r), "orch", "reserve_inventory") == [300, 4300]),
        ("completed at 7,200 ms with 2 reservations", lambda r: A(r).orch.finished_at == 7200
         and effects(A(r), "orch")["reserve_inventory"] == 2),
        ("stuck until 10,800 ms", lambda r: republished(r) == [("reconciler", 10800)]
         and bus(A(r), "InventoryReserved") == [11100] and did(A(r), "chor", "charge_payment") == [11400]),
        ("completed at 13,500 ms", lambda r: A(r).chor.finished_at == 13500 and A(r).chor.outcome == "completed"
         and effects(A(r), "chor") == dict.fromkeys(effects(A(r), "chor"), 1)),
    ],
    "An outbox": [
        ("again at 1,800 ms", lambda r: A(r).idempotency and republished(r) == [("outbox relay", 1800)]
         and bus(A(r), "InventoryReserved") == [2100] and A(r).chor.lost == 1),
        ("completes at 4,500 ms", lambda r: A(r).chor.finished_at == 4500 and A(r).chor.outcome == "completed"),
        ("without reserving twice; the saga completes at 7,200 ms", lambda r: effects(A(r), "orch")["reserve_inventory"] == 1
         and hist(A(r), "sent", "reserve_inventory") == [0, 4000] and A(r).orch.finished_at == 7200),
    ],
})


claims("05-when-to-choose-which", {
    "A pipeline: Airflow's home": [
        ("succeeded at 2,400 ms after 8 messages", lambda r: A(r).process == "data_pipeline"
         and A(r).orch.ti == ("success",) * 4 and (A(r).orch.outcome, A(r).orch.finished_at, A(r).orch.messages)
         == ("completed", 2400, 8)),
        ("finished at 1,900 ms, also after 8 messages", lambda r: (A(r).chor.outcome, A(r).chor.finished_at,
                                                                   A(r).chor.messages) == ("completed", 1900, 8)),
    ],
    "A failed transform": [
        ("at 1,600 ms Airflow's default trigger rule, all_success, read load's upstream (success, failed) and marked load "
         "upstream_failed", lambda r: A(r).proc.steps[3].trigger_rule == "all_success"
         and A(r).orch.ti == ("success", "success", "failed", "upstream_failed")
         and [h.at for h in A(r).orch.history if h.kind == "marked"] == [1600]),
        ("the run failed after 6 messages", lambda r: A(r).orch.outcome == "failed" and A(r).orch.messages == 6),
        ("the run never finishes", lambda r: A(r).chor.outcome == "" and not A(r).flights
         and "TransformBFailed" not in sim.summary.subscriptions(A(r).proc)["Load"]),
        ("sees transform_b failed and load still pending", lambda r: reconstruct(A(r).proc, A(r).chor.bus_log).steps[2:]
         == ("failed", "pending")),
    ],
    "Trigger rule all_done": [
        ("both runs end failed", lambda r: A(r).proc.steps[3].trigger_rule == "all_done"
         and A(r).orch.outcome == A(r).chor.outcome == "failed"
         and effects(A(r), "orch")["load"] == effects(A(r), "chor")["load"] == 1),
        ("orchestrated at 2,400 ms, choreographed at 1,900 ms", lambda r: (A(r).orch.finished_at, A(r).chor.finished_at)
         == (2400, 1900)),
        ("subscribes to TransformBFailed as well", lambda r: "TransformBFailed" in sim.summary.subscriptions(A(r).proc)["Load"]),
    ],
    "A saga across teams": [
        ("compensated at 3,200 ms after 8 messages", lambda r: (A(r).orch.outcome, A(r).orch.finished_at, A(r).orch.messages)
         == ("compensated", 3200, 8)),
        ("compensated at 3,500 ms after 9 messages", lambda r: (A(r).chor.outcome, A(r).chor.finished_at,
                                                                A(r).chor.messages) == ("compensated", 3500, 9)),
    ],
})


def event(r: StepRun, kind: str) -> dict[str, Any]:
    [found] = [e["data"] for e in r.events if e["kind"] == kind]
    return found


claims("06-the-orchestrator-crashes", {
    "A history on disk": [
        ("t=1,000 ms: the orchestrator has appended 5 records", lambda r: A(r).now_ms == 1000 and A(r).idempotency
         and [(h.kind, h.step) for h in A(r).orch.history]
         == [("started", 0), ("succeeded", 0), ("sent", 1), ("succeeded", 1), ("sent", 2)]),
    ],
    "The conductor falls": [
        ("crashes at 1,000 ms and loses its 1 running timer", lambda r: r.before.now_ms == 1000
         and len(event(r, "orchestrator_crashed")["remove"]) == 1 and not A(r).orch.up),
        ("charged the card at 1,100 ms", lambda r: did(A(r), "orch", "charge_payment") == [1100]),
        ("lost at 1,600 ms", lambda r: event(r, "message_lost")["at"] == 1600 and A(r).orch.lost == 1
         and hist(A(r), "succeeded", "charge_payment") == []),
        ("t=4,000 ms", lambda r: A(r).now_ms == 4000 and A(r).orch.outcome == ""),
        ("completed at 3,500 ms", lambda r: A(r).chor.outcome == "completed" and A(r).chor.finished_at == 3500),
    ],
    "Replay": [
        ("restarts at 4,000 ms and replays its 5 records", lambda r: r.before.now_ms == 4000
         and event(r, "orchestrator_restarted")["replayed"] == 5 and event(r, "orchestrator_restarted")["completed"] == [0, 1]),
        ("they are not run again", lambda r: hist(A(r), "sent", "reserve_inventory") == [0]
         and effects(A(r), "orch")["reserve_inventory"] == 1),
        ("ProcessPayment again (attempt 2)", lambda r: attempts(A(r), "charge_payment") == [1, 2]
         and hist(A(r), "sent", "charge_payment") == [800, 4000]),
        ("completes at 6,400 ms after 10 messages, each step done once", lambda r: (A(r).orch.outcome, A(r).orch.finished_at,
                                                                                   A(r).orch.messages)
         == ("completed", 6400, 10) and effects(A(r), "orch") == dict.fromkeys(effects(A(r), "orch"), 1)),
    ],
    "Replay without keys": [
        ("the card is charged 2 times", lambda r: not A(r).idempotency and effects(A(r), "orch")["charge_payment"] == 2
         and hist(A(r), "sent", "reserve_inventory") == [0] and A(r).orch.outcome == "completed"),
    ],
})


# -- where each lesson ends --------------------------------------------------------------------

ENDS: dict[str, Callable[[WorkflowState], object]] = {
    "01-what-a-saga-is": lambda s: s.orch.outcome == s.chor.outcome == "completed"
    and effects(s, "orch") == effects(s, "chor") == dict.fromkeys(effects(s, "orch"), 1),
    "02-the-same-failure-both-ways": lambda s: s.orch.outcome == s.chor.outcome == "compensated"
    and outcome_sequence(s, "orch") == outcome_sequence(s, "chor") == ["T1", "T2", "T3", "C3", "C2", "C1"],
    "03-retries-and-backoff": lambda s: s.orch.outcome == s.chor.outcome == "completed"
    and effects(s, "orch")["charge_payment"] == effects(s, "chor")["charge_payment"] == 1 and s.orch.lost == 3,
    "04-duplicates-and-idempotency": lambda s: s.orch.outcome == s.chor.outcome == "completed" and s.idempotency
    and effects(s, "orch") == effects(s, "chor") == dict.fromkeys(effects(s, "orch"), 1),
    "05-when-to-choose-which": lambda s: s.orch.outcome == s.chor.outcome == "compensated"
    and outcome_sequence(s, "orch") == outcome_sequence(s, "chor") == ["T1", "T2", "C2", "C1"],
    "06-the-orchestrator-crashes": lambda s: s.orch.outcome == s.chor.outcome == "completed"
    and outcome_sequence(s, "orch") == ["T1", "T2", "T3", "T3", "T4", "T5"]
    and outcome_sequence(s, "chor") == ["T1", "T2", "T3", "T4", "T5"],
}


# -- the tests ---------------------------------------------------------------------------------

def test_the_lessons_are_there():
    assert SLUGS == sorted(CLAIMS) == sorted(ENDS)


@pytest.mark.parametrize("slug", SLUGS)
def test_a_lesson_has_the_shape_the_rooms_parser_wants(slug):
    data = raw(slug)
    assert set(data) <= {"title", "summary", "steps"} and data["summary"].strip()
    titles = [s["title"] for s in data["steps"]]
    assert len(set(titles)) == len(titles), "step titles are unique within a lesson"
    for s in data["steps"]:
        assert set(s) <= {"title", "narration", "question", "commands"}, s["title"]
        assert s.get("question", "").strip() and s["commands"], s["title"]
        assert all(c["type"] in COMMANDS for c in s["commands"]), s["title"]
    # The lesson works from any room state: its first command loads a scene.
    assert data["steps"][0]["commands"][0]["type"] == "load_scene"
    assert [s.title for s in lesson(slug).steps] == titles


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
@pytest.mark.parametrize("slug", SLUGS)
def test_every_number_is_one_the_scene_produces_as_the_contract_reads_it(slug, room_seed):
    wrong = [f"step {r.index + 1} ({r.title}): {', '.join(unmatched(CONCEPT, r))}"
             for r in runs(slug, room_seed) if unmatched(CONCEPT, r)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
@pytest.mark.parametrize("slug", SLUGS)
def test_every_claim_is_in_the_text_and_true_of_the_state(slug, room_seed):
    table = CLAIMS[slug]
    assert set(table) == {r.title for r in runs(slug, room_seed)}, "a claims entry per step"
    for r in runs(slug, room_seed):
        text = f"{r.narration} {r.question}"
        for fragment, check in table[r.title]:
            assert fragment in text, f"{slug}, {r.title!r}: {fragment!r} is not in the text"
            assert check(r), f"{slug}, {r.title!r} (room seed {room_seed!r}): {fragment!r} is not what the state shows"


@pytest.mark.parametrize("slug", SLUGS)
def test_every_number_in_the_text_is_claimed(slug):
    for r in runs(slug):
        text = f"{r.narration} {r.question}"
        for fragment, _ in CLAIMS[slug][r.title]:
            text = text.replace(fragment, " ")
        loose = [q.text for q in quoted(exempted(SLUG, slug, text))]
        assert not loose, f"{slug}, {r.title!r}: numbers no claim checks: {loose}"


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
@pytest.mark.parametrize("slug", SLUGS)
def test_the_lesson_ends_where_it_says(slug, room_seed):
    last = runs(slug, room_seed)[-1]
    assert ENDS[slug](last.after), f"{slug} does not end where it says"
    assert not last.after.flights, "nothing is left on its way at the end"


@pytest.mark.parametrize("slug", SLUGS)
def test_the_lesson_runs_the_same_from_a_busy_room(slug):
    """A room mid-run (a fault armed, a service and the orchestrator down, the clock moved) changes
    nothing: each lesson's first command loads its scene afresh."""
    busy = sim.initial_state({})
    for cmd in ({"type": "bus_fault", "topic": "PaymentCompleted", "fault": "duplicate"}, {"type": "start"},
                {"type": "crash_service", "service": "Shipping"}, {"type": "tick", "dt_ms": 1234},
                {"type": "crash_orchestrator"}, {"type": "idempotency", "on": True}):
        for ev in sim.decide(busy, dict(cmd, _seed="busy")):
            busy = sim.evolve(busy, ev)
    *_, last = fold_steps(LESSONS, slug, busy, sim.decide, sim.evolve, sim.Rejected)
    assert sim.to_json(last.after) == sim.to_json(runs(slug)[-1].after)
