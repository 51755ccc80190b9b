"""The lock quorums (RedLock) room in real browsers: a presenter acts, other windows follow.

Every person is their own browser context. The presenter drives the picture (click a node body
to crash or restart it, click a client to acquire or release) and the controls; a second window
(a second person's context on the same room: a participant) must show the same picture. The
numbers checked are the simulation's own (``apps.lockquorums.sim``): five nodes with a 3 ms round
trip each, a 10,000 ms TTL and drift = int(TTL x 0.01) + 2.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.lockquorums.sim import drift

from .conftest import People, Person, close_controls, open_controls, shot_name

pytestmark = pytest.mark.browser

NODES = ["A", "B", "C", "D", "E"]
TTL = 10_000
RTT = 3  # the default round trip of every link
LESSON = "02-the-process-pause"
LESSON_STEPS = 8
PROJECTION = re.compile(r"(^|\s)projection(\s|$)")


def has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


UP, DOWN, HELD = has_class("up"), has_class("down"), has_class("held")


# -- helpers -----------------------------------------------------------------------------------

def create_lock_room(person: Person) -> str:
    """From the home page's card form, open a new lock quorums room as its presenter."""
    person.home()
    person.page.locator("form[action='/new/lock-quorums/'] button").click()
    person.page.wait_for_url(re.compile(r"/r/[^/]+/$"))
    person.wait_live()
    expect(person.page.locator("body")).to_have_attribute("data-role", "presenter")
    return person.code()


def room_pair(people: People, **other_options: Any) -> tuple[Person, Person, str]:
    presenter = people("presenter")
    code = create_lock_room(presenter)
    other = people("other", **other_options)
    other.open_room(code)
    return presenter, other, code


def click_in_picture(person: Person, selector: str) -> int:
    """Click an element of the picture as a person would (at its centre); wait for the broadcast."""
    before = person.seq()
    person.page.locator(selector).click()
    return person.wait_seq(before + 1)


def send(person: Person, body: dict[str, Any]) -> None:
    """A command straight onto the page's socket, bypassing what the page shows."""
    assert person.page.evaluate("b => window.distviz.send(b)", body) is True


def open_group(person: Person, summary: str) -> None:
    """Open one of the controls' <details> groups (Settings, New scene) if it is closed."""
    details = person.page.locator(f"details:has(> summary:text-is('{summary}'))")
    if details.get_attribute("open") is None:
        details.locator("> summary").click()
    expect(details).to_have_attribute("open", "")


def present(presenter: Person) -> None:
    before = presenter.seq()
    presenter.page.locator(".topbar button[data-send=present]").click()
    presenter.wait_seq(before + 1)
    expect(presenter.page.locator("#room-bar")).to_have_attribute("data-classroom", "1")


def give_name(student: Person, name: str) -> None:
    panel = student.page.locator(".student-panel")
    panel.locator("input[name=name]").fill(name)
    panel.locator("button[type=submit]", has_text="Save").click()
    expect(panel.locator("#my-name")).to_have_text(name)  # only the reloaded page says "You are ..."
    student.wait_live()


def student_joins(people: People, who: str, code: str, name: str, **options: Any) -> Person:
    student = people(who, **options)
    student.open_room(code)
    expect(student.page.locator("body")).to_have_attribute("data-role", "participant")
    give_name(student, name)
    return student


def start_lesson(presenter: Person, slug: str) -> None:
    before = presenter.seq()
    presenter.page.locator(f"#lesson button[data-send=lesson_start][data-arg-lesson='{slug}']").click()
    presenter.wait_seq(before + 1)


def lesson_next(presenter: Person) -> None:
    before = presenter.seq()
    presenter.page.locator("#lesson button[data-send=lesson_next]").click()
    presenter.wait_seq(before + 1)


def lesson_title(person: Person):  # noqa: ANN201 - a Locator
    return person.page.locator("#lesson .lesson-title")


def no_page_overflow(person: Person) -> int:
    return person.page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


# -- the page ----------------------------------------------------------------------------------

