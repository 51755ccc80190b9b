"""What the workflow room's sim tests share."""
from __future__ import annotations

import json
from typing import Any

from apps.workflowgraphs.sim import WorkflowState, decide, evolve, initial_state

TICK = {"type": "tick", "dt_ms": 1000}


def run(state: WorkflowState, *commands: dict[str, Any], log: list[dict[str, Any]] | None = None) -> WorkflowState:
    """Apply commands in turn (each must be accepted), folding every event they cause."""
    for cmd in commands:
        for ev in decide(state, cmd):
            json.dumps(ev)  # an event is plain JSON
            if log is not None:
                log.append(ev)
            state = evolve(state, ev)
    return state


def until_done(state: WorkflowState, limit: int = 200, log: list[dict[str, Any]] | None = None) -> WorkflowState:
    for _ in range(limit):
        if state.orch.outcome and state.chor.outcome and not state.flights:
            return state
        state = run(state, TICK, log=log)
    return state


def saga(**params: Any) -> WorkflowState:
    return initial_state(params)
