"""Rate limits on what arrives over the room WebSockets: per connection, per person, per address.

Every frame (a command, a ``sync`` request, garbage) costs a token from three buckets the moment
it arrives: the consumer takes frames off the socket as they come (``RoomConsumer._pump``) and
counts them before any parsing or database work (Channels alone reads the next frame only after
the last one is handled, so a busy consumer refilled its buckets between frames). A refused frame
is answered "slow down" at once, with its command id (found by a bounded regular expression, not
a parse), so the page drops it from its outbox instead of replaying it later.

- **Connection**: 8 frames a second, bursts of 16 (a key held down in one tab).
- **Person**: every socket of one browser session (its ``pid``) shares the same 8 a second,
  bursts of 16: twenty tabs are no faster than one. Sockets that came without the page's session
  are one person per address ("anonymous at 192.0.2.7"), so dropping the cookie does not escape
  the limit.
- **Address**: all sockets from one client address share ``20 + 1 x persons`` a second, bursts of
  ``60 + 3 x persons``, where *persons* is how many different sessions have a socket open from
  that address in this process. A classroom is one address: on campus Wi-Fi the whole class
  shares one public IP behind NAT (and behind a reverse proxy every client has the proxy's
  address, unless the server is told to trust its forwarding header, e.g. ``daphne
  --proxy-headers``). A fixed per-address limit small enough to stop one machine would starve
  300 students entering a round in the same second (300 commands plus the ``sync`` requests of
  those who missed a frame); scaled, 300 connected students get 320/s with bursts of 960, while a
  machine flooding with one session, or with sockets without a session, is held to its person
  budget (8/s) long before the address's. What it does not stop: a machine that mints hundreds
  of sessions (loading the page hundreds of times) gets a class's allowance. That needs a limit
  in front of the server (connections per address at the proxy).
- **A flood**: a person (all their sockets together) refused more than 100 frames within 2
  seconds is no page (a held key repeats some 30 times a second, of which 8 pass: 44 refusals in
  2 seconds). For 10 seconds each of their sockets that sends drops its frames unread and unanswered;
  it is told so once with ``settle_all`` (the page forgets every command it has not seen
  answered) and again when the 10 seconds are over, so nothing dropped is replayed later.
  Answering every frame of a flood kept the server busy writing "slow down" thousands of times a
  second; measured on a real daphne (``tests/rooms/test_flood.py``) another room's round trip
  stays at 1.0-1.8x its quiet median under a 20-socket flood (24-33x with only the per-socket
  limit).

A refused frame does not consume tokens from the buckets after the one that refused it, so one
person flooding spends only their own person budget from the address they share with a class.

``DISTVIZ_RATE_PERSON`` and ``DISTVIZ_RATE_ADDRESS`` (``rate,burst``) change the person's and the
address's base budgets, for a benchmark that drives one room from several sockets of one session.

**Several worker processes**: the buckets live in this process's memory, shared by all its
sockets. With ``DISTVIZ_WORKERS`` workers behind a proxy, a person whose sockets land on several
workers gets up to that many times the limits (unless the proxy keeps a client on one worker).
That is accepted: the limits exist to keep one person from slowing a process's other rooms, and
each process protects its own rooms; a shared count in Redis would cost a round trip per frame.

Memory stays bounded: a bucket that has refilled completely is the same as no bucket, so idle
buckets are dropped once there are more than ``MAX_BUCKETS``.
"""
from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass



def _pair(name: str, default: tuple[float, float]) -> tuple[float, float]:
    """``rate,burst`` from the environment (for a benchmark that drives one room past what one
    person may send), else the default. Unset in a classroom."""
    try:
        rate, burst = (float(x) for x in os.environ.get(name, "").split(","))
    except ValueError:
        return default
    return (rate, burst) if rate > 0 and burst >= 1 else default


CONNECTION_RATE, CONNECTION_BURST = 8.0, 16.0
PERSON_RATE, PERSON_BURST = _pair("DISTVIZ_RATE_PERSON", (8.0, 16.0))
ADDRESS_RATE, ADDRESS_BURST = _pair("DISTVIZ_RATE_ADDRESS", (20.0, 60.0))
ADDRESS_RATE_PER_PERSON, ADDRESS_BURST_PER_PERSON = 1.0, 3.0
MAX_BUCKETS = 10_000
# A socket refused more than FLOOD_REFUSALS frames within FLOOD_WINDOW seconds is no page (a key
# held down repeats some 30 times a second): for COOL_DOWN seconds its frames are dropped unread
# and unanswered. It is told so once, with "settle_all" (the page drops every command it has not
# seen answered), and once more when the cool-down ends, so nothing dropped is ever replayed.
FLOOD_REFUSALS, FLOOD_WINDOW, COOL_DOWN = 100, 2.0, 10.0

