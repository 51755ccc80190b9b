"""The hash ring as the room engine sees it: its simulation, its picture, its round and its JSON."""
from __future__ import annotations

from typing import Any

from django.conf import settings

from apps.rooms import fragments
from apps.rooms.fragments import Picture
from apps.rooms.registry import Concept, RoomView, RoundSpec, simulation

from . import picture as pic
from . import sim
from .sim import RingState


def limits() -> sim.Limits:
    conf = settings.DISTVIZ_LIMITS
    return sim.Limits(max_nodes=conf["max_nodes"], max_vnodes=conf["max_vnodes"], max_keys=conf["max_keys"],
                      max_name_length=conf["max_name_length"])


def decide(state: RingState, command: dict[str, Any]) -> list[dict[str, Any]]:
    return sim.decide(state, command, limits())


def page_context(state: RingState, view: RoomView) -> dict[str, Any]:
    """Besides the picture, the page's forms need the room's limits (the most keys at once)."""
    return {"limits": limits()}


def state_json(state: RingState) -> dict[str, Any]:
    """The documented state: the fold of the log, plus what follows from it."""
    doc = sim.to_json(state)
    doc["derived"] = {
        "counts": state.counts,
        "shares": pic.arc_shares(state),
        "load": pic.load_stats(state),
        "lookup": None if state.lookup is None or not state.nodes else {
            "key": state.lookup,
            "position": sim.key_position(state.lookup),
            "owner": state.owner_of(state.lookup),
            "preference_list": [n for n, _ in state.preference_list(state.lookup)],
        },
    }
    return doc


def own_key_command(state: RingState, body: dict[str, Any], name: str) -> dict[str, Any]:
    """A student's entry: a key named after them (or the text they typed instead)."""
    key = body.get("key")
    return {"type": "add_key", "key": key if isinstance(key, str) and key.strip() else name}


OWN_KEY_ROUND = RoundSpec(
    kind="own_key",
    title="Add your own key",
    instructions="add one key (your name) and see which node stores it.",
    student_command="add_my_key",
    to_command=own_key_command,
    input_label="Your key",
)


def round_panel(state: RingState, current: dict[str, Any] | None) -> str:
    """The class leaderboard: the round's keys grouped by the node that stores them now."""
    board: dict[str, list[str]] = {}
    entries = (current or {}).get("entries", [])
    for entry in entries:
        owner = state.owner_of(entry["entry"]) if entry["entry"] in state.key_set else None
        board.setdefault(owner or "(removed)", []).append(entry["name"])
    rows = sorted(board.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    most = max((len(v) for v in board.values()), default=1)
    slots = {n.name: pic.colour(n.slot) for n in state.nodes}
    leaderboard = [{"node": node, "names": names, "count": len(names), "colour": slots.get(node, "")} for node, names in rows]
    return fragments.render_tight("hashring/_round.html",
                                  {"round": current, "leaderboard": leaderboard, "entries": len(entries), "most": most})


def round_marks(state: RingState, current: dict[str, Any] | None) -> str:
    """The marks the ring's picture draws for ``current`` (its ``ring-round`` layer), as markup:
    kept for the engine's round tests, which read them without a room view."""
    picture = Picture()
    pic.draw_round(picture, state, current)
    return picture.layers["ring-round"].inner()


def my_entry(state: RingState, entry: dict[str, Any]) -> str:
    """The student's own result, sent to that student only."""
    return fragments.render_tight("hashring/_my_entry.html", {"p": sim.placement(state, entry["entry"]), "entry": entry})


CONCEPT = Concept(
    slug="hashring",
    title="Hash ring",
    blurb="Consistent hashing with virtual nodes: add a server and watch only a few keys move.",
    **simulation(sim, decide=decide),
    picture=pic.picture,
    page_template="hashring/page.html",
    page_context=page_context,
    state_json=state_json,
    ticks=True,
    rounds=(OWN_KEY_ROUND,),
    round_panel=round_panel,
    my_entry=my_entry,
    # A student's panel depends only on where their key lands: a tick that moves it draws nothing.
    my_entry_basis=lambda state, entry: sim.placement(state, entry["entry"]),
)
