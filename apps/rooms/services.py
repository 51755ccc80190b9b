"""Room services: create a room, apply a command, fold the log.

A command is validated by the concept's ``decide`` against the room's current state, and the
events it returns are appended with ``seq = last + 1`` in one transaction, together with the
room row (``select_for_update`` on PostgreSQL; SQLite's IMMEDIATE transactions serialise
writers). The state is then rendered once and broadcast; see ``consumers.py``.
"""
from __future__ import annotations

import hashlib
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.common.sim.validate import WHOLE, Rejected, clean_number, command_problem, text_problem

from .lessons import lesson as find_lesson
from .models import Room, RoomEvent, RoomSnapshot
from .registry import TICK_MS, Concept, RoomView, get

# Unambiguous when read aloud or typed on a phone: no 0/O, 1/I/L, 5/S, 8/B.
JOIN_ALPHABET = "ACDEFGHJKMNPQRTUVWXY234679"
JOIN_LENGTH = 6

ROOM_KINDS = frozenset({
    "room_created", "rewound", "clock_set", "classroom_set", "view_only_set",
    "round_opened", "round_closed", "round_entry", "lesson_started", "lesson_step", "lesson_stopped",
})
MIN_SPEED, MAX_SPEED = 0.25, 8.0


class CommandRejected(Exception):
    """Raised with a message for the sender; nothing was appended."""


class ClockLost(CommandRejected):
    """A room clock's tick from a process that no longer holds the room's clock (it was paused,
    or cut off, while another took the lease over): refused in the same transaction as the
    append, under the room row's lock, so two processes never both tick."""


class PresenterRevoked(CommandRejected):
    """A co-presenter whose link was replaced by a newer one sent a command: refused, and their
    socket presents no more."""


REVOKED = ("Your co-presenter link was replaced by a newer one, so this screen no longer presents the room; "
           "nothing changed. Ask the presenter for the new link.")


@dataclass(frozen=True)
class Actor:
    role: str
    name: str = ""
    pid: str = ""  # a participant's stable id (from their session), for "one entry per round"
    # A co-presenter's claimed link generation (None: the room's creator, or not a presenter). A
    # presenter whose generation is not the room's current one is refused (PresenterRevoked).
    generation: int | None = None


SYSTEM = Actor("system")


@dataclass
class Applied:
    room: Room
    events: list[RoomEvent]
    before: Any
    after: Any
    duplicate: bool = False
    narration: list[str] = field(default_factory=list)
    round_before: dict[str, Any] | None = None  # room.round before these events (whose panels to compare)


# -- join codes and keys ---------------------------------------------------------------------

def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_ALPHABET) for _ in range(JOIN_LENGTH))


def normalise_code(raw: str) -> str:
    return "".join(ch for ch in raw.upper() if ch.isalnum())[:12]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# -- the fold -------------------------------------------------------------------------------

class _StateCache:
    """The last folded state per room in this process, keyed by the seq it reflects.

    A stale entry (another process appended since) is detected by comparing seqs under the
    room lock, and refolded from the newest snapshot.
    """

    def __init__(self, size: int = 64) -> None:
        self._items: OrderedDict[tuple[int, str], tuple[int, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, room: Room) -> Any | None:
        key = (room.pk, room.code)
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != room.seq:
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, room: Room, state: Any) -> None:
        key = (room.pk, room.code)
        with self._lock:
            self._items[key] = (room.seq, state)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


STATE_CACHE = _StateCache()


def state_at(room: Room, seq: int) -> Any:
    """Fold the log of ``room`` up to and including ``seq``."""
    concept = get(room.concept)
    snap = RoomSnapshot.objects.filter(room=room, seq__lte=seq).order_by("-seq").first()
    state = concept.from_json(snap.state) if snap else None
    start = snap.seq if snap else 0
    for event in RoomEvent.objects.filter(room=room, seq__gt=start, seq__lte=seq).order_by("seq").iterator():
        state = apply_event(room, concept, state, event.kind, event.data)
    return state


