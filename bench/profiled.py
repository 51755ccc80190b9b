"""Run daphne or uvicorn with cProfile switched on by signal, in the event loop and its workers.

    python bench/profiled.py OUT.prof daphne|uvicorn [server arguments ...]

SIGUSR1 starts profiling, SIGUSR2 stops it and writes OUT.prof (pstats format): the bench sends
them around the measured commands only, so connecting 300 viewers is not in the picture. The
main thread (event loop: channel layer, consumers, the WebSocket send path) has one profiler;
every ``concurrent.futures`` worker (``database_sync_to_async``: room_command_apply,
render_broadcast) gets its own, enabled around each work item while profiling is on. The
profiles are merged when written. Profiling slows everything down: read where the time goes,
not the latency.
"""
from __future__ import annotations

import cProfile
import marshal
import os
import signal
import sys
import threading
from concurrent.futures import thread as cf_thread

OUT, SERVER = sys.argv[1], sys.argv[2]
sys.argv = [SERVER] + sys.argv[3:]

ACTIVE = False
MAIN = cProfile.Profile()
WORKERS: list[cProfile.Profile] = []
_LOCK = threading.Lock()
_LOCAL = threading.local()
_work_item_run = cf_thread._WorkItem.run


def _profiled_work_item(self: object) -> None:
    if not ACTIVE:
        return _work_item_run(self)
    prof = getattr(_LOCAL, "prof", None)
    if prof is None:
        prof = _LOCAL.prof = cProfile.Profile()
        with _LOCK:
            WORKERS.append(prof)
    prof.enable()
    try:
        return _work_item_run(self)
    finally:
        prof.disable()


def _merge(into: dict, prof: cProfile.Profile) -> None:
    prof.create_stats()
    for func, (cc, nc, tt, ct, callers) in prof.stats.items():  # type: ignore[attr-defined]
        if func in into:
            occ, onc, ott, oct_, ocallers = into[func]
            both = dict(ocallers)
            for k, v in callers.items():
                both[k] = tuple(a + b for a, b in zip(both[k], v)) if k in both else v
            into[func] = (occ + cc, onc + nc, ott + tt, oct_ + ct, both)
        else:
            into[func] = (cc, nc, tt, ct, dict(callers))


def _start(signum: int, frame: object) -> None:
    global ACTIVE
    ACTIVE = True
    MAIN.enable()


def _stop(signum: int, frame: object) -> None:
    global ACTIVE
    ACTIVE = False
    MAIN.disable()
    merged: dict = {}
    _merge(merged, MAIN)
    with _LOCK:
        workers = list(WORKERS)
    for prof in workers:  # each is disabled between work items; a running one is read as it is
        _merge(merged, prof)
    tmp = OUT + ".part"
    with open(tmp, "wb") as f:
        marshal.dump(merged, f)
    os.replace(tmp, OUT)


cf_thread._WorkItem.run = _profiled_work_item  # type: ignore[method-assign]
signal.signal(signal.SIGUSR1, _start)
signal.signal(signal.SIGUSR2, _stop)

if SERVER == "daphne":
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()
elif SERVER == "uvicorn":
    from uvicorn.main import main as uvicorn_main

    uvicorn_main()
else:
    raise SystemExit(f"unknown server {SERVER!r}")
