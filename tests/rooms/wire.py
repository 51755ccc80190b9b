"""What a browser does over the room's WebSocket, for the consumer tests.

Besides the frames a command causes, every socket in a room receives *presence* frames
(``{"presence": N, "content": ...}``, no ``seq``) about 0.4 s after anyone connects or leaves.
The helpers here read past them, so a test about commands never depends on when one lands;
the presence tests read them on purpose.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any, AsyncIterator

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from distviz.asgi import application

from .conftest import ORIGIN

TIMEOUT = 5  # seconds: an upper bound on a wait, never a pause
QUIET = 0.2  # seconds in which "nothing else arrives" is checked


def frame(body: dict[str, Any], request_id: str | None = None) -> str:
    """A frame as htmx's hx-ws extension sends it."""
    return json.dumps({"headers": {"HX-Request": "true", "HX-Request-ID": request_id or str(uuid.uuid4())}, "body": body})


def is_presence(msg: dict[str, Any]) -> bool:
    return "presence" in msg


def is_my_entry(msg: dict[str, Any]) -> bool:
    """The frame only a round entry's sender receives: its own result, no seq."""
    return set(msg) == {"content"} and 'id="my-entry"' in msg["content"]


async def receive_json(comm: WebsocketCommunicator, timeout: float = TIMEOUT) -> dict[str, Any]:
    return json.loads(await comm.receive_from(timeout=timeout))


async def reply(comm: WebsocketCommunicator) -> dict[str, Any]:
    """The next frame that is not a presence frame."""
    while True:
        msg = await receive_json(comm)
        if not is_presence(msg):
            return msg


async def raw_reply(comm: WebsocketCommunicator) -> str:
    """The next non-presence frame as the text the server wrote (to compare two sockets' copies)."""
    while True:
        text = await comm.receive_from(timeout=TIMEOUT)
        if not is_presence(json.loads(text)):
            return text


async def replies(comm: WebsocketCommunicator, count: int) -> list[dict[str, Any]]:
    return [await reply(comm) for _ in range(count)]


async def update(comm: WebsocketCommunicator) -> dict[str, Any]:
    """The next broadcast (a frame with a seq), passing over presence and "my entry" frames.

    An error frame is not passed over: it fails the test with the server's message.
    """
    while True:
        msg = await reply(comm)
        assert "error" not in msg, msg["error"]
        if "seq" in msg:
            return msg


async def quiet(comm: WebsocketCommunicator, timeout: float = QUIET) -> bool:
    """True when nothing but presence frames arrives within ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            return True
        if not await comm.receive_nothing(timeout=left):
            if not is_presence(await receive_json(comm)):
                return False


async def wait_presence(comm: WebsocketCommunicator, count: int, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Read until a presence frame announcing ``count`` connections; fail on any other frame."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await receive_json(comm, timeout=timeout)
            assert is_presence(msg), f"expected a presence frame, got {msg}"
            if msg["presence"] == count:
                return msg


async def connect(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """Connect and read the full-state frame every connection starts with."""
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    first = await receive_json(comm)
    assert first["full"] is True
    return comm, first


@contextlib.asynccontextmanager
async def open_socket(code: str, headers: list[tuple[bytes, bytes]], query: str = "") -> AsyncIterator[WebsocketCommunicator]:
    """Connect, swallow the full-state frame, always disconnect."""
    comm, _first = await connect(f"/ws/r/{code}/{query}", headers)
    try:
        yield comm
    finally:
        await comm.disconnect()


# -- students --------------------------------------------------------------------------------

def student(code: str, name: str | None = None) -> tuple[list[tuple[bytes, bytes]], dict[str, Any]]:
    """A student's browser: opens the room page (which gives it a pid) and, if ``name``, saves
    the name through the page's form. Returns its WebSocket headers and its session."""
    client = Client()
    assert client.get(f"/r/{code}/").status_code == 200
    if name is not None:
        client.post(f"/r/{code}/name/", {"name": name})
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return [ORIGIN, (b"cookie", cookie)], dict(client.session)


astudent = sync_to_async(student)
