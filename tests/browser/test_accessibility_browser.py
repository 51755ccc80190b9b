"""Accessibility in real Chromium: axe-core's WCAG 2.1 A/AA rules find nothing, and every control
on the picture can be reached with Tab and used with Enter.

axe-core is the copy that the pinned ``axe-playwright-python`` package ships; it is evaluated in
the page through the DevTools protocol (the page's own Content-Security-Policy, which forbids
inline scripts, does not apply to that), so the page under test is exactly the one people get.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import People, Person

pytestmark = pytest.mark.browser

axe_playwright_python = pytest.importorskip("axe_playwright_python", reason="axe-playwright-python (requirements-dev.txt) ships axe-core")
CONCEPTS = ["hashring", "log-partitions", "lock-quorums", "workflow-graphs"]
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@lru_cache(maxsize=1)
def axe_source() -> str:
    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


def violations(page: Page) -> list[str]:
    page.evaluate(axe_source())
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", WCAG_21_AA)
    found = []
    for v in result["violations"]:
        targets = ", ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:6])
        found.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])}×): {v['help']} — {targets}")
    return found


def open_concept(person: Person, slug: str) -> str:
    return person.create_room(slug)


def test_the_home_page_has_no_wcag_violation(people: People) -> None:
    person = people("visitor")
    person.home()
    found = violations(person.page)
    assert not found, "axe-core, home page:\n" + "\n".join(found)


@pytest.mark.parametrize("slug", CONCEPTS)
def test_a_room_has_no_wcag_violation_for_the_presenter_and_a_student(people: People, slug: str) -> None:
    presenter = people("presenter", viewport={"width": 1920, "height": 1080})
    code = open_concept(presenter, slug)
    found = violations(presenter.page)
    assert not found, f"axe-core, {slug} as the presenter:\n" + "\n".join(found)
    before = presenter.seq()
    presenter.page.locator(".topbar button[data-send=present]").click()
    presenter.wait_seq(before + 1)
    found = violations(presenter.page)
    assert not found, f"axe-core, {slug} projected:\n" + "\n".join(found)
    student = people("student", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    student.open_room(code)
    found = violations(student.page)
    assert not found, f"axe-core, {slug} as a student on a phone:\n" + "\n".join(found)


@pytest.mark.parametrize("slug", CONCEPTS)
def test_every_control_on_the_picture_is_reachable_and_usable_from_the_keyboard(people: People, slug: str) -> None:
    person = people("presenter", viewport={"width": 1920, "height": 1080})
    open_concept(person, slug)
    page = person.page
    # Every command the picture offers (a kind and its arguments) has at least one element that is
    # a tab stop with a name: a node's many vnodes may share the one stop on its label. A kind the
    # controls also send from a form (look up any key) is usable from the keyboard there.
    offers = page.evaluate("""() => {
        const offers = {};
        const forms = new Set([...document.querySelectorAll('#controls form input[name=type]')].map(i => i.value));
        for (const el of document.querySelectorAll('.picture [data-send]')) {
          if (forms.has(el.dataset.send)) continue;
          const key = JSON.stringify(Object.entries(el.dataset).filter(([k]) => k === 'send' || k.startsWith('arg')).sort());
          const stop = el.tabIndex >= 0 && (el.getAttribute('aria-label') || el.tagName === 'BUTTON' || el.textContent.trim());
          offers[key] = offers[key] || !!stop;
        }
        return offers;
    }""")
    assert offers, f"{slug}: nothing on the picture can be clicked"
    unreachable = [k for k, ok in offers.items() if not ok]
    assert not unreachable, f"{slug}: picture commands with no tab stop that has a name: {unreachable[:5]}"
    # Tab from the top of the page until the focus lands on the picture, then press Enter.
    page.locator("body").focus()
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("() => !!document.activeElement && !!document.activeElement.closest('.picture') && !!document.activeElement.dataset.send"):
            break
    else:
        pytest.fail(f"{slug}: 60 presses of Tab never reached a control on the picture")
    command = page.evaluate("() => document.activeElement.dataset.send")
    before = person.seq()
    page.keyboard.press("Enter")
    person.wait_seq(before + 1)
    log = person.context.request.get(f"/r/{person.code()}/events.json").json()["events"]
    assert log[-1]["seq"] == before + 1, f"Enter on the picture's {command} control did not reach the room"
    expect(page.locator("#flash")).not_to_have_class(re.compile("flash-error"))
