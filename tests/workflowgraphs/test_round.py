"""The class round: students are the services (``sim.classroom``, ``classround``).

Students take services in turn; a service with a student holds the command (orchestrated) or the
event (choreographed) that asks it to do its step until a student answers; the answer drives the
saga; a bad answer is refused with a sentence; no answer by the time limit is a silence the saga
handles as it handles any (the orchestrator's timeout, the bus's redelivery).
"""
from __future__ import annotations

import json

import pytest

from apps.workflowgraphs.classround import SERVICES_ROUND, my_entry, my_entry_basis, round_opened, service_command
from apps.workflowgraphs.sim import EVENTS, Rejected, WorkflowState, decide, evolve, from_json, narrate, to_json
from apps.workflowgraphs.sim import outcome_sequence

from .conftest import TICK, run, saga, until_done

START = {"type": "start"}


def seated(*names: str) -> WorkflowState:
    s = saga()
    for name in names:
        s = run(s, {"type": "take_service", "name": name})
    return s


def ticks(s: WorkflowState, n: int) -> WorkflowState:
    for _ in range(n):
        s = run(s, TICK)
    return s


def ask(s: WorkflowState, service: str, style: str) -> int:
    return next(a.id for a in s.asks if a.held.to == service and a.held.style == style)


def answer(s: WorkflowState, name: str, ask_id: int, decision: str) -> WorkflowState:
    return run(s, {"type": "answer", "name": name, "ask": ask_id, "decision": decision})


def refused(s: WorkflowState, cmd: dict) -> str:
    with pytest.raises(Rejected) as exc:
        decide(s, cmd)
    return str(exc.value)


def test_students_take_the_sagas_services_in_turn_and_share_them_beyond():
    s = seated("Ann", "Bea", "Cy", "Dee")
    assert s.seats == (("Ann", "Inventory"), ("Bea", "Payment"), ("Cy", "Shipping"), ("Dee", "Inventory"))
    assert "Dee is Inventory already." in refused(s, {"type": "take_service", "name": "Dee"})
    assert service_command(s, {}, "Eve")["type"] == "take_service"
    assert service_command(s, {"ask": 3, "decision": "no"}, "Bea") == {
        "type": "answer", "name": "Bea", "service": "Payment", "ask": 3, "decision": "no"}
    assert round_opened(s) == [{"type": "class_reset"}] and round_opened(saga()) == []
    assert run(s, {"type": "class_reset"}).seats == ()
    assert SERVICES_ROUND.resets_entries >= {"seats_cleared", "scene_loaded"}


def test_a_service_with_a_student_waits_for_them_in_both_styles():
    s = ticks(run(seated("Ann", "Bea", "Cy"), START), 5)
    assert {(a.held.style, a.held.to, a.held.op) for a in s.asks} == {
        ("orch", "Inventory", "ReserveInventory"), ("chor", "Inventory", "OrderCreated")}
    assert s.orch.ti[1] == "running" and not s.orch.ledger[1:] and not s.chor.ledger[1:]
    panel = my_entry(s, {"name": "Ann", "entry": "Inventory"})
    assert "You are Inventory" in panel and panel.count('data-send="be_the_service"') == 4
    assert "Reserve" in panel and "Refuse" in panel
    assert "The orchestrator sends you ReserveInventory: reserve or refuse?" in panel


def test_declining_the_payment_compensates_the_saga_in_both_styles():
    s = ticks(run(seated("Ann", "Bea", "Cy"), START), 1)
    s = answer(answer(s, "Ann", ask(s, "Inventory", "orch"), "yes"), "Ann", ask(s, "Inventory", "chor"), "yes")
    s = ticks(s, 2)
    s = answer(answer(s, "Bea", ask(s, "Payment", "orch"), "no"), "Bea", ask(s, "Payment", "chor"), "no")
    s = until_done(s)
    assert (s.orch.outcome, s.chor.outcome) == ("compensated", "compensated")
    assert outcome_sequence(s, "orch") == outcome_sequence(s, "chor") == ["T1", "T2", "C2", "C1"]
    assert [(a.name, a.service, a.style, a.ok) for a in s.answers] == [
        ("Ann", "Inventory", "orch", True), ("Ann", "Inventory", "chor", True),
        ("Bea", "Payment", "orch", False), ("Bea", "Payment", "chor", False)]
    assert "Cy" not in {a.name for a in s.answers}  # Shipping was never asked


