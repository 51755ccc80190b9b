"""Refuse, loudly, a setup that would lose messages quietly."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register

from .lessons import lesson_problems


def multi_process_errors() -> list[Error]:
    backend = str(settings.CHANNEL_LAYERS["default"]["BACKEND"])
    if settings.DISTVIZ_WORKERS > 1 and backend.endswith("InMemoryChannelLayer"):
        return [
            Error(
                "DISTVIZ_WORKERS > 1 with the in-memory channel layer: a broadcast would reach only "
                "the viewers connected to the same process.",
                hint="Set REDIS_URL (channels-redis) to run more than one server process.",
                id="distviz.E001",
            )
        ]
    return []


@register()
def channel_layer_check(app_configs: Any, **kwargs: Any) -> list[Error]:
    return multi_process_errors()


@register()
def lessons_check(app_configs: Any, **kwargs: Any) -> list[Warning]:
    return [Warning(f"A lesson file is skipped: {problem}", id="distviz.W001") for problem in lesson_problems()]
