"""The production database: the engine on a real PostgreSQL (skipped where none answers).

Runs in child processes with DATABASE_URL pointing at a fresh database, so pytest-django's own
SQLite test database is not involved.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("DISTVIZ_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

SCRIPT = r"""
import django, os
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from apps.rooms.registry import get
from apps.rooms.services import Actor, STATE_CACHE, room_command_apply, room_create, room_state, state_at
from apps.rooms.frames import render_broadcast
P = Actor("presenter")
for concept, commands in [
    ("hashring", [{"type": "add_node"}, {"type": "add_random_keys", "count": 300}, {"type": "lookup", "key": "k"},
                  {"type": "step_back"}, {"type": "round_open", "kind": "own_key"}]),
    ("log-partitions", [{"type": "produce_burst", "producer": "producer", "count": 40, "pattern": "order-{i}"},
                        {"type": "step"}, {"type": "broker_stop", "broker": 0}]),
]:
    room, _ = room_create(concept=concept)
    for i, command in enumerate(commands):
        render_broadcast(room_command_apply(code=room.code, actor=P, command=command, command_id=f"c{i}"))
    dup = room_command_apply(code=room.code, actor=P, command=commands[0], command_id="c0")
    assert dup.duplicate
    if concept == "hashring":
        room_command_apply(code=room.code, actor=Actor("participant", "Ada", "p1"), command={"type": "add_my_key"})
    STATE_CACHE.clear()
    room.refresh_from_db()
    spec = get(concept)
    assert spec.to_json(room_state(room)) == spec.to_json(state_at(room, room.seq))
    print(concept, room.seq, "ok")
"""


def _admin():
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means: no PostgreSQL here
        pytest.skip(f"no PostgreSQL at {ADMIN_URL} ({exc.__class__.__name__}); set DISTVIZ_TEST_POSTGRES to point at one")


def test_postgres_runs_the_engine_and_the_log_folds_to_the_live_state():
    name = f"distviz_test_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
            env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "distviz.settings"}
            env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr[-3000:]
            assert done.stdout.split("\n")[:2] == ["hashring 8 ok", "log-partitions 4 ok"]
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgres_refuses_bad_values_like_sqlite():
    """The bad-value table (test_bad_values.py: every engine and concept command, lone
    surrogates and NUL in texts, field names and command ids, non-finite numbers over the socket)
    run whole on PostgreSQL, which refuses NUL in text where SQLite stores it."""
    _admin().close()  # skips here when no PostgreSQL answers
    name = f"distviz_fuzz_{uuid.uuid4().hex[:10]}"
    env = {**{k: v for k, v in os.environ.items() if k not in ("DISTVIZ_TEST_DB", "REDIS_URL", "DISTVIZ_WORKERS")},
           "DATABASE_URL": ADMIN_URL.rsplit("/", 1)[0] + "/" + name, "DJANGO_SETTINGS_MODULE": "distviz.settings"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/rooms/test_bad_values.py", "-q", "-p", "no:cacheprovider",
                           "--create-db", "-x"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    tail = done.stdout[-3000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    assert " passed" in tail and "failed" not in tail, tail
