"""Part 4 (log): the log partitions concept on a big log.

a. The pure core: one tick's ``evolve`` (the events one ``tick`` command causes, folded into the
   state) on 1,000,000 records over 12 partitions, 6 brokers, replication factor 3, two consumer
   groups. Each run ticks the state the previous run left, as the room clock does. ``decide``
   is timed too (the server runs both for every tick: decide checks the command and writes the
   report, evolve folds the events). Budget: evolve <= 5 ms.
b. The one broadcast frame per command kind on that log, through ``room_command_apply`` and
   ``apps.rooms.frames.render_broadcast`` (what every viewer receives). Budget: <= 8 KB.
c. Bytes per viewer per second while playing at 1x (one tick per second): the median frame of a
   tick while a producer streams 5 records per tick. Budget: <= 2 KB/s.

In this process, against a temporary SQLite database (shared with part 2 when both run).
"""
from __future__ import annotations

import time
import zlib
from collections import defaultdict
from typing import Any

import broadcast
from common import median, percentile

PARTITIONS, BROKERS, RF = 12, 6, 3
RECORDS = 1_000_000
BURST = 100_000  # the most one produce_burst takes
STREAM_RATE = 5
TICK_RUNS = 60
ROUNDS = 7  # broadcasts measured per command kind
TICK_BUDGET_MS = 5.0
BYTES_BUDGET = 8 * 1024
RATE_BUDGET = 2 * 1024
SCENE = {"partitions": PARTITIONS, "brokers": BROKERS, "replication_factor": RF}
SECOND_GROUP = "audit"


def _bursts() -> list[dict[str, Any]]:
    """1,000,000 records in bursts of 100,000, keyed both ways (orders and users)."""
    count = (RECORDS - 3) // BURST  # the scene starts with its 3 records
    patterns = ("order-{i}", "random-users")
    cmds = [{"type": "produce_burst", "producer": "producer", "count": BURST, "pattern": patterns[i % 2]}
            for i in range(count)]
    rest = RECORDS - 3 - count * BURST
    if rest:
        cmds.append({"type": "produce_burst", "producer": "producer", "count": rest, "pattern": "none"})
    return cmds


def _groups() -> list[dict[str, Any]]:
    return [
        {"type": "group_join", "group": "analytics", "member": "consumer-2"},
        {"type": "group_join", "group": "analytics", "member": "consumer-3"},
        {"type": "group_join", "group": SECOND_GROUP, "member": "auditor-1", "speed": 20},
        {"type": "group_join", "group": SECOND_GROUP, "member": "auditor-2", "speed": 20},
    ]


# -- a. the pure core --------------------------------------------------------------------------

def _tick() -> dict[str, Any]:
    """One room-clock tick, as the clock sends it (it always says how long)."""
    from apps.rooms.registry import TICK_MS

    return {"type": "tick", "dt_ms": TICK_MS}


def _apply(state: Any, command: dict[str, Any], seed: str) -> tuple[Any, list[dict[str, Any]]]:
    from apps.logpartitions.sim import decide, evolve

    events = decide(state, {**command, "_seed": seed})
    for ev in events:
        state = evolve(state, ev)
    return state, events


def build_state() -> tuple[Any, float]:
    from apps.logpartitions.sim import initial_state

    t0 = time.perf_counter()
    state = initial_state(SCENE)
    for i, cmd in enumerate(_bursts() + _groups()):
        state, _ = _apply(state, cmd, f"bench:{i}")
    state, _ = _apply(state, _tick(), "bench:replicate")  # followers catch up: all in sync
    return state, time.perf_counter() - t0


def _time_ticks(state: Any, runs: int, seed: str) -> tuple[Any, list[float], list[float], list[int]]:
    from apps.logpartitions.sim import decide, evolve

    evolve_ms, decide_ms, appended = [], [], []
    for i in range(runs):
        t0 = time.perf_counter()
        events = decide(state, {**_tick(), "_seed": f"{seed}:{i}"})
        t1 = time.perf_counter()
        for ev in events:
            state = evolve(state, ev)
        t2 = time.perf_counter()
        decide_ms.append((t1 - t0) * 1000)
        evolve_ms.append((t2 - t1) * 1000)
        appended.append(sum(e["data"].get("appended", 0) for e in events if e["kind"] == "burst_produced"))
    return state, evolve_ms, decide_ms, appended


