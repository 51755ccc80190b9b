"""Part 6 (join): bytes on the wire for a room page, and a join storm of 300 clients in 10 seconds.

The app runs as ``make run`` runs it: daphne, debug off, plain HTTP (DISTVIZ_HTTPS=false), static
files collected first into a temporary STATIC_ROOT (whitenoise's compressed manifest storage:
fingerprinted names, brotli and gzip beside each file, a year's cache lifetime), a temporary
SQLite database. Everything is on loopback.

**Bytes.** For each concept, a room is opened and presented (as a lecturer does); a student's
first visit fetches the room page and every script, stylesheet and icon it links, with
``Accept-Encoding: br, gzip``, over a raw HTTP/1.1 client that counts every byte received
(status line, headers and body as sent, chunk framing included). Then the WebSocket: the
handshake response and the first frame (the full state). A repeat visit sends the cookies of
the first and refetches only the page (the static files are immutable, fingerprinted, cached
for a year), then the socket's first frame. Budgets (issue 10): first visit (page + scripts +
styles) <= 70 KB, repeat visit (page + socket's first frame) <= 20 KB.

**Join storm.** 300 clients arrive evenly over 10 seconds at one presented hash ring room, each
as a browser does: the page (its own session cookie), the static files it links (in parallel,
one connection each), the WebSocket with the page's cookie, and the first frame. Printed: the
time from the storm's start until the last client has its first frame, each client's own time
(arrival -> first frame, p50/p99/max), failures; then the room must still work: the presenter
adds a key and every one of the 300 sockets must receive that broadcast. The same storm runs
against a bare server in the same run: one asyncio process (no framework) serving the very
bytes the app sent (the page as compressed by the app, the static files as whitenoise sent
them) over keep-alive HTTP, and a bare ``websockets`` server that sends the app's full-state
frame on connect and broadcasts what it receives (bench/bare_server.py's loop).

    python bench/joinstorm.py                       # both parts, daphne (about 50 s)
    python bench/joinstorm.py --servers daphne,daphne+static,uvicorn   # more storm rows (about 100 s)
    python bench/joinstorm.py --clients 100 --spread 5
    python bench/joinstorm.py --bare-serve HTTP_PORT WS_PORT DIR    # the bare server (internal)

``--servers``: ``uvicorn`` is ``make run SERVER=uvicorn``; ``daphne+static`` is a what-if, not a
way to run the app: the same app behind a small ASGI layer that answers ``/static/`` from memory
before Django (``static_first`` below), to measure what the static files cost when each one goes
through Django's middleware chain and a worker thread, as whitenoise's middleware has them do.

Every wait has a timeout and every loop a bound; nothing is asserted.
"""
from __future__ import annotations

import asyncio
import html
import gzip
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import PYTHON, REPO, VENV_BIN, free_port, median, migrate, percentile, proc_cpu_seconds  # noqa: E402
from common import raise_nofile, self_cpu_seconds, server_env, temp_database  # noqa: E402

CONCEPTS = ("hashring", "log-partitions", "lock-quorums")
FIRST_BUDGET = 70 * 1024
REPEAT_BUDGET = 20 * 1024
STORM_CLIENTS = 300
STORM_SPREAD_S = 10.0
STORM_DEADLINE_S = 30.0  # after the last arrival, the storm is cut off
WORKING_TIMEOUT_S = 20.0
ACCEPT_ENCODING = "br, gzip"
USER_AGENT = "Mozilla/5.0 (distviz bench)"


# -- a raw HTTP/1.1 client that counts bytes as received ------------------------------------------

@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes  # the body as sent (still content-encoded), transfer framing removed
    wire: int  # bytes received: status line + headers + body with any chunk framing

    def header(self, name: str) -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), "")

    def cookies(self) -> dict[str, str]:
        out = {}
        for k, v in self.headers:
            if k == "set-cookie":
                pair = v.split(";", 1)[0]
                if "=" in pair:
                    name, value = pair.split("=", 1)
                    out[name.strip()] = value.strip()
        return out

    def text(self) -> str:
        enc = self.header("content-encoding")
        raw = self.body
        if enc == "br":
            import brotli

            raw = brotli.decompress(raw)
        elif enc == "gzip":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8", "replace")


