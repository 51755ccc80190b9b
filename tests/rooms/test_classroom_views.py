"""The classroom pages: co-presenter links, claiming them, students' names, the join panel."""
from __future__ import annotations

import base64
import re

import pytest
import qrcode
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils.html import escape

from apps.rooms.models import Room, RoomEvent
from apps.rooms.panels import room_bar_html
from apps.rooms.registry import get
from apps.rooms.services import CommandRejected, hash_key, room_command_apply, room_create, room_view

from .conftest import ORIGIN, PRESENTER, created_as_presenter
from .wire import frame, open_socket, reply, update

pytestmark = pytest.mark.django_db

MARKUP = '"><svg onload=alert(1)>'  # 23 characters: a name the form accepts
LINK = re.compile(r"http://testserver/r/([A-Z0-9]+)/claim/#([A-Za-z0-9_-]+)")


def new_room(client: Client) -> str:
    return client.post("/new/hashring/")["Location"].strip("/").split("/")[-1]


def copresenter_key(client: Client, code: str) -> str:
    response = client.post(f"/r/{code}/copresenter/")
    assert response.status_code == 200
    match = LINK.search(response.content.decode())
    assert match and match.group(1) == code
    return match.group(2)


def role_on_page(client: Client, code: str, query: str = "") -> str:
    match = re.search(r'data-role="([a-z]+)"', client.get(f"/r/{code}/{query}").content.decode())
    assert match
    return match.group(1)


def presenter_rooms(client: Client) -> list[str]:
    """The rooms this browser presents by its session: those it created and those whose
    co-presenter link it claimed (still current or not: role_on_page says which count)."""
    return client.session.get("presenter_rooms", []) + list(client.session.get("copresenter", {}))


@pytest.fixture
def teacher() -> Client:
    return Client()


@pytest.fixture
def code(teacher: Client) -> str:
    return new_room(teacher)


# -- co-presenter links ----------------------------------------------------------------------------

def test_copresenter_link_carries_a_key_of_at_least_128_bits(teacher, code):
    key = copresenter_key(teacher, code)
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) * 8 >= 128


def test_copresenter_link_is_new_each_time(teacher, code):
    assert copresenter_key(teacher, code) != copresenter_key(teacher, code)


def test_copresenter_page_is_not_cached_and_sends_no_referrer(teacher, code):
    response = teacher.post(f"/r/{code}/copresenter/")
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_copresenter_key_is_stored_only_as_a_hash(teacher, code):
    key = copresenter_key(teacher, code)
    room = Room.objects.get(code=code)
    assert room.presenter_key_hash == hash_key(key)
    stored = [str(v) for v in Room.objects.filter(code=code).values().get().values()]
    stored += [str(e) for e in RoomEvent.objects.filter(room=room).values_list("data", "narration")]
    assert not [v for v in stored if key in v]


def test_copresenter_key_never_appears_on_the_room_page_or_in_its_json(teacher, code):
    key = copresenter_key(teacher, code)
    teacher.post(f"/r/{code}/name/", {"name": "Teacher"})
    for url in (f"/r/{code}/", f"/r/{code}/?as=viewer", f"/r/{code}/events.json", f"/r/{code}/state.json"):
        for who in (teacher, Client()):
            assert key not in who.get(url).content.decode(), url


def test_copresenter_link_is_refused_to_a_participant(code):
    before = Room.objects.get(code=code).presenter_key_hash
    student = Client()
    student.get(f"/r/{code}/")
    response = student.post(f"/r/{code}/copresenter/")
    assert response.status_code == 403
    assert not LINK.search(response.content.decode())
    assert Room.objects.get(code=code).presenter_key_hash == before


def test_copresenter_link_is_refused_to_the_presenter_of_another_room(teacher, code):
    other_teacher = Client()
    new_room(other_teacher)
    assert other_teacher.post(f"/r/{code}/copresenter/").status_code == 403


