"""One WebSocket consumer for every concept: it only transports.

It admits frames under the rate limits (``ratelimit.py``), reads them (``wire.py``), applies the
command (``services.py``), and sends what ``frames.py`` rendered: one broadcast frame per accepted
command, written by each process's relay (``fanout.py``) to its local viewers, and refusals to
the sender alone. Who the socket is comes from ``roles.py``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import clock, presence, ratelimit, wire
from .fanout import broadcast, relay
from .frames import SETTLE_ALL, Outgoing, error_frame, flooded_frame, presence_frame, render_full_frame, render_outgoing, slow_down_frame
from .models import Room
from .registry import get
from .roles import copresenter_generation, participant_name, socket_role
from .services import Actor, Applied, CommandRejected, PresenterRevoked, normalise_code, room_command_apply

log = logging.getLogger(__name__)

# A student holding a key down must not flood the room: a token bucket per connection, and
# shared ones per person and per address (ratelimit.py).
RATE_PER_SECOND = ratelimit.CONNECTION_RATE
RATE_BURST = ratelimit.CONNECTION_BURST


@database_sync_to_async
def _load_room(code: str) -> Room | None:
    return Room.objects.filter(code=code).first()


@database_sync_to_async
def _room_seq(code: str) -> int | None:
    return Room.objects.filter(code=code).values_list("seq", flat=True).first()


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
        self.role = socket_role(session, self.code, room.copresenter_generation, self.scope.get("query_string", b""))
        # A co-presenter's rights last while their link's generation is the room's (checked again
        # on every command); None for the room's creator and everyone else.
        self.generation = copresenter_generation(session, self.code) if self.role == "presenter" else None
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
        rendered_at = wire.page_seq(self.scope.get("query_string", b""))
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
        await self.send(text_data=error_frame(message, command_id))

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
        frame = wire.parse(text_data, bytes_data, settings.DISTVIZ_LIMITS["max_frame_bytes"])
        if isinstance(frame, wire.Refusal):
            await self.reply_error(frame.message, frame.command_id)
            return
        command, command_id = frame.command, frame.command_id
        if frame.is_sync:  # the page saw a gap in seq: send the whole state again
            full = await _full_frame(self.code, self.person)
            if full:
                await self.send(text_data=full)
            return
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
        await broadcast(self.code, out.frame, out.mine, out.order)  # the sender's own panel comes with it, to all their tabs
        if self.concept.ticks and applied.room.playing:
            clock.ensure(self.code)