class Conn:
    """One keep-alive connection to 127.0.0.1:port; reopened if the server closed it."""

    def __init__(self, port: int, host_header: str | None = None) -> None:
        self.port = port
        self.host = host_header or f"127.0.0.1:{port}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, cookies: dict[str, str] | None = None, timeout: float = 30.0,
                  method: str = "GET", body: bytes = b"", extra: dict[str, str] | None = None) -> Response:
        return await asyncio.wait_for(self._request(method, path, cookies or {}, body, extra or {}), timeout)

    async def _request(self, method: str, path: str, cookies: dict[str, str], body: bytes,
                       extra: dict[str, str]) -> Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"User-Agent: {USER_AGENT}", "Accept: */*",
                 f"Accept-Encoding: {ACCEPT_ENCODING}", "Connection: keep-alive"]
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
        lines += [f"{k}: {v}" for k, v in extra.items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        reader = self.reader
        head = await reader.readuntil(b"\r\n\r\n")
        wire = len(head)
        first, *rest = head.decode("latin-1").split("\r\n")
        status = int(first.split(" ", 2)[1])
        headers = []
        for line in rest:
            if ":" in line:
                k, v = line.split(":", 1)
                headers.append((k.strip().lower(), v.strip()))
        hmap = {k: v for k, v in headers}
        if hmap.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            for _ in range(1_000_000):
                line = await reader.readuntil(b"\r\n")
                wire += len(line)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    for _ in range(100):  # trailers, then the empty line
                        t = await reader.readuntil(b"\r\n")
                        wire += len(t)
                        if t == b"\r\n":
                            break
                    break
                chunk = await reader.readexactly(size + 2)
                wire += size + 2
                parts.append(chunk[:-2])
            data = b"".join(parts)
        elif "content-length" in hmap:
            data = await reader.readexactly(int(hmap["content-length"]))
            wire += len(data)
        elif status in (204, 304) or method == "HEAD":
            data = b""
        else:
            data = await reader.read()
            wire += len(data)
            hmap["connection"] = "close"
        if hmap.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, headers, data, wire)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 5)
            except (OSError, asyncio.TimeoutError):
                pass
        self.reader = self.writer = None


_TAG = re.compile(r"<(script|link)\b([^>]*)>", re.I)
_ATTR = re.compile(r'([a-zA-Z-]+)\s*=\s*"([^"]*)"')


def linked_files(html: str) -> list[str]:
    """What a browser fetches for this page: scripts, stylesheets and the icon (same-origin paths)."""
    found = []
    for tag, attrs in _TAG.findall(html):
        a = dict(_ATTR.findall(attrs))
        if tag.lower() == "script" and a.get("src"):
            found.append(a["src"])
        elif tag.lower() == "link" and a.get("href") and set(a.get("rel", "").lower().split()) & {"stylesheet", "icon"}:
            found.append(a["href"])
    return [u for u in dict.fromkeys(found) if u.startswith("/")]


def ws_handshake_bytes(ws: Any) -> int:
    """The 101 response as received (status line + headers)."""
    resp = ws.response
    size = len(f"HTTP/1.1 {resp.status_code} {resp.reason_phrase}\r\n") + 2
    for k, v in resp.headers.raw_items():
        size += len(k) + 2 + len(v) + 2
    return size


def deflated_frame_bytes(payload: bytes) -> int:
    """The same frame with permessage-deflate on a fresh connection (uvicorn negotiates it with
    browsers; daphne does not): raw deflate, sync flush, the 4-byte tail dropped (RFC 7692)."""
    import zlib

    c = zlib.compressobj(6, zlib.DEFLATED, -15, 8)
    n = len(c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)) - 4
    return n + (2 if n < 126 else 4 if n < 65536 else 10)


def ws_frame_bytes(payload: bytes | str) -> int:
    """A server frame on the wire: unmasked header (2, 4 or 10 bytes) + payload."""
    n = len(payload.encode() if isinstance(payload, str) else payload)
    return n + (2 if n < 126 else 4 if n < 65536 else 10)


_SEQ = re.compile(rb'^\{"seq":\s*(\d+)')


def frame_seq(raw: bytes) -> int | None:
    m = _SEQ.match(raw)
    return int(m.group(1)) if m else None


async def full_state(ws: Any, timeout: float = 30.0) -> tuple[bytes, int]:
    """The room's full-state frame (the first frame with a seq), and the wire bytes of every frame
    up to it: another page's presence count may arrive first."""
    wire = 0
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        raw = await asyncio.wait_for(ws.recv(decode=False), max(0.1, deadline - time.monotonic()))
        wire += ws_frame_bytes(raw)
        if frame_seq(raw) is not None:
            return raw, wire
    raise RuntimeError("no full-state frame")


# -- the app server ---------------------------------------------------------------------------------

