"""A class on the room's network (issue 10, "done when"): students get the advertised address.

The server here runs the way ``make classroom`` runs it, on loopback only: debug off, plain HTTP,
the secret key in a key file of its own, static files collected (fingerprinted, brotli + gzip),
``DISTVIZ_PUBLIC_URL`` set, and the allowed hosts following from it. One daphne process listens
on three loopback addresses on one port:

- 127.0.0.1, where the presenter opens the room (as a lecturer typing 127.0.0.1 on the laptop);
- 127.0.0.2, the advertised address (the laptop's LAN address in a real classroom);
- 127.0.0.3, an address of the same machine that is not allowed (a phone that typed another one).

The presenter presents; the test reads the join URL from the join panel and decodes the QR code
from a screenshot of it (zxing-cpp), and both must be the advertised address. A second browser
context opens that URL, gives a name and follows the room live. A request for the host that is
not allowed gets the 400 page naming the advertised address. Only loopback is ever contacted.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Browser, expect

from .conftest import ARTIFACTS, ROOT, LiveServer, People, Person
from .test_classroom_browser import add_node, give_name, node_names, present

pytestmark = pytest.mark.browser

PRESENTER_HOST, PUBLIC_HOST, OTHER_HOST = "127.0.0.1", "127.0.0.2", "127.0.0.3"


class ClassroomServer(LiveServer):
    """daphne as ``make classroom`` runs it, listening on three loopback addresses."""

    def __init__(self, work: Path) -> None:
        super().__init__(work / "classroom.sqlite3", ARTIFACTS)
        self.host = PRESENTER_HOST  # where the presenter opens it (People uses self.url as base_url)
        self.work = work
        self.public_url = f"http://{PUBLIC_HOST}:{self.port}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DJANGO_", "DISTVIZ_")) and k not in ("REDIS_URL", "DATABASE_URL")}
        env.update({
            "DJANGO_SETTINGS_MODULE": "distviz.settings",
            "DJANGO_DEBUG": "false",
            "DISTVIZ_HTTPS": "false",
            "DISTVIZ_PUBLIC_URL": self.public_url,
            "DJANGO_ALLOWED_HOSTS": f"{PUBLIC_HOST},{PRESENTER_HOST},localhost",
            "DJANGO_CSRF_TRUSTED_ORIGINS": f"{self.public_url},http://{PRESENTER_HOST}:{self.port}",
            "DISTVIZ_STATIC_ROOT": str(work / "static"),
            "DISTVIZ_SECRET_KEY_FILE": str(work / "secret-key"),
            "DATABASE_URL": f"sqlite:///{work / 'classroom.sqlite3'}",
            "PYTHONUNBUFFERED": "1",
        })
        self.env = env

    def _manage(self, *argv: str) -> None:
        out = subprocess.run([sys.executable, *argv], cwd=ROOT, env=self.env, capture_output=True, text=True,
                             timeout=300)
        if out.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{out.stdout}\n{out.stderr}")

    def prepare(self) -> None:
        """What ``make prepare`` does: the key file, the database, the static files."""
        self._manage("-m", "distviz.secretkey")
        self._manage("manage.py", "migrate", "--no-input", "-v0")
        self._manage("manage.py", "collectstatic", "--no-input", "-v0")

    def listen_args(self) -> list[str]:
        return [a for host in (PRESENTER_HOST, PUBLIC_HOST, OTHER_HOST) for a in ("-e", f"tcp:{self.port}:interface={host}")]

    def ready_urls(self) -> list[str]:
        return [self.url, self.public_url]

    def log_path(self) -> Path:
        return ARTIFACTS / "daphne-classroom.log"


@pytest.fixture(scope="module")
def classroom_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClassroomServer]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server = ClassroomServer(tmp_path_factory.mktemp("classroom"))
    server.prepare()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def people(browser: Browser, classroom_server: ClassroomServer) -> Iterator[People]:
    """Everyone starts at the presenter's address; a student navigates to the URL they were shown."""
    crowd = People(browser, classroom_server)  # type: ignore[arg-type] - People needs only .url
    try:
        yield crowd
    finally:
        crowd.close()


# -- reading the QR code -----------------------------------------------------------------------

