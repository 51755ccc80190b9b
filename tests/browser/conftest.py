"""Browser tests: a real daphne serving the real ASGI app, driven by Debian's Chromium.

The live server is a plain child process (``python -m daphne``) against its own file-backed
SQLite database, migrated once per session. Nothing in this process touches that database:
the tests see the app only the way a person does, through pages, the WebSocket and the JSON
views. A plain subprocess (rather than channels' forked ``DaphneProcess``) inherits no event
loop or asgiref executor from this process, and it can be stopped and started again on the same
port and database, which the reconnect test needs.

Every simulated person gets their own browser context (background pages in one context are
throttled). Each page's uncaught exceptions, CSP violations, dialogs and failed requests are
collected; any of them fails the test at teardown.

Run them in their own pytest process (``make test`` does), with DJANGO_ALLOW_ASYNC_UNSAFE set.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response, expect, sync_playwright

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("DISTVIZ_ARTIFACTS", "artifacts"))
if not ARTIFACTS.is_absolute():
    ARTIFACTS = ROOT / ARTIFACTS
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = os.environ.get("DISTVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000  # any single wait in a test
SERVER_START_S = 30.0

# Reports every CSP violation as a console error the test process can see (CDP-injected, so the
# page's own CSP does not apply to it).
CSP_PROBE = """
document.addEventListener('securitypolicyviolation', function (e) {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') +
                ' at ' + (e.sourceFile || '?') + ':' + (e.lineNumber || 0));
});
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


# -- the live server -----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``python -m daphne`` on a fixed port and database; stop() and start() keep both."""

    def __init__(self, db_path: Path, log_dir: Path) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.db_path = db_path
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "REDIS_URL", "DISTVIZ_WORKERS", "DJANGO_SETTINGS_MODULE")}
        self.env.update({
            "DATABASE_URL": f"sqlite:///{db_path}",
            "DJANGO_SETTINGS_MODULE": "distviz.settings",
            "PYTHONUNBUFFERED": "1",
        })

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def migrate(self) -> None:
        out = subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(f"migrate failed:\n{out.stdout}\n{out.stderr}")

    def listen_args(self) -> list[str]:
        """daphne's arguments for where it listens."""
        return ["-b", self.host, "-p", str(self.port)]

    def ready_urls(self) -> list[str]:
        """Every address that must answer before the server counts as started."""
        return [self.url]

    def log_path(self) -> Path:
        return self.log_dir / f"daphne-{self.starts}.log"

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.starts += 1
        log = open(self.log_path(), "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", *self.listen_args(), "distviz.asgi:application"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        self._log = log
        deadline = time.monotonic() + SERVER_START_S
        for base in self.ready_urls():
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"daphne exited with {self.proc.returncode}; see {log.name}")
                try:
                    with urllib.request.urlopen(base + "/", timeout=2) as resp:  # noqa: S310 - our own server
                        if resp.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"daphne did not answer on {base} within {SERVER_START_S:.0f}s")
                time.sleep(0.1)  # polling the port, not waiting for the app

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        self._log.close()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def daphne_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("live")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server = LiveServer(work / "live-test.sqlite3", ARTIFACTS)
    server.migrate()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the browser -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium (make test-deps does) or set DISTVIZ_CHROMIUM")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Person:
    """One simulated person: their own browser context and one page."""

    name: str
    context: BrowserContext
    page: Page
    base_url: str
    problems: list[str] = field(default_factory=list)  # these fail the test
    console_errors: list[str] = field(default_factory=list)  # kept for the report only

    # navigation

    def home(self) -> None:
        self.page.goto("/")

    def create_room(self, concept: str = "hashring") -> str:
        """From the home page, open a new room of a concept (its card's slug) as its presenter;
        returns the code."""
        self.home()
        self.page.locator(f"#card-{concept} button").click()
        self.page.wait_for_url(re.compile(r"/r/[^/]+/$"))
        code = self.code()
        self.wait_live()
        return code

    def open_room(self, code: str) -> None:
        self.page.goto(f"/r/{code}/")
        self.wait_live()

    def code(self) -> str:
        m = re.search(r"/r/([^/]+)/$", self.page.url)
        assert m, self.page.url
        return m.group(1)

    # the live connection

    def wait_live(self, timeout: float = TIMEOUT_MS) -> None:
        self.page.locator('body[data-conn="open"]').wait_for(state="attached", timeout=timeout)

    def seq(self) -> int:
        return int(self.page.locator("#room").get_attribute("data-seq") or 0)

    def wait_seq(self, at_least: int, timeout: float = TIMEOUT_MS) -> int:
        self.page.wait_for_function(
            "n => Number(document.getElementById('room').dataset.seq) >= n", arg=at_least, timeout=timeout)
        return self.seq()

    # commands through the page's own forms

    def form(self, command: str):  # noqa: ANN201 - a Locator
        return self.page.locator(f"form:has(> input[name=type][value={command}])").first

    def reveal(self, locator: Any) -> None:
        """Open the controls group a control sits in: one group is open at a time."""
        locator.evaluate("el => { const d = el.closest('details'); if (d && !d.open) d.querySelector(':scope > summary').click(); }")

    def submit(self, command: str, **values: Any) -> None:
        form = self.form(command)
        self.reveal(form)
        for name, value in values.items():
            form.locator(f"input[name={name}]:not([type=hidden])").fill(str(value))
        form.locator("button[type=submit], button:not([type])").first.click()

    def command(self, command: str, **values: Any) -> int:
        """Submit a form and wait until this page has applied the resulting broadcast."""
        before = self.seq()
        self.submit(command, **values)
        return self.wait_seq(before + 1)

    # the room as JSON

    def state(self, code: str | None = None) -> dict[str, Any]:
        resp = self.context.request.get(f"/r/{code or self.code()}/state.json")
        assert resp.ok, resp.status
        return resp.json()

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path


