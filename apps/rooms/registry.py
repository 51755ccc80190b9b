"""How the concept-agnostic room engine knows the concepts: each app registers one ``Concept``
in its ``AppConfig.ready()``. The engine calls only what is listed here.

One room-clock tick is ``TICK_MS`` of simulated time: the clock (and a presenter's "step") sends
``{"type": "tick", "dt_ms": TICK_MS}``, so a concept never guesses a tick's length."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from django.apps import apps

if TYPE_CHECKING:
    from .fragments import Change, Picture

TICK_MS = 1000


@dataclass(frozen=True)
class RoundSpec:
    """A hands-on round the presenter can open: what a participant may do while it is open."""

    kind: str
    title: str
    instructions: str
    student_command: str  # the one command type a participant sends in this round
    to_command: Callable[[Any, dict[str, Any], str], dict[str, Any]]  # (state, body, name) -> concept command
    input_label: str | None  # the one text field a participant fills in (None: just a button)
    entry_key: str = "key"  # which field of the translated command names the participant's entry
    # Concept events that start the round's game afresh: everyone may take part again.
    resets_entries: frozenset[str] = frozenset()
    # A participant acts more than once (the students who are the saga's services answer each
    # request): their first command makes their entry, later ones go to ``to_command`` as moves.
    moves: bool = False
    # Concept commands the round starts with, from the state when it opens: a game that keeps its
    # own players in the concept state (the lock's race) clears them, so a new round is a new game.
    on_open: Callable[[Any], list[dict[str, Any]]] | None = None


def no_page_context(state: Any, view: "RoomView") -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Concept:
    """A concept is its simulation, its picture and its lessons (``docs/new-concept.md``)."""

    slug: str
    title: str
    blurb: str
    # The simulation (pure): decide refuses a command by raising apps.common.sim.validate.Rejected
    # with a sentence for the sender; evolve folds one event; narrate says it in plain words.
    initial_state: Callable[[dict[str, Any]], Any]
    decide: Callable[[Any, dict[str, Any]], list[dict[str, Any]]]
    evolve: Callable[[Any, dict[str, Any]], Any]
    to_json: Callable[[Any], dict[str, Any]]
    from_json: Callable[[dict[str, Any]], Any]
    narrate: Callable[[Any, Any, dict[str, Any]], str]
    # The page: the concept's own markup (extending rooms/room_page.html), placing the picture.
    page_template: str
    # The picture as data: (state, view, Change or None) -> fragments.Picture. The engine renders,
    # caches and diffs it (frames.py).
    picture: Callable[[Any, "RoomView", "Change | None"], "Picture"]
    # One typed description per event kind: kind -> the TypedDict of its data (the contract
    # suite checks every event against it).
    events: Mapping[str, Any]
    # Extras for the page template besides the picture (forms' limits, tables).
    page_context: Callable[[Any, "RoomView"], dict[str, Any]] = no_page_context
    # The documented state (``/r/<code>/state.json``): the fold of the log and what follows.
    state_json: Callable[[Any], dict[str, Any]] | None = None
    ticks: bool = False  # does the concept play over time (room clock)?
    rounds: tuple[RoundSpec, ...] = ()
    # (state, round dict) -> the round's class-wide panel (leaderboard).
    round_panel: Callable[[Any, dict[str, Any] | None], str] | None = None
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

    def documented_state(self, state: Any) -> dict[str, Any]:
        return (self.state_json or self.to_json)(state)

    @property
    def app(self) -> str:
        """The concept's Django app label: the folder of its page template."""
        return self.page_template.split("/", 1)[0]

    @property
    def stylesheet(self) -> str:
        """The concept's own styles, beside its templates: ``<app>/static/<app>/<app>.css``."""
        return f"{self.app}/{self.app}.css"

    @property
    def script(self) -> str | None:
        """The concept's own script, if it truly needs one: ``<app>/static/<app>/<app>.js``."""
        return _own_script(self.app)

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


SIMULATION_PARTS = ("initial_state", "decide", "evolve", "to_json", "from_json", "narrate")


def simulation(sim: ModuleType, **overrides: Any) -> dict[str, Any]:
    """A Concept's simulation fields, taken from its ``sim`` package by name (``initial_state``,
    ``decide``, ``evolve``, ``to_json``, ``from_json``, ``narrate``, and ``EVENTS`` as ``events``);
    ``overrides`` replace any of them (a ``decide`` that reads the settings' limits first)::

        CONCEPT = Concept(slug=..., title=..., blurb=..., **simulation(sim, decide=decide), ...)
    """
    parts: dict[str, Any] = {name: overrides.get(name) or getattr(sim, name) for name in SIMULATION_PARTS}
    parts["events"] = overrides.get("events") or sim.EVENTS
    return {**parts, **overrides}


@lru_cache(maxsize=None)
def _own_script(app: str) -> str | None:
    path = Path(apps.get_app_config(app).path) / "static" / app / f"{app}.js"
    return f"{app}/{app}.js" if path.exists() else None


REGISTRY: dict[str, Concept] = {}

# Concepts shown on the home page before their app exists: (slug, title, one line).
COMING: list[tuple[str, str, str]] = [
    ("sharding", "Sharding", "Hash, range and directory sharding, hot shards and the cost of resharding."),
    ("api-protocols", "API protocols", "REST, gRPC, GraphQL, WebSocket, webhooks, MQTT and AMQP, message by message."),
]


def register(concept: Concept) -> None:
    REGISTRY[concept.slug] = concept


def get(slug: str) -> Concept:
    return REGISTRY[slug]