def test_yes_everywhere_completes_the_saga():
    s = run(seated("Ann", "Bea", "Cy"), START)
    for _ in range(30):
        for a in list(s.asks):
            who = {"Inventory": "Ann", "Payment": "Bea", "Shipping": "Cy"}[a.held.to]
            s = answer(s, who, a.id, "yes")
        s = run(s, TICK)
    assert (s.orch.outcome, s.chor.outcome) == ("completed", "completed")


def test_answers_are_refused_unless_their_own_pending_request_once():
    s = ticks(run(seated("Ann", "Bea", "Cy", "Dee"), START), 1)
    inv = ask(s, "Inventory", "orch")
    assert "Bea has no service" not in refused(s, {"type": "answer", "name": "Bea", "ask": inv, "decision": "yes"})
    assert "That request is for Inventory; you are Payment." in refused(
        s, {"type": "answer", "name": "Bea", "ask": inv, "decision": "yes"})
    assert "Eve has no service yet" in refused(s, {"type": "answer", "name": "Eve", "ask": inv, "decision": "yes"})
    for bad in ("maybe", True, 1, None, "YES"):
        assert refused(s, {"type": "answer", "name": "Ann", "ask": inv, "decision": bad}) == "An answer is yes or no."
    assert "No request 999 is waiting for Inventory." in refused(
        s, {"type": "answer", "name": "Ann", "ask": 999, "decision": "yes"})
    for bad in ("1e3", True, -1, "x"):
        refused(s, {"type": "answer", "name": "Ann", "ask": bad, "decision": "yes"})
    s = answer(s, "Dee", inv, "no")  # Dee shares Inventory with Ann: the first answer decides
    assert "Dee answered first: refused: out of stock." in refused(
        s, {"type": "answer", "name": "Ann", "ask": inv, "decision": "yes"})


def test_no_answer_in_time_is_a_silence_the_saga_handles():
    s = ticks(run(seated("Ann"), START), 1)
    limit = s.settings.answer_ms
    first = {a.held.style: a for a in s.asks}
    log: list[dict] = []
    s = run(s, {"type": "tick", "dt_ms": limit + s.settings.reply_timeout_ms}, log=log)
    expired = [e["data"] for e in log if e["kind"] == "request_expired"]
    assert {(e["style"], e["redelivered"]) for e in expired} == {("orch", False), ("chor", True)}
    assert all(e["at"] == first[e["style"]].due for e in expired)
    # orchestrated: no reply, then the orchestrator's own reply timeout (the answer limit longer),
    # and a retry asks the student again; choreographed: the bus delivers the event again
    timed_out = [e["data"] for e in log if e["kind"] == "reply_timed_out"]
    assert timed_out and timed_out[0]["at"] == s.settings.reply_timeout_ms + limit and timed_out[0]["retry"]
    s = ticks(s, 3)
    again = {a.held.style: a.held for a in s.asks}
    assert again["orch"].attempt == 2 and again["chor"].key == first["chor"].held.key
    s = answer(s, "Ann", ask(s, "Inventory", "orch"), "yes")
    assert s.orch.ledger[-1].step == 1


def test_round_events_fold_narrate_typed_and_round_trip():
    log: list[dict] = []
    s = ticks(run(seated("Ann", "Bea", "Cy"), START), 1)
    s = run(s, {"type": "answer", "name": "Ann", "ask": ask(s, "Inventory", "orch"), "decision": "yes"},
            {"type": "tick", "dt_ms": 20_000}, {"type": "class_reset"}, log=log)
    kinds = {e["kind"] for e in log}
    assert {"request_answered", "request_expired", "request_held", "seats_cleared"} <= kinds
    state = s
    for e in log:
        assert set(e["data"]) == set(EVENTS[e["kind"]].__annotations__), e["kind"]
    assert "Ann, as Inventory, reserved the stock (ReserveInventory)" in narrate(
        state, state, next(e for e in log if e["kind"] == "request_answered"))
    assert from_json(json.loads(json.dumps(to_json(s)))) == s


def test_a_students_panel_moves_with_their_service_only():
    s = ticks(run(seated("Ann", "Bea", "Cy"), START), 1)
    entry = {"name": "Cy", "entry": "Shipping"}
    later = evolve(s, {"kind": "clock_advanced", "data": {"to": s.now_ms + 1}})
    assert my_entry_basis(s, entry) == my_entry_basis(later, entry)  # nothing waits for Shipping
    inv = {"name": "Ann", "entry": "Inventory"}
    assert my_entry_basis(s, inv) != my_entry_basis(ticks(s, 1), inv)  # the seconds left move
    assert "Nothing is waiting for you now." in my_entry(s, entry)
