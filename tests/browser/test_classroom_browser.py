"""A classroom in real browsers: a presenter, students on their own devices, rounds, lessons.

Every person is their own browser context (their own session cookie, so their own role). Students
act only through what their page offers them (the name form, the round form); anything else they
try goes through ``window.distviz.send`` — the same path a hand-made WebSocket frame takes — and
must be refused by the server, not merely hidden by CSS.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import People, Person, close_controls, open_controls, shot_name

pytestmark = pytest.mark.browser

LESSON = "01-why-modulo-hurts"
LESSON_STEPS = 5
PROJECTION = re.compile(r"(^|\s)projection(\s|$)")


# -- helpers -----------------------------------------------------------------------------------

def present(presenter: Person) -> str:
    """Open a room and present it to a class; returns its join code."""
    code = presenter.create_room()
    page = presenter.page
    expect(page.locator(".role-badge")).to_have_text("presenter")
    expect(page.locator("#join-panel")).to_be_hidden()  # alone, nothing to join yet
    before = presenter.seq()
    page.locator(".topbar button[data-send=present]").click()
    presenter.wait_seq(before + 1)
    expect(page.locator("#room-bar")).to_have_attribute("data-classroom", "1")
    expect(page.locator("body")).to_have_class(PROJECTION)  # turned on by starting to present
    expect(page.locator(".topbar button[data-send=present]")).to_be_hidden()
    return code


def tool(person: Person, selector: str, events: int = 1) -> int:
    """Click one of the presenter's classroom tools and wait for its broadcast."""
    open_controls(person)
    before = person.seq()
    person.page.locator(f"#presenter-tools {selector}").click()
    return person.wait_seq(before + events)


def add_node(person: Person, name: str) -> int:
    open_controls(person)
    return person.command("add_node", name=name)


def join_by_code(student: Person, code: str) -> None:
    """Type the code on the home page, as a student reading it off the projector does."""
    student.home()
    student.page.locator("#join-code").fill(code)
    student.page.locator("form.join button").click()
    student.page.wait_for_url(f"**/r/{code}/")
    student.wait_live()


def give_name(student: Person, name: str) -> None:
    panel = student.page.locator(".student-panel")
    panel.locator("input[name=name]").fill(name)
    panel.locator("button[type=submit]", has_text="Save").click()
    # The page reloads with the name; only the new page says "You are ..."
    expect(panel.locator("p strong").first).to_have_text(name)
    student.wait_live()


def student_joins(people: People, who: str, code: str, name: str, by_code: bool = False, **options: Any) -> Person:
    student = people(who, **options)
    if by_code:
        join_by_code(student, code)
    else:
        student.open_room(code)
    page = student.page
    expect(page.locator("body")).to_have_attribute("data-role", "participant")
    expect(page.locator(".role-badge")).to_have_text("participant")
    expect(page.locator("#join-panel")).to_be_hidden()
    expect(page.locator("#presenter-tools")).to_be_hidden()
    give_name(student, name)
    return student


def send(person: Person, body: dict[str, Any]) -> None:
    """A command straight onto the page's socket, bypassing what the page shows."""
    assert person.page.evaluate("b => window.distviz.send(b)", body) is True


def enter_round(student: Person) -> str:
    """Send the round form as it is (the key is prefilled with the student's name)."""
    form = student.page.locator(".round-form")
    expect(form).to_be_visible()
    key = form.locator("input[name=key]").input_value()
    before = student.seq()
    form.locator("button[type=submit]").click()
    student.wait_seq(before + 2)  # the key, then the round entry
    expect(student.page.locator("#my-entry h2")).to_have_text(f"Your key: {key}")
    return key


def entry_owner(student: Person) -> str:
    text = student.page.locator("#my-entry").inner_text()
    m = re.search(r"so (\S+) stores it", text)
    assert m, text
    return m.group(1)


def owner_in_state(presenter: Person, key: str) -> str:
    """The server's owner of ``key``: the presenter looks it up; state.json names the owner."""
    open_controls(presenter)
    presenter.command("lookup", key=key)
    lookup = presenter.state()["state"]["derived"]["lookup"]
    assert lookup["key"] == key
    return lookup["owner"]


