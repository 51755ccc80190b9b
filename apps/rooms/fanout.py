"""One channel-layer message per process per broadcast, then a local loop over the viewers.

Channels' usual fan-out gives every viewer its own channel in the room's group: a broadcast to
300 viewers is 300 queued messages (a deep copy each), 300 task wake-ups, and with the in-memory
layer every one of those receives scans all channels, O(N^2) in all (measured by bench/).
Instead each process keeps one *relay* channel, which joins the group of every room that has a
viewer in this process. A broadcast reaches each process once (once over Redis, when several
processes run), and the relay writes the ready-made frame to its local viewers of the room.

A broadcast may carry *personal* frames too: ``{person: frame}`` for the few participants whose
own panel changed (their round entry, see ``personal.py``). They ride in the same layer message;
after the common frame, each viewer whose ``person`` (the session's id) is in the dict also gets
its own. One dict lookup per viewer: nothing is rendered per viewer.
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from typing import Any, Protocol

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


class Viewer(Protocol):
    person: str  # the session's id of a participant ("" for anyone who has no personal frames)

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None: ...


def group_name(code: str) -> str:
    return f"room.{code}"


class Relay:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.viewers: dict[str, set[Viewer]] = defaultdict(set)
        self.channel: str | None = None
        self.task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def _ensure_started(self) -> str:
        if self.channel is None:
            self.channel = await self.layer.new_channel()
            self.task = asyncio.get_running_loop().create_task(self._pump())
        return self.channel

    async def join(self, code: str, viewer: Viewer) -> None:
        async with self._lock:
            channel = await self._ensure_started()
            if not self.viewers[code]:
                await self.layer.group_add(group_name(code), channel)
            self.viewers[code].add(viewer)

    async def leave(self, code: str, viewer: Viewer) -> None:
        async with self._lock:
            members = self.viewers.get(code)
            if not members or viewer not in members:
                return
            members.discard(viewer)
            if not members:
                del self.viewers[code]
                if self.channel is not None:
                    await self.layer.group_discard(group_name(code), self.channel)

    async def deliver(self, code: str, frame: str, mine: dict[str, str] | None = None) -> None:
        for viewer in list(self.viewers.get(code, ())):
            try:
                await viewer.send(text_data=frame)
                own = mine.get(getattr(viewer, "person", "") or "") if mine else None
                if own is not None:
                    await viewer.send(text_data=own)
            except Exception:  # a viewer whose socket just closed; its disconnect will follow
                log.debug("dropping a frame for a closed viewer of %s", code)

    async def _pump(self) -> None:
        assert self.channel is not None
        while True:
            try:
                message: dict[str, Any] = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # the layer hiccuped (Redis restart): clients resync on the seq gap
                log.exception("relay receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            if message.get("type") == "room.update":
                await self.deliver(message["code"], message["frame"], message.get("mine"))


_RELAYS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Relay] = weakref.WeakKeyDictionary()


def relay() -> Relay:
    """This event loop's relay (one per server process; tests get one per loop)."""
    loop = asyncio.get_running_loop()
    found = _RELAYS.get(loop)
    if found is None:
        found = _RELAYS[loop] = Relay()
    return found


async def broadcast(code: str, frame: str, mine: dict[str, str] | None = None) -> None:
    """Send ``frame`` to every viewer of the room, in every process, and each frame of ``mine``
    (person -> frame) after it to that person's sockets only."""
    message: dict[str, Any] = {"type": "room.update", "code": code, "frame": frame}
    if mine:
        message["mine"] = mine
    await get_channel_layer().group_send(group_name(code), message)
