"""Every frame the room engine sends, rendered in one place.

A frame is one JSON text: ``{"seq", "content", ...}`` where ``content`` is htmx out-of-band
markup. An accepted command is rendered once (:func:`render_outgoing`) and the same frame goes to
every viewer of the room; a page that connects or resyncs gets :func:`render_full_frame`; a refusal,
a flood warning or a presence count are small frames of their own. The consumer and the room clock
only transport what this module renders.
"""
from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any, NamedTuple, TypeVar, cast

from django.template.loader import render_to_string

from . import fragments, personal, ratelimit
from .fragments import Change, Picture
from .models import Room
from .panels import lesson_html, room_bar_html, round_html
from .registry import Concept, RoomView, get
from .services import Applied, room_narration, room_state, room_view

T = TypeVar("T")
LESSON_KINDS = frozenset({"lesson_started", "lesson_step", "lesson_stopped"})
ROUND_KINDS = frozenset({"round_opened", "round_closed", "round_entry"})


@functools.lru_cache(maxsize=8)
def _flash_cached(message: str) -> str:
    return render_to_string("rooms/_flash.html", {"message": message, "level": "error", "oob": True})


# Every command the page has sent and not seen answered is settled (dropped from its outbox):
# the answer to a flood, when the socket starts dropping frames unread, and again when it stops.
SETTLE_ALL = json.dumps({"settle_all": True})


def flooded_frame(command_id: str | None) -> str:
    return json.dumps({"error": ratelimit.FLOODED, "command_id": command_id, "settle_all": True,
                       "content": _flash_cached(ratelimit.FLOODED)})


def slow_down_frame(command_id: str | None) -> str:
    """The answer to a rate-limited frame: cheap (the flash is rendered once), with its id."""
    return json.dumps({"error": ratelimit.SLOW_DOWN, "command_id": command_id, "content": _flash_cached(ratelimit.SLOW_DOWN)})


def error_frame(message: str, command_id: str | None = None) -> str:
    """A refusal, to its sender alone. It names the command it refuses when the frame named one:
    the page then drops that command from its outbox, so nothing refused is sent again."""
    return json.dumps({"error": message, "command_id": command_id, "content": flash_html(message)})


# -- the concept's picture, cached and diffed here (the concept supplies it as data) ---------------

_MEMO: OrderedDict[Hashable, Any] = OrderedDict()
_LAST: OrderedDict[str, tuple[int, Picture]] = OrderedDict()  # room code -> (seq, its picture)
_LOCK = threading.Lock()  # render threads share both caches
MEMO_SIZE, LAST_SIZE = 64, 256


def memo(key: Hashable, build: Callable[[], T]) -> T:
    """A bounded cache for what a picture draws from part of the state (the ring's arcs depend
    on its nodes alone): ``build()`` runs when ``key`` is new. Keys name their concept."""
    with _LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return cast(T, _MEMO[key])
    value = build()
    with _LOCK:
        _MEMO[key] = value
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return value


def _remember(code: str, seq: int, picture: Picture) -> None:
    with _LOCK:
        _LAST[code] = (seq, picture)
        _LAST.move_to_end(code)
        while len(_LAST) > LAST_SIZE:
            _LAST.popitem(last=False)


def _recalled(code: str, seq: int) -> Picture | None:
    with _LOCK:
        hit = _LAST.get(code)
    return hit[1] if hit is not None and hit[0] == seq else None


def picture_full(concept: Concept, state: Any, view: RoomView, room: str | None = None) -> str:
    """The concept's whole picture (every region, layer and panel) as out-of-band swaps; with
    ``room`` (a key naming the room), kept as the picture the room's next update starts from."""
    picture = concept.picture(state, view, None)
    if room is not None:
        _remember(room, view.seq, picture)
    return fragments.full(picture)


def picture_update(concept: Concept, before: Any, after: Any, events: list[dict[str, Any]], view: RoomView,
                   room: tuple[str, int] | None = None, view_before: RoomView | None = None) -> str:
    """The swaps that turn the picture of ``before`` into the picture of ``after``. With ``room``
    (a key naming the room, and the seq ``before`` stood at), the picture drawn for the room's last frame is
    reused as the one before, and this one kept for the next. ``view_before``: the room as it
    was before the events (its round), for drawing the picture before when it is not kept."""
    old = _recalled(*room) if room is not None else None
    if old is None:
        old = concept.picture(before, view_before or replace(view, seq=view.seq - len(events)), None)
    new = concept.picture(after, view, Change(before, events))
    if room is not None:
        _remember(room[0], view.seq, new)
    return fragments.diff(old, new)


