"""Lock quorums (RedLock), the teaching core: pure Python, no Django, no I/O, no wall clock.

Picture five guards, each with a notebook. To take the lock you walk past them in turn and ask
each to write "the lock is yours until ..." next to your random password. If at least three of
the five (a quorum, N//2 + 1) say yes, nobody else can get three: any two groups of three share a
guard, and that guard said yes to one of you only. Nothing is forever: each note has a TTL (time
to live) and the guard rubs it out when it runs out, so a client that crashes cannot block
everyone. You only count the lock as yours for its *validity*: the TTL minus the time the walk
took minus a small allowance for clocks running at different speeds (drift = 1% of the TTL +
2 ms). If you fail, you ask every guard to rub out your note (only if the password matches:
compare-and-delete), wait a random moment and try again.

Why RedLock is controversial (Kleppmann, 2016, and antirez's reply): safety rests on timing.
A client paused by garbage collection wakes up believing it still holds a lock that expired long
ago; a guard whose clock jumps forward rubs out a note early; a guard that restarts without
writing its notebook to disk forgets. Each lets two clients "hold" the lock at once. Random
passwords cannot fence off the late writer; a monotonic fencing token checked by the storage
can, and consensus systems (etcd, ZooKeeper) hand one out as the lease revision.

Fencing in this model: with ``fencing`` on, every successful acquisition gets the next number of
a monotonic counter (starting at 33, as in Kleppmann's article). In "consensus" mode that counter
*is* the lease revision, an honest source; in "redlock" and "single" mode it is an oracle real
RedLock does not have (its values are random), shown to make the storage's check visible.
"""
from apps.common.sim import Rejected
from apps.common.sim.trace import Episode

from .decide import COMMANDS, decide
from .events import EVENTS
from .evolve import evolve
from .scenarios import SCENARIOS, run, scenario_commands, steps
from .state import (
    MODES,
    Client,
    Contender,
    Key,
    Lease,
    Limits,
    LockNode,
    LockState,
    Race,
    Write,
    drift,
    from_json,
    initial_state,
    quorum,
    to_json,
)

__all__ = [
    "COMMANDS", "EVENTS", "MODES", "SCENARIOS", "Client", "Contender", "Episode", "Key", "Race", "Lease", "Limits",
    "LockNode", "LockState", "Rejected", "Write", "decide", "drift", "evolve", "from_json", "initial_state", "quorum",
    "run", "scenario_commands", "steps", "to_json",
]
