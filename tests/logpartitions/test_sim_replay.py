"""Replaying a log gives the same cluster in every process, whatever Python's string-hash seed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

FOLD_SCRIPT = r"""
import json
from apps.logpartitions.sim import decide, evolve, initial_state, to_json, group_summaries

COMMANDS = [
    {"type": "produce_burst", "count": 300, "pattern": "random-users"},
    {"type": "produce_burst", "count": 200, "pattern": "none"},
    {"type": "group_join", "group": "analytics", "member": "zed"},
    {"type": "group_join", "group": "analytics", "member": "amy"},
    {"type": "set_assignor", "group": "analytics", "assignor": "cooperative-sticky"},
    {"type": "group_join", "group": "analytics", "member": "émile"},
    {"type": "broker_stop", "broker": 1},
    {"type": "produce", "key": "order-7"},
    *[{"type": "tick", "dt_ms": 1000}] * 4,
    {"type": "broker_stop", "broker": 0},
    {"type": "set_unclean", "on": True},
    {"type": "broker_start", "broker": 1},
    {"type": "group_leave", "group": "analytics", "member": "amy"},
    {"type": "tick", "dt_ms": 1000},
]

state = initial_state({"partitions": 5})
for i, command in enumerate(COMMANDS):
    for event in decide(state, {**command, "_seed": f"room:{i}"}):
        state = evolve(state, event)
print(json.dumps(to_json(state), sort_keys=True))
print(json.dumps(group_summaries(state), sort_keys=True))
"""


def _fold_in_subprocess(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the sim needs no Django
    result = subprocess.run([sys.executable, "-c", FOLD_SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_fold_is_the_same_under_different_string_hash_seeds():
    assert _fold_in_subprocess("1") == _fold_in_subprocess("2") == _fold_in_subprocess("random")
