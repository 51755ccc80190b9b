"""Security: roles are enforced by the service, pages carry a strict policy, hostile input is
refused without changing anything or growing the server."""
from __future__ import annotations

import gc
import itertools
import json
import os
import re
import subprocess
import sys
import tracemalloc
import types
from html.parser import HTMLParser
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client

from apps.rooms import consumers
from apps.rooms.consumers import RoomConsumer
from apps.rooms.models import Room, RoomEvent
from apps.rooms.services import CommandRejected, room_command_apply, room_create

from .conftest import ALICE, ORIGIN, OWN_KEY, PRESENTER, VIEWER, room_log_size as log_size
from .wire import astudent, frame, open_socket, quiet, replies, reply, update

MARKUP = '"><svg onload=alert(1)>'

PRESENTER_COMMANDS = [
    {"type": "add_node", "name": "E"},
    {"type": "remove_node", "name": "A"},
    {"type": "play"},
    {"type": "rewind", "to_seq": 1},
    {"type": "lesson_start", "lesson": "01-why-modulo-hurts"},
    {"type": "lesson_next"},
    {"type": "round_open", "kind": "own_key"},
    {"type": "round_close"},
    {"type": "view_only", "on": True},
    {"type": "present"},
    {"type": "set_vnodes", "vnodes": 1},
    {"type": "clear_keys"},
    {"type": "load_scene", "nodes": ["X"]},
    {"type": "speed", "speed": 8},
]
ids = [c["type"] for c in PRESENTER_COMMANDS]


# -- roles, enforced by the service --------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("command", PRESENTER_COMMANDS, ids=ids)
@pytest.mark.parametrize("round_open", [False, True], ids=["no-round", "round-open"])
def test_participant_presenter_command_is_refused_and_appends_nothing(room, apply, command, round_open):
    if round_open:
        apply(room, OWN_KEY)
    before = log_size(room)
    with pytest.raises(CommandRejected) as refused:
        apply(room, command, actor=ALICE)
    message = str(refused.value)
    assert message.startswith("Only the presenter can do that.")
    assert ("In this round you can" if round_open else "Wait for the presenter to open a round") in message
    assert log_size(room) == before


@pytest.mark.django_db
@pytest.mark.parametrize("command", PRESENTER_COMMANDS + [{"type": "add_my_key"}, {"type": "add_key", "key": "k"}],
                         ids=ids + ["add_my_key", "add_key"])
def test_viewer_is_refused_every_command_even_in_an_open_round(room, apply, command):
    apply(room, OWN_KEY)
    before = log_size(room)
    with pytest.raises(CommandRejected, match="This screen is view-only."):
        apply(room, command, actor=VIEWER)
    assert log_size(room) == before


@pytest.mark.django_db
def test_system_actor_may_only_run_the_clock(room, apply):
    from apps.rooms.services import SYSTEM

    for command in ({"type": "add_node"}, OWN_KEY, {"type": "present"}, {"type": "add_my_key"}):
        with pytest.raises(CommandRejected, match="may only tick"):
            apply(room, command, actor=SYSTEM)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", PRESENTER_COMMANDS, ids=ids)
async def test_participant_socket_is_refused_presenter_commands(presenter_client, command):
    _client, code = presenter_client
    async with open_socket(code, [ORIGIN]) as student:
        await student.send_to(text_data=frame(command))
        answer = await reply(student)
    assert answer["error"] == "Only the presenter can do that. Wait for the presenter to open a round."
    assert await database_sync_to_async(lambda: log_size(Room.objects.get(code=code)))() == (1, 1)


VIEWER_FRAMES = PRESENTER_COMMANDS + [{"type": "add_my_key"}, {"type": "add_key", "key": "k"}, {"type": "lookup", "key": "user1"}]


