"""Running both styles up to a time: :func:`advance` asks ``engine.move`` what a participant
does on its own, then handles the next flight that is due (``handlers.HANDLE``: (style, kind) ->
a small function), folding each event before deciding the next."""
from __future__ import annotations

from apps.common.sim.network import Network

from .engine import Event, ev, move
from .evolve import evolve
from .handlers import HANDLE
from .state import WorkflowState

MAX_EVENTS = 20_000  # a tick never runs away (a duplicate storm without idempotency is finite anyway)


def advance(state: WorkflowState, target: int, net: Network) -> list[Event]:
    """Every event from ``state.now_ms`` up to ``target`` (the clock's move last)."""
    events: list[Event] = []
    s, t = state, state.now_ms
    for _ in range(MAX_EVENTS):
        e = move(s, net, t)
        if e is None:
            if not s.flights or s.flights[0].at > target:
                break
            f = s.flights[0]
            t = max(t, f.at)
            e = HANDLE[(f.style, f.kind)](s, f, net)
        events.append(e)
        s = evolve(s, e)
    events.append(ev("clock_advanced", to=target))
    return events
