"""The hash ring room in a real browser: a presenter clicks, another person's page changes."""
from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import People, Person, close_controls, open_controls, shot_name

pytestmark = pytest.mark.browser

INITIAL_NODES = ["A", "B", "C", "D"]
INITIAL_KEYS = 12


# -- helpers -----------------------------------------------------------------------------------

def hittable(page: Page, selector: str) -> Locator:
    """The first element matching ``selector`` that a real click at its centre would hit
    (labels, lookups and other dots can cover a vnode or a key)."""
    index = page.evaluate(
        """sel => {
            const els = [...document.querySelectorAll(sel)];
            return els.findIndex(el => {
                const r = el.getBoundingClientRect();
                if (!r.width || !r.height) return false;
                const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                return hit === el || (hit && el.contains(hit));
            });
        }""",
        selector,
    )
    assert index >= 0, f"nothing matching {selector} can be clicked"
    return page.locator(selector).nth(index)


def in_view_hittable(page: Page, selector: str) -> Locator:
    page.locator("#ring").scroll_into_view_if_needed()
    return hittable(page, selector)


def node_names(person: Person) -> list[str]:
    return [n["name"] for n in person.state()["state"]["nodes"]]


def room_pair(people: People) -> tuple[Person, Person, str]:
    presenter = people("presenter")
    code = presenter.create_room()
    student = people("student")
    student.open_room(code)
    return presenter, student, code


# -- 2. two people, one room -------------------------------------------------------------------