def page_picture(concept: Concept, state: Any, view: RoomView) -> Picture:
    """The picture a room page is rendered with (the page template places it)."""
    return concept.picture(state, view, None)


def flash_html(message: str, level: str = "error") -> str:
    return render_to_string("rooms/_flash.html", {"message": message, "level": level, "oob": True})


def _room_panels(room: Room, concept: Concept, state: Any, view: RoomView, *, lesson: bool, round_: bool) -> str:
    html = room_bar_html(view, concept)
    if lesson:
        html += lesson_html(room, concept)
    if round_:
        html += round_html(room, concept, state)
    return html


def render_broadcast(applied: Applied) -> str:
    """The one text frame every viewer of the room receives for these events."""
    room = applied.room
    concept = get(room.concept)
    view = room_view(room)
    kinds = {e.kind for e in applied.events}
    events = [{"kind": e.kind, "data": e.data} for e in applied.events]
    before_view = replace(view, seq=room.seq - len(events), round=applied.round_before)
    html = picture_update(concept, applied.before, applied.after, events, view,
                          room=(f"{room.code}:{room.seed}", room.seq - len(events)), view_before=before_view)
    html += _room_panels(
        room, concept, applied.after, view,
        lesson=bool(kinds & LESSON_KINDS),
        # The leaderboard follows ownership, so it is redrawn while a round is open (and once
        # more when one opens or closes); a closed round's board no longer rides every tick.
        round_=room.round is not None and (bool(room.round.get("open")) or bool(kinds & ROUND_KINDS)),
    )
    if round_game_over(room, concept, kinds):  # every "yours" panel of the last game is over, on every screen
        html += personal.CLEARED
    html += render_to_string(
        "rooms/_narration.html",
        {"lines": [(e.seq, e.narration) for e in applied.events], "oob": True, "append": True},
    )
    # The command's id lets the sender's page clear the form it came from.
    return json.dumps({"seq": room.seq, "from": applied.events[0].seq, "command_id": applied.events[0].command_id, "content": html})



def round_game_over(room: Room, concept: Concept, kinds: set[str]) -> bool:
    """Did these events end the round's game: the round opened or closed, or, while it is open,
    a new scene or a new game (``resets_entries``) began?"""
    if kinds & {"round_opened", "round_closed"}:
        return True
    spec = concept.round_spec(room.round["kind"]) if room.round and room.round.get("open") else None
    return spec is not None and bool(kinds & (spec.resets_entries | concept.scene_events))


class Outgoing(NamedTuple):
    """What an applied command sends: one frame for everyone, and person -> frame for the
    participants whose own panel changed; ``order``: the seqs the frame covers (first, last), so
    every process's relay delivers a room's frames in seq order (``fanout.py``)."""

    frame: str
    mine: dict[str, str]
    order: tuple[int, int]


def render_outgoing(applied: Applied) -> Outgoing:
    concept = get(applied.room.concept)
    mine = personal.changed_panels(concept, applied.round_before, applied.room.round, applied.before, applied.after)
    return Outgoing(render_broadcast(applied), mine, (applied.events[0].seq, applied.room.seq))


def render_full_frame(room: Room, person: str = "") -> str:
    """The whole state, for a page that connects or resyncs; with ``person``, their own panel
    (or empty ones, so a panel a missed frame should have cleared is cleared)."""
    concept = get(room.concept)
    state = room_state(room)
    view = room_view(room)
    html = picture_full(concept, state, view, room=f"{room.code}:{room.seed}")
    html += _room_panels(room, concept, state, view, lesson=True, round_=True)
    html += personal.my_panels(concept, state, room.round, person)
    html += render_to_string("rooms/_narration.html", {"lines": room_narration(room), "oob": True})
    return json.dumps({"seq": room.seq, "full": True, "content": html})


def presence_frame(count: int) -> str:
    html = render_to_string("rooms/_presence.html", {"count": count, "oob": True})
    return json.dumps({"presence": count, "content": html})