def apply_event(room: Room, concept: Concept, state: Any, kind: str, data: dict[str, Any]) -> Any:
    if kind == "room_created":
        if data.get("state") is not None:
            return concept.from_json(data["state"])
        return concept.initial_state(data.get("params") or {})
    if kind == "rewound":
        return state_at(room, data["to_seq"])
    if kind in ROOM_KINDS:
        return state
    return concept.evolve(state, {"kind": kind, "data": data})


def room_state(room: Room) -> Any:
    """The state at ``room.seq``, from this process's cache when it is fresh."""
    state = STATE_CACHE.get(room)
    if state is None:
        state = state_at(room, room.seq)
        STATE_CACHE.put(room, state)
    return state


def room_view(room: Room, role: str = "viewer") -> RoomView:
    return RoomView(code=room.code, seq=room.seq, position=room.position, playing=room.playing, speed=room.speed,
                    role=role, classroom=room.classroom, view_only=room.view_only, round=room.round, lesson=room.lesson)


# -- create / fork ---------------------------------------------------------------------------

def room_create(*, concept: str, params: dict[str, Any] | None = None, state: Any = None,
                parent: Room | None = None) -> tuple[Room, str]:
    """Create a room whose log starts with ``room_created``. Returns (room, presenter key)."""
    spec = get(concept)
    presenter_key = secrets.token_urlsafe(24)  # 192 bits
    for _ in range(20):
        code = new_join_code()
        try:
            with transaction.atomic():
                room = Room.objects.create(
                    code=code,
                    concept=concept,
                    seed=secrets.token_hex(8),
                    seq=1,
                    position=1,
                    presenter_key_hash=hash_key(presenter_key),
                    parent=parent,
                    parent_seq=parent.seq if parent else None,
                )
                data: dict[str, Any] = {"params": params or {}}
                if state is not None:
                    data["state"] = spec.to_json(state)
                if parent is not None:
                    data["forked_from"] = {"code": parent.code, "seq": parent.seq}
                line = (f"Forked from room {parent.code} at event {parent.seq}: this room is yours to try things."
                        if parent else f"Room created: {spec.title}.")
                RoomEvent.objects.create(room=room, seq=1, kind="room_created", data=data, narration=line)
            return room, presenter_key
        except IntegrityError:
            continue
    raise RuntimeError("could not find a free join code")


def room_fork(*, room: Room) -> tuple[Room, str]:
    """"Try it yourself": a new private room starting at this room's current state."""
    return room_create(concept=room.concept, state=room_state(room), parent=room)


# -- apply ---------------------------------------------------------------------------------

PRESENTER_ONLY = "Only the presenter can do that."


def authorise(concept: Concept, room: Room, actor: Actor, command_type: str) -> None:
    """Who may send what. Participants act only inside a round the presenter opened."""
    if actor.role == "presenter":
        return
    if actor.role == "system":
        if command_type not in ("tick", "pause"):
            raise CommandRejected("The room clock may only tick.")
        return
    if actor.role == "viewer":
        raise CommandRejected("This screen is view-only.")
    if room.view_only:
        raise CommandRejected("The presenter has made this room view-only for now.")
    spec = concept.round_spec(room.round["kind"]) if room.round and room.round.get("open") else None
    if spec is None:
        raise CommandRejected(f"{PRESENTER_ONLY} Wait for the presenter to open a round.")
    if command_type != spec.student_command:
        raise CommandRejected(f"{PRESENTER_ONLY} In this round you can: {spec.instructions}")


Events = list[dict[str, Any]]