def test_presenter_changes_reach_another_window_and_keys_morph(people: People, request: pytest.FixtureRequest) -> None:
    presenter, student, code = room_pair(people)
    expect(presenter.page.locator("body")).to_have_attribute("data-role", "presenter")
    expect(student.page.locator("body")).to_have_attribute("data-role", "participant")
    expect(student.page.locator("#ring-keys circle")).to_have_count(INITIAL_KEYS)

    # Add a node with the form: the other window shows it in the list and on the ring.
    seq = presenter.command("add_node", name="E", vnodes=5)
    student.wait_seq(seq)
    expect(student.page.locator("#nodes .node-name", has_text=re.compile(r"^E$"))).to_have_count(1)
    expect(student.page.locator('#ring-vnodes circle[data-node="E"]')).to_have_count(5)
    expect(student.page.locator('#ring-labels [data-node="E"]')).to_have_count(1)
    expect(student.page.locator("#narration li").first).to_contain_text("Added node E")

    # Remove the node owning the most keys, by clicking one of its vnodes on the ring.
    counts = presenter.state()["state"]["derived"]["counts"]
    victim = max(counts, key=lambda n: (counts[n], n))
    assert counts[victim] > 0
    tagged: dict[str, str] = student.page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#ring-keys circle')].map(el => {
               el.__marker = 1; return [el.id, el.getAttribute('class')];
           }))"""
    )
    assert len(tagged) == INITIAL_KEYS
    before = presenter.seq()
    in_view_hittable(presenter.page, f'#ring-vnodes circle[data-node="{victim}"]').click()
    seq = presenter.wait_seq(before + 1)
    student.wait_seq(seq)

    expect(student.page.locator(f'#ring-vnodes circle[data-node="{victim}"]')).to_have_count(0)
    expect(student.page.locator(f'#ring-labels [data-node="{victim}"]')).to_have_count(0)
    expect(student.page.locator("#nodes .node-name", has_text=re.compile(rf"^{victim}$"))).to_have_count(0)
    assert victim not in node_names(presenter)
    expect(student.page.locator("#moved")).to_contain_text(f"Removed {victim}")

    after: dict[str, Any] = student.page.evaluate(
        """ids => Object.fromEntries(ids.map(id => {
               const el = document.getElementById(id);
               return [id, el ? {marker: el.__marker === 1, cls: el.getAttribute('class')} : null];
           }))""",
        list(tagged),
    )
    missing = [i for i, v in after.items() if v is None]
    replaced = [i for i, v in after.items() if v is not None and not v["marker"]]
    changed = [i for i, v in after.items() if v is not None and v["cls"] != tagged[i]]
    assert not missing, f"key dots vanished: {missing}"
    assert not replaced, f"key dots were replaced instead of morphed: {replaced}"
    assert len(changed) == counts[victim], (changed, counts)

    presenter.screenshot(shot_name(request, "presenter"))
    student.screenshot(shot_name(request, "student"))


# -- 3. lookup ---------------------------------------------------------------------------------

def test_lookup_draws_the_walk_and_names_the_owner(people: People, request: pytest.FixtureRequest) -> None:
    presenter, student, code = room_pair(people)
    seq = presenter.command("lookup", key="user42")
    student.wait_seq(seq)
    owner = presenter.state()["state"]["derived"]["lookup"]["owner"]
    for person in (presenter, student):
        expect(person.page.locator("#ring-lookup path.walk")).to_have_count(1)
        expect(person.page.locator("#ring-lookup .pref")).not_to_have_count(0)
        panel = person.page.locator("#lookup-panel")
        expect(panel).to_contain_text("user42")
        text = panel.inner_text()
        m = re.search(r"First vnode clockwise:\s*(\S+)#(\d+)", text)
        assert m, text
        assert m.group(1) == owner

    # Clicking a key dot on the ring looks that key up (the presenter's click).
    dot = in_view_hittable(presenter.page, '#ring-keys circle:not([data-key="user42"])')
    key = dot.get_attribute("data-key")
    before = presenter.seq()
    dot.click()
    seq = presenter.wait_seq(before + 1)
    student.wait_seq(seq)
    lookup = presenter.state()["state"]["derived"]["lookup"]
    assert lookup["key"] == key
    expect(student.page.locator("#lookup-panel strong").first).to_have_text(key)
    expect(student.page.locator("#lookup-panel")).to_contain_text(f"{lookup['owner']}#")

    # A participant's click on a key dot asks for a lookup too, but outside a round the
    # presenter alone acts: refused to the participant, and nothing changes for anyone.
    dot = in_view_hittable(student.page, "#ring-keys circle")
    dot.click()
    expect(student.page.locator("#flash")).to_contain_text("Only the presenter can do that")
    expect(student.page.locator("#flash")).to_contain_text("open a round")
    assert student.seq() == seq
    assert presenter.state()["seq"] == seq
    assert presenter.state()["state"]["derived"]["lookup"]["key"] == key
    expect(presenter.page.locator("#flash")).to_have_text("")
    presenter.screenshot(shot_name(request))


# -- 4. many keys --------------------------------------------------------------------------------

def test_many_keys_draw_a_sample(people: People, request: pytest.FixtureRequest) -> None:
    presenter, student, code = room_pair(people)
    seq = presenter.command("add_random_keys", count=5000)
    student.wait_seq(seq)
    state = presenter.state()["state"]
    assert len(state["keys"]) == INITIAL_KEYS + 5000
    for person in (presenter, student):
        dots = person.page.locator("#ring-keys circle").count()
        assert 0 < dots <= 240, dots
        expect(person.page.locator("#ring-summary")).to_contain_text("5,012")  # thousands separators
        expect(person.page.locator("#load")).to_contain_text("std / mean")
        expect(person.page.locator("#load")).to_contain_text("mean")
    load = state["derived"]["load"]
    shown = presenter.page.locator("#load dt:text-is('std / mean') + dd").inner_text()
    assert abs(float(shown) - load["std_over_mean"]) < 0.001
    presenter.screenshot(shot_name(request))


# -- 5. rejections -----------------------------------------------------------------------------

def test_rejections_go_to_the_sender_only(people: People, request: pytest.FixtureRequest) -> None:
    presenter, student, code = room_pair(people)
    seq = presenter.seq()

    # A duplicate node name: the presenter is told, nobody else.
    presenter.submit("add_node", name="A")
    expect(presenter.page.locator("#flash")).to_contain_text("already a node called A")
    # Something every window sees, after the rejection: by the time it arrives, a wrongly
    # broadcast error would have arrived too.
    seq = presenter.command("add_key", key="after-rejection")
    assert seq == presenter.seq()
    student.wait_seq(seq)
    expect(student.page.locator("#flash")).to_have_text("")

    # A participant clicking a vnode asks to remove a node: refused, and nothing changes.
    before = student.seq()
    in_view_hittable(student.page, "#ring-vnodes circle").click()
    expect(student.page.locator("#flash")).to_contain_text("Only the presenter")
    assert student.seq() == before
    assert presenter.state()["seq"] == before
    assert node_names(presenter) == INITIAL_NODES
    expect(student.page.locator("#ring-vnodes circle")).to_have_count(4 * 8)
    student.screenshot(shot_name(request, "student"))


# -- 6. markup safety --------------------------------------------------------------------------

def test_names_render_as_text(people: People, request: pytest.FixtureRequest) -> None:
    presenter, student, code = room_pair(people)
    evil_key = '"><svg onload=alert(1)>'
    evil_node = "<b>x</b>"
    presenter.command("add_key", key=evil_key)
    seq = presenter.command("add_node", name=evil_node)
    student.wait_seq(seq)
    state = presenter.state()["state"]
    assert evil_key in state["keys"]
    assert evil_node in [n["name"] for n in state["nodes"]]
    for person in (presenter, student):
        page = person.page
        expect(page.locator("#nodes")).to_contain_text(evil_node)
        expect(page.locator("#nodes b")).to_have_count(0)
        assert page.locator("#ring-keys circle").evaluate_all(
            "(els, k) => els.filter(e => e.dataset.key === k).length", evil_key) == 1
        assert page.evaluate("() => document.querySelectorAll('[onload]').length") == 0
        assert page.evaluate("() => document.querySelectorAll('#room svg svg').length") == 0
        expect(page.locator("#narration")).to_contain_text(evil_key)
        expect(page.locator("#narration")).to_contain_text(evil_node)
        expect(page.locator(f'#ring-vnodes circle[data-node="{evil_node}"]')).to_have_count(8)
    # A fresh page load renders the same names from the server template.
    student.open_room(code)
    expect(student.page.locator("#nodes")).to_contain_text(evil_node)
    expect(student.page.locator("#nodes b")).to_have_count(0)
    # Clicking the hostile key's dot looks it up: the name goes back to the server verbatim.
    dot = presenter.page.locator("#ring-keys circle").filter(has=presenter.page.locator("title", has_text="svg onload"))
    before = presenter.seq()
    dot.dispatch_event("click")  # the dot may sit under another; what matters is the data-key it sends
    presenter.wait_seq(before + 1)
    assert presenter.state()["state"]["lookup"] == evil_key
    expect(presenter.page.locator("#narration li").first).to_contain_text(f"Looked up {evil_key}")
    presenter.screenshot(shot_name(request))


# -- 7. history --------------------------------------------------------------------------------

def test_step_back_brings_a_removed_node_back(people: People, request: pytest.FixtureRequest) -> None:
    presenter, student, code = room_pair(people)
    presenter.page.locator("#nodes button[aria-label='Remove node B']").click()
    seq = presenter.wait_seq(2)
    student.wait_seq(seq)
    expect(student.page.locator('#ring-vnodes circle[data-node="B"]')).to_have_count(0)

    back = presenter.page.locator("#room-bar button", has_text="Back")
    expect(back).to_be_enabled()
    back.click()
    seq = presenter.wait_seq(seq + 1)
    student.wait_seq(seq)
    for person in (presenter, student):
        expect(person.page.locator('#ring-vnodes circle[data-node="B"]')).to_have_count(8)
        expect(person.page.locator("#nodes .node-name", has_text=re.compile(r"^B$"))).to_have_count(1)
        timeline = person.page.locator("#timeline")
        expect(timeline).to_have_attribute("max", str(seq))
        assert int(timeline.get_attribute("max") or 0) == person.seq()
    doc = presenter.state()
    assert doc["seq"] == seq
    assert doc["position"] == seq - 2  # back to the event before the removal
    expect(presenter.page.locator("#timeline")).to_have_attribute("value", str(doc["position"]))
    assert node_names(presenter) == INITIAL_NODES
    presenter.screenshot(shot_name(request))


# -- 8. the clock --------------------------------------------------------------------------------

def test_play_ticks_then_pause(people: People, request: pytest.FixtureRequest) -> None:
    presenter, student, code = room_pair(people)
    start = presenter.seq()
    presenter.page.locator("#room-bar button", has_text="Play").click()
    expect(presenter.page.locator("#room-bar button", has_text="Pause")).to_be_visible()
    # clock_set, then at least two ticks (one a second at 1x).
    student.wait_seq(start + 3, timeout=15_000)
    ticks = student.page.locator("#narration li", has_text="Tick")
    expect(ticks.nth(1)).to_be_attached()
    presenter.page.locator("#room-bar button", has_text="Pause").click()
    expect(presenter.page.locator("#room-bar button", has_text="Play")).to_be_visible()
    # The student's room bar follows too, though its clock buttons are the presenter's alone.
    student_play = student.page.locator("#room-bar .play")
    expect(student_play).to_have_text(re.compile(r"Play"))
    expect(student_play).to_be_hidden()
    expect(student.page.locator("#room-bar .clock-state")).to_have_text("1x")
    doc = presenter.state()
    assert doc["clock"]["playing"] is False
    assert doc["state"]["clock_ms"] >= 2000
    presenter.screenshot(shot_name(request))


# -- 10. fork --------------------------------------------------------------------------------

def test_fork_copies_the_room_and_leaves_it_alone(people: People, request: pytest.FixtureRequest) -> None:
    presenter, student, code = room_pair(people)
    presenter.command("add_node", name="E", vnodes=3)
    original = presenter.state(code)

    presenter.page.locator("form.fork button").click()
    presenter.page.wait_for_url(lambda url: f"/r/{code}/" not in url and "/r/" in url)
    presenter.wait_live()
    fork = presenter.code()
    assert fork != code
    copy = presenter.state(fork)
    assert copy["forked_from"]["code"] == code
    assert copy["state"]["nodes"] == original["state"]["nodes"]
    assert copy["state"]["keys"] == original["state"]["keys"]
    expect(presenter.page.locator("body")).to_have_attribute("data-role", "presenter")
    expect(presenter.page.locator('#ring-vnodes circle[data-node="E"]')).to_have_count(3)

    presenter.command("add_node", name="F")
    assert "F" in [n["name"] for n in presenter.state(fork)["state"]["nodes"]]
    again = presenter.state(code)
    assert again["seq"] == original["seq"]
    assert again["state"] == original["state"]
    assert student.seq() == original["seq"]
    expect(student.page.locator('#ring-vnodes circle[data-node="F"]')).to_have_count(0)
    presenter.screenshot(shot_name(request))


# -- 11. reduced motion --------------------------------------------------------------------------

def test_reduced_motion_stops_animations(people: People) -> None:
    presenter = people("presenter")
    code = presenter.create_room()
    calm = people("calm", reduced_motion="reduce")
    calm.open_room(code)
    vnode = "#ring-vnodes circle"
    assert presenter.page.locator(vnode).first.evaluate("e => getComputedStyle(e).animationName") != "none"
    assert calm.page.locator(vnode).first.evaluate("e => getComputedStyle(e).animationName") == "none"
    presenter.command("lookup", key="user7")
    calm.wait_seq(presenter.seq())
    assert calm.page.locator("#ring-lookup path.walk").evaluate("e => getComputedStyle(e).animationName") == "none"


# -- screenshots at two sizes ---------------------------------------------------------------------

@pytest.mark.parametrize("size", [(1920, 1080), (390, 844)], ids=["desktop-1920x1080", "phone-390x844"])
def test_room_screenshot(people: People, size: tuple[int, int], request: pytest.FixtureRequest) -> None:
    width, height = size
    phone = width < 600
    person = people("viewer", viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone,
                    device_scale_factor=2 if phone else 1)
    person.create_room()
    person.command("lookup", key="user3")
    person.page.evaluate("() => window.scrollTo(0, 0)")  # submitting the form scrolled to it
    person.screenshot(shot_name(request), full_page=False)
    person.screenshot(shot_name(request, "full"))
    overflow = person.page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px at {width}x{height}"


# -- 9. reconnect (stops and restarts the session's server on the same port and database) ---------

def test_reconnect_after_server_restart(people: People, daphne_server, request: pytest.FixtureRequest) -> None:  # noqa: ANN001
    presenter = people("presenter")
    code = presenter.create_room()
    daphne_server.stop()
    expect(presenter.page.locator("#conn")).to_have_text("reconnecting…")
    expect(presenter.page.locator("body")).not_to_have_attribute("data-conn", "open")

    daphne_server.start()
    # The presenter's second window (same session: a laptop next to the projector) opens the
    # restarted server and adds a key, perhaps before the first page has reconnected: that page
    # must catch up either way. (A student may no longer add keys outside a round.)
    laptop = people("presenter-laptop", storage_state=presenter.context.storage_state())
    laptop.open_room(code)
    expect(laptop.page.locator("body")).to_have_attribute("data-role", "presenter")
    seq = laptop.command("add_key", key="while-you-were-away")

    presenter.wait_live(timeout=30_000)
    expect(presenter.page.locator("#conn")).to_have_text("live")
    presenter.wait_seq(seq)
    expect(presenter.page.locator('#ring-keys circle[data-key="while-you-were-away"]')).to_have_count(1)

    # And the presenter's own commands flow again, to the other window too.
    seq = presenter.command("add_node", name="E")
    laptop.wait_seq(seq)
    expect(laptop.page.locator('#ring-vnodes circle[data-node="E"]')).to_have_count(8)
    presenter.screenshot(shot_name(request))


# -- issue 9: labels apart, motion that moves, keyboard, projected sizes, honest forms -------------

BOXES_JS = """() => {
    const box = el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    return {
        ranks: [...document.querySelectorAll('#ring-lookup .pref-badge')].map(g => [g.dataset.rank, box(g.querySelector('circle'))]),
        labels: [...document.querySelectorAll('#ring-labels .node-label')].map(g => [g.dataset.node, box(g.querySelector('circle'))]),
    };
}"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _overlaps(boxes: dict[str, list[Any]]) -> list[str]:
    found = []
    ranks, labels = boxes["ranks"], boxes["labels"]
    for i, (ra, a) in enumerate(ranks):
        found += [f"rank {ra} on rank {rb}" for rb, b in ranks[i + 1:] if _overlap(a, b)]
        found += [f"rank {ra} on label {n}" for n, b in labels if _overlap(a, b)]
    for i, (na, a) in enumerate(labels):
        found += [f"label {na} on label {nb}" for nb, b in labels[i + 1:] if _overlap(a, b)]
    return found