def test_copresenter_link_needs_a_post(teacher, code):
    assert teacher.get(f"/r/{code}/copresenter/").status_code == 405


def test_copresenter_link_for_an_unknown_room_is_404(teacher):
    assert teacher.post("/r/NOROOM/copresenter/").status_code == 404


# -- claiming ------------------------------------------------------------------------------------

def test_claim_with_the_right_key_makes_the_browser_a_presenter(teacher, code):
    key = copresenter_key(teacher, code)
    second = Client()
    assert role_on_page(second, code) == "participant"
    response = second.post(f"/r/{code}/claim/", {"key": key})
    assert (response.status_code, response["Location"]) == (302, f"/r/{code}/")
    assert presenter_rooms(second) == [code]
    assert role_on_page(second, code) == "presenter"
    assert second.post(f"/r/{code}/copresenter/").status_code == 200  # a co-presenter can pass it on


def test_claim_with_a_wrong_key_is_refused_and_changes_nothing(teacher, code):
    key = copresenter_key(teacher, code)
    second = Client()
    second.get(f"/r/{code}/")
    for wrong in ("", "x", key[:-1], key + "x", key.upper() if key.upper() != key else key.lower()):
        response = second.post(f"/r/{code}/claim/", {"key": wrong})
        assert response.status_code == 403, wrong
        assert "not valid" in response.content.decode()
    assert presenter_rooms(second) == []
    assert role_on_page(second, code) == "participant"
    assert second.post(f"/r/{code}/claim/", {"key": key}).status_code == 302  # the right one still works


def test_claim_without_a_key_field_is_refused(teacher, code):
    copresenter_key(teacher, code)
    assert Client().post(f"/r/{code}/claim/").status_code == 403


def test_claim_with_an_older_key_is_refused_once_a_new_link_is_made(teacher, code):
    old = copresenter_key(teacher, code)
    new = copresenter_key(teacher, code)
    late = Client()
    assert late.post(f"/r/{code}/claim/", {"key": old}).status_code == 403
    assert presenter_rooms(late) == []
    assert late.post(f"/r/{code}/claim/", {"key": new}).status_code == 302


def test_claim_of_one_rooms_key_does_not_open_another_room(teacher, code):
    key = copresenter_key(teacher, code)
    other = new_room(Client())
    second = Client()
    assert second.post(f"/r/{other}/claim/", {"key": key}).status_code == 403
    assert presenter_rooms(second) == []


def test_claim_works_with_the_key_the_room_was_created_with(db):
    room, key = room_create(concept="hashring")
    browser = Client()
    assert browser.post(f"/r/{room.code}/claim/", {"key": key}).status_code == 302
    assert presenter_rooms(browser) == [room.code]


def test_claim_page_holds_no_key(teacher, code):
    key = copresenter_key(teacher, code)
    response = Client().get(f"/r/{code}/claim/")
    html = response.content.decode()
    assert response.status_code == 200
    assert key not in html
    assert '<input type="hidden" name="key" id="claim-key">' in html  # filled in by claim.js from the fragment
    assert "/static/distviz/claim.js" in html


def test_claim_page_of_an_unknown_room_is_404():
    assert Client().get("/r/NOROOM/claim/").status_code == 404


@pytest.mark.django_db(transaction=True)
async def test_claimed_browser_is_presenter_on_the_websocket(presenter_client):
    teacher, code = presenter_client
    key = await sync_to_async(copresenter_key)(teacher, code)
    second = Client()
    assert (await sync_to_async(second.post)(f"/r/{code}/claim/", {"key": key})).status_code == 302
    headers = [ORIGIN, (b"cookie", f"sessionid={second.cookies['sessionid'].value}".encode())]
    async with open_socket(code, headers) as comm:
        await comm.send_to(text_data=frame({"type": "add_node", "name": "E"}))
        assert (await update(comm))["seq"] == 2


