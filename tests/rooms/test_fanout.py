"""The per-process relay: one layer message per broadcast, written to this room's viewers only."""
from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from apps.rooms.fanout import Relay, broadcast, group_name, relay
from apps.rooms.registry import TICK_MS
from apps.rooms.services import SYSTEM, CommandRejected, room_command_apply

from .wire import TIMEOUT

pytestmark = pytest.mark.django_db(transaction=True)


class FakeViewer:
    def __init__(self) -> None:
        self.frames: list[str] = []

    async def send(self, text_data=None, bytes_data=None, close=False):
        self.frames.append(text_data)


async def _until(predicate, timeout: float = TIMEOUT):
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds passed (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def test_relay_delivers_a_broadcast_to_the_rooms_viewers_only():
    here, also_here, elsewhere = FakeViewer(), FakeViewer(), FakeViewer()
    r = relay()
    await r.join("AAAAAA", here)
    await r.join("AAAAAA", also_here)
    await r.join("BBBBBB", elsewhere)
    await broadcast("AAAAAA", '{"seq": 2}')
    assert await _until(lambda: here.frames and also_here.frames)
    assert here.frames == also_here.frames == ['{"seq": 2}']
    assert elsewhere.frames == []
    for code, viewer in (("AAAAAA", here), ("AAAAAA", also_here), ("BBBBBB", elsewhere)):
        await r.leave(code, viewer)


async def test_relay_is_one_group_member_per_process_however_many_viewers():
    r = Relay()
    viewers = [FakeViewer() for _ in range(50)]
    for v in viewers:
        await r.join("CCCCCC", v)
    layer = get_channel_layer()
    assert list(layer.groups[group_name("CCCCCC")]) == [r.channel]
    for v in viewers:
        await r.leave("CCCCCC", v)
    assert group_name("CCCCCC") not in layer.groups or not layer.groups[group_name("CCCCCC")]
    r.task.cancel()


async def test_relay_leave_of_an_unknown_viewer_changes_nothing():
    r = relay()
    await r.leave("DDDDDD", FakeViewer())
    assert "DDDDDD" not in r.viewers


def test_clock_tick_after_a_pause_is_refused(room):
    with pytest.raises(CommandRejected, match="paused"):
        room_command_apply(code=room.code, actor=SYSTEM, command={"type": "tick", "dt_ms": TICK_MS})