def test_preference_ranks_and_node_labels_never_overlap(people: People, request: pytest.FixtureRequest) -> None:
    """Many lookups on a ring whose vnodes crowd each other: no rank badge touches another or a
    node label (their bounding boxes on screen), and no two node labels touch."""
    presenter = people("presenter", viewport={"width": 1920, "height": 1080})
    presenter.create_room()
    # BX's vnode 0 sits 0.02 degrees from D's, SF's 0.03 degrees from B's: four labels want two spots.
    presenter.command("add_node", name="BX", vnodes=8)
    presenter.command("add_node", name="SF", vnodes=8)
    expect(presenter.page.locator("#ring-labels .node-label")).to_have_count(6)
    assert _overlaps(presenter.page.evaluate(BOXES_JS)) == []
    assert presenter.page.locator("#ring-labels .node-label.fanned").count() >= 2
    crowded = 0
    for i in range(24):
        presenter.command("lookup", key=f"k{i}")
        expect(presenter.page.locator("#ring-lookup .pref-badge")).to_have_count(3)
        boxes = presenter.page.evaluate(BOXES_JS)
        assert _overlaps(boxes) == [], (f"k{i}", _overlaps(boxes))
        # The ranks are legible where they belong: each is the next distinct node clockwise.
        prefs = presenter.state()["state"]["derived"]["lookup"]["preference_list"]
        assert [int(r) for r, _ in boxes["ranks"]] == list(range(1, len(prefs) + 1))
        titles = presenter.page.locator("#ring-lookup .pref-badge title").evaluate_all("els => els.map(e => e.textContent)")
        assert [t.split(": ")[1].split(" ")[0] for t in titles] == prefs
        crowded += presenter.page.locator("#ring-lookup .pref-badge.fanned").count() > 0
    presenter.screenshot(shot_name(request), full_page=False)
    assert crowded, "no lookup put two ranks close enough to be fanned out: the test proves nothing"


