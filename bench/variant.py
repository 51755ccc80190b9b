"""What-if servers: the app, unchanged on disk, with one fan-out cost patched away at start-up.

    python bench/variant.py VARIANT daphne|uvicorn [server arguments ...]

Only for measuring what a change would buy before anyone makes it; nothing here is used by
the app. Variants:

- ``lazy-expiry``: Channels' ``InMemoryChannelLayer`` runs ``_clean_expired`` (a scan of every
  channel and every group member) on *every* ``receive`` and ``group_send``, so one broadcast to
  N viewers costs O(N^2). Here it runs at most once a second.
- ``direct``: a room broadcast skips the channel layer in this process: ``group_send`` of a
  ``room.update`` writes the frame straight to each local ``RoomConsumer`` of the room (no
  per-viewer queue, task wake-up or message deepcopy). Other messages go through the layer.
"""
from __future__ import annotations

import sys
import time
from collections import defaultdict
from typing import Any

VARIANT, SERVER = sys.argv[1], sys.argv[2]
sys.argv = [SERVER] + sys.argv[3:]

import django  # noqa: E402

django.setup()

from channels.layers import InMemoryChannelLayer  # noqa: E402

if VARIANT == "lazy-expiry":
    _clean = InMemoryChannelLayer._clean_expired

    def _clean_at_most_once_a_second(self: InMemoryChannelLayer) -> None:
        now = time.monotonic()
        if now - getattr(self, "_bench_cleaned", 0.0) >= 1.0:
            self._bench_cleaned = now  # type: ignore[attr-defined]
            _clean(self)

    InMemoryChannelLayer._clean_expired = _clean_at_most_once_a_second  # type: ignore[method-assign]

elif VARIANT == "direct":
    from apps.rooms.consumers import RoomConsumer
    from apps.rooms.fanout import group_name

    LOCAL: dict[str, set[Any]] = defaultdict(set)
    _connect, _disconnect = RoomConsumer.connect, RoomConsumer.disconnect
    _group_send = InMemoryChannelLayer.group_send

    async def connect(self: RoomConsumer) -> None:
        await _connect(self)
        if self.code and getattr(self, "concept", None) is not None:
            LOCAL[group_name(self.code)].add(self)

    async def disconnect(self: RoomConsumer, code: int) -> None:
        if self.code:
            LOCAL[group_name(self.code)].discard(self)
        await _disconnect(self, code)

    async def group_send(self: InMemoryChannelLayer, group: str, message: dict[str, Any]) -> None:
        local = LOCAL.get(group)
        if message.get("type") == "room.update" and local:
            frame = message["frame"]
            for consumer in list(local):
                try:
                    await consumer.send(text_data=frame)
                except Exception:  # noqa: BLE001 - a viewer that just left
                    local.discard(consumer)
            return
        await _group_send(self, group, message)

    RoomConsumer.connect = connect  # type: ignore[method-assign]
    RoomConsumer.disconnect = disconnect  # type: ignore[method-assign]
    InMemoryChannelLayer.group_send = group_send  # type: ignore[method-assign]

else:
    raise SystemExit(f"unknown variant {VARIANT!r}")

if SERVER == "daphne":
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()
elif SERVER == "uvicorn":
    from uvicorn.main import main as uvicorn_main

    uvicorn_main()
else:
    raise SystemExit(f"unknown server {SERVER!r}")
