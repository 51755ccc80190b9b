"""One partition's log: fixed-size segments, appended to at the end, deleted from the front.

Kafka stores a partition as a chain of segment files. Appends go to the last ("active")
segment; when it is full a new one starts; retention deletes whole old segments, never single
records. Here a segment holds up to ``segment_size`` offsets (1024 unless a scene asks for
small ones), aligned so that segment ``k`` covers offsets ``k*size .. (k+1)*size - 1``, and
appending copies only the last segment.

A record is not kept as its own object. Each produce request is one :class:`Batch` (who sent
it, at which tick, and how its records are named); a segment holds *runs*: "the records r..r+n
of batch b that went to this partition". A burst of 100,000 records is a few runs per
partition, so a million records fit in kilobytes of JSON, and any record can still be read back
exactly: the batch regenerates its keys and values, and where each one went, from its pattern
and seed (pure functions, cached).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .murmur import murmur2, murmur2_many, to_positive

SEGMENT_RECORDS = 1024
RANDOM_USERS = 1000  # "random-users" keys are user-0 .. user-999: the same user comes back


class Record(NamedTuple):
    offset: int
    key: str | None
    value: str
    producer: str
    tick: int  # the tick at which it was produced


@dataclass(frozen=True)
class Batch:
    """One produce request. ``pattern`` None: a single record with ``key`` and ``value``.

    Otherwise a burst of ``count`` records numbered ``first_order_id + i``: the key of record i
    is the pattern with ``{i}`` replaced by that number, or ``user-N`` for "random-users", or
    no key for "none" (then the sticky partitioner places them, starting from
    ``sticky_partition``/``sticky_fill`` and switching among ``candidates`` with ``seed``).
    """

    id: int
    producer: str
    tick: int
    count: int = 1
    first_order_id: int = 0
    key: str | None = None
    value: str | None = None
    pattern: str | None = None
    seed: str = ""
    num_partitions: int = 1
    sticky_partition: int | None = None
    sticky_fill: int = 0
    sticky_batch_size: int = 4
    candidates: tuple[int, ...] = ()
    acks: int | str | None = None  # the producer's acks when it sent the batch (None: not recorded)

    @property
    def keyless(self) -> bool:
        return self.pattern == "none" if self.pattern is not None else self.key is None

    def key_of(self, i: int) -> str | None:
        if self.pattern is None:
            return self.key
        if self.pattern == "none":
            return None
        if self.pattern == "random-users":
            return f"user-{to_positive(murmur2(f'{self.seed}:{i}'.encode())) % RANDOM_USERS}"
        return self.pattern.replace("{i}", str(self.first_order_id + i))

    def value_of(self, i: int) -> str:
        if self.pattern is None and self.value is not None:
            return self.value
        return f"order_id={self.first_order_id + i}"

    def keys(self) -> list[str] | None:
        """Every key of a burst (None for keyless bursts)."""
        if self.pattern is None:
            return None if self.key is None else [self.key]
        if self.pattern == "none":
            return None
        if self.pattern == "random-users":
            names = murmur2_many([f"{self.seed}:{i}".encode() for i in range(self.count)])
            return [f"user-{n}" for n in ((names & 0x7FFFFFFF) % RANDOM_USERS).tolist()]
        pattern, first = self.pattern, self.first_order_id
        return [pattern.replace("{i}", str(first + i)) for i in range(self.count)]


class BurstPlan(NamedTuple):
    partitions: np.ndarray  # per record of the burst: the partition it is sent to
    members: tuple[np.ndarray, ...]  # per partition: the record numbers i sent there, in order
    sticky_partition: int | None  # the producer's sticky state after the burst
    sticky_fill: int


def sticky_choice(hash_value: int, current: int | None, candidates: tuple[int, ...]) -> int:
    """The sticky partitioner's switch: a random available partition other than the current one."""
    options = [p for p in candidates if p != current] or list(candidates)
    return options[to_positive(hash_value) % len(options)]


