"""Part 3: one command -> every one of 300 viewers, against a bare ``websockets`` broadcast server.

The app runs as a real server process (daphne, then uvicorn) on a temporary SQLite database. A
room is created over HTTP exactly as a person does (GET / for the CSRF cookie, POST
/new/hashring/), and the ``sessionid`` cookie that makes its creator the presenter goes on the
driver WebSockets. 300 viewer WebSockets join the room (each first drains its full-state frame);
the driver sends one command at a time in htmx's ``hx-ws`` frame shape and waits until every
viewer has the broadcast with the expected ``seq``.

Latency: from the driver's send to each viewer's receive (all viewer deliveries pooled).
Server CPU: utime + stime of the server process over the measured commands, per broadcast.
The bare server gets the very frames the app sent (same sizes), so the payload is equivalent.

Everything runs on loopback; every wait has a timeout and every loop a bound.
"""
from __future__ import annotations

import asyncio
import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from common import BENCH, PYTHON, REPO, VENV_BIN, free_port, migrate, percentile, proc_cpu_seconds, self_cpu_seconds
from common import server_env, temp_database

CONNECT_CONCURRENCY = 25
COMMAND_TIMEOUT = 10.0  # seconds to wait for every viewer to get one broadcast
PHASE_TIMEOUT = 120.0  # seconds for the whole command loop of one server
# RoomConsumer allows 8 commands/s per connection with a burst of 16: rotate over a few driver
# connections (each the presenter) and keep a mirror of each one's token bucket.
DRIVERS = 8
RATE_PER_SECOND, RATE_BURST = 8.0, 16.0


def fanout_command(i: int) -> dict[str, Any]:
    """The fan-out workload: cheap commands with a broadcast of a few KB each."""
    if i % 2 == 0:
        return {"type": "add_key", "key": f"bench{i // 2}"}
    return {"type": "lookup", "key": f"bench{i // 2}"}


# -- server processes ------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    workdir: str
    profile_out: str | None = None
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return Path(self.workdir) / f"{self.name.replace(' ', '_').replace('+', '_')}.log"

    def start(self, timeout: float = 40.0) -> None:
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on port {self.port} within {timeout:.0f} s:\n{self.log_tail()}")

    def profile_hooks(self) -> tuple[Any, Any]:
        """(start, stop) callables for a server under bench/profiled.py, else (None, None)."""
        if not self.profile_out:
            return None, None
        out = self.profile_out

        def start() -> None:
            assert self.proc is not None
            if os.path.exists(out):
                os.unlink(out)
            os.kill(self.proc.pid, signal.SIGUSR1)  # our own child, by pid

        def stop() -> None:
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGUSR2)
            deadline = time.monotonic() + 60
            while not os.path.exists(out) and time.monotonic() < deadline:
                time.sleep(0.1)

        return start, stop

    def cpu(self) -> float:
        assert self.proc is not None
        return proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # our own child, by pid
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


UVICORN_WS = os.environ.get("BENCH_UVICORN_WS", "websockets")
_STATIC_ROOT: list[str] = []  # the run's collected static files, once collected


def collected_static() -> str:
    """A STATIC_ROOT holding the static files as they are now, fingerprinted and compressed as
    `make prepare` makes them, collected once per bench run into a temporary folder (removed at
    exit): a production-style server (DEBUG off) needs the manifest, and must not serve a stale
    ./staticfiles from an earlier `make run`."""
    if not _STATIC_ROOT:
        root = tempfile.mkdtemp(prefix="distviz-bench-static-")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        env = server_env(f"sqlite:///{os.path.join(root, 'unused.sqlite3')}", DISTVIZ_STATIC_ROOT=root)
        t = time.perf_counter()
        subprocess.run([PYTHON, "manage.py", "collectstatic", "--no-input", "-v0"], cwd=REPO, env=env, check=True,
                       timeout=300)
        print(f"  collectstatic into a temporary STATIC_ROOT: {time.perf_counter() - t:.1f} s", flush=True)
        _STATIC_ROOT.append(root)
    return _STATIC_ROOT[0]


