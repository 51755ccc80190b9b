"""Part 7 (workflow): the workflow graphs concept (one saga, orchestrated and choreographed side by
side) against the budgets of its issue (12).

a. The pure core: one room-clock tick (``decide`` of ``{"type": "tick", "dt_ms": 1000}``, then
   ``evolve`` of each event it returns, as ``room_command_apply`` does) of ``saga_20``, the sim's
   chain saga of 20 services (18 compensable steps, the origin's included, a pivot, a retried last step),
   with 100 extra messages in flight, half orchestrator commands and half bus deliveries (the scene
   the room's author timed the sim on: a loaded and started saga with the extra flights put into
   ``state.flights``, since no command makes a chain saga hold 100 at once). Idempotency off and
   on. "burst": the extra 100 arrive over the next 5 s, so 20 of them are due in the tick (the same
   tick, repeated). "steady": a whole run ticked on, topped up to at least 100 in flight before
   every tick with new ones due over the next 100 s (about one a tick), to its end and beyond. Wall
   time and this process's CPU time; judged on the CPU time (on a shared machine the wall time also
   counts the waits for a core). Budget: <= 5 ms (median and p99).
b. The one broadcast frame per command, through ``room_command_apply`` and
   ``apps.rooms.frames.render_broadcast`` (what every viewer receives): every lesson of the room
   played step by step, and sagas played at 1x on the room clock (the system actor's ticks) in both
   styles with faults (a declined card, a failing compensation, a duplicated and a lost event, a
   service down with Temporal's retries, the orchestrator crashing, the pipeline DAG under a trigger
   rule), faults injected while playing as a presenter would. Budget: median <= 8 KB uncompressed.
c. Bytes per viewer per second with both views playing at 1x (one tick a second): the playing
   ticks' frames of those sagas, uncompressed and with permessage-deflate (one compressor per
   connection over every frame of the room in order, a sync flush per message, as uvicorn
   negotiates it), next to the log and lock rooms measured the same way here (their seed scenes
   playing; parts 4 and 5 measure them at their own scales).

In this process, against a temporary SQLite database (shared with the other parts when they run).
"""
from __future__ import annotations

import time
import zlib
from collections import defaultdict
from dataclasses import replace
from typing import Any

import broadcast
from common import guarded, median, percentile

TICK_BUDGET_MS = 5.0
BYTES_BUDGET = 8 * 1024
SERVICES = 20
EXTRA_IN_FLIGHT = 100
SAME_TICK_RUNS = 400  # the same tick, per idempotency setting
RUN_TICKS = 40  # a run ticked on, topped up to 100 extra in flight before each tick
RUN_REPS = 5
RUN_SPREAD_MS = 100_000
MAX_PLAY_TICKS = 40  # a played saga stops when both styles have finished and nothing flies
OTHER_ROOM_TICKS = 30
CLOCK_TICK = "tick (room clock, playing)"

Command = dict[str, Any]


def _bytes_stats(values: list[int]) -> str:
    return f"{int(median(values)):>10,}{percentile(values, 90):>8,}{max(values):>8,}"


# -- a. the pure core ------------------------------------------------------------------------------

def _tick() -> Command:
    from apps.rooms.registry import TICK_MS

    return {"type": "tick", "dt_ms": TICK_MS}


def _fold(state: Any, command: Command, seed: str) -> tuple[Any, list[dict[str, Any]]]:
    from apps.workflowgraphs.sim import decide, evolve

    events = decide(state, {**command, "_seed": seed})
    for e in events:
        state = evolve(state, e)
    return state, events


