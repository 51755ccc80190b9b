"""The workflow graphs room in real browsers: one saga run orchestrated and choreographed side
by side, a failure injected from the presenter's window and followed in another, and message
dots that fly.

The numbers are the simulation's own (``apps.workflowgraphs.sim``): the order saga of five steps
over four services, 300 ms a message, 200 ms a local transaction; without a failure both styles
complete (orchestrated in 3,200 ms after 8 messages); with a declined card both compensate
inventory then the order.
"""
from __future__ import annotations

import math
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import People, Person, shot_name

pytestmark = pytest.mark.browser

FULL_HD = {"width": 1920, "height": 1080}
STEPS = ["create_order", "reserve_inventory", "charge_payment", "schedule_shipment", "approve_order"]


def has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def room_pair(people: People, **presenter_options: Any) -> tuple[Person, Person, str]:
    presenter = people("presenter", **presenter_options)
    code = presenter.create_room("workflow-graphs")
    expect(presenter.page.locator("body")).to_have_attribute("data-role", "presenter")
    other = people("other")
    other.open_room(code)
    return presenter, other, code


def press(person: Person, selector: str) -> int:
    """Click a control (a button or an element of the picture); wait for its broadcast."""
    before = person.seq()
    person.page.locator(selector).first.click()
    return person.wait_seq(before + 1)


def run_to_the_end(presenter: Person, limit: int = 12) -> dict[str, Any]:
    """Press +5 s until both styles have an outcome."""
    for _ in range(limit):
        state = presenter.state()["state"]
        if state["orch"]["outcome"] and state["chor"]["outcome"]:
            return state
        press(presenter, "#wf-runctl button[data-send=tick][data-arg-dt_ms='5000']")
    pytest.fail(f"no outcome after {limit} presses of +5 s: {presenter.state()['state']['orch']['outcome']!r}")


def test_the_saga_runs_both_ways_side_by_side(people: People, request: pytest.FixtureRequest) -> None:
    presenter, other, _code = room_pair(people)
    for person in (presenter, other):
        expect(person.page.locator("#wf-tasks .task")).to_have_count(len(STEPS))
        expect(person.page.locator("#wf-services .service")).to_have_count(4)
        expect(person.page.locator("#orch")).to_contain_text("waits for the start")
    before = presenter.seq()
    presenter.page.keyboard.press("s")  # the shortcut on "Start the run"
    presenter.wait_seq(before + 1)
    state = run_to_the_end(presenter)
    assert state["orch"]["outcome"] == state["chor"]["outcome"] == "completed"
    seq = presenter.seq()
    other.wait_seq(seq)
    for person in (presenter, other):
        page = person.page
        for i in range(len(STEPS)):
            expect(page.locator(f"#tk-{i}")).to_have_class(has_class("st-success"))
        expect(page.locator("#orch")).to_contain_text("saga completed")
        expect(page.locator("#sv-3")).to_contain_text("schedule_shipment: done")  # Shipping's own record
        expect(page.locator("#wf-compare tr.cmp-orch")).to_contain_text("completed")
        expect(page.locator("#wf-compare tr.cmp-orch")).to_contain_text("3.2 s")
        expect(page.locator("#wf-compare tr.cmp-chor")).to_contain_text("completed")
        expect(page.locator("#wf-rebuilt")).to_contain_text("Saga completed")
        expect(page.locator("#lg-orch")).to_contain_text("effects: T1 T2 T3 T4 T5")
        expect(page.locator("#wf-orch-eps .episode").first).to_be_attached()
        expect(page.locator("#wf-chor-eps .episode").first).to_be_attached()
    other.screenshot(shot_name(request, "other"), full_page=False)


