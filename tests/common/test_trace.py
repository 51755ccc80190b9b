"""apps/common/sim/trace.py: the bounded trace of episodes and its JSON."""
from __future__ import annotations

import json

from apps.common.sim.network import message
from apps.common.sim.trace import Bound, Episode, Trace, episode_from_json, episode_to_json


def ep(kind: str = "acquire", msgs: int = 0, start: int = 0, end: int = 0, **kw: object) -> Episode:
    ms = tuple(message("request", "SET", "C1", "A", start, start + 1, "OK") for _ in range(msgs))
    return Episode(-1, kind, f"{kind} {msgs}", start, end, "C1", ms, **kw)  # type: ignore[arg-type]


def test_episodes_are_numbered_in_order():
    t = Trace().add(ep()).add(ep()).add(ep())
    assert [e.n for e in t.episodes] == [0, 1, 2] and t.count == 3


def test_the_oldest_episodes_go_first_and_their_messages_are_counted():
    t = Trace()
    for i in range(10):
        t = t.add(ep(msgs=3), Bound(episodes=4, messages=100))
    assert [e.n for e in t.episodes] == [6, 7, 8, 9]
    assert t.count == 10 and t.dropped == 6 and t.older_messages == 18


def test_the_message_bound_drops_old_episodes_but_keeps_the_newest():
    bound = Bound(episodes=40, messages=10)
    t = Trace().add(ep(msgs=4), bound).add(ep(msgs=4), bound).add(ep(msgs=4), bound)
    assert [e.n for e in t.episodes] == [1, 2] and t.older_messages == 4
    huge = t.add(ep(msgs=30), bound)
    assert [e.n for e in huge.episodes] == [3]  # alone over the bound, but the newest stays
    assert huge.older_messages == 12


def test_a_merge_stretches_the_newest_episode_without_a_new_number():
    def ticks(prev: Episode, new: Episode) -> Episode | None:
        return Episode(prev.n, "tick", "merged", prev.start, new.end) if prev.kind == new.kind == "tick" else None

    t = Trace().add(ep("tick", start=0, end=1000), merge=ticks).add(ep("tick", start=1000, end=2000), merge=ticks)
    assert len(t.episodes) == 1 and t.count == 1 and (t.episodes[0].start, t.episodes[0].end) == (0, 2000)
    t = t.add(ep("write"), merge=ticks)
    assert [e.kind for e in t.episodes] == ["tick", "write"] and t.count == 2


def test_json_round_trip_is_exact():
    lost = message("request", "DEL", "C2", "E", 5, None, "lost")
    t = Trace().add(ep(msgs=2, window=(3, 9000), ok=True, detail={"oks": 3, "why": None}))
    t = t.add(Episode(0, "release", "C2 releases", 5, 6, "C2", (lost,)))
    t = t.add(Episode(0, "race", "race", 7, 9, None))
    doc = json.loads(json.dumps(t.to_json()))
    assert Trace.from_json(doc) == t
    assert doc["episodes"][0]["window"] == [3, 9000] and doc["episodes"][1]["messages"][0]["arrives"] is None


def test_an_episode_stored_before_the_kit_reads_its_client_as_its_lane():
    old = dict(episode_to_json(ep()))
    old["client"] = old.pop("lane")
    assert episode_from_json(old).lane == "C1"
