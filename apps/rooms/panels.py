"""Room-level panels, the same for every concept: the room bar, the lesson, the round."""
from __future__ import annotations

from typing import Any

from .fragments import render_tight
from .lessons import lesson as find_lesson
from .lessons import lessons_for
from .models import Room
from .registry import Concept, RoomView


def room_bar_html(view: RoomView, concept: Concept) -> str:
    return render_tight("rooms/_room_bar.html", {"view": view, "concept": concept, "oob": True})


def lesson_context(room: Room, concept: Concept) -> dict[str, Any]:
    current = room.lesson
    found = find_lesson(concept.slug, current["slug"]) if current else None
    step = found.steps[current["step"]] if found and current and 0 <= current["step"] < len(found.steps) else None
    return {
        "lesson": current if found else None,
        "step": step,
        "step_number": (current["step"] + 1) if current else 0,
        "lessons": lessons_for(concept.slug),
    }


def lesson_html(room: Room, concept: Concept) -> str:
    return render_tight("rooms/_lesson.html", lesson_context(room, concept))


def shown_round(room: Room) -> dict[str, Any] | None:
    """The round the class sees: the open one. A closed round's board and marks are gone from
    every screen (its entries stay in the room's row and in the log)."""
    return room.round if room.round and room.round.get("open") else None


def round_html(room: Room, concept: Concept, state: Any) -> str:
    """The round's class-wide panel (its marks on the picture, if any, are the concept's picture)."""
    if concept.round_panel is None:
        return ""
    return concept.round_panel(state, shown_round(room))
