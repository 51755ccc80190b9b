from __future__ import annotations

from django.apps import AppConfig


class WorkflowGraphsConfig(AppConfig):
    name = "apps.workflowgraphs"
    label = "workflowgraphs"
    verbose_name = "Workflow graphs"

    def ready(self) -> None:
        from apps.rooms.registry import register

        from .concept import CONCEPT

        register(CONCEPT)
