"""A room is the fold of its append-only event log.

``Room.seq`` is the number of the last event; ``RoomEvent`` rows are never edited or deleted
(a rewind is itself an event). ``RoomSnapshot`` rows cache the folded state every few events so
that loading a room, or rewinding it, folds only a short tail.
"""
from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q


class Room(models.Model):
    code = models.CharField(max_length=12, unique=True)
    concept = models.CharField(max_length=32)
    seed = models.CharField(max_length=32)
    seq = models.PositiveBigIntegerField(default=0)
    # The seq whose state the room shows: the last event's, or the one a rewind went back to.
    position = models.PositiveBigIntegerField(default=0)
    playing = models.BooleanField(default=False)
    speed = models.FloatField(default=1.0)
    # One clock per room across processes: whoever holds an unexpired lease ticks.
    clock_owner = models.CharField(max_length=64, blank=True, default="")
    clock_lease_until = models.DateTimeField(null=True, blank=True)
    # When the next tick is due: a process that takes the lease over ticks then, not at once.
    clock_next_tick = models.DateTimeField(null=True, blank=True)
    presenter_key_hash = models.CharField(max_length=64, blank=True, default="")
    # Which co-presenter link is current: issuing a new one adds 1, and a browser that claimed an
    # older one (its session holds the generation it claimed) presents no more.
    copresenter_generation = models.PositiveIntegerField(default=0)
    # The room-level state, cached on the row and kept in step with the log by the same
    # transaction that appends the events it follows from.
    classroom = models.BooleanField(default=False)  # "present to a class": join panel, projection
    view_only = models.BooleanField(default=False)
    round = models.JSONField(null=True, blank=True)  # {"kind", "title", "open", "entries": [...]}
    lesson = models.JSONField(null=True, blank=True)  # {"slug", "title", "step", "starts": [...]}
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks")
    parent_seq = models.PositiveBigIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.concept} room {self.code} @ {self.seq}"


class RoomEvent(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    command_id = models.CharField(max_length=64, null=True, blank=True)
    actor = models.CharField(max_length=16, default="system")
    # The plain-words line shown for this event, written once when it was appended.
    narration = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="room_event_seq_unique"),
            models.UniqueConstraint(
                fields=["room", "command_id"],
                condition=Q(command_id__isnull=False),
                name="room_event_command_unique",
            ),
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "data": self.data,
            "command_id": self.command_id,
            "actor": self.actor,
            "narration": self.narration,
            "created": self.created.isoformat(),
        }


class RoomSnapshot(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="snapshots")
    seq = models.PositiveBigIntegerField()
    state = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "seq"], name="room_snapshot_seq_unique")]


class RoomPresence(models.Model):
    """Who is connected, across processes: a row per open socket, refreshed by its process."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="presence")
    channel = models.CharField(max_length=120, unique=True)
    role = models.CharField(max_length=16)
    name = models.CharField(max_length=40, blank=True, default="")
    owner = models.CharField(max_length=64)
    last_seen = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["room", "last_seen"])]