def time_evolve() -> dict[str, Any]:
    from apps.logpartitions.sim import decide, evolve, initial_state, totals

    base, build_s = build_state()
    t = totals(base)
    print(f"  state: {t['records']:,} records over {PARTITIONS} partitions, {BROKERS} brokers, RF {RF}, groups "
          f"{', '.join(g.name for g in base.groups)} (built in {build_s:.2f} s)")
    _time_ticks(base, 5, "warm")
    print(f"  {'tick':<44}{'runs':>5}{'evolve med':>11}{'p95':>7}{'max':>7}{'decide med':>11}{'p95':>7}")
    rows: dict[str, dict[str, float]] = {}

    def row(name: str, evolve_ms: list[float], decide_ms: list[float]) -> None:
        rows[name] = {"median_ms": median(evolve_ms), "p95_ms": percentile(evolve_ms, 95),
                      "decide_median_ms": median(decide_ms)}
        print(f"  {name:<44}{len(evolve_ms):>5}{median(evolve_ms):>11.2f}{percentile(evolve_ms, 95):>7.2f}"
              f"{max(evolve_ms):>7.2f}{median(decide_ms):>11.2f}{percentile(decide_ms, 95):>7.2f}")

    _, ev_ms, de_ms, _ = _time_ticks(base, TICK_RUNS, "idle")
    row("idle (consumers read, nothing produced)", ev_ms, de_ms)
    streaming, _ = _apply(base, {"type": "set_producer_rate", "producer": "producer", "rate": STREAM_RATE,
                                 "pattern": "order-{i}"}, "rate")
    _, ev_ms, de_ms, appended = _time_ticks(streaming, TICK_RUNS, "stream")
    assert min(appended) == STREAM_RATE, appended
    row(f"a producer streams {STREAM_RATE} records per tick", ev_ms, de_ms)

    # Heavy, for information: followers fetching 100,000 records each after a broker restart.
    stopped, _ = _apply(base, {"type": "broker_stop", "broker": 1}, "stop")
    for i in range(3):
        stopped, _ = _apply(stopped, {"type": "produce_burst", "producer": "producer", "count": 20_000,
                                      "pattern": "order-{i}"}, f"gap:{i}")
    restarted, _ = _apply(stopped, {"type": "broker_start", "broker": 1}, "start")
    events = decide(restarted, {**_tick(), "_seed": "catch-up"})
    catch_ms = []
    for _ in range(15):
        t0 = time.perf_counter()
        for ev in events:
            after = evolve(restarted, ev)
        catch_ms.append((time.perf_counter() - t0) * 1000)
    fetched = sum(f["records"] for e in events if e["kind"] == "ticked" for f in e["data"].get("fetched", []))
    print(f"  {'catch-up after a restart (info, same tick x15)':<44}{len(catch_ms):>5}{median(catch_ms):>11.2f}"
          f"{percentile(catch_ms, 95):>7.2f}{max(catch_ms):>7.2f}   ({fetched:,} records fetched)")
    del after
    # A seed-sized room, for scale.
    small, _ = _apply(initial_state(), {"type": "set_producer_rate", "producer": "producer", "rate": STREAM_RATE,
                                        "pattern": "order-{i}"}, "small")
    _, ev_ms, de_ms, _ = _time_ticks(small, TICK_RUNS, "small")
    print(f"  {'(the seed: 3 partitions, streaming, info)':<44}{len(ev_ms):>5}{median(ev_ms):>11.2f}"
          f"{percentile(ev_ms, 95):>7.2f}{max(ev_ms):>7.2f}{median(de_ms):>11.2f}{percentile(de_ms, 95):>7.2f}")
    return rows


# -- b, c. broadcast frames ------------------------------------------------------------------------


def _presenter(code: str, command: dict[str, Any]) -> tuple[Any, str]:
    from apps.rooms.frames import render_broadcast
    from apps.rooms.services import Actor, room_command_apply

    applied = room_command_apply(code=code, actor=Actor("presenter"), command=command)
    return applied, render_broadcast(applied)


def build_room() -> tuple[str, float]:
    from apps.rooms.models import Room
    from apps.rooms.services import room_create, room_state

    t0 = time.perf_counter()
    room, _key = room_create(concept="log-partitions")
    code = room.code
    for cmd in [{"type": "load_scene", **SCENE}] + _bursts() + _groups() + [{"type": "step"}]:
        _presenter(code, cmd)
    state = room_state(Room.objects.get(code=code))
    assert state.total_records == RECORDS and len(state.partitions) == PARTITIONS and len(state.groups) == 2, (
        state.total_records, len(state.partitions), len(state.groups))
    return code, time.perf_counter() - t0