class People:
    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.all: list[Person] = []

    def __call__(self, name: str, **context_options: Any) -> Person:
        context_options.setdefault("viewport", {"width": 1440, "height": 1000})
        context = self.browser.new_context(base_url=self.server.url, **context_options)
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(CSP_PROBE)
        page = context.new_page()
        person = Person(name, context, page, self.server.url)
        self._watch(person, page)
        context.on("page", lambda p: self._watch(person, p))
        self.all.append(person)
        return person

    @staticmethod
    def _watch(person: Person, page: Page) -> None:
        def on_console(msg: ConsoleMessage) -> None:
            if msg.type != "error":
                return
            text = msg.text
            if "favicon" in text:
                return
            person.console_errors.append(text)
            if "CSP violation" in text or "Content Security Policy" in text:
                person.problems.append(f"{person.name}: {text}")

        def on_pageerror(exc: Exception) -> None:
            person.problems.append(f"{person.name}: uncaught exception: {exc}")

        def on_dialog(dialog: Any) -> None:
            person.problems.append(f"{person.name}: a {dialog.type} dialog opened: {dialog.message!r}")
            dialog.dismiss()

        def on_response(resp: Response) -> None:
            if resp.status >= 400 and "favicon" not in resp.url:
                person.problems.append(f"{person.name}: HTTP {resp.status} for {resp.url}")

        def on_failed(req: Request) -> None:
            # A socket dropped on purpose (reconnect test) or a navigation away is not a failure
            # of a static file; a script or stylesheet that did not arrive is.
            if req.resource_type in ("script", "stylesheet") and "favicon" not in req.url:
                person.problems.append(f"{person.name}: {req.resource_type} failed to load: {req.url} ({req.failure})")

        page.on("console", on_console)
        page.on("pageerror", on_pageerror)
        page.on("dialog", on_dialog)
        page.on("response", on_response)
        page.on("requestfailed", on_failed)

    def problems(self) -> list[str]:
        return [p for person in self.all for p in person.problems]

    def close(self) -> None:
        for person in self.all:
            try:
                person.context.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


@pytest.fixture
def people(browser: Browser, daphne_server: LiveServer) -> Iterator[People]:
    crowd = People(browser, daphne_server)
    try:
        yield crowd
    finally:
        crowd.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a browser test's body: fail it on problems seen in any page (uncaught exceptions,
    CSP violations, dialogs, missing scripts); on any failure, screenshot every page."""
    crowd = getattr(item, "funcargs", {}).get("people")
    try:
        result = yield
        if crowd is not None:
            problems = crowd.problems()
            assert not problems, "problems in the browser:\n" + "\n".join(problems)
        return result
    except BaseException as exc:
        if crowd is not None:
            problems = crowd.problems()
            if problems and "problems in the browser" not in str(exc):
                exc.add_note("problems in the browser:\n" + "\n".join(problems))
            for person in crowd.all:
                try:
                    person.screenshot(f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', item.name)}-FAILED-{person.name}")
                except Exception:  # noqa: BLE001 - the page may be gone
                    pass
        raise


@pytest.fixture
def presenter(people: People) -> Person:
    return people("presenter")


@pytest.fixture
def student(people: People) -> Person:
    return people("student")


def open_controls(person: Person) -> None:
    """In projection mode the controls are a drawer: open it (the ☰ Controls button)."""
    page = person.page
    if page.evaluate("() => document.body.classList.contains('projection') && !document.body.classList.contains('controls-open')"):
        page.locator(".topbar button[data-toggle=controls]").click()
    expect(page.locator("#presenter-tools")).to_be_visible()


def close_controls(person: Person) -> None:
    page = person.page
    if page.evaluate("() => document.body.classList.contains('controls-open')"):
        page.locator(".topbar button[data-toggle=controls]").click()
    expect(page.locator("body")).not_to_have_class(re.compile(r"controls-open"))


def shot_name(request: pytest.FixtureRequest, suffix: str = "") -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    return f"{base}-{suffix}" if suffix else base
