"""The distributed log as the room engine sees it: decider, picture, narration, JSON."""
from __future__ import annotations

from typing import Any


from apps.rooms import fragments
from apps.rooms.registry import Concept, RoomView, RoundSpec

from . import picture as pic
from . import sim
from .sim.cluster import ClusterState


def decide(state: ClusterState, command: dict[str, Any]) -> list[dict[str, Any]]:
    return sim.decide(state, command)


def page_context(state: ClusterState, view: RoomView) -> dict[str, Any]:
    picture = pic.picture(state, view)
    return {
        "layers": {k.replace("-", "_"): v.inner() for k, v in picture.layers.items()},
        "panels": {k.replace("-", "_"): v for k, v in picture.panels.items()},
        "cluster": state,
        "svg_height": pic.height(state),
        "svg_width": pic.WIDTH,
        "brokers": range(len(state.brokers_up)),
        "groups": sim.group_summaries(state),
        "producers": sim.producer_summaries(state),
        "assignors": sim.ASSIGNORS,
    }


def render_frame(state: ClusterState, view: RoomView) -> str:
    """The whole picture frame and panels, for a first paint or when the frame's size changes."""
    picture = pic.picture(state, view)
    layers = {k.replace("-", "_"): v.inner() for k, v in picture.layers.items()}
    frame = fragments.render_tight("logpartitions/_frame.html", {"layers": layers, "svg_height": pic.height(state),
                                                                       "svg_width": pic.WIDTH, "oob": True})
    return frame + fragments.full(fragments.Picture(panels=picture.panels))


def render_full(state: ClusterState, view: RoomView) -> str:
    return render_frame(state, view)


def render_update(before: ClusterState, after: ClusterState, events: list[dict[str, Any]], view: RoomView) -> str:
    if pic.height(before) != pic.height(after) or len(before.brokers_up) != len(after.brokers_up):
        return render_frame(after, view)
    return fragments.diff(pic.picture(before, view), pic.picture(after, view, events))


narrate = sim.narrate  # one sentence per event kind: sim/narrate.py


def state_json(state: ClusterState) -> dict[str, Any]:
    doc = sim.to_json(state)
    doc["derived"] = {
        "partitions": sim.partition_summaries(state),
        "groups": sim.group_summaries(state),
        "producers": sim.producer_summaries(state),
        "totals": sim.totals(state),
    }
    return doc


def join_group_command(state: ClusterState, body: dict[str, Any], name: str) -> dict[str, Any]:
    return {"type": "group_join", "group": "class", "member": name}


JOIN_GROUP_ROUND = RoundSpec(
    kind="join_group",
    title="Join the class consumer group",
    instructions="join the consumer group 'class' as yourself and see which partitions you own.",
    student_command="join_my_group",
    to_command=join_group_command,
    entry_key="member",
    input_label=None,
)


def round_panel(state: ClusterState, current: dict[str, Any] | None) -> str:
    group = next((g for g in sim.group_summaries(state) if g["name"] == "class"), None)
    return fragments.render_tight("logpartitions/_round.html", {"round": current, "group": group,
                                                               "entries": len((current or {}).get("entries", []))})


def my_entry(state: ClusterState, entry: dict[str, Any]) -> str:
    group = next((g for g in sim.group_summaries(state) if g["name"] == "class"), None)
    me = next((m for m in (group or {}).get("members", []) if m["name"] == entry["entry"]), None)
    return fragments.render_tight("logpartitions/_my_entry.html", {"entry": entry, "me": me, "group": group,
                                                                  "partitions": len(state.partitions)})


CONCEPT = Concept(
    slug="log-partitions",
    title="Log partitions",
    blurb="A Kafka-style log: partitions, replicas, consumer groups, offsets and lag. Break a broker and watch.",
    initial_state=sim.initial_state,
    decide=decide,
    evolve=sim.evolve,
    to_json=sim.to_json,
    from_json=sim.from_json,
    rejected=sim.Rejected,
    page_template="logpartitions/page.html",
    page_context=page_context,
    render_full=render_full,
    render_update=render_update,
    narrate=narrate,
    state_json=state_json,
    ticks=True,
    rounds=(JOIN_GROUP_ROUND,),
    round_panel=round_panel,
    my_entry=my_entry,
)
