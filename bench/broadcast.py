"""Part 2: the one text frame broadcast per command, on a 50 x 160 ring with 100,000 keys.

Runs in this process against a temporary SQLite database: the room is built and driven through
``room_command_apply`` (as the presenter) and every frame comes from ``render_broadcast``,
exactly what the consumer sends to the room's group.
"""
from __future__ import annotations

import atexit
import cProfile
import json
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from typing import Any

from common import median, print_profile, server_env, temp_database

ROUNDS = 5
BUDGET_BYTES = 8 * 1024
BIG_KEYS = 100_000
# The default limit is exactly 100,000 keys, so add_key / tick on a full ring would be refused:
# this process raises it a little so the ring starts at exactly 100,000 and can still grow.
KEY_LIMIT_FOR_BENCH = BIG_KEYS + 1_000


def setup_django() -> str:
    d, url = temp_database("inproc")
    atexit.register(shutil.rmtree, d, True)
    for name, value in server_env(url, DISTVIZ_MAX_KEYS=str(KEY_LIMIT_FOR_BENCH)).items():
        if name.startswith(("DJANGO_", "DATABASE_URL", "DISTVIZ_")):
            os.environ[name] = value
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return d


def _apply(code: str, command: dict[str, Any], render: bool = True) -> tuple[Any, str, float, float]:
    from apps.rooms.frames import render_broadcast
    from apps.rooms.services import Actor, room_command_apply

    t0 = time.perf_counter()
    applied = room_command_apply(code=code, actor=Actor("presenter"), command=command)
    t1 = time.perf_counter()
    frame = render_broadcast(applied) if render else ""
    t2 = time.perf_counter()
    return applied, frame, t1 - t0, t2 - t1


_OOB = re.compile(r'<[a-zA-Z][^>]*\shx-swap-oob="([^"]*)"[^>]*>')


def ensure_django() -> None:
    """Set Django up for an in-process part, unless another part of this run already did (they
    then share its database)."""
    from django.apps import apps

    if not apps.ready:
        setup_django()


def parts_over_budget(rows: list[dict[str, Any]], title: str, budget: int, limit: int = 6) -> None:
    """Which parts make the frames over ``budget`` bytes big: bytes by part, summed over them."""
    over = [r for r in rows if r["bytes"] > budget]
    if not over:
        return
    sums: dict[str, int] = defaultdict(int)
    seen: dict[str, int] = defaultdict(int)
    for r in over:
        for part, size, _count in breakdown(r["frame"]):
            sums[part] += size
            seen[part] += 1
    total = sum(r["bytes"] for r in over)
    print(f"  {title}: the {len(over)} frames over {budget // 1024} KB ({total // len(over):,} B on average), bytes by part:")
    for part, size in sorted(sums.items(), key=lambda kv: -kv[1])[:limit]:
        print(f"    {100 * size / total:5.1f}%  {size // len(over):>7,} B per frame  in {seen[part]:>3} of them  {part}")


def breakdown(frame: str) -> list[tuple[str, int, int]]:
    """(swap + element id with digits folded, bytes, count) for each out-of-band part of a frame."""
    content = json.loads(frame)["content"]
    starts = []
    for m in _OOB.finditer(content):
        s = m.start()
        if content[max(0, s - 5):s] == "<svg>":
            s -= 5
        if starts and s < starts[-1][1]:
            continue
        idm = re.search(r'\sid=["\']([^"\']*)["\']', m.group(0))
        label = m.group(1) + (" #" + re.sub(r"[0-9a-f]{6,}|\d+", "*", idm.group(1)) if idm else "")
        starts.append((label, s))
    sizes: dict[str, int] = defaultdict(int)
    counts: Counter[str] = Counter()
    for i, (label, s) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(content)
        sizes[label] += len(content[s:end].encode())
        counts[label] += 1
    return sorted(((k, v, counts[k]) for k, v in sizes.items()), key=lambda x: -x[1])


def build_big_room() -> tuple[str, float]:
    from apps.rooms.services import room_create, room_state
    from apps.rooms.models import Room

    t0 = time.perf_counter()
    room, _key = room_create(concept="hashring")
    state = room_state(room)
    code = room.code
    _apply(code, {"type": "set_vnodes", "vnodes": 160}, render=False)
    for _ in range(50 - len(state.nodes)):
        _apply(code, {"type": "add_node"}, render=False)
    _apply(code, {"type": "clear_keys"}, render=False)
    _apply(code, {"type": "add_random_keys", "count": BIG_KEYS}, render=False)
    state = room_state(Room.objects.get(code=code))
    assert len(state.nodes) == 50 and len(state.table) == 50 * 160 and len(state.keys) == BIG_KEYS, (
        len(state.nodes), len(state.table), len(state.keys))
    return code, time.perf_counter() - t0


def mix_round(r: int) -> list[tuple[str, dict[str, Any]]]:
    added = f"Z{r}"
    return [
        ("add_node", {"type": "add_node", "name": added, "vnodes": 160}),
        ("add_key", {"type": "add_key", "key": f"bench-key-{r}"}),
        ("lookup", {"type": "lookup", "key": f"someone-{r}"}),
        ("remove_node", {"type": "remove_node", "name": added}),
        ("set_vnodes (1 node)", {"type": "set_vnodes", "name": "A", "vnodes": 200 if r % 2 == 0 else 160}),
        ("tick (step)", {"type": "step"}),
    ]


def run(profile: bool = False) -> dict[str, Any]:
    code, setup_s = build_big_room()
    print(f"  room {code}: 50 nodes x 160 vnodes, {BIG_KEYS:,} keys, built through room_command_apply "
          f"in {setup_s:.1f} s (bench process key limit {KEY_LIMIT_FOR_BENCH:,})")
    for _kind, cmd in mix_round(0):  # warm-up: template loading, first renders
        _apply(code, cmd)
    per_kind: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    frames: dict[str, str] = {}
    all_bytes: list[int] = []
    prof = cProfile.Profile() if profile else None
    for r in range(1, ROUNDS + 1):
        for kind, cmd in mix_round(r):
            if prof:
                prof.enable()
            _applied, frame, apply_s, render_s = _apply(code, cmd)
            if prof:
                prof.disable()
            size = len(frame.encode())
            per_kind[kind]["bytes"].append(size)
            per_kind[kind]["apply"].append(apply_s * 1000)
            per_kind[kind]["render"].append(render_s * 1000)
            all_bytes.append(size)
            frames[kind] = frame
    print(f"  {'command':<22}{'bytes (median)':>15}{'apply ms':>10}{'render ms':>11}{'total ms':>10}")
    for kind, d in per_kind.items():
        total = [a + b for a, b in zip(d["apply"], d["render"])]
        print(f"  {kind:<22}{int(median(d['bytes'])):>15,}{median(d['apply']):>10.1f}{median(d['render']):>11.1f}"
              f"{median(total):>10.1f}")
    med = median(all_bytes)
    print(f"  median over all {len(all_bytes)} broadcasts: {med:,.0f} bytes "
          f"(min {min(all_bytes):,}, max {max(all_bytes):,}); budget {BUDGET_BYTES:,}")
    biggest = max(frames, key=lambda k: len(frames[k]))
    print(f"  largest parts of the {biggest} frame ({len(frames[biggest].encode()):,} bytes):")
    for label, size, count in breakdown(frames[biggest])[:6]:
        print(f"    {size:>8,} bytes  x{count:<4} {label}")
    if prof:
        print_profile(prof, "room_command_apply + render_broadcast over the mix")
    return {"median_bytes": med, "per_kind": {k: {m: median(v) for m, v in d.items()} for k, d in per_kind.items()}}
