from __future__ import annotations

from django.apps import AppConfig


class CounterBoardConfig(AppConfig):
    """The toy concept the engine's tests run on: registered by tests/conftest.py only."""

    name = "tests.toyconcept"
    label = "counterboard"

    def ready(self) -> None:
        from apps.rooms.registry import register

        from .concept import CONCEPT

        register(CONCEPT)