def _with_extra(state: Any, count: int, spread_ms: int = 5000) -> Any:
    """``count`` more messages in flight, arriving over the next ``spread_ms``: even ones an orchestrator's
    command to service S(1 + k % 18), odd ones the bus delivering Done(k % 18) to the service
    that reacts to it (a fresh event id: even with idempotency on it is new to that service)."""
    from apps.workflowgraphs.sim.state import BUS, ORCHESTRATOR, Flight

    n = SERVICES - 2
    base, now = state.next_id, state.now_ms
    extra = []
    for k in range(count):
        at = now + 1 + spread_ms * k // count
        if k % 2:
            extra.append(Flight(base + k, "chor", "deliver", BUS, f"S{1 + k % n}", now, at, f"Done{k % n}", k % n,
                                "done", f"Done{k % n}#bench{base + k}"))
        else:
            step = 1 + k % n
            extra.append(Flight(base + k, "orch", "command", ORCHESTRATOR, f"S{step}", now, at, f"Do{step}", step,
                                "do", f"saga_{SERVICES}:s{step}:do"))
    flights = tuple(sorted(state.flights + tuple(extra), key=lambda f: (f.at, f.id)))
    return replace(state, flights=flights, next_id=base + count)


def _scene(idempotency: bool) -> Any:
    from apps.workflowgraphs.sim import initial_state

    s = initial_state()
    for i, cmd in enumerate(({"type": "load_scene", "process": f"saga_{SERVICES}", "idempotency": idempotency},
                             {"type": "start"}, _tick())):
        s, _ = _fold(s, cmd, f"bench:{i}")
    return s


