"""What the contract tests share: the registered concepts, their lessons folded once, views,
narration and refusal rules, and the commands a room page can send."""
from __future__ import annotations

import functools
import importlib
import json
import re
from dataclasses import dataclass
from typing import Any

from apps.rooms.lessons import Lesson, lessons_for
from apps.rooms.registry import REGISTRY, Concept, RoomView
from tests.contract import bad_inputs
from tests.contract.dom import El, parse
from tests.lessonfold import Moment, StepRun, decide_all, fold_lesson

try:  # the room clock's tick length (the registry has it once the kit lands)
    from apps.rooms.registry import TICK_MS  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - before the kit
    from apps.rooms.clock import TICK_MS


def concepts() -> list[Concept]:
    return sorted(REGISTRY.values(), key=lambda c: c.slug)


def slugs() -> list[str]:
    return [c.slug for c in concepts()]


def every_lesson() -> list[tuple[str, str]]:
    return [(c.slug, lesson.slug) for c in concepts() for lesson in lessons_for(c.slug)]


def lesson(concept_slug: str, lesson_slug: str) -> Lesson:
    return next(x for x in lessons_for(concept_slug) if x.slug == lesson_slug)


@functools.lru_cache(maxsize=64)
def runs(concept_slug: str, lesson_slug: str) -> tuple[StepRun, ...]:
    """The lesson folded through the pure sim (once per test session)."""
    return tuple(fold_lesson(REGISTRY[concept_slug], lesson(concept_slug, lesson_slug)))


@dataclass
class Transition:
    """What one frame shows: the states on either side and the events between them."""

    what: str
    before: Any
    after: Any
    moments: list[Moment]
    seq: int  # the room's seq after it

    @property
    def events(self) -> list[dict[str, Any]]:
        return [m.event for m in self.moments]


TICK = {"type": "tick", "dt_ms": TICK_MS}


def transitions(concept_slug: str, lesson_slug: str) -> list[Transition]:
    """Each lesson step as one frame (lesson_next applies a step's commands together), and, for a
    concept that plays over time, one room-clock tick after each step."""
    concept = REGISTRY[concept_slug]
    out = []
    for run in runs(concept_slug, lesson_slug):
        where = f"{concept_slug}/{lesson_slug}, step {run.index + 1} ({run.title})"
        out.append(Transition(where, run.before, run.after, list(run.moments), run.seq))
        if concept.ticks:
            tick = decide_all(concept, run.after, [TICK], f"tick:{run.seq + 1}", f"{where}, then a clock tick")
            if tick:
                out.append(Transition(f"{where}, then a clock tick", run.after, tick[-1].after, tick, run.seq + len(tick)))
    return out


def view(seq: int, role: str = "presenter") -> RoomView:
    return RoomView(code="CNTRCT", seq=seq, position=seq, playing=False, speed=1.0, role=role)


def documented(concept: Concept, state: Any) -> dict[str, Any]:
    return (getattr(concept, "state_json", None) or concept.to_json)(state)


def transient_layers(concept: Concept, state: Any, seq: int) -> frozenset[str]:
    """The ids of the picture's transient layers (``fragments.Layer.transient``: replaced whole by
    every update, so a full picture and an update legitimately differ there)."""
    picture_of = getattr(concept, "picture", None)
    if picture_of is not None:
        pic = picture_of(state, view(seq), None)
    else:  # a concept not yet on the kit draws with its own module's picture(state, view[, change])
        draw = importlib.import_module(f"apps.{concept.page_template.split('/', 1)[0]}.picture").picture
        try:
            pic = draw(state, view(seq), None)
        except TypeError:
            pic = draw(state, view(seq))
    return frozenset(layer.id for layer in pic.layers.values() if layer.transient)


# -- sentences ----------------------------------------------------------------------------------

NOT_A_SENTENCE = re.compile(r"Traceback|object at 0x|\{'|\['|\w+Error\b|Exception\b|<class ")


def sentence_problem(text: Any, kind: str | None = None) -> str | None:
    """Why ``text`` is not a sentence for a person: empty, the event's kind or its words, no end
    punctuation, or a traceback or a repr leaking out."""
    if not isinstance(text, str) or not text.strip():
        return f"{text!r} is not text"
    line = text.strip()
    if kind is not None and line.rstrip(".").lower() in (kind.lower(), kind.replace("_", " ").lower()):
        return f"{line!r} is only the event's kind"
    if len(line) < 8 or " " not in line:
        return f"{line!r} is too short to be a sentence"
    if not line.endswith((".", "!", "?", ")", "…", ":")):
        return f"{line!r} does not end like a sentence"
    if NOT_A_SENTENCE.search(line):
        return f"{line!r} shows code (a traceback, an exception or a repr)"
    return None


# -- what a room page can send ------------------------------------------------------------------

def _dataset_name(attr: str) -> str:
    """``data-arg-dt_ms`` -> ``dt_ms``, ``data-arg-max-count`` -> ``maxCount`` (as room.js reads
    ``el.dataset``)."""
    rest = attr[len("data-arg-"):]
    return re.sub(r"-([a-z])", lambda m: m.group(1).upper(), rest)