@lru_cache(maxsize=32)
def burst_plan(batch: Batch) -> BurstPlan:
    """Where each record of a burst goes. Pure: the same batch always gives the same plan."""
    n, parts_count = batch.count, batch.num_partitions
    sticky_partition, sticky_fill = batch.sticky_partition, batch.sticky_fill
    keys = batch.keys()
    if keys is not None:
        hashes = murmur2_many([k.encode("utf-8") for k in keys])
        partitions = ((hashes & np.uint32(0x7FFFFFFF)) % np.uint32(parts_count)).astype(np.int16)
    else:
        partitions = np.empty(n, dtype=np.int16)
        size = batch.sticky_batch_size
        switches = murmur2_many([f"{batch.seed}:{k}".encode() for k in range(n // size + 2)]).astype(np.int64)
        allowed = set(batch.candidates)
        pos, switch = 0, 0
        while pos < n:
            if sticky_partition is None or sticky_partition not in allowed or sticky_fill >= size:
                sticky_partition = sticky_choice(int(switches[switch]), sticky_partition, batch.candidates)
                sticky_fill, switch = 0, switch + 1
            take = min(size - sticky_fill, n - pos)
            partitions[pos:pos + take] = sticky_partition
            pos, sticky_fill = pos + take, sticky_fill + take
    order = np.argsort(partitions, kind="stable").astype(np.int32)
    bounds = np.searchsorted(partitions[order], np.arange(parts_count + 1))
    members = tuple(order[bounds[p]:bounds[p + 1]] for p in range(parts_count))
    for m in members:
        m.setflags(write=False)
    partitions.setflags(write=False)
    return BurstPlan(partitions, members, sticky_partition, sticky_fill)


def record_numbers(batch: Batch, partition: int, first: int, count: int) -> list[int]:
    """The record numbers i of ``batch`` at ranks first..first+count-1 within ``partition``."""
    if batch.pattern is None:
        return [0][first:first + count]
    numbers: list[int] = burst_plan(batch).members[partition][first:first + count].tolist()
    return numbers


class Run(NamedTuple):
    batch: Batch
    first: int  # rank among the batch's records that went to this partition
    size: int


@dataclass(frozen=True)
class Segment:
    base: int  # first offset held
    size: int
    runs: tuple[Run, ...]

    @property
    def end(self) -> int:
        return self.base + self.size

    def with_run(self, run: Run) -> Segment:
        last = self.runs[-1] if self.runs else None
        if last is not None and last.batch.id == run.batch.id and last.first + last.size == run.first:
            runs = self.runs[:-1] + (Run(last.batch, last.first, last.size + run.size),)
        else:
            runs = self.runs + (run,)
        return Segment(self.base, self.size + run.size, runs)

    def cut(self, keep: int) -> tuple[Segment, list[Run]]:
        """The first ``keep`` records of this segment, and the runs (or parts) cut off."""
        kept: list[Run] = []
        removed: list[Run] = []
        left = keep
        for run in self.runs:
            if left >= run.size:
                kept.append(run)
                left -= run.size
            elif left > 0:
                kept.append(Run(run.batch, run.first, left))
                removed.append(Run(run.batch, run.first + left, run.size - left))
                left = 0
            else:
                removed.append(run)
        return Segment(self.base, keep, tuple(kept)), removed


@dataclass(frozen=True)
class Log:
    """The leader's log of one partition: offsets ``start`` .. ``end - 1``."""

    start: int = 0  # log start offset: everything before it was deleted by retention
    end: int = 0  # log end offset: the offset the next record gets
    segments: tuple[Segment, ...] = field(default=(), repr=False)
    segment_size: int = SEGMENT_RECORDS  # offsets per segment; segment k starts at k * segment_size

    def __len__(self) -> int:
        return self.end - self.start

    def segment_index(self, offset: int) -> int:
        """Index in ``segments`` of the segment holding ``offset`` (start <= offset < end)."""
        return offset // self.segment_size - self.segments[0].base // self.segment_size

    def room(self, segment: Segment) -> int:
        """Offsets left in ``segment`` before the next segment boundary."""
        return -segment.end % self.segment_size

    def append(self, batch: Batch, first: int, count: int) -> Log:
        """Add ``count`` records of ``batch`` (ranks first.. in this partition) at the end."""
        if count <= 0:
            return self
        segments = self.segments
        new: list[Segment] = []
        if segments and self.room(segments[-1]):
            take = min(self.room(segments[-1]), count)
            new.append(segments[-1].with_run(Run(batch, first, take)))
            segments = segments[:-1]
            first, count = first + take, count - take
        offset = new[0].end if new else self.end
        while count > 0:
            take = min(self.segment_size - offset % self.segment_size, count)
            new.append(Segment(offset, take, (Run(batch, first, take),)))
            offset, first, count = offset + take, first + take, count - take
        return Log(self.start, offset, segments + tuple(new), self.segment_size)

    def truncate(self, offset: int) -> tuple[Log, list[Run]]:
        """Cut the log back so that ``offset`` is its end; return the runs removed."""
        if offset >= self.end:
            return self, []
        if offset <= self.start:
            removed = [run for seg in self.segments for run in seg.runs]
            return Log(offset, offset, (), self.segment_size), removed
        i = self.segment_index(offset)
        cut, removed = self.segments[i].cut(offset - self.segments[i].base)
        removed += [run for seg in self.segments[i + 1:] for run in seg.runs]
        kept = self.segments[:i] + ((cut,) if cut.size else ())
        return Log(self.start, offset, kept, self.segment_size), removed

    def delete_before(self, offset: int) -> tuple[Log, int]:
        """Retention: drop whole segments that end at or before ``offset``, never the active one.

        Returns the new log and how many segments were deleted."""
        drop = 0
        while drop < len(self.segments) - 1 and self.segments[drop].end <= offset:
            drop += 1
        if not drop:
            return self, 0
        segments = self.segments[drop:]
        return Log(segments[0].base, self.end, segments, self.segment_size), drop

    def read(self, partition: int, start: int, stop: int) -> list[Record]:
        """Records at offsets start..stop-1 (clamped to the log), without touching the rest."""
        start, stop = max(start, self.start), min(stop, self.end)
        out: list[Record] = []
        if start >= stop:
            return out
        i = self.segment_index(start)
        offset = self.segments[i].base
        while offset < stop:
            for run in self.segments[i].runs:
                lo, hi = max(start, offset), min(stop, offset + run.size)
                if lo < hi:
                    batch = run.batch
                    numbers = record_numbers(batch, partition, run.first + lo - offset, hi - lo)
                    out += [Record(lo + j, batch.key_of(n), batch.value_of(n), batch.producer, batch.tick)
                            for j, n in enumerate(numbers)]
                offset += run.size
                if offset >= stop:
                    break
            i += 1
        return out

    def runs(self) -> list[Run]:
        return [run for seg in self.segments for run in seg.runs]