def kib(n: float) -> str:
    return f"{n / 1024:.1f} KB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def prepare_app(workdir: str, database_url: str) -> dict[str, str]:
    static_root = os.path.join(workdir, "static")
    env = server_env(database_url, DISTVIZ_HTTPS="false", DISTVIZ_STATIC_ROOT=static_root)
    migrate(env)
    t = time.perf_counter()
    subprocess.run([PYTHON, "manage.py", "collectstatic", "--no-input", "-v0"], cwd=REPO, env=env, check=True,
                   timeout=300)
    print(f"  collectstatic into a temporary STATIC_ROOT: {time.perf_counter() - t:.1f} s", flush=True)
    return env


async def open_room(port: int, concept: str) -> tuple[str, dict[str, str]]:
    """GET / (CSRF cookie), POST /new/<concept>/: the new room's code and the presenter's cookies."""
    conn = Conn(port)
    try:
        home = await conn.get("/")
        jar = home.cookies()
        token = jar.get("csrftoken", "")
        if home.status != 200 or not token:
            raise RuntimeError(f"GET / gave {home.status} and no csrftoken cookie")
        resp = await conn.get(f"/new/{concept}/", cookies=jar, method="POST",
                              body=urlencode({"csrfmiddlewaretoken": token}).encode(),
                              extra={"Content-Type": "application/x-www-form-urlencoded",
                                     "Origin": f"http://127.0.0.1:{port}"})
        jar.update(resp.cookies())
        m = re.fullmatch(r"(?:https?://[^/]+)?/r/([A-Za-z0-9]+)/", resp.header("location"))
        if resp.status not in (301, 302, 303) or not m or "sessionid" not in jar:
            raise RuntimeError(f"POST /new/{concept}/ gave {resp.status}, Location {resp.header('location')!r}")
        return m.group(1), jar
    finally:
        await conn.close()


def command_frame(body: dict[str, Any]) -> str:
    return json.dumps({"headers": {"HX-Request": "true", "HX-Request-ID": str(uuid.uuid4())}, "body": body})


async def ws_connect(port: int, path: str, cookies: dict[str, str]) -> Any:
    from websockets.asyncio.client import connect

    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
    return await connect(f"ws://127.0.0.1:{port}{path}", origin=f"http://127.0.0.1:{port}", compression=None,
                         additional_headers=headers, user_agent_header=USER_AGENT, open_timeout=30,
                         close_timeout=5, max_size=2**22, max_queue=None)


async def present(port: int, code: str, cookies: dict[str, str]) -> Any:
    """The presenter's socket, after "Present to a class" has been applied; left open."""
    ws = await ws_connect(port, f"/ws/r/{code}/", cookies)
    first, _ = await full_state(ws)
    seq = frame_seq(first) or 0
    await ws.send(command_frame({"type": "present"}))
    for _ in range(200):
        raw = await asyncio.wait_for(ws.recv(decode=False), 15)
        if (frame_seq(raw) or 0) > seq:
            return ws
        if raw.startswith(b'{"error"'):
            raise RuntimeError(f"present refused: {raw[:200]!r}")
    raise RuntimeError("present was never broadcast")


# -- part A: bytes ------------------------------------------------------------------------------------

@dataclass
class Visit:
    concept: str
    page: Response | None = None
    files: dict[str, Response] = field(default_factory=dict)
    ws_handshake: int = 0
    first_frame: bytes = b""
    repeat_page: Response | None = None
    repeat_frames: list[bytes] = field(default_factory=list)  # what the page's own socket got
    repeat_handshake: int = 0
    page_text: str = ""

    @property
    def first_static(self) -> int:
        return sum(r.wire for r in self.files.values())

    @property
    def first_visit(self) -> int:
        return (self.page.wire if self.page else 0) + self.first_static

    @property
    def socket_first(self) -> int:
        return self.ws_handshake + ws_frame_bytes(self.first_frame)

    @property
    def repeat(self) -> int:
        return (self.repeat_page.wire if self.repeat_page else 0) + self.repeat_handshake + sum(map(ws_frame_bytes, self.repeat_frames))

    @property
    def repeat_deflate(self) -> int:
        return (self.repeat_page.wire if self.repeat_page else 0) + self.repeat_handshake + sum(map(deflated_frame_bytes, self.repeat_frames))


async def first_frame_of(port: int, code: str, cookies: dict[str, str]) -> tuple[int, bytes]:
    ws = await ws_connect(port, f"/ws/r/{code}/", cookies)
    try:
        first, _ = await full_state(ws)
        return ws_handshake_bytes(ws), first
    finally:
        await ws.close()


def page_ws_path(page_text: str) -> str:
    """The socket URL a page opens (its hx-ws:connect): it says which seq the page already shows."""
    m = re.search(r'hx-ws:connect="([^"]+)"', page_text)
    if not m:
        raise RuntimeError("the page opens no socket")
    return html.unescape(m.group(1))