@pytest.mark.django_db(transaction=True)
async def test_viewer_socket_is_refused_every_command(presenter_client, unlimited_rate):
    _client, code = presenter_client
    await database_sync_to_async(room_command_apply)(code=code, actor=PRESENTER, command=OWN_KEY)
    headers, _ = await astudent(code, "Projector")
    async with open_socket(code, headers, query="?as=viewer") as projector:
        for command in VIEWER_FRAMES:
            await projector.send_to(text_data=frame(command))
        answers = await replies(projector, len(VIEWER_FRAMES))
        await projector.send_to(text_data=json.dumps({"body": {"type": "sync"}}))  # reading is allowed
        assert (await reply(projector))["full"]
    assert [a.get("error") for a in answers] == ["This screen is view-only."] * len(VIEWER_FRAMES)
    assert await database_sync_to_async(lambda: log_size(Room.objects.get(code=code)))() == (2, 2)


@pytest.mark.django_db(transaction=True)
async def test_participant_frame_cannot_choose_its_name_or_pid(presenter_client):
    _client, code = presenter_client
    await database_sync_to_async(room_command_apply)(code=code, actor=PRESENTER, command=OWN_KEY)
    headers, session = await astudent(code, "Alice")
    async with open_socket(code, headers) as alice:
        await alice.send_to(text_data=frame({"type": "add_my_key", "name": "Mallory", "pid": "someone-else", "role": "presenter"}))
        await update(alice)
        await alice.send_to(text_data=frame({"type": "add_my_key", "key": "again", "pid": "a-fresh-pid"}))
        answer = await reply(alice)
        while "error" not in answer:  # passing over the first entry's "your key" frame
            answer = await reply(alice)
    entries = await database_sync_to_async(lambda: Room.objects.get(code=code).round["entries"])()
    assert entries == [{"pid": session["pid"], "name": "Alice", "entry": "Alice"}]
    assert "already taken part" in answer["error"]


@pytest.mark.django_db(transaction=True)
async def test_a_participant_name_with_markup_is_escaped_in_every_frame(presenter_client, presenter_headers):
    _client, code = presenter_client
    await database_sync_to_async(room_command_apply)(code=code, actor=PRESENTER, command=OWN_KEY)
    headers, _ = await astudent(code, MARKUP)
    async with open_socket(code, presenter_headers) as presenter, open_socket(code, headers) as student:
        await student.send_to(text_data=frame({"type": "add_my_key"}))
        to_student = await replies(student, 2)  # the broadcast and "your key"
        to_presenter = await update(presenter)
    html = "".join(m["content"] for m in to_student) + to_presenter["content"]
    assert "<svg onload" not in html
    assert html.count("&lt;svg onload") >= 4  # narration, leaderboard, ring mark, "your key"


@pytest.mark.django_db
def test_presenter_of_one_room_is_a_participant_in_another(client):
    mine = client.post("/new/hashring/")["Location"].strip("/").split("/")[-1]
    other, _key = room_create(concept="hashring")
    assert 'data-role="presenter"' in client.get(f"/r/{mine}/").content.decode()
    assert 'data-role="participant"' in client.get(f"/r/{other.code}/").content.decode()


@pytest.mark.django_db
def test_a_tampered_session_cookie_is_not_a_presenter(client):
    code = client.post("/new/hashring/")["Location"].strip("/").split("/")[-1]
    value = client.cookies["sessionid"].value
    forged = Client()
    forged.cookies["sessionid"] = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    assert 'data-role="participant"' in forged.get(f"/r/{code}/").content.decode()


