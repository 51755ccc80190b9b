"""Folding a lesson file through a concept's pure sim, as lesson_start / lesson_next do: each
command gets a ``_seed`` from the room's seed, the step's number and the command's index. Shared
by the concepts' own lesson tests (tests/<concept>/test_lessons_run.py); no Django."""
from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def load(folder: Path, slug: str) -> dict[str, Any]:
    with (folder / f"{slug}.toml").open("rb") as fh:
        return tomllib.load(fh)


@dataclass
class Folded:
    seq: int  # the step's number, from 1
    step: dict[str, Any]  # the step as the file has it
    before: Any
    after: Any
    events: list[dict[str, Any]]


def fold_steps(folder: Path, slug: str, state: Any, decide: Callable[[Any, dict[str, Any]], list[dict[str, Any]]],
               evolve: Callable[[Any, dict[str, Any]], Any], rejected: type[Exception],
               room_seed: str = "lesson") -> Iterator[Folded]:
    """Each step's state before and after its commands, in order; a refused command fails the test."""
    for seq, step in enumerate(load(folder, slug)["steps"], start=1):
        before, events = state, []
        for i, command in enumerate(step.get("commands", [])):
            try:
                produced = decide(state, dict(command, _seed=f"{room_seed}:{seq}:{i}"))
            except rejected as exc:
                pytest.fail(f"{slug}, step {seq} ({step['title']}), command {i} {command}: rejected: {exc}")
            for ev in produced:
                state = evolve(state, ev)
            events += produced
        yield Folded(seq, step, before, state, events)
