from __future__ import annotations

from typing import Any, Callable

import pytest

from apps.logpartitions.sim import ClusterState, decide, evolve

Apply = Callable[..., tuple[ClusterState, list[dict[str, Any]]]]


def apply_command(state: ClusterState, command: dict[str, Any]) -> tuple[ClusterState, list[dict[str, Any]]]:
    events = decide(state, {"_seed": "test", **command})
    for event in events:
        state = evolve(state, event)
    return state, events


@pytest.fixture
def apply() -> Apply:
    """``apply(state, type=..., **fields)`` -> (new state, events): decide, then evolve each event."""
    return lambda state, **command: apply_command(state, command)