GLIDE_SAMPLER = """() => {
    window.__glide = [];
    window.__glideDone = false;
    const t0 = performance.now();
    function frame(t) {
        const pips = {};
        document.querySelectorAll('#ring-moves .move').forEach(g => {
            const pip = g.querySelector('.pip');
            if (!pip) return;
            const r = pip.getBoundingClientRect();
            pips[g.id] = [r.x + r.width / 2, r.y + r.height / 2];
        });
        window.__glide.push({t: t, pips: pips});
        if (t - t0 < 4500) requestAnimationFrame(frame); else window.__glideDone = true;
    }
    requestAnimationFrame(frame);
}"""


GLIDE_MS = 1400  # the pip's animateMotion dur
TRAIL_ENDS_JS = """() => Object.fromEntries([...document.querySelectorAll('#ring-moves .move')].map(g => {
    const trail = g.querySelector('.trail'), m = trail.getScreenCTM(), L = trail.getTotalLength();
    const at = d => { const p = trail.getPointAtLength(d); return [m.a * p.x + m.c * p.y + m.e, m.b * p.x + m.d * p.y + m.f]; };
    return [g.id, at(0).concat(at(L))];
}))"""


def glide_report(page: Page, what: str) -> list[str]:
    """After the sampler ran through an update: the failures of the longest-travelling pips
    (at most five), each with what was measured. An empty list: they all glided."""
    page.wait_for_function("() => window.__glideDone", timeout=15_000)
    samples: list[dict[str, Any]] = page.evaluate("() => window.__glide")
    ends: dict[str, list[float]] = page.evaluate(TRAIL_ENDS_JS)
    assert ends, f"{what}: no key moved"
    ids = sorted(ends, key=lambda i: -((ends[i][2] - ends[i][0]) ** 2 + (ends[i][3] - ends[i][1]) ** 2))[:5]
    failures = []
    for pid in ids:
        x0, y0, x1, y1 = ends[pid]
        length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
        track = [(sample["t"], sample["pips"][pid]) for sample in samples if pid in sample["pips"]]
        if not track:
            failures.append(f"{what} {pid}: never drawn")
            continue
        along = [((p[0] - x0) * (x1 - x0) + (p[1] - y0) * (y1 - y0)) / length**2 for _, p in track]
        off = max(abs((x1 - x0) * (y0 - p[1]) - (x0 - p[0]) * (y1 - y0)) / length for _, p in track)
        # Time-aware: a loaded machine draws few frames, but each step is as long as the time it
        # took (the glide is 1.4 s of SMIL time); a jump covers most of the trail in one frame.
        jumps = [(f"{b - a:.2f} of the trail in {tb - ta:.0f} ms") for (ta, _), (tb, _), a, b
                 in zip(track, track[1:], along, along[1:]) if b - a > 2 * (tb - ta) / GLIDE_MS + 0.1]
        last_home = max((t for (t, _), f in zip(track, along) if f < 0.05), default=None)
        first_there = min((t for (t, _), f in zip(track, along) if f > 0.95), default=None)
        travel = None if last_home is None or first_there is None else first_there - last_home
        between = sum(0.05 <= f <= 0.95 for f in along)
        seen = (f"{what} {pid}: {len(track)} frames over {track[-1][0] - track[0][0]:.0f} ms, trail {length:.0f}px, "
                f"left the key {'never' if last_home is None else f'{last_home - track[0][0]:.0f} ms'} after it appeared, "
                f"travelled {'-' if travel is None else f'{travel:.0f} ms'} ({between} frames on the way), "
                f"ended at {along[-1]:.2f} of the way, at most {off:.1f}px off its trail, jumps: {jumps or 'none'}")
        print(seen)
        if length <= 30:
            continue  # too short to tell a glide from a jump
        if off >= 4 or min(along) < -0.03:
            failures.append("drawn off its trail: " + seen)
        elif along[-1] < 0.97:
            failures.append("never reached its owner: " + seen)
        elif jumps or not between or travel is None or travel < 0.7 * GLIDE_MS:
            failures.append("jumped instead of gliding: " + seen)
    return failures