def frame_sizes() -> dict[str, Any]:
    from apps.rooms.models import Room

    code, build_s = build_room()
    print(f"  room {code}: {RECORDS:,} records, {PARTITIONS} partitions on {BROKERS} brokers, RF {RF}, groups "
          f"analytics (3) and {SECOND_GROUP} (2); built through room_command_apply in {build_s:.1f} s")
    sizes: dict[str, list[int]] = defaultdict(list)
    apply_ms: dict[str, list[float]] = defaultdict(list)
    frames: dict[str, list[str]] = defaultdict(list)

    def measure(kind: str, command: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        _applied, frame = _presenter(code, command)
        apply_ms[kind].append((time.perf_counter() - t0) * 1000)
        sizes[kind].append(len(frame.encode()))
        frames[kind].append(frame)

    _presenter(code, {"type": "step"})  # warm-up
    streaming = f"tick, producer streams {STREAM_RATE}/tick"
    _presenter(code, {"type": "set_producer_rate", "producer": "producer", "rate": STREAM_RATE, "pattern": "order-{i}"})
    for _ in range(ROUNDS * 3):  # the rows re-page now and then: more samples for the rate
        measure(streaming, {"type": "step"})
    _presenter(code, {"type": "set_producer_rate", "producer": "producer", "rate": 0})
    for r in range(ROUNDS):
        measure("tick, idle", {"type": "step"})
        measure("produce (keyed)", {"type": "produce", "producer": "producer", "key": f"order-bench-{r}"})
        measure("produce (no key)", {"type": "produce", "producer": "producer"})
        broker = r % BROKERS
        measure("broker_stop", {"type": "broker_stop", "broker": broker})
        measure("broker_start", {"type": "broker_start", "broker": broker})
        _presenter(code, {"type": "step"})  # the restarted broker catches up
        measure("group_join", {"type": "group_join", "group": "analytics", "member": f"bench-{r}"})
        measure("group_leave", {"type": "group_leave", "group": "analytics", "member": f"bench-{r}"})
    room = Room.objects.get(code=code)
    print(f"  {'command':<34}{'n':>4}{'bytes med':>11}{'max':>9}{'apply+render ms':>17}")
    for kind, values in sizes.items():
        print(f"  {kind:<34}{len(values):>4}{int(median(values)):>11,}{max(values):>9,}{median(apply_ms[kind]):>17.1f}")
    for kind, which in ((streaming, "median"), (streaming, "largest"), ("tick, idle", "median")):
        ordered = sorted(frames[kind], key=len)
        frame = ordered[len(ordered) // 2] if which == "median" else ordered[-1]
        parts = broadcast.breakdown(frame)
        print(f"  parts of the {which} '{kind}' frame ({len(frame.encode()):,} bytes), largest first:")
        for label, size, count in parts[:8]:
            print(f"    {size:>8,} bytes  x{count:<4} {label}")
        rest = parts[8:]
        if rest:
            print(f"    {sum(p[1] for p in rest):>8,} bytes  in {len(rest)} more kinds of part")
    per_second = median(sizes[streaming])  # 1x: one tick per second
    print(f"  while playing at 1x (one tick per second, producer streaming {STREAM_RATE}/tick): "
          f"{per_second:,.0f} bytes per viewer per second (median tick frame; max {max(sizes[streaming]):,}); "
          f"room at seq {room.seq}")
    print(f"  while playing at 1x with nothing produced (consumers still read): {median(sizes['tick, idle']):,.0f} "
          "bytes per viewer per second (info)")
    # On the wire with permessage-deflate as uvicorn negotiates it (context takeover: one
    # compressor for the connection, a sync flush per message), measured on the same frames.
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    wire = []
    for frame in frames[streaming]:
        data = deflate.compress(frame.encode()) + deflate.flush(zlib.Z_SYNC_FLUSH)
        wire.append(len(data) - 4)  # permessage-deflate drops the trailing 00 00 ff ff
    wire_per_second = median(wire)
    print(f"  the same with permessage-deflate (make run SERVER=uvicorn negotiates it): {wire_per_second:,.0f} bytes "
          f"per viewer per second on the wire (median; max {max(wire):,})")
    return {"sizes": {k: median(v) for k, v in sizes.items()}, "max": {k: max(v) for k, v in sizes.items()},
            "per_second": per_second, "streaming": streaming, "wire_per_second": wire_per_second}


def run() -> dict[str, Any]:
    t0 = time.perf_counter()
    print("  a. one tick's evolve, pure core")
    ticks = time_evolve()
    print("  b. broadcast frame per command (room_command_apply + render_broadcast)")
    broadcast.ensure_django()
    frames = frame_sizes()
    stream_row = ticks[f"a producer streams {STREAM_RATE} records per tick"]
    worst_tick = max(ticks.values(), key=lambda r: r["p95_ms"])
    summary: list[tuple[str, bool | None, str]] = [
        ("log: one tick's evolve <= 5 ms (1M records)", worst_tick["p95_ms"] <= TICK_BUDGET_MS,
         f"streaming median {stream_row['median_ms']:.2f} ms, worst p95 {worst_tick['p95_ms']:.2f} ms"),
    ]
    for kind in (frames["streaming"], "tick, idle", "produce (keyed)", "broker_stop", "group_join"):
        size = frames["sizes"][kind]
        summary.append((f"log: broadcast <= 8 KB: {kind}", size <= BYTES_BUDGET,
                        f"median {size:,.0f} B, max {frames['max'][kind]:,} B"))
    summary.append(("log: <= 2 KB/s per viewer while playing at 1x", frames["per_second"] <= RATE_BUDGET,
                    f"{frames['per_second']:,.0f} B/s"))
    summary.append(("log: <= 2 KB/s, on the wire with permessage-deflate (uvicorn)",
                    frames["wire_per_second"] <= RATE_BUDGET, f"{frames['wire_per_second']:,.0f} B/s"))
    print(f"  (part 4 took {time.perf_counter() - t0:.1f} s)")
    return {"ticks": ticks, "frames": frames, "summary": summary}


if __name__ == "__main__":
    import os
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.chdir(Path(__file__).resolve().parent.parent)
    for name, ok, detail in run()["summary"]:
        print(f"  {'n/a ' if ok is None else ('PASS' if ok else 'MISS')}  {name:<52} {detail}")
