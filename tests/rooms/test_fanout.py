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


# -- a room's frames in seq order, whichever process broadcast them ------------------------------

async def test_a_frame_that_overtook_an_earlier_one_waits_for_it():
    """Seq 6 (another worker's) arrives before seq 5: the viewer still gets 5, then 6."""
    viewer = FakeViewer()
    r = Relay()
    r.viewers["ORDERS"].add(viewer)
    await r.deliver_in_order("ORDERS", 4, 4, "f4")
    await r.deliver_in_order("ORDERS", 6, 7, "f6-7")
    assert viewer.frames == ["f4"]  # held: 5 is on its way
    await r.deliver_in_order("ORDERS", 5, 5, "f5")
    assert viewer.frames == ["f4", "f5", "f6-7"]
    assert r.expected["ORDERS"] == 8 and not r.held.get("ORDERS") and "ORDERS" not in r.timers


async def test_a_frame_whose_predecessor_never_comes_goes_out_after_the_hold(monkeypatch):
    """The worker that committed seq 5 died before publishing it: 6 and 7 are not held for ever
    (the page resyncs on the gap, as it did before the relay ordered anything)."""
    monkeypatch.setattr("apps.rooms.fanout.HOLD_SECONDS", 0.05)
    viewer = FakeViewer()
    r = Relay()
    r.viewers["LOSTFR"].add(viewer)
    await r.deliver_in_order("LOSTFR", 4, 4, "f4")
    await r.deliver_in_order("LOSTFR", 7, 7, "f7")
    await r.deliver_in_order("LOSTFR", 6, 6, "f6")
    assert viewer.frames == ["f4"]
    assert await _until(lambda: len(viewer.frames) == 3)
    assert viewer.frames == ["f4", "f6", "f7"] and r.expected["LOSTFR"] == 8
    await r.deliver_in_order("LOSTFR", 5, 5, "f5-late")  # an old one, if it turns up, is not held
    assert viewer.frames[-1] == "f5-late" and r.expected["LOSTFR"] == 8


async def test_the_order_starts_afresh_when_the_last_viewer_here_leaves():
    viewer = FakeViewer()
    r = Relay()
    await r.join("AFRESH", viewer)
    await r.deliver_in_order("AFRESH", 3, 3, "f3")
    await r.leave("AFRESH", viewer)
    assert "AFRESH" not in r.expected
    again = FakeViewer()
    await r.join("AFRESH", again)
    await r.deliver_in_order("AFRESH", 9, 9, "f9")  # the first frame a new viewer here sees: not held
    assert again.frames == ["f9"]
    await r.leave("AFRESH", again)


async def test_broadcast_carries_the_order_and_the_relay_uses_it():
    viewer = FakeViewer()
    r = relay()
    await r.join("BORDER", viewer)
    try:
        await broadcast("BORDER", "f1", order=(1, 1))
        await broadcast("BORDER", "f3", order=(3, 3))
        await broadcast("BORDER", "f2", order=(2, 2))
        assert await _until(lambda: len(viewer.frames) == 3)
        assert viewer.frames == ["f1", "f2", "f3"]
    finally:
        await r.leave("BORDER", viewer)


async def test_a_held_frame_a_wider_frame_already_covered_goes_out_at_once():
    viewer = FakeViewer()
    r = Relay()
    r.viewers["WIDEFR"].add(viewer)
    await r.deliver_in_order("WIDEFR", 4, 4, "f4")
    await r.deliver_in_order("WIDEFR", 7, 7, "f7")  # held: 5 and 6 missing
    await r.deliver_in_order("WIDEFR", 5, 8, "f5-8")  # a frame of several events covers them
    assert viewer.frames == ["f4", "f5-8", "f7"]  # f7 is not left waiting for the hold to end
    assert not r.held.get("WIDEFR") and "WIDEFR" not in r.timers and r.expected["WIDEFR"] == 9
