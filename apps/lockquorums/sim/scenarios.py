"""Kleppmann's three scenarios as command lists, for every mode, to run step by step.

``scenario_commands(name, fencing, mode)`` gives plain command dicts (each with its own
``_seed``), so the lead can feed them one at a time to ``decide``/``evolve``; ``run`` folds them.
The same fault is played in each mode: "single" uses the one node R, "redlock" nodes A-E,
"consensus" nodes A-E as lease-service members.
"""
from __future__ import annotations

from typing import Any, Iterator

from apps.common.sim import Rejected

from .decide import decide
from .evolve import evolve
from .state import LockState, initial_state

SCENARIOS = ("process_pause", "clock_jump", "crash_restart")


def scenario_commands(name: str, fencing: bool, mode: str = "redlock", ttl_ms: int = 10_000) -> list[dict[str, Any]]:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; one of {', '.join(SCENARIOS)}")
    cmds: list[dict[str, Any]] = [{"type": "set_fencing", "on": fencing}]
    if name == "process_pause":
        cmds += [
            {"type": "acquire", "client": "C1"},                 # token 33
            {"type": "client_pause", "client": "C1", "ms": ttl_ms + ttl_ms // 2},  # GC, past the TTL
            {"type": "tick", "dt_ms": ttl_ms + 1000},            # the keys (or the lease) expire
            {"type": "acquire", "client": "C2"},                 # token 34
            {"type": "write", "client": "C2"},
            {"type": "tick", "dt_ms": ttl_ms // 2},              # C1 wakes, still believing it holds
            {"type": "write", "client": "C1"},                   # lost update, or "stale token 33 < 34"
        ]
    else:
        if mode == "single":
            fault = ([{"type": "clock_jump", "node": "R", "ms": ttl_ms}] if name == "clock_jump" else
                     [{"type": "node_crash", "node": "R"},
                      {"type": "node_restart", "node": "R", "persistence": False, "delayed": False}])
            cmds += [{"type": "acquire", "client": "C1"}, *fault]
        else:
            if name == "clock_jump" or mode == "consensus":
                fault = ([{"type": "clock_jump", "node": "C", "ms": ttl_ms}] if name == "clock_jump" else
                         # consensus members always fsync: the honest crash is a restart with its log
                         [{"type": "node_crash", "node": "C"},
                          {"type": "node_restart", "node": "C", "persistence": True, "delayed": False}])
            else:
                fault = [{"type": "node_crash", "node": "C"},
                         {"type": "node_restart", "node": "C", "persistence": False, "delayed": False}]
            cmds += [
                {"type": "link_cut", "client": "C1", "node": "D"},
                {"type": "link_cut", "client": "C1", "node": "E"},
                {"type": "link_cut", "client": "C2", "node": "A"},
                {"type": "link_cut", "client": "C2", "node": "B"},
                {"type": "acquire", "client": "C1"},             # A, B, C say OK: 3 of 5
                *fault,                                          # C forgets C1's key
                {"type": "tick", "dt_ms": 10},
            ]
        cmds += [
            {"type": "acquire", "client": "C2"},                 # C, D, E say OK: 3 of 5 too
            {"type": "write", "client": "C2"},
            {"type": "write", "client": "C1"},
        ]
    return [dict(c, _seed=f"{name}:{i}") for i, c in enumerate(cmds)]


def steps(name: str, fencing: bool, mode: str = "redlock", params: dict[str, Any] | None = None,
          ) -> Iterator[tuple[dict[str, Any], LockState, list[dict[str, Any]], str | None]]:
    """Fold a scenario one command at a time: ``(command, state after, its events, refusal)``.
    A command the state refuses is reported, not raised (a failed acquisition makes the later
    write of that client impossible, which is part of the lesson), and changes nothing."""
    state = initial_state({"mode": mode, **(params or {})})
    for cmd in scenario_commands(name, fencing, mode, state.ttl_ms):
        try:
            new = decide(state, cmd)
        except Rejected as exc:
            yield cmd, state, [], str(exc)
            continue
        for ev in new:
            state = evolve(state, ev)
        yield cmd, state, new, None


def run(name: str, fencing: bool, mode: str = "redlock", params: dict[str, Any] | None = None,
        ) -> tuple[LockState, list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """Fold a whole scenario: the end state, every event, and the refused commands."""
    state = initial_state({"mode": mode, **(params or {})})
    events: list[dict[str, Any]] = []
    rejected: list[tuple[dict[str, Any], str]] = []
    for cmd, state, new, refusal in steps(name, fencing, mode, params):
        if refusal is not None:
            rejected.append((cmd, refusal))
        events += new
    return state, events, rejected
