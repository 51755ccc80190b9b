"""The lock quorum lessons run: every step's commands are accepted, in order, and teach what they say.

Pure: the lesson files are read with tomllib and folded through ``apps.lockquorums.sim`` the way
a room does it (each command gets a ``_seed`` from the room's seed, the step's sequence number and
the command's index), so no Django is needed. Several room seeds are tried: a number quoted in a
narration must not depend on the random lock values or retry delays.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apps.lockquorums.sim import COMMANDS, LockState, Rejected, decide, drift, evolve, initial_state, to_json
from tests import lessonfold

LESSONS = Path(__file__).resolve().parents[2] / "apps" / "lockquorums" / "lessons"
SLUGS = sorted(p.stem for p in LESSONS.glob("*.toml"))
ROOM_SEEDS = ["lesson", "room-7f3a", "x", "42", "projector"]


@dataclass
class StepRun:
    title: str
    narration: str
    question: str
    commands: list[dict[str, Any]]
    before: LockState
    after: LockState
    events: list[dict[str, Any]]

    def attempts(self, client: str | None = None) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e["kind"] == "acquire_attempted"
                and (client is None or e["data"]["client"] == client)]

    def writes(self) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e["kind"] == "written"]


def load(slug: str) -> dict[str, Any]:
    return lessonfold.load(LESSONS, slug)


def fold_lesson(slug: str, room_seed: str = "lesson") -> list[StepRun]:
    """Apply the steps in order, as lesson_start / lesson_next do; fail on any rejected command."""
    # whatever the room showed before: every lesson starts with load_scene
    return [StepRun(f.step["title"], " ".join(f.step["narration"].split()), " ".join(f.step["question"].split()),
                    list(f.step.get("commands", [])), f.before, f.after, f.events)
            for f in lessonfold.fold_steps(LESSONS, slug, initial_state(), decide, evolve, Rejected, room_seed)]


def step(runs: list[StepRun], title: str) -> StepRun:
    found = [r for r in runs if r.title == title]
    assert len(found) == 1, f"no single step titled {title!r}: {[r.title for r in runs]}"
    return found[0]


def statuses(state: LockState) -> dict[str, str]:
    return {c.name: c.status for c in state.clients}


def two_holders(state: LockState) -> bool:
    return state.holders() == ["C1", "C2"] or all(s == "holding" for s in statuses(state).values())


# -- every lesson -------------------------------------------------------------------------------

def test_the_five_lessons_are_there():
    assert SLUGS == [
        "01-five-guards-and-a-quorum", "02-the-process-pause", "03-the-clock-jump",
        "04-crash-and-restart-without-fsync", "05-single-redlock-consensus",
    ]


@pytest.mark.parametrize("slug", SLUGS)
def test_lesson_has_the_shape_the_rooms_parser_wants(slug):
    raw = load(slug)
    assert isinstance(raw.get("title"), str) and raw["title"].strip()
    assert isinstance(raw.get("summary"), str) and raw["summary"].strip()
    steps = raw.get("steps")
    assert isinstance(steps, list) and steps
    for s in steps:
        for key in ("title", "narration", "question"):
            assert isinstance(s.get(key), str) and s[key].strip(), (slug, s.get("title"), key)
        assert isinstance(s.get("commands"), list)
        assert all(isinstance(c, dict) and c.get("type") in COMMANDS for c in s["commands"]), (slug, s["title"])
    assert len({s["title"] for s in steps}) == len(steps), "step titles are unique within a lesson"
    # The lesson works from any room state: its first command loads a scene.
    assert steps[0]["commands"] and steps[0]["commands"][0]["type"] == "load_scene"


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
@pytest.mark.parametrize("slug", SLUGS)
def test_every_command_of_every_step_is_accepted_in_order(slug, room_seed):
    runs = fold_lesson(slug, room_seed)
    assert len(runs) == len(load(slug)["steps"])


@pytest.mark.parametrize("slug", SLUGS)
def test_the_lesson_runs_the_same_from_a_busy_room(slug):
    """Starting from a room where someone already holds the lock and clocks have jumped changes nothing."""
    busy = initial_state()
    for cmd in ({"type": "acquire", "client": "C1", "_seed": "busy"}, {"type": "clock_jump", "node": "A", "ms": 777},
                {"type": "node_crash", "node": "B"}, {"type": "tick", "dt_ms": 1234}):
        for ev in decide(busy, cmd):
            busy = evolve(busy, ev)
    state = busy
    for seq, s in enumerate(load(slug)["steps"], start=1):
        for i, command in enumerate(s["commands"]):
            for ev in decide(state, dict(command, _seed=f"lesson:{seq}:{i}")):
                state = evolve(state, ev)
    assert to_json(state)["holders"] == to_json(fold_lesson(slug)[-1].after)["holders"]
    assert [(w.client, w.accepted, w.reason) for w in state.writes] == [
        (w.client, w.accepted, w.reason) for w in fold_lesson(slug)[-1].after.writes]


# -- the numbers in the narration -------------------------------------------------------------

NUMBER = re.compile(r"\d+(?:,\d{3})*")
FORMULA = re.compile(r"([\d,]+) − ([\d,]+) − ([\d,]+) = ([\d,]+) ms")
EXEMPT = re.compile(r"\d+%|lesson \d+|\d+ // \d+ \+ \d+")  # the drift's 1%, cross references, the quorum formula
CONSTANTS = {0, 1, 2}  # T1 = 0, "1 ms", the drift's "+ 2 ms"


def ints(value: Any) -> set[int]:
    if isinstance(value, bool):
        return set()
    if isinstance(value, int):
        return {value}
    if isinstance(value, dict):
        return set().union(*(ints(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(ints(v) for v in value)) if value else set()
    return set()


def known_numbers(runs: list[StepRun], upto: int) -> set[int]:
    """Every whole number the simulation showed up to and including this step, plus the step's
    commands: times, validities, expiries, tokens, settings, and each node's local clock."""
    known = set(CONSTANTS)
    for r in runs[: upto + 1]:
        known |= ints(r.events) | ints(r.commands)
    r = runs[upto]
    for s in (r.before, r.after):
        known |= ints(to_json(s)) | {n.local(s.now_ms) for n in s.nodes} | {len(s.nodes), len(s.clients)}
    return known