@pytest.mark.django_db(transaction=True)
async def test_refused_claim_leaves_the_websocket_a_participant(presenter_client):
    _teacher, code = presenter_client
    second = Client()
    assert (await sync_to_async(second.post)(f"/r/{code}/claim/", {"key": "guess"})).status_code == 403
    await sync_to_async(second.get)(f"/r/{code}/")
    headers = [ORIGIN, (b"cookie", f"sessionid={second.cookies['sessionid'].value}".encode())]
    async with open_socket(code, headers) as comm:
        await comm.send_to(text_data=frame({"type": "add_node", "name": "E"}))
        assert "Only the presenter" in (await reply(comm))["error"]


# -- a student's name ------------------------------------------------------------------------------

def names(client: Client) -> dict[str, str]:
    return client.session.get("names", {})


def test_room_name_stores_the_name_for_this_room(code):
    student = Client()
    response = student.post(f"/r/{code}/name/", {"name": "Alice"})
    assert (response.status_code, response["Location"]) == (302, f"/r/{code}/")
    assert names(student) == {code: "Alice"}
    assert student.session["pid"]


def test_room_name_tidies_whitespace(code):
    student = Client()
    student.post(f"/r/{code}/name/", {"name": "  Ada \t  Lovelace \n"})
    assert names(student) == {code: "Ada Lovelace"}


def test_room_name_accepts_24_characters(code):
    student = Client()
    student.post(f"/r/{code}/name/", {"name": "x" * 24})
    assert names(student) == {code: "x" * 24}


@pytest.mark.parametrize(("name", "message"), [
    ("", "Give a name: it cannot be empty or only spaces."),
    ("   ", "Give a name: it cannot be empty or only spaces."),
    ("x" * 25, "That name has 25 characters; a name has at most 24. Please shorten it."),
    ("Ali#ce", "A name cannot contain #."),
    ("#1", "A name cannot contain #."),
    ("bell\x07", "A name is printable characters only."),
    ("nul\x00l", "A name is printable characters only."),
    ("zero\u200bwidth", "A name is printable characters only."),
    ("rtl\u202eevil", "A name is printable characters only."),
    ("esc\x1b[31m", "A name is printable characters only."),
], ids=["empty", "blank", "25-chars", "hash", "leading-hash", "control", "nul", "zero-width", "bidi-override", "escape"])
def test_room_name_refuses_a_bad_name_with_a_message_saying_why(code, name, message):
    student = Client()
    response = student.post(f"/r/{code}/name/", {"name": name})
    assert (response.status_code, response["Location"]) == (302, f"/r/{code}/")
    assert names(student) == {}
    page = student.get(f"/r/{code}/").content.decode()
    assert f'<p id="name-error" class="flash flash-error" role="alert">{escape(message)}</p>' in page
    assert student.get(f"/r/{code}/").content.decode().count('id="name-error"') == 0  # shown once


def test_room_name_too_long_is_refused_never_cut(code):
    student = Client()
    long_name = "Maximiliana Wolkenstein-Ro"  # 26 characters
    page = student.post(f"/r/{code}/name/", {"name": long_name}, follow=True).content.decode()
    assert names(student) == {}
    assert "That name has 26 characters; a name has at most 24. Please shorten it." in page
    # The form comes back with what they typed, whole, to shorten it themselves; no maxlength
    # attribute that would make the browser cut a pasted name without a word.
    field = re.search(r'<input name="name"[^>]*>', page).group(0)
    assert f'value="{long_name}"' in field and "maxlength" not in field
    assert long_name[:24] not in str(names(student))


def test_room_name_with_markup_is_kept_and_escaped_on_the_page(code):
    student = Client()
    student.post(f"/r/{code}/name/", {"name": '<b>"Bo"</b>'})
    assert names(student) == {code: '<b>"Bo"</b>'}
    page = student.get(f"/r/{code}/").content.decode()
    assert "<b>\"Bo\"</b>" not in page and "<b>&quot;Bo&quot;</b>" not in page
    assert 'data-name="&lt;b&gt;&quot;Bo&quot;&lt;/b&gt;"' in page


