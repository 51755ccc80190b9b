"""A new race round is a new race.

The room engine empties a round's entries when the round opens, but the lock's race state kept
its contenders (and result, and the winner's keys), so reopening the round without "New race"
brought the old race back. ``concept.race_round_opened`` gives the commands that start the new
round's race from no contenders; ``concept.leftover_contenders`` counts the clients in the race
who did not join in the open round (what the presenter's panel warns about).
"""
from __future__ import annotations

from apps.lockquorums import concept as lq
from apps.lockquorums.sim import Race, initial_state

from .conftest import fold
from .test_sim_scene_race import join, race


def ran_race():
    """Ann (4 ms everywhere) wins against Bob (30 ms): Ann holds all five keys afterwards."""
    after, d = race(join(join(initial_state(), "Ann", {"*": 4}), "Bob", {"*": 30}))
    assert d["winners"] == ["Ann"] and all(n.key.owner == "Ann" for n in after.nodes)
    return after


def test_opening_a_round_after_a_race_that_ran_starts_from_no_contenders():
    s = ran_race()
    assert lq.race_round_opened(s) == [{"type": "race_reset"}]
    s = fold(s, *lq.race_round_opened(s))
    assert s.race == Race() and all(n.key is None for n in s.nodes)  # the winner released, as "New race" does
    s = fold(s, {"type": "race_join", "name": "Cy", "_seed": 0}, {"type": "race_join", "name": "Ann", "_seed": 1})
    assert [c.name for c in s.race.contenders] == ["Cy", "Ann"]  # Ann can race again; Bob is not carried over
    after, d = race(s)
    assert [c["name"] for c in d["contenders"]] == ["Cy", "Ann"] and len(d["winners"]) == 1


def test_opening_a_round_after_a_race_that_never_ran_starts_from_no_contenders():
    s = join(join(initial_state(), "Ann", {"*": 4}), "Bob", {"*": 30})
    s = fold(s, *lq.race_round_opened(s))
    assert s.race == Race()
    assert [c.name for c in fold(s, {"type": "race_join", "name": "Bob", "_seed": 0}).race.contenders] == ["Bob"]


def test_opening_a_round_with_no_race_left_does_nothing():
    assert lq.race_round_opened(initial_state()) == []


def test_new_race_within_the_round_still_works_as_before():
    s = fold(ran_race(), {"type": "race_reset"})
    assert s.race == Race() and all(n.key is None for n in s.nodes)
    assert lq.race_round_opened(s) == []  # nothing left over for the next round either


def test_leftover_contenders_are_the_ones_beyond_the_rounds_entries():
    s = join(join(initial_state(), "Ann", {"*": 4}), "Bob", {"*": 30})
    fresh = {"kind": "race", "open": True, "entries": []}
    assert lq.leftover_contenders(s, fresh) == 2
    s = join(s, "Cy", {"*": 5})
    one = {**fresh, "entries": [{"pid": "p3", "name": "Cy", "entry": "Cy"}]}
    assert lq.leftover_contenders(s, one) == 2
    assert lq.leftover_contenders(s, {**one, "open": False}) == 0 and lq.leftover_contenders(s, None) == 0
    panel = lq.round_panel(s, fresh | {"title": "Race for the lock"})
    assert "3 of the 3 clients in this race did not join in this round" in panel and "Clear" in panel
    cleared = fold(s, *lq.race_round_opened(s))
    assert lq.leftover_contenders(cleared, fresh) == 0
    assert "race-leftover" not in lq.round_panel(cleared, fresh | {"title": "Race for the lock"})
