"""One screen per room, measured by element geometry in real Chromium.

At 1920×1080, as the presenter working alone and in projection mode, every room shows the
picture, the controls that act on it (one group open at a time, each fully on screen when
opened), the latest narration and, when presenting, the join panel (code, URL, QR, count)
without scrolling; an error message never covers the picture; projected text is at least
20 px. On a 390×844 phone a student's page does not scroll sideways and shows their own part.
Screenshots of every room in every mode go to the test artifacts.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import People, Person, open_controls

pytestmark = pytest.mark.browser

CONCEPTS = ["hashring", "log-partitions", "lock-quorums", "workflow-graphs"]
FULL_HD = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}
PROJECTION = re.compile(r"(^|\s)projection(\s|$)")


def open_concept(person: Person, slug: str) -> str:
    return person.create_room(slug)


def present(person: Person) -> None:
    before = person.seq()
    person.page.locator(".topbar button[data-send=present]").click()
    person.wait_seq(before + 1)
    expect(person.page.locator("body")).to_have_class(PROJECTION)


def box(page: Page, selector: str) -> dict[str, float]:
    b = page.locator(selector).first.bounding_box()
    assert b is not None, f"{selector} is not rendered"
    return b


def inside_viewport(page: Page, selector: str) -> None:
    vp = page.viewport_size
    assert vp
    b = box(page, selector)
    assert b["width"] > 0 and b["height"] > 0, f"{selector} has no size: {b}"
    assert b["x"] >= -1 and b["y"] >= -1 and b["x"] + b["width"] <= vp["width"] + 1 and b["y"] + b["height"] <= vp["height"] + 1, \
        f"{selector} is not inside the {vp['width']}×{vp['height']} viewport without scrolling: {b}"


def overlap(a: dict[str, float], b: dict[str, float]) -> float:
    w = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return max(0.0, w) * max(0.0, h)


def pictures(page: Page) -> list[str]:
    """Selectors of the picture's SVGs (one for the ring and the log, two for the lock)."""
    ids = page.evaluate("() => [...document.querySelectorAll('.picture svg[id]')].filter(s => !s.closest('svg svg') && s.parentElement.closest('svg') === null).map(s => s.id)")
    assert ids, "no picture"
    return [f"#{i}" for i in ids]


def picture_box(page: Page) -> dict[str, float]:
    boxes = [box(page, s) for s in pictures(page)]
    x0 = min(b["x"] for b in boxes); y0 = min(b["y"] for b in boxes)
    x1 = max(b["x"] + b["width"] for b in boxes); y1 = max(b["y"] + b["height"] for b in boxes)
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


def drawn_picture_box(page: Page) -> dict[str, float]:
    """Where the pictures' contents are drawn (an SVG element may be wider than what it scales to)."""
    b = page.evaluate("""() => {
      let x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
      for (const s of document.querySelectorAll('.picture svg[id]')) {
        if (s.parentElement.closest('svg')) continue;
        for (const g of s.querySelectorAll(':scope > g, :scope > text')) {
          const r = g.getBoundingClientRect();
          if (!r.width || !r.height) continue;
          x0 = Math.min(x0, r.left); y0 = Math.min(y0, r.top); x1 = Math.max(x1, r.right); y1 = Math.max(y1, r.bottom);
        }
      }
      return {x: x0, y: y0, width: x1 - x0, height: y1 - y0};
    }""")
    return b


def control_groups(page: Page) -> list[str]:
    return page.evaluate("() => [...document.querySelectorAll('#controls details.group')].filter(d => d.offsetParent !== null).map(d => d.querySelector(':scope > summary').textContent.trim())")


def check_every_control_group_fits(page: Page) -> None:
    """Each group's heading is on screen; opened, the whole group is on screen beside the picture."""
    groups = control_groups(page)
    assert groups, "no control groups"
    pic = picture_box(page)
    for title in groups:
        group = f"#controls details.group:has(> summary:text-is('{title}'))"
        inside_viewport(page, f"{group} > summary")
        if page.locator(group).get_attribute("open") is None:
            page.locator(f"{group} > summary").click()
        expect(page.locator(group)).to_have_attribute("open", "")
        inside_viewport(page, group)
        assert overlap(box(page, group), pic) == 0, f"the {title!r} controls cover the picture"
    assert page.evaluate("() => document.scrollingElement.scrollTop") == 0