def test_moved_keys_glide_to_their_new_owner(people: People, request: pytest.FixtureRequest) -> None:
    """On every membership change (a join, a removal, a heavy join), on the presenter's screen and
    a student's, each moving key's pip travels from the key to its new owner's vnode across many
    animation frames: it neither sits still and jumps, nor waits anywhere else."""
    presenter = people("presenter", viewport={"width": 1920, "height": 1080})
    code = presenter.create_room()
    student = people("student", viewport={"width": 1366, "height": 768})
    student.open_room(code)
    presenter.command("add_random_keys", count=200)
    changes = [
        ("add E", lambda: presenter.command("add_node", name="E", vnodes=8)),
        ("remove E", lambda: presenter.page.locator("#nodes button[aria-label='Remove node E']").click()),
        ("add F with 24 vnodes", lambda: presenter.command("add_node", name="F", vnodes=24)),
    ]
    failures = []
    for what, change in changes:
        before = presenter.seq()
        for person in (presenter, student):
            person.page.evaluate(GLIDE_SAMPLER)
        change()
        for person in (presenter, student):
            person.wait_seq(before + 1)
            failures += glide_report(person.page, f"{person.name}, {what}:")
    presenter.screenshot(shot_name(request), full_page=False)
    assert not failures, "\n".join(failures)