def test_the_page_shows_five_nodes_two_clients_the_storage_and_the_comparison(people: People, request: pytest.FixtureRequest) -> None:
    presenter, other, _code = room_pair(people)
    for person in (presenter, other):
        page = person.page
        expect(page.locator("#lq-frame")).to_be_visible()
        expect(page.locator("#lq-nodes .nbody")).to_have_count(5)
        for name in NODES:
            body = page.locator(f"#nb-{name}")
            expect(body).to_have_attribute("data-lnode", name)
            expect(body).to_have_class(UP)
            expect(body).not_to_have_class(HELD)
            expect(page.locator(f"#no-{name}")).to_have_text("free")
            expect(page.locator(f"#nr-{name}")).to_have_count(1)
        expect(page.locator("#lq-clients .client")).to_have_count(2)
        expect(page.locator("#cl-0")).to_have_attribute("data-client", "C1")
        expect(page.locator("#cl-1")).to_have_attribute("data-client", "C2")
        for i in range(2):
            expect(page.locator(f"#cl-{i}")).to_have_class(has_class("idle"))
        expect(page.locator("#st-box")).to_be_visible()
        expect(page.locator("#st-box")).not_to_have_class(has_class("lost"))
        expect(page.locator("#st-box")).to_contain_text("fencing off")
        expect(page.locator("#lq-storage .write")).to_have_count(0)
        expect(page.locator("#lq-episodes .episode")).to_have_count(0)
        summary = page.locator("#lq-summary")
        expect(summary).to_contain_text("5 nodes · quorum 3")
        expect(summary).to_contain_text(f"TTL {TTL:,} ms")
        expect(summary).to_contain_text(f"drift {drift(TTL)} ms")
        expect(page.locator("#lq-frame .col-title").nth(1)).to_have_text("Lock nodes: 3 of 5 make a quorum")
        table = page.locator(".compare-table")
        expect(table).to_be_visible()
        expect(table.locator("thead th")).to_have_count(4)
        expect(table.locator("tbody tr")).to_have_count(3)
        expect(table.locator("tbody th")).to_have_text(
            ["Process pause (GC)", "Clock jump on one node", "Crash and instant restart, no fsync"])
        # The process pause loses an update with fencing off, and the storage refuses it with fencing on.
        redlock_pause = table.locator("tbody tr").nth(0).locator("td").nth(1)
        expect(redlock_pause.locator(".bad")).to_have_text("two writers: lost update")
        expect(redlock_pause.locator(".good")).to_contain_text("33 < 34")
    expect(presenter.page.locator("#lq-clientctl button[data-send=acquire]")).to_have_count(2)
    expect(other.page.locator("body")).to_have_attribute("data-role", "participant")
    expect(other.page.locator("#lq-clientctl")).to_be_hidden()
    presenter.screenshot(shot_name(request, "presenter"))


# -- crash and restart a node, seen in the other window -----------------------------------------

def test_crashing_a_node_shows_in_the_other_window_and_restarting_brings_it_back(people: People, request: pytest.FixtureRequest) -> None:
    presenter, other, _code = room_pair(people)
    seq = click_in_picture(presenter, "#nb-C")
    other.wait_seq(seq)
    for person in (presenter, other):
        expect(person.page.locator("#nb-C")).to_have_class(DOWN)
        expect(person.page.locator("#no-C")).to_have_text("DOWN")
        for name in ("A", "B", "D", "E"):
            expect(person.page.locator(f"#nb-{name}")).to_have_class(UP)
        expect(person.page.locator("#narration li").first).to_contain_text("Node C crashed")
        expect(person.page.locator("#lq-episodes .episode")).to_have_count(1)
    other.screenshot(shot_name(request, "down"))

    seq = click_in_picture(presenter, "#nb-C")
    other.wait_seq(seq)
    for person in (presenter, other):
        expect(person.page.locator("#nb-C")).to_have_class(UP)
        expect(person.page.locator("#nb-C")).not_to_have_class(DOWN)
        expect(person.page.locator("#no-C")).to_have_text("free")
        expect(person.page.locator("#narration li").first).to_contain_text("Node C restarted")
    node_c = presenter.state()["state"]["nodes"][2]
    assert node_c["name"] == "C" and node_c["up"] is True


def test_the_other_window_cannot_crash_a_node(people: People) -> None:
    presenter, other, _code = room_pair(people)
    before = other.seq()
    other.page.locator("#nb-B").click()
    expect(other.page.locator("#flash")).to_contain_text("Only the presenter")
    assert other.seq() == before == presenter.state()["seq"]
    expect(other.page.locator("#nb-B")).to_have_class(UP)


# -- an acquisition and its arithmetic -----------------------------------------------------------

def test_clicking_a_client_acquires_and_the_math_panel_shows_the_validity(people: People, request: pytest.FixtureRequest) -> None:
    presenter, other, _code = room_pair(people)
    elapsed = len(NODES) * RTT  # every node in turn, one round trip each
    d = drift(TTL)
    validity = TTL - elapsed - d
    assert (elapsed, d, validity) == (15, 102, 9_883)

    seq = click_in_picture(presenter, "#cl-0")
    other.wait_seq(seq)
    formula = f"validity = TTL − elapsed − drift = {TTL:,} − {elapsed} − {d} = {validity:,} ms"
    for person in (presenter, other):
        page = person.page
        expect(page.locator("#cl-0")).to_have_class(has_class("holding"))
        expect(page.locator("#cl-0")).to_contain_text("C1")
        expect(page.locator("#cl-1")).to_have_class(has_class("idle"))
        math = page.locator("#lq-math")
        expect(math.locator(".formula")).to_have_text(formula)
        expect(math).to_contain_text("5 of 5 OK, quorum 3")
        expect(math).to_contain_text("acquired")
        expect(math).to_contain_text(f"elapsed = T2 − T1 = {elapsed} − 0")
        for name in NODES:
            expect(page.locator(f"#nb-{name}")).to_have_class(HELD)
            expect(page.locator(f"#no-{name}")).to_contain_text("C1")
        # The space-time diagram: one episode (the acquisition) and C1's validity band.
        expect(page.locator("#lq-episodes .episode")).to_have_count(1)
        episode = page.locator("#ep-0")
        expect(episode).to_have_class(re.compile(r"k-acquire.*\bok\b"))
        expect(episode.locator(".elabel")).to_have_text("C1 ✓ 5/5")
        expect(page.locator("#win-0")).to_be_visible()
        expect(page.locator("#win-0")).to_contain_text(f"valid until {elapsed + validity:,}")  # from T2: T1 + TTL - drift
        expect(page.locator("#lq-summary")).to_contain_text("holder C1")
        expect(page.locator("#narration li").first).to_contain_text(
            f"Validity = TTL − elapsed − drift = {TTL:,} − {elapsed} − {d} = {validity:,} ms")
    last = presenter.state()["state"]["derived"]["last_acquisition"]
    assert (last["elapsed"], last["drift"], last["validity"], last["oks"]) == (elapsed, d, validity, 5)
    presenter.screenshot(shot_name(request, "acquired"))

    # Clicking the holder releases the lock everywhere.
    seq = click_in_picture(presenter, "#cl-0")
    other.wait_seq(seq)
    for person in (presenter, other):
        expect(person.page.locator("#cl-0")).to_have_class(has_class("released"))
        for name in NODES:
            expect(person.page.locator(f"#no-{name}")).to_have_text("free")
        expect(person.page.locator("#ep-1")).to_have_class(has_class("k-release"))