def shoot(person: Person, name: str) -> None:
    person.screenshot(name, full_page=False)


@pytest.mark.parametrize("slug", CONCEPTS)
def test_presenter_alone_sees_picture_controls_and_narration_on_one_screen(people: People, slug: str) -> None:
    person = people("presenter", viewport=FULL_HD)
    open_concept(person, slug)
    page = person.page
    for s in pictures(page):
        inside_viewport(page, s)
    pic = picture_box(page)
    assert pic["width"] >= 800 and pic["height"] >= 500, f"the picture is too small to teach with: {pic}"
    inside_viewport(page, "#narration > li:first-child")
    inside_viewport(page, "#room-bar")
    assert overlap(box(page, ".story"), pic) == 0 and overlap(box(page, "#controls"), pic) == 0
    shoot(person, f"layout-{slug}-presenter-1920")
    check_every_control_group_fits(page)


@pytest.mark.parametrize("slug", CONCEPTS)
def test_projection_shows_picture_join_panel_and_narration_on_one_screen(people: People, slug: str) -> None:
    person = people("presenter", viewport=FULL_HD)
    open_concept(person, slug)
    present(person)
    page = person.page
    for s in pictures(page):
        inside_viewport(page, s)
    for part in ("#join-panel .join-code", "#join-panel .join-how", "#join-panel .join-qr svg", ".topbar .presence",
                 "#narration > li:first-child"):
        inside_viewport(page, part)
    pic = box(page, ".picture")
    assert pic["width"] >= 1000, f"projection should give the picture most of the screen: {pic}"
    for part in ("#join-panel", ".narration-box"):
        assert overlap(box(page, part), pic) == 0, f"{part} covers the picture"
    qr = box(page, "#join-panel .join-qr svg")
    code = box(page, "#join-panel .join-code")
    assert overlap(qr, code) == 0, "the join code runs under the QR code"
    assert qr["width"] >= 150, f"a QR code of {qr['width']:.0f} px is hard to scan from the back of a hall"
    shoot(person, f"layout-{slug}-projection-1920")
    # The controls drawer opens beside the picture, not over it.
    open_controls(person)
    inside_viewport(page, "#controls")
    check_every_control_group_fits(page)
    shoot(person, f"layout-{slug}-projection-controls-1920")


TEXT_SIZES = """() => {
  // The resting size: a cell popping in (a scale transform) is small for a moment by design.
  for (const a of document.getAnimations()) {
    if (a.effect && a.effect.getComputedTiming().endTime !== Infinity) a.finish();
  }
  const small = [];
  const visible = el => { const r = el.getBoundingClientRect(); const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none' && Number(cs.opacity) > 0.05 &&
           r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth; };
  for (const t of document.querySelectorAll('.picture svg text, .picture svg tspan, .story svg text, .story svg tspan')) {
    if (!visible(t) || !t.textContent.trim() || t.closest('[aria-hidden=true]')) continue;
    const m = t.getScreenCTM(); if (!m) continue;
    const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
    if (px < 19.5) small.push(`svg ${t.closest('[id]') ? t.closest('[id]').id : ''} "${t.textContent.trim().slice(0, 30)}" ${px.toFixed(1)} px`);
  }
  const walker = document.createTreeWalker(document.querySelector('#room'), NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const n = walker.currentNode; const el = n.parentElement;
    if (!n.textContent.trim() || !el || seen.has(el) || el.closest('svg') || el.closest('.sr-only') || el.closest('.controls') || el.closest('.explain')) continue;
    seen.add(el);
    if (!visible(el)) continue;
    const px = parseFloat(getComputedStyle(el).fontSize);
    if (px < 19.5) small.push(`${el.tagName.toLowerCase()}.${el.className} "${n.textContent.trim().slice(0, 30)}" ${px.toFixed(1)} px`);
  }
  return small;
}"""


@pytest.mark.parametrize("slug", CONCEPTS)
def test_projected_text_is_at_least_20_px(people: People, slug: str) -> None:
    person = people("presenter", viewport=FULL_HD)
    open_concept(person, slug)
    if slug == "hashring":  # a membership change fills the Last change chart beside the ring
        person.command("add_node", name="E")
    present(person)
    small = person.page.evaluate(TEXT_SIZES)
    assert not small, f"{len(small)} projected texts under 20 px:\n" + "\n".join(small[:40])


