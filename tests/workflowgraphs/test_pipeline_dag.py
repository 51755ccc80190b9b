"""The data pipeline DAG: extract -> two parallel transforms -> load, with a trigger rule on the join."""
from __future__ import annotations

from apps.workflowgraphs.sim import initial_state, outcome_sequence

from .conftest import run, until_done

START = {"type": "start"}


def _pipeline(rule: str, fail: str | None = None):
    s = run(initial_state({}),
            {"type": "load_scene", "process": "data_pipeline", "join_rule": rule})
    if fail:
        s = run(s, {"type": "fail_step", "step": fail})
    return until_done(run(s, START))


def test_the_pipeline_runs_both_transforms_in_parallel():
    s = _pipeline("all_success")
    assert s.orch.ti == ("success",) * 4 and s.orch.outcome == "completed"
    sent = [h for h in s.orch.history if h.kind == "sent"]
    assert sent[1].at == sent[2].at  # both transforms sent at once
    assert outcome_sequence(s, "chor") == ["T1", "T2", "T3", "T4"] and s.chor.outcome == "completed"


def test_all_success_join_is_marked_upstream_failed():
    s = _pipeline("all_success", fail="transform_a")
    assert s.orch.ti == ("success", "failed", "success", "upstream_failed")
    assert s.orch.outcome == "failed"
    marked = [h for h in s.orch.history if h.kind == "marked"]
    assert [(h.step, h.note) for h in marked] == [(3, "upstream_failed")]


def test_all_done_join_runs_after_a_failure():
    s = _pipeline("all_done", fail="transform_a")
    assert s.orch.ti == ("success", "failed", "success", "success")
    assert 3 in s.chor.service("Load").done  # the choreographed load heard both outcomes and ran


def test_one_failed_join_runs_and_all_failed_join_is_skipped():
    assert _pipeline("one_failed", fail="transform_b").orch.ti[3] == "success"
    assert _pipeline("one_failed").orch.ti[3] == "skipped"
    assert _pipeline("all_failed", fail="transform_b").orch.ti[3] == "skipped"


def test_a_failed_extract_fails_the_pipeline_in_both_styles():
    s = _pipeline("all_success", fail="extract")
    assert s.orch.ti == ("failed", "upstream_failed", "upstream_failed", "upstream_failed")
    assert [r.topic for r in s.chor.bus_log] == ["ExtractFailed"]
    assert s.chor.ledger == ()
