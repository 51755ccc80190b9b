"""The counter board: tokens on a row of slots, the smallest concept on the kit (docs/new-concept.md).

The presenter adds, moves and removes tokens; each tick moves one token (in turn) one slot on;
in the "own token" round each participant adds a token (the name they type, or theirs). The
engine's own tests run on it, so they depend on no real concept's internals."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any, Callable, TypedDict

from apps.common.sim.validate import Rejected, clean_int, clean_name
from apps.rooms.fragments import Change, Picture, markup
from apps.rooms.registry import Concept, RoomView, RoundSpec

MAX_TOKENS, MAX_NAME = 12, 24


@dataclass(frozen=True)
class Board:
    slots: int = 6
    tokens: tuple[tuple[str, int], ...] = ()  # (name, slot), in the order they came
    clock_ms: int = 0
    ticks: int = 0

    def slot_of(self, name: str) -> int | None:
        return next((slot for n, slot in self.tokens if n == name), None)


TokenAdded = TypedDict("TokenAdded", {"name": str, "slot": int})
TokenMoved = TypedDict("TokenMoved", {"name": str, "from_slot": int, "to_slot": int})
Ticked = TypedDict("Ticked", {"to_ms": int, "moved": str | None, "to_slot": int | None})
SceneLoaded = TypedDict("SceneLoaded", {"slots": int})
EVENTS = {"token_added": TokenAdded, "token_removed": TokenAdded, "token_moved": TokenMoved, "ticked": Ticked,
          "scene_loaded": SceneLoaded}
Events = list[dict[str, Any]]


def _name(state: Board, raw: Any, exists: bool) -> str:
    name = clean_name(raw, "token", MAX_NAME)
    if exists and state.slot_of(name) is None:
        raise Rejected(f"There is no token called {name}.")
    if not exists and state.slot_of(name) is not None:
        raise Rejected(f"There is already a token called {name}.")
    return name


def _add(state: Board, c: dict[str, Any]) -> Events:
    name = _name(state, c.get("name"), exists=False)
    if len(state.tokens) >= MAX_TOKENS:
        raise Rejected(f"The board holds at most {MAX_TOKENS} tokens.")
    return [{"kind": "token_added", "data": {"name": name, "slot": clean_int(c.get("slot", 0), "The slot", 0, state.slots - 1)}}]


def _remove(state: Board, c: dict[str, Any]) -> Events:
    name = _name(state, c.get("name"), exists=True)
    return [{"kind": "token_removed", "data": {"name": name, "slot": state.slot_of(name)}}]


def _move(state: Board, c: dict[str, Any]) -> Events:
    name = _name(state, c.get("name"), exists=True)
    slot = clean_int(c.get("slot"), "The slot", 0, state.slots - 1)
    if slot == state.slot_of(name):
        raise Rejected(f"{name} is already in slot {slot}.")
    return [{"kind": "token_moved", "data": {"name": name, "from_slot": state.slot_of(name), "to_slot": slot}}]


def _tick(state: Board, c: dict[str, Any]) -> Events:
    to_ms = state.clock_ms + clean_int(c.get("dt_ms"), "A tick", 1, 3_600_000)
    if not state.tokens:
        return [{"kind": "ticked", "data": {"to_ms": to_ms, "moved": None, "to_slot": None}}]
    name, slot = state.tokens[state.ticks % len(state.tokens)]
    return [{"kind": "ticked", "data": {"to_ms": to_ms, "moved": name, "to_slot": (slot + 1) % state.slots}}]


def _load(state: Board, c: dict[str, Any]) -> Events:
    return [{"kind": "scene_loaded", "data": {"slots": clean_int(c.get("slots", 6), "The number of slots", 2, 12)}}]


DECIDE: dict[str, Callable[[Board, dict[str, Any]], Events]] = {
    "add_token": _add, "remove_token": _remove, "move_token": _move, "tick": _tick, "load_scene": _load}


def decide(state: Board, command: dict[str, Any]) -> Events:
    handler = DECIDE.get(command.get("type", ""))
    if handler is None:
        raise Rejected("The counter board has no such command.")
    return handler(state, command)


def _placed(state: Board, name: str, slot: int | None) -> tuple[tuple[str, int], ...]:
    return tuple((n, slot if n == name and slot is not None else s) for n, s in state.tokens)


EVOLVE: dict[str, Callable[[Board, dict[str, Any]], Board]] = {
    "token_added": lambda s, d: replace(s, tokens=s.tokens + ((d["name"], d["slot"]),)),
    "token_removed": lambda s, d: replace(s, tokens=tuple(t for t in s.tokens if t[0] != d["name"])),
    "token_moved": lambda s, d: replace(s, tokens=_placed(s, d["name"], d["to_slot"])),
    "ticked": lambda s, d: replace(s, clock_ms=d["to_ms"], ticks=s.ticks + 1, tokens=_placed(s, d["moved"], d["to_slot"])),
    "scene_loaded": lambda s, d: Board(slots=d["slots"], clock_ms=s.clock_ms),
}


def evolve(state: Board, event: dict[str, Any]) -> Board:
    return EVOLVE[event["kind"]](state, event["data"])


NARRATE: dict[str, Callable[[dict[str, Any]], str]] = {
    "token_added": lambda d: f"{d['name']} joined the board in slot {d['slot']}.",
    "token_removed": lambda d: f"{d['name']} left slot {d['slot']}.",
    "token_moved": lambda d: f"{d['name']} moved from slot {d['from_slot']} to slot {d['to_slot']}.",
    "ticked": lambda d: (f"Time passes to t={d['to_ms']:,} ms: {d['moved']} steps on to slot {d['to_slot']}." if d["moved"]
                         else f"Time passes to t={d['to_ms']:,} ms; no token to move."),
    "scene_loaded": lambda d: f"A new, empty board of {d['slots']} slots.",
}


def narrate(before: Board, after: Board, event: dict[str, Any]) -> str:
    return NARRATE[event["kind"]](event["data"])


def to_json(state: Board) -> dict[str, Any]:
    return {"slots": state.slots, "tokens": [[n, s] for n, s in state.tokens], "clock_ms": state.clock_ms, "ticks": state.ticks}


def from_json(doc: dict[str, Any]) -> Board:
    return Board(doc["slots"], tuple((n, s) for n, s in doc["tokens"]), doc["clock_ms"], doc["ticks"])


def key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def picture(state: Board, view: RoomView, change: Change | None) -> Picture:
    pic = Picture()
    pic.region("cb-board", "counterboard/_board.html", {"width": 60 * state.slots + 20, "slots": state.slots})
    for i in range(state.slots):
        pic.layer("cb-slots").add(f"s-{i}", markup("<rect id='s-{}' class='cb-slot' x='{}' y='15' width='50' height='50'/>", i, 60 * i + 10))
    tokens = pic.layer("cb-tokens")
    for name, slot in state.tokens:
        tokens.add(f"t-{key(name)}", markup("<circle id='t-{}' class='cb-token' cx='{}' cy='40' r='18' data-send='remove_token' "
                                            "data-arg-name='{}' tabindex='0' role='button'><title>{}</title></circle>",
                                            key(name), 60 * slot + 35, name, name))
    moves = pic.layer("cb-moves", transient=True)
    for event in change.events if change else []:
        name = event["data"].get("moved") or event["data"].get("name")
        if event["kind"] in ("token_moved", "ticked") and name:
            moves.add(f"mv-{key(name)}", markup("<circle id='mv-{}' class='cb-moved' r='22' cx='{}' cy='40'/>", key(name),
                                                60 * (state.slot_of(name) or 0) + 35))
    pic.panels["cb-summary"] = markup("<p id='cb-summary'><strong>{}</strong> tokens on {} slots · t={} ms</p>",
                                      len(state.tokens), state.slots, f"{state.clock_ms:,}")
    return pic


def my_entry(state: Board, entry: dict[str, Any]) -> str:
    slot = state.slot_of(entry["entry"])
    where = f"is in slot {slot}" if slot is not None else "has left the board"
    return markup('<section id="my-entry" class="panel mine" hx-swap-oob="outerMorph"><p>Your token {} {}.</p></section>',
                  entry["entry"], where)


def round_panel(state: Board, current: dict[str, Any] | None) -> str:
    """The class's entries, while a round is shown (an empty panel otherwise)."""
    took_part = markup("<p>From the class: {}</p>", ", ".join(e["name"] for e in current["entries"])) if current else ""
    return markup('<section id="round" class="panel round" hx-swap-oob="outerMorph">{}</section>', took_part)


OWN_TOKEN = RoundSpec(kind="own_token", title="Add your own token", instructions="add your own token to the board",
                      student_command="add_my_token", entry_key="name", input_label="Your token",  # typed, or your name
                      to_command=lambda state, body, name: {"type": "add_token", "name": body.get("key") or name, "slot": 0})

CONCEPT = Concept(
    slug="counter-board", title="Counter board", blurb="Tokens on a row of slots (the engine's test concept).",
    initial_state=lambda params: Board(), decide=decide, evolve=evolve, to_json=to_json, from_json=from_json,
    narrate=narrate, page_template="counterboard/page.html", picture=picture, events=EVENTS,
    page_context=lambda state, view: {"slots": state.slots}, ticks=True, rounds=(OWN_TOKEN,), my_entry=my_entry, round_panel=round_panel,
)