@pytest.mark.parametrize("slug", CONCEPTS)
def test_an_error_message_never_covers_the_picture(people: People, slug: str) -> None:
    person = people("presenter", viewport=FULL_HD)
    open_concept(person, slug)
    page = person.page
    for projected in (False, True):
        if projected:
            present(person)
        page.evaluate("() => window.distviz.send({type: 'no_such_command'})")
        expect(page.locator("#flash")).to_contain_text("no_such_command")
        inside_viewport(page, "#flash")
        assert overlap(box(page, "#flash"), picture_box(page)) == 0, "the error message covers the picture"


@pytest.mark.parametrize("slug", CONCEPTS)
def test_a_student_phone_shows_their_part_without_sideways_scrolling(people: People, slug: str) -> None:
    presenter = people("presenter", viewport=FULL_HD)
    code = open_concept(presenter, slug)
    present(presenter)
    student = people("student", viewport=PHONE, is_mobile=True, has_touch=True)
    student.open_room(code)
    page = student.page
    assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"], "the page scrolls sideways"
    top = box(page, ".picture")
    assert 0 <= top["y"] < PHONE["height"] / 2 and top["x"] >= 0 and top["x"] + top["width"] <= PHONE["width"], \
        f"the picture does not start on the phone's first screen: {top}"
    panel = box(page, ".student-panel")
    assert panel["y"] < PHONE["height"] * 1.6, f"the student's own panel is {panel['y']:.0f} px down"
    page.locator(".student-panel input[name=name]").fill("Ada")
    page.locator(".student-panel button[type=submit]", has_text="Save").click()
    expect(page.locator("#my-name")).to_have_text("Ada")
    student.wait_live()
    for s in pictures(page):
        b = box(page, s)
        assert b["width"] <= PHONE["width"] + 1 or page.evaluate(
            """s => { for (let f = document.querySelector(s).parentElement; f && f !== document.body; f = f.parentElement) {
                   if (f.scrollWidth > f.clientWidth && getComputedStyle(f).overflowX !== 'visible') return true; }
                 return false; }""", s), \
            f"{s} is wider than the phone and nothing scrolls it"
    student.screenshot(f"layout-{slug}-student-phone", full_page=True)


def test_every_shortcut_the_ring_announces_works_and_the_sheet_lists_them(people: People) -> None:
    person = people("presenter", viewport=FULL_HD)
    open_concept(person, "hashring")
    page = person.page
    page.locator(".topbar [data-toggle=shortcuts]").click()
    listed = page.locator("#shortcuts kbd").all_inner_texts()
    assert "n" in listed and "l" in listed and "Space" in listed
    page.keyboard.press("Escape")
    nodes = len(person.state()["state"]["nodes"])
    before = person.seq()
    page.keyboard.press("n")
    person.wait_seq(before + 1)
    assert len(person.state()["state"]["nodes"]) == nodes + 1
    page.keyboard.press("l")
    expect(page.locator("form:has(> input[name=type][value=lookup]) input[name=key]")).to_be_focused()


@pytest.mark.parametrize("slug", ["log-partitions", "lock-quorums"])
def test_the_sheet_lists_exactly_the_keys_that_work(people: People, slug: str) -> None:
    person = people("presenter", viewport=FULL_HD)
    open_concept(person, slug)
    page = person.page
    page.locator(".topbar [data-toggle=shortcuts]").click()
    listed: list[str] = page.locator("#shortcuts kbd").all_inner_texts()
    page.keyboard.press("Escape")
    assert "n" not in listed, "the sheet offers 'add a node' in a room without nodes to add"
    bound = set(page.evaluate("() => window.distviz.shortcuts()"))
    names = {"Space": " ", "→": "ArrowRight", "←": "ArrowLeft"}
    shown = {names.get(k, k) for k in listed} - {"Enter"}
    assert shown == bound, f"listed {sorted(shown)} but bound {sorted(bound)}"
    before = person.seq()
    page.keyboard.press("n")
    page.keyboard.press(".")  # one tick: proves the keyboard reaches the room, and n sent nothing
    after: Any = person.wait_seq(before + 1)
    assert after == before + 1
