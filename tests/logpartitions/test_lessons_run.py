"""The log lesson runs: every step's commands are accepted in order, and its text is true.

Pure (tomllib and ``apps.logpartitions.sim``), folded the way a room does it: each command gets
a ``_seed`` from the room's seed, the step's sequence number and the command's index. Every
number the narration or the question states (digits or a number word) must be one the folded
state or the step's events show; each step's claims are checked against the state as well.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apps.logpartitions.sim import (
    ClusterState, Rejected, decide, evolve, initial_state, partition_for, read_records, to_json,
)
from tests import lessonfold
from tests.lockquorums.test_lessons_run import ints  # every whole number in a JSON value

LESSONS = Path(__file__).resolve().parents[2] / "apps" / "logpartitions" / "lessons"
SLUGS = sorted(p.stem for p in LESSONS.glob("*.toml"))
ROOM_SEEDS = ["lesson", "room-7f3a", "x", "42"]
WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
         "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
         "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "hundred": 100}
NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?![\w])")
EXEMPT = re.compile(r"0x[0-9a-fA-F]+|acks=\d|\b[A-Za-z]+-?\d+\b")  # the mask, acks=1, names like customer-1001 (checked below)


@dataclass
class StepRun:
    title: str
    text: str  # narration and question, whitespace normalised
    before: ClusterState
    after: ClusterState
    events: list[dict[str, Any]]


def load(slug: str) -> dict[str, Any]:
    return lessonfold.load(LESSONS, slug)


def fold_lesson(slug: str, room_seed: str = "lesson") -> list[StepRun]:
    return [StepRun(f.step["title"], " ".join(f"{f.step['narration']} {f.step['question']}".split()), f.before, f.after,
                    f.events)
            for f in lessonfold.fold_steps(LESSONS, slug, initial_state(), decide, evolve, Rejected, room_seed)]


def stated_numbers(text: str) -> set[int]:
    plain = EXEMPT.sub(" ", text)
    found = {int(m.replace(",", "")) for m in NUMBER.findall(plain)}
    found |= {WORDS[w.lower()] for w in re.findall(r"[A-Za-z]+", plain) if w.lower() in WORDS}
    return found


def known_numbers(run: StepRun) -> set[int]:
    state = run.after
    known = ints(run.events) | ints(to_json(run.before)) | ints(to_json(state))
    known |= {len(state.partitions), state.brokers, state.config.replication_factor, len(state.producers),
              len(state.groups)}
    return known


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
@pytest.mark.parametrize("slug", SLUGS)
def test_every_number_in_a_steps_text_is_one_its_scene_shows(slug, room_seed):
    for run in fold_lesson(slug, room_seed):
        unknown = stated_numbers(run.text) - known_numbers(run)
        assert not unknown, f"{slug}, step {run.title!r} (seed {room_seed}): {sorted(unknown)} not in the folded state"


def test_the_number_check_catches_a_wrong_number():
    """The check itself: a step that says 'Thirteen records' or '1,999' where its scene has 12 records fails."""
    run = fold_lesson(SLUGS[0])[1]
    assert 12 in stated_numbers(run.text) and stated_numbers(run.text) <= known_numbers(run)
    wrong = StepRun(run.title, run.text.replace("Twelve", "Thirteen") + " 1,999", run.before, run.after, run.events)
    assert stated_numbers(wrong.text) - known_numbers(wrong) == {13, 1999}


# -- lesson 1, step by step: what the text claims is what the state shows ---------------------------

def records(state: ClusterState, partition: int) -> list[Any]:
    part = state.partitions[partition]
    return read_records(state, partition, part.log.start, part.log.end)


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
def test_lesson_1_says_what_its_scenes_do(room_seed):
    runs = fold_lesson("01-keys-order-and-the-high-watermark", room_seed)
    scene = runs[0].after
    # "three partitions on three brokers, each copied to a second broker"; "mod 3"
    assert (len(scene.partitions), scene.brokers, scene.config.replication_factor) == (3, 3, 2)
    assert "three partitions on three brokers" in runs[0].text and "mod 3" in runs[0].text
    assert scene.total_records == 0

    keys = runs[1]
    # "Twelve records keyed customer-1001 ... customer-1012 spread over the partitions by their hash"
    [burst] = [e["data"] for e in keys.events if e["kind"] == "burst_produced"]
    assert (burst["count"], burst["first_order_id"], burst["last_order_id"]) == (12, 1001, 1012)
    assert "customer-1001" in keys.text and "customer-1012" in keys.text and "Twelve" in keys.text
    for p in range(3):
        got = [r.key for r in records(keys.after, p) if r.key and r.key != "customer-1"]
        assert all(partition_for(k, 3) == p for k in got)
    assert len({partition_for(f"customer-{i}", 3) for i in range(1001, 1013)}) > 1  # spread
    # "customer-1 pays and its order ships: both land in the same partition, one after the other"
    p1 = partition_for("customer-1", 3)
    tail = [(r.key, r.value) for r in records(keys.after, p1)][-2:]
    assert tail == [("customer-1", "order paid"), ("customer-1", "order shipped")]

    above = runs[2]
    # "The dashed records are on the leader only ... acks=all producers are still waiting"
    assert above.after is above.before or to_json(above.after) == to_json(above.before)
    for part in above.after.partitions:
        if len(part.log):
            assert part.high_watermark < part.log.end
            follower = [b for b in part.replicas if b != part.leader][0]
            assert part.leo_of(follower) == part.high_watermark
    assert above.after.producer("producer").waiting == 14

    tick = runs[3]
    # "the HW moves up to the end of each log, and the producer hears acknowledged. The consumer starts reading."
    assert all(p.high_watermark == p.log.end for p in tick.after.partitions)
    assert tick.after.producer("producer").waiting == 0
    assert tick.after.producer("producer").acknowledged == 14
    assert sum(tick.after.group("analytics").committed) > 0

    stop = runs[4]
    # "Broker 0 stops. Its partitions fail over to the follower that was in sync, and it is fenced
    # out of the ISR everywhere else. Nothing committed is lost."
    s = stop.after
    assert not s.brokers_up[0]
    for part in s.partitions:
        assert part.leader != 0 and 0 not in part.isr
        assert part.leader in stop.before.partitions[part.index].isr
    assert s.lost_records == 0 and s.total_records == tick.after.total_records
    for p in range(3):
        assert [(r.offset, r.key, r.value) for r in records(s, p)] == [
            (r.offset, r.key, r.value) for r in records(tick.after, p)]


@pytest.mark.parametrize("room_seed", ROOM_SEEDS)
def test_lesson_2_retries_with_acks_all_and_loses_with_acks_1(room_seed):
    runs = fold_lesson("02-acks-and-failover", room_seed)
    slow = runs[0].after
    assert slow.config.follower_fetch_per_tick == 1 and slow.producer("producer").acks == "all"

    five = runs[1].after  # "5 records with key alice: all go to P0, led by b0 ... HW 1: 1 acknowledged, 4 waiting"
    p0 = five.partitions[0]
    assert partition_for("alice", 3) == 0 and p0.leader == 0 and p0.replicas == (0, 1)
    assert (p0.log.end, p0.leo_of(1), p0.high_watermark) == (5, 1, 1)
    producer = five.producer("producer")
    assert (producer.acknowledged, producer.waiting) == (1, 4)

    stop = runs[2]  # "b1 leads P0 with the 1 record it has; 4 cut, never told; nothing counts as lost"
    p0 = stop.after.partitions[0]
    assert (p0.leader, p0.log.end) == (1, 1)
    [election] = [e for e in stop.events[0]["data"]["elections"] if e["partition"] == 0]
    assert (election["truncated"], election["never_acked"], election["lost"]) == (4, 4, 0)
    assert stop.after.lost_records == 0 and stop.after.producer("producer").failed == 4

    ones = runs[3]  # "b0 back as a follower; acks=1; 5 more to P0 led by b1, all 5 acknowledged; b0 has 1 of them"
    s = ones.after
    p0 = s.partitions[0]
    assert s.brokers_up[0] and p0.leader == 1 and 0 in p0.isr and s.producer("producer").acks == 1
    assert s.producer("producer").acknowledged - stop.after.producer("producer").acknowledged == 5
    assert (p0.log.end, p0.leo_of(0)) == (6, 2)  # the 1 old record, then 1 of the 5 new ones

    lost = runs[4]  # "b0 leads P0; the 4 records it never had are cut: 4 acknowledged records lost"
    p0 = lost.after.partitions[0]
    assert (p0.leader, p0.log.end) == (0, 2)
    [election] = [e for e in lost.events[0]["data"]["elections"] if e["partition"] == 0]
    assert election["clean"] and (election["truncated"], election["lost"], election["committed_lost"]) == (4, 4, 0)
    assert lost.after.lost_records == 4 and lost.after.producer("producer").lost == 4
