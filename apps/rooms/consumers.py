"""One WebSocket consumer for every concept.

A frame from htmx's ``hx-ws`` extension looks like
``{"headers": {"HX-Request-ID": "<uuid>", ...}, "body": {"type": "add_node", ...}}``;
``HX-Request-ID`` (or ``body.command_id``) is the command's id, so a resend is applied once.
Accepted commands are rendered once and broadcast as a ready-made text frame; each process's
relay (``fanout.py``) writes it to its local viewers. Rejections go to the sender alone.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from typing import Any, NamedTuple

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string

from apps.common.sim.validate import command_problem, text_problem

from . import clock, personal, presence, ratelimit
from .fanout import broadcast, group_name, relay  # noqa: F401  (group_name: for tests and tools)
from .panels import lesson_html, room_bar_html, round_html
from .models import Room
from .registry import Concept, RoomView, get
from .services import Actor, Applied, CommandRejected, PresenterRevoked, normalise_code, room_command_apply, room_narration, room_state, room_view

log = logging.getLogger(__name__)

# A student holding a key down must not flood the room: a token bucket per connection, and
# shared ones per person and per address (ratelimit.py).
RATE_PER_SECOND = ratelimit.CONNECTION_RATE
RATE_BURST = ratelimit.CONNECTION_BURST


class NotFinite(ValueError):
    """Infinity, -Infinity or NaN in a frame: Python's json reads them; no command takes them."""


def _refuse_constant(name: str) -> Any:
    raise NotFinite(name)


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


def role_for(session: Any, code: str, generation: int | None = None) -> str:
    """The room's creator (and whoever forked it) presents; so does a browser that claimed the
    room's co-presenter link while that link is the newest (``generation``: the room's
    ``copresenter_generation``; issuing a new link revokes every earlier claim)."""
    if session is None:
        return "participant"
    if code in session.get("presenter_rooms", []):
        return "presenter"
    claimed = copresenter_generation(session, code)
    if claimed is not None and generation is not None and claimed == generation:
        return "presenter"
    return "participant"


