"""The distributed log as the room engine sees it: decider, picture, narration, JSON."""
from __future__ import annotations

from typing import Any

from apps.rooms import fragments
from apps.rooms.registry import Concept, RoundSpec, simulation

from . import picture as pic
from . import sim
from .sim.cluster import ClusterState


def decide(state: ClusterState, command: dict[str, Any]) -> list[dict[str, Any]]:
    return sim.decide(state, command)


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
    **simulation(sim, decide=decide),
    picture=pic.picture,
    page_template="logpartitions/page.html",
    state_json=state_json,
    ticks=True,
    rounds=(JOIN_GROUP_ROUND,),
    round_panel=round_panel,
    my_entry=my_entry,
)