def test_room_page_round_key_field_has_no_maxlength(code):
    page = Client().get(f"/r/{code}/").content.decode()
    assert re.findall(r'<input name="key"[^>]*>', page) and not [
        f for f in re.findall(r'<input name="(?:key|name)"[^>]*>', page) if "maxlength" in f]


def test_room_name_keeps_a_separate_name_per_room(code):
    other = new_room(Client())
    student = Client()
    student.post(f"/r/{code}/name/", {"name": "Alice"})
    student.post(f"/r/{other}/name/", {"name": "Al"})
    assert names(student) == {code: "Alice", other: "Al"}


def test_room_name_keeps_the_pid_when_renaming(code):
    student = Client()
    student.get(f"/r/{code}/")
    pid = student.session["pid"]
    student.post(f"/r/{code}/name/", {"name": "Alice"})
    student.post(f"/r/{code}/name/", {"name": "Alicia"})
    assert (student.session["pid"], names(student)) == (pid, {code: "Alicia"})


def test_room_name_needs_a_post(code):
    assert Client().get(f"/r/{code}/name/").status_code == 405


def test_room_name_for_an_unknown_room_is_404():
    assert Client().post("/r/NOROOM/name/", {"name": "Alice"}).status_code == 404


def test_room_page_shows_the_students_name(code):
    student = Client()
    student.post(f"/r/{code}/name/", {"name": "Alice"})
    assert 'You are <strong id="my-name" data-name="Alice">Alice</strong>.' in student.get(f"/r/{code}/").content.decode()


def test_room_page_shows_a_name_with_markup_escaped(code):
    student = Client()
    student.post(f"/r/{code}/name/", {"name": MARKUP})
    assert names(student) == {code: MARKUP}
    html = student.get(f"/r/{code}/").content.decode()
    assert "<svg onload" not in html
    escaped = "&quot;&gt;&lt;svg onload=alert(1)&gt;"
    assert f'You are <strong id="my-name" data-name="{escaped}">{escaped}</strong>.' in html


def test_room_page_before_a_name_asks_for_one_and_gives_a_pid(code):
    student = Client()
    html = student.get(f"/r/{code}/").content.decode()
    assert f'action="/r/{code}/name/"' in html
    assert len(student.session["pid"]) >= 16


# -- the join panel, roles on the page ----------------------------------------------------------