def app_server(kind: str, workdir: str, database_url: str, profile_out: str | None = None,
               variant: str | None = None) -> Server:
    port = free_port()
    # The bench's presenter sends its commands from one session through several sockets, faster
    # than a person may (8/s): lift the per-person limit on this server only.
    env = server_env(database_url, DISTVIZ_RATE_PERSON="1000,2000", DISTVIZ_RATE_ADDRESS="100000,200000")
    if kind == "daphne":
        argv = [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "distviz.asgi:application"]
    elif kind == "uvicorn":
        argv = [str(VENV_BIN / "uvicorn"), "distviz.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                "--ws", UVICORN_WS, "--lifespan", "off", "--log-level", "warning", "--no-access-log",
                "--backlog", "1024"]
    else:
        raise ValueError(kind)
    name = kind
    if profile_out:
        argv = [PYTHON, str(BENCH / "profiled.py"), profile_out, kind] + argv[1:]
    elif variant:  # bench/variant.py: the app with one fan-out cost patched away (what-if only)
        argv = [PYTHON, str(BENCH / "variant.py"), variant, kind] + argv[1:]
        name = f"{kind} [{variant}]"
    return Server(name, argv, env, port, workdir, profile_out)


def bare_server(workdir: str, deflate: bool = False) -> Server:
    port = free_port()
    argv = [PYTHON, str(BENCH / "bare_server.py"), str(port)] + (["--deflate"] if deflate else [])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return Server("bare websockets" + (" +deflate" if deflate else ""), argv, env, port, workdir)