def quoted_numbers(text: str) -> set[int]:
    text = EXEMPT.sub(" ", text)
    text = re.sub(r"\b[A-Za-z]+\d+\b", " ", text)  # C1, T1, ...
    return {int(m.replace(",", "")) for m in NUMBER.findall(text)}


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
@pytest.mark.parametrize("slug", SLUGS)
def test_every_number_in_a_narration_or_a_question_is_one_the_simulation_shows(slug, room_seed):
    runs = fold_lesson(slug, room_seed)
    for i, r in enumerate(runs):
        for what, text in (("narration", r.narration), ("question", r.question)):
            unknown = quoted_numbers(text) - known_numbers(runs, i)
            assert not unknown, f"{slug}, step {r.title!r}, {what} (seed {room_seed}): {sorted(unknown)} not in the folded state"


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
@pytest.mark.parametrize("slug", SLUGS)
def test_every_validity_sum_in_a_narration_is_the_one_the_step_computes(slug, room_seed):
    """'10,000 − 62 − 102 = 9,836 ms' is the TTL, the walk, the drift and the validity of an
    acquisition made in that very step."""
    for r in fold_lesson(slug, room_seed):
        for m in FORMULA.finditer(r.narration):
            ttl, elapsed, d, validity = (int(x.replace(",", "")) for x in m.groups())
            assert ttl - elapsed - d == validity and d == drift(ttl), (slug, r.title, m.group(0))
            got = [(a["elapsed"], a["drift"], a["validity"]) for a in r.attempts() if a["acquired"]]
            assert (elapsed, d, validity) in got, (slug, r.title, m.group(0), got)
            assert r.after.ttl_ms == ttl


# -- lesson 1: five guards and a quorum --------------------------------------------------------

