"""Workflow graphs: one saga run as orchestration and as choreography, side by side (issue 12)."""
