"""How the concept-agnostic room engine knows the concepts: each app registers one ``Concept``
in its ``AppConfig.ready()``. The engine calls only what is listed here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class RoundSpec:
    """A hands-on round the presenter can open: what a participant may do while it is open."""

    kind: str
    title: str
    instructions: str
    student_command: str  # the one command type a participant sends in this round
    to_command: Callable[[Any, dict[str, Any], str], dict[str, Any]]  # (state, body, name) -> concept command
    entry_key: str = "key"  # which field of the translated command names the participant's entry
    input_label: str | None = "Your key"  # the one text field a participant fills in (None: just a button)
    # Concept events that start the round's game afresh: everyone may take part again.
    resets_entries: frozenset[str] = frozenset()
    # Concept commands the round starts with, from the state when it opens: a game that keeps its
    # own players in the concept state (the lock's race) clears them, so a new round is a new game.
    on_open: Callable[[Any], list[dict[str, Any]]] | None = None


@dataclass(frozen=True)
class Concept:
    slug: str
    title: str
    blurb: str
    # The decider (pure simulation core).
    initial_state: Callable[[dict[str, Any]], Any]
    decide: Callable[[Any, dict[str, Any]], list[dict[str, Any]]]
    evolve: Callable[[Any, dict[str, Any]], Any]
    to_json: Callable[[Any], dict[str, Any]]
    from_json: Callable[[dict[str, Any]], Any]
    rejected: type[Exception]
    # Presentation.
    page_template: str
    page_context: Callable[[Any, "RoomView"], dict[str, Any]]
    render_full: Callable[[Any, "RoomView"], str]
    render_update: Callable[[Any, Any, list[dict[str, Any]], "RoomView"], str]
    narrate: Callable[[Any, Any, dict[str, Any]], str]
    state_json: Callable[[Any], dict[str, Any]]
    ticks: bool = False  # does the concept play over time (room clock)?
    rounds: tuple[RoundSpec, ...] = ()
    # (state, round dict) -> the round's class-wide panel (leaderboard); (state, entry) -> "yours".
    round_panel: Callable[[Any, dict[str, Any] | None], str] | None = None
    round_marks: Callable[[Any, dict[str, Any] | None], str] | None = None  # SVG children for #ring-round
    # A participant's own panel (``<section id="my-entry">``) for their round entry. The engine
    # renders it again after every change of state, for the round's entries only, and sends it to
    # that participant's sockets when it changed (``personal.py``): keep it a pure function of
    # (state, entry).
    my_entry: Callable[[Any, dict[str, Any]], str] | None = None
    # Optional, for speed: a cheap value (comparable with ==) that ``my_entry`` depends on, e.g.
    # the owner and neighbours of the student's key. Given it, the engine draws a panel again
    # only when its basis changed; without it, it draws every entry's panel after every change
    # of state (a tick too) and compares the markup.
    my_entry_basis: Callable[[Any, dict[str, Any]], Any] | None = None
    # Concept events that load a new scene: the round's entries, leaderboard, marks and every
    # participant's own panel are over (the round, if open, stays open for new entries).
    scene_events: frozenset[str] = frozenset({"scene_loaded"})

    @property
    def stylesheet(self) -> str:
        """The concept's own styles, beside its templates: ``<app>/static/<app>/<app>.css``."""
        app = self.page_template.split("/", 1)[0]
        return f"{app}/{app}.css"

    def round_spec(self, kind: str) -> RoundSpec | None:
        return next((r for r in self.rounds if r.kind == kind), None)


@dataclass(frozen=True)
class RoomView:
    """What a template may know about the room besides the simulation state."""

    code: str
    seq: int
    position: int
    playing: bool
    speed: float
    role: str = "viewer"
    classroom: bool = False
    view_only: bool = False
    round: dict[str, Any] | None = None
    lesson: dict[str, Any] | None = None

    @property
    def speeds(self) -> tuple[float, ...]:
        return (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


REGISTRY: dict[str, Concept] = {}

# Concepts shown on the home page before their app exists: (slug, title, one line).
COMING: list[tuple[str, str, str]] = [
    ("workflow-graphs", "Workflow graphs", "One order saga run as orchestration and as choreography, with compensation."),
    ("sharding", "Sharding", "Hash, range and directory sharding, hot shards and the cost of resharding."),
    ("api-protocols", "API protocols", "REST, gRPC, GraphQL, WebSocket, webhooks, MQTT and AMQP, message by message."),
]


def register(concept: Concept) -> None:
    REGISTRY[concept.slug] = concept


def get(slug: str) -> Concept:
    return REGISTRY[slug]
