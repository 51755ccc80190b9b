from __future__ import annotations

from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "apps.rooms"
    label = "rooms"
    verbose_name = "Live rooms"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
