"""The order saga in both styles: outcomes, faults, idempotency, replay, fold and JSON."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.workflowgraphs.sim import (
    EVENTS,
    NARRATE,
    Rejected,
    comparison,
    decide,
    evolve,
    from_json,
    initial_state,
    narrate,
    outcome_sequence,
    reconstruct,
    to_json,
)

from .conftest import TICK, run, saga, until_done

START = {"type": "start"}
ALL = ["T1", "T2", "T3", "T4", "T5"]


def test_the_saga_completes_in_both_styles():
    s = until_done(run(saga(), START))
    assert outcome_sequence(s, "orch") == ALL and outcome_sequence(s, "chor") == ALL
    assert (s.orch.outcome, s.chor.outcome) == ("completed", "completed")
    assert s.orch.ti == ("success",) * 5
    c = comparison(s)
    assert c["orch"]["messages"] == 8  # 4 commands + 4 replies
    assert c["chor"]["messages"] == 9  # 5 publishes + 4 deliveries
    assert [k[0] for k in c["orch"]["knew"]] == ["Order", "orchestrator"]


def test_the_steps_and_commands_are_domains():
    s = until_done(run(saga(), {"type": "fail_step", "step": "schedule_shipment"}, START))
    ops = [e.label for e in s.orch.trace.episodes if e.messages[0]["kind"] == "command"]
    assert ops == ["ReserveInventory", "ProcessPayment", "ScheduleShipment", "RefundPayment", "ReleaseInventory",
                   "RejectOrder"]
    topics = [r.topic for r in s.chor.bus_log]
    assert topics == ["OrderCreated", "InventoryReserved", "PaymentCompleted", "ShipmentFailed", "PaymentRefunded",
                      "InventoryReleased", "OrderRejected"]
    assert s.orch.ti == ("success", "success", "success", "failed", "upstream_failed")


FAILABLE = ["reserve_inventory", "charge_payment", "schedule_shipment"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fail=st.sampled_from([None, *FAILABLE]), seed=st.integers(0, 10**6), idem=st.booleans(),
       undo_fails=st.dictionaries(st.sampled_from(["create_order", "reserve_inventory", "charge_payment"]),
                                  st.integers(0, 3), max_size=3),
       latency=st.integers(1, 1300), policy=st.sampled_from(["temporal", "airflow"]))
def test_outcome_is_all_steps_or_done_steps_then_their_compensations_in_reverse(fail, seed, idem, undo_fails,
                                                                                latency, policy):
    s = run(initial_state({}), {"type": "load_scene", "seed": seed, "idempotency": idem, "latency_ms": latency,
                                "policy": policy})
    s = run(s, {"type": "retry_policy", "kind": policy, "retry_delay_ms": 1000, "retries": 2})
    for step, times in undo_fails.items():
        s = run(s, {"type": "fail_compensation", "step": step, "times": times})
    if fail:
        s = run(s, {"type": "fail_step", "step": fail})
    s = until_done(run(s, START), limit=400)
    j = FAILABLE.index(fail) + 1 if fail else 5  # steps done before the failure
    expected = ALL if fail is None else [f"T{k}" for k in range(1, j + 1)] + [f"C{k}" for k in range(j, 0, -1)]
    assert outcome_sequence(s, "orch") == expected
    assert outcome_sequence(s, "chor") == expected
    assert s.orch.outcome == s.chor.outcome == ("completed" if fail is None else "compensated")


def test_a_failing_compensation_is_retried_until_it_succeeds():
    s = run(saga(), {"type": "fail_compensation", "step": "reserve_inventory", "times": 3},
            {"type": "fail_step", "step": "schedule_shipment"}, START)
    s = until_done(s)
    assert outcome_sequence(s, "orch") == ["T1", "T2", "T3", "C3", "C2", "C1"]
    assert outcome_sequence(s, "chor") == ["T1", "T2", "T3", "C3", "C2", "C1"]
    assert dict(s.orch.service("Inventory").undo_tries) == {1: 3}
    assert dict(s.chor.service("Inventory").undo_tries) == {1: 3}


def _duplicated(idem: bool):
    s = run(saga(idempotency=idem), {"type": "bus_fault", "topic": "InventoryReserved", "fault": "duplicate"}, START)
    return until_done(s)


def test_a_duplicated_event_charges_twice_without_idempotency():
    s = _duplicated(False)
    assert comparison(s)["chor"]["effects"]["charge_payment"] == 2
    assert "charge_payment" in comparison(s)["chor"]["doubled"]


def test_with_idempotency_a_duplicated_event_charges_once():
    s = _duplicated(True)
    assert comparison(s)["chor"]["effects"] == dict.fromkeys(comparison(s)["chor"]["effects"], 1)
    assert outcome_sequence(s, "chor") == ALL


def _slow_payment(idem: bool):
    s = run(saga(idempotency=idem), {"type": "slow_service", "service": "Payment", "ms": 4000}, START,
            TICK, TICK, TICK)
    s = run(s, {"type": "slow_service", "service": "Payment", "ms": 0})
    return until_done(s)


def test_a_retried_command_charges_twice_without_idempotency_and_once_with_it():
    assert comparison(_slow_payment(False))["orch"]["effects"]["charge_payment"] == 2
    with_keys = _slow_payment(True)
    assert comparison(with_keys)["orch"]["effects"]["charge_payment"] == 1
    assert outcome_sequence(with_keys, "orch") == ALL


@pytest.mark.parametrize(("idem", "by", "delay"), [(False, "reconciler", 10_000), (True, "outbox relay", 1000)])
def test_a_lost_event_leaves_the_choreography_stuck_until_the_reconciler_or_the_relay(idem, by, delay):
    log: list[dict] = []
    s = run(saga(idempotency=idem), {"type": "bus_fault", "topic": "InventoryReserved", "fault": "lose"}, START, log=log)
    s = until_done(s, log=log)
    again = [e for e in log if e["kind"] == "event_republished"]
    assert [e["data"]["by"] for e in again] == [by]
    lost_at = next(p for e in log if e["kind"] == "event_handled" for p in e["data"]["published"] if p["lost"])
    assert lost_at["topic"] == "InventoryReserved"
    assert outcome_sequence(s, "chor") == ALL
    assert comparison(s)["chor"]["time_ms"] >= delay + comparison(until_done(run(saga(), START)))["chor"]["time_ms"]


@pytest.mark.parametrize("idem", [False, True])
def test_replay_after_an_orchestrator_crash_repeats_no_completed_step(idem):
    s = run(saga(idempotency=idem), START, TICK, TICK)
    done_before = [h.step for h in s.orch.history if h.kind == "succeeded"]
    assert len(done_before) >= 2
    s = run(s, {"type": "crash_orchestrator"}, TICK, TICK, TICK, {"type": "restart_orchestrator"})
    s = until_done(s)
    for step in done_before:
        assert sum(1 for h in s.orch.history if h.kind == "sent" and h.step == step) <= 1
        assert sum(1 for e in s.orch.ledger if e.step == step) == 1
    assert s.orch.outcome == "completed"
    if idem:  # the step it was waiting on is asked again, and its key keeps it from being done twice
        assert outcome_sequence(s, "orch") == ALL


def test_the_orchestrator_resends_the_step_it_was_waiting_on():
    s = run(saga(idempotency=True), START, TICK)
    s = run(s, {"type": "crash_orchestrator"}, TICK, TICK, TICK, TICK)
    pending = [h for h in s.orch.history if h.kind == "sent"][-1]
    s = run(s, {"type": "restart_orchestrator"})
    again = [h for h in s.orch.history if h.kind == "sent"][-1]
    assert (again.step, again.note) == (pending.step, "recovered")
    s = until_done(s)
    assert outcome_sequence(s, "orch") == ALL


def test_a_crashed_service_delays_choreography_and_times_out_orchestration():
    s = run(saga(idempotency=True), {"type": "crash_service", "service": "Payment"}, START, *[TICK] * 8,
            {"type": "restart_service", "service": "Payment"})
    s = until_done(s)
    assert any(h.kind == "timed_out" for h in s.orch.history)
    assert outcome_sequence(s, "orch") == ALL and outcome_sequence(s, "chor") == ALL


def test_reconstruct_from_the_bus_log():
    s = until_done(run(saga(), {"type": "fail_step", "step": "charge_payment"}, START))
    r = reconstruct(s.proc, s.chor.bus_log)
    assert r.steps == ("undone", "undone", "failed", "pending", "pending")
    assert (r.finished, r.outcome) == (True, "compensated")


def test_fold_of_the_events_is_the_live_state_and_json_round_trips():
    log: list[dict] = []
    s = run(saga(seed=7), {"type": "bus_fault", "topic": "PaymentCompleted", "fault": "duplicate"},
            {"type": "fail_step", "step": "schedule_shipment"}, START, log=log)
    s = run(s, TICK, TICK, {"type": "crash_orchestrator"}, TICK, {"type": "restart_orchestrator"}, log=log)
    s = until_done(s, log=log)
    folded = saga(seed=7)
    for e in json.loads(json.dumps(log)):
        folded = evolve(folded, e)
    assert folded == s
    assert from_json(json.loads(json.dumps(to_json(s)))) == s
    for e in log:
        assert e["kind"] in EVENTS and e["kind"] in NARRATE


def test_every_event_is_narrated_with_true_numbers():
    log: list[dict] = []
    s = run(saga(), {"type": "bus_fault", "topic": "InventoryReserved", "fault": "duplicate"}, START, log=log)
    s0 = initial_state({})
    before = s0
    for e in log + []:
        after = evolve(before, e)
        text = narrate(before, after, e)
        assert text.endswith(".") and "?" not in text
        before = after
    s = until_done(s)
    text = narrate(s, s, {"kind": "saga_finished", "data": {"style": "chor", "outcome": s.chor.outcome,
                                                            "at": s.chor.finished_at, "knew": []}})
    assert f"after {s.chor.messages} messages" in text


def test_duplicate_narration_counts_the_charges():
    log: list[dict] = []
    s = run(saga(), {"type": "bus_fault", "topic": "InventoryReserved", "fault": "duplicate"}, START, log=log)
    state = s
    for _ in range(20):
        for e in decide(state, TICK):
            after = evolve(state, e)
            if e["kind"] == "event_handled" and e["data"]["reaction"] == "do" and e["data"]["step"] == 2:
                n = sum(1 for x in after.chor.ledger if x.step == 2 and x.kind == "T")
                assert f"charge_payment done {n} time{'' if n == 1 else 's'} here" in narrate(state, after, e)
            state = after
    assert sum(1 for x in state.chor.ledger if x.step == 2 and x.kind == "T") == 2


@pytest.mark.parametrize("cmd", [
    {"type": "tick"},
    {"type": "tick", "dt_ms": True},
    {"type": "tick", "dt_ms": 0},
    {"type": "tick", "dt_ms": "1e309"},
    {"type": "fail_step", "step": "approve_order"},
    {"type": "fail_step", "step": "nope"},
    {"type": "fail_step", "step": "<b>"},
    {"type": "fail_compensation", "step": "schedule_shipment"},
    {"type": "crash_service", "service": "Bank"},
    {"type": "restart_service", "service": "Payment"},
    {"type": "slow_service", "service": "Payment", "ms": -1},
    {"type": "restart_orchestrator"},
    {"type": "bus_fault", "topic": "Nope", "fault": "lose"},
    {"type": "bus_fault", "topic": "OrderCreated", "fault": "explode"},
    {"type": "idempotency", "on": "maybe"},
    {"type": "retry_policy", "kind": "celery"},
    {"type": "retry_policy", "kind": "temporal", "coefficient": "NaN"},
    {"type": "load_scene", "process": "nope"},
    {"type": "load_scene", "process": "data_pipeline", "join_rule": "some_success"},
    {"type": "bogus"},
])
def test_bad_commands_are_refused_with_a_sentence(cmd):
    with pytest.raises(Rejected) as err:
        decide(saga(), cmd)
    assert str(err.value).endswith(".")


def test_start_twice_is_refused():
    with pytest.raises(Rejected):
        decide(run(saga(), START), START)