def create_room(port: int) -> tuple[str, str]:
    """Create a hash ring room as a browser would; return (join code, sessionid cookie)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        jar: SimpleCookie = SimpleCookie()
        for header in resp.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        if resp.status != 200 or "csrftoken" not in jar:
            raise RuntimeError(f"GET / gave {resp.status} and no csrftoken cookie")
        token = jar["csrftoken"].value
        conn.request("POST", "/new/hashring/", body=urlencode({"csrfmiddlewaretoken": token}),
                     headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={token}"})
        resp = conn.getresponse()
        resp.read()
        location = resp.getheader("Location") or ""
        jar = SimpleCookie()
        for header in resp.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        m = re.fullmatch(r"(?:https?://[^/]+)?/r/([A-Za-z0-9]+)/", location)
        if resp.status not in (301, 302, 303) or not m or "sessionid" not in jar:
            raise RuntimeError(f"POST /new/hashring/ gave {resp.status}, Location {location!r}, cookies {list(jar)}")
        return m.group(1), jar["sessionid"].value
    finally:
        conn.close()


# -- clients --------------------------------------------------------------------------------

_SEQ = re.compile(rb'^\{"seq":\s*(\d+)')


def frame_seq(raw: bytes) -> int | None:
    m = _SEQ.match(raw)
    if m:
        return int(m.group(1))
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc.get("seq") if isinstance(doc, dict) and isinstance(doc.get("seq"), int) else None


@dataclass
class Result:
    name: str
    viewers: int
    commands: int
    latencies: list[float] = field(default_factory=list)  # seconds, one per viewer delivery
    last_viewer: list[float] = field(default_factory=list)  # seconds, per broadcast: send -> last viewer
    first_viewer: list[float] = field(default_factory=list)  # seconds, per broadcast: send -> first viewer
    busy: float = 0.0  # sum of send -> last viewer over the measured commands
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    payload_bytes: list[int] = field(default_factory=list)
    missing: int = 0
    errors: list[str] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)  # what viewer 0 received (the app's frames)

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)

    @property
    def rate(self) -> float:
        return self.commands / self.busy if self.busy else float("nan")

    @property
    def cpu_per_broadcast(self) -> float:
        return self.server_cpu / self.commands if self.commands else float("nan")


class Fanout:
    def __init__(self, name: str, port: int, path: str, viewers: int, cookie: str | None) -> None:
        self.name, self.port, self.path, self.n_viewers, self.cookie = name, port, path, viewers, cookie
        self.arrivals: dict[int, list[float]] = {}
        self.done: dict[int, asyncio.Event] = {}
        self.viewers: list[ClientConnection] = []
        self.drivers: list[ClientConnection] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.errors: list[str] = []
        self.server_errors: list[str] = []
        self.frames0: dict[int, bytes] = {}
        self.first_seq = 0

    async def _open(self, sem: asyncio.Semaphore, driver: bool, deflate: bool, app: bool) -> ClientConnection:
        headers = {"Cookie": f"sessionid={self.cookie}"} if driver and self.cookie else {}
        async with sem:
            ws = await connect(f"ws://127.0.0.1:{self.port}{self.path}", origin=f"http://127.0.0.1:{self.port}",
                               additional_headers=headers, compression="deflate" if deflate else None,
                               open_timeout=30, close_timeout=5, max_size=2**22, max_queue=64)
            if app:  # the first frame is the full state: drain it
                first = await asyncio.wait_for(ws.recv(decode=False), timeout=30)
                seq = frame_seq(first)
                if seq is not None:
                    self.first_seq = max(self.first_seq, seq)
            return ws

    async def connect_all(self, deflate: bool, app: bool) -> None:
        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
        self.drivers = list(await asyncio.gather(*(self._open(sem, True, deflate, app) for _ in range(DRIVERS))))
        self.viewers = list(await asyncio.gather(*(self._open(sem, False, deflate, app) for _ in range(self.n_viewers))))
        for i, ws in enumerate(self.viewers):
            self.tasks.append(asyncio.create_task(self._viewer(i, ws)))
        for ws in self.drivers:
            self.tasks.append(asyncio.create_task(self._driver_reader(ws)))

    async def _viewer(self, index: int, ws: ClientConnection) -> None:
        arrivals, done, n = self.arrivals, self.done, self.n_viewers
        try:
            while True:
                raw = await ws.recv(decode=False)
                t = time.perf_counter()
                seq = frame_seq(raw)
                got = arrivals.get(seq)  # type: ignore[arg-type]
                if got is None:
                    continue
                got.append(t)
                if index == 0:
                    self.frames0[seq] = raw  # type: ignore[index]
                if len(got) == n:
                    done[seq].set()  # type: ignore[index]
        except (ConnectionClosed, asyncio.CancelledError):
            return

    async def _driver_reader(self, ws: ClientConnection) -> None:
        try:
            while True:
                raw = await ws.recv(decode=False)
                if raw.startswith(b'{"error"'):
                    message = json.loads(raw).get("error", "?")
                    self.server_errors.append(message)
                    self.errors.append(f"the server refused a command: {message}")
        except (ConnectionClosed, asyncio.CancelledError):
            return

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        sem = asyncio.Semaphore(50)

        async def shut(ws: ClientConnection) -> None:
            async with sem:
                try:
                    await asyncio.wait_for(ws.close(), timeout=5)
                except Exception:  # noqa: BLE001 - closing in teardown, nothing to do about it
                    pass

        await asyncio.gather(*(shut(ws) for ws in self.drivers + self.viewers))

    async def drive(self, result: Result, payloads: list[bytes | str], warmup: int, seq0: int,
                    cpu_of: Any, on_start: Any = None, on_end: Any = None) -> None:
        """Send payloads one at a time; payload i must come back to viewers as seq0 + i."""
        tokens = [RATE_BURST] * len(self.drivers)
        refilled = [time.monotonic()] * len(self.drivers)
        turn = 0
        phase_end = time.monotonic() + PHASE_TIMEOUT
        cpu0 = cpu_self0 = wall0 = 0.0
        measured = 0
        for i, payload in enumerate(payloads):
            if time.monotonic() > phase_end:
                self.errors.append(f"phase time limit reached after {i} commands")
                break
            if i == warmup:
                if on_start:
                    on_start()
                await asyncio.sleep(0.3)  # let the warm-up settle
                cpu0, cpu_self0, wall0 = cpu_of(), self_cpu_seconds(), time.perf_counter()
            # Pick the next driver with a token (mirror of the consumer's token bucket).
            for _ in range(100):
                now = time.monotonic()
                d = turn % len(self.drivers)
                tokens[d] = min(RATE_BURST, tokens[d] + (now - refilled[d]) * RATE_PER_SECOND)
                refilled[d] = now
                if tokens[d] >= 1.5:  # a margin for clock differences between the two ends
                    break
                turn += 1
                if turn % len(self.drivers) == 0:
                    await asyncio.sleep(0.02)
            tokens[d] -= 1
            turn += 1
            seq = seq0 + i
            self.arrivals[seq] = []
            self.done[seq] = asyncio.Event()
            t_send = time.perf_counter()
            await self.drivers[d].send(payload)
            try:
                await asyncio.wait_for(self.done[seq].wait(), timeout=COMMAND_TIMEOUT)
            except asyncio.TimeoutError:
                said = f" (the server said: {self.server_errors[-1]})" if self.server_errors else ""
                self.errors.append(f"seq {seq}: {len(self.arrivals[seq])}/{self.n_viewers} viewers within "
                                   f"{COMMAND_TIMEOUT:.0f} s{said}")
            got = self.arrivals[seq]
            if i >= warmup:
                measured += 1
                result.latencies.extend(t - t_send for t in got)
                result.missing += self.n_viewers - len(got)
                if got:
                    result.last_viewer.append(max(got) - t_send)
                    result.first_viewer.append(min(got) - t_send)
                    result.busy += max(got) - t_send
                if seq in self.frames0:
                    result.payload_bytes.append(len(self.frames0[seq]))
            if self.frames0.get(seq) is not None:
                result.frames.append(self.frames0[seq])
            if len(self.errors) > 5:
                break
        result.commands = measured  # fewer than asked if the loop stopped early
        result.server_cpu = cpu_of() - cpu0
        result.client_cpu = self_cpu_seconds() - cpu_self0
        result.wall = time.perf_counter() - wall0
        if on_end:
            await asyncio.to_thread(on_end)
        result.errors = list(self.errors)


def _app_payload(i: int) -> str:
    return json.dumps({"headers": {"HX-Request": "true", "HX-Request-ID": str(uuid.uuid4())},
                       "body": fanout_command(i)})


async def _run_app(server: Server, viewers: int, commands: int, warmup: int, deflate: bool) -> Result:
    code, session = await asyncio.to_thread(create_room, server.port)
    fan = Fanout(server.name, server.port, f"/ws/r/{code}/", viewers, session)
    result = Result(server.name, viewers, commands)
    t0 = time.perf_counter()
    try:
        await fan.connect_all(deflate, app=True)
        connect_s = time.perf_counter() - t0
        print(f"    {server.name}: room {code}, {viewers} viewers + {DRIVERS} drivers connected in {connect_s:.1f} s",
              flush=True)
        payloads: list[bytes | str] = [_app_payload(i) for i in range(warmup + commands)]
        await fan.drive(result, payloads, warmup, fan.first_seq + 1, server.cpu, *server.profile_hooks())
    finally:
        await fan.close()
    return result


def synthetic_frames(count: int, size: int = 5000) -> list[bytes]:
    frames = []
    for i in range(count):
        head = json.dumps({"seq": i, "from": i, "content": ""})
        pad = max(0, size - len(head))
        frames.append(json.dumps({"seq": i, "from": i, "content": "<p>" + "x" * max(0, pad - 7) + "</p>"}).encode())
    return frames


def _renumber(frame: bytes, seq: int) -> str:
    doc = json.loads(frame)
    doc["seq"] = seq
    doc["from"] = seq
    return json.dumps(doc)


async def _run_bare(server: Server, viewers: int, commands: int, warmup: int, deflate: bool,
                    frames: list[bytes]) -> Result:
    fan = Fanout(server.name, server.port, "/", viewers, None)
    result = Result(server.name, viewers, commands)
    try:
        await fan.connect_all(deflate, app=False)
        print(f"    {server.name}: {viewers} viewers + {DRIVERS} drivers connected", flush=True)
        seq0 = 1
        payloads: list[bytes | str] = [_renumber(frames[i % len(frames)], seq0 + i) for i in range(warmup + commands)]
        sizes = {seq0 + i: len(p.encode()) for i, p in enumerate(payloads)}
        await fan.drive(result, payloads, warmup, seq0, server.cpu)
        result.payload_bytes = [sizes[seq0 + i] for i in range(warmup, warmup + commands)]
    finally:
        await fan.close()
    return result


def run_app(kind: str, viewers: int, commands: int, warmup: int, deflate: bool = False,
            profile_out: str | None = None, variant: str | None = None) -> Result:
    workdir, url = temp_database(kind)
    server = app_server(kind, workdir, url, profile_out, variant)
    server.env["DISTVIZ_STATIC_ROOT"] = collected_static()
    if deflate:
        server.name += " +deflate"
    try:
        migrate(server.env)
        server.start()
        result = asyncio.run(asyncio.wait_for(_run_app(server, viewers, commands, warmup, deflate), timeout=240))
        log = server.log_tail(400)
        if result.errors or re.search(r"Traceback|ERROR|Exception", log):
            result.errors.append(f"{server.name} log tail:\n{server.log_tail(15)}")
        return result
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run_bare(viewers: int, commands: int, warmup: int, frames: list[bytes], deflate: bool = False) -> Result:
    workdir, _url = temp_database("bare")
    server = bare_server(workdir, deflate)
    try:
        server.start()
        return asyncio.run(asyncio.wait_for(_run_bare(server, viewers, commands, warmup, deflate, frames), timeout=240))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
