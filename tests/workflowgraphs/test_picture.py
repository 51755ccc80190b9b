"""The workflow room's picture (``apps/workflowgraphs/picture.py``): what each element says
about the state, and how message dots carry on across ticks."""
from __future__ import annotations

import re
from typing import Any

from apps.rooms.fragments import Change, Picture
from apps.rooms.registry import RoomView
from apps.workflowgraphs.picture import CHOR_X, lines_svg, picture, will_compensate
from apps.workflowgraphs.sim import WorkflowState, decide, evolve

from .conftest import TICK, run, saga, until_done


def view(seq: int = 1, speed: float = 1.0) -> RoomView:
    return RoomView(code="WFTEST", seq=seq, position=seq, playing=False, speed=speed, role="presenter")


def child(pic: Picture, layer: str, cid: str) -> str:
    return str(pic.layers[layer].children[cid])


def texts(markup: str) -> list[str]:
    return re.findall(r">([^<>]+)</text>", markup)


def update(state: WorkflowState, cmd: dict[str, Any]) -> tuple[WorkflowState, Picture]:
    events = decide(state, {**cmd, "_seed": "pic"})
    after = state
    for e in events:
        after = evolve(after, e)
    return after, picture(after, view(), Change(state, events))


def dots(pic: Picture) -> list[list[float]]:
    """Each dot of the update's flights: x1, y1, x2, y2, at, dur."""
    group = next(iter(pic.layers["wf-flights"].children.values()), "")
    items = re.search(r"data-flights='([^']*)'", str(group))
    return [[float(v) for v in item.split(",")[1:7]] for item in (items.group(1).split(";") if items else []) if item.startswith("m,")]


def test_each_task_is_named_and_classed_by_its_airflow_state() -> None:
    s = until_done(run(saga(), {"type": "fail_step", "step": "charge_payment"}, {"type": "start"}))
    pic = picture(s, view(), None)
    states = {i: re.search(r"class='task st-(\w+)", child(pic, "wf-tasks", f"tk-{i}")).group(1) for i in range(5)}
    assert states == {0: "success", 1: "success", 2: "failed", 3: "upstream_failed", 4: "upstream_failed"}
    for i, st in states.items():
        assert st in texts(child(pic, "wf-tasks", f"tk-{i}")), f"task {i} does not name its state {st}"
    assert "↺ undo: success" in texts(child(pic, "wf-tasks", "tk-1"))  # the inventory was released
    assert "effects: T1 T2 C2 C1" in child(pic, "wf-ledgers", "lg-orch")


def test_a_task_that_can_fail_is_a_button_that_toggles_its_failure() -> None:
    s = saga()
    pic = picture(s, view(), None)
    assert "data-send" not in child(pic, "wf-tasks", "tk-0")  # creating the order cannot fail
    assert "data-send='fail_step' data-arg-step='charge_payment' data-arg-on='true'" in child(pic, "wf-tasks", "tk-2")
    s = run(s, {"type": "fail_step", "step": "charge_payment"})
    assert "data-arg-on='false'" in child(picture(s, view(), None), "wf-tasks", "tk-2")


def test_the_orchestrator_says_what_it_waits_on_and_what_it_would_compensate() -> None:
    s = run(saga(), {"type": "start"}, TICK, TICK)  # t=2,000: the shipment is being scheduled
    lines = texts(child(picture(s, view(), None), "wf-orch", "orch"))
    assert lines[:3] == ["Orchestrator: up", "waits on step 4", "on failure undo: 3, 2, 1"], lines
    s = run(saga(), {"type": "fail_step", "step": "charge_payment"}, {"type": "start"}, TICK, TICK)
    assert will_compensate(s) == [1, 0]  # releasing the inventory (no reply yet), then the order
    s = run(s, TICK)
    assert will_compensate(s) == [0]  # the inventory is released; rejecting the order is under way
    lines = texts(child(picture(s, view(), None), "wf-orch", "orch"))
    assert "compensating 1" in lines and "will undo: 1" in lines, lines


def test_a_message_still_on_its_way_when_a_tick_ends_flies_on_from_where_it_was() -> None:
    s = run(saga(), {"type": "start"})  # ReserveInventory leaves at 0 ms and arrives at 300 ms: at 30 ms it is 1/10 on its way
    s, pic = update(s, {"type": "tick", "dt_ms": 30})
    first = dots(pic)
    s, pic = update(s, {"type": "tick", "dt_ms": 30})
    second = dots(pic)
    orch = [d for d in second if d[0] < CHOR_X]
    assert len(orch) == 1
    (x1, y1, x2, y2, at, dur), = orch
    start = next(d for d in first if d[0] < CHOR_X)
    assert (x2, y2) == (start[2], start[3])  # the same flight, to the same end
    assert abs(x1 - (start[0] + (start[2] - start[0]) / 10)) <= 1 and abs(y1 - (start[1] + (start[3] - start[1]) / 10)) <= 1
    assert at == 0 and dur == 270  # the rest of its way, in the clock's time (speed 1: 1 ms a ms)
    _, pic = update(s, {"type": "fail_step", "step": "charge_payment"})
    assert dots(pic) == []  # a command that moves no clock redraws nothing in flight


def test_a_line_too_long_for_its_box_is_squeezed_never_shrunk() -> None:
    short, long = texts_of(lines_svg(0, 0, [("ok", "tname")], 200)), texts_of(lines_svg(0, 0, [("x" * 20, "tname")], 200))
    assert "textLength" not in short and "textLength='200'" in long
    assert "font-size" not in long


def texts_of(markup: str) -> str:
    return str(markup)
