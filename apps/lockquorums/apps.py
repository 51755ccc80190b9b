from __future__ import annotations

from django.apps import AppConfig


class LockQuorumsConfig(AppConfig):
    name = "apps.lockquorums"
    label = "lockquorums"
    verbose_name = "Lock quorums"

    def ready(self) -> None:
        from apps.rooms.registry import register

        from .concept import CONCEPT

        register(CONCEPT)