@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
def test_lesson_1_reaches_the_worked_example_and_frees_the_lock(room_seed):
    runs = fold_lesson("01-five-guards-and-a-quorum", room_seed)
    scene = runs[0].after
    assert (scene.mode, len(scene.nodes), scene.quorum, scene.ttl_ms, scene.drift_ms) == ("redlock", 5, 3, 10_000, 102)

    walk = step(runs, "C1 walks past the guards")
    [a] = walk.attempts("C1")
    assert (a["t1"], a["oks"], a["elapsed"], a["drift"], a["validity"], a["acquired"]) == (0, 4, 62, 102, 9836, True)
    replies = [(m["from"], m["arrives"], m["result"]) for m in a["messages"] if m["kind"] in ("reply", "timeout")]
    assert replies == [("A", 3, "OK"), ("B", 6, "OK"), ("C", 9, "OK"), ("D", 59, "TIMEOUT"), ("E", 62, "OK")]
    # Valid from T2 for the validity: until T1 + TTL - drift (node-redlock's expiration).
    assert walk.after.client("C1").valid_until == 62 + 9836 == 0 + 10_000 - 102 and walk.after.holders() == ["C1"]
    for number in ("3 ms", "6", "9", "59", "62", "4 of 5", "10,000 − 62 − 102 = 9,836 ms", "t = 62 + 9,836 = 9,898 ms"):
        assert number in walk.narration

    loser = step(runs, "C2 finds every note taken")
    tries = loser.attempts("C2")
    assert len(tries) == 3 and all(t["oks"] == 0 and not t["acquired"] for t in tries)
    assert all({m["to"] for m in t["release"] if m["kind"] == "request"} == set("ABCDE") for t in tries)
    assert all(0 <= t["retry_delay"] <= 200 for t in tries[:2]) and tries[2]["retry_delay"] is None
    assert statuses(loser.after) == {"C1": "holding", "C2": "failed"}

    release = step(runs, "Release: delete only if it is mine")
    [ev] = release.events
    assert ev["data"]["deletes"] == ["A", "B", "C", "E"]
    assert [m["result"] for m in ev["data"]["messages"] if m["to"] == "D"] == ["lost"]
    assert all(n.key is None for n in release.after.nodes) and release.after.holders() == []

    taken = step(runs, "C2 gets the lock, then dies")
    [a2] = taken.attempts("C2")
    assert (a2["oks"], a2["validity"]) == (4, 9836) and taken.after.holders() == ["C2"]

    ttl = step(runs, "The TTL cleans up")
    assert all(n.key is None for n in ttl.after.nodes) and ttl.after.holders() == []
    assert ttl.after.client("C2").status == "expired"
    assert all(n.key is not None for n in ttl.before.nodes if n.up)

    again = step(runs, "C1 tries again")
    [a3] = again.attempts("C1")
    assert (a3["oks"], a3["validity"], a3["acquired"]) == (4, 9836, True) and again.after.holders() == ["C1"]


# -- lesson 2: the process pause ----------------------------------------------------------------

@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
def test_lesson_2_loses_an_update_without_fencing_and_rejects_token_33_with_it(room_seed):
    runs = fold_lesson("02-the-process-pause", room_seed)
    assert not runs[0].after.fencing

    paused = step(runs, "Stop the world")
    assert paused.after.client("C1").status == "paused"
    expired = step(runs, "The notes expire")
    assert all(n.key is None for n in expired.after.nodes) and expired.after.client("C1").status == "paused"

    woke = step(runs, "C1 wakes up and writes")
    s = woke.after
    assert s.lost_update and not s.fencing
    assert [(w.client, w.accepted) for w in s.writes] == [("C2", True), ("C1", True)]
    assert "two writers" in s.writes[-1].reason

    replay = step(runs, "Replay with fencing tokens")
    assert replay.after.fencing and replay.after.writes[-1].token == 34 and replay.after.client("C1").token == 33
    no = step(runs, "The storage says no")
    last = no.after.writes[-1]
    assert (last.client, last.token, last.accepted) == ("C1", 33, False)
    assert "stale token 33 < 34" in last.reason and not no.after.lost_update
    assert "stale token 33 < 34" in no.narration


def test_lesson_2_plays_the_scenario_module_process_pause():
    """The lesson's fencing-off commands are scenarios.py's "process_pause", in the same order."""
    from apps.lockquorums.sim import scenario_commands

    strip = lambda cmds: [{k: v for k, v in c.items() if k != "_seed"} for c in cmds]  # noqa: E731
    lesson = [c for s in load("02-the-process-pause")["steps"][:6] for c in s["commands"] if c["type"] != "load_scene"]
    assert lesson == strip(scenario_commands("process_pause", fencing=False))[1:]


# -- lessons 3 and 4: clock jump, crash and restart -------------------------------------------