def test_node_labels_are_the_keyboards_way_to_remove_a_node(people: People, request: pytest.FixtureRequest) -> None:
    """Tab reaches each node label on the ring (and no vnode or key dot: a few stops, not
    hundreds); Enter or Space on it removes that node. Vnodes and key dots still act on a click."""
    presenter = people("presenter")
    presenter.create_room()
    page = presenter.page
    stops: list[str] = []
    ring_width = None
    for _ in range(80):
        page.keyboard.press("Tab")
        where = page.evaluate("""() => { const a = document.activeElement;
            return a && a.closest('#ring') ? (a.getAttribute('aria-label') || a.tagName) : (a && a.closest('#nodes') ? 'NODES' : ''); }""")
        if where:
            stops.append(where)
        if where == "Remove node A":  # the focus shows: its circle's outline thickens
            ring_width = page.evaluate("() => getComputedStyle(document.activeElement.querySelector('circle')).strokeWidth")
        if where == "NODES" or len(stops) > 10:
            break
    assert stops[:4] == [f"Remove node {n}" for n in INITIAL_NODES], stops
    assert ring_width == "8px", ring_width
    # Shift+Tab back onto B's label, Enter: B is gone.
    page.locator('#ring-labels [data-node="B"]').focus()
    expect(page.locator('#ring-labels [data-node="B"]')).to_have_attribute("role", "button")
    before = presenter.seq()
    page.keyboard.press("Enter")
    presenter.wait_seq(before + 1)
    assert node_names(presenter) == ["A", "C", "D"]
    page.locator('#ring-labels [data-node="C"]').focus()
    before = presenter.seq()
    page.keyboard.press(" ")
    presenter.wait_seq(before + 1)
    assert node_names(presenter) == ["A", "D"]
    assert page.evaluate("() => document.querySelectorAll('#ring .vnode[tabindex], #ring .key[tabindex]').length") == 0
    # A click on a key dot looks it up (data-send="lookup").
    dot = in_view_hittable(page, "#ring-keys circle")
    key = dot.get_attribute("data-key")
    before = presenter.seq()
    dot.click()
    presenter.wait_seq(before + 1)
    assert presenter.state()["state"]["lookup"] == key
    presenter.screenshot(shot_name(request), full_page=False)