async def page_socket(port: int, path: str, cookies: dict[str, str]) -> tuple[int, list[bytes]]:
    """What a page's own socket receives on connect: the full state only when the page is older
    than the room, then the presence count (always sent last by connect)."""
    ws = await ws_connect(port, path, cookies)
    try:
        frames: list[bytes] = []
        for _ in range(100):
            raw = await asyncio.wait_for(ws.recv(decode=False), 30)
            frames.append(raw)
            if raw.startswith(b'{"presence"'):
                return ws_handshake_bytes(ws), frames
        raise RuntimeError("no presence frame")
    finally:
        await ws.close()


async def student_visit(port: int, concept: str, code: str) -> Visit:
    v = Visit(concept)
    conn = Conn(port)
    try:
        v.page = await conn.get(f"/r/{code}/")
        if v.page.status != 200:
            raise RuntimeError(f"{concept}: GET /r/{code}/ gave {v.page.status}")
        jar = v.page.cookies()
        v.page_text = v.page.text()
        for path in linked_files(v.page_text):
            r = await conn.get(path, cookies=jar)
            if r.status != 200:
                raise RuntimeError(f"{concept}: GET {path} gave {r.status}")
            v.files[path] = r
        v.ws_handshake, v.first_frame = await first_frame_of(port, code, jar)
        # The repeat visit: the same browser, its cookies; the static files come from its cache.
        v.repeat_page = await conn.get(f"/r/{code}/", cookies=jar)
        v.repeat_handshake, v.repeat_frames = await page_socket(port, page_ws_path(v.repeat_page.text()), jar)
    finally:
        await conn.close()
    return v


def print_bytes(visits: list[Visit], summary: list[tuple[str, bool | None, str]]) -> None:
    print(f"\n  {'room page (a student)':<24}{'page':>10}{'scripts+styles':>16}{'first visit':>13}{'':>6}"
          f"{'socket 1st':>12}{'repeat':>10}{'':>6}{'deflate':>10}")
    for v in visits:
        assert v.page is not None
        first_ok, repeat_ok = v.first_visit <= FIRST_BUDGET, v.repeat <= REPEAT_BUDGET
        print(f"  {v.concept:<24}{kib(v.page.wire):>10}{kib(v.first_static) + f' ({len(v.files)})':>16}"
              f"{kib(v.first_visit):>13}{verdict(first_ok):>6}{kib(v.socket_first):>12}{kib(v.repeat):>10}"
              f"{verdict(repeat_ok):>6}{kib(v.repeat_deflate):>10}")
        summary.append((f"join: first visit {v.concept} <= 70 KB", first_ok,
                        f"{v.first_visit:,} B (page {v.page.wire:,} + {len(v.files)} files {v.first_static:,})"))
        summary.append((f"join: repeat visit {v.concept} <= 20 KB", repeat_ok,
                        f"{v.repeat:,} B (page {v.repeat_page.wire if v.repeat_page else 0:,} + socket "
                        f"{v.repeat_handshake + sum(map(ws_frame_bytes, v.repeat_frames)):,})"))
    print("  first visit: the page + every script, stylesheet and icon it links, as received (headers + body,\n"
          "  Accept-Encoding: br, gzip); budget 70 KB. socket 1st: the WebSocket's 101 response + the first\n"
          "  frame when the page is older than the room (the full state; daphne sends it uncompressed). repeat:\n"
          "  the page again with the first visit's cookies + what its own socket (?seq=N) gets on connect: no\n"
          "  full state when the room has not moved on since the page was drawn, then the presence count\n"
          "  (static files cached: fingerprinted, immutable); budget 20 KB. deflate: the repeat visit if the\n"
          "  socket negotiated permessage-deflate (computed: each frame through a fresh deflate context;\n"
          "  `make run SERVER=uvicorn` negotiates it, daphne does not).")
    v = visits[0]
    assert v.page is not None
    print(f"  what a first visit of {v.concept} received, file by file:")
    rows = [("(the page) /r/<code>/", v.page)] + list(v.files.items())
    for path, r in rows:
        enc = r.header("content-encoding") or "identity"
        cache = r.header("cache-control")
        print(f"    {r.wire:>8,} B  {len(r.body):>7,} body {enc:<8} {path[:60]:<60} {cache[:40]}")
    raw = len(v.page_text.encode())
    print(f"    (the page is {raw:,} B before compression; the full-state frame {len(v.first_frame):,} B)")


# -- part B: the join storm ---------------------------------------------------------------------------

@dataclass
class Target:
    name: str
    http_port: int
    ws_port: int
    page_path: str
    ws_path: str


