"""Replaying a log gives the same ring in every process, whatever Python's string-hash seed.

Sets and dicts of strings iterate in an order that depends on PYTHONHASHSEED; a sim that let
that order leak into placement, tie-breaks or random keys would differ between two workers.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

FOLD_SCRIPT = r"""
import json
from apps.hashring.sim import decide, evolve, initial_state, to_json

COMMANDS = [
    {"type": "add_random_keys", "count": 400, "_seed": "room:1"},
    {"type": "add_node", "name": "E", "vnodes": 16},
    {"type": "add_node", "vnodes": 3},
    {"type": "add_key", "key": "B#3"},
    {"type": "set_vnodes", "name": "A", "vnodes": 1},
    {"type": "remove_node", "name": "C"},
    {"type": "add_random_keys", "count": 250, "_seed": "room:6"},
    {"type": "set_replicas", "replicas": 2},
    {"type": "tick", "dt_ms": 500, "_seed": "room:8"},
    {"type": "lookup", "key": "user7"},
    {"type": "add_node", "name": "é-node", "vnodes": 40},
    {"type": "set_vnodes", "vnodes": 5},
    {"type": "remove_key", "key": "user3"},
]

state = initial_state()
for command in COMMANDS:
    for event in decide(state, command):
        state = evolve(state, event)
print(json.dumps(to_json(state), sort_keys=True))
print(json.dumps(state.counts, sort_keys=True))
print(json.dumps(state.owners.tolist()))
print(json.dumps(state.preference_list("user7")))
"""


def _fold_in_subprocess(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the sim needs no Django
    result = subprocess.run(
        [sys.executable, "-c", FOLD_SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def folded() -> dict[str, str]:
    return {seed: _fold_in_subprocess(seed) for seed in ("1", "2", "random")}


def test_replay_output_is_not_empty(folded):
    assert len(folded["1"].splitlines()) == 4


def test_replay_same_under_hash_seeds_1_and_2(folded):
    assert folded["1"] == folded["2"]


def test_replay_same_under_random_hash_seed(folded):
    assert folded["random"] == folded["1"]


def test_replay_in_subprocess_matches_this_process(folded):
    namespace: dict[str, object] = {}
    script = FOLD_SCRIPT.replace("print(", "lines.append(")
    exec("lines = []\n" + script, namespace)  # noqa: S102 - our own constant script
    assert "\n".join(namespace["lines"]) + "\n" == folded["1"]  # type: ignore[arg-type]
