"""Small helpers shared by the benchmark parts: statistics, ports, process CPU, temp databases."""
from __future__ import annotations

import io
import math
import os
import pstats
import resource
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


def guarded(what: str, fn: Any, *args: Any) -> Any:
    """Run one sub-part; on an error print it and go on with the others (the app may be mid-edit)."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - report and go on
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        print(f"  {what} FAILED: {type(exc).__name__}: {first}")
        return None


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, math.ceil(p / 100 * len(xs)) - 1))
    return xs[k]


def median(values: list[float]) -> float:
    if not values:
        return math.nan
    xs = sorted(values)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        raw = f.read()
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "; fields[0] is field 3 (state)
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLK_TCK


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def raise_nofile(wanted: int = 8192) -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def temp_database(prefix: str) -> tuple[str, str]:
    """A fresh directory and a DATABASE_URL for a file-backed SQLite database inside it."""
    d = tempfile.mkdtemp(prefix=f"distviz-bench-{prefix}-")
    return d, f"sqlite:///{d}/db.sqlite3"


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment for a production-style server process (DEBUG off, plain HTTP on loopback)."""
    # The embedded default (one process, in-memory channel layer) with the default limits: no
    # REDIS_URL, no DISTVIZ_* / DJANGO_* settings from this shell (or from part 2 of this run).
    env = {k: v for k, v in os.environ.items()
           if k != "REDIS_URL" and not k.startswith(("DISTVIZ_", "DJANGO_", "DATABASE_URL"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "distviz.settings",
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def migrate(env: dict[str, str], timeout: float = 120) -> None:
    subprocess.run([PYTHON, "manage.py", "migrate", "--no-input", "-v0"], cwd=REPO, env=env, check=True,
                   timeout=timeout)


def fmt_ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def print_profile(source: object, title: str, limit: int = 22, sorts: tuple[str, ...] = ("cumulative", "tottime")) -> None:
    """Top entries of a cProfile.Profile or a stats file, by each sort key, indented."""
    for key in sorts:
        out = io.StringIO()
        stats = pstats.Stats(source, stream=out)  # type: ignore[arg-type]
        stats.strip_dirs().sort_stats(key).print_stats(limit)
        text = out.getvalue()
        body = text[text.find("   ncalls"):] if "   ncalls" in text else text
        print(f"  cProfile ({title}), top {limit} by {key}:")
        for line in body.rstrip().splitlines():
            print("    " + line)


IDLE = ("<method 'get' of '_queue.SimpleQueue' objects>", "<method 'poll' of 'select.epoll' objects>",
        "<method 'acquire' of '_thread.lock' objects>", "<built-in method time.sleep>")


def profile_by_package(path: str, limit: int = 14) -> None:
    """Own time (tottime) of a stats file summed by package, idle waits left out."""
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tt, _ct, callers) in stats.items():
        if filename == "~":
            if func in IDLE:
                continue
            # A C function: charge it to the package of its heaviest caller.
            caller = max(callers.items(), key=lambda kv: kv[1][2], default=None)
            filename = caller[0][0] if caller else "~"
            label = _package(filename) + " (C calls)"
        else:
            label = _package(filename)
        groups[label] = groups.get(label, 0.0) + tt
    total = sum(groups.values()) or 1.0
    print(f"  own time by package (idle waits left out; {total:.2f} s in all):")
    for label, tt in sorted(groups.items(), key=lambda kv: -kv[1])[:limit]:
        print(f"    {100 * tt / total:5.1f}%  {tt:7.2f} s  {label}")


def _package(filename: str) -> str:
    f = filename.replace("\\", "/")
    if "/site-packages/" in f:
        rest = f.split("/site-packages/", 1)[1]
        return rest.split("/", 1)[0].removesuffix(".py")
    if str(REPO) in f:
        rel = f.split(str(REPO) + "/", 1)[1]
        return "/".join(rel.split("/")[:2]) if rel.startswith("apps/") else rel.split("/", 1)[0]
    if "/lib/python3" in f:
        rest = f.split("/lib/python3", 1)[1].split("/", 1)[1]
        return "stdlib " + rest.split("/", 1)[0].removesuffix(".py")
    return f