@dataclass
class StormResult:
    name: str
    clients: int
    first_frame_at: list[float] = field(default_factory=list)  # s after the storm's start
    latency: list[float] = field(default_factory=list)  # s from the client's own arrival
    received: int = 0  # bytes as received by all clients (HTTP + 101 + first frame)
    failures: list[str] = field(default_factory=list)
    working: int = 0
    working_s: float = math.nan
    server_cpu: float = math.nan
    client_cpu: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.first_frame_at)


class StormClient:
    def __init__(self, index: int, target: Target, result: StormResult) -> None:
        self.index, self.target, self.result = index, target, result
        self.ws: Any = None
        self.max_seq = 0
        self.seen = asyncio.Event()
        self.want = 1 << 62

    async def arrive(self, t0: float, at: float) -> None:
        await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
        started = time.perf_counter()
        t = self.target
        conn = Conn(t.http_port)
        try:
            page = await conn.get(t.page_path)
            if page.status != 200:
                raise RuntimeError(f"page {page.status}")
            received = page.wire
            jar = page.cookies()
            files = linked_files(page.text())
            if not files:
                raise RuntimeError("the page links no scripts")

            async def fetch(path: str, c: Conn) -> int:
                r = await c.get(path, cookies=jar)
                if r.status != 200:
                    raise RuntimeError(f"{path}: {r.status}")
                return r.wire

            others = [Conn(t.http_port) for _ in files[1:]]
            try:
                sizes = await asyncio.gather(*(fetch(p, c) for p, c in zip(files, [conn] + others)))
            finally:
                for c in others:
                    await c.close()
            received += sum(sizes)
            self.ws = await ws_connect(t.ws_port, t.ws_path, jar)
            first, frames_wire = await full_state(self.ws)
            now = time.perf_counter()
            self.max_seq = frame_seq(first) or 0
            self.result.first_frame_at.append(now - t0)
            self.result.latency.append(now - started)
            self.result.received += received + ws_handshake_bytes(self.ws) + frames_wire
        except Exception as exc:  # noqa: BLE001 - counted and reported
            self.result.failures.append(f"client {self.index}: {type(exc).__name__}: {str(exc)[:100]}")
            if self.ws is not None:
                await self.ws.close()
                self.ws = None
        finally:
            await conn.close()

    async def follow(self) -> None:
        """Drain every frame (presence counts, broadcasts); note the highest seq."""
        from websockets.exceptions import ConnectionClosed

        if self.ws is None:
            return
        try:
            async for raw in self.ws:
                seq = frame_seq(raw if isinstance(raw, bytes) else raw.encode())
                if seq is not None and seq > self.max_seq:
                    self.max_seq = seq
                    if seq >= self.want:
                        self.seen.set()
        except (ConnectionClosed, asyncio.CancelledError):
            return


async def run_storm(target: Target, clients: int, spread: float, driver: Any, cpu_of: Any) -> StormResult:
    res = StormResult(target.name, clients)
    crowd = [StormClient(i, target, res) for i in range(clients)]
    cpu0, self0 = cpu_of(), self_cpu_seconds()
    t0 = time.perf_counter() + 0.2
    arrivals = [asyncio.create_task(c.arrive(t0, spread * i / clients)) for i, c in enumerate(crowd)]
    followers: list[asyncio.Task[None]] = []
    done, pending = await asyncio.wait(arrivals, timeout=spread + STORM_DEADLINE_S)
    for task in pending:
        task.cancel()
    if pending:
        res.failures.append(f"{len(pending)} clients still joining {STORM_DEADLINE_S:.0f} s after the last arrival")
    res.server_cpu = cpu_of() - cpu0
    res.client_cpu = self_cpu_seconds() - self0
    for c in crowd:
        followers.append(asyncio.create_task(c.follow()))
    # Does the room still work? The presenter adds a key; every joined socket must get it.
    joined = [c for c in crowd if c.ws is not None]
    try:
        want = await driver(max((c.max_seq for c in joined), default=0))
        for c in joined:
            c.want = want
            if c.max_seq >= want:
                c.seen.set()
        t = time.perf_counter()
        await asyncio.wait([asyncio.create_task(c.seen.wait()) for c in joined] or [asyncio.sleep(0)],
                           timeout=WORKING_TIMEOUT_S)
        res.working = sum(1 for c in joined if c.seen.is_set())
        res.working_s = time.perf_counter() - t
    except Exception as exc:  # noqa: BLE001
        res.failures.append(f"the working-room check failed: {type(exc).__name__}: {exc}")
    for task in followers:
        task.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    sem = asyncio.Semaphore(50)

    async def shut(c: StormClient) -> None:
        async with sem:
            try:
                await asyncio.wait_for(c.ws.close(), 5)
            except Exception:  # noqa: BLE001 - teardown
                pass

    await asyncio.gather(*(shut(c) for c in joined))
    return res