SLOW_DOWN = "Slow down: too many commands at once. Try again in a moment."
FLOODED = "Far too many commands: this screen's commands are ignored for a few seconds. Nothing you sent since was applied."

# The command id of a frame, without parsing it: htmx puts it in the headers, a script may put it
# in the body. Plain ids only (no escapes), at most 64 characters: htmx's are UUIDs.
FRAME_ID = re.compile(r'"(?:HX-Request-ID|command_id)"\s*:\s*"([^"\\\x00-\x1f]{1,64})"')
ID_SCAN = 4096  # characters: where htmx's headers are; a command id later than that goes unnamed


def frame_id(text: str | None) -> str | None:
    """The command id a frame carries, found without parsing it (None when there is none)."""
    if not text:
        return None
    found = FRAME_ID.search(text, 0, ID_SCAN) or (FRAME_ID.search(text) if len(text) > ID_SCAN else None)
    return found.group(1) if found else None


@dataclass
class Bucket:
    tokens: float
    refilled: float

    def take(self, now: float, rate: float, burst: float) -> bool:
        # max(0, ...): a clock that goes backwards (a test's frozen clock) never drains a bucket.
        self.tokens = min(burst, self.tokens + max(0.0, now - self.refilled) * rate)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Limits:
    """The person and address buckets of this process, and who is connected from where."""

    def __init__(self) -> None:
        self.people: dict[str, Bucket] = {}
        self.addresses: dict[str, Bucket] = {}
        self.persons_at: defaultdict[str, Counter[str]] = defaultdict(Counter)  # address -> pid -> sockets
        self.refusals: dict[str, tuple[float, int]] = {}  # person -> (window start, frames refused in it)

    def refused(self, address: str, pid: str, now: float) -> bool:
        """Count a refused frame of this person's; True once they are flooding (more than
        FLOOD_REFUSALS within FLOOD_WINDOW seconds, over all their sockets)."""
        key = pid or f"anonymous@{address}"
        start, count = self.refusals.get(key, (now, 0))
        if now - start > FLOOD_WINDOW or now < start:
            start, count = now, 0
        elif key not in self.refusals and len(self.refusals) >= MAX_BUCKETS:
            for old in [k for k, (t, _) in self.refusals.items() if now - t > FLOOD_WINDOW]:
                del self.refusals[old]
            while len(self.refusals) >= MAX_BUCKETS:
                del self.refusals[next(iter(self.refusals))]
        self.refusals[key] = (start, count + 1)
        return count + 1 > FLOOD_REFUSALS

    def joined(self, address: str, pid: str) -> None:
        if pid:
            self.persons_at[address][pid] += 1

    def left(self, address: str, pid: str) -> None:
        if not pid or address not in self.persons_at:
            return
        here = self.persons_at[address]
        here[pid] -= 1
        if here[pid] <= 0:
            del here[pid]
        if not here:
            del self.persons_at[address]

    def persons(self, address: str) -> int:
        here = self.persons_at.get(address)
        return len(here) if here else 0

    def allow(self, address: str, pid: str, now: float) -> bool:
        """Take a token from the person's bucket, then from the address's; False if either is empty."""
        person = pid or f"anonymous@{address}"
        if not self._take(self.people, person, now, PERSON_RATE, PERSON_BURST):
            return False
        n = self.persons(address)
        return self._take(self.addresses, address, now, ADDRESS_RATE + ADDRESS_RATE_PER_PERSON * n,
                          ADDRESS_BURST + ADDRESS_BURST_PER_PERSON * n)

    def _take(self, buckets: dict[str, Bucket], key: str, now: float, rate: float, burst: float) -> bool:
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= MAX_BUCKETS:
                self._prune(buckets, now, rate, burst)
            bucket = buckets[key] = Bucket(burst, now)
        return bucket.take(now, rate, burst)

    @staticmethod
    def _prune(buckets: dict[str, Bucket], now: float, rate: float, burst: float) -> None:
        full = [k for k, b in buckets.items() if b.tokens + max(0.0, now - b.refilled) * rate >= burst]
        for k in full:
            del buckets[k]
        while len(buckets) >= MAX_BUCKETS:  # all busy (an attack with many keys): forget the oldest
            del buckets[next(iter(buckets))]

    def clear(self) -> None:
        self.people.clear()
        self.addresses.clear()
        self.persons_at.clear()
        self.refusals.clear()


LIMITS = Limits()
