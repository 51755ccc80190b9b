"""Guided lessons are data: one TOML file per lesson in ``apps/<concept>/lessons/``.

A lesson is a list of steps; a step has a title, narration, a question for the class, and the
commands (the same ones the page sends) that take the room there. The presenter steps forward
(the step's commands are applied) and back (the room rewinds to where the step began). A
teacher adds a lesson by adding a file: no code. ``DISTVIZ_LESSONS_DIR`` may name one more
folder, with a sub-folder per concept.
"""
from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.apps import apps

from .registry import REGISTRY


log = logging.getLogger(__name__)


class LessonError(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    title: str
    narration: str
    question: str
    commands: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Lesson:
    slug: str
    concept: str
    title: str
    summary: str
    steps: tuple[Step, ...]


def _text(data: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise LessonError(f"{where}: '{key}' must be text")
    return " ".join(value.split())


def parse_lesson(slug: str, concept: str, raw: dict[str, Any]) -> Lesson:
    where = f"lesson {concept}/{slug}"
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise LessonError(f"{where}: needs at least one [[steps]]")
    steps = []
    for i, step in enumerate(steps_raw, start=1):
        if not isinstance(step, dict):
            raise LessonError(f"{where}, step {i}: a step is a table")
        commands = step.get("commands", [])
        if not isinstance(commands, list) or not all(isinstance(c, dict) and isinstance(c.get("type"), str) for c in commands):
            raise LessonError(f"{where}, step {i}: commands are tables with a 'type'")
        steps.append(Step(
            title=_text(step, "title", f"{where}, step {i}"),
            narration=_text(step, "narration", f"{where}, step {i}"),
            question=_text(step, "question", f"{where}, step {i}", required=False),
            commands=tuple(commands),
        ))
    return Lesson(slug=slug, concept=concept, title=_text(raw, "title", where), summary=_text(raw, "summary", where, required=False),
                  steps=tuple(steps))


def _folders(concept: str) -> list[Path]:
    """The concept's own ``lessons/`` folder (in the app its registration names), then
    ``DISTVIZ_LESSONS_DIR/<concept>``."""
    folders = []
    spec = REGISTRY.get(concept)
    if spec is not None:
        folders.append(Path(apps.get_app_config(spec.app).path) / "lessons")
    extra = os.environ.get("DISTVIZ_LESSONS_DIR")
    if extra:
        folders.append(Path(extra) / concept)
    return [f for f in folders if f.is_dir()]


@lru_cache(maxsize=32)
def lessons_for(concept: str) -> tuple[Lesson, ...]:
    found = []
    for folder in _folders(concept):
        for path in sorted(folder.glob("*.toml")):
            try:
                with path.open("rb") as fh:
                    found.append(parse_lesson(path.stem, concept, tomllib.load(fh)))
            except (OSError, tomllib.TOMLDecodeError, LessonError) as exc:
                log.error("skipping lesson %s: %s", path, exc)
    # A lesson in DISTVIZ_LESSONS_DIR with a shipped lesson's name replaces it.
    by_slug = {lesson.slug: lesson for lesson in found}
    return tuple(by_slug.values())


def lesson_problems() -> list[str]:
    """Every lesson file that cannot be used, with why (for ``manage.py check``)."""
    problems = []
    for slug in REGISTRY:
        for folder in _folders(slug):
            for path in sorted(folder.glob("*.toml")):
                try:
                    with path.open("rb") as fh:
                        parse_lesson(path.stem, slug, tomllib.load(fh))
                except (OSError, tomllib.TOMLDecodeError, LessonError) as exc:
                    problems.append(f"{path}: {exc}")
    return problems


def lesson(concept: str, slug: str) -> Lesson | None:
    return next((item for item in lessons_for(concept) if item.slug == slug), None)
