"""Who is connected to which room.

In this process: a counter (the room clock runs only while someone here is watching). Across
processes: a ``RoomPresence`` row per open socket, refreshed by its process every
``HEARTBEAT_SECONDS``; a row not refreshed for ``STALE_SECONDS`` (its process died) no longer
counts.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from .models import Room, RoomPresence

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5
STALE_SECONDS = 15

_COUNTS: Counter[str] = Counter()
_HEARTBEATS: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


def joined(code: str) -> None:
    _COUNTS[code] += 1


def left(code: str) -> None:
    _COUNTS[code] -= 1
    if _COUNTS[code] <= 0:
        del _COUNTS[code]


def count(code: str) -> int:
    return _COUNTS.get(code, 0)


_SWEPT: set[str] = set()


def presence_join(*, code: str, channel: str, role: str, name: str, owner: str) -> int:
    if owner not in _SWEPT:
        _SWEPT.add(owner)
        if settings.DISTVIZ_WORKERS == 1:
            # The only process: rows of any other owner are left over from before a restart.
            RoomPresence.objects.exclude(owner=owner).delete()
    room = Room.objects.get(code=code)
    RoomPresence.objects.update_or_create(
        channel=channel, defaults={"room": room, "role": role, "name": name[:40], "owner": owner, "last_seen": timezone.now()}
    )
    return presence_count(code)


def presence_leave(*, code: str, channel: str) -> int:
    RoomPresence.objects.filter(channel=channel).delete()
    return presence_count(code)


def presence_count(code: str) -> int:
    fresh = timezone.now() - timedelta(seconds=STALE_SECONDS)
    return RoomPresence.objects.filter(room__code=code, last_seen__gte=fresh).count()


def presence_refresh(owner: str) -> None:
    now = timezone.now()
    RoomPresence.objects.filter(owner=owner).update(last_seen=now)
    RoomPresence.objects.filter(last_seen__lt=now - timedelta(seconds=10 * STALE_SECONDS)).delete()


def ensure_heartbeat(owner: str, announce: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    task = _HEARTBEATS.get(loop)
    if task is None or task.done():
        _HEARTBEATS[loop] = loop.create_task(_heartbeat(owner, announce))


async def _heartbeat(owner: str, announce: Callable[[str], None]) -> None:
    """Keep this process's rows fresh; when a count changes without anyone here joining or
    leaving (another process died, its rows went stale), say so to the room."""
    refresh = database_sync_to_async(presence_refresh)
    counted = database_sync_to_async(presence_count)
    last: dict[str, int] = {}
    while _COUNTS:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            await refresh(owner)
            for code in list(_COUNTS):
                now = await counted(code)
                if last.get(code, now) != now:
                    announce(code)
                last[code] = now
        except Exception:  # the database was busy or away for a moment: beat again, or our rows go stale
            log.warning("presence heartbeat failed; trying again in %s s", HEARTBEAT_SECONDS, exc_info=True)