@pytest.mark.django_db
def test_a_session_signed_with_another_secret_is_not_a_presenter(client, settings):
    from django.contrib.sessions.backends.signed_cookies import SessionStore

    code = client.post("/new/hashring/")["Location"].strip("/").split("/")[-1]
    ours = settings.SECRET_KEY
    settings.SECRET_KEY = "someone-elses-secret-" + "x" * 40
    store = SessionStore()
    store["presenter_rooms"] = [code]
    store.save()
    settings.SECRET_KEY = ours
    forged = Client()
    forged.cookies["sessionid"] = store.session_key
    assert 'data-role="participant"' in forged.get(f"/r/{code}/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["claim", "name", "copresenter", "fork"])
def test_state_changing_posts_need_a_csrf_token(path):
    maker = Client()
    code = maker.post("/new/hashring/")["Location"].strip("/").split("/")[-1]
    key = re.search(r"/claim/#([A-Za-z0-9_-]+)", maker.post(f"/r/{code}/copresenter/").content.decode()).group(1)
    key_hash = Room.objects.get(code=code).presenter_key_hash
    # A page on another site posting with the browser's cookies: no CSRF token.
    browser = Client(enforce_csrf_checks=True)
    if path != "claim":
        browser.cookies["sessionid"] = maker.cookies["sessionid"].value  # the presenter's own browser
    response = browser.post(f"/r/{code}/{path}/", {"key": key, "name": "Alice"})
    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert Room.objects.get(code=code).presenter_key_hash == key_hash
    assert Room.objects.count() == 1  # no fork
    assert browser.session.get("presenter_rooms", []) == ([] if path == "claim" else [code])
    assert browser.session.get("names", {}) == {}


# -- the policy every page carries -----------------------------------------------------------------

class Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, event handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script":
            if not names.get("src"):
                self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if name == "style":
                self.found.append(f"{tag} style=")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{tag} {name}=javascript:")


def inline_bits(html: str) -> list[str]:
    parser = Inline()
    parser.feed(html)
    return parser.found


@pytest.fixture
def busy_room(client, db) -> str:
    """A presented room with a round (with an entry) and a lesson running: every panel drawn."""
    code = client.post("/new/hashring/")["Location"].strip("/").split("/")[-1]
    for command in ({"type": "present"}, OWN_KEY, {"type": "lesson_start", "lesson": "01-why-modulo-hurts"}):
        room_command_apply(code=code, actor=PRESENTER, command=command)
    room_command_apply(code=code, actor=ALICE, command={"type": "add_my_key"})
    return code


def pages(client: Client, code: str) -> dict[str, object]:
    return {
        "home": client.get("/"),
        "room (presenter)": client.get(f"/r/{code}/"),
        "room (participant)": Client().get(f"/r/{code}/"),
        "room (viewer)": Client().get(f"/r/{code}/?as=viewer"),
        "claim": Client().get(f"/r/{code}/claim/"),
        "copresenter": client.post(f"/r/{code}/copresenter/"),
        "events.json": client.get(f"/r/{code}/events.json"),
        "404": client.get("/r/NOROOM/"),
    }


def test_every_page_has_a_strict_content_security_policy(client, busy_room):
    for name, response in pages(client, busy_room).items():
        policy = response["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'", name
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, name
        assert directives["object-src"] == "'none'", name
        assert directives["frame-ancestors"] == "'none'", name


def test_every_page_refuses_to_be_framed(client, busy_room):
    for name, response in pages(client, busy_room).items():
        assert response["X-Frame-Options"] == "DENY", name
        assert response["X-Content-Type-Options"] == "nosniff", name


def test_pages_hold_nothing_the_policy_would_block(client, busy_room):
    for name, response in pages(client, busy_room).items():
        if response["Content-Type"].startswith("text/html"):
            assert inline_bits(response.content.decode()) == [], name


@pytest.mark.django_db(transaction=True)
async def test_broadcast_fragments_hold_nothing_the_policy_would_block(presenter_client, presenter_headers):
    _client, code = presenter_client
    async with open_socket(code, presenter_headers) as presenter:
        await presenter.send_to(text_data=json.dumps({"body": {"type": "sync"}}))
        frames = [await reply(presenter)]
        for command in ({"type": "present"}, OWN_KEY, {"type": "lesson_start", "lesson": "03-replication-and-preference-lists"},
                        {"type": "lesson_next"}, {"type": "add_node", "name": "Z"}, {"type": "step_back"}, {"type": "play"}):
            await presenter.send_to(text_data=frame(command))
            frames.append(await update(presenter))
    for msg in frames:
        assert inline_bits(msg["content"]) == []


# -- production settings ---------------------------------------------------------------------

def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "DISTVIZ_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "distviz.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "test-only-" + "k3y-" * 16,
        "DJANGO_ALLOWED_HOSTS": "example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    })
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=Path(settings.BASE_DIR), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({"DJANGO_SETTINGS_MODULE": "distviz.settings", "DJANGO_DEBUG": "false",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                "DISTVIZ_SECRET_KEY_FILE": str(tmp_path / "no-key-here")})
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=Path(settings.BASE_DIR), env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "No secret key" in done.stderr and "DJANGO_SECRET_KEY" in done.stderr


# -- hostile traffic does not grow the server ----------------------------------------------------

WARM_UP = 300
MEASURED = 1200
GROWTH_LIMIT = 3 * 1024 * 1024  # bytes; keeping each measured frame would hold ~9 MB


def hostile_frames() -> itertools.cycle:
    """Oversized, malformed, too deep, binary and refused-by-the-service frames, every one unique."""
    limit = settings.DISTVIZ_LIMITS["max_frame_bytes"]
    counter = itertools.count()

    def oversized():
        return {"text_data": frame({"type": "add_key", "key": f"{next(counter)}" + "x" * (limit + 4000)})}

    def not_json():
        return {"text_data": "{not json " + f"{next(counter)}" * 400}

    def too_deep():
        return {"text_data": "[" * 6000 + str(next(counter)) + "]" * 6000}

    def binary():
        return {"bytes_data": os.urandom(4096)}

    def refused():  # parsed, then refused by the service (a student asking for a presenter command)
        return {"text_data": frame({"type": "add_node", "name": f"n{next(counter)}", "padding": "p" * 9000})}

    def bad_id():
        return {"text_data": frame({"type": "add_key", "key": "k"}, request_id=f"{next(counter)}" + "i" * 100)}

    return itertools.cycle([oversized, not_json, too_deep, binary, refused, bad_id])


async def flood(comm, makers, count: int) -> None:
    for _ in range(count):
        await comm.send_to(**next(makers)())
        answer = await reply(comm)
        assert "error" in answer


@pytest.fixture
def unlimited_rate(monkeypatch):
    """A clock that jumps a second per call: the token bucket is always full, so every frame is
    parsed and answered (the rate limit has its own tests)."""
    ticks = itertools.count(1000)
    monkeypatch.setattr(consumers, "time", types.SimpleNamespace(monotonic=lambda: float(next(ticks))))


async def traced_growth(code: str) -> int:
    """Bytes still allocated after MEASURED hostile frames, compared with after the warm-up."""
    makers = hostile_frames()
    async with open_socket(code, [ORIGIN]) as comm:
        tracemalloc.start()
        try:
            await flood(comm, makers, WARM_UP)
            gc.collect()
            baseline, _peak = tracemalloc.get_traced_memory()
            await flood(comm, makers, MEASURED)
            gc.collect()
            current, _peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert await quiet(comm)
    return current - baseline


@pytest.mark.django_db(transaction=True)
async def test_hostile_frames_do_not_grow_server_memory(presenter_client, unlimited_rate):
    _client, code = presenter_client
    growth = await traced_growth(code)
    assert growth < GROWTH_LIMIT, f"{growth / 1024:.0f} KB still allocated after {MEASURED} refused frames"
    assert await database_sync_to_async(lambda: log_size(Room.objects.get(code=code)))() == (1, 1)


@pytest.mark.django_db(transaction=True)
async def test_memory_probe_catches_a_consumer_that_keeps_its_frames(presenter_client, unlimited_rate, monkeypatch):
    # The bound above means something only if a real leak would break it: keep every frame.
    _client, code = presenter_client
    kept: list[object] = []
    original = RoomConsumer.receive

    async def hoarding_receive(self, text_data=None, bytes_data=None):
        kept.append(text_data if text_data is not None else bytes_data)
        await original(self, text_data=text_data, bytes_data=bytes_data)

    monkeypatch.setattr(RoomConsumer, "receive", hoarding_receive)
    assert await traced_growth(code) > GROWTH_LIMIT
