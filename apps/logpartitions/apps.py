from __future__ import annotations

from django.apps import AppConfig


class LogPartitionsConfig(AppConfig):
    name = "apps.logpartitions"
    label = "logpartitions"
    verbose_name = "Log partitions"

    def ready(self) -> None:
        from apps.rooms.registry import register

        from .concept import CONCEPT

        register(CONCEPT)