def qr_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules the QR path draws (runs "M<x> <y>h<n>v1h-<n>z")."""
    path = re.search(r'<path d="([^"]*)" class="qr-fg"/>', svg)
    assert path
    dark = set()
    for x, y, n in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", path.group(1)):
        dark |= {(int(x) + i, int(y)) for i in range(int(n))}
    return dark


def test_room_page_has_the_join_code_and_url(teacher, code):
    html = teacher.get(f"/r/{code}/").content.decode()
    assert f'<p class="join-code" aria-label="Room code">{code}</p>' in html
    assert f"http://testserver/r/{code}/" in html


def test_room_page_has_a_qr_code_of_the_join_url(teacher, code):
    html = teacher.get(f"/r/{code}/").content.decode()
    svg = re.search(r'<svg class="qr".*?</svg>', html)
    assert svg
    assert f'aria-label="QR code to join room {code}"' in svg.group(0)
    expected = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    expected.add_data(f"http://testserver/r/{code}/")
    expected.make(fit=True)
    matrix = expected.get_matrix()
    assert qr_modules(svg.group(0)) == {(x, y) for y, row in enumerate(matrix) for x, dark in enumerate(row) if dark}


def test_the_join_panel_and_qr_code_advertise_the_public_address(teacher, code, settings):
    """`make classroom` sets DISTVIZ_PUBLIC_URL to the laptop's network address: a presenter who
    opened the room on 127.0.0.1 still shows students an address their phones can reach."""
    settings.DISTVIZ_PUBLIC_URL = "http://192.0.2.7:8000"
    html = teacher.get(f"/r/{code}/", HTTP_HOST="127.0.0.1").content.decode()
    assert f"<strong>http://192.0.2.7:8000/r/{code}/</strong>" in html
    assert "127.0.0.1" not in html and "testserver" not in html
    svg = re.search(r'<svg class="qr".*?</svg>', html)
    assert svg
    expected = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    expected.add_data(f"http://192.0.2.7:8000/r/{code}/")
    expected.make(fit=True)
    matrix = expected.get_matrix()
    assert qr_modules(svg.group(0)) == {(x, y) for y, row in enumerate(matrix) for x, dark in enumerate(row) if dark}


def test_room_page_as_viewer_is_read_only(code):
    projector = Client()
    html = projector.get(f"/r/{code}/?as=viewer").content.decode()
    assert 'data-role="viewer"' in html
    assert re.search(rf'hx-ws:connect="/ws/r/{code}/\?seq=\d+&amp;as=viewer"', html)


def test_room_page_as_viewer_does_not_demote_the_presenter(teacher, code):
    assert role_on_page(teacher, code, "?as=viewer") == "presenter"


def test_room_page_as_anything_else_is_a_participant(code):
    assert role_on_page(Client(), code, "?as=presenter") == "participant"


# -- presenting to a class, view-only, the room bar ------------------------------------------------

def bar_of(code: str) -> str:
    return room_bar_html(room_view(Room.objects.get(code=code)), get("hashring"))


def test_present_and_stop_presenting_set_the_classroom_flag(code):
    applied = room_command_apply(code=code, actor=PRESENTER, command={"type": "present"})
    assert (applied.events[0].kind, Room.objects.get(code=code).classroom) == ("classroom_set", True)
    assert 'data-classroom="1"' in bar_of(code)
    room_command_apply(code=code, actor=PRESENTER, command={"type": "stop_presenting"})
    assert (Room.objects.get(code=code).classroom, 'data-classroom="0"' in bar_of(code)) == (False, True)


@pytest.mark.parametrize(("command", "message"), [
    ({"type": "stop_presenting"}, "not being presented"),
    ({"type": "view_only", "on": False}, "already open to participants"),
])
def test_classroom_switches_refuse_what_is_already_so(code, command, message):
    with pytest.raises(CommandRejected, match=message):
        room_command_apply(code=code, actor=PRESENTER, command=command)


def test_present_twice_and_view_only_twice_are_refused(code):
    for command, message in (({"type": "present"}, "already presented"), ({"type": "view_only", "on": "true"}, "already view-only")):
        room_command_apply(code=code, actor=PRESENTER, command=command)
        with pytest.raises(CommandRejected, match=message):
            room_command_apply(code=code, actor=PRESENTER, command=command)


def test_view_only_sets_the_flag_the_bar_shows(code):
    assert 'data-view-only="0"' in bar_of(code)
    applied = room_command_apply(code=code, actor=PRESENTER, command={"type": "view_only", "on": True})
    assert applied.events[0].narration == "The room is view-only: students follow but cannot act."
    assert 'data-view-only="1"' in bar_of(code)
    room_command_apply(code=code, actor=PRESENTER, command={"type": "view_only", "on": "false"})
    assert 'data-view-only="0"' in bar_of(code)


def test_room_bar_controls_are_all_marked_presenter_only(code):
    controls = re.findall(r"<(?:button|input)\b[^>]*>", bar_of(code))
    assert controls
    for tag in controls:
        classes = re.search(r'class="([^"]*)"', tag)
        assert classes and "presenter-only" in classes.group(1).split(), tag


@pytest.mark.parametrize("concept", ["hashring", "log-partitions", "lock-quorums"])
def test_room_pages_show_no_template_comment_text(transactional_db, concept):
    # Django's {# #} is one line only: a comment over two lines would be printed on the page.
    _presenter, code = created_as_presenter(concept)
    for who in (_presenter, Client()):
        page = who.get(f"/r/{code}/").content.decode()
        assert "{#" not in page and "#}" not in page
