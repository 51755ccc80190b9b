"""Airflow's task-instance states, the transitions its task lifecycle allows, and its trigger
rules with the early marking of ``trigger_rule_dep`` (DOMAIN.md §4).

- :data:`TRANSITIONS`: state -> the states it may move to; :func:`transition` raises
  :class:`IllegalTransition` for any other move, so no picture can show a move Airflow never makes.
- :func:`trigger_outcome`: what the scheduler does with a task whose upstream tasks are in the
  given states: ``"run"``, ``"wait"``, or the state it marks early (``"skipped"``,
  ``"upstream_failed"``), exactly as ``TriggerRuleDep._evaluate_direct_relatives`` decides with
  ``flag_upstream_failed`` set (the scheduler sets it), for tasks that are not mapped and have no
  setup/teardown relatives.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

STATES = ("none", "scheduled", "queued", "running", "success", "restarting", "failed", "skipped",
          "upstream_failed", "up_for_retry", "up_for_reschedule", "deferred", "awaiting_input", "removed")

TRANSITIONS: dict[str, frozenset[str]] = {
    "none": frozenset({"scheduled", "upstream_failed", "skipped", "removed"}),
    "scheduled": frozenset({"queued"}),
    "queued": frozenset({"running", "deferred"}),
    "running": frozenset({"success", "failed", "up_for_retry", "up_for_reschedule", "deferred", "skipped",
                          "restarting", "awaiting_input"}),
    "up_for_retry": frozenset({"scheduled"}),
    "up_for_reschedule": frozenset({"scheduled"}),
    "awaiting_input": frozenset({"scheduled"}),
    "deferred": frozenset({"scheduled"}),
    "restarting": frozenset({"none"}),
    "success": frozenset(),
    "failed": frozenset(),
    "skipped": frozenset(),
    "upstream_failed": frozenset(),
    "removed": frozenset(),
}

# Airflow's State.finished: what trigger_rule_dep counts as done.
FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


class IllegalTransition(ValueError):
    """A task-instance state change Airflow's lifecycle does not have."""


def transition(frm: str, to: str) -> str:
    """``to`` when Airflow allows ``frm -> to``; otherwise raises :class:`IllegalTransition`."""
    if to not in TRANSITIONS.get(frm, frozenset()):
        raise IllegalTransition(f"Airflow has no transition from {frm} to {to}.")
    return to


def path(frm: str, *steps: str) -> str:
    """Walk ``frm`` through ``steps``, each checked; returns the last state."""
    state = frm
    for to in steps:
        state = transition(state, to)
    return state


TRIGGER_RULES = ("all_success", "all_failed", "all_done", "all_done_min_one_success", "all_skipped", "one_failed",
                 "one_success", "one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always")


def _count(states: Iterable[str]) -> dict[str, int]:
    out = {"success": 0, "failed": 0, "skipped": 0, "upstream_failed": 0, "removed": 0}
    for s in states:
        if s in out:
            out[s] += 1
    return out


def _early(rule: str, c: dict[str, int], done: int, upstream: int) -> str | None:
    """The state trigger_rule_dep marks the task with before it may run, if any."""
    ok, skip, fail, ufail, rem = c["success"], c["skipped"], c["failed"], c["upstream_failed"], c["removed"]
    all_done = done >= upstream
    marks: dict[str, str | None] = {
        "all_success": "upstream_failed" if ufail or fail else "skipped" if skip else None,
        "all_failed": "skipped" if ok or skip else None,
        "one_success": ("skipped" if all_done and done == skip else "upstream_failed" if all_done and ok <= 0
                        else None),
        "one_failed": "skipped" if all_done and not (fail or ufail) else None,
        "one_done": "skipped" if all_done and not (fail or ok) else None,
        "none_failed": "upstream_failed" if ufail or fail else None,
        "none_failed_min_one_success": ("upstream_failed" if ufail or fail else "skipped" if skip == upstream
                                        else None),
        "none_skipped": "skipped" if skip else None,
        "all_skipped": "skipped" if ok or fail or ufail else None,
        "all_done_min_one_success": ("skipped" if skip > 0 else "upstream_failed"
                                     if ok + fail + ufail + rem >= upstream - skip and ok == 0 else None),
        "all_done": None,
    }
    return marks[rule]


def _passes(rule: str, c: dict[str, int], done: int, upstream: int) -> bool:
    ok, skip, fail, ufail, rem = c["success"], c["skipped"], c["failed"], c["upstream_failed"], c["removed"]
    checks: dict[str, bool] = {
        "one_success": ok > 0,
        "one_failed": bool(fail or ufail),
        "one_done": ok + fail > 0,
        "all_success": upstream - ok <= 0,
        "all_failed": upstream - fail - ufail <= 0,
        "all_done": done >= upstream,
        "none_failed": upstream - ok - skip <= 0,
        "none_failed_min_one_success": upstream - ok - skip <= 0,
        "none_skipped": done >= upstream and skip == 0,
        "all_skipped": upstream - skip <= 0,
        "all_done_min_one_success": skip == 0 and ok + fail + ufail + rem >= upstream - skip and ok > 0,
    }
    return checks[rule]


def trigger_outcome(rule: str, finished: Sequence[str], all_done: bool) -> str:
    """What Airflow's scheduler does with a task under ``rule`` whose *finished* upstream tasks
    are in the states ``finished`` (``all_done``: every upstream task has finished, else at least
    one more has not): ``"run"``, ``"wait"``, ``"skipped"`` or ``"upstream_failed"``."""
    if rule not in TRIGGER_RULES:
        raise ValueError(f"unknown trigger rule {rule!r}")
    finished = [s for s in finished if s in FINISHED]
    done = len(finished)
    upstream = done if all_done else done + 1  # one unfinished is as good as many for every rule
    if rule == "always" or upstream == 0:
        return "run"
    c = _count(finished)
    mark = _early(rule, c, done, upstream)
    if mark is not None:
        return mark
    return "run" if _passes(rule, c, done, upstream) else "wait"


def trigger_for(rule: str, upstream_states: Sequence[str]) -> str:
    """:func:`trigger_outcome` from every upstream task's state (finished or not)."""
    finished = [s for s in upstream_states if s in FINISHED]
    return trigger_outcome(rule, finished, len(finished) == len(upstream_states))