def test_a_failure_injected_from_one_window_shows_in_the_other(people: People, request: pytest.FixtureRequest) -> None:
    presenter, other, _code = room_pair(people)
    seq = press(presenter, "#tk-2")  # the task in the picture: charge_payment will refuse
    other.wait_seq(seq)
    for person in (presenter, other):
        expect(person.page.locator("#tk-2")).to_have_class(has_class("refuses"))
        expect(person.page.locator("#tk-2")).to_contain_text("will refuse")
        expect(person.page.locator("#narration li").first).to_contain_text("Payment will refuse charge_payment")
    press(presenter, "#wf-runctl button[data-send=start]")
    state = run_to_the_end(presenter)
    assert state["orch"]["outcome"] == state["chor"]["outcome"] == "compensated"
    other.wait_seq(presenter.seq())
    for person in (presenter, other):
        page = person.page
        expect(page.locator("#tk-2")).to_have_class(has_class("st-failed"))
        expect(page.locator("#tk-3")).to_have_class(has_class("st-upstream_failed"))
        expect(page.locator("#tk-1")).to_contain_text("undo: success")  # the inventory was released
        expect(page.locator("#sv-2")).to_contain_text("charge_payment: failed")  # Payment's own record
        expect(page.locator("#sv-1")).to_contain_text("reserve_inventory: undone")
        expect(page.locator("#lg-orch")).to_contain_text("effects: T1 T2 C2 C1")
        expect(page.locator("#lg-chor")).to_contain_text("effects: T1 T2 C2 C1")
        expect(page.locator("#wf-compare tr.cmp-chor")).to_contain_text("reserve_inventory, create_order")
    # A crash from the picture reaches the other window too.
    seq = press(presenter, "#sv-1")
    other.wait_seq(seq)
    expect(other.page.locator("#sv-1")).to_have_class(has_class("down"))
    expect(other.page.locator("#sv-1")).to_contain_text("Inventory: DOWN")
    before = other.seq()
    other.page.locator("#sv-1").click()  # the other window is no presenter: nothing happens
    expect(other.page.locator("#flash")).to_contain_text("Only the presenter")
    assert other.seq() == before
    presenter.screenshot(shot_name(request, "presenter"), full_page=False)


# Every message dot's centre on screen, each animation frame for `ms` milliseconds.
# Each dot is followed as itself (an id per element): an update replaces the flights layer, and
# the n-th dot of one frame is not the n-th dot of the next.
SAMPLE_DOTS = """ms => {
  const frames = []; const t0 = performance.now(); window.__dots = frames; window.__dotsDone = false;
  const ids = new WeakMap(); let next = 0;
  const step = () => {
    const frame = {};
    document.querySelectorAll('#wf-flights .msg').forEach(d => {
      if (!ids.has(d)) ids.set(d, String(next++));
      const r = d.getBoundingClientRect();
      if (r.width) frame[ids.get(d)] = [r.left + r.width / 2, r.top + r.height / 2];
    });
    frames.push(frame);
    if (performance.now() - t0 < ms) requestAnimationFrame(step); else window.__dotsDone = true;
  };
  requestAnimationFrame(step);
}"""


def test_message_dots_fly_from_sender_to_receiver_and_never_jump(people: People) -> None:
    presenter = people("presenter", viewport=FULL_HD, reduced_motion="no-preference")
    presenter.create_room("workflow-graphs")
    press(presenter, "#wf-runctl button[data-send=start]")
    before = presenter.seq()
    presenter.page.evaluate(SAMPLE_DOTS, 2000)
    presenter.page.locator("#wf-runctl button[data-send=tick][data-arg-dt_ms='1000']").click()
    presenter.wait_seq(before + 1)
    presenter.page.wait_for_function("() => window.__dotsDone === true")
    frames = [f for f in presenter.page.evaluate("() => window.__dots") if f]
    assert len(frames) > 20, f"only {len(frames)} animation frames with dots"
    dots = max(len(f) for f in frames)
    assert dots >= 4, f"{dots} dots: a tick of the saga sends commands, replies, publishes and deliveries"
    flew = 0
    for i in sorted({dot for f in frames for dot in f}):
        track = [f[i] for f in frames if i in f]
        if len(track) < 5:
            continue
        travel = math.dist(track[0], track[-1])
        steps = [math.dist(a, b) for a, b in zip(track, track[1:])]
        if travel > 20:
            flew += 1
            assert max(steps) < max(travel / 2, 12), f"dot {i} jumped {max(steps):.0f} px in one frame of a {travel:.0f} px flight"
    assert flew >= 2, f"only {flew} of {dots} dots moved more than 20 px"


def test_reduced_motion_hides_the_dots(people: People) -> None:
    presenter = people("presenter", reduced_motion="reduce")
    presenter.create_room("workflow-graphs")
    press(presenter, "#wf-runctl button[data-send=start]")
    dots = presenter.page.locator("#wf-flights .msg")
    expect(dots).not_to_have_count(0)
    assert set(dots.evaluate_all("els => els.map(e => getComputedStyle(e).display)")) == {"none"}