def _timed_tick(state: Any, seed: str) -> tuple[Any, tuple[float, float], int]:
    """The tick folded, with its wall time and this process's CPU time (ms): on a shared machine the
    wall time also counts the waits for a core, the CPU time only the tick's own work."""
    t0, c0 = time.perf_counter(), time.process_time()
    after, events = _fold(state, _tick(), seed)
    return after, ((time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000), len(events)


def time_ticks() -> dict[str, Any]:
    rows: dict[str, list[tuple[float, float]]] = {}
    info: dict[str, str] = {}
    for idem in (False, True):
        name = f"idempotency {'on' if idem else 'off'}"
        start = _with_extra(_scene(idem), EXTRA_IN_FLIGHT)
        for w in range(5):
            _timed_tick(start, f"warm:{w}")
        same, events = [], []
        for r in range(SAME_TICK_RUNS):
            _after, ms, n = _timed_tick(start, f"same:{r}")
            same.append(ms)
            events.append(n)
        label = f"burst: 20 of them due in the tick, {name}"
        rows[label] = same
        info[label] = f"the same tick x{SAME_TICK_RUNS}; {len(start.flights)} in flight, {int(median(events))} events"
        ticked, flights, events, finished = [], [], [], 0
        for rep in range(RUN_REPS):
            s = _scene(idem)
            for t in range(RUN_TICKS):
                # at least 100 in flight, the new ones due over the next 100 s: about one a tick
                s = _with_extra(s, max(0, EXTRA_IN_FLIGHT - len(s.flights)), RUN_SPREAD_MS)
                flights.append(len(s.flights))
                s, ms, n = _timed_tick(s, f"run:{rep}:{t}")
                ticked.append(ms)
                events.append(n)
            finished += bool(s.orch.outcome and s.chor.outcome)
        label = f"steady: about 1 due a tick, {name}"
        rows[label] = ticked
        info[label] = (f"{RUN_REPS} runs of {RUN_TICKS} ticks; {int(median(flights))} in flight, {int(median(events))} "
                       f"events (max {max(events)}); both styles finished in {finished} of {RUN_REPS}")
    print(f"  {'tick of saga_20 + 100 in flight (decide + evolve)':<46}{'n':>5}{'wall med':>9}{'p99':>7}{'max':>7}"
          f"{'CPU med':>9}{'p99':>7}{'max':>7}")
    for label, values in rows.items():
        wall, cpu = [v[0] for v in values], [v[1] for v in values]
        print(f"  {label:<46}{len(values):>5}{median(wall):>9.2f}{percentile(wall, 99):>7.2f}{max(wall):>7.2f}"
              f"{median(cpu):>9.2f}{percentile(cpu, 99):>7.2f}{max(cpu):>7.2f}   ({info[label]})")
    out: dict[str, Any] = {}
    for key in ("burst", "steady"):
        wall = [v[0] for k, vs in rows.items() if k.startswith(key) for v in vs]
        cpu = [v[1] for k, vs in rows.items() if k.startswith(key) for v in vs]
        out[key] = {"median": median(wall), "p99": percentile(wall, 99), "cpu_median": median(cpu),
                    "cpu_p99": percentile(cpu, 99)}
    return out


# -- b. broadcast frames -------------------------------------------------------------------------


class Frames:
    """Every broadcast of the rooms played here, in order per room: its kind, where it came from,
    the frame and its bytes, apply and render time. ``measure=False`` rows are what a viewer also
    receives (counted in the deflate stream) but not in the size statistics."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def apply(self, code: str, command: Command, kind: str, where: str, actor: Any = None,
              measure: bool = True) -> Any:
        from apps.rooms.frames import render_broadcast
        from apps.rooms.services import Actor, room_command_apply

        t0 = time.perf_counter()
        applied = room_command_apply(code=code, actor=actor or Actor("presenter"), command=command)
        t1 = time.perf_counter()
        frame = render_broadcast(applied)
        t2 = time.perf_counter()
        self.rows.append({"room": code, "kind": kind, "where": where, "bytes": len(frame.encode()), "frame": frame,
                          "measure": measure, "apply_ms": (t1 - t0) * 1000, "render_ms": (t2 - t1) * 1000})
        return applied

    def measured(self, where: str = "") -> list[dict[str, Any]]:
        return [r for r in self.rows if r["measure"] and r["where"].startswith(where)]


def play_lessons(frames: Frames, concept: str = "workflow-graphs") -> int:
    from apps.rooms.lessons import lessons_for
    from apps.rooms.services import room_create

    lessons = lessons_for(concept)
    for lesson in lessons:
        room, _key = room_create(concept=concept)
        for i, _step in enumerate(lesson.steps):
            cmd = {"type": "lesson_start", "lesson": lesson.slug} if i == 0 else {"type": "lesson_next"}
            frames.apply(room.code, cmd, cmd["type"], f"lesson {lesson.slug[:28]}, step {i + 1}")
    return len(lessons)


# A saga played at 1x: the scene and its faults set by the presenter, then play; ``during`` maps a
# tick number to what the presenter does just before that tick (a crash, a restart).
PLAYED: tuple[tuple[str, list[Command], dict[int, list[Command]]], ...] = (
    ("card declined", [{"type": "load_scene"}, {"type": "fail_step", "step": "charge_payment"}], {}),
    ("declined at the pivot, a compensation failing twice",
     [{"type": "load_scene"}, {"type": "fail_step", "step": "schedule_shipment"},
      {"type": "fail_compensation", "step": "reserve_inventory", "times": 2}], {}),
    ("a duplicated event, no idempotency",
     [{"type": "load_scene"}, {"type": "bus_fault", "topic": "InventoryReserved", "fault": "duplicate"}], {}),
    ("a lost event, the reconciler",
     [{"type": "load_scene"}, {"type": "bus_fault", "topic": "InventoryReserved", "fault": "lose"}], {}),
    ("a lost event, idempotency and the outbox",
     [{"type": "load_scene", "idempotency": True}, {"type": "bus_fault", "topic": "PaymentCompleted", "fault": "lose"}],
     {}),
    ("Payment down 8 s, Temporal's retries",
     [{"type": "load_scene", "policy": "temporal"}, {"type": "crash_service", "service": "Payment"}],
     {8: [{"type": "restart_service", "service": "Payment"}]}),
    ("the orchestrator crashes and restarts",
     [{"type": "load_scene", "idempotency": True}],
     {2: [{"type": "crash_orchestrator"}], 5: [{"type": "restart_orchestrator"}]}),
    ("pipeline DAG, a transform fails, all_done",
     [{"type": "load_scene", "process": "data_pipeline", "join_rule": "all_done"},
      {"type": "fail_step", "step": "transform_a"}], {}),
)


def play_saga(frames: Frames, name: str, setup: list[Command], during: dict[int, list[Command]]) -> int:
    """Both views playing at 1x until both styles finished and nothing flies: the room clock's ticks
    (the system actor). Returns the ticks played."""
    from apps.rooms.models import Room
    from apps.rooms.registry import TICK_MS
    from apps.rooms.services import SYSTEM, room_create, room_state

    room, _key = room_create(concept="workflow-graphs")
    where = f"played: {name}"
    for cmd in setup:
        frames.apply(room.code, cmd, cmd["type"], where)
    frames.apply(room.code, {"type": "start"}, "start", where)
    frames.apply(room.code, {"type": "play"}, "play", where, measure=False)
    ticks = 0
    for t in range(1, MAX_PLAY_TICKS + 1):
        for cmd in during.get(t, []):
            frames.apply(room.code, cmd, cmd["type"], where)
        frames.apply(room.code, {"type": "tick", "dt_ms": TICK_MS}, CLOCK_TICK, where, actor=SYSTEM)
        ticks = t
        state = room_state(Room.objects.get(code=room.code))
        if state.orch.outcome and state.chor.outcome and not state.flights:
            break
    frames.apply(room.code, {"type": "pause"}, "pause", where, measure=False)
    return ticks


def _parts_of(rows: list[dict[str, Any]], title: str, limit: int = 7) -> None:
    r = max(rows, key=lambda r: r["bytes"])
    print(f"  parts of the {title} frame ({r['kind']}, {r['where']}, {r['bytes']:,} B), largest first:")
    parts = broadcast.breakdown(r["frame"])
    for part, size, count in parts[:limit]:
        print(f"    {size:>8,} bytes  x{count:<4} {part}")
    if parts[limit:]:
        print(f"    {sum(p[1] for p in parts[limit:]):>8,} bytes  in {len(parts) - limit} more kinds of part")


def frame_sizes(frames: Frames) -> dict[str, Any]:
    t0 = time.perf_counter()
    n_lessons = play_lessons(frames)
    played = {name: play_saga(frames, name, setup, during) for name, setup, during in PLAYED}
    rows = frames.measured()
    print(f"  {n_lessons} lessons ({len(frames.measured('lesson'))} steps) and {len(PLAYED)} sagas played at 1x "
          f"with faults ({sum(played.values())} ticks); {len(rows)} broadcasts in {time.perf_counter() - t0:.1f} s")
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    print(f"  {'command':<32}{'n':>5}{'bytes med':>10}{'p90':>8}{'max':>8}{'>8KB':>5}{'apply ms':>9}"
          f"{'render med':>11}{'p99':>7}")
    for kind, rs in sorted(by_kind.items(), key=lambda kv: -max(r["bytes"] for r in kv[1])):
        b = [r["bytes"] for r in rs]
        rm = [r["render_ms"] for r in rs]
        print(f"  {kind[:31]:<32}{len(rs):>5}{_bytes_stats(b)}{sum(x > BYTES_BUDGET for x in b):>5}"
              f"{median([r['apply_ms'] for r in rs]):>9.1f}{median(rm):>11.1f}{percentile(rm, 99):>7.1f}")
    sizes = [r["bytes"] for r in rows]
    render = [r["render_ms"] for r in rows]
    over = sum(x > BYTES_BUDGET for x in sizes)
    lesson_sizes = [r["bytes"] for r in frames.measured("lesson")]
    print(f"  all ({len(rows)} broadcasts): median {median(sizes):,.0f} B, p90 {percentile(sizes, 90):,} B, max "
          f"{max(sizes):,} B; {over} over 8 KB; render_broadcast median {median(render):.1f} ms, p99 "
          f"{percentile(render, 99):.1f} ms (lessons alone: median {median(lesson_sizes):,.0f} B, max "
          f"{max(lesson_sizes):,} B)")
    print("  the 3 largest:")
    for r in sorted(rows, key=lambda r: -r["bytes"])[:3]:
        print(f"    {r['bytes']:>7,} B  {r['kind']:<28} {r['where']}")
    _parts_of(rows, "largest")
    ticks = [r for r in rows if r["kind"].startswith("tick")]
    _parts_of(ticks, "largest tick")
    broadcast.parts_over_budget(frames.measured("lesson"), "lessons", BYTES_BUDGET)
    broadcast.parts_over_budget(ticks, "playing ticks", BYTES_BUDGET)
    return {"median": median(sizes), "p90": percentile(sizes, 90), "max": max(sizes), "over": over, "n": len(sizes),
            "lesson_median": median(lesson_sizes), "lesson_max": max(lesson_sizes),
            "tick_median": median([r["bytes"] for r in ticks]), "tick_max": max(r["bytes"] for r in ticks),
            "tick_over": sum(r["bytes"] > BYTES_BUDGET for r in ticks), "ticks": len(ticks),
            "render_median": median(render), "render_p99": percentile(render, 99), "played": played}


# -- c. bytes per viewer per second while playing ------------------------------------------------------

def _deflated(rows: list[dict[str, Any]]) -> dict[int, int]:
    """Each row's bytes on the wire with permessage-deflate: one compressor per connection (a viewer
    who joined when the room was made) over every frame of its room in order, a sync flush per
    message, the trailing 00 00 ff ff dropped (RFC 7692)."""
    out: dict[int, int] = {}
    per_room: dict[str, Any] = {}
    for i, r in enumerate(rows):
        z = per_room.setdefault(r["room"], zlib.compressobj(6, zlib.DEFLATED, -15))
        out[i] = len(z.compress(r["frame"].encode()) + z.flush(zlib.Z_SYNC_FLUSH)) - 4
    return out


def rate(frames: Frames, where: str, kind: str = CLOCK_TICK) -> dict[str, float]:
    """At 1x one tick a second: the median tick frame is the bytes per viewer per second, raw and
    deflated; ``mean`` is every tick's bytes over the seconds played (the whole run's average)."""
    rows = [r for r in frames.rows if r["where"].startswith(where)]
    wire = _deflated(rows)
    ticks = [(r["bytes"], wire[i]) for i, r in enumerate(rows) if r["kind"] == kind]
    raw, z = [t[0] for t in ticks], [t[1] for t in ticks]
    return {"raw": median(raw), "raw_mean": sum(raw) / len(raw), "raw_max": max(raw), "wire": median(z),
            "wire_mean": sum(z) / len(z), "ticks": len(raw)}


def other_rooms(frames: Frames) -> None:
    """The log and lock rooms playing at 1x, measured the same way (their seed scenes)."""
    from apps.lockquorums.sim import scenario_commands
    from apps.rooms.registry import TICK_MS
    from apps.rooms.services import SYSTEM, CommandRejected, room_create

    room, _key = room_create(concept="log-partitions")
    where = "other: log partitions"
    for cmd in ({"type": "load_scene"}, {"type": "set_producer_rate", "producer": "producer", "rate": 5,
                                          "pattern": "order-{i}"}, {"type": "play"}):
        frames.apply(room.code, cmd, cmd["type"], where, measure=False)
    for _ in range(OTHER_ROOM_TICKS):
        frames.apply(room.code, {"type": "tick", "dt_ms": TICK_MS}, CLOCK_TICK, where, actor=SYSTEM, measure=False)
    room, _key = room_create(concept="lock-quorums")
    where = "other: lock quorums"
    for cmd in [{"type": "load_scene", "mode": "redlock"}, *scenario_commands("process_pause", False, "redlock"),
                {"type": "play"}]:
        body = {k: v for k, v in cmd.items() if not k.startswith("_")}
        try:
            frames.apply(room.code, body, body["type"], where, measure=False)
        except CommandRejected:
            pass  # the scenario's lesson: e.g. a client that never got the lock
    for _ in range(OTHER_ROOM_TICKS):
        frames.apply(room.code, {"type": "tick", "dt_ms": TICK_MS}, CLOCK_TICK, where, actor=SYSTEM, measure=False)


def rates(frames: Frames) -> dict[str, Any]:
    played = rate(frames, "played: ")
    out = {"workflow": played}
    guarded("the other rooms", other_rooms, frames)
    rows = [("workflow graphs: sagas with faults, both views", played)]
    for name, where in (("log partitions: seed scene, producer 5/tick", "other: log partitions"),
                        ("lock quorums: process_pause, redlock", "other: lock quorums")):
        if any(r["where"] == where and r["kind"] == CLOCK_TICK for r in frames.rows):
            out[name] = rate(frames, where)
            rows.append((name, out[name]))
    print(f"  {'playing at 1x, per viewer':<46}{'ticks':>6}{'B/s med':>9}{'mean':>7}{'max':>8}"
          f"{'deflate med':>12}{'mean':>7}")
    for name, r in rows:
        print(f"  {name:<46}{r['ticks']:>6}{r['raw']:>9,.0f}{r['raw_mean']:>7,.0f}{r['raw_max']:>8,}"
              f"{r['wire']:>12,.0f}{r['wire_mean']:>7,.0f}")
    print("  (one tick a second at 1x: a tick's frame is that second's bytes; deflate: one compressor per connection\n"
          "  over every frame of the room in order, as uvicorn negotiates permessage-deflate. Parts 4 and 5 measure\n"
          "  the log room at 1M records and the lock scenarios in every mode.)")
    return out


def run() -> dict[str, Any]:
    t0 = time.perf_counter()
    print(f"  a. one tick of saga_{SERVICES} with {EXTRA_IN_FLIGHT} messages in flight: decide + evolve, pure core")
    ticks = guarded("part a", time_ticks)
    print("  b. broadcast frame per command (room_command_apply + render_broadcast)")
    broadcast.ensure_django()
    frames = Frames()
    sizes = guarded("part b", frame_sizes, frames)
    print("  c. bytes per viewer per second, both views playing at 1x")
    per_second = guarded("part c", rates, frames) if sizes is not None else None
    summary = _summary(ticks, sizes, per_second)
    print(f"  (part 7 took {time.perf_counter() - t0:.1f} s)")
    return {"ticks": ticks, "frames": sizes, "rates": per_second, "summary": summary}


def _summary(ticks: dict[str, Any] | None, sizes: dict[str, Any] | None,
             per_second: dict[str, Any] | None) -> list[tuple[str, bool | None, str]]:
    out: list[tuple[str, bool | None, str]] = []
    if ticks is not None:
        for key, label in (("burst", "20 due"), ("steady", "~1 due")):
            t = ticks[key]
            out.append((f"workflow: saga_20 tick, 100 in flight ({label}) <= 5 ms", max(t["cpu_median"], t["cpu_p99"])
                        <= TICK_BUDGET_MS, f"CPU median {t['cpu_median']:.2f}, p99 {t['cpu_p99']:.2f} ms; wall "
                        f"{t['median']:.2f}, {t['p99']:.2f} ms"))
    else:
        out.append(("workflow: saga_20 tick <= 5 ms", None, "failed"))
    if sizes is not None:
        out += [
            ("workflow: broadcast <= 8 KB median (lessons, played sagas)", sizes["median"] <= BYTES_BUDGET,
             f"median {sizes['median']:,.0f} B, p90 {sizes['p90']:,} B, max {sizes['max']:,} B"),
            ("workflow: broadcast <= 8 KB median, lessons alone", sizes["lesson_median"] <= BYTES_BUDGET,
             f"median {sizes['lesson_median']:,.0f} B, max {sizes['lesson_max']:,} B"),
            ("workflow: broadcast <= 8 KB median, playing ticks", sizes["tick_median"] <= BYTES_BUDGET,
             f"median {sizes['tick_median']:,.0f} B, max {sizes['tick_max']:,} B, {sizes['tick_over']} of "
             f"{sizes['ticks']} over 8 KB"),
            ("workflow: broadcasts over 8 KB (info)", None, f"{sizes['over']} of {sizes['n']}"),
        ]
    else:
        out.append(("workflow: broadcast <= 8 KB", None, "failed"))
    if per_second is not None:
        w = per_second["workflow"]
        out.append(("workflow: B/s per viewer, both views at 1x (info)", None,
                    f"{w['raw']:,.0f} B/s, deflate {w['wire']:,.0f} B/s (medians)"))
    return out


if __name__ == "__main__":
    import os
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.chdir(Path(__file__).resolve().parent.parent)
    for name, ok, detail in run()["summary"]:
        print(f"  {'n/a ' if ok is None else ('PASS' if ok else 'MISS')}  {name:<52} {detail}")
