"""Part 5 (lock): the lock quorums concept (RedLock) against the budgets of its issue.

a. The pure core: ``decide`` + ``evolve`` per command while playing Kleppmann's three scenarios
   (``sim.scenario_commands``) in every mode (single, redlock, consensus), fencing off and on,
   from a fresh scene and from one whose diagram trace is already full; and the class race with
   60 contenders (``race_start``: every student's parallel RedLock as one discrete-event run).
   Budget: a scenario step <= 5 ms.
b. The one broadcast frame per command, through ``room_command_apply`` and
   ``apps.rooms.frames.render_broadcast`` (what every viewer receives): every lesson played
   step by step (lesson_start, lesson_next ...), every scenario in every mode and fencing, room
   clock ticks while playing (the system actor, as ``apps.rooms.clock`` sends them) and, for
   information, a class race with 60 students in an open round. Budget: <= 8 KB.
c. The space-time diagram on a long run (well over 600 messages: contention with retries,
   releases, writes, crashes, cut links, a GC pause, a clock jump, ticks): messages ever sent
   against messages drawn (the trace keeps a window, older ones are summarised), the SVG
   elements of the diagram layers, the time to build the picture and the frame around the
   500th message; then the same commands sent by a presenter in headless Chromium to a real
   daphne: send -> the page has applied the update (``#room[data-seq]`` changes), send -> the
   next frame, and the DOM nodes under ``#lq-frame`` (against a fresh load of the same room).
   Budget "smooth": per-update p99 < 100 ms and an element count that does not grow with the run.

In this process, against a temporary SQLite database (shared with parts 2 and 4 when they run);
the browser part runs daphne as a child process on that database, on a free loopback port.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import time
from collections import defaultdict
from typing import Any

import broadcast
from common import guarded, median, percentile

STEP_BUDGET_MS = 5.0
BYTES_BUDGET = 8 * 1024
UPDATE_P99_BUDGET_MS = 100.0
GROWTH_BUDGET = 1.2  # DOM nodes late in the run vs early in the run (after the trace filled)
SCENARIO_REPS = 120  # each scenario x mode x fencing, folded this many times
RACE_CONTENDERS = 60
RACE_REPS = 40
RACE_WARMUP = 3
TICKS_PLAYING = 6  # clock ticks measured per scenario room (fencing off)
HEAVY_CYCLES = 8  # cycles of the long run (about 150 messages each: 1,200 in all)
PICTURE_REPS = 40
BROWSER = "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]
# RoomConsumer allows 8 commands/s per connection with a burst of 16: the driver keeps a mirror of
# its token bucket, a little slower, so no command is refused for speed.
RATE_PER_SECOND, RATE_BURST = 7.0, 15.0
MODES = ("single", "redlock", "consensus")

Command = dict[str, Any]


def _stats_ms(values: list[float]) -> str:
    return f"{median(values):>8.3f}{percentile(values, 99):>8.3f}{max(values):>8.3f}"


# -- a. the pure core --------------------------------------------------------------------------

def _step_times(state: Any, commands: list[Command], into: dict[str, list[float]], rejected: dict[str, int]) -> Any:
    from apps.lockquorums.sim import Rejected, decide, evolve

    for cmd in commands:
        kind = cmd["type"]
        t0 = time.perf_counter()
        try:
            events = decide(state, cmd)
        except Rejected:
            into[kind + " (refused)"].append((time.perf_counter() - t0) * 1000)
            rejected[kind] += 1
            continue
        for ev in events:
            state = evolve(state, ev)
        into[kind].append((time.perf_counter() - t0) * 1000)
    return state


def _full_trace_state(mode: str) -> Any:
    """A fresh scene of ``mode`` whose diagram trace is already full (40 episodes / 240 messages)."""
    from apps.lockquorums.sim import decide, evolve, initial_state

    busy = initial_state()
    for i, cmd in enumerate(heavy_commands(3)):
        try:
            for ev in decide(busy, dict(cmd, _seed=f"fill:{i}")):
                busy = evolve(busy, ev)
        except Exception:  # noqa: BLE001 - a refused filler command only changes the fill
            continue
    fresh = initial_state({"mode": mode})
    return dataclasses.replace(fresh, trace=busy.trace, trace_count=busy.trace_count,
                               older_messages=busy.older_messages)


def time_steps() -> dict[str, Any]:
    from apps.lockquorums.sim import SCENARIOS, initial_state, scenario_commands

    per_kind: dict[str, list[float]] = defaultdict(list)
    per_combo: dict[str, list[float]] = {}
    rejected: dict[str, int] = defaultdict(int)
    full = {mode: _full_trace_state(mode) for mode in MODES}
    t_start = time.perf_counter()
    for name in SCENARIOS:
        for mode in MODES:
            for fencing in (False, True):
                cmds = scenario_commands(name, fencing, mode)
                combo: dict[str, list[float]] = defaultdict(list)
                for rep in range(SCENARIO_REPS):
                    seeded = [dict(c, _seed=f"{c['_seed']}:{rep}") for c in cmds]
                    start = full[mode] if rep % 2 else initial_state({"mode": mode})
                    _step_times(start, seeded, combo, rejected if rep == 0 else defaultdict(int))
                for kind, values in combo.items():
                    per_kind[kind] += values
                per_combo[f"{name} / {mode} / fencing {'on' if fencing else 'off'}"] = [v for vs in combo.values()
                                                                                          for v in vs]
    steps = sum(len(v) for v in per_kind.values())
    print(f"  {len(SCENARIOS)} scenarios x {len(MODES)} modes x fencing off/on, {SCENARIO_REPS} runs each (half from a "
          f"fresh scene, half with a full diagram trace): {steps:,} steps in {time.perf_counter() - t_start:.1f} s")
    print(f"  {'command (decide + evolve)':<34}{'n':>7}{'med ms':>8}{'p99':>8}{'max':>8}")
    for kind in sorted(per_kind, key=lambda k: -percentile(per_kind[k], 99)):
        print(f"  {kind:<34}{len(per_kind[kind]):>7,}{_stats_ms(per_kind[kind])}")
    refused = ", ".join(f"{k} x{v}" for k, v in sorted(rejected.items()))
    print(f"  refused by the state, as the scenarios intend (one run of each of the 18): {refused or 'none'}")
    worst_combo = max(per_combo, key=lambda k: percentile(per_combo[k], 99))
    print(f"  slowest combination by p99: {worst_combo} (p99 {percentile(per_combo[worst_combo], 99):.3f} ms, "
          f"max {max(per_combo[worst_combo]):.3f} ms)")
    everything = [v for vs in per_kind.values() for v in vs]
    race = time_race()
    return {"p99": percentile(everything, 99), "max": max(everything), "median": median(everything),
            "worst_kind": max(per_kind, key=lambda k: percentile(per_kind[k], 99)), "race": race,
            "per_kind": {k: percentile(v, 99) for k, v in per_kind.items()}}


def time_race() -> dict[str, float]:
    from apps.lockquorums.sim import decide, evolve, initial_state

    start_ms, join_ms, messages, winners = [], [], [], 0
    for rep in range(-RACE_WARMUP, RACE_REPS):
        state = initial_state()
        for i in range(RACE_CONTENDERS):
            t0 = time.perf_counter()
            for ev in decide(state, {"type": "race_join", "name": f"student-{i:02d}", "_seed": f"race:{rep}:{i}"}):
                state = evolve(state, ev)
            if rep >= 0:
                join_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        events = decide(state, {"type": "race_start", "_seed": f"race:{rep}"})
        for ev in events:
            state = evolve(state, ev)
        if rep < 0:  # warm-up
            continue
        start_ms.append((time.perf_counter() - t0) * 1000)
        messages.append(events[0]["data"]["messages"])
        winners += bool(events[0]["data"]["winners"])
    print(f"  class race, {RACE_CONTENDERS} contenders x 5 nodes, {RACE_REPS} races (different networks, after "
          f"{RACE_WARMUP} warm-up races):")
    print(f"  {'race_start (decide + evolve)':<34}{len(start_ms):>7}{_stats_ms(start_ms)}   "
          f"({median(messages):,.0f} messages per race, a winner in {winners} of {RACE_REPS})")
    print(f"  {'race_join':<34}{len(join_ms):>7,}{_stats_ms(join_ms)}")
    return {"median": median(start_ms), "p99": percentile(start_ms, 99), "max": max(start_ms)}


# -- b. broadcast frames -------------------------------------------------------------------------


class Frames:
    """Every measured broadcast: its kind, where it came from, bytes, apply and render time."""

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
        if measure:
            self.rows.append({"kind": kind, "where": where, "bytes": len(frame.encode()), "frame": frame,
                              "apply_ms": (t1 - t0) * 1000, "render_ms": (t2 - t1) * 1000})
        return applied

    def sizes(self) -> list[int]:
        return [r["bytes"] for r in self.rows]


def _step_label(step: Any) -> str:
    types = [c.get("type", "?") for c in step.commands]
    if not types:
        return "no commands"
    label = types[0] if len(set(types)) == 1 else "+".join(dict.fromkeys(types))
    return label + (f" ({len(types)} commands)" if len(types) > 1 else "")


def play_lessons(frames: Frames) -> int:
    from apps.rooms.lessons import lessons_for
    from apps.rooms.services import room_create

    lessons = lessons_for("lock-quorums")
    for lesson in lessons:
        room, _key = room_create(concept="lock-quorums")
        for i, step in enumerate(lesson.steps):
            cmd = {"type": "lesson_start", "lesson": lesson.slug} if i == 0 else {"type": "lesson_next"}
            frames.apply(room.code, cmd, cmd["type"], f"lesson {lesson.slug[:24]}, step {i + 1}: {_step_label(step)}")
    return len(lessons)


def play_scenarios(frames: Frames) -> dict[str, int]:
    from apps.lockquorums.sim import SCENARIOS, scenario_commands
    from apps.rooms.services import SYSTEM, CommandRejected, room_create

    refused: dict[str, int] = defaultdict(int)
    for name in SCENARIOS:
        for mode in MODES:
            for fencing in (False, True):
                where = f"{name} / {mode} / fencing {'on' if fencing else 'off'}"
                room, _key = room_create(concept="lock-quorums")
                frames.apply(room.code, {"type": "load_scene", "mode": mode}, "load_scene", where)
                for cmd in scenario_commands(name, fencing, mode):
                    body = {k: v for k, v in cmd.items() if not k.startswith("_")}
                    try:
                        frames.apply(room.code, body, body["type"], where)
                    except CommandRejected:
                        refused[body["type"]] += 1  # the scenario's lesson: e.g. a client that never got the lock
                if fencing:
                    continue
                frames.apply(room.code, {"type": "play"}, "play", where, measure=False)
                for _ in range(TICKS_PLAYING):
                    frames.apply(room.code, {"type": "tick", "dt_ms": 1000}, "tick (room clock, playing)", where,
                                 actor=SYSTEM)
                frames.apply(room.code, {"type": "pause"}, "pause", where, measure=False)
    return dict(refused)


def play_race(frames: Frames) -> None:
    """The class race as a classroom plays it: a round open, 60 students join, the presenter starts it."""
    from apps.rooms.services import Actor, room_create

    room, _key = room_create(concept="lock-quorums")
    where = f"class race, {RACE_CONTENDERS} students"
    frames.apply(room.code, {"type": "round_open", "kind": "race"}, "round_open (race)", where)
    for i in range(RACE_CONTENDERS):
        frames.apply(room.code, {"type": "race_me"}, "race_me (a student joins)", where,
                     actor=Actor("participant", f"student-{i:02d}", f"pid-{i}"))
    frames.apply(room.code, {"type": "race_start"}, "race_start (60 students)", where)
    frames.apply(room.code, {"type": "round_close"}, "round_close", where)


def frame_sizes() -> dict[str, Any]:
    frames = Frames()
    t0 = time.perf_counter()
    n_lessons = play_lessons(frames)
    lesson_rows = len(frames.rows)
    refused = play_scenarios(frames)
    scenario_rows = len(frames.rows)
    play_race(frames)
    rows = frames.rows
    main_rows = rows[:scenario_rows]  # lessons, scenarios, ticks (the race is for information)
    print(f"  {n_lessons} lessons ({lesson_rows} steps), 3 scenarios x 3 modes x fencing off/on ("
          f"{scenario_rows - lesson_rows} broadcasts incl. {TICKS_PLAYING} playing ticks per fencing-off room), "
          f"a class race; {len(rows)} broadcasts in {time.perf_counter() - t0:.1f} s")
    if refused:
        print("  refused while playing the scenarios (as the scenarios intend): "
              + ", ".join(f"{k} x{v}" for k, v in sorted(refused.items())))
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    print(f"  {'command':<40}{'n':>4}{'bytes med':>10}{'p90':>8}{'max':>8}{'>8KB':>5}{'apply ms':>9}"
          f"{'render med':>11}{'p99':>7}")
    for kind, rs in sorted(by_kind.items(), key=lambda kv: -max(r["bytes"] for r in kv[1])):
        b = [r["bytes"] for r in rs]
        rm = [r["render_ms"] for r in rs]
        over = sum(x > BYTES_BUDGET for x in b)
        print(f"  {kind[:39]:<40}{len(rs):>4}{int(median(b)):>10,}{percentile(b, 90):>8,}{max(b):>8,}{over:>5}"
              f"{median([r['apply_ms'] for r in rs]):>9.1f}{median(rm):>11.1f}{percentile(rm, 99):>7.1f}")
    sizes = [r["bytes"] for r in main_rows]
    render = [r["render_ms"] for r in main_rows]
    over = [r for r in main_rows if r["bytes"] > BYTES_BUDGET]
    print(f"  lessons + scenarios + ticks ({len(main_rows)} broadcasts): median {median(sizes):,.0f} B, p90 "
          f"{percentile(sizes, 90):,} B, max {max(sizes):,} B; {len(over)} over 8 KB; render_broadcast median "
          f"{median(render):.1f} ms, p99 {percentile(render, 99):.1f} ms")
    print("  the 3 largest (lessons, scenarios, ticks):")
    for r in sorted(main_rows, key=lambda r: -r["bytes"])[:3]:
        print(f"    {r['bytes']:>7,} B  {r['kind']:<34} {r['where']}")
    broadcast.parts_over_budget(main_rows, "lessons, scenarios, ticks", BYTES_BUDGET)
    for label, r in (("largest", max(main_rows, key=lambda r: r["bytes"])),
                     ("largest class race", max(rows[scenario_rows:], key=lambda r: r["bytes"]))):
        print(f"  parts of the {label} frame ({r['kind']}, {r['bytes']:,} B), largest first:")
        parts = broadcast.breakdown(r["frame"])
        for part, size, count in parts[:7]:
            print(f"    {size:>8,} bytes  x{count:<4} {part}")
        if parts[7:]:
            print(f"    {sum(p[1] for p in parts[7:]):>8,} bytes  in {len(parts) - 7} more kinds of part")
    ticks = [r["bytes"] for r in by_kind["tick (room clock, playing)"]]
    race = by_kind["race_start (60 students)"][0]
    return {"median": median(sizes), "p90": percentile(sizes, 90), "max": max(sizes), "over": len(over),
            "n": len(sizes), "render_median": median(render), "render_p99": percentile(render, 99),
            "tick_median": median(ticks), "tick_max": max(ticks), "race_bytes": race["bytes"],
            "lesson_max": max(r["bytes"] for r in rows[:lesson_rows]),
            "lesson_median": median([r["bytes"] for r in rows[:lesson_rows]])}


# -- c. the diagram on a long run ------------------------------------------------------------------

def heavy_commands(cycles: int) -> list[Command]:
    """A long, valid run: each cycle starts and ends with both clients not holding and every node up."""
    out: list[Command] = []
    for i in range(cycles):
        out += [
            {"type": "acquire", "client": "C1"},
            {"type": "acquire", "client": "C2"},  # every note taken: 3 tries, each released: 60 messages
            {"type": "write", "client": "C1"},
            {"type": "release", "client": "C1"},
            {"type": "acquire", "client": "C2"},
            {"type": "write", "client": "C2"},
            {"type": "tick", "dt_ms": 1000},
            {"type": "release", "client": "C2"},
        ]
        variant = i % 4
        if variant == 0:  # a node down: timeouts on every try
            out += [{"type": "node_crash", "node": "D"}, {"type": "acquire", "client": "C1"},
                    {"type": "acquire", "client": "C2"}, {"type": "release", "client": "C1"},
                    {"type": "node_restart", "node": "D", "persistence": False}]
        elif variant == 1:  # a cut link: lost requests
            out += [{"type": "link_cut", "client": "C1", "node": "E"}, {"type": "acquire", "client": "C1"},
                    {"type": "write", "client": "C1"}, {"type": "release", "client": "C1"},
                    {"type": "link_heal", "client": "C1", "node": "E"}]
        elif variant == 2:  # Kleppmann's GC pause: a band on C1's lane, a lost update
            out += [{"type": "acquire", "client": "C1"}, {"type": "client_pause", "client": "C1", "ms": 15_000},
                    {"type": "tick", "dt_ms": 11_000}, {"type": "acquire", "client": "C2"},
                    {"type": "write", "client": "C2"}, {"type": "tick", "dt_ms": 5_000},
                    {"type": "write", "client": "C1"}, {"type": "release", "client": "C1"},
                    {"type": "release", "client": "C2"}]
        else:  # a clock jump on C: its key goes early
            out += [{"type": "acquire", "client": "C1"}, {"type": "clock_jump", "node": "C", "ms": 10_000},
                    {"type": "acquire", "client": "C2"}, {"type": "tick", "dt_ms": 1000},
                    {"type": "release", "client": "C1"}]
    return out


_ELEMENT = re.compile(r"<[a-zA-Z]")


def _messages(state: Any) -> tuple[int, int]:
    """(messages ever traced, messages of the episodes still in the trace)."""
    kept = sum(len(e.messages) for e in state.trace)
    return state.older_messages + kept, kept


def heavy_room(cycles: int) -> dict[str, Any]:
    from apps.lockquorums import picture as pic
    from apps.rooms import frames as engine
    from apps.rooms.models import Room
    from apps.rooms.registry import get
    from apps.rooms.services import CommandRejected, room_create, room_state, room_view

    concept = get("lock-quorums")

    room, _key = room_create(concept="lock-quorums")
    frames = Frames()
    accepted: list[Command] = []
    refused: list[tuple[Command, str]] = []
    trail: list[dict[str, Any]] = []  # per accepted command: messages ever, trace size, layer elements
    crossed: dict[str, Any] | None = None
    for cmd in heavy_commands(cycles):
        try:
            applied = frames.apply(room.code, cmd, cmd["type"], "long run")
        except CommandRejected as exc:
            refused.append((cmd, str(exc)))
            continue
        accepted.append(cmd)
        total, kept = _messages(applied.after)
        p = pic.picture(applied.after, room_view(applied.room), None)
        eps = len(_ELEMENT.findall(p.layers["lq-episodes"].inner()))
        bands = len(_ELEMENT.findall(p.layers["lq-bands"].inner()))
        trail.append({"total": total, "kept": kept, "episodes": eps, "bands": bands, "n": len(applied.after.trace)})
        if crossed is None and total >= 500:
            crossed = dict(frames.rows[-1], index=len(accepted), total=total)
    state = room_state(Room.objects.get(code=room.code))
    view = room_view(Room.objects.get(code=room.code))
    total, kept = _messages(state)
    shown, first = pic._page(state)  # noqa: SLF001 - what the page draws
    shown_msgs = sum(len(e.messages) for e in shown)
    p = pic.picture(state, view, None)
    eps = len(_ELEMENT.findall(p.layers["lq-episodes"].inner()))
    bands = len(_ELEMENT.findall(p.layers["lq-bands"].inner()))
    all_layers = sum(len(_ELEMENT.findall(layer.inner())) for layer in p.layers.values())
    full_frame = engine.picture_full(concept, state, view)  # every region, layer and panel
    # The elements of both <svg>s (the stage and the space-time diagram, each a region).
    full_elements = sum(len(_ELEMENT.findall(p.render_region(region_id))) for region_id in p.regions)
    build = []
    for _ in range(PICTURE_REPS):
        t0 = time.perf_counter()
        pic.picture(state, view, None)
        build.append((time.perf_counter() - t0) * 1000)
    update = []
    before = state
    for _ in range(PICTURE_REPS // 2):
        t0 = time.perf_counter()
        engine.picture_update(concept, before, state, [], view)
        update.append((time.perf_counter() - t0) * 1000)
    sizes = frames.sizes()
    print(f"  long run through room_command_apply: {len(accepted)} commands accepted, {len(refused)} refused"
          + (f" (first: {refused[0][0]['type']}: {refused[0][1][:70]})" if refused else ""))
    print(f"  messages ever sent {total:,} (episodes {state.trace_count:,}); kept in state.trace {kept:,} in "
          f"{len(state.trace)} episodes (older summarised as a count: {state.older_messages:,}); drawn on the current "
          f"page {shown_msgs:,} messages in {len(shown)} episodes ('← {first - state.trace[0].n + state.trace_count - len(state.trace):,} "
          f"earlier')")
    half = len(trail) // 2
    print(f"  SVG elements, diagram layers: lq-episodes {eps}, lq-bands {bands} at the end; the most over the run "
          f"{max(t['episodes'] for t in trail)} / {max(t['bands'] for t in trail)} (first half "
          f"{max(t['episodes'] + t['bands'] for t in trail[:half])}, second half "
          f"{max(t['episodes'] + t['bands'] for t in trail[half:])}); every layer {all_layers}, both <svg>s "
          f"{full_elements}; the full frame {len(full_frame.encode()):,} B")
    print(f"  picture.picture (whole picture, {PICTURE_REPS} runs): median {median(build):.2f} ms, p99 "
          f"{percentile(build, 99):.2f} ms; frames.picture_update (two pictures + diff): median {median(update):.2f} ms")
    print(f"  broadcasts over the run: median {median(sizes):,.0f} B, p90 {percentile(sizes, 90):,} B, max "
          f"{max(sizes):,} B, {sum(s > BYTES_BUDGET for s in sizes)} over 8 KB; render_broadcast median "
          f"{median([r['render_ms'] for r in frames.rows]):.1f} ms, p99 "
          f"{percentile([r['render_ms'] for r in frames.rows], 99):.1f} ms")
    if crossed is not None:
        print(f"  the command that took the run past 500 messages (#{crossed['index']}, {crossed['kind']}, now "
              f"{crossed['total']:,} messages): {crossed['bytes']:,} B, render_broadcast {crossed['render_ms']:.1f} ms")
    over_kinds: dict[str, int] = defaultdict(int)
    for r in frames.rows:
        if r["bytes"] > BYTES_BUDGET:
            over_kinds[r["kind"]] += 1
    kinds_n: dict[str, int] = defaultdict(int)
    for r in frames.rows:
        kinds_n[r["kind"]] += 1
    if over_kinds:
        print("  over 8 KB by command: " + ", ".join(f"{k} {v} of {kinds_n[k]}" for k, v in
                                                     sorted(over_kinds.items(), key=lambda kv: -kv[1])))
    broadcast.parts_over_budget(frames.rows, "long run", BYTES_BUDGET)
    return {"commands": accepted, "total": total, "kept": kept, "shown": shown_msgs, "episodes_el": eps,
            "bands_el": bands, "build_median": median(build), "build_p99": percentile(build, 99),
            "crossed_bytes": crossed["bytes"] if crossed else None, "max_bytes": max(sizes),
            "over": sum(x > BYTES_BUDGET for x in sizes), "n": len(sizes),
            "median_bytes": median(sizes), "full_elements": full_elements}


# -- c'. the same run in a real browser ----------------------------------------------------------------

MEASURE_JS = """
async (b) => {
  const room = document.getElementById('room');
  const before = Number(room.dataset.seq || 0);
  let error = null;
  let received = null;
  const onMessage = (e) => {
    const j = e.detail && e.detail.message && e.detail.message.json;
    if (j && j.error) error = j.error;
    if (j && typeof j.seq === 'number' && j.seq > before && received === null) received = performance.now();
  };
  document.addEventListener('htmx:before:ws:message', onMessage);
  let observer = null;
  const t0 = performance.now();
  let applied = null;
  try {
    window.distviz.send(b);
    applied = await new Promise((resolve) => {
      const check = () => {
        if (Number(room.dataset.seq || 0) > before) { resolve(performance.now()); return true; }
        if (error !== null) { resolve(null); return true; }
        return false;
      };
      observer = new MutationObserver(check);
      observer.observe(room, { attributes: true, attributeFilter: ['data-seq'] });
      document.addEventListener('htmx:after:ws:message', check);
      const poll = setInterval(() => { if (check() || performance.now() - t0 > 10000) { clearInterval(poll); resolve(null); } }, 5);
    });
  } finally {
    if (observer) observer.disconnect();
    document.removeEventListener('htmx:before:ws:message', onMessage);
  }
  // The next frame: the style, layout and paint of the update are done when a task after the
  // next animation frame runs.
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const painted = performance.now();
  const frame = document.getElementById('lq-frame');
  return {
    applied: applied === null ? null : applied - t0,
    received: received === null ? null : received - t0,
    painted: painted - t0,
    seq: Number(room.dataset.seq || 0),
    error: error,
    nodes: frame ? frame.querySelectorAll('*').length : -1,
    episodes: frame ? frame.querySelectorAll('#lq-episodes *').length : -1,
    bands: frame ? frame.querySelectorAll('#lq-bands *').length : -1,
    flights: frame ? frame.querySelectorAll('#lq-flights *').length : -1,
  };
}
"""

COUNT_JS = """
() => {
  const frame = document.getElementById('lq-frame');
  return { nodes: frame ? frame.querySelectorAll('*').length : -1,
           episodes: frame ? frame.querySelectorAll('#lq-episodes *').length : -1,
           bands: frame ? frame.querySelectorAll('#lq-bands *').length : -1,
           flights: frame ? frame.querySelectorAll('#lq-flights *').length : -1,
           all: document.querySelectorAll('*').length };
}
"""


def browser_run(commands: list[Command]) -> dict[str, Any]:
    from django.conf import settings
    from playwright.sync_api import sync_playwright

    import fanout

    db = settings.DATABASES["default"]["NAME"]
    workdir = tempfile.mkdtemp(prefix="distviz-bench-lock-")
    server = fanout.app_server("daphne", workdir, f"sqlite:///{db}")
    # As the browser tests run it: DEBUG on, so the static files come from the finders (no
    # collectstatic) and the session cookie is not marked Secure on plain http.
    server.env["DJANGO_DEBUG"] = "true"
    problems: list[str] = []
    t_start = time.perf_counter()
    try:
        server.start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=BROWSER, args=BROWSER_ARGS, headless=True)
            try:
                context = browser.new_context(base_url=f"http://127.0.0.1:{server.port}",
                                              viewport={"width": 1440, "height": 1000})
                context.set_default_timeout(15_000)
                page = context.new_page()
                page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
                page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error"
                        and "favicon" not in msg.text else None)
                page.goto("/")
                page.locator("#card-lock-quorums button").click()
                page.wait_for_url(re.compile(r"/r/[^/]+/$"))
                page.locator('body[data-conn="open"]').wait_for(state="attached")
                start = page.evaluate(COUNT_JS)
                ready = time.perf_counter()
                cpu0 = server.cpu()
                tokens, refilled = RATE_BURST, time.monotonic()
                samples: list[dict[str, Any]] = []
                refused: list[str] = []
                for cmd in commands:
                    for _attempt in range(5):
                        now = time.monotonic()
                        tokens = min(RATE_BURST, tokens + (now - refilled) * RATE_PER_SECOND)
                        refilled = now
                        if tokens < 1:
                            time.sleep((1 - tokens) / RATE_PER_SECOND)
                            tokens, refilled = 1.0, time.monotonic()
                        tokens -= 1
                        r = page.evaluate(MEASURE_JS, cmd)
                        if r["error"] and "Slow down" in r["error"]:
                            time.sleep(0.5)
                            continue
                        break
                    if r["applied"] is None:
                        refused.append(f"{cmd['type']}: {r['error'] or 'no update within 10 s'}")
                        continue
                    samples.append(dict(r, kind=cmd["type"]))
                sent_s = time.perf_counter() - ready
                server_cpu = server.cpu() - cpu0
                end = page.evaluate(COUNT_JS)
                page.reload()
                page.locator('body[data-conn="open"]').wait_for(state="attached")
                fresh = page.evaluate(COUNT_JS)
            finally:
                browser.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    applied = [s["applied"] for s in samples]
    painted = [s["painted"] for s in samples]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  browser: daphne on 127.0.0.1:{server.port}, headless Chromium, presenter page; {len(samples)} commands "
          f"applied ({len(refused)} refused) in {sent_s:.1f} s, paced under the 8 commands/s limit; whole browser "
          f"part {time.perf_counter() - t_start:.1f} s; load average now {load}")
    print(f"  daphne CPU (utime + stime) over the commands: {server_cpu * 1000 / max(len(samples), 1):.1f} ms per "
          f"command (DEBUG on, as the browser tests run it; one viewer)")
    for line in refused[:3]:
        print(f"    refused: {line[:110]}")
    print(f"  {'per update, send ->':<34}{'n':>5}{'med ms':>8}{'p90':>8}{'p99':>8}{'max':>8}")
    received = [s["received"] if s["received"] is not None else s["applied"] for s in samples]
    swap = [s["applied"] - r for s, r in zip(samples, received)]
    for label, xs in (("#room[data-seq] changed", applied), ("  of which: the frame arrives", received),
                      ("  of which: htmx swaps it in", swap), ("the next frame (after layout)", painted)):
        print(f"  {label:<34}{len(xs):>5}{median(xs):>8.1f}{percentile(xs, 90):>8.1f}{percentile(xs, 99):>8.1f}"
              f"{max(xs):>8.1f}")
    by_kind: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        by_kind[s["kind"]].append(s["applied"])
    slow = sorted(by_kind.items(), key=lambda kv: -percentile(kv[1], 90))[:4]
    print("  by command (send -> seq, median / max ms): "
          + ", ".join(f"{k} {median(v):.0f}/{max(v):.0f} (n={len(v)})" for k, v in slow))
    half = len(samples) // 2
    quarter = [samples[min(len(samples) - 1, (len(samples) * q) // 4)]["nodes"] for q in (1, 2, 3, 4)]
    early = max(s["nodes"] for s in samples[len(samples) // 4:half]) if half > 1 else 0
    late = max(s["nodes"] for s in samples[half:]) if samples else 0
    print(f"  DOM nodes under #lq-frame: {start['nodes']} on a new room; after 25/50/75/100% of the run "
          f"{', '.join(map(str, quarter))}; the most {max(s['nodes'] for s in samples)} (second quarter {early}, second "
          f"half {late}); at the end {end['nodes']} (lq-episodes {end['episodes']}, lq-bands {end['bands']}, "
          f"lq-flights {end['flights']}); the same room freshly loaded {fresh['nodes']} (lq-flights {fresh['flights']}); "
          f"whole page {end['all']} elements")
    if problems:
        print(f"  browser console errors / page errors: {len(problems)} (first: {problems[0][:100]})")
    return {"applied_median": median(applied), "applied_p99": percentile(applied, 99),
            "painted_p99": percentile(painted, 99), "end_nodes": end["nodes"], "fresh_nodes": fresh["nodes"],
            "early": early, "late": late, "max_nodes": max(s["nodes"] for s in samples), "n": len(samples),
            "problems": len(problems)}


def _summary(steps: dict[str, Any] | None, frames: dict[str, Any] | None, heavy: dict[str, Any] | None,
             browser: dict[str, Any] | None) -> list[tuple[str, bool | None, str]]:
    out: list[tuple[str, bool | None, str]] = []
    if steps is not None:
        race = steps["race"]
        out += [
            ("lock: scenario step (decide+evolve) <= 5 ms, p99", steps["p99"] <= STEP_BUDGET_MS,
             f"median {steps['median']:.3f} ms, p99 {steps['p99']:.3f} ms, max {steps['max']:.2f} ms"),
            ("lock: class race, 60 contenders, race_start <= 5 ms", race["p99"] <= STEP_BUDGET_MS,
             f"median {race['median']:.2f} ms, p99 {race['p99']:.2f} ms, max {race['max']:.2f} ms"),
        ]
    else:
        out.append(("lock: scenario step <= 5 ms", None, "failed"))
    if frames is not None:
        out += [
            ("lock: broadcast <= 8 KB median (lessons, scenarios, ticks)", frames["median"] <= BYTES_BUDGET,
             f"median {frames['median']:,.0f} B, p90 {frames['p90']:,} B, max {frames['max']:,} B"),
            ("lock: broadcasts over 8 KB (lessons, scenarios, ticks)", frames["over"] == 0,
             f"{frames['over']} of {frames['n']}"),
            ("lock: playing tick broadcast <= 8 KB", frames["tick_max"] <= BYTES_BUDGET,
             f"median {frames['tick_median']:,.0f} B, max {frames['tick_max']:,} B"),
            ("lock: class race broadcast <= 8 KB (info)", None, f"race_start {frames['race_bytes']:,} B"),
        ]
    else:
        out.append(("lock: broadcast <= 8 KB", None, "failed"))
    if heavy is not None:
        out += [
            ("lock: long run broadcast <= 8 KB median", heavy["median_bytes"] <= BYTES_BUDGET,
             f"median {heavy['median_bytes']:,.0f} B, max {heavy['max_bytes']:,} B, at 500 messages "
             f"{heavy['crossed_bytes'] or 0:,} B"),
            ("lock: long run broadcasts over 8 KB", heavy["over"] == 0, f"{heavy['over']} of {heavy['n']}"),
            ("lock: diagram windowed (drawn << produced)", heavy["kept"] < heavy["total"] and heavy["total"] >= 600,
             f"{heavy['total']:,} produced, {heavy['kept']} kept, {heavy['shown']} drawn"),
        ]
    else:
        out.append(("lock: the diagram on 600+ messages", None, "failed"))
    if browser is not None:
        out.append(("lock: browser per-update p99 < 100 ms", browser["applied_p99"] < UPDATE_P99_BUDGET_MS,
                     f"send->seq median {browser['applied_median']:.1f} ms, p99 {browser['applied_p99']:.1f} ms "
                     f"(to next frame p99 {browser['painted_p99']:.1f})"))
        bounded = browser["late"] <= GROWTH_BUDGET * max(browser["early"], 1)
        out.append(("lock: browser DOM under #lq-frame bounded", bounded,
                    f"end {browser['end_nodes']}, fresh load {browser['fresh_nodes']}, max {browser['max_nodes']} "
                    f"(2nd quarter {browser['early']}, 2nd half {browser['late']})"))
    else:
        out.append(("lock: browser per-update p99 < 100 ms", None, "failed or not run"))
    return out


def run() -> dict[str, Any]:
    t0 = time.perf_counter()
    print("  a. one scenario step: decide + evolve, pure core")
    steps = guarded("part a", time_steps)
    print("  b. broadcast frame per command (room_command_apply + render_broadcast)")
    broadcast.ensure_django()
    frames = guarded("part b", frame_sizes)
    print("  c. the space-time diagram on a long run")
    heavy = guarded("part c", heavy_room, HEAVY_CYCLES)
    browser = guarded("browser part", browser_run, heavy["commands"]) if heavy is not None else None
    summary = _summary(steps, frames, heavy, browser)
    print(f"  (part 5 took {time.perf_counter() - t0:.1f} s)")
    return {"steps": steps, "frames": frames, "heavy": heavy, "browser": browser, "summary": summary}


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.chdir(Path(__file__).resolve().parent.parent)
    for name, ok, detail in run()["summary"]:
        print(f"  {'n/a ' if ok is None else ('PASS' if ok else 'MISS')}  {name:<52} {detail}")
