"""The home page in a real browser: the concept cards, the join box, static files and CSP."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import Person, shot_name

pytestmark = pytest.mark.browser


def test_home_shows_concept_cards(presenter: Person, request: pytest.FixtureRequest) -> None:
    page = presenter.page
    presenter.home()
    expect(page.locator("h1")).to_contain_text("distributed systems")

    live = page.locator("article.card.live")
    expect(live).to_have_count(4)
    expect(page.locator("#card-hashring h2")).to_have_text("Hash ring")
    expect(page.locator("#card-hashring button")).to_be_enabled()
    expect(page.locator("#card-log-partitions h2")).to_have_text("Log partitions")
    expect(page.locator("#card-log-partitions button")).to_be_enabled()
    expect(page.locator("#card-lock-quorums h2")).to_have_text("Lock quorums")
    expect(page.locator("#card-lock-quorums button")).to_be_enabled()
    expect(page.locator("#card-workflow-graphs h2")).to_have_text("Workflow graphs")
    expect(page.locator("#card-workflow-graphs button")).to_be_enabled()

    coming = page.locator("article.card.coming")
    assert coming.count() >= 2  # sharing and API protocols
    for card in coming.all():
        expect(card.locator(".badge")).to_have_text("coming")
        expect(card.locator("button")).to_have_count(0)  # nothing to open yet

    # The scripts every room page needs arrive (htmx 4 and its WebSocket extension).
    assert page.evaluate("() => !!(window.htmx && htmx.ext && htmx.ext.ws)"), "htmx 4 or hx-ws did not load"
    presenter.screenshot(shot_name(request))


def test_join_unknown_code_says_so(presenter: Person) -> None:
    page = presenter.page
    presenter.home()
    page.locator("#join-code").fill("NOSUCH")
    page.locator("form.join button").click()
    expect(page.locator("form.join .flash")).to_contain_text("No room has that code")


def test_join_by_code_opens_the_room(people, presenter: Person) -> None:  # noqa: ANN001
    code = presenter.create_room()
    student = people("student")
    student.home()
    student.page.locator("#join-code").fill(code.lower())
    student.page.locator("form.join button").click()
    student.page.wait_for_url(f"**/r/{code}/")
    student.wait_live()
    expect(student.page.locator("body")).to_have_attribute("data-role", "participant")
    expect(presenter.page.locator("body")).to_have_attribute("data-role", "presenter")