def _form_fields(form: El) -> dict[str, tuple[Any, str]]:
    """What a form sends, as the browser serialises it: name -> (value, the input's type)."""
    body: dict[str, tuple[Any, str]] = {}
    for el in form.walk():
        name = el.attrs.get("name")
        if not name or "disabled" in el.attrs:
            continue
        kind = el.attrs.get("type", "text").lower()
        if el.tag == "input" and kind in ("checkbox", "radio"):
            if "checked" in el.attrs:
                body[name] = (el.attrs.get("value", "on"), kind)
        elif el.tag == "input" and kind not in ("submit", "button", "reset", "image", "file"):
            body[name] = (el.attrs.get("value", ""), kind)
        elif el.tag == "select":
            options = [o for o in el.walk() if o.tag == "option"]
            chosen = next((o for o in options if "selected" in o.attrs), options[0] if options else None)
            if chosen is not None:
                text = "".join(c for c in chosen.children if isinstance(c, str)).strip()
                body[name] = (chosen.attrs.get("value", text), "select")
        elif el.tag == "textarea":
            body[name] = ("".join(c for c in el.children if isinstance(c, str)), "textarea")
    return body


@dataclass(frozen=True)
class PageCommand:
    source: str  # where on the page it comes from, for messages
    command: dict[str, Any]
    kinds: dict[str, str]  # field -> its kind (bad_inputs.INT, TEXT...), read from the page

    def key(self) -> str:
        return json.dumps(self.command, sort_keys=True)

    def __str__(self) -> str:
        return f"{self.command} (from {self.source})"


def page_commands(page: str) -> list[PageCommand]:
    """Every command the page's controls send (room.js and htmx's hx-ws:send): an element's
    ``data-send`` and ``data-arg-*`` (plus ``data-args-from``'s form fields), a button's
    ``hx-vals``, and each ``hx-ws:send`` form's fields. Distinct commands, in page order."""
    every = [el for root in parse(page) if isinstance(root, El) for el in root.walk()]
    by_id = {el.id: el for el in every if el.id}
    inside_forms = {id(el) for f in every if f.tag == "form" for el in f.walk() if el is not f}
    found: dict[str, PageCommand] = {}

    def add(source: str, fields: dict[str, tuple[Any, str]]) -> None:
        command = {k: v for k, (v, _t) in fields.items()}
        kinds = {k: bad_inputs.kind_of(v, t) for k, (v, t) in fields.items() if k != "type"}
        item = PageCommand(source, command, kinds)
        found.setdefault(item.key(), item)

    for el in every:
        if "data-send" in el.attrs and id(el) not in inside_forms:
            fields: dict[str, tuple[Any, str]] = {"type": (el.attrs["data-send"], "")}
            extra = by_id.get(el.attrs.get("data-args-from", ""))
            if extra is not None:
                fields.update({k: v for k, v in _form_fields(extra).items() if k != "type"})
            fields.update({_dataset_name(k): (v, "") for k, v in el.attrs.items() if k.startswith("data-arg-")})
            add(f"<{el.tag} data-send={el.attrs['data-send']!r}>", fields)
        elif el.tag == "form" and "hx-ws:send" in el.attrs:
            fields = _form_fields(el)
            add(f"a form sending {fields.get('type', ('no type', ''))[0]!r}", fields)
        elif "hx-ws:send" in el.attrs and "hx-vals" in el.attrs:
            add(f"<{el.tag} hx-vals={el.attrs['hx-vals']!r}>", {k: (v, "") for k, v in json.loads(el.attrs["hx-vals"]).items()})
    return list(found.values())


# -- a lesson in a real room ---------------------------------------------------------------------

def fold_of_the_log(room: Any, upto: int | None = None) -> Any:
    """The room's log folded by hand, event by event from ``room_created``: no snapshot, no
    cache (a rewind folds the log again up to its target)."""
    from apps.rooms.models import RoomEvent
    from apps.rooms.services import ROOM_KINDS

    concept = REGISTRY[room.concept]
    state = None
    rows = RoomEvent.objects.filter(room=room).order_by("seq")
    for ev in rows.filter(seq__lte=upto) if upto is not None else rows:
        if ev.kind == "room_created":
            given = ev.data.get("state")
            state = concept.from_json(given) if given is not None else concept.initial_state(ev.data.get("params") or {})
        elif ev.kind == "rewound":
            state = fold_of_the_log(room, ev.data["to_seq"])
        elif ev.kind not in ROOM_KINDS:
            state = concept.evolve(state, {"kind": ev.kind, "data": ev.data})
    return state


def lesson_in_a_room(room: Any, lesson_slug: str, steps: int):  # noqa: ANN201 - a generator of (index, Applied)
    """Run a lesson in ``room`` as its presenter does (lesson_start, then lesson_next), yielding
    after each step."""
    from apps.rooms.services import Actor, room_command_apply

    presenter = Actor("presenter")
    for index in range(steps):
        command = {"type": "lesson_start", "lesson": lesson_slug} if index == 0 else {"type": "lesson_next"}
        yield index, room_command_apply(code=room.code, actor=presenter, command=command)
