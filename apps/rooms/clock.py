"""The room clock: while a room plays, it appends a ``tick`` command at the room's speed.

Exactly one clock per room, across processes: a process ticks only while it holds the lease in
the room row (``clock_owner``, ``clock_lease_until``), taken with one conditional UPDATE. Every
process with a viewer of a playing room runs a candidate loop; if the owner dies, its lease
expires and another takes over. The clock stops when the room is paused or nobody here watches.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.db.models import Q
from django.utils import timezone

from . import presence
from .fanout import broadcast
from .frames import render_outgoing
from .models import Room
from .registry import TICK_MS  # logical time per tick; the speed sets how often a tick happens in real time
from .services import SYSTEM, ClockLost, CommandRejected, room_command_apply

log = logging.getLogger(__name__)

OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
_TASKS: dict[str, asyncio.Task[None]] = {}


LEASE_SECONDS = 1.0  # a dead owner's lease runs out this soon; a live one renews it every turn
TURN_SECONDS = 0.25  # how often an owner renews and a standby looks for a free lease


def interval_for(speed: float) -> float:
    return TICK_MS / 1000 / max(speed, 0.01)


def lease_take(code: str, owner: str, seconds: float) -> bool:
    """Take or renew the room's clock lease; True if ``owner`` holds it now."""
    now = timezone.now()
    return bool(
        Room.objects.filter(code=code, playing=True)
        .filter(Q(clock_owner=owner) | Q(clock_lease_until__isnull=True) | Q(clock_lease_until__lt=now))
        .update(clock_owner=owner, clock_lease_until=now + timedelta(seconds=seconds))
    )


def lease_release(code: str, owner: str) -> None:
    Room.objects.filter(code=code, clock_owner=owner).update(clock_owner="", clock_lease_until=None)


def clock_step(code: str, owner: str = OWNER) -> tuple[str, float, Any]:
    """One turn of the loop: ("stopped" | "standby" | "waiting" | "ticked", seconds to the next
    turn, what to send: an ``Outgoing`` (the frame, and the participants' own panels that
    changed) or None).

    The owner renews its short lease every turn and ticks when the room's next tick is due (kept
    in the room row, so a process that takes over after a crash ticks on time: within
    ``LEASE_SECONDS`` + ``TURN_SECONDS`` of the crash, and not early). Its tick carries its name
    (``_owner``): the engine refuses it, under the room row's lock, once another holds the lease."""
    row = Room.objects.filter(code=code).values("playing", "speed", "clock_next_tick").first()
    if row is None or not row["playing"]:
        return "stopped", 0.0, None
    interval = interval_for(row["speed"])
    if not lease_take(code, owner, LEASE_SECONDS):
        return "standby", TURN_SECONDS, None
    now = timezone.now()
    due = row["clock_next_tick"]
    if due is not None and now < due:
        return "waiting", min(TURN_SECONDS, (due - now).total_seconds()), None
    try:
        applied = room_command_apply(code=code, actor=SYSTEM, command={"type": "tick", "dt_ms": TICK_MS, "_owner": owner})
    except ClockLost:
        return "standby", TURN_SECONDS, None
    except CommandRejected as exc:
        # Paused meanwhile, or the concept cannot go on (e.g. the ring is full): pause, say why.
        try:
            applied = room_command_apply(code=code, actor=SYSTEM, command={"type": "pause", "reason": str(exc)})
        except CommandRejected:
            return "stopped", 0.0, None
        return "stopped", 0.0, render_outgoing(applied)
    # The next one is due an interval after this one was due (or now, after a pause or a stall).
    following = max(due + timedelta(seconds=interval), now) if due is not None and now - due < timedelta(seconds=interval) \
        else now + timedelta(seconds=interval)
    Room.objects.filter(code=code, clock_owner=owner).update(clock_next_tick=following)
    return "ticked", min(TURN_SECONDS, interval), render_outgoing(applied)


RETRY_SECONDS = 1.0  # after a failed turn (the database restarting, "database is locked")
MAX_FAILURES = 5  # in a row: then the clock stops, and the next viewer or command starts it again


async def _run(code: str) -> None:
    step = database_sync_to_async(clock_step)
    failures = 0
    try:
        while presence.count(code) > 0:
            try:
                status, wait, out = await step(code)
            except Exception:  # a clock must never take the server down; a passing failure is retried
                failures += 1
                if failures >= MAX_FAILURES:
                    log.exception("room clock for %s stopped after %d failed turns in a row", code, failures)
                    break
                log.warning("room clock for %s: a turn failed, trying again", code, exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            failures = 0
            if out:
                await broadcast(code, out.frame, out.mine, out.order)
            if status == "stopped":
                break
            await asyncio.sleep(wait)
    finally:
        _TASKS.pop(code, None)
        await database_sync_to_async(lease_release)(code, OWNER)


def ensure(code: str) -> None:
    """Start this process's clock loop for the room, unless one runs already."""
    task = _TASKS.get(code)
    if task is not None and not task.done():
        return
    _TASKS[code] = asyncio.get_running_loop().create_task(_run(code))