def test_projected_ring_text_is_at_least_20px(people: People, request: pytest.FixtureRequest) -> None:
    """Presenting to a class at 1920x1080 (projection mode, the join panel beside the picture):
    every label on the ring, ranks included, is at least 20 px on the screen."""
    person = people("projector", viewport={"width": 1920, "height": 1080})
    person.create_room()
    person.page.locator("button[data-send=present]").first.click()
    expect(person.page.locator("body")).to_have_class(re.compile(r"\bprojection\b"))
    open_controls(person)
    person.command("lookup", key="user3")
    close_controls(person)
    expect(person.page.locator("#ring-lookup .pref-badge")).to_have_count(3)
    sizes: list[list[Any]] = person.page.evaluate(
        """() => [...document.querySelectorAll('#ring text')].filter(t => t.getBoundingClientRect().width > 0).map(t =>
               [t.textContent, parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a])""")
    assert len(sizes) >= 4 + 4 + 3, sizes  # ticks, node labels, ranks
    small = [(text, round(px, 1)) for text, px in sizes if px < 20]
    ring = person.page.locator("#ring").bounding_box()
    person.screenshot(shot_name(request), full_page=False)
    assert not small, f"ring drawn {ring['width']:.0f}x{ring['height']:.0f}px; text under 20px: {small}"