def png_to_gray(data: bytes):  # noqa: ANN201 - a numpy array
    """An 8-bit, non-interlaced PNG (what Chromium's screenshots are) as a grayscale array."""
    import numpy as np

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = depth = ctype = interlace = -1
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert depth == 8 and interlace == 0 and ctype in (0, 2, 4, 6), (depth, ctype, interlace)
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    stride = width * ch
    raw = zlib.decompress(b"".join(idat))
    rows = np.zeros((height, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, np.uint8, stride, start + 1).astype(np.int32)
        if kind == 0:  # None
            cur = line
        elif kind == 1:  # Sub: a running sum per channel
            cur = np.cumsum(line.reshape(width, ch), axis=0).reshape(stride) & 255
        elif kind == 2:  # Up
            cur = (line + prev) & 255
        else:  # Average, Paeth: byte by byte
            cur_l, prev_l, line_l = [0] * stride, prev.tolist(), line.tolist()
            for i in range(stride):
                a = cur_l[i - ch] if i >= ch else 0
                b = prev_l[i]
                if kind == 3:
                    cur_l[i] = (line_l[i] + (a + b) // 2) & 255
                else:
                    c = prev_l[i - ch] if i >= ch else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur_l[i] = (line_l[i] + pred) & 255
            cur = np.array(cur_l, dtype=np.int32)
        rows[y] = cur
        prev = cur
    pixels = rows.reshape(height, width, ch)
    gray = pixels[:, :, 0] if ch <= 2 else pixels[:, :, :3].mean(axis=2)
    return gray.astype(np.uint8)


def decode_qr(person: Person) -> str:
    """Screenshot the join panel's QR code and decode it, as a phone's camera would."""
    import numpy as np
    import zxingcpp

    qr = person.page.locator("#join-panel .join-qr svg")
    png = qr.screenshot(animations="disabled")
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "screenshots" / "lan-join-qr.png").write_bytes(png)
    gray = png_to_gray(png)
    framed = np.pad(gray, 24, constant_values=255)  # a quiet zone around the element's own border
    found = zxingcpp.read_barcodes(framed)
    assert len(found) == 1, f"{len(found)} barcodes in the QR screenshot ({gray.shape[1]}x{gray.shape[0]} px)"
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode, found[0].format
    return found[0].text


# -- the tests -----------------------------------------------------------------------------------

def test_a_student_joins_by_the_join_panel_and_qr_code_at_the_advertised_address(
        people: People, classroom_server: ClassroomServer) -> None:
    try:
        import zxingcpp  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the QR code cannot be decoded without zxing-cpp ({exc}): .venv/bin/pip install -r requirements-dev.txt")
    public = classroom_server.public_url
    presenter = people("presenter")
    code = present(presenter)  # on http://127.0.0.1:PORT, as the lecturer typed it
    assert presenter.page.url == f"{classroom_server.url}/r/{code}/"
    expected = f"{public}/r/{code}/"

    panel = presenter.page.locator("#join-panel")
    expect(panel).to_be_visible()
    shown = panel.locator(".join-how strong").inner_text().strip()
    scanned = decode_qr(presenter)
    for what, url in (("join panel", shown), ("QR code", scanned)):
        assert url == expected, f"the {what} says {url!r}, not the advertised {expected!r}"
        assert "127.0.0.1" not in url and "localhost" not in url, f"the {what} shows the presenter's own address: {url}"

    # A student's phone opens what the QR code says, in a browser of its own.
    student = people("student", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    sockets: list[str] = []
    student.page.on("websocket", lambda ws: sockets.append(ws.url))
    student.page.goto(scanned)
    student.wait_live()
    assert student.page.url == expected
    expect(student.page.locator("body")).to_have_attribute("data-role", "participant")
    give_name(student, "Ada")
    assert student.page.url == expected, "the name form kept the student on the advertised address"
    assert sockets and all(u.startswith(f"ws://{PUBLIC_HOST}:{classroom_server.port}/ws/r/{code}/") for u in sockets), sockets

    # The student follows the room live: the presenter adds a node, the student's page shows it.
    assert "E" not in node_names(student)
    seq = add_node(presenter, "E")
    student.wait_seq(seq)
    expect(student.page.locator("#nodes .node-name", has_text="E")).to_have_count(1)
    assert node_names(student) == node_names(presenter)
    expect(presenter.page.locator("#presence strong")).to_have_text("2")


def test_a_host_that_is_not_allowed_gets_a_page_naming_the_advertised_address(
        browser: Browser, classroom_server: ClassroomServer) -> None:
    public = classroom_server.public_url
    wrong = f"http://{OTHER_HOST}:{classroom_server.port}"
    context = browser.new_context(base_url=wrong)
    try:
        page = context.new_page()
        for path in ("/", "/r/ABCD/"):
            resp = page.goto(path)
            assert resp is not None and resp.status == 400, (path, resp and resp.status)
            expect(page.locator("h1")).to_have_text("This is not the address distviz answers at")
            link = page.locator(f'a[href="{public}/"]')
            expect(link).to_have_text(f"{public}/")
            body = page.locator("body").inner_text()
            assert "Traceback" not in body and "DisallowedHost" not in body, "a debug page reached the browser"
        # The same with an explicit Host header on the presenter's own listener.
        resp = context.request.get(f"{classroom_server.url}/", headers={"Host": f"{OTHER_HOST}:{classroom_server.port}"})
        assert resp.status == 400
        assert f"{public}/" in resp.text()
    finally:
        context.close()

