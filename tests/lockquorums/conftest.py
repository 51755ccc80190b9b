"""What the lock quorum's sim tests share."""
from __future__ import annotations

from typing import Any

from apps.lockquorums.sim import LockState, decide, evolve


def fold(state: LockState, *commands: dict[str, Any]) -> LockState:
    """Apply commands in turn (each must be accepted), folding every event they cause."""
    for cmd in commands:
        for ev in decide(state, cmd):
            state = evolve(state, ev)
    return state


def assert_worked_example(state: LockState) -> LockState:
    """DOMAIN.md §3: TTL 10,000 ms, timeout 50 ms, D down: A OK at 3, B 6, C 9, D times out at 59,
    E OK at 62 -> 4 of 5, validity 10,000 - 62 - 102 = 9,836 ms. Returns the state after it."""
    events = decide(state, {"type": "acquire", "client": "C1", "_seed": "x"})
    assert len(events) == 1
    d = events[0]["data"]
    assert (d["oks"], d["quorum"], d["elapsed"], d["drift"], d["validity"], d["acquired"]) == (4, 3, 62, 102, 9836, True)
    replies = [(m["from"], m["arrives"], m["result"]) for m in d["messages"] if m["kind"] in ("reply", "timeout")]
    assert replies == [("A", 3, "OK"), ("B", 6, "OK"), ("C", 9, "OK"), ("D", 59, "TIMEOUT"), ("E", 62, "OK")]
    return evolve(state, events[0])