# -- Kleppmann's process pause, as a lesson --------------------------------------------------------

def test_the_process_pause_lesson_shows_the_lost_update_then_fencing_rejects_it(people: People) -> None:
    presenter = people("projector", viewport={"width": 1920, "height": 1080})
    code = create_lock_room(presenter)
    student = people("student")
    student.open_room(code)
    page = presenter.page

    start_lesson(presenter, LESSON)
    expect(lesson_title(presenter)).to_contain_text(f"The process pause · step 1 of {LESSON_STEPS}")
    expect(page.locator("#room-bar")).to_have_attribute("data-lesson", "1")
    for _ in range(LESSON_STEPS - 3):
        lesson_next(presenter)
    # Step 6 (fencing off): C1 wakes from its pause and writes after C2: a lost update.
    expect(lesson_title(presenter)).to_contain_text(f"step 6 of {LESSON_STEPS}")
    expect(page.locator("#lesson h2")).to_have_text("C1 wakes up and writes")
    student.wait_seq(presenter.seq())
    for person in (presenter, student):
        p = person.page
        expect(p.locator("#st-box")).to_have_class(has_class("lost"))
        expect(p.locator("#st-box .lostflag")).to_contain_text("lost update")
        expect(p.locator("#wr-0")).to_have_class(has_class("ok"))
        expect(p.locator("#wr-0")).to_contain_text("C2")
        expect(p.locator("#wr-1")).to_have_class(has_class("lost"))
        expect(p.locator("#wr-1")).to_contain_text("C1")
        expect(p.locator("#wr-1")).to_contain_text("LOST UPDATE")
        expect(p.locator("#lq-storage .write.lost")).to_have_count(1)
        expect(p.locator("#lq-summary")).to_contain_text("lost update")
    presenter.screenshot("lockquorums-lesson-pause-lost-update-1920x1080-full")

    # Step 8 (fencing on): the same story, and the storage refuses the stale token.
    lesson_next(presenter)
    lesson_next(presenter)
    expect(lesson_title(presenter)).to_contain_text(f"step {LESSON_STEPS} of {LESSON_STEPS}")
    expect(page.locator("#lesson h2")).to_have_text("The storage says no")
    expect(page.locator("#lesson button[data-send=lesson_next]")).to_be_disabled()
    student.wait_seq(presenter.seq())
    for person in (presenter, student):
        p = person.page
        expect(p.locator("#st-box")).not_to_have_class(has_class("lost"))
        expect(p.locator("#st-box")).to_contain_text("fencing on")
        expect(p.locator("#st-box")).to_contain_text("newest token 34")
        expect(p.locator("#wr-0")).to_have_class(has_class("ok"))
        expect(p.locator("#wr-0")).to_contain_text("C2 #34")
        rejected = p.locator("#lq-storage .write.rej")
        expect(rejected).to_have_count(1)
        expect(rejected).to_have_id("wr-1")
        expect(rejected).to_contain_text("C1 #33")
        expect(rejected).to_contain_text("33 < 34")
        expect(p.locator("#lq-storage .write.lost")).to_have_count(0)
        expect(p.locator("#narration")).to_contain_text("The storage rejected C1's write: rejected stale token 33 < 34")
    writes = presenter.state()["state"]["writes"]
    assert [(w["client"], w["token"], w["accepted"]) for w in writes] == [("C2", 34, True), ("C1", 33, False)]

    page.evaluate("() => window.scrollTo(0, 0)")
    presenter.screenshot("lockquorums-presenter-1920x1080", full_page=False)
    presenter.screenshot("lockquorums-presenter-1920x1080-full")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("p")
    expect(page.locator("body")).to_have_class(PROJECTION)
    page.evaluate("() => window.scrollTo(0, 0)")
    expect(page.locator("#lq-frame")).to_be_in_viewport()
    presenter.screenshot("lockquorums-projection-1920x1080", full_page=False)
    presenter.screenshot("lockquorums-projection-1920x1080-full")
    box = page.locator("#lq-frame").bounding_box()
    assert box and box["y"] + box["height"] <= 1080 + 1, box  # the whole picture fits the projector
    page.keyboard.press("p")
    expect(page.locator("body")).not_to_have_class(PROJECTION)


