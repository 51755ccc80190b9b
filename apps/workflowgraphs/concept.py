"""Workflow graphs as the room engine sees it: one saga run orchestrated and choreographed side
by side, on the room clock (``sim``: the simulation; ``picture``: what it looks like)."""
from __future__ import annotations

from typing import Any

from apps.rooms.registry import Concept, simulation

from . import sim
from .classround import SERVICES_ROUND, my_entry, my_entry_basis, round_panel
from .picture import picture
from .sim import WorkflowState


def state_json(state: WorkflowState) -> dict[str, Any]:
    """The state, and what follows from it: both styles compared, and the choreographed saga as
    a tracing system rebuilds it from the bus."""
    doc = sim.to_json(state)
    progress = sim.reconstruct(state.proc, state.chor.bus_log, state.chor.services)
    doc["derived"] = {
        "comparison": sim.comparison(state),
        "reconstructed": {"steps": list(progress.steps), "finished": progress.finished, "outcome": progress.outcome},
        "ledger": {style: sim.outcome_sequence(state, style) for style in ("orch", "chor")},
    }
    return doc


CONCEPT = Concept(
    slug="workflow-graphs",
    title="Workflow graphs",
    blurb="One order saga run as orchestration and as choreography, side by side, with compensation, retries and a lossy bus.",
    **simulation(sim),
    page_template="workflowgraphs/page.html",
    picture=picture,
    state_json=state_json,
    ticks=True,
    # The class round: students are the services. A student takes a service, then answers each
    # request that reaches it (the round's ``moves``).
    rounds=(SERVICES_ROUND,),
    round_panel=round_panel,
    my_entry=my_entry,
    my_entry_basis=my_entry_basis,
)