def print_storm(results: list[StormResult], spread: float, summary: list[tuple[str, bool | None, str]]) -> None:
    apps, bare = results[:-1], results[-1]
    print(f"\n  {'server':<30}{'joined':>8}{'last 1st frame':>16}{'p50':>8}{'p99':>8}{'max':>8}{'working':>9}"
          f"{'MB recv':>9}{'CPU s':>7}{'ms/cl':>7}{'cli CPU':>8}")
    for r in results:
        last = max(r.first_frame_at) if r.first_frame_at else math.nan
        print(f"  {r.name:<30}{r.ok:>5}/{r.clients:<3}{last:>15.2f}s{percentile(r.latency, 50) * 1000:>6.0f}ms"
              f"{percentile(r.latency, 99) * 1000:>6.0f}ms{max(r.latency, default=math.nan) * 1000:>6.0f}ms"
              f"{r.working:>5}/{r.ok:<3}{r.received / 1e6:>9.1f}{r.server_cpu:>7.1f}"
              f"{r.server_cpu / r.clients * 1000:>7.1f}{r.client_cpu:>8.1f}")
        kinds: dict[str, int] = {}
        for f in r.failures:
            kind = re.sub(r"^client \d+: ", "", f)
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:6]:
            print(f"    {n} x {kind}")
        if any("InvalidMessage" in k for k in kinds):
            print("    (InvalidMessage: daphne drops a WebSocket whose handshake the app has not accepted within\n"
                  "    5 s, its --websocket_connect_timeout; a browser would reconnect and add to the load)")
    print(f"  joined: clients with their first frame. last 1st frame: from the storm's start until the last client\n"
          f"  has its first frame (arrivals spread evenly over {spread:.0f} s, so {spread:.0f} s is the floor). p50/p99/max: a\n"
          "  client's own arrival -> its first frame (page, static files, socket, full state). working: sockets that\n"
          "  then received the presenter's next broadcast. CPU s: the server process over the storm, ms/cl: per\n"
          f"  arriving client; cli CPU: this process (all {bare.clients} clients). [what-if] rows are not judged.")
    last_bare = max(bare.first_frame_at) if bare.first_frame_at else math.nan
    for app in apps:
        if "[what-if]" in app.name:
            continue
        last_app = max(app.first_frame_at) if app.first_frame_at else math.nan
        all_ok = app.ok == app.clients and app.working == app.ok and not app.failures
        summary.append((f"join storm, {app.name.split()[0]}: {app.clients} in {spread:.0f} s all work", all_ok,
                        f"{app.ok}/{app.clients} joined, {app.working} got the next broadcast; last first frame "
                        f"{last_app:.2f} s (bare {last_bare:.2f} s); p99 {percentile(app.latency, 99) * 1000:.0f} ms "
                        f"(bare {percentile(bare.latency, 99) * 1000:.0f} ms)"))


# -- the bare server (run as its own process) -------------------------------------------------------

def bare_serve(http_port: int, ws_port: int, directory: str) -> None:
    """One asyncio process: keep-alive HTTP/1.1 from prebuilt responses, and websockets."""
    from websockets.asyncio.server import broadcast, serve

    manifest = json.loads(Path(directory, "manifest.json").read_text())
    responses: dict[str, bytes] = {}
    for path, meta in manifest["files"].items():
        body = Path(directory, meta["file"]).read_bytes()
        head = [f"HTTP/1.1 200 OK", f"Content-Type: {meta['type']}", f"Content-Length: {len(body)}",
                f"Cache-Control: {meta['cache']}"]
        if meta["encoding"]:
            head.append(f"Content-Encoding: {meta['encoding']}")
        head += [f"Set-Cookie: {c}" for c in meta.get("cookies", [])]
        responses[path] = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    first_frame = Path(directory, "first-frame.json").read_text()
    clients: set[Any] = set()

    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(10_000):
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode("latin-1").split("?")[0]
                writer.write(responses.get(path, not_found))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, IndexError):
            pass
        finally:
            writer.close()

    async def ws_handler(ws: Any) -> None:
        await ws.send(first_frame)
        clients.add(ws)
        try:
            async for message in ws:
                broadcast(clients, message)
        finally:
            clients.discard(ws)

    async def main() -> None:
        async with serve(ws_handler, "127.0.0.1", ws_port, compression=None, max_size=2**20, backlog=1024):
            server = await asyncio.start_server(http, "127.0.0.1", http_port, backlog=1024)  # after: start() waits for it
            print(f"bare static + websockets on 127.0.0.1:{http_port} / :{ws_port}", flush=True)
            async with server:
                await server.serve_forever()

    asyncio.run(main())


