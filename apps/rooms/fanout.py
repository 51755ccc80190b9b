"""One channel-layer message per process per broadcast, then a local loop over the viewers.

Channels' usual fan-out gives every viewer its own channel in the room's group: a broadcast to
300 viewers is 300 queued messages (a deep copy each), 300 task wake-ups, and with the in-memory
layer every one of those receives scans all channels, O(N^2) in all (measured by bench/).
Instead each process keeps one *relay* channel, which joins the group of every room that has a
viewer in this process. A broadcast reaches each process once (once over Redis, when several
processes run), and the relay writes the ready-made frame to its local viewers of the room.

Frames leave in seq order on each process, but a room's commands may be applied by several
processes, and their broadcasts cross Redis independently: seq 6 from one worker can overtake
seq 5 from another. A page that sees a gap asks for the whole state again (and loses the
animations of what it skipped), so the relay puts a room's frames back in order: a frame whose
first seq is past the next one expected waits (at most ``HOLD_SECONDS``) for the frames before it.
If they never come (their worker died between commit and publish), the held frames go out in
order anyway and the page resyncs on the gap, as before.

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


HOLD_SECONDS = 0.25  # how long a frame past a gap waits for the frames before it

Held = tuple[int, str, "dict[str, str] | None"]  # (last seq, frame, personal frames)


class Relay:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.viewers: dict[str, set[Viewer]] = defaultdict(set)
        self.channel: str | None = None
        self.task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.expected: dict[str, int] = {}  # room -> the next seq to deliver
        self.held: dict[str, dict[int, Held]] = {}  # room -> first seq -> a frame waiting for its turn
        self.timers: dict[str, asyncio.TimerHandle] = {}

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
                self._forget(code)
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

    async def deliver_in_order(self, code: str, first: int, last: int, frame: str, mine: dict[str, str] | None = None) -> None:
        """Deliver the frame of seqs ``first..last`` after the room's earlier frames."""
        expected = self.expected.get(code)
        if expected is not None and first > expected:  # a gap: an earlier frame is still on its way
            self.held.setdefault(code, {})[first] = (last, frame, mine)
            if code not in self.timers:
                self.timers[code] = asyncio.get_running_loop().call_later(
                    HOLD_SECONDS, lambda: asyncio.ensure_future(self._release(code)))
            return
        # Counted before the await: a frame arriving while this one is written sees it as sent.
        self.expected[code] = max(expected or 0, last + 1)
        await self.deliver(code, frame, mine)  # the next one (or an old one: the page ignores what it has)
        await self._flush(code, everything=False)

    async def _flush(self, code: str, everything: bool) -> None:
        """Deliver the held frames that are next in turn (``everything``: all of them, in order)."""
        held = self.held.get(code)
        while held:
            first = min(held)
            if not everything and first > self.expected.get(code, 0):
                return  # still a gap before it (a frame that covered it already went out is sent too)
            last, frame, mine = held.pop(first)
            self.expected[code] = max(self.expected.get(code, 0), last + 1)
            await self.deliver(code, frame, mine)
        self._forget_held(code)

    async def _release(self, code: str) -> None:
        """The wait is over: what is held goes out in order (the pages resync on the gap)."""
        self.timers.pop(code, None)
        if self.held.get(code):
            log.info("room %s: a frame before seq %s never came; delivering the rest", code, min(self.held[code]))
        await self._flush(code, everything=True)

    def _forget_held(self, code: str) -> None:
        self.held.pop(code, None)
        timer = self.timers.pop(code, None)
        if timer is not None:
            timer.cancel()

    def _forget(self, code: str) -> None:
        """Nobody here watches the room any more: its order starts afresh with the next viewer."""
        self._forget_held(code)
        self.expected.pop(code, None)

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
                order = message.get("order")
                if order:
                    await self.deliver_in_order(message["code"], order[0], order[1], message["frame"], message.get("mine"))
                else:  # not part of the log (a presence count)
                    await self.deliver(message["code"], message["frame"], message.get("mine"))


_RELAYS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Relay] = weakref.WeakKeyDictionary()


def relay() -> Relay:
    """This event loop's relay (one per server process; tests get one per loop)."""
    loop = asyncio.get_running_loop()
    found = _RELAYS.get(loop)
    if found is None:
        found = _RELAYS[loop] = Relay()
    return found


async def broadcast(code: str, frame: str, mine: dict[str, str] | None = None,
                    order: tuple[int, int] | None = None) -> None:
    """Send ``frame`` to every viewer of the room, in every process, and each frame of ``mine``
    (person -> frame) after it to that person's sockets only. ``order``: the seqs the frame
    covers (first, last), for the relays to deliver the room's frames in seq order."""
    message: dict[str, Any] = {"type": "room.update", "code": code, "frame": frame}
    if mine:
        message["mine"] = mine
    if order is not None:
        message["order"] = list(order)
    await get_channel_layer().group_send(group_name(code), message)
