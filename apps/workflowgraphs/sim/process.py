"""Processes as data: the steps, their compensations, the pivot, and the graph.

A process is a DAG of steps. Each step is done by one service; in the orchestrated style the
orchestrator sends its command (``command``) and, to undo it, its compensation command
(``undo``); in the choreographed style the service reacts to its upstream steps' events and
publishes ``done_topic`` / ``failed_topic`` / ``undone_topic``. ``origin`` is the step the
initiating service does itself when the run starts (the order saga's "create order").

A *saga* (Garcia-Molina & Salem; Richardson §9.2) is a chain: compensable steps (with an undo),
then one ``pivot`` (the point of no return), then retryable steps, retried until they succeed and
never compensated. Only steps up to and including the pivot can fail for business reasons.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Step:
    name: str
    service: str
    command: str  # what the orchestrator sends
    done_topic: str  # what the service publishes when it has done the step
    failed_topic: str = ""  # "" : the step cannot fail for business reasons
    undo: str = ""  # the compensation command ("" : not compensable)
    undone_topic: str = ""
    upstream: tuple[str, ...] = ()
    trigger_rule: str = "all_success"
    origin: bool = False  # done by the initiating service when the run starts


@dataclass(frozen=True)
class Process:
    name: str
    title: str
    steps: tuple[Step, ...]
    pivot: str = ""  # "" : not a saga (no compensations)

    @property
    def saga(self) -> bool:
        return bool(self.pivot)

    def index(self, name: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.name == name)

    @property
    def pivot_index(self) -> int:
        return self.index(self.pivot) if self.pivot else len(self.steps)

    def compensable(self, i: int) -> bool:
        return self.saga and i < self.pivot_index and bool(self.steps[i].undo)

    def retryable(self, i: int) -> bool:
        """After the pivot: retried until it succeeds, never compensated."""
        return self.saga and i > self.pivot_index

    def can_fail(self, i: int) -> bool:
        return bool(self.steps[i].failed_topic) and not self.retryable(i)

    def decidable(self, i: int) -> bool:
        """A step a student who is its service decides (the class round): it can fail for a
        business reason and is asked for by another step (not the run's origin)."""
        return self.can_fail(i) and not self.steps[i].origin and bool(self.steps[i].upstream)

    @property
    def class_services(self) -> tuple[str, ...]:
        """The services students take, in turn: those with a step to decide, in the steps' order."""
        return tuple(dict.fromkeys(s.service for i, s in enumerate(self.steps) if self.decidable(i)))

    @cached_property
    def _upstream(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(self.index(u) for u in s.upstream) for s in self.steps)

    def upstream_of(self, i: int) -> tuple[int, ...]:
        return self._upstream[i]

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.service for s in self.steps))

    @property
    def sinks(self) -> tuple[int, ...]:
        used = {u for s in self.steps for u in s.upstream}
        return tuple(i for i, s in enumerate(self.steps) if s.name not in used)


ORDER_SAGA = Process(
    name="order_saga", title="Order saga", pivot="schedule_shipment",
    steps=(
        Step("create_order", "Order", "CreateOrder", "OrderCreated", undo="RejectOrder", undone_topic="OrderRejected",
             origin=True),
        Step("reserve_inventory", "Inventory", "ReserveInventory", "InventoryReserved", "InventoryFailed",
             "ReleaseInventory", "InventoryReleased", upstream=("create_order",)),
        Step("charge_payment", "Payment", "ProcessPayment", "PaymentCompleted", "PaymentFailed", "RefundPayment",
             "PaymentRefunded", upstream=("reserve_inventory",)),
        Step("schedule_shipment", "Shipping", "ScheduleShipment", "ShipmentScheduled", "ShipmentFailed",
             upstream=("charge_payment",)),
        Step("approve_order", "Order", "ApproveOrder", "OrderApproved", upstream=("schedule_shipment",)),
    ))

DATA_PIPELINE = Process(
    name="data_pipeline", title="Data pipeline (Airflow DAG)",
    steps=(
        Step("extract", "Extract", "RunExtract", "Extracted", "ExtractFailed"),
        Step("transform_a", "TransformA", "RunTransformA", "TransformedA", "TransformAFailed", upstream=("extract",)),
        Step("transform_b", "TransformB", "RunTransformB", "TransformedB", "TransformBFailed", upstream=("extract",)),
        Step("load", "Load", "RunLoad", "Loaded", "LoadFailed", upstream=("transform_a", "transform_b"),
             trigger_rule="all_success"),
    ))

PROCESSES: dict[str, Process] = {p.name: p for p in (ORDER_SAGA, DATA_PIPELINE)}


def with_rule(p: Process, step: str, rule: str) -> Process:
    """The process with ``step``'s trigger rule changed (the join of the pipeline)."""
    steps = tuple(Step(**{**s.__dict__, "trigger_rule": rule}) if s.name == step else s for s in p.steps)
    return Process(p.name, p.title, steps, p.pivot)


def scaled_saga(n: int) -> Process:
    """A chain saga of ``n`` services (for the timing bench): n-2 compensable steps, a pivot and
    one retryable step."""
    steps = [Step("s0", "S0", "Start", "Started", undo="Cancel", undone_topic="Cancelled", origin=True)]
    for i in range(1, n - 2):
        steps.append(Step(f"s{i}", f"S{i}", f"Do{i}", f"Done{i}", f"Failed{i}", f"Undo{i}", f"Undone{i}",
                          upstream=(f"s{i - 1}",)))
    steps.append(Step(f"s{n - 2}", f"S{n - 2}", f"Do{n - 2}", f"Done{n - 2}", f"Failed{n - 2}", upstream=(f"s{n - 3}",)))
    steps.append(Step(f"s{n - 1}", f"S{n - 1}", f"Do{n - 1}", f"Done{n - 1}", upstream=(f"s{n - 2}",)))
    return Process(f"saga_{n}", f"A saga of {n} services", tuple(steps), pivot=f"s{n - 2}")