@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
def test_lesson_3_gives_two_holders_then_fencing_rejects_the_older(room_seed):
    runs = fold_lesson("03-the-clock-jump", room_seed)
    first = step(runs, "C1 locks A, B and C")
    [a] = first.attempts("C1")
    assert [x["node"] for x in a["sets"]] == ["A", "B", "C"] and (a["elapsed"], a["validity"]) == (109, 9789)
    jump = step(runs, "C's clock jumps")
    assert jump.after.node("C").key is None and jump.after.node("A").key is not None

    both = step(runs, "C2 locks C, D and E")
    [b] = both.attempts("C2")
    assert [x["node"] for x in b["sets"]] == ["C", "D", "E"] and b["acquired"]
    assert two_holders(both.after) and both.after.holders() == ["C1", "C2"]
    assert (both.after.client("C1").valid_until, both.after.client("C2").valid_until) == (109 + 9789, 228 + 9789)

    writes = step(runs, "Both write")
    assert two_holders(writes.after) and writes.after.lost_update

    stale = step(runs, "The stale token")
    assert stale.after.writes[-1].accepted is False and "stale token 33 < 34" in stale.after.writes[-1].reason
    assert not stale.after.lost_update


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
def test_lesson_4_forgets_then_each_fix_leaves_c2_failing(room_seed):
    runs = fold_lesson("04-crash-and-restart-without-fsync", room_seed)
    restart = step(runs, "C crashes and comes straight back")
    assert restart.before.node("C").key is not None and restart.after.node("C").key is None
    assert restart.after.node("C").up

    both = step(runs, "C2 locks C, D and E")
    assert two_holders(both.after) and both.after.holders() == ["C1", "C2"]
    assert step(runs, "Both write").after.lost_update

    for title in ("The spec's fix: restart late", "The other fix: fsync every write"):
        fix = step(runs, title)
        tries = fix.attempts("C2")
        assert len(tries) == 3 and all(t["oks"] == 2 and not t["acquired"] for t in tries), title
        assert fix.after.client("C2").status == "failed" and fix.after.holders() == ["C1"], title
    late = step(runs, "The spec's fix: restart late")
    assert late.after.node("C").available_from == 109 + 10_000  # crashed at 109 ms, silent for one TTL
    assert all(m["result"] == "TIMEOUT" for t in late.attempts("C2") for m in t["messages"]
               if m["from"] == "C" and m["kind"] in ("reply", "timeout"))
    fsync = step(runs, "The other fix: fsync every write")
    assert fsync.after.node("C").key.owner == "C1"

    fenced = step(runs, "Forgetful again, but fenced")
    assert [(w.client, w.token, w.accepted) for w in fenced.after.writes] == [("C2", 34, True), ("C1", 33, False)]
    assert "stale token 33 < 34" in fenced.after.writes[-1].reason


# -- lesson 5: the same fault in three lock services -----------------------------------------

@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
def test_lesson_5_single_loses_the_lock_redlock_needs_a_partition_consensus_keeps_it(room_seed):
    runs = fold_lesson("05-single-redlock-consensus", room_seed)
    one = step(runs, "One Redis")
    assert one.after.mode == "single" and [n.name for n in one.after.nodes] == ["R"]
    assert one.attempts("C1")[0]["validity"] == 9895

    down = step(runs, "R crashes")
    assert all(t["oks"] == 0 for t in down.attempts("C2")) and down.after.client("C2").status == "failed"
    empty = step(runs, "R comes back empty")
    assert empty.after.lost_update and empty.after.holders() == ["C1", "C2"]

    forgetful = step(runs, "RedLock: one forgetful guard of five")
    assert forgetful.after.mode == "redlock"
    assert all(t["oks"] == 1 for t in forgetful.attempts("C2")) and forgetful.after.holders() == ["C1"]
    split = step(runs, "RedLock: the same crash in a split network")
    assert split.after.holders() == ["C1", "C2"]

    lease = step(runs, "A consensus lease")
    s = lease.after
    assert s.mode == "consensus" and s.fencing and all(n.persistence for n in s.nodes)
    assert (s.lease.holder, s.lease.revision) == ("C1", 33) and lease.attempts("C1")[0]["validity"] == 9893

    kept = step(runs, "The same crash, remembered")
    assert [e["kind"] for e in kept.events[:2]] == ["node_crashed", "node_restarted"]
    assert all(t["result"] == "FAIL (held by C1, revision 33)" for t in kept.attempts("C2"))
    assert kept.after.holders() == ["C1"] and kept.after.client("C2").status == "failed"
    assert [(w.client, w.token, w.accepted) for w in kept.after.writes] == [("C1", 33, True)]

    pause = step(runs, "A lease still expires")
    s = pause.after
    assert (s.lease.holder, s.lease.revision) == ("C2", 34)
    assert [(w.client, w.token, w.accepted) for w in s.writes] == [("C1", 33, True), ("C2", 34, True), ("C1", 33, False)]
    assert s.writes[-1].reason == "rejected stale token 33 < 34" and not s.lost_update


def test_consensus_members_cannot_restart_without_their_log():
    """Why lesson 5 restarts the consensus member with persistence=true: the sim refuses the other."""
    runs = fold_lesson("05-single-redlock-consensus")
    state = step(runs, "A consensus lease").after
    for ev in decide(state, {"type": "node_crash", "node": "C"}):
        state = evolve(state, ev)
    with pytest.raises(Rejected, match="fsync"):
        decide(state, {"type": "node_restart", "node": "C", "persistence": False})