# -- the class race ---------------------------------------------------------------------------

def test_the_class_race(people: People, request: pytest.FixtureRequest) -> None:
    presenter = people("presenter")
    code = create_lock_room(presenter)
    present(presenter)
    evil = '"><svg/onload=alert(1)>'  # markup in a name (the longest names a student may give are 24 characters)
    names = ["Ada", "Grace", evil]
    students = [student_joins(people, f"student-{i}", code, name) for i, name in enumerate(names)]

    open_controls(presenter)
    before = presenter.seq()
    presenter.page.locator("#presenter-tools button[data-send=round_open][data-arg-kind=race]").click()
    seq = presenter.wait_seq(before + 1)
    close_controls(presenter)
    expect(presenter.page.locator("#room-bar")).to_have_attribute("data-round", "race")
    expect(presenter.page.locator("#round h2")).to_contain_text("Round open: Race for the lock")

    for s in students:
        s.wait_seq(seq)
        button = s.page.locator(".round-form button[type=submit]")
        expect(button).to_have_text("Race for the lock")
        before = s.seq()
        button.click()
        s.wait_seq(before + 2)  # the contender, then the round entry
        expect(s.page.locator("#my-entry h2")).to_have_text(f"You are in the race as {s.page.locator('#my-name').inner_text()}")
        expect(s.page.locator(".round-form")).to_be_hidden()  # one entry each

    expect(presenter.page.locator("#narration")).to_contain_text(f"{evil} joined the race.")
    waiting = presenter.page.locator("#round")
    expect(waiting.locator(".big strong")).to_have_text("3")
    expect(waiting.locator(".lb-names [data-student]")).to_have_text(names)

    # A student cannot start the race: no button, and the server refuses it when sent by hand.
    mallory = students[2]
    expect(mallory.page.locator("#round button[data-send=race_start]")).to_have_count(1)
    expect(mallory.page.locator("#round button[data-send=race_start]")).to_be_hidden()
    seq = presenter.wait_seq(max(s.seq() for s in students))
    send(mallory, {"type": "race_start"})
    expect(mallory.page.locator("#flash")).to_contain_text("Only the presenter can do that")
    assert presenter.state()["seq"] == seq
    assert presenter.state()["state"]["race"]["result"] is None

    # The race starts from a free lock: with C1 holding it, the presenter is told why it cannot.
    click_in_picture(presenter, "#cl-0")
    held = presenter.page.locator("#round #race-held")
    expect(held).to_contain_text("C1 holds the lock on A, B, C, D, E")
    seq = presenter.seq()
    presenter.page.locator("#round button[data-send=race_start]").click()
    expect(presenter.page.locator("#flash")).to_contain_text(
        "The race starts from a free lock, and it is not free: C1 holds the lock on 5 nodes (A, B, C, D, E).")
    assert presenter.state()["seq"] == seq
    click_in_picture(presenter, "#cl-0")  # C1 releases
    expect(held).to_have_count(0)
    for s in students:
        s.wait_seq(presenter.seq())
        expect(s.page.locator("#lq-race .rs")).to_have_count(3)  # every student's mark under the nodes
        expect(s.page.locator("#lq-race .rs.me")).to_have_count(1)  # and their own ringed

    before = presenter.seq()
    presenter.page.locator("#round button[data-send=race_start]").click()
    seq = presenter.wait_seq(before + 1)
    winner = presenter.state()["state"]["derived"]["race_winner"]
    assert winner in names, winner
    result = presenter.state()["state"]["race"]["result"]
    first_ok = {}  # node -> the student whose first-try SET it accepted first
    for c in result["contenders"]:
        rtt = dict(next(x for x in presenter.state()["state"]["race"]["contenders"] if x["name"] == c["name"])["rtt"])
        for node in c["tries"][0]["ok"]:
            if node not in first_ok or rtt[node] // 2 < first_ok[node][0]:
                first_ok[node] = (rtt[node] // 2, c["name"])
    # The race on the picture: every student's first try flies to the five nodes (15 flights,
    # more if the winner needed a later try), each node names whose SET it accepted.
    page = presenter.page
    flights = page.locator("#lq-flights .flights.race .msg")
    expect(flights).not_to_have_count(0)
    assert flights.count() >= 15
    tones = flights.evaluate_all("els => els.map(e => e.getAttribute('class'))")
    assert all(t in ("msg ok", "msg no") for t in tones), tones
    answers = page.locator("#lq-flights .answer")
    expect(answers).to_have_count(len(first_ok))
    for a in range(len(first_ok)):
        expect(answers.nth(a)).to_have_css("opacity", "1", timeout=8_000)
    shown = answers.all_text_contents()
    assert sorted(shown) == sorted(f"✓ {name[:9] + '…' if len(name) > 10 else name}" for _, name in first_ok.values()), shown
    expect(page.locator("#lq-race .rs.won")).to_have_count(1)
    expect(page.locator("#lq-race .rs.won")).to_have_attribute("data-student", winner)
    expect(page.locator("#rs-title")).to_contain_text("got the lock")
    presenter.screenshot(shot_name(request, "picture"), full_page=False)
    for person in [presenter, *students]:
        person.wait_seq(seq)
        board = person.page.locator("#round")
        expect(board.locator(".big strong")).to_have_text(winner)
        expect(board.locator(".big")).to_contain_text("got the lock")
        rows = board.locator(".leaderboard li[data-student]")
        expect(rows).to_have_count(3)
        assert sorted(rows.evaluate_all("els => els.map(e => e.dataset.student)")) == sorted(names)
        expect(board.locator(".leaderboard li.won strong")).to_contain_text([winner])
        for name in names:
            expect(board.locator(".leaderboard li strong", has_text=name)).to_have_count(1)
        assert person.page.evaluate("() => document.querySelectorAll('#room img, #room [onerror], #room [onload], #round svg').length") == 0
        expect(person.page.locator("#narration li").first).to_contain_text("The race:")
    # Each student's own row is marked on their screen.
    for s, name in zip(students, names):
        expect(s.page.locator("#round li.me")).to_have_count(1)
        expect(s.page.locator("#round li.me strong")).to_have_text(name)
    presenter.screenshot(shot_name(request, "presenter"))
    mallory.screenshot(shot_name(request, "student"))
    # Closing the round takes the students' marks off every screen.
    open_controls(presenter)
    before = presenter.seq()
    presenter.page.locator("#presenter-tools button[data-send=round_close]").click()
    seq = presenter.wait_seq(before + 1)
    for person in [presenter, *students]:
        person.wait_seq(seq)
        expect(person.page.locator("#lq-race")).to_be_hidden()
    # No dialog opened anywhere: the conftest fails the test on any (alert, confirm, ...).


# -- settings and a new scene ----------------------------------------------------------------

def test_settings_and_a_seven_node_scene_reach_both_windows(people: People) -> None:
    presenter, other, _code = room_pair(people)
    open_group(presenter, "Settings")
    seq = presenter.command("configure", ttl_ms=3000)
    other.wait_seq(seq)
    for person in (presenter, other):
        expect(person.page.locator("#lq-summary")).to_contain_text("TTL 3,000 ms")
        expect(person.page.locator("#lq-summary")).to_contain_text(f"drift {drift(3000)} ms")
        expect(person.page.locator("#narration li").first).to_contain_text("Settings: TTL 3,000 ms")
    assert presenter.state()["state"]["ttl_ms"] == 3000

    open_group(presenter, "New scene")
    form = presenter.form("load_scene")
    form.locator("select[name=nodes]").select_option("7")
    before = presenter.seq()
    form.locator("button[type=submit]").click()
    seq = presenter.wait_seq(before + 1)
    other.wait_seq(seq)
    for person in (presenter, other):
        page = person.page
        expect(page.locator("#nb-G")).to_have_count(1)
        expect(page.locator("#nb-G")).to_have_class(UP)
        expect(page.locator("#lq-nodes .nbody")).to_have_count(7)
        expect(page.locator("#lq-summary")).to_contain_text("7 nodes · quorum 4")
        expect(page.locator("#lq-frame .col-title").nth(1)).to_have_text("Lock nodes: 4 of 7 make a quorum")
        expect(page.locator("#narration li").first).to_contain_text("New scene")
    assert [n["name"] for n in presenter.state()["state"]["nodes"]] == list("ABCDEFG")


def test_the_settings_group_stays_open_after_apply(people: People) -> None:
    presenter = people("presenter")
    create_lock_room(presenter)
    open_group(presenter, "Settings")
    presenter.command("configure", ttl_ms=3000)
    expect(presenter.page.locator("#lq-summary")).to_contain_text("TTL 3,000 ms")
    details = presenter.page.locator("details:has(> summary:text-is('Settings'))")
    expect(details).to_have_attribute("open", "", timeout=2_000)


# -- reduced motion ---------------------------------------------------------------------------

def test_reduced_motion_hides_the_message_flights_but_not_the_answers(people: People) -> None:
    presenter = people("presenter", reduced_motion="reduce")
    create_lock_room(presenter)
    page = presenter.page
    click_in_picture(presenter, "#cl-0")
    flights = page.locator("#lq-flights .msg")
    expect(flights).not_to_have_count(0)
    displays = flights.evaluate_all("els => els.map(e => getComputedStyle(e).display)")
    assert set(displays) == {"none"}, displays
    answers = page.locator("#lq-flights .answer")
    expect(answers).to_have_count(5)
    expect(answers).to_have_text(["OK"] * 5)
    # Each answer shows once its reply has arrived (in about three seconds for the whole walk).
    for i in range(5):
        expect(answers.nth(i)).to_have_css("opacity", "1", timeout=8_000)
    for name in NODES:
        expect(page.locator(f"#no-{name}")).to_contain_text("C1")
    expect(page.locator("#lq-math .formula")).to_contain_text("= 9,883 ms")


def test_without_reduced_motion_the_flights_are_drawn(people: People) -> None:
    presenter = people("presenter", reduced_motion="no-preference")
    create_lock_room(presenter)
    click_in_picture(presenter, "#cl-0")
    flights = presenter.page.locator("#lq-flights .msg")
    expect(flights).not_to_have_count(0)
    displays = flights.evaluate_all("els => els.map(e => getComputedStyle(e).display)")
    assert "none" not in displays, displays


# -- a phone ----------------------------------------------------------------------------------

def phone_student(people: People) -> tuple[Person, Person]:
    presenter = people("presenter")
    code = create_lock_room(presenter)
    phone = people("phone", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                   device_scale_factor=2)
    phone.open_room(code)
    seq = click_in_picture(presenter, "#cl-0")
    phone.wait_seq(seq)
    return presenter, phone


def test_phone_screenshot_and_the_picture_scrolls_inside_its_frame(people: People) -> None:
    _presenter, phone = phone_student(people)
    page = phone.page
    expect(page.locator("#lq-frame")).to_be_visible()
    expect(page.locator("#cl-0")).to_have_class(has_class("holding"))
    expect(page.locator("#nb-A")).to_have_class(HELD)
    page.evaluate("() => window.scrollTo(0, 0)")
    phone.screenshot("lockquorums-phone-390x844", full_page=False)
    phone.screenshot("lockquorums-phone-390x844-full")
    # The picture keeps a readable size (at least 880 px wide) and scrolls sideways inside its
    # own container, which fits the screen.
    picture = page.locator(".lq .picture > .lq-pictures")  # the named, focusable scroll region
    sizes = picture.evaluate("el => ({scroll: el.scrollWidth, client: el.clientWidth, overflow: getComputedStyle(el).overflowX})")
    assert sizes["overflow"] == "auto" and sizes["scroll"] >= 880 > sizes["client"], sizes
    box = picture.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, box
    # ... and says so, right under it.
    hint = page.locator(".lq-scroll-hint")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("swipe it sideways")


def test_phone_page_does_not_scroll_sideways(people: People) -> None:
    _presenter, phone = phone_student(people)
    table = phone.page.locator(".compare-table").bounding_box()
    overflow = no_page_overflow(phone)
    assert overflow <= 1, f"the phone page scrolls sideways by {overflow}px (the comparison table: {table})"


def test_a_presenters_phone_shows_the_explanation_full_width(people: People) -> None:
    presenter = people("presenter-phone", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    create_lock_room(presenter)
    explain = presenter.page.locator("aside.explain").bounding_box()
    controls = presenter.page.locator("aside.controls").bounding_box()
    assert explain and explain["width"] >= 300, f"the explain aside is {explain} on a 390 px screen (controls: {controls})"


# -- issue 9: the picture on a projector -------------------------------------------------------

FULL_HD = {"width": 1920, "height": 1080}

# Every visible text of the lock picture: its id path, its box on screen and its size in px.
PICTURE_TEXTS = """() => {
  const out = [];
  for (const t of document.querySelectorAll('#lq-frame text')) {
    const r = t.getBoundingClientRect(); const cs = getComputedStyle(t);
    if (!r.width || !r.height || cs.display === 'none' || cs.visibility === 'hidden' || Number(cs.opacity) < 0.05) continue;
    if (!t.textContent.trim() || t.closest('[aria-hidden=true]')) continue;
    const m = t.getScreenCTM(); if (!m) continue;
    const owner = t.closest('[id]');
    out.push({id: owner ? owner.id : '', text: t.textContent.trim().slice(0, 40), x: r.left, y: r.top, w: r.width, h: r.height,
              px: parseFloat(cs.fontSize) * Math.hypot(m.a, m.b)});
  }
  return out;
}"""


def settled(person: Person) -> None:
    """Wait until no CSS animation or transition runs (a new episode pops in from a small scale)."""
    person.page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")


def overlapping(texts: list[dict[str, Any]], slack: float = 3.0) -> list[str]:
    """Pairs of texts whose boxes overlap by more than ``slack`` px both ways."""
    found = []
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
            h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            if w > slack and h > slack:
                found.append(f"{a['id']} {a['text']!r} and {b['id']} {b['text']!r} ({w:.0f}×{h:.0f} px)")
    return found


def check_picture_text(person: Person, what: str) -> None:
    """No two labels of the picture overlap, and every one is at least 20 px on the screen."""
    settled(person)
    texts = person.page.evaluate(PICTURE_TEXTS)
    assert len(texts) > 20, f"{what}: only {len(texts)} texts found"
    clash = overlapping(texts)
    assert not clash, f"{what}: overlapping labels:\n" + "\n".join(clash)
    small = [f"{t['id']} {t['text']!r} {t['px']:.1f} px" for t in texts if t["px"] < 19.5]
    assert not small, f"{what}: projected text under 20 px:\n" + "\n".join(small)


def projector(people: People) -> tuple[Person, str]:
    presenter = people("projector", viewport=FULL_HD)
    code = create_lock_room(presenter)
    present(presenter)
    return presenter, code


def test_projected_labels_are_20_px_and_never_overlap_through_the_process_pause_lesson(people: People) -> None:
    """The space-time diagram's "valid until" sat on "paused (GC)"; every step of the lesson is
    checked, projected at 1920×1080, with the boxes Chromium lays out."""
    presenter, _code = projector(people)
    check_picture_text(presenter, "a new room")
    start_lesson(presenter, LESSON)
    for step in range(1, LESSON_STEPS + 1):
        if step > 1:
            lesson_next(presenter)
        check_picture_text(presenter, f"lesson step {step}")
        if step == 6:  # C1 paused under its validity window, then wakes and loses C2's update
            expect(presenter.page.locator("#lq-bands .pauseband")).to_have_count(1)
            expect(presenter.page.locator("#lq-bands .window")).not_to_have_count(0)
            presenter.screenshot("lockquorums-projection-pause-and-window-1920x1080", full_page=False)
    presenter.screenshot("lockquorums-projection-lesson-end-1920x1080", full_page=False)


def test_projected_labels_hold_with_failures_a_node_down_and_a_crowded_diagram(people: People) -> None:
    presenter, _code = projector(people)
    send(presenter, {"type": "node_crash", "node": "D"})
    for cmd in ({"type": "acquire", "client": "C1"}, {"type": "acquire", "client": "C2"},
                {"type": "client_pause", "client": "C1", "ms": 15_000}, {"type": "tick", "dt_ms": 10_500},
                {"type": "acquire", "client": "C2"}, {"type": "write", "client": "C2"}, {"type": "tick", "dt_ms": 5_000},
                {"type": "write", "client": "C1"}, {"type": "release", "client": "C2"}):
        before = presenter.seq()
        send(presenter, cmd)
        presenter.wait_seq(before + 1)
    check_picture_text(presenter, "after failures, a pause and a lost update")
    presenter.screenshot("lockquorums-projection-busy-1920x1080", full_page=False)
    # A scene of seven nodes and six clients.
    before = presenter.seq()
    send(presenter, {"type": "load_scene", "mode": "redlock", "nodes": 7, "clients": 6})
    presenter.wait_seq(before + 1)
    before = presenter.seq()
    send(presenter, {"type": "acquire", "client": "C6"})
    presenter.wait_seq(before + 1)
    settled(presenter)
    texts = presenter.page.evaluate(PICTURE_TEXTS)
    clash = overlapping(texts)
    assert not clash, "seven nodes, six clients: overlapping labels:\n" + "\n".join(clash)
    presenter.screenshot("lockquorums-projection-7-nodes-6-clients-1920x1080", full_page=False)


# -- the keyboard ------------------------------------------------------------------------------

def focus_by_tab(person: Person, selector: str, limit: int = 80) -> None:
    """Press Tab until the element is focused, as a keyboard user would reach it."""
    page = person.page
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab in {limit} presses")


def test_every_node_and_client_is_a_keyboard_button_that_does_what_the_mouse_does(people: People) -> None:
    presenter = people("presenter", viewport=FULL_HD)
    create_lock_room(presenter)
    page = presenter.page
    buttons = page.locator("#lq-stage [role=button]")
    expect(buttons).to_have_count(len(NODES) + 2)
    for info in buttons.evaluate_all("""els => els.map(e => ({id: e.id, tab: e.getAttribute('tabindex'), label: e.getAttribute('aria-label'),
        send: e.dataset.send, nested: e.querySelectorAll('[tabindex], [role=button], a, button').length}))"""):
        assert info["tab"] == "0" and info["label"] and info["send"] and info["nested"] == 0, info
    expect(page.locator("#nd-C")).to_have_attribute("aria-label", "Node C, up: crash it")
    expect(page.locator("#cl-0")).to_have_attribute("data-send", "acquire")

    # Node C: Enter crashes it; the button now restarts it, with the fsync option ticked under Faults.
    focus_by_tab(presenter, "#nd-C")
    before = presenter.seq()
    page.keyboard.press("Enter")
    presenter.wait_seq(before + 1)
    expect(page.locator("#nb-C")).to_have_class(DOWN)
    expect(page.locator("#nd-C")).to_have_attribute("data-send", "node_restart")
    expect(page.locator("#nd-C")).to_have_attribute("aria-label", re.compile(r"^Node C, down: restart it"))
    box = page.locator("#lq-restart input[name=persistence]")
    presenter.reveal(box)  # the Faults group (one control group is open at a time)
    box.check()
    focus_by_tab(presenter, "#nd-C")
    before = presenter.seq()
    page.keyboard.press(" ")
    presenter.wait_seq(before + 1)
    expect(page.locator("#nb-C")).to_have_class(UP)
    node_c = presenter.state()["state"]["nodes"][2]
    assert node_c["up"] and node_c["persistence"] is True  # the form's checkbox went with the command

    # Client C1: Space acquires, then the same button releases.
    focus_by_tab(presenter, "#cl-0")
    before = presenter.seq()
    page.keyboard.press(" ")
    presenter.wait_seq(before + 1)
    expect(page.locator("#cl-0")).to_have_class(has_class("holding"))
    expect(page.locator("#cl-0")).to_have_attribute("data-send", "release")
    expect(page.locator("#cl-0")).to_have_attribute("aria-label", re.compile(r"^Client C1, holds: .* release the lock$"))
    focus_by_tab(presenter, "#cl-0")
    before = presenter.seq()
    page.keyboard.press("Enter")
    presenter.wait_seq(before + 1)
    expect(page.locator("#cl-0")).to_have_class(has_class("released"))


# -- motion ------------------------------------------------------------------------------------

# Every message dot's centre on screen, each animation frame for `ms` milliseconds, from before
# the command is sent (window.__dots, then window.__dotsDone).
SAMPLE_DOTS = """ms => {
  const frames = []; const t0 = performance.now(); window.__dots = frames; window.__dotsDone = false;
  const step = () => {
    frames.push([...document.querySelectorAll('#lq-flights .msg')].map(d => {
      const r = d.getBoundingClientRect(); return r.width ? [r.left + r.width / 2, r.top + r.height / 2] : null; }));
    if (performance.now() - t0 < ms) requestAnimationFrame(step); else window.__dotsDone = true;
  };
  requestAnimationFrame(step);
}"""


def test_message_dots_glide_along_their_links_and_never_jump(people: People) -> None:
    """Sampled every animation frame, each SET/reply dot that flies moves in small steps from its
    start to its end: none sits still for the whole flight, none jumps across the picture."""
    presenter = people("presenter", viewport=FULL_HD, reduced_motion="no-preference")
    create_lock_room(presenter)
    before = presenter.seq()
    presenter.page.evaluate(SAMPLE_DOTS, 4500)
    presenter.page.locator("#cl-0").click()
    presenter.wait_seq(before + 1)
    presenter.page.wait_for_function("() => window.__dotsDone === true")
    frames = [f for f in presenter.page.evaluate("() => window.__dots") if f]
    assert len(frames) > 60, f"only {len(frames)} animation frames with dots"
    dots = max(len(f) for f in frames)
    assert dots == 2 * len(NODES), dots  # a SET and a reply per node
    scale = presenter.page.evaluate("() => document.getElementById('lq-stage').getScreenCTM().a")
    for i in range(dots):
        track = [f[i] for f in frames if i < len(f) and f[i] is not None]
        assert len(track) > 10, f"dot {i} was drawn in {len(track)} frames only"
        travel = math.dist(track[0], track[-1])
        assert travel > 100 * scale, f"dot {i} moved {travel:.0f} px in all: it never flew"
        steps = [math.dist(a, b) for a, b in zip(track, track[1:])]
        moving = [d for d in steps if d > 0.5]
        assert len(moving) >= 5, f"dot {i} moved in {len(moving)} frames only: it jumped ({[round(d) for d in steps if d > 0.5]})"
        assert max(steps) < travel / 3, f"dot {i} jumped {max(steps):.0f} px in one frame of a {travel:.0f} px flight"


# -- accessibility of the states a lesson and a race reach ---------------------------------------

def axe_violations(person: Person) -> list[str]:
    axe = pytest.importorskip("axe_playwright_python", reason="axe-playwright-python (requirements-dev.txt) ships axe-core")
    page = person.page
    page.evaluate((Path(axe.__file__).parent / "axe.min.js").read_text(encoding="utf-8"))
    # The lock room's own parts (the page around them is test_accessibility_browser's).
    parts = [s for s in ("#lq-frame", "#lq-summary", "#lq-math", "#round", "#my-entry", "#controls", ".explain")
             if page.locator(s).count()]
    result = page.evaluate("""([tags, parts]) => axe.run({include: parts.map(p => [p])},
                               {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})""",
                           [["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"], parts])
    return [f"{v['id']} ({v['impact']}, {len(v['nodes'])}×): {v['help']} — "
            + ", ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:6]) for v in result["violations"]]


def test_no_wcag_violation_after_a_race_a_failed_try_and_a_lost_update(people: People) -> None:
    presenter, code = projector(people)
    students = [student_joins(people, f"student-{i}", code, name) for i, name in enumerate(["Ada", "Grace"])]
    open_controls(presenter)
    before = presenter.seq()
    presenter.page.locator("#presenter-tools button[data-send=round_open][data-arg-kind=race]").click()
    presenter.wait_seq(before + 1)
    for s in students:
        s.wait_seq(presenter.seq())
        before = s.seq()
        s.page.locator(".round-form button[type=submit]").click()
        s.wait_seq(before + 2)
    before = presenter.seq()
    send(presenter, {"type": "race_start"})
    seq = presenter.wait_seq(before + 1)
    for person in [presenter, *students]:
        person.wait_seq(seq)
        settled(person)
        found = axe_violations(person)
        assert not found, f"axe-core after the race, {person.name}:\n" + "\n".join(found)
    # A failed acquisition (the race's winner holds every node) and the process pause's lost update.
    before = presenter.seq()
    send(presenter, {"type": "acquire", "client": "C1"})
    presenter.wait_seq(before + 1)
    expect(presenter.page.locator("#lq-math .why")).to_contain_text(re.compile(r"why: [0-2] of 5 < quorum 3"))
    start_lesson(presenter, LESSON)
    for _ in range(5):
        lesson_next(presenter)
    settled(presenter)
    found = axe_violations(presenter)
    assert not found, "axe-core at the lost update:\n" + "\n".join(found)