def _step_back(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    if room.position <= 1:
        raise CommandRejected("This is the start of the room: there is nothing to step back to.")
    return [{"kind": "rewound", "data": {"to_seq": room.position - 1, "from_seq": room.seq}}]


def _rewind(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    raw = command.get("to_seq")
    if isinstance(raw, str) and WHOLE.fullmatch(raw.strip()):
        raw = int(raw)
    elif isinstance(raw, str) and raw.strip().isdigit():
        raise CommandRejected(f"Rewind goes to an event from 1 to {room.seq}.")  # more than twelve digits
    if isinstance(raw, bool) or not isinstance(raw, int):  # true, 2.5, Infinity, [3]: not an event number
        raise CommandRejected("Rewind needs the event number to go back to (a whole number).")
    if not 1 <= raw <= room.seq:
        raise CommandRejected(f"Rewind goes to an event from 1 to {room.seq}.")
    if raw == room.position:
        raise CommandRejected(f"The room already shows event {raw}.")
    return [{"kind": "rewound", "data": {"to_seq": raw, "from_seq": room.seq}}]


def _present(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    if room.classroom:
        raise CommandRejected("This room is already presented to a class.")
    return [{"kind": "classroom_set", "data": {"classroom": True}}]


def _stop_presenting(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    if not room.classroom:
        raise CommandRejected("This room is not being presented.")
    return [{"kind": "classroom_set", "data": {"classroom": False}}]


def _view_only(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    value = clean_switch(command.get("on"), "View-only")
    if value == room.view_only:
        raise CommandRejected("The room is already " + ("view-only." if value else "open to participants."))
    return [{"kind": "view_only_set", "data": {"view_only": value}}]


def _round_open(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    raw = command.get("kind", "")
    spec = concept.round_spec(raw) if isinstance(raw, str) else None
    if spec is None:
        raise CommandRejected("There is no such round for this concept.")
    if room.round and room.round.get("open"):
        raise CommandRejected("A round is already open: close it first.")
    opened = [{"kind": "round_opened", "data": {"kind": spec.kind, "title": spec.title}}]
    return opened + (_decide_all(room, concept, state, spec.on_open(state), "Opening the round") if spec.on_open else [])


def _round_close(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    if not (room.round and room.round.get("open")):
        raise CommandRejected("No round is open.")
    return [{"kind": "round_closed", "data": {"entries": len(room.round.get("entries", []))}}]


def _clock_concept(concept: Concept) -> None:
    if not concept.ticks:
        raise CommandRejected("This concept does not play over time.")


def _play(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    _clock_concept(concept)
    if room.playing:
        raise CommandRejected("The room is already playing.")
    return [{"kind": "clock_set", "data": {"playing": True, "speed": room.speed}}]


def _pause(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    _clock_concept(concept)
    if not room.playing:
        raise CommandRejected("The room is already paused.")
    data: dict[str, Any] = {"playing": False, "speed": room.speed}
    if isinstance(command.get("reason"), str):
        data["reason"] = command["reason"][:200]
    return [{"kind": "clock_set", "data": data}]


def _speed(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    _clock_concept(concept)
    speed = _engine_value(clean_number, command.get("speed"), "Speed", -math.inf, math.inf)  # never true, "fast" or 1e309
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise CommandRejected(f"Speed goes from {MIN_SPEED}x to {MAX_SPEED:g}x.")
    return [{"kind": "clock_set", "data": {"playing": room.playing, "speed": speed}}]


SWITCH_ON = ("on", "true", "yes", "1")
SWITCH_OFF = ("off", "false", "no", "0", "")


def clean_switch(raw: Any, what: str) -> bool:
    """On or off: a JSON boolean, or the text a form or a data attribute sends. Not a number
    (``2``), not a nested value; a missing value is off."""
    if raw is None or isinstance(raw, bool):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in SWITCH_ON + SWITCH_OFF:
        return raw.strip().lower() in SWITCH_ON
    raise CommandRejected(f"{what} is either on or off (true or false).")


def _engine_value(check: Any, raw: Any, what: str, low: Any, high: Any) -> Any:
    """A value of an engine command, by the same rule as every concept's (``validate.py``)."""
    try:
        return check(raw, what, low, high)
    except Rejected as exc:
        raise CommandRejected(str(exc)) from None


def _lesson(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> Events:
    return _lesson_command(room, concept, state, command)


# The commands the engine handles itself, for every concept: history, presenting, rounds,
# lessons and the clock. Each handler returns the events, or refuses with CommandRejected.
EngineHandler = Callable[[Room, Concept, Any, dict[str, Any]], Events]
ENGINE_HANDLERS: dict[str, EngineHandler] = {
    "step_back": _step_back, "rewind": _rewind, "present": _present, "stop_presenting": _stop_presenting,
    "view_only": _view_only, "round_open": _round_open, "round_close": _round_close,
    "lesson_start": _lesson, "lesson_next": _lesson, "lesson_prev": _lesson, "lesson_stop": _lesson,
    "play": _play, "pause": _pause, "speed": _speed,
}
ENGINE_COMMANDS = frozenset(ENGINE_HANDLERS)


def _decide_all(room: Room, concept: Concept, state: Any, commands: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    """Decide several concept commands in turn, each against the state the previous ones left."""
    events: list[dict[str, Any]] = []
    for i, command in enumerate(commands):
        cmd = dict(command)
        if cmd.get("type") == "tick" and "dt_ms" not in cmd:  # a lesson's tick is one clock tick long
            cmd["dt_ms"] = TICK_MS
        cmd["_seed"] = f"{room.seed}:{room.seq + 1}:{i}"
        try:
            produced = concept.decide(state, cmd)
        except Rejected as exc:
            raise CommandRejected(f"{what} could not run: {exc}") from None
        for ev in produced:
            state = apply_event(room, concept, state, ev["kind"], ev["data"])
        events.extend(produced)
    return events


def _lesson_command(room: Room, concept: Concept, state: Any, command: dict[str, Any]) -> list[dict[str, Any]]:
    kind = command["type"]
    current = room.lesson
    if kind == "lesson_start":
        raw = command.get("lesson", "")
        found = find_lesson(room.concept, raw) if isinstance(raw, str) else None
        if found is None:
            raise CommandRejected("There is no such lesson.")
        step = found.steps[0]
        return ([{"kind": "lesson_started", "data": {"slug": found.slug, "title": found.title, "steps": len(found.steps)}}]
                + _decide_all(room, concept, state, list(step.commands), f"Step 1 ({step.title})")
                + [{"kind": "lesson_step", "data": {"slug": found.slug, "step": 0, "start": room.seq, "title": step.title}}])
    if current is None:
        raise CommandRejected("No lesson is running.")
    found = find_lesson(room.concept, current["slug"])
    if found is None:
        raise CommandRejected("This lesson is no longer available.")
    if kind == "lesson_stop":
        return [{"kind": "lesson_stopped", "data": {"slug": current["slug"]}}]
    if kind == "lesson_next":
        nxt = current["step"] + 1
        if nxt >= len(found.steps):
            raise CommandRejected("That was the last step of the lesson.")
        step = found.steps[nxt]
        return (_decide_all(room, concept, state, list(step.commands), f"Step {nxt + 1} ({step.title})")
                + [{"kind": "lesson_step", "data": {"slug": found.slug, "step": nxt, "start": room.seq, "title": step.title}}])
    # lesson_prev: rewind to where the current step began, and show the step before it.
    if current["step"] == 0:
        raise CommandRejected("This is the first step of the lesson.")
    start = current["starts"][current["step"]]
    return [{"kind": "rewound", "data": {"to_seq": start, "from_seq": room.seq}},
            {"kind": "lesson_step", "data": {"slug": found.slug, "step": current["step"] - 1, "start": None,
                                             "title": found.steps[current["step"] - 1].title}}]


def _round_entry(room: Room, concept: Concept, state: Any, actor: Actor, command: dict[str, Any]) -> list[dict[str, Any]]:
    """A participant's move in the open round: the concept's command, then the entry record."""
    assert room.round is not None
    spec = concept.round_spec(room.round["kind"])
    assert spec is not None
    if not actor.pid:  # one entry per person: a connection without the page's session is nobody yet
        raise CommandRejected("Open the room's page (or reload it) to take part: this connection does not say who you are.")
    mine = next((e for e in room.round.get("entries", []) if e.get("pid") == actor.pid), None)
    if mine is not None and spec.moves:  # a move in a round of many: no second entry
        return _decide_all(room, concept, state, [spec.to_command(state, command, actor.name)], "Your move")
    if mine is not None:
        raise CommandRejected(f"You have already taken part in this round: {mine.get('entry', '')}. One entry each.")
    translated = spec.to_command(state, command, actor.name)
    events = _decide_all(room, concept, state, [translated], "Your entry")
    entry = {"pid": actor.pid, "name": actor.name, "entry": str(translated.get(spec.entry_key, ""))}
    return events + [{"kind": "round_entry", "data": entry}]


def _apply_meta(room: Room, kind: str, data: dict[str, Any]) -> None:
    """Room-level events also update the row's cached room-level state."""
    if kind == "clock_set":
        room.playing, room.speed = data["playing"], data["speed"]
        room.clock_next_tick = None  # played, paused or sped up: the clock ticks at its next turn
    elif kind == "classroom_set":
        room.classroom = data["classroom"]
    elif kind == "view_only_set":
        room.view_only = data["view_only"]
    elif kind == "round_opened":
        room.round = {"kind": data["kind"], "title": data["title"], "open": True, "entries": []}
    elif kind == "round_closed" and room.round:
        room.round = {**room.round, "open": False}
    elif kind == "round_entry" and room.round:
        room.round = {**room.round, "entries": room.round.get("entries", []) + [data]}
    elif kind == "lesson_started":
        room.lesson = {"slug": data["slug"], "title": data["title"], "steps": data["steps"], "step": -1, "starts": []}
    elif kind == "lesson_step" and room.lesson:
        starts = list(room.lesson["starts"][: data["step"]])
        if data["start"] is not None:
            starts.append(data["start"])
        else:
            starts = list(room.lesson["starts"][: data["step"] + 1])
        room.lesson = {**room.lesson, "step": data["step"], "starts": starts}
    elif kind == "lesson_stopped":
        room.lesson = None


META_FIELDS = ["seq", "position", "playing", "speed", "clock_next_tick", "classroom", "view_only", "round", "lesson"]


def room_command_apply(*, code: str, actor: Actor, command: dict[str, Any], command_id: str | None = None) -> Applied:
    """Validate ``command`` against the room's state and append the events it causes."""
    if not isinstance(command, dict) or not isinstance(command.get("type"), str):
        raise CommandRejected("A command needs a type.")
    # What no database stores (a lone surrogate, NUL) and no command takes (Infinity, NaN, nested
    # objects) is refused here for every caller, before anything is looked up or appended.
    problem = command_problem(command)
    if problem is None and command_id is not None:
        problem = ("A command id is text of at most 64 characters." if not isinstance(command_id, str) or not 0 < len(command_id) <= 64
                   else text_problem(command_id))
    if problem is not None:
        raise CommandRejected(f"{problem} Nothing changed.")
    kind = command["type"]
    with transaction.atomic():
        room = Room.objects.select_for_update().filter(code=code).first()
        if room is None:
            raise CommandRejected("This room does not exist any more.")
        concept = get(room.concept)
        # A resend of an accepted command is acknowledged as such, even if the sender may no
        # longer send it (the round closed meanwhile): it was applied once, when it was allowed.
        if command_id and RoomEvent.objects.filter(room=room, command_id=command_id).exists():
            state = room_state(room)
            return Applied(room=room, events=[], before=state, after=state, duplicate=True)
        if actor.role == "presenter" and actor.generation is not None and actor.generation != room.copresenter_generation:
            raise PresenterRevoked(REVOKED)
        authorise(concept, room, actor, kind)
        if actor.role == "system" and kind == "tick" and not room.playing:
            raise CommandRejected("The clock is paused.")
        if actor.role == "system" and "_owner" in command and room.clock_owner != command["_owner"]:
            raise ClockLost("Another process holds this room's clock now.")
        command = {k: v for k, v in command.items() if k != "_owner"}
        before = room_state(room)
        if actor.role == "participant":
            raw_events = _round_entry(room, concept, before, actor, command)
        elif kind in ENGINE_COMMANDS:
            raw_events = ENGINE_HANDLERS[kind](room, concept, before, command)
        else:
            if kind == "step":  # one tick now, whether or not the clock plays
                if not concept.ticks:
                    raise CommandRejected("This concept does not play over time.")
                command = {"type": "tick", "dt_ms": TICK_MS}
            cmd = dict(command)
            cmd["_seed"] = f"{room.seed}:{room.seq + 1}"
            try:
                raw_events = concept.decide(before, cmd)
            except Rejected as exc:
                raise CommandRejected(str(exc)) from None
        if not raw_events:
            raise CommandRejected("That changes nothing.")
        state = before
        round_before = room.round
        rows = []
        narration = []
        for i, ev in enumerate(raw_events):
            seq = room.seq + 1 + i
            prev = state
            state = apply_event(room, concept, state, ev["kind"], ev["data"])
            _apply_meta(room, ev["kind"], ev["data"])
            spec = concept.round_spec(room.round["kind"]) if room.round and room.round.get("open") else None
            if spec is not None and (ev["kind"] in spec.resets_entries or ev["kind"] in concept.scene_events):
                room.round = {**(room.round or {}), "entries": []}  # a new game (or a new scene) in the same round
            line = _narrate(concept, prev, state, ev)
            narration.append(line)
            rows.append(RoomEvent(room=room, seq=seq, kind=ev["kind"], data=ev["data"], narration=line,
                                  command_id=command_id if i == 0 else None, actor=actor.role))
        RoomEvent.objects.bulk_create(rows)
        room.seq += len(rows)
        rewinds = [ev for ev in raw_events if ev["kind"] == "rewound"]
        later = [ev for ev in raw_events[raw_events.index(rewinds[-1]) + 1:] if ev["kind"] not in ROOM_KINDS] if rewinds else None
        # The room shows the rewound-to event, unless concept events followed the rewind.
        room.position = rewinds[-1]["data"]["to_seq"] if rewinds and not later else room.seq
        if rewinds and room.playing:
            room.playing = False  # scrubbing history stops the clock
        room.save(update_fields=META_FIELDS)
        every = settings.DISTVIZ_SNAPSHOT_EVERY
        if room.seq // every != (room.seq - len(rows)) // every:
            RoomSnapshot.objects.create(room=room, seq=room.seq, state=concept.to_json(state))
    STATE_CACHE.put(room, state)
    return Applied(room=room, events=rows, before=before, after=state, narration=narration, round_before=round_before)


def _narrate(concept: Concept, before: Any, after: Any, event: dict[str, Any]) -> str:
    kind, data = event["kind"], event["data"]
    if kind == "classroom_set":
        return "Presenting to a class: students join with the room code." if data["classroom"] else "Stopped presenting."
    if kind == "view_only_set":
        return "The room is view-only: students follow but cannot act." if data["view_only"] else "Students can take part again."
    if kind == "round_opened":
        return f"Round open: {data['title']}."
    if kind == "round_closed":
        return f"Round closed with {data['entries']} entr{'y' if data['entries'] == 1 else 'ies'}."
    if kind == "round_entry":
        return f"{data['name']} took part: {data['entry']}."
    if kind == "lesson_started":
        return f"Lesson: {data['title']} ({data['steps']} steps)."
    if kind == "lesson_step":
        title = f": {data['title']}" if data.get("title") else ""
        return f"Lesson step {data['step'] + 1}{title}."
    if kind == "lesson_stopped":
        return "Lesson ended."
    if kind == "rewound":
        return f"Went back to event {data['to_seq']} (the log keeps everything: this rewind is event {data['from_seq'] + 1})."
    if kind == "clock_set":
        line = f"Clock {'playing' if data['playing'] else 'paused'} at {data['speed']:g}x."
        return f"{line} {data['reason']}" if data.get("reason") else line
    return concept.narrate(before, after, event)


def room_narration(room: Room, limit: int = 6) -> list[tuple[int, str]]:
    """The last few narration lines, as written into the log."""
    events = RoomEvent.objects.filter(room=room).order_by("-seq").values_list("seq", "narration")[:limit]
    return list(reversed(list(events)))
