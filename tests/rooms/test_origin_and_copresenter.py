"""The WebSocket Origin check (scheme, host and port), and revoking co-presenter links."""
from __future__ import annotations

import re

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.rooms.models import Room, RoomEvent
from distviz.asgi import application

from .conftest import ORIGIN
from .wire import TIMEOUT, frame, open_socket, reply, update

pytestmark = pytest.mark.django_db(transaction=True)


async def accepted(code: str, headers: list[tuple[bytes, bytes]]) -> bool:
    comm = WebsocketCommunicator(application, f"/ws/r/{code}/", headers=headers)
    try:
        connected, _ = await comm.connect(timeout=TIMEOUT)
        return connected
    finally:
        await comm.disconnect()


def h(host: str, origin: str | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return headers


@pytest.fixture
def code(presenter_client) -> str:
    return presenter_client[1]


@pytest.mark.parametrize(("host", "origin", "ok"), [
    ("127.0.0.1:8000", "http://127.0.0.1:8000", True),
    ("localhost:8000", "http://localhost:8000", True),
    ("localhost", "http://localhost", True),
    ("localhost", "http://localhost:80", True),  # the scheme's default port, written out
    ("127.0.0.1:8000", "http://127.0.0.1:8001", False),  # another port on the same host: another site
    ("127.0.0.1:8000", "http://127.0.0.1", False),
    ("localhost", "http://localhost:8080", False),
    ("127.0.0.1:8000", "https://127.0.0.1:8000", False),  # the other scheme
    ("127.0.0.1:8000", "http://localhost:8000", False),  # another host
    ("127.0.0.1:8000", "http://evil.example:8000", False),
    ("evil.example:8000", "http://evil.example:8000", False),  # a host not allowed
    ("127.0.0.1:8000", None, False),  # no Origin at all
    ("127.0.0.1:8000", "null", False),
    ("127.0.0.1:8000", "http://127.0.0.1:99999", False),
], ids=lambda v: str(v))
async def test_origin_is_compared_by_scheme_host_and_port(code, host, origin, ok):
    assert await accepted(code, h(host, origin)) is ok


async def test_a_secure_socket_accepts_only_https_origins(code):
    async def over_wss(origin: str) -> bool:
        comm = WebsocketCommunicator(application, f"/ws/r/{code}/", headers=h("localhost:8443", origin))
        comm.scope["scheme"] = "wss"
        try:
            return (await comm.connect(timeout=TIMEOUT))[0]
        finally:
            await comm.disconnect()

    assert await over_wss("https://localhost:8443")
    assert not await over_wss("http://localhost:8443")


async def test_public_url_and_trusted_origins_are_allowed_exactly(code, settings):
    settings.DISTVIZ_PUBLIC_URL = "http://192.0.2.2:8000"
    settings.CSRF_TRUSTED_ORIGINS = ["https://teach.example.org", "https://*.campus.example"]
    # The proxy in front may pass on its own Host; the page's origin is what matters.
    assert await accepted(code, h("127.0.0.1:8000", "http://192.0.2.2:8000"))
    assert not await accepted(code, h("127.0.0.1:8000", "http://192.0.2.2:8001"))
    assert not await accepted(code, h("127.0.0.1:8000", "https://192.0.2.2:8000"))
    assert await accepted(code, h("127.0.0.1:8000", "https://teach.example.org"))
    assert not await accepted(code, h("127.0.0.1:8000", "http://teach.example.org"))
    assert not await accepted(code, h("127.0.0.1:8000", "https://teach.example.org:444"))
    assert await accepted(code, h("127.0.0.1:8000", "https://room7.campus.example"))
    assert not await accepted(code, h("127.0.0.1:8000", "https://campus.example.evil.org"))


async def test_without_a_host_header_only_an_allowed_host_on_its_default_port(code):
    assert await accepted(code, [ORIGIN])  # http://localhost: what the other tests send
    assert not await accepted(code, [(b"origin", b"http://localhost:8001")])
    assert not await accepted(code, [(b"origin", b"http://evil.example")])


# -- co-presenter links revoke earlier claims ------------------------------------------------------

LINK = re.compile(r"/r/([A-Z0-9]+)/claim/#([A-Za-z0-9_-]+)")


def new_link(client: Client, code: str) -> str:
    response = client.post(f"/r/{code}/copresenter/")
    assert response.status_code == 200
    return LINK.search(response.content.decode()).group(2)


def role_on_page(client: Client, code: str) -> str:
    return re.search(r'data-role="([a-z]+)"', client.get(f"/r/{code}/").content.decode()).group(1)


def headers_of(client: Client) -> list[tuple[bytes, bytes]]:
    return [ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


def claim(code: str, key: str) -> Client:
    browser = Client()
    assert browser.post(f"/r/{code}/claim/", {"key": key}).status_code == 302
    return browser


def test_a_new_link_revokes_every_earlier_claim_but_not_the_creator(transactional_db):
    teacher = Client()
    code = teacher.post("/new/hashring/")["Location"].strip("/").split("/")[-1]
    first, second = claim(code, new_link(teacher, code)), None
    second = claim(code, new_link(teacher, code))  # issuing this one revoked `first`
    assert role_on_page(first, code) == "participant"
    assert role_on_page(second, code) == "presenter"
    assert first.post(f"/r/{code}/copresenter/").status_code == 403
    third = claim(code, new_link(teacher, code))
    assert [role_on_page(b, code) for b in (teacher, first, second, third)] == ["presenter", "participant", "participant", "presenter"]


def test_a_co_presenter_who_passes_the_link_on_keeps_presenting(transactional_db):
    teacher = Client()
    code = teacher.post("/new/hashring/")["Location"].strip("/").split("/")[-1]
    helper = claim(code, new_link(teacher, code))
    colleague = claim(code, new_link(helper, code))
    assert [role_on_page(b, code) for b in (teacher, helper, colleague)] == ["presenter"] * 3
    new_link(teacher, code)
    assert [role_on_page(b, code) for b in (teacher, helper, colleague)] == ["presenter", "participant", "participant"]


async def test_an_open_socket_of_a_revoked_co_presenter_loses_presenter_rights_at_its_next_command(presenter_client):
    teacher, code = presenter_client
    helper = await database_sync_to_async(lambda: claim(code, new_link(teacher, code)))()
    async with open_socket(code, headers_of(helper)) as socket:
        await socket.send_to(text_data=frame({"type": "add_key", "key": "before"}))
        assert "seq" in await update(socket)  # still presenting
        await database_sync_to_async(new_link)(teacher, code)  # the teacher hands out a new link
        await socket.send_to(text_data=frame({"type": "add_key", "key": "after"}, request_id="after-1"))
        answer = await reply(socket)
        assert answer["command_id"] == "after-1"
        assert "replaced by a newer one" in answer["error"]
        await socket.send_to(text_data=frame({"type": "add_node", "name": "Q"}))
        assert (await reply(socket))["error"].startswith("Only the presenter can do that.")  # a participant now
    keys = await database_sync_to_async(lambda: list(RoomEvent.objects.filter(room__code=code, kind="key_added")
                                                     .values_list("data__key", flat=True)))()
    assert keys == ["before"]
    assert await database_sync_to_async(lambda: Room.objects.get(code=code).seq)() == 2