def forgive_claim_page_abort(person: Person) -> None:
    """claim.js posts its form at once, while base.html's deferred room.js (not needed on the
    claim page) may still be loading: that request is then aborted (about one run in four).
    Harmless, reported to the product; any other failed script still fails the test."""
    person.problems[:] = [p for p in person.problems
                          if not re.search(r"script failed to load: .*/static/distviz/room\.js \(net::ERR_ABORTED\)", p)]


def node_names(person: Person) -> list[str]:
    return person.page.locator("#nodes .node-name").all_text_contents()


def lesson_title(person: Person):  # noqa: ANN201 - a Locator
    return person.page.locator("#lesson .lesson-title")


# -- a class takes part ----------------------------------------------------------------------

def test_a_class_joins_follows_and_takes_part_in_a_round(people: People, request: pytest.FixtureRequest) -> None:
    presenter = people("presenter")
    code = present(presenter)
    page = presenter.page

    # The join panel: the address, the code in large type, and a QR code.
    panel = page.locator("#join-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".join-code")).to_have_text(code)
    expect(panel.locator(".join-how")).to_contain_text(f"/r/{code}/")
    expect(panel.locator("svg.qr")).to_be_visible()
    assert panel.locator("svg.qr path.qr-fg").get_attribute("d"), "the QR code has no modules"

    ada = student_joins(people, "ada", code, "Ada", by_code=True)
    grace = student_joins(people, "grace", code, "Grace")
    expect(page.locator("#presence strong")).to_have_text("3")
    expect(ada.page.locator("#presence strong")).to_have_text("3")
    for s in (ada, grace):  # outside a round a student only follows
        expect(s.page.locator(".student-panel .show-when-no-round")).to_be_visible()
        expect(s.page.locator(".round-form")).to_be_hidden()

    # The presenter adds a node: both students' pages follow.
    seq = add_node(presenter, "E")
    for s in (ada, grace):
        s.wait_seq(seq)
        expect(s.page.locator('#ring-vnodes circle[data-node="E"]')).to_have_count(8)
        assert node_names(s) == node_names(presenter) == ["A", "B", "C", "D", "E"]
        assert s.page.locator("#ring-vnodes circle").count() == page.locator("#ring-vnodes circle").count() == 5 * 8

    # The presenter opens a round: each student's page offers the round form, key = their name.
    seq = tool(presenter, "button[data-send=round_open][data-arg-kind=own_key]")
    expect(page.locator("#room-bar")).to_have_attribute("data-round", "own_key")
    expect(page.locator("#round h2")).to_contain_text("Round open")
    for s, name in ((ada, "Ada"), (grace, "Grace")):
        s.wait_seq(seq)
        expect(s.page.locator(".round-form input[name=key]")).to_have_value(name)

    keys = {}
    for s in (ada, grace):
        keys[s.name] = enter_round(s)
    assert keys == {"ada": "Ada", "grace": "Grace"}
    seq = presenter.wait_seq(grace.seq())
    ada.wait_seq(seq)
    # "Your key" is sent to its student alone.
    expect(ada.page.locator("#my-entry")).not_to_contain_text("Grace")
    expect(grace.page.locator("#my-entry")).not_to_contain_text("Ada")
    for s in (ada, grace):
        expect(s.page.locator(".round-form")).to_be_hidden()  # one entry each

    # The leaderboard and the marks on the ring, on the presenter's screen (and the students').
    board = page.locator("#round .leaderboard")
    expect(board).to_contain_text("Ada")
    expect(board).to_contain_text("Grace")
    expect(page.locator("#round .big strong")).to_have_text("2")
    for p in (presenter, ada, grace):
        expect(p.page.locator("#ring-round .round-mark")).to_have_count(2)
    assert sorted(page.locator("#ring-round .round-mark text").all_text_contents()) == ["Ada", "Grace"]

    # Each student's "where it landed" names the node the server says owns their key, and the
    # leaderboard puts them in that node's row.
    owners = {s.name: entry_owner(s) for s in (ada, grace)}
    for s in (ada, grace):
        key = keys[s.name]
        assert owners[s.name] == owner_in_state(presenter, key), (s.name, owners)
        row = board.locator("li", has=page.locator(".lb-node", has_text=re.compile(rf"^{owners[s.name]}$")))
        expect(row.locator(".lb-names")).to_contain_text(key)

    # A second entry is refused, to that student alone.
    seq = presenter.seq()
    send(ada, {"type": "add_my_key", "key": "Ada again"})
    expect(ada.page.locator("#flash")).to_contain_text("already taken part")
    # A command outside the round (removing a node) is refused; nothing changes.
    send(grace, {"type": "remove_node", "name": "A"})
    expect(grace.page.locator("#flash")).to_contain_text("Only the presenter can do that")
    for s in (ada, grace):
        assert s.seq() == seq
    assert presenter.state()["seq"] == seq
    assert presenter.seq() == seq
    expect(page.locator("#flash")).to_have_text("")
    expect(grace.page.locator('#ring-vnodes circle[data-node="A"]')).to_have_count(8)

    # The presenter closes the round: the students follow along again, and may not enter.
    seq = tool(presenter, "button[data-send=round_close]")
    # ... and the round's board and the ring's labels go away on every screen.
    expect(page.locator("#round")).to_be_empty()
    expect(page.locator("#ring-round .round-mark")).to_have_count(0)
    for s in (ada, grace):
        s.wait_seq(seq)
        expect(s.page.locator("#room-bar")).to_have_attribute("data-round", "")
        expect(s.page.locator(".round-form")).to_be_hidden()
        expect(s.page.locator(".student-panel .show-when-no-round")).to_be_visible()
    send(ada, {"type": "add_my_key", "key": "late"})
    expect(ada.page.locator("#flash")).to_contain_text("Wait for the presenter to open a round")
    assert presenter.state()["seq"] == seq
    presenter.screenshot(shot_name(request, "presenter"))
    ada.screenshot(shot_name(request, "student"))


def test_view_only_refuses_a_round_entry(people: People) -> None:
    presenter = people("presenter")
    code = present(presenter)
    ada = student_joins(people, "ada", code, "Ada")

    seq = tool(presenter, "button[data-send=round_open][data-arg-kind=own_key]")
    ada.wait_seq(seq)
    expect(ada.page.locator(".round-form")).to_be_visible()

    seq = tool(presenter, "button[data-send=view_only][data-arg-on=true]")
    ada.wait_seq(seq)
    expect(ada.page.locator("#room-bar")).to_have_attribute("data-view-only", "1")
    expect(ada.page.locator(".student-panel .show-when-viewonly")).to_be_visible()
    expect(ada.page.locator(".student-panel .show-when-viewonly")).to_contain_text("view-only")
    expect(ada.page.locator(".round-form")).to_be_hidden()
    expect(presenter.page.locator("#presenter-tools button[data-send=view_only][data-arg-on=false]")).to_be_visible()
    # The form is hidden, but the server is the one that says no.
    send(ada, {"type": "add_my_key", "key": "Ada"})
    expect(ada.page.locator("#flash")).to_contain_text("view-only")
    assert presenter.state()["seq"] == seq
    assert "Ada" not in presenter.state()["state"]["keys"]

    # Students may take part again: the same entry now goes in.
    seq = tool(presenter, "button[data-send=view_only][data-arg-on=false]")
    ada.wait_seq(seq)
    expect(ada.page.locator(".student-panel .show-when-viewonly")).to_be_hidden()
    key = enter_round(ada)
    assert key in presenter.state()["state"]["keys"]



def test_a_refusal_shows_where_the_student_is_looking(people: People) -> None:
    """Found failing: the refusal arrives, but #flash sits at the very bottom of the page (y ~2500
    on a 1000 px or 844 px screen), so the student never sees it. #flash is the first child of
    main.room-main, a grid with named areas; having no area of its own, it is auto-placed in a new
    implicit row after "explain", and ``position: sticky; top`` only sticks once scrolled past."""
    presenter = people("presenter")
    code = present(presenter)
    phone = student_joins(people, "phone", code, "Ada", viewport={"width": 390, "height": 844},
                          is_mobile=True, has_touch=True)
    phone.page.evaluate("() => window.scrollTo(0, 0)")
    send(phone, {"type": "remove_node", "name": "A"})
    expect(phone.page.locator("#flash")).to_contain_text("Only the presenter")
    expect(phone.page.locator("#flash")).to_be_in_viewport(timeout=2_000)



def test_a_student_is_not_offered_presenter_actions(people: People) -> None:
    """Found failing: after the presenter looks up a key, every student's lookup panel shows a red
    "Remove key ..." button (hashring/_lookup-panel.html has no presenter-only class on it);
    clicking it is refused by the server, but the page should not offer it."""
    presenter = people("presenter")
    code = present(presenter)
    ada = student_joins(people, "ada", code, "Ada")
    open_controls(presenter)
    seq = presenter.command("lookup", key=presenter.state()["state"]["keys"][0])
    ada.wait_seq(seq)
    expect(ada.page.locator("#lookup-panel")).to_contain_text("Preference list")
    expect(presenter.page.locator("#lookup-panel button[data-send=remove_key]")).to_be_visible()
    expect(ada.page.locator("#lookup-panel button[data-send=remove_key]")).to_be_hidden(timeout=2_000)


# -- lessons and the presenter's keys -----------------------------------------------------------

def test_lesson_steps_reach_the_students_and_back_rewinds(people: People, request: pytest.FixtureRequest) -> None:
    presenter = people("presenter")
    code = present(presenter)
    page = presenter.page
    students = [student_joins(people, "ada", code, "Ada"), student_joins(people, "grace", code, "Grace")]
    for s in students:  # no lesson yet: the students see no lesson panel
        expect(s.page.locator("#lesson")).to_be_hidden()

    before = presenter.seq()
    page.locator(f"#lesson button[data-send=lesson_start][data-arg-lesson='{LESSON}']").click()
    presenter.wait_seq(before + 1)
    expect(lesson_title(presenter)).to_contain_text(f"step 1 of {LESSON_STEPS}")
    expect(page.locator("#room-bar")).to_have_attribute("data-lesson", "1")
    step1 = presenter.state()
    assert [n["name"] for n in step1["state"]["nodes"]] == ["A", "B", "C", "D"]
    assert len(step1["state"]["keys"]) == 1000
    for s in students:
        s.wait_seq(step1["seq"])
        expect(lesson_title(s)).to_contain_text(f"step 1 of {LESSON_STEPS}")
        expect(s.page.locator("#lesson .question")).to_be_visible()
        expect(s.page.locator("#lesson button[data-send=lesson_next]")).to_be_hidden()

    # PageDown (what a clicker sends) goes to the next step, on every screen.
    page.keyboard.press("PageDown")
    expect(lesson_title(presenter)).to_contain_text(f"step 2 of {LESSON_STEPS}")
    step2 = presenter.state()
    assert [n["name"] for n in step2["state"]["nodes"]] == ["A", "B", "C", "D", "E"]
    for s in students:
        s.wait_seq(step2["seq"])
        expect(lesson_title(s)).to_contain_text(f"step 2 of {LESSON_STEPS}")
        expect(s.page.locator("#lesson h2")).to_have_text("Add a fifth locker")
        expect(s.page.locator('#ring-vnodes circle[data-node="E"]')).to_have_count(1)

    # PageUp goes back a step: the ring is the one step 1 showed.
    page.keyboard.press("PageUp")
    expect(lesson_title(presenter)).to_contain_text(f"step 1 of {LESSON_STEPS}")
    back = presenter.state()
    assert back["seq"] > step2["seq"]  # going back is an event too
    assert len(back["state"]["nodes"]) == 4
    assert back["state"]["nodes"] == step1["state"]["nodes"]
    assert back["state"]["keys"] == step1["state"]["keys"]
    for s in students:
        s.wait_seq(back["seq"])
        expect(lesson_title(s)).to_contain_text(f"step 1 of {LESSON_STEPS}")
        expect(s.page.locator("#ring-vnodes circle")).to_have_count(4)
        expect(s.page.locator('#ring-vnodes circle[data-node="E"]')).to_have_count(0)

    # A student's arrow keys do nothing to the lesson.
    students[0].page.keyboard.press("PageDown")
    students[0].page.keyboard.press("ArrowRight")
    assert presenter.state()["seq"] == back["seq"]

    # The shortcuts sheet ('?') and the theme ('t').
    page.keyboard.press("?")
    dialog = page.locator("dialog#shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("PageDown")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    body = page.locator("body")
    first = "dark" if body.get_attribute("data-theme") != "dark" else "light"
    page.keyboard.press("t")
    expect(body).to_have_attribute("data-theme", first)
    page.keyboard.press("t")
    expect(body).to_have_attribute("data-theme", "light" if first == "dark" else "dark")
    # 'p' leaves projection mode and brings it back.
    page.keyboard.press("p")
    expect(body).not_to_have_class(PROJECTION)
    page.keyboard.press("p")
    expect(body).to_have_class(PROJECTION)
    presenter.screenshot(shot_name(request, "presenter"))



def test_clicker_page_down_works_after_clicking_next(people: People) -> None:
    """A presenter clicks "Next" with the mouse once, then uses a clicker (which sends PageDown).
    Found failing: the focus stays on the Next button and room.js ignores every shortcut whose
    target is a BUTTON, so PageDown does nothing until the presenter clicks elsewhere."""
    presenter = people("presenter")
    presenter.create_room()
    page = presenter.page
    page.locator(f"#lesson button[data-send=lesson_start][data-arg-lesson='{LESSON}']").click()
    expect(lesson_title(presenter)).to_contain_text("step 1 of")
    page.locator("#lesson button[data-send=lesson_next]").click()
    expect(lesson_title(presenter)).to_contain_text("step 2 of")
    page.keyboard.press("PageDown")
    expect(lesson_title(presenter)).to_contain_text("step 3 of")


# -- a second teacher ----------------------------------------------------------------------------

def test_copresenter_link_makes_a_second_presenter(people: People, request: pytest.FixtureRequest) -> None:
    presenter = people("presenter")
    code = present(presenter)
    ada = student_joins(people, "ada", code, "Ada")

    open_controls(presenter)
    presenter.page.locator("#presenter-tools button", has_text="Co-presenter link").click()
    link_input = presenter.page.locator("input.copy-link")
    link = link_input.input_value()
    m = re.fullmatch(rf"https?://[^/]+/r/{code}/claim/#([A-Za-z0-9_-]+)", link)
    assert m, link
    key = m.group(1)
    assert len(key) >= 32, "a co-presenter key carries at least 128 bits"
    presenter.page.locator("a", has_text="Back to the room").click()
    presenter.page.wait_for_url(f"**/r/{code}/")
    presenter.wait_live()

    # A second teacher opens the link in their own browser.
    co = people("co-presenter")
    sent: list[str] = []
    co.page.on("request", lambda req: sent.append(req.url))
    co.page.goto(link)
    co.page.wait_for_url(re.compile(rf"/r/{code}/$"))
    forgive_claim_page_abort(co)
    co.wait_live()
    expect(co.page.locator("body")).to_have_attribute("data-role", "presenter")
    expect(co.page.locator(".role-badge")).to_have_text("presenter")
    assert key not in co.page.url
    assert key not in co.page.evaluate("() => location.href + ' ' + document.referrer")
    assert not [u for u in sent if key in u], "the key went to the server in a URL"
    # And its commands reach everyone.
    seq = add_node(co, "CO")
    for p in (presenter, ada):
        p.wait_seq(seq)
        expect(p.page.locator('#ring-vnodes circle[data-node="CO"]')).to_have_count(8)
    expect(presenter.page.locator("#nodes .node-name", has_text=re.compile(r"^CO$"))).to_have_count(1)

    # A new link revokes the old one: someone holding the old link stays a participant.
    open_controls(presenter)
    presenter.page.locator("#presenter-tools button", has_text="Co-presenter link").click()
    assert presenter.page.locator("input.copy-link").input_value() != link
    late = people("late")
    late.page.goto(link)
    expect(late.page.locator(".flash-error")).to_contain_text("not valid")
    assert key not in late.page.url
    forgive_claim_page_abort(late)
    late.problems[:] = [p for p in late.problems if not re.search(rf"HTTP 403 for .*/r/{code}/claim/", p)]
    late.open_room(code)
    expect(late.page.locator("body")).to_have_attribute("data-role", "participant")
    co.screenshot(shot_name(request, "co-presenter"))


# -- markup safety ------------------------------------------------------------------------------

def test_a_students_name_and_key_render_as_text(people: People, request: pytest.FixtureRequest) -> None:
    presenter = people("presenter")
    code = present(presenter)
    tool(presenter, "button[data-send=round_open][data-arg-kind=own_key]")
    mallory = people("mallory")
    mallory.open_room(code)

    # The name is 28 characters, over the 24 a name may have: refused with a message
    # (set past the input's maxlength, as a hand-made request would).
    long_name = "<img src=x onerror=alert(1)>"
    form = mallory.page.locator(".student-panel form:has(input[name=name])")
    form.locator("input[name=name]").evaluate("(el, v) => { el.removeAttribute('maxlength'); el.value = v; }", long_name)
    form.locator("button[type=submit]").click()
    expect(mallory.page.locator(".student-panel .flash-error")).to_contain_text("a name has at most 24")
    mallory.wait_live()

    evil_name = "<svg onload=alert(1)>"  # fits in 24
    evil_key = long_name  # fits in a key (40)
    give_name(mallory, evil_name)
    mallory.page.locator(".round-form input[name=key]").fill(evil_key)
    before = mallory.seq()
    mallory.page.locator(".round-form button[type=submit]").click()
    seq = mallory.wait_seq(before + 2)
    presenter.wait_seq(seq)
    expect(mallory.page.locator("#my-entry h2")).to_have_text(f"Your key: {evil_key}")

    for p in (presenter, mallory):
        page = p.page
        expect(page.locator("#round .leaderboard .lb-names")).to_have_text(evil_name)
        expect(page.locator("#ring-round .round-mark text")).to_have_text(evil_name)
        expect(page.locator("#narration li").first).to_contain_text(f"{evil_name} took part: {evil_key}")
        assert page.evaluate("() => document.querySelectorAll('#room img, [onerror], [onload]').length") == 0
        assert page.evaluate("() => document.querySelectorAll('#ring svg svg, #round svg, #narration svg').length") == 0
    # A fresh load renders the same from the server's templates.
    presenter.open_room(code)
    expect(presenter.page.locator("#round .leaderboard .lb-names")).to_have_text(evil_name)
    expect(presenter.page.locator("#ring-round .round-mark text")).to_have_text(evil_name)
    assert presenter.page.evaluate("() => document.querySelectorAll('#room img, [onerror], [onload]').length") == 0
    presenter.screenshot(shot_name(request, "presenter"))
    # No dialog opened anywhere: the conftest fails the test on any (alert, confirm, ...).


# -- reconnection -------------------------------------------------------------------------------

def test_a_students_page_catches_up_after_a_server_restart(people: People, daphne_server, request: pytest.FixtureRequest) -> None:  # noqa: ANN001
    presenter = people("presenter")
    code = present(presenter)
    ada = student_joins(people, "ada", code, "Ada")
    seq = tool(presenter, "button[data-send=round_open][data-arg-kind=own_key]")
    ada.wait_seq(seq)
    open_controls(presenter)  # ready to click while the server is away

    daphne_server.stop()
    for p in (presenter, ada):
        expect(p.page.locator("#conn")).to_have_text("reconnecting…")
        expect(p.page.locator("body")).not_to_have_attribute("data-conn", "open")

    daphne_server.start()
    # Right after the restart the presenter adds a node, whether or not their own page has
    # reconnected yet (a send made while disconnected waits in the page's outbox).
    presenter.submit("add_node", name="E")

    ada.wait_live(timeout=30_000)
    expect(ada.page.locator("#conn")).to_have_text("live")
    expect(ada.page.locator('#ring-vnodes circle[data-node="E"]')).to_have_count(8, timeout=30_000)
    expect(ada.page.locator("#nodes .node-name", has_text=re.compile(r"^E$"))).to_have_count(1)
    presenter.wait_live(timeout=30_000)
    doc = presenter.state()
    assert [n["name"] for n in doc["state"]["nodes"]] == ["A", "B", "C", "D", "E"]  # once, not twice
    ada.wait_seq(doc["seq"])
    presenter.wait_seq(doc["seq"])
    assert ada.seq() == presenter.seq() == doc["seq"]

    # The open round survived the restart: the student still takes part, and the presenter sees it.
    expect(ada.page.locator("#room-bar")).to_have_attribute("data-round", "own_key")
    key = enter_round(ada)
    presenter.wait_seq(ada.seq())
    expect(presenter.page.locator("#round .leaderboard")).to_contain_text("Ada")
    assert key in presenter.state()["state"]["keys"]
    ada.screenshot(shot_name(request, "student"))



def test_presence_counts_only_live_connections_after_a_restart(people: People, daphne_server) -> None:  # noqa: ANN001
    """Found failing: after a restart two people show as "4 connected" (and a third as 5). The
    stopped process's RoomPresence rows are neither deleted (no disconnect runs on SIGTERM) nor
    stale yet (STALE_SECONDS is 60), and nothing re-announces the count once they do go stale."""
    presenter = people("presenter")
    code = present(presenter)
    ada = student_joins(people, "ada", code, "Ada")
    expect(presenter.page.locator("#presence strong")).to_have_text("2")
    daphne_server.restart()
    presenter.wait_live(timeout=30_000)
    ada.wait_live(timeout=30_000)
    # A fresh page sees only counts announced after it connected (its template says 0): with
    # the presenter and Ada back, a third person makes 3.
    probe = people("probe")
    probe.open_room(code)
    expect(probe.page.locator("#presence strong")).not_to_have_text("0")
    expect(probe.page.locator("#presence strong")).to_have_text("3")


# -- screenshots: the projector and a phone -------------------------------------------------------

def test_projection_and_phone_screenshots(people: People) -> None:
    presenter = people("projector", viewport={"width": 1920, "height": 1080})
    code = present(presenter)
    page = presenter.page
    phone = student_joins(people, "phone", code, "Ada", viewport={"width": 390, "height": 844},
                          is_mobile=True, has_touch=True, device_scale_factor=2)
    grace = student_joins(people, "grace", code, "Grace")

    before = presenter.seq()
    page.locator(f"#lesson button[data-send=lesson_start][data-arg-lesson='{LESSON}']").click()
    presenter.wait_seq(before + 1)
    expect(lesson_title(presenter)).to_contain_text("step 1 of")
    page.keyboard.press("PageDown")
    expect(lesson_title(presenter)).to_contain_text("step 2 of")
    seq = tool(presenter, "button[data-send=round_open][data-arg-kind=own_key]")
    close_controls(presenter)
    for s in (phone, grace):
        s.wait_seq(seq)
        enter_round(s)
    presenter.wait_seq(max(phone.seq(), grace.seq()))
    expect(page.locator("#ring-round .round-mark")).to_have_count(2)
    expect(page.locator("#round .leaderboard")).to_contain_text("Grace")

    expect(page.locator("body")).to_have_class(PROJECTION)
    expect(page.locator("#lesson .question")).to_be_visible()
    page.evaluate("() => window.scrollTo(0, 0)")
    presenter.screenshot("classroom-projection-1920x1080-lesson-step2-round-open", full_page=False)
    presenter.screenshot("classroom-projection-1920x1080-lesson-step2-round-open-full")

    phone.page.locator("#my-entry").scroll_into_view_if_needed()
    expect(phone.page.locator("#my-entry")).to_be_in_viewport()
    phone.screenshot("classroom-student-phone-390x844-my-entry", full_page=False)
    phone.screenshot("classroom-student-phone-390x844-full")
    overflow = phone.page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the student's phone page scrolls sideways by {overflow}px"