def test_add_node_fields_follow_the_room_and_long_names_are_refused(people: People, request: pytest.FixtureRequest) -> None:
    presenter = people("presenter")
    presenter.create_room()
    page = presenter.page
    add_vnodes = presenter.form("add_node").locator("input[name=vnodes]")
    all_vnodes = presenter.form("set_vnodes").locator("input[name=vnodes]")
    expect(add_vnodes).to_have_value("8")
    expect(presenter.form("add_node").locator("input[name=name]")).to_have_attribute("placeholder", "E")

    presenter.command("set_vnodes", vnodes=64)
    expect(add_vnodes).to_have_value("64")
    expect(all_vnodes).to_have_value("64")
    # A number typed for one node is used for that node, then the field is the room's again.
    presenter.command("add_node", name="E", vnodes=16)
    assert {n["name"]: n["vnodes"] for n in presenter.state()["state"]["nodes"]}["E"] == 16
    expect(add_vnodes).to_have_value("64")
    expect(presenter.form("add_node").locator("input[name=name]")).to_have_attribute("placeholder", "F")
    presenter.command("add_node")
    assert presenter.state()["state"]["nodes"][-1] == {"name": "F", "vnodes": 64, "slot": 5}
    # Another window (a co-presenter) changes the default: this window's fields follow.
    laptop = people("presenter-laptop", storage_state=presenter.context.storage_state())
    laptop.open_room(presenter.code())
    seq = laptop.command("set_vnodes", vnodes=32)
    presenter.wait_seq(seq)
    expect(add_vnodes).to_have_value("32")
    expect(all_vnodes).to_have_value("32")
    # So do the replication factor and the keys per tick (selects, whose "selected" a morph
    # alone would not move).
    for name, mine, value in (("replicas", "2", "5"), ("rate", "100", "20")):
        ours = page.locator(f"select[name={name}]")
        ours.evaluate("e => { const d = e.closest('details'); if (d) d.open = true; }")
        seq = presenter.seq()
        ours.select_option(mine)  # chosen by hand here first: the page's own choice must still follow
        laptop.wait_seq(presenter.wait_seq(seq + 1))
        expect(laptop.page.locator(f"select[name={name}]")).to_have_value(mine)
        theirs = laptop.page.locator(f"select[name={name}]")
        theirs.evaluate("e => { const d = e.closest('details'); if (d) d.open = true; }")
        seq = laptop.seq()
        theirs.select_option(value)
        presenter.wait_seq(laptop.wait_seq(seq + 1))
        expect(page.locator(f"select[name={name}]")).to_have_value(value)
    assert (presenter.state()["state"]["replicas"], presenter.state()["state"]["stream_rate"]) == (5, 20)

    # A name one character too long: refused with the reason, the field keeps every character.
    long_name = "N" * 41
    before = presenter.seq()
    presenter.submit("add_node", name=long_name)
    expect(page.locator("#flash")).to_contain_text("at most 40 characters")
    expect(presenter.form("add_node").locator("input[name=name]")).to_have_value(long_name)
    assert presenter.seq() == before and len(presenter.state()["state"]["nodes"]) == 6
    presenter.submit("add_key", key="k" * 41)
    expect(page.locator("#flash")).to_contain_text("at most 40 characters")
    presenter.screenshot(shot_name(request), full_page=False)
