"""Folding a lesson through a concept's pure sim, as lesson_start / lesson_next do: each command
gets a ``_seed`` from the room's seed, the room's seq and the command's index. Shared by the
concepts' own lesson tests (tests/<concept>/test_lessons_run.py), the lesson-number contract and
the concept contract (tests/contract/); no database.

Two folds: :func:`fold_steps` reads a lesson file by path (the concepts' own lesson tests), and
:func:`fold_lesson` runs a parsed :class:`apps.rooms.lessons.Lesson` through a registered concept
with the seeds a real room gives (``services._lesson_command``: ``"<room seed>:<seq + 1>:<i>"``,
where seq counts the room's events so far, ``room_created``, ``lesson_started`` and each
``lesson_step`` included), keeping every event with the states on either side of it.

A lesson file may write a tick as ``{ type = "tick" }``: the engine gives it one room-clock tick
(``dt_ms = TICK_MS``, ``services._decide_all``), and so do both folds (:func:`as_room_sends`).
"""
from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from apps.common.sim.validate import Rejected
from apps.rooms.registry import TICK_MS


def load(folder: Path, slug: str) -> dict[str, Any]:
    with (folder / f"{slug}.toml").open("rb") as fh:
        return tomllib.load(fh)


def as_room_sends(command: dict[str, Any], seed: str) -> dict[str, Any]:
    """The command as the engine hands it to ``decide``: with its ``_seed``, and a tick without a
    length made one room-clock tick long (``services._decide_all``)."""
    cmd = dict(command)
    if cmd.get("type") == "tick" and "dt_ms" not in cmd:
        cmd["dt_ms"] = TICK_MS
    cmd["_seed"] = seed
    return cmd


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
                produced = decide(state, as_room_sends(command, f"{room_seed}:{seq}:{i}"))
            except rejected as exc:
                pytest.fail(f"{slug}, step {seq} ({step['title']}), command {i} {command}: rejected: {exc}")
            for ev in produced:
                state = evolve(state, ev)
            events += produced
        yield Folded(seq, step, before, state, events)


@dataclass
class Moment:
    """One event and the states on either side of it."""

    before: Any
    event: dict[str, Any]
    after: Any


@dataclass
class StepRun:
    concept: str
    lesson: str
    index: int  # from 0
    title: str
    narration: str
    question: str
    commands: list[dict[str, Any]]
    before: Any
    after: Any
    events: list[dict[str, Any]]
    moments: list[Moment] = field(default_factory=list)
    seq: int = 0  # the room's seq once the step is shown (after its lesson_step)


def decide_all(concept: Any, state: Any, commands: list[dict[str, Any]], seed: str, where: str) -> list[Moment]:
    """Decide and fold ``commands`` in turn, each against the state the previous ones left, with
    ``_seed = "<seed>:<index>"`` and a tick's ``dt_ms`` (``services._decide_all``); a refused
    command fails the test."""
    moments: list[Moment] = []
    for i, command in enumerate(commands):
        try:
            produced = concept.decide(state, as_room_sends(command, f"{seed}:{i}"))
        except Rejected as exc:
            pytest.fail(f"{where}: {command} refused: {exc}")
        for event in produced:
            after = concept.evolve(state, event)
            moments.append(Moment(state, event, after))
            state = after
    return moments


def fold_lesson(concept: Any, lesson: Any, room_seed: str = "lesson") -> list[StepRun]:
    """The lesson's steps as a fresh room applies them (lesson_start, then lesson_next)."""
    state = concept.initial_state({})
    seq = 1  # room_created
    runs = []
    for index, step in enumerate(lesson.steps):
        where = f"{concept.slug}/{lesson.slug}, step {index + 1} ({step.title})"
        moments = decide_all(concept, state, list(step.commands), f"{room_seed}:{seq + 1}", where)
        after = moments[-1].after if moments else state
        seq += len(moments) + (2 if index == 0 else 1)  # lesson_started (first step) and lesson_step
        runs.append(StepRun(concept.slug, lesson.slug, index, step.title, step.narration, step.question,
                            [dict(c) for c in step.commands], state, after, [m.event for m in moments], moments, seq))
        state = after
    return runs
