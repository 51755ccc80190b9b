"""The bounded trace of episodes: what a message-passing concept keeps for its space-time diagram.

An *episode* is what one event put on the time line: a label, when it started and ended
(logical ms), the lane it belongs to (a client, a node; None: the whole room), the messages it
sent (:class:`~apps.common.sim.network.Message`), optionally a window on its lane (a lock's
validity: ``(from, to)``), whether it went well (``ok``) and the numbers behind its label
(``detail``, plain JSON). Episodes are numbered in the order they happened (``n``, from 0).

A :class:`Trace` keeps the newest episodes only: at most ``Bound.episodes`` of them and at most
``Bound.messages`` messages between them (the newest episode always stays, however many it
has); older ones are dropped first and only counted (``older_messages``), so a long run costs
the same as a short one. ``add`` may merge an episode into the newest one instead (time passing
tick after tick is one stretch): a merged episode takes no new number.

Pure (no Django); ``to_json`` / ``from_json`` round-trip exactly.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from .network import Message


@dataclass(frozen=True)
class Episode:
    n: int  # running number of the episode in the room (Trace.add numbers it)
    kind: str  # the concept's own kinds, e.g. acquire | release | write | fault | tick | race
    label: str
    start: int
    end: int
    lane: str | None = None
    messages: tuple[Message, ...] = ()
    window: tuple[int, int] | None = None  # a band on the lane: [from, to)
    ok: bool | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Bound:
    episodes: int = 40
    messages: int = 240


Merge = Callable[[Episode, Episode], Episode | None]  # (newest kept, new) -> merged, or None


@dataclass(frozen=True)
class Trace:
    episodes: tuple[Episode, ...] = ()
    count: int = 0  # episodes ever added: the next episode's number
    older_messages: int = 0  # messages of the episodes dropped so far

    def add(self, ep: Episode, bound: Bound = Bound(), merge: Merge | None = None) -> Trace:
        if merge is not None and self.episodes:
            merged = merge(self.episodes[-1], ep)
            if merged is not None:
                return replace(self, episodes=self.episodes[:-1] + (merged,))
        episodes = self.episodes + (replace(ep, n=self.count),)
        older = self.older_messages
        while len(episodes) > 1 and (len(episodes) > bound.episodes
                                     or sum(len(e.messages) for e in episodes) > bound.messages):
            older += len(episodes[0].messages)
            episodes = episodes[1:]
        return Trace(episodes, self.count + 1, older)

    @property
    def dropped(self) -> int:
        """Episodes no longer kept."""
        return self.count - len(self.episodes)

    def to_json(self) -> dict[str, Any]:
        return {"episodes": [episode_to_json(e) for e in self.episodes], "count": self.count,
                "older_messages": self.older_messages}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Trace:
        return Trace(tuple(episode_from_json(e) for e in data.get("episodes", [])), data.get("count", 0),
                     data.get("older_messages", 0))


def episode_to_json(e: Episode) -> dict[str, Any]:
    return {"n": e.n, "kind": e.kind, "label": e.label, "start": e.start, "end": e.end, "lane": e.lane,
            "messages": [dict(m) for m in e.messages], "window": None if e.window is None else list(e.window),
            "ok": e.ok, "detail": e.detail}


def episode_from_json(e: dict[str, Any]) -> Episode:
    window = e.get("window")
    return Episode(n=e["n"], kind=e["kind"], label=e["label"], start=e["start"], end=e["end"],
                   lane=e.get("lane", e.get("client")),  # "client": what the lock stored before the kit
                   messages=tuple(cast(Message, dict(m)) for m in e.get("messages", [])),
                   window=None if window is None else (window[0], window[1]), ok=e.get("ok"), detail=e.get("detail"))
