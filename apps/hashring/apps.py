from __future__ import annotations

from django.apps import AppConfig


class HashringConfig(AppConfig):
    name = "apps.hashring"
    label = "hashring"
    verbose_name = "Hash ring"

    def ready(self) -> None:
        from apps.rooms.registry import register

        from .concept import CONCEPT

        register(CONCEPT)