def save_for_bare(directory: str, page_path: str, page: Response, files: dict[str, Response], frame: bytes) -> None:
    os.makedirs(directory, exist_ok=True)
    entries = {}
    for i, (path, r) in enumerate([(page_path, page)] + list(files.items())):
        name = f"f{i}"
        Path(directory, name).write_bytes(r.body)
        entries[path] = {"file": name, "type": r.header("content-type"), "encoding": r.header("content-encoding"),
                         "cache": r.header("cache-control") or "no-cache",
                         "cookies": [v for k, v in r.headers if k == "set-cookie"] if path == page_path else []}
    Path(directory, "manifest.json").write_text(json.dumps({"files": entries}))
    Path(directory, "first-frame.json").write_bytes(frame)


# -- the whole part ----------------------------------------------------------------------------------

SERVER_KINDS = ("daphne", "uvicorn", "daphne+static")


def app_server(kind: str, env: dict[str, str], workdir: str) -> Any:
    """daphne as ``make run`` starts it; uvicorn as ``make run SERVER=uvicorn``; daphne+static is a
    what-if: the same app with /static/ answered from memory before Django (``static_first``)."""
    from fanout import Server

    port = free_port()
    if kind == "daphne":
        argv = [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "distviz.asgi:application"]
    elif kind == "uvicorn":
        argv = [str(VENV_BIN / "uvicorn"), "distviz.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                "--ws", "websockets", "--log-level", "warning", "--no-access-log", "--backlog", "2048"]
    elif kind == "daphne+static":
        argv = [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "joinstorm:static_first"]
        env = dict(env, PYTHONPATH=f"{REPO}{os.pathsep}{HERE}")
    else:
        raise ValueError(f"no server {kind!r}: one of {', '.join(SERVER_KINDS)}")
    return Server(kind, argv, env, port, workdir)


def __getattr__(name: str) -> Any:
    """``joinstorm:static_first`` (daphne+static only): built on first use, so importing this
    module never sets Django up."""
    if name == "static_first":
        return _static_first()
    raise AttributeError(name)


def _static_first() -> Any:
    """What-if: the app behind a tiny ASGI layer that answers /static/<hashed name> from memory
    (the brotli or gzip file whitenoise's storage wrote, a year's cache lifetime), so a static
    file never enters Django's middleware chain or a worker thread."""
    import mimetypes

    from django.conf import settings

    from distviz.asgi import application

    root = Path(settings.STATIC_ROOT)
    files: dict[str, dict[str, bytes]] = {}
    for f in root.rglob("*"):
        if not f.is_file() or f.suffix in (".br", ".gz"):
            continue
        variants = {"": f.read_bytes()}
        for enc, suffix in (("br", ".br"), ("gzip", ".gz")):
            alt = f.with_name(f.name + suffix)
            if alt.exists():
                variants[enc] = alt.read_bytes()
        files["/static/" + f.relative_to(root).as_posix()] = variants

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in files:
            variants = files[scope["path"]]
            accept = dict(scope["headers"]).get(b"accept-encoding", b"").decode("latin-1")
            enc = next((e for e in ("br", "gzip") if e in accept and e in variants), "")
            body = variants[enc]
            ctype = mimetypes.guess_type(scope["path"])[0] or "application/octet-stream"
            headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()),
                       (b"cache-control", b"max-age=315360000, public, immutable"), (b"vary", b"Accept-Encoding")]
            if enc:
                headers.append((b"content-encoding", enc.encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await application(scope, receive, send)

    return app


async def _app_storm(app: Any, code: str, driver_ws: Any, clients: int, spread: float) -> StormResult:
    async def driver(after: int) -> int:
        await driver_ws.send(command_frame({"type": "add_key", "key": "after-the-storm"}))
        for _ in range(10_000):
            raw = await asyncio.wait_for(driver_ws.recv(decode=False), WORKING_TIMEOUT_S)
            seq = frame_seq(raw)
            if seq is not None and seq > after:
                return seq
            if raw.startswith(b'{"error"'):
                raise RuntimeError(raw[:200].decode(errors="replace"))
        raise RuntimeError("no broadcast for the presenter's command")

    name = {"daphne": "daphne (make run)", "uvicorn": "uvicorn (SERVER=uvicorn)"}.get(app.name, f"{app.name} [what-if]")
    res = await run_storm(Target(name, app.port, app.port, f"/r/{code}/", f"/ws/r/{code}/"), clients, spread,
                          driver, app.cpu)
    print(f"    {name}: {res.ok}/{clients} joined, the last first frame {max(res.first_frame_at, default=math.nan):.2f} s "
          "after the storm began", flush=True)
    return res


async def _run(workdir: str, env: dict[str, str], clients: int, spread: float,
               servers: tuple[str, ...]) -> list[tuple[str, bool | None, str]]:
    from fanout import Server

    summary: list[tuple[str, bool | None, str]] = []
    results: list[StormResult] = []
    bare_dir = os.path.join(workdir, "bare")
    saved: Visit | None = None
    saved_code = ""
    for i, kind in enumerate(servers):
        app = app_server(kind, env, workdir)
        presenters: list[Any] = []
        try:
            await asyncio.to_thread(app.start)
            if i == 0:
                print(f"  {kind} on 127.0.0.1:{app.port} (debug off, plain HTTP, collected static files)", flush=True)
                # A: bytes per concept, a student's first and repeat visit of a presented room.
                visits, codes = [], {}
                for concept in CONCEPTS:
                    code, jar = await open_room(app.port, concept)
                    presenters.append(await present(app.port, code, jar))
                    codes[concept] = code
                    visits.append(await student_visit(app.port, concept, code))
                print_bytes(visits, summary)
                saved, saved_code = visits[0], codes[CONCEPTS[0]]
                assert saved.page is not None
                save_for_bare(bare_dir, f"/r/{saved_code}/", saved.page, saved.files, saved.first_frame)
                print(f"\n  join storm: {clients} clients over {spread:.0f} s at one presented hash ring room "
                      "(page + static files + socket + full state)", flush=True)
                code, driver_ws = saved_code, presenters[0]
            else:
                code, jar = await open_room(app.port, CONCEPTS[0])
                driver_ws = await present(app.port, code, jar)
                presenters.append(driver_ws)
            results.append(await _app_storm(app, code, driver_ws, clients, spread))
        finally:
            for ws in presenters:
                try:
                    await ws.close()
                except Exception:  # noqa: BLE001 - teardown
                    pass
            app.stop()

    # The yardstick: the same bytes from a bare asyncio process.
    assert saved is not None
    http_port, ws_port = free_port(), free_port()
    bare = Server("bare", [PYTHON, str(HERE / "joinstorm.py"), "--bare-serve", str(http_port), str(ws_port), bare_dir],
                  dict(os.environ, PYTHONUNBUFFERED="1"), http_port, workdir)
    try:
        await asyncio.to_thread(bare.start)
        ws_path = f"/ws/r/{saved_code}/"
        bare_seq = frame_seq(saved.first_frame) or 0
        bare_driver_ws = await ws_connect(ws_port, ws_path, {})
        await full_state(bare_driver_ws, 10)

        async def bare_driver(after: int) -> int:
            seq = max(after, bare_seq) + 1
            await bare_driver_ws.send(json.dumps({"seq": seq, "from": seq, "content": "<p>after the storm</p>"}))
            return seq

        results.append(await run_storm(Target("bare asyncio + websockets", http_port, ws_port, f"/r/{saved_code}/",
                                              ws_path), clients, spread, bare_driver, bare.cpu))
        await bare_driver_ws.close()
    finally:
        bare.stop()
    print_storm(results, spread, summary)
    return summary


def run(clients: int = STORM_CLIENTS, spread: float = STORM_SPREAD_S,
        servers: tuple[str, ...] = ("daphne",)) -> dict[str, Any]:
    raise_nofile(10 * clients + 1024)
    workdir, database_url = temp_database("join")
    try:
        env = prepare_app(workdir, database_url)
        summary = asyncio.run(_run(workdir, env, clients, spread, servers))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"summary": summary}


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--bare-serve":
        bare_serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=STORM_CLIENTS)
    ap.add_argument("--spread", type=float, default=STORM_SPREAD_S, help="seconds over which the clients arrive")
    ap.add_argument("--servers", default="daphne",
                    help="app servers for the storm, the first also for the bytes: daphne (make run), uvicorn "
                         "(make run SERVER=uvicorn), daphne+static (what-if: static files answered before Django)")
    args = ap.parse_args()
    kinds = tuple(k.strip() for k in args.servers.split(",") if k.strip())
    for k in kinds:
        if k not in SERVER_KINDS:
            ap.error(f"no server {k!r}: one of {', '.join(SERVER_KINDS)}")
    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    out = run(max(1, min(args.clients, 1000)), max(0.5, min(args.spread, 60.0)), kinds or ("daphne",))
    print()
    for name, ok, detail in out["summary"]:
        print(f"  {'n/a ' if ok is None else verdict(ok)}  {name:<44} {detail}")
