"""The README's pictures of the rooms, taken from what ships: `make screenshots`.

Starts the app (daphne on a free loopback port, a temporary SQLite database), drives each room
the way a lecturer would (a ring after a membership change and a lookup, presented; a log that
streamed records with a broker stopped; the lock in Kleppmann's process-pause lesson, with a
race of three students on a phone), and writes PNGs to docs/screenshots/. Run it after a change
to a room's look so that the README keeps showing the truth.
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("DISTVIZ_CHROMIUM", "/usr/bin/chromium")
FULL_HD = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}", DJANGO_DEBUG="true",
               DISTVIZ_SECRET_KEY_FILE=str(work / "key"), PYTHONUNBUFFERED="1")
    for name in ("REDIS_URL", "DISTVIZ_WORKERS", "DISTVIZ_PUBLIC_URL"):
        env.pop(name, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "distviz.asgi:application"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/", timeout=2):  # noqa: S310 - our own loopback server
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def open_room(page: Page, slug: str) -> str:
    page.goto("/")
    page.locator(f"#card-{slug} button").click()
    page.wait_for_url(re.compile(r"/r/[^/]+/$"))
    page.locator('body[data-conn="open"]').wait_for(state="attached")
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def seq(page: Page) -> int:
    return int(page.locator("#room").get_attribute("data-seq") or 0)


def send(page: Page, body: dict, events: int = 1) -> None:
    before = seq(page)
    page.evaluate("b => window.distviz.send(b)", body)
    page.wait_for_function("n => Number(document.getElementById('room').dataset.seq) >= n", arg=before + events)


def present(page: Page) -> None:
    before = seq(page)
    page.locator(".topbar button[data-send=present]").click()
    page.wait_for_function("n => Number(document.getElementById('room').dataset.seq) >= n", arg=before + 1)


def settle(page: Page, ms: int = 2500) -> None:
    page.wait_for_timeout(ms)  # let the motion finish: a still picture of where things end up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT,
                    help="the folder the PNGs go to (default: docs/screenshots, what the README shows)")
    out: Path = ap.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="distviz-shots-") as tmp:
        proc, url = start_server(Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
                shots = []

                ctx = browser.new_context(base_url=url, viewport=FULL_HD)
                page = ctx.new_page()
                open_room(page, "hashring")
                send(page, {"type": "add_random_keys", "count": 2000})
                send(page, {"type": "add_node", "name": "E"})
                send(page, {"type": "lookup", "key": "user42"})
                present(page)
                settle(page)
                shots.append(("hashring-projected", page))

                ctx2 = browser.new_context(base_url=url, viewport=FULL_HD)
                log = ctx2.new_page()
                open_room(log, "log-partitions")
                send(log, {"type": "produce_burst", "producer": "producer", "count": 40, "pattern": "order-{i}"})
                send(log, {"type": "broker_stop", "broker": "1"})
                send(log, {"type": "group_join", "group": "analytics", "member": "consumer-2"})
                settle(log)
                shots.append(("logpartitions-presenter", log))

                ctx3 = browser.new_context(base_url=url, viewport=FULL_HD)
                lock = ctx3.new_page()
                code = open_room(lock, "lock-quorums")
                present(lock)
                lock.locator("#lesson button[data-send=lesson_start]", has_text="The process pause").click()
                lock.locator("#lesson.running").wait_for()
                for _ in range(3):
                    lock.keyboard.press("PageDown")
                    lock.wait_for_timeout(600)
                settle(lock)
                shots.append(("lockquorums-lesson-projected", lock))

                ctx4 = browser.new_context(base_url=url, viewport=FULL_HD)
                flow = ctx4.new_page()
                open_room(flow, "workflow-graphs")
                present(flow)
                flow.locator("#lesson button[data-send=lesson_start]", has_text="The same failure both ways").click()
                flow.locator("#lesson.running").wait_for()
                for _ in range(3):
                    flow.keyboard.press("PageDown")
                    flow.wait_for_timeout(600)
                settle(flow)
                shots.append(("workflowgraphs-lesson-projected", flow))

                phone_ctx = browser.new_context(base_url=url, viewport=PHONE, is_mobile=True, has_touch=True)
                phone = phone_ctx.new_page()
                phone.goto(f"/r/{code}/")
                phone.locator(".student-panel input[name=name]").fill("Ada")
                phone.locator(".student-panel button[type=submit]", has_text="Save").click()
                phone.locator("#my-name").wait_for()
                phone.locator('body[data-conn="open"]').wait_for(state="attached")
                settle(phone, 800)
                shots.append(("student-phone", phone))

                for name, p in shots:
                    path = out / f"{name}.png"
                    p.screenshot(path=str(path), animations="disabled")
                    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size:,} B")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
