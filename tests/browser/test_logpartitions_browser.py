"""The log partitions room in real browsers: a presenter acts, a second person's window follows.

The presenter and the other person have their own browser contexts (their own sessions, so the
other one is a participant). The server's view of the room comes from state.json; where a record
goes is checked against the pure partitioner (``partition_for``), as a reader would compute it.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from apps.logpartitions.sim import partition_for

from .conftest import People, Person, open_controls, shot_name

pytestmark = pytest.mark.browser

SEED_CELLS = 3  # order_id=1001..1003 at offsets 0-2 of P0
DOWN = re.compile(r"(^|\s)down(\s|$)")
UP = re.compile(r"(^|\s)up(\s|$)")
HL = re.compile(r"(^|\s)hl(\s|$)")
PROJECTION = re.compile(r"(^|\s)projection(\s|$)")


# -- helpers -----------------------------------------------------------------------------------

def create_log_room(person: Person) -> str:
    """From the home page's card, open a new log partitions room as its presenter."""
    person.home()
    person.page.locator("#card-log-partitions button").click()
    person.page.wait_for_url(re.compile(r"/r/[^/]+/$"))
    person.wait_live()
    return person.code()


def room_pair(people: People, **other_options: Any) -> tuple[Person, Person, str]:
    presenter = people("presenter")
    code = create_log_room(presenter)
    other = people("other", **other_options)
    other.open_room(code)
    return presenter, other, code


def derived(person: Person) -> dict[str, Any]:
    return person.state()["state"]["derived"]


def cell_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all("#lp-frame .cell", "els => els.map(e => e.id)")


def leader_text(page: Page, partition: int):  # noqa: ANN201 - a Locator
    return page.locator(f"#ph-{partition} .pmeta").first


def click_in_picture(person: Person, selector: str) -> int:
    """Click an element of the picture (as a person would, at its centre); wait for the broadcast."""
    before = person.seq()
    person.page.locator(selector).click()
    return person.wait_seq(before + 1)


