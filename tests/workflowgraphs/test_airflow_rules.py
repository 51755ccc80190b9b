"""DOMAIN.md §4: Airflow's task-instance transitions (no other), and every trigger rule on joins
with mixed upstream states, early marking included, as trigger_rule_dep decides."""
from __future__ import annotations

import pytest

from apps.workflowgraphs.sim import airflow

DOMAIN_TRANSITIONS = {
    ("none", "scheduled"), ("none", "upstream_failed"), ("none", "skipped"), ("none", "removed"),
    ("scheduled", "queued"), ("queued", "running"), ("queued", "deferred"),
    ("running", "success"), ("running", "failed"), ("running", "up_for_retry"), ("running", "up_for_reschedule"),
    ("running", "deferred"), ("running", "skipped"), ("running", "restarting"), ("running", "awaiting_input"),
    ("up_for_retry", "scheduled"), ("up_for_reschedule", "scheduled"), ("awaiting_input", "scheduled"),
    ("deferred", "scheduled"), ("restarting", "none"),
}


def test_the_states_are_airflows():
    assert set(airflow.STATES) == {"none", "scheduled", "queued", "running", "success", "restarting", "failed",
                                   "skipped", "upstream_failed", "up_for_retry", "up_for_reschedule", "deferred",
                                   "awaiting_input", "removed"}


def test_exactly_the_domain_transitions_are_allowed():
    allowed = set()
    for a in airflow.STATES:
        for b in airflow.STATES:
            try:
                airflow.transition(a, b)
                allowed.add((a, b))
            except airflow.IllegalTransition:
                pass
    assert allowed == DOMAIN_TRANSITIONS


def test_a_path_checks_every_move():
    assert airflow.path("none", "scheduled", "queued", "running", "success") == "success"
    with pytest.raises(airflow.IllegalTransition):
        airflow.path("none", "queued")
    with pytest.raises(airflow.IllegalTransition):
        airflow.transition("success", "running")


RULES = ("all_success", "all_failed", "all_done", "all_done_min_one_success", "all_skipped", "one_failed",
         "one_success", "one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always")
R, W, S, U = "run", "wait", "skipped", "upstream_failed"
# (finished upstream states, all upstream done) -> the outcome under each rule, in RULES' order
GOLDEN = [
    (["success", "success"], True, [R, S, R, R, S, S, R, R, R, R, R, R]),
    (["success", "failed"], True, [U, S, R, R, S, R, R, R, U, U, R, R]),
    (["success", "skipped"], True, [S, S, R, S, S, S, R, R, R, R, S, R]),
    (["failed", "upstream_failed"], True, [U, R, R, U, S, R, U, R, U, U, R, R]),
    (["skipped", "skipped"], True, [S, S, R, S, R, S, S, S, R, S, S, R]),
    (["success"], False, [W, S, W, W, S, W, R, R, W, W, W, R]),
    (["failed"], False, [U, W, W, W, S, R, W, R, U, U, W, R]),
    ([], False, [W, W, W, W, W, W, W, W, W, W, W, R]),
    (["skipped"], False, [S, S, W, S, W, W, W, W, W, W, S, R]),
]


def test_all_twelve_rules():
    assert set(airflow.TRIGGER_RULES) == set(RULES) and len(RULES) == 12


@pytest.mark.parametrize(("finished", "all_done", "expected"), GOLDEN, ids=[f"{'+'.join(g[0]) or 'none'}{'' if g[1] else '+running'}" for g in GOLDEN])
def test_trigger_rules_on_a_join(finished, all_done, expected):
    got = [airflow.trigger_outcome(rule, finished, all_done) for rule in RULES]
    assert dict(zip(RULES, got)) == dict(zip(RULES, expected))


def test_trigger_for_reads_unfinished_upstream_states():
    assert airflow.trigger_for("all_success", ["success", "running"]) == "wait"
    assert airflow.trigger_for("all_success", ["failed", "running"]) == "upstream_failed"  # early, not waiting
    assert airflow.trigger_for("all_done", ["failed", "up_for_retry"]) == "wait"
    assert airflow.trigger_for("one_failed", ["success", "success", "success"]) == "skipped"
    assert airflow.trigger_for("all_success", []) == "run"  # no upstream
