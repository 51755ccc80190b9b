"""Who is connected to which room.

In this process: a counter (the room clock runs only while someone here is watching). Across
processes: a ``RoomPresence`` row per open socket, refreshed by its process every
``HEARTBEAT_SECONDS``; a row not refreshed for ``STALE_SECONDS`` (its process died) no longer
counts.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from channels.db import database_sync_to_async
from django.utils import timezone

from .models import Room, RoomPresence

HEARTBEAT_SECONDS = 20
STALE_SECONDS = 60

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


def presence_join(*, code: str, channel: str, role: str, name: str, owner: str) -> int:
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


def ensure_heartbeat(owner: str) -> None:
    loop = asyncio.get_running_loop()
    task = _HEARTBEATS.get(loop)
    if task is None or task.done():
        _HEARTBEATS[loop] = loop.create_task(_heartbeat(owner))


async def _heartbeat(owner: str) -> None:
    refresh = database_sync_to_async(presence_refresh)
    while _COUNTS:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        await refresh(owner)