def press(page: Page, key: str) -> None:
    """A keyboard shortcut, with nothing focused (a focused field would take the key)."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press(key)


def records_shown(page: Page) -> int:
    text = page.locator("#lp-summary").inner_text()
    m = re.search(r"([\d,]+) records", text)
    assert m, text
    return int(m.group(1).replace(",", ""))


# -- the page and a produce ----------------------------------------------------------------------

def test_the_page_shows_the_seeds_picture(people: People) -> None:
    presenter, other, _code = room_pair(people)
    for person in (presenter, other):
        page = person.page
        expect(page.locator("#lp-frame")).to_be_visible()
        expect(page.locator("#lp-heads .phead")).to_have_count(3)
        expect(page.locator("#lp-brokers .broker")).to_have_count(3)
        expect(page.locator("#lp-brokers .broker.up")).to_have_count(3)
        expect(page.locator("#lp-producers .producer")).to_have_count(1)
        expect(page.locator("#lp-producers .producer .pr-name")).to_have_text("producer")
        expect(page.locator("#lp-groups .group")).to_have_count(1)
        expect(page.locator("#lp-groups .group .gname")).to_have_text("analytics")
        expect(page.locator("#lp-groups [data-member='consumer-1']")).to_have_count(1)
        expect(page.locator("#lp-cells .cell")).to_have_count(SEED_CELLS)
        assert cell_ids(page) == ["c-0-0", "c-0-1", "c-0-2"]
        for p in range(3):
            expect(leader_text(page, p)).to_have_text(f"leader b{p}")
    expect(presenter.page.locator("body")).to_have_attribute("data-role", "presenter")
    expect(other.page.locator("body")).to_have_attribute("data-role", "participant")
    expect(other.page.locator("form:has(> input[name=type][value=produce])")).to_be_hidden()


def test_a_keyed_record_lands_in_its_partition_in_the_other_window(people: People, request: pytest.FixtureRequest) -> None:
    presenter, other, _code = room_pair(people)
    before = {p["index"]: p["log_end"] for p in derived(presenter)["partitions"]}
    seq = presenter.command("produce", key="order-42")
    other.wait_seq(seq)

    parts = derived(presenter)["partitions"]
    grown = [p["index"] for p in parts if p["log_end"] != before[p["index"]]]
    expected = partition_for("order-42", 3)
    assert grown == [expected], (grown, expected)
    offset = parts[expected]["log_end"] - 1
    cell = other.page.locator(f"#c-{expected}-{offset}")
    expect(cell).to_have_count(1)
    expect(cell).to_have_attribute("data-key", "order-42")
    expect(cell).to_have_class(re.compile(r"(^|\s)cell(\s|$)"))
    expect(other.page.locator("#lp-cells .cell")).to_have_count(SEED_CELLS + 1)
    expect(other.page.locator(f"#pc-{expected}")).to_have_text(f"{parts[expected]['records']} records")
    line = other.page.locator("#narration li").first
    expect(line).to_contain_text("murmur2")
    expect(line).to_contain_text(f"% 3 = {expected}")
    expect(line).to_contain_text(f"to P{expected} at offset {offset}")
    other.screenshot(shot_name(request, "other"))


def test_the_produce_form_can_send_twice(people: People) -> None:
    presenter, _other, _code = room_pair(people)
    seq = presenter.command("produce", key="a")
    expect(presenter.form("produce").locator("input[name=key]")).to_have_value("")  # cleared: fine
    try:
        expect(presenter.form("produce").locator("input[name=producer]")).to_have_value("producer", timeout=2000)
    finally:
        presenter.submit("produce", key="b")  # only the key is typed again, as a person would
        presenter.wait_seq(seq + 1, timeout=3000)
    assert derived(presenter)["totals"]["records"] == SEED_CELLS + 2


# -- brokers: click to stop and restart ----------------------------------------------------------

def test_clicking_a_broker_stops_it_and_moves_leadership_then_restarts_it(people: People, request: pytest.FixtureRequest) -> None:
    presenter, other, _code = room_pair(people)
    seq = click_in_picture(presenter, "#br-0")
    other.wait_seq(seq)
    new_leader = derived(presenter)["partitions"][0]["leader"]
    assert new_leader not in (None, 0)
    for person in (presenter, other):
        expect(person.page.locator("#br-0")).to_have_class(DOWN)
        expect(person.page.locator("#br-0 .broker-detail")).to_have_text("stopped")
        expect(leader_text(person.page, 0)).to_have_text(f"leader b{new_leader}")
        expect(person.page.locator("#ph-0")).to_have_class(re.compile(r"(^|\s)under(\s|$)"))
        expect(person.page.locator("#narration li").first).to_contain_text("Broker 0 stopped")
        expect(person.page.locator("#lp-summary")).to_contain_text("2/3 brokers up")
    presenter.screenshot(shot_name(request, "stopped"))

    seq = click_in_picture(presenter, "#br-0")
    other.wait_seq(seq)
    for person in (presenter, other):
        expect(person.page.locator("#br-0")).to_have_class(UP)
        expect(person.page.locator("#narration li").first).to_contain_text("Broker 0 restarted")
        expect(person.page.locator("#lp-summary")).to_contain_text("3/3 brokers up")
    assert derived(presenter)["totals"]["brokers_up"] == 3


def test_the_other_window_cannot_stop_a_broker(people: People) -> None:
    _presenter, other, _code = room_pair(people)
    before = other.seq()
    other.page.locator("#br-1").click()
    expect(other.page.locator("#flash")).to_contain_text("open a round")
    assert other.seq() == before
    expect(other.page.locator("#br-1")).to_have_class(UP)


# -- consumer groups -------------------------------------------------------------------------

def test_adding_a_consumer_shows_it_in_the_group_and_narrates_the_rebalance(people: People) -> None:
    presenter, other, _code = room_pair(people)
    seq = presenter.command("group_join", member="consumer-2")
    other.wait_seq(seq)
    for person in (presenter, other):
        group = person.page.locator("#lp-groups .group").first
        expect(group.locator("[data-member]")).to_have_count(2)
        expect(group.locator("[data-member='consumer-2']")).to_have_count(1)
        expect(group.locator(".gmeta")).to_contain_text("generation 2")
        line = person.page.locator("#narration li").first
        expect(line).to_contain_text("consumer-2 joined analytics")
        expect(line).to_contain_text("rebalance")
    owned = {m["name"]: m["partitions"] for m in derived(presenter)["groups"][0]["members"]}
    assert owned == {"consumer-1": [0, 1], "consumer-2": [2]}
    expect(other.page.locator("[data-member='consumer-2'] .mparts")).to_have_text("P2")

    # A click anywhere on a consumer's row removes it: here its right end, past its name.
    row = presenter.page.locator("#lp-groups [data-member='consumer-2']")
    box = row.bounding_box()
    assert box
    before = presenter.seq()
    hit = presenter.page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('[data-member]')?.dataset.member",
                                  [box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2])
    assert hit == "consumer-2", hit  # the gap between the name and its partitions is the row too
    presenter.page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2)
    seq = presenter.wait_seq(before + 1)
    other.wait_seq(seq)
    expect(other.page.locator("#lp-groups [data-member]")).to_have_count(1)
    expect(other.page.locator("#narration li").first).to_contain_text("consumer-2 left analytics")


def test_a_groups_lag_label_fits_in_the_picture(people: People) -> None:
    presenter, _other, _code = room_pair(people)
    label = presenter.page.locator("#lp-groups .glag").first
    expect(label).to_have_text("lag 3")
    box, frame = label.bounding_box(), presenter.page.locator("#lp-frame").bounding_box()
    assert box and frame and box["x"] + box["width"] <= frame["x"] + frame["width"] + 0.5, (box, frame)


def test_a_new_scene_repaints_the_picture_in_both_windows(people: People) -> None:
    presenter, other, _code = room_pair(people)
    presenter.page.locator("details:has(> summary:text-is('New scene')) > summary").click()
    seq = presenter.command("load_scene", partitions=5, brokers=4, replication_factor=3)
    other.wait_seq(seq)
    for person in (presenter, other):
        expect(person.page.locator("#lp-heads .phead")).to_have_count(5)
        expect(person.page.locator("#lp-brokers .broker")).to_have_count(4)
        expect(person.page.locator("#lp-cells .cell")).to_have_count(SEED_CELLS)
        expect(person.page.locator("#narration li").first).to_contain_text("New scene")
        expect(person.page.locator("#lp-summary")).to_contain_text("RF 3")
    assert presenter.page.evaluate("() => document.getElementById('lp-rows').viewBox.baseVal.height") == 6 + 5 * 150


def test_the_controls_follow_a_new_scene(people: People) -> None:
    presenter, _other, _code = room_pair(people)
    presenter.page.locator("details:has(> summary:text-is('New scene')) > summary").click()
    presenter.command("load_scene", partitions=5, brokers=4, replication_factor=3)
    expect(presenter.page.locator("#lp-brokers .broker")).to_have_count(4)
    try:
        expect(presenter.page.locator("#lp-controls button[data-arg-broker]")).to_have_count(4, timeout=2000)
    finally:
        options = presenter.page.locator("form:has(> input[value=set_min_insync]) select option").all_text_contents()
        assert options == ["1", "2", "3"], options


# -- a key's records, highlighted on one screen ---------------------------------------------------

def step(person: Person) -> int:
    """One tick with the Step button."""
    before = person.seq()
    person.page.locator(".clock button[data-send=step]").click()
    return person.wait_seq(before + 1)


def click_cell(cell) -> None:  # noqa: ANN001 - a Locator
    """Click a cell near its top edge: the produces' flights, left in the picture (see the xfail),
    cover the middle of the row. The click still has to land on the cell itself."""
    cell.click(position={"x": 12, "y": 4})


def test_clicking_a_cell_highlights_that_keys_cells_on_this_screen_only(people: People, request: pytest.FixtureRequest) -> None:
    presenter, other, _code = room_pair(people)
    for key in ("order-42", "order-7", "order-42", "order-42"):
        presenter.command("produce", producer="producer", key=key)  # the producer field too: see the xfail
    other.wait_seq(step(presenter))
    same = presenter.page.locator("#lp-frame .cell[data-key='order-42']")
    expect(same).to_have_count(3)
    total = presenter.page.locator("#lp-frame .cell").count()
    seq = presenter.seq()

    click_cell(same.first)
    expect(presenter.page.locator("body")).to_have_class(re.compile(r"key-highlight"))
    expect(presenter.page.locator("#lp-frame .cell.hl")).to_have_count(3)
    for i in range(3):
        expect(same.nth(i)).to_have_class(HL)
    expect(presenter.page.locator("#lp-frame .cell[data-key='order-7']")).not_to_have_class(HL)
    assert total > 3
    # Only this screen: nothing was sent, the other window is untouched.
    assert presenter.seq() == seq
    expect(other.page.locator("#lp-frame .cell.hl")).to_have_count(0)
    expect(other.page.locator("body")).not_to_have_class(re.compile(r"key-highlight"))
    presenter.screenshot(shot_name(request, "highlight"), full_page=False)

    # A new record of that key arrives highlighted; a click on a highlighted cell turns it off.
    presenter.command("produce", producer="producer", key="order-42")
    expect(presenter.page.locator("#lp-frame .cell.hl")).to_have_count(4)
    step(presenter)
    expect(presenter.page.locator("#lp-frame .cell.hl")).to_have_count(4)
    click_cell(same.nth(3))
    expect(presenter.page.locator("#lp-frame .cell.hl")).to_have_count(0)
    expect(presenter.page.locator("body")).not_to_have_class(re.compile(r"key-highlight"))


def test_a_flight_is_gone_after_the_next_broadcast_and_the_new_cell_can_be_clicked(people: People) -> None:
    presenter, _other, _code = room_pair(people)
    presenter.command("produce", producer="producer", key="order-42")
    expect(presenter.page.locator("#lp-flights .flight")).to_have_count(1)
    part = partition_for("order-42", 3)
    cell = presenter.page.locator(f"#c-{part}-{derived(presenter)['partitions'][part]['log_end'] - 1}")
    step(presenter)
    try:
        expect(presenter.page.locator("#lp-flights .flight")).to_have_count(0, timeout=2000)
    finally:
        cell.click()  # at its centre, where the flight's circle came to rest
    expect(cell).to_have_class(HL)


# -- the clock: a streaming producer ----------------------------------------------------------------

def test_play_streams_records_and_pause_stops_them(people: People, request: pytest.FixtureRequest) -> None:
    presenter, other, _code = room_pair(people)
    page = presenter.page
    presenter.command("set_producer_rate", rate=5)
    expect(page.locator("#lp-producers .producer")).to_contain_text("5/tick")
    before = presenter.seq()
    page.locator(".clock select[data-command=speed]").select_option("4.0")
    other.wait_seq(presenter.wait_seq(before + 1))
    cells_before = other.page.locator("#lp-frame .cell").count()
    records_before = records_shown(other.page)
    lag_before = other.page.locator("#lp-lag .lag-now").inner_text()

    page.locator("#room-bar .play").click()
    expect(page.locator("#room-bar .play")).to_contain_text("Pause")
    other.page.wait_for_function(
        "n => document.querySelectorAll('#lp-frame .cell').length >= n", arg=cells_before + 10)
    other.page.wait_for_function(
        "n => Number(document.querySelector('#lp-summary').innerText.match(/([\\d,]+) records/)[1].replace(/,/g, '')) >= n",
        arg=records_before + 20)
    expect(other.page.locator("#lp-lag .lag-now")).not_to_have_text(lag_before)
    expect(other.page.locator("#lp-lag .lag-chart polyline")).to_have_count(1)
    expect(other.page.locator("#narration li").first).to_contain_text("Tick")
    other.screenshot(shot_name(request, "playing"), full_page=False)

    page.locator("#room-bar .play").click()
    expect(page.locator("#room-bar .play")).to_contain_text("Play")
    expect(other.page.locator("#narration li").first).to_contain_text("Clock paused")
    other.wait_seq(presenter.seq())
    stopped_at = (other.seq(), records_shown(other.page))
    page.wait_for_timeout(1500)  # six ticks at 4x, had the clock gone on
    assert (other.seq(), records_shown(other.page)) == stopped_at
    state = presenter.state()
    assert state["clock"]["playing"] is False
    assert state["state"]["derived"]["totals"]["records"] == stopped_at[1]


# -- screens: the projector and a phone -------------------------------------------------------------

def test_projection_and_phone_screenshots(people: People) -> None:
    presenter = people("projector", viewport={"width": 1920, "height": 1080})
    code = create_log_room(presenter)
    phone = people("phone", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                   device_scale_factor=2)
    phone.open_room(code)
    page = presenter.page
    presenter.command("produce_burst", count=30)
    presenter.command("group_join", member="consumer-2")
    presenter.command("produce", producer="producer", key="order-42")
    seq = click_in_picture(presenter, "#br-2")
    phone.wait_seq(seq)

    page.evaluate("() => window.scrollTo(0, 0)")
    presenter.screenshot("logpartitions-presenter-1920x1080", full_page=False)
    presenter.screenshot("logpartitions-presenter-1920x1080-full")
    press(page, "p")
    expect(page.locator("body")).to_have_class(PROJECTION)
    page.evaluate("() => window.scrollTo(0, 0)")
    expect(page.locator("#lp-frame")).to_be_in_viewport()
    presenter.screenshot("logpartitions-projection-1920x1080", full_page=False)
    box = page.locator("#lp-frame").bounding_box()
    assert box and box["y"] + box["height"] <= 1080 + 1, box  # the whole picture fits the projector
    press(page, "p")
    expect(page.locator("body")).not_to_have_class(PROJECTION)

    expect(phone.page.locator("#lp-frame")).to_be_visible()
    expect(phone.page.locator("#br-2")).to_have_class(DOWN)
    phone.screenshot("logpartitions-phone-390x844", full_page=False)
    phone.screenshot("logpartitions-phone-390x844-full")
    overflow = phone.page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the phone page scrolls sideways by {overflow}px"


# -- readable on every screen, motion that moves, the keyboard -------------------------------------

# Every text of the picture, with its size on screen: an SVG text's font size times the scale of
# its SVG (getScreenCTM), an HTML text's computed size.
TEXT_SIZES = """() => {
  const out = [];
  document.querySelectorAll('#lp-rows text').forEach(t => {
    if (!t.textContent.trim() || t.closest('.flight')) return;
    const m = t.getScreenCTM();
    out.push({what: (t.closest('[id]') || t).id + ' ' + t.textContent.trim(),
              px: parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b)});
  });
  document.querySelectorAll('#lp-frame .lp-top *, #lp-frame .lp-groups-part *').forEach(el => {
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (own && el.getClientRects().length) out.push({what: el.className + ' ' + el.textContent.trim().slice(0, 30),
                                                    px: parseFloat(getComputedStyle(el).fontSize)});
  });
  return out;
}"""

# Boxes (on screen) of the texts and markers of each partition row that must not overlap.
ROW_BOXES = """() => {
  const box = el => { const r = el.getBoundingClientRect(); return {id: el.id || el.parentNode.id, text: el.textContent,
                                                                  l: r.left, r: r.right, t: r.top, b: r.bottom}; };
  const rows = {};
  const put = (p, el) => (rows[p] = rows[p] || []).push(box(el));
  document.querySelectorAll('#lp-heads text').forEach(t => put(/\\d+/.exec(t.closest('[id]').id)[0], t));
  document.querySelectorAll('#lp-marks [id^=older-], #lp-marks .hw text, #lp-marks .leo text, #lp-marks .committed')
    .forEach(el => put(/-(\\d+)/.exec(el.closest('[id]').id)[1], el));
  return rows;
}"""


# Texts of the partitions drawn outside the SVG's viewBox (cut off where the picture is exactly
# its viewBox's shape, as on a phone).
OUTSIDE = """() => {
  const svg = document.getElementById('lp-rows');
  const m = svg.getScreenCTM(), vb = svg.viewBox.baseVal;
  const left = m.e + vb.x * m.a, right = m.e + (vb.x + vb.width) * m.a;
  return Array.from(svg.querySelectorAll('text')).filter(t => !t.closest('.flight')).map(t => [t, t.getBoundingClientRect()])
    .filter(([t, r]) => r.left < left - 0.5 || r.right > right + 0.5).map(([t]) => (t.closest('[id]') || t).id + ' ' + t.textContent);
}"""


def overlaps(boxes: list[dict[str, Any]], slack: float = 0.5) -> list[tuple[str, str]]:
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a["l"] < b["r"] - slack and b["l"] < a["r"] - slack and a["t"] < b["b"] - slack and b["t"] < a["b"] - slack:
                if not (a["id"].startswith("cm-") and b["id"].startswith("cm-")):  # two groups' markers may touch
                    found.append((f"{a['id']} {a['text']!r}", f"{b['id']} {b['text']!r}"))
    return found


def busy_log(person: Person) -> None:
    """Records on every partition, a second consumer, one more keyed record."""
    person.command("produce_burst", count=30)
    person.command("group_join", member="consumer-2")
    person.command("produce", producer="producer", key="order-42")


def test_projected_text_is_at_least_20px_and_nothing_overlaps(people: People) -> None:
    presenter = people("projector", viewport={"width": 1920, "height": 1080})
    create_log_room(presenter)
    busy_log(presenter)
    page = presenter.page
    press(page, "p")
    expect(page.locator("body")).to_have_class(PROJECTION)
    page.evaluate("() => window.scrollTo(0, 0)")
    presenter.screenshot("logpartitions-projection-text-1920x1080", full_page=False)
    sizes = page.evaluate(TEXT_SIZES)
    assert len(sizes) > 30, sizes
    small = [(s["what"], round(s["px"], 1)) for s in sizes if s["px"] < 20]
    assert not small, f"projected text under 20 px: {small}"
    for row, boxes in page.evaluate(ROW_BOXES).items():
        assert not overlaps(boxes), f"P{row}: {overlaps(boxes)}"
    # Each cell's two texts fit inside its box; the heads end before the first cell.
    spill = page.evaluate("""() => Array.from(document.querySelectorAll('#lp-cells .cell')).flatMap(c => {
      const r = c.querySelector('rect').getBoundingClientRect();
      return Array.from(c.querySelectorAll('text')).map(t => t.getBoundingClientRect())
        .filter(b => b.left < r.left - 0.5 || b.right > r.right + 0.5).map(() => c.id); })""")
    assert spill == [], spill
    heads_right = page.evaluate("() => Math.max(...Array.from(document.querySelectorAll('#lp-heads text, #lp-marks .older'))"
                                ".map(t => t.getBoundingClientRect().right))")
    cells_left = page.evaluate("() => Math.min(...Array.from(document.querySelectorAll('#lp-cells rect'))"
                               ".map(r => r.getBoundingClientRect().left))")
    assert heads_right < cells_left, (heads_right, cells_left)
    # The partitions and the groups are on the screen, side by side.
    for sel in ("#lp-rows", "#lp-groups", "#lp-brokers"):
        box = page.locator(sel).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 1080 + 1, (sel, box)
    # An offline partition's head says so, in the head column (stop both of P0's brokers).
    for b in (1, 0):
        click_in_picture(presenter, f"#br-{b}")
    expect(page.locator("#ph-0 .pname")).to_have_text("P0 offline")
    expect(leader_text(page, 0)).to_have_text("no leader")
    heads_right = page.evaluate("() => Math.max(...Array.from(document.querySelectorAll('#lp-heads text, #lp-marks .older'))"
                                ".map(t => t.getBoundingClientRect().right))")
    assert heads_right < cells_left, (heads_right, cells_left)
    small = [(s["what"], round(s["px"], 1)) for s in page.evaluate(TEXT_SIZES) if s["px"] < 20]
    assert not small, f"projected text under 20 px: {small}"
    press(page, "t")  # the dark theme, for the screenshot
    presenter.screenshot("logpartitions-projection-dark-1920x1080", full_page=False)
    press(page, "t")
    press(page, "p")


def test_the_phone_shows_brokers_groups_and_rows_that_say_they_scroll(people: People) -> None:
    presenter = people("presenter")
    code = create_log_room(presenter)
    busy_log(presenter)
    phone = people("phone", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2)
    phone.open_room(code)
    page = phone.page
    phone.screenshot("logpartitions-phone-layout-390x844", full_page=False)
    phone.screenshot("logpartitions-phone-layout-390x844-full")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the phone page scrolls sideways by {overflow}px"
    # Every broker and every consumer is inside the screen's width, readable (>= 14 px).
    for sel in ("#lp-brokers .broker", "#lp-groups .member", "#lp-producers .producer"):
        items = page.locator(sel)
        assert items.count() >= 1, sel
        for i in range(items.count()):
            box = items.nth(i).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390 + 0.5, (sel, i, box)
            assert items.nth(i).evaluate("el => parseFloat(getComputedStyle(el).fontSize)") >= 14
    # The rows keep a readable size and scroll sideways in their own box, and the page says so.
    scroller = page.locator("#lp-frame .lp-scroll")
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth + 50"), "the rows should scroll sideways"
    expect(page.locator("#lp-frame .lp-swipe")).to_be_visible()
    key_px = page.evaluate("() => { const t = document.querySelector('#lp-cells .ck'); const m = t.getScreenCTM();"
                           " return parseFloat(getComputedStyle(t).fontSize) * m.a; }")
    assert key_px >= 12, key_px
    page.locator("#lp-groups").scroll_into_view_if_needed()
    expect(page.locator("#lp-groups .member").first).to_be_in_viewport()


SAMPLER = """([ms]) => new Promise(done => {
  const frames = [];
  const t0 = performance.now();
  const centre = el => { const r = el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2, r.width, r.height]; };
  function frame() {
    const f = {leo: {}, hw: {}, cells: {}};
    document.querySelectorAll('#lp-marks .leo').forEach(g => {
      // the label's anchor: its centre, or its right end for a label drawn left of its marker
      const label = g.querySelector('text'), r = label.getBoundingClientRect();
      const anchor = g.classList.contains('end') ? [r.right] : centre(label);
      f.leo[g.id] = [centre(g.querySelector('path')), anchor];
    });
    document.querySelectorAll('#lp-marks .hw').forEach(g => {
      const gliding = g.getAnimations().some(a => a.transitionProperty === 'transform');
      f.hw[g.id] = [centre(g.querySelector('path'))[0], gliding];
    });
    document.querySelectorAll('#lp-cells .cell').forEach(g => {
      f.cells[g.id] = [centre(g.querySelector('rect')), centre(g.querySelector('.ck'))];
    });
    frames.push(f);
    // At least ``ms`` and 60 frames: a loaded machine draws fewer frames per second.
    if (performance.now() - t0 < ms || (frames.length < 60 && performance.now() - t0 < 4 * ms)) requestAnimationFrame(frame);
    else done(frames);
  }
  requestAnimationFrame(frame);
})"""


def test_playing_at_4x_markers_glide_with_their_labels_and_cells_pop_in_whole(people: People) -> None:
    presenter = people("projector", viewport={"width": 1920, "height": 1080})
    create_log_room(presenter)
    page = presenter.page
    presenter.command("load_scene", partitions=3, brokers=3, replication_factor=3)
    presenter.command("set_producer_rate", rate=20)
    before = presenter.seq()
    page.locator(".clock select[data-command=speed]").select_option("4.0")
    presenter.wait_seq(before + 1)
    page.locator("#room-bar .play").click()
    expect(page.locator("#room-bar .play")).to_contain_text("Pause")
    page.wait_for_function("() => document.querySelectorAll('#lp-cells .cell').length >= 12")
    frames = page.evaluate(SAMPLER, [2500])
    page.locator("#room-bar .play").click()
    expect(page.locator("#room-bar .play")).to_contain_text("Play")
    page.wait_for_function("() => !document.querySelector('#lp-marks .hw').getAnimations().length")
    overlap_rows, outside = page.evaluate(ROW_BOXES), page.evaluate(OUTSIDE)
    presenter.screenshot("logpartitions-playing-4x-1920x1080", full_page=False)
    assert len(frames) >= 30, len(frames)

    # A follower's marker and its label move as one: the same horizontal offset in every frame.
    for leo in frames[-1]["leo"]:
        gaps = [f["leo"][leo][1][0] - f["leo"][leo][0][0] for f in frames if leo in f["leo"]]
        assert max(gaps) - min(gaps) < 1.0, (leo, min(gaps), max(gaps))
    # Markers glide: whenever a HW marker is somewhere new, a transition is carrying it there
    # (a jump would move it with no transition running), and it passes through many places.
    glided = 0
    for hw in frames[-1]["hw"]:
        xs = [f["hw"][hw] for f in frames if hw in f["hw"]]
        for (x0, gliding0), (x1, gliding1) in zip(xs, xs[1:]):
            if abs(x1 - x0) > 0.01:
                assert gliding0 or gliding1, (hw, x0, x1, "moved without a transition: a jump")
                glided += 1
    assert glided >= 5, glided
    # A new cell's box and text appear together: in its first frame the key sits inside the box,
    # and the box grows (the group pops in) rather than the text standing at full size alone.
    seen_new = 0
    for i, f in enumerate(frames[1:], start=1):
        for cid, (rect, text) in f["cells"].items():
            if cid in frames[i - 1]["cells"]:
                continue
            seen_new += 1
            assert rect[0] - rect[2] / 2 - 1 <= text[0] <= rect[0] + rect[2] / 2 + 1, (cid, rect, text)
            assert text[2] <= rect[2] + 1, (cid, "text wider than its box", rect, text)
    assert seen_new >= 5, seen_new
    for row, boxes in overlap_rows.items():
        assert not overlaps(boxes), f"P{row}: {overlaps(boxes)}"
    assert outside == [], outside


def test_brokers_and_consumers_work_from_the_keyboard(people: People) -> None:
    presenter, other, _code = room_pair(people)
    page = presenter.page
    presenter.command("group_join", member="consumer-2")
    broker = page.locator("#br-1")
    expect(broker).to_have_attribute("role", "button")
    expect(broker).to_have_attribute("tabindex", "0")
    expect(broker).to_have_attribute("data-send", "broker_stop")
    before = presenter.seq()
    broker.focus()
    page.keyboard.press("Enter")
    other.wait_seq(presenter.wait_seq(before + 1))
    expect(other.page.locator("#br-1")).to_have_class(DOWN)
    expect(broker).to_have_attribute("data-send", "broker_start")
    before = presenter.seq()
    page.locator("#br-1").focus()
    page.keyboard.press(" ")
    presenter.wait_seq(before + 1)
    expect(page.locator("#br-1")).to_have_class(UP)
    member = page.locator("#lp-groups [data-member='consumer-2']")
    before = presenter.seq()
    member.focus()
    page.keyboard.press("Enter")
    other.wait_seq(presenter.wait_seq(before + 1))
    expect(other.page.locator("#lp-groups [data-member]")).to_have_count(1)
    # A cell highlights its key from the keyboard too (this screen only).
    presenter.command("produce", producer="producer", key="order-42")
    cell = page.locator("#lp-cells .cell[data-key='order-42']").first
    cell.focus()
    page.keyboard.press("Enter")
    expect(cell).to_have_class(HL)
    # No control inside another.
    nested = page.evaluate("() => Array.from(document.querySelectorAll('#lp-frame [role=button], #lp-frame button'))"
                           ".filter(el => el.parentElement.closest('[role=button], button, a[href]')).map(el => el.id)")
    assert nested == []


def test_a_student_on_a_phone_finds_their_own_consumer_in_the_class_group(people: People) -> None:
    presenter = people("presenter")
    code = create_log_room(presenter)
    phone = people("phone", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2)
    phone.open_room(code)
    panel = phone.page.locator(".student-panel")
    panel.locator("input[name=name]").fill("Ada")
    panel.locator("button[type=submit]", has_text="Save").click()
    expect(panel.locator("p strong").first).to_have_text("Ada")
    phone.wait_live()
    open_controls(presenter)
    before = presenter.seq()
    presenter.page.locator("#presenter-tools button[data-send=round_open][data-arg-kind=join_group]").click()
    phone.wait_seq(presenter.wait_seq(before + 1))
    form = phone.page.locator(".round-form")
    expect(form).to_be_visible()
    before = phone.seq()
    form.locator("button[type=submit]").click()
    phone.wait_seq(before + 1)
    mine = phone.page.locator("#lp-groups .member[data-member='Ada']")
    expect(mine).to_have_class(re.compile(r"(^|\s)me(\s|$)"))  # their own row stands out
    mine.scroll_into_view_if_needed()
    expect(mine).to_be_in_viewport()
    box = mine.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390 + 0.5, box
    expect(presenter.page.locator("#lp-groups .member[data-member='Ada']")).not_to_have_class(re.compile(r"(^|\s)me(\s|$)"))
    phone.screenshot("logpartitions-phone-own-consumer-390x844", full_page=False)


def test_space_on_a_picture_control_presses_only_that_control(people: People) -> None:
    presenter = people("presenter")
    create_log_room(presenter)
    page = presenter.page
    before = presenter.seq()
    page.locator("#br-1").focus()
    page.keyboard.press(" ")
    presenter.wait_seq(before + 1)
    expect(page.locator("#br-1")).to_have_class(DOWN)
    press(page, ".")  # one tick, so that every frame the Space caused has arrived
    presenter.wait_seq(before + 2)
    assert presenter.state()["clock"]["playing"] is False