def copresenter_generation(session: Any, code: str) -> int | None:
    """The generation of the co-presenter link this browser claimed for the room, if it is not
    the room's creator (a creator's rights are never revoked by a new link)."""
    if session is None or code in session.get("presenter_rooms", []):
        return None
    claimed = session.get("copresenter", {})
    value = claimed.get(code) if isinstance(claimed, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def participant_name(session: Any, code: str) -> str:
    """The name a student gave when joining this room, or a stand-in made from their id."""
    names = session.get("names", {}) if session is not None else {}
    pid = session.get("pid", "") if session is not None else ""
    return names.get(code) or (f"Student {pid[:4].upper()}" if pid else "Student")


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
    html = concept.render_update(applied.before, applied.after, [{"kind": e.kind, "data": e.data} for e in applied.events], view)
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


LESSON_KINDS = frozenset({"lesson_started", "lesson_step", "lesson_stopped"})
ROUND_KINDS = frozenset({"round_opened", "round_closed", "round_entry"})


def round_game_over(room: Room, concept: Concept, kinds: set[str]) -> bool:
    """Did these events end the round's game: the round opened or closed, or, while it is open,
    a new scene or a new game (``resets_entries``) began?"""
    if kinds & {"round_opened", "round_closed"}:
        return True
    spec = concept.round_spec(room.round["kind"]) if room.round and room.round.get("open") else None
    return spec is not None and bool(kinds & (spec.resets_entries | concept.scene_events))


class Outgoing(NamedTuple):
    """What an applied command sends: one frame for everyone, and person -> frame for the
    participants whose own panel changed."""

    frame: str
    mine: dict[str, str]


def render_outgoing(applied: Applied) -> Outgoing:
    concept = get(applied.room.concept)
    mine = personal.changed_panels(concept, applied.round_before, applied.room.round, applied.before, applied.after)
    return Outgoing(render_broadcast(applied), mine)


def render_full_frame(room: Room, person: str = "") -> str:
    """The whole state, for a page that connects or resyncs; with ``person``, their own panel
    (or empty ones, so a panel a missed frame should have cleared is cleared)."""
    concept = get(room.concept)
    state = room_state(room)
    view = room_view(room)
    html = concept.render_full(state, view)
    html += _room_panels(room, concept, state, view, lesson=True, round_=True)
    html += personal.my_panels(concept, state, room.round, person)
    html += render_to_string("rooms/_narration.html", {"lines": room_narration(room), "oob": True})
    return json.dumps({"seq": room.seq, "full": True, "content": html})


def presence_frame(count: int) -> str:
    html = render_to_string("rooms/_presence.html", {"count": count, "oob": True})
    return json.dumps({"presence": count, "content": html})


@database_sync_to_async
def _load_room(code: str) -> Room | None:
    return Room.objects.filter(code=code).first()


@database_sync_to_async
def _room_seq(code: str) -> int | None:
    return Room.objects.filter(code=code).values_list("seq", flat=True).first()


def page_seq(scope: dict[str, Any]) -> int | None:
    """The seq the connecting page was rendered at (``?seq=N`` in the socket's URL), if any."""
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name == "seq" and value.isdigit() and len(value) < 12:
            return int(value)
    return None


@database_sync_to_async
def _full_frame(code: str, person: str = "") -> str | None:
    room = Room.objects.filter(code=code).first()
    return None if room is None else render_full_frame(room, person)


@database_sync_to_async
def _apply(code: str, actor: Actor, command: dict[str, Any], command_id: str | None) -> tuple[Applied, Outgoing | None]:
    """Apply, then render the broadcast and the own panels that changed (a new entry's too)."""
    applied = room_command_apply(code=code, actor=actor, command=command, command_id=command_id)
    if applied.duplicate:
        return applied, None
    return applied, render_outgoing(applied)


_presence_join = database_sync_to_async(presence.presence_join)
_presence_count = database_sync_to_async(presence.presence_count)
_PRESENCE_PENDING: set[str] = set()
PRESENCE_COALESCE_SECONDS = 0.4


def announce_presence(code: str) -> None:
    """Tell the room how many are connected, once per burst: thirty students joining at once
    make one broadcast, not thirty."""
    if code in _PRESENCE_PENDING:
        return
    _PRESENCE_PENDING.add(code)

    async def _later() -> None:
        await asyncio.sleep(PRESENCE_COALESCE_SECONDS)
        _PRESENCE_PENDING.discard(code)
        try:
            await broadcast(code, presence_frame(await _presence_count(code)))
        except Exception:
            log.debug("presence broadcast for %s failed", code, exc_info=True)

    asyncio.get_running_loop().create_task(_later())
_presence_leave = database_sync_to_async(presence.presence_leave)


class RoomConsumer(AsyncWebsocketConsumer):
    code: str = ""
    role: str = "viewer"

    async def connect(self) -> None:
        self.code = normalise_code(self.scope["url_route"]["kwargs"]["code"])
        self.joined = False
        session = self.scope.get("session")
        self.pid = (session.get("pid", "") if session is not None else "") or ""
        client = self.scope.get("client")
        self.address = str(client[0]) if client else ""
        room = await _load_room(self.code)
        if room is None:
            await self.close(code=4404)
            return
        self.concept = get(room.concept)
        self.role = role_for(session, self.code, room.copresenter_generation)
        # A co-presenter's rights last while their link's generation is the room's (checked again
        # on every command); None for the room's creator and everyone else.
        self.generation = copresenter_generation(session, self.code) if self.role == "presenter" else None
        if self.role == "participant" and b"as=viewer" in self.scope.get("query_string", b""):
            self.role = "viewer"  # a projector or an embed asks to be read-only (only ever a downgrade)
        self.name = participant_name(session, self.code)
        # The person behind this socket (the page's session), for one entry per person and for
        # the frames only they get; "" when the socket came without the page's session.
        self.person = self.pid if self.role == "participant" else ""
        self.tokens, self.refilled = RATE_BURST, time.monotonic()
        self.muted_until = 0.0
        ratelimit.LIMITS.joined(self.address, self.pid)
        self.counted = True
        await self.accept()
        await relay().join(self.code, self)
        self.joined = True
        presence.joined(self.code)
        presence.ensure_heartbeat(clock.OWNER, announce_presence)
        # A page that was rendered at the room's current seq already shows the whole state (its
        # picture, panels, narration and own panel): sending it again would double a repeat
        # visit's bytes. Read after joining the relay, so a command landing meanwhile is either
        # in this seq or reaches us as a broadcast.
        rendered_at = page_seq(self.scope)
        if rendered_at is None or rendered_at != await _room_seq(self.code):
            frame = await _full_frame(self.code, self.person)
            if frame:
                await self.send(text_data=frame)
        count = await _presence_join(code=self.code, channel=self.channel_name, role=self.role, name=self.name, owner=clock.OWNER)
        await self.send(text_data=presence_frame(count))  # this page knows at once; the room a moment later
        announce_presence(self.code)
        if self.concept.ticks and room.playing:
            clock.ensure(self.code)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            ratelimit.LIMITS.left(self.address, self.pid)
        if self.joined:
            self.joined = False
            presence.left(self.code)
            await relay().leave(self.code, self)
            try:
                await _presence_leave(code=self.code, channel=self.channel_name)
                announce_presence(self.code)
            except Exception:  # the room may be gone, or the server stopping: presence is best effort
                log.debug("presence update for %s failed", self.code, exc_info=True)

    async def reply_error(self, message: str, command_id: str | None = None) -> None:
        # Every refusal names the command it refuses when the frame named one: the page then drops
        # that command from its outbox, so nothing the server refused is sent again on reconnect.
        await self.send(text_data=json.dumps({"error": message, "command_id": command_id, "content": flash_html(message)}))

    def _allow(self, now: float) -> bool:
        """One token from this connection's bucket, then the person's and the address's
        (``ratelimit.py``): counted when the frame arrives, before any parsing or database work."""
        self.tokens = min(RATE_BURST, self.tokens + max(0.0, now - self.refilled) * RATE_PER_SECOND)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return ratelimit.LIMITS.allow(self.address, self.pid, now)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Frames are taken off the connection as they arrive (by ``_pump``), counted against the
        rate limits then, and a refused one is answered at once; only admitted messages wait for
        the consumer. Channels alone reads the next frame only when the last one is handled, so a
        busy consumer refilled its buckets between frames and a burst passed as a trickle."""
        admitted: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        pump = asyncio.ensure_future(self._pump(receive, admitted))
        try:
            await super().__call__(scope, admitted.get, send)
        finally:
            pump.cancel()

    async def _pump(self, receive: Any, admitted: asyncio.Queue[dict[str, Any]]) -> None:
        try:
            while True:
                message = await receive()
                if message.get("type") != "websocket.receive" or await self._admit(message):
                    admitted.put_nowait(message)
                if message.get("type") == "websocket.disconnect":
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # the connection is gone (a send failed): let the consumer end normally
            log.debug("room socket pump for %s stopped", self.code, exc_info=True)
            admitted.put_nowait({"type": "websocket.disconnect", "code": 1011})

    async def _admit(self, message: dict[str, Any]) -> bool:
        """Count one arriving frame; answer it here (and return False) when it is refused. No
        parsing and no database work: Channels' per-message clean-up alone would hop to the one
        thread every room's database work shares."""
        if not hasattr(self, "tokens"):  # not connected yet (no frame comes before the accept)
            return True
        now = time.monotonic()
        if self.muted_until:
            if now < self.muted_until:
                return False  # a flood: dropped unread, unanswered (the page was told to drop them)
            self.muted_until = 0.0
            await self.send(text_data=SETTLE_ALL)  # whatever it sent meanwhile was dropped
        if self._allow(now):
            return True
        if ratelimit.LIMITS.refused(self.address, self.pid, now):
            # This person is far past "slow down" (a key held down repeats some 30 times a second,
            # a flood thousands): this socket's frames are dropped unread for a while.
            self.muted_until = now + ratelimit.COOL_DOWN
            await self.send(text_data=flooded_frame(ratelimit.frame_id(message.get("text"))))
            return False
        await self.send(text_data=slow_down_frame(ratelimit.frame_id(message.get("text"))))
        return False

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        limit = settings.DISTVIZ_LIMITS["max_frame_bytes"]
        if bytes_data is not None:
            await self.reply_error("Binary frames are not understood here.")
            return
        if text_data is None or len(text_data) > limit or len(text_data.encode("utf-8", "surrogatepass")) > limit:
            await self.reply_error(f"That message is too large (the limit is {limit // 1024} KB).", ratelimit.frame_id(text_data))
            return
        try:
            frame = json.loads(text_data, parse_constant=_refuse_constant)
        except RecursionError:  # "[[[[...": nested past what the parser can follow, well under the size limit
            await self.reply_error("That message was not understood.", ratelimit.frame_id(text_data))
            return
        except NotFinite:
            await self.reply_error("A number must be finite (not Infinity or NaN); nothing changed.", ratelimit.frame_id(text_data))
            return
        except ValueError:
            await self.reply_error("That message was not understood (not JSON).", ratelimit.frame_id(text_data))
            return
        if not isinstance(frame, dict):
            await self.reply_error("That message was not understood.", ratelimit.frame_id(text_data))
            return
        body = frame.get("body", frame)
        headers = frame.get("headers") if isinstance(frame.get("headers"), dict) else {}
        command_id = (body.get("command_id") if isinstance(body, dict) else None) or headers.get("HX-Request-ID")
        if command_id is not None and (not isinstance(command_id, str) or not 0 < len(command_id) <= 64
                                       or text_problem(command_id)):
            # Not an id the page could have made; answer with the one the raw frame names, if any.
            await self.reply_error("A command id is text of at most 64 characters (letters, digits, dashes).",
                                   ratelimit.frame_id(text_data))
            return
        if not isinstance(body, dict):
            await self.reply_error("That message was not understood.", command_id)
            return
        if body.get("type") == "sync":  # the page saw a gap in seq: send the whole state again
            full = await _full_frame(self.code, self.person)
            if full:
                await self.send(text_data=full)
            return
        problem = command_problem(body)
        if problem:
            await self.reply_error(f"{problem} Nothing changed.", command_id)
            return
        command = {k: v for k, v in body.items() if k != "command_id" and not k.startswith("_")}
        try:
            applied, out = await _apply(self.code, Actor(self.role, self.name, self.pid, self.generation), command, command_id)
        except PresenterRevoked as exc:  # a newer co-presenter link was issued: this socket presents no more
            self.role, self.generation, self.person = "participant", None, self.pid
            await self.reply_error(str(exc), command_id)
            return
        except CommandRejected as exc:
            await self.reply_error(str(exc), command_id)
            return
        except Exception:  # keep the connection: say so, log it, change nothing more
            log.exception("command %r in room %s failed", command.get("type"), self.code)
            await self.reply_error("The server could not apply that command; nothing changed. Try again.", command_id)
            return
        if out is None:  # a resend of a command already applied: tell the sender, nobody else
            await self.send(text_data=json.dumps({"duplicate": True, "command_id": command_id}))
            return
        await broadcast(self.code, out.frame, out.mine)  # the sender's own panel comes with it, to all their tabs
        if self.concept.ticks and applied.room.playing:
            clock.ensure(self.code)
