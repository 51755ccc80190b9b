"""Workflow graphs, the teaching core: pure Python, no Django, no wall clock.

One process (the order saga by default, or a data pipeline DAG) runs twice at once on one
logical clock: **orchestrated** (a central conductor sends each service a command and waits for
its reply, keeping a durable history it can replay after a crash; each task has an Airflow
task-instance state) and **choreographed** (services react to events on a bus; nobody holds the
whole picture, which a tracing system can only rebuild from the events it saw).

- ``airflow``: task-instance states and transitions, trigger rules with early marking.
- ``retry``: Airflow's and Temporal's retry waits, exactly.
- ``process``: the processes as data (steps, compensations, the pivot, the graph).
- ``state``, ``events``, ``decide``, ``evolve``, ``narrate``: the concept's simulation.
- ``summary``: rebuilding the choreographed saga from the bus, the comparison of both styles.
"""
from apps.common.sim import Rejected

from .decide import COMMANDS, decide
from .events import EVENTS
from .evolve import evolve
from .narrate import NARRATE, narrate
from .state import WorkflowState, from_json, initial_state, to_json
from .summary import comparison, outcome_sequence, reconstruct

__all__ = ["COMMANDS", "EVENTS", "NARRATE", "Rejected", "WorkflowState", "comparison", "decide", "evolve",
           "from_json", "initial_state", "narrate", "outcome_sequence", "reconstruct", "to_json"]
