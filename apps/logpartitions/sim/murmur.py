"""Kafka's key partitioner, exactly: ``partition = (murmur2(key) & 0x7fffffff) % partitions``.

``murmur2`` is the Java client's ``Utils.murmur2`` (MurmurHash2, seed 0x9747b28c, m 0x5bd1e995,
r 24) on the key's UTF-8 bytes, with Java's 32-bit signed ints. It is *not* MurmurHash3
(``mmh3``): a key placed with mmh3 lands on a different partition than a real Kafka producer
would choose. ``& 0x7fffffff`` is Kafka's ``toPositive``: a mask, not ``abs()``.

``murmur2_many`` hashes a whole burst at once with numpy (keys grouped by length), so a burst of
100,000 keys is placed in milliseconds; the tests check it against the one-key version.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SEED = 0x9747B28C
M = 0x5BD1E995
R = 24
MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: a signed 32-bit int, as Java returns it."""
    length = len(data)
    h = (SEED ^ length) & MASK32
    whole = length - length % 4
    for i in range(0, whole, 4):  # 4-byte little-endian blocks
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * M) & MASK32
        k ^= k >> R
        k = (k * M) & MASK32
        h = (h * M) & MASK32
        h ^= k
    tail = length % 4  # the Java switch falls through: 3 takes bytes 2, 1 and 0
    if tail >= 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * M) & MASK32
    h ^= h >> 13  # >>> in Java: h is unsigned here, so >> is the logical shift
    h = (h * M) & MASK32
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def to_positive(h: int) -> int:
    return h & 0x7FFFFFFF


def partition_for(key: str, num_partitions: int) -> int:
    """The partition a keyed record goes to: Kafka's default partitioner for keyed records."""
    return to_positive(murmur2(key.encode("utf-8"))) % num_partitions


def explain_key(key: str, num_partitions: int) -> dict[str, int | str]:
    """The numbers behind one placement, for a sentence like
    "murmur2('order-42') & 0x7fffffff = N, N % 3 = 1"."""
    h = murmur2(key.encode("utf-8"))
    return {"key": key, "hash": h, "positive": to_positive(h), "partitions": num_partitions,
            "partition": to_positive(h) % num_partitions}


def murmur2_many(keys: Sequence[bytes]) -> np.ndarray:
    """``murmur2`` of every key, as unsigned 32-bit numbers (``& 0x7fffffff`` gives toPositive)."""
    out = np.empty(len(keys), dtype=np.uint32)
    if not len(keys):
        return out
    lengths = np.fromiter((len(k) for k in keys), dtype=np.int64, count=len(keys))
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        joined = b"".join(keys[i] for i in rows.tolist())
        data = np.frombuffer(joined, dtype=np.uint8).reshape(len(rows), length)
        out[rows] = _murmur2_same_length(data, length)
    return out


def _murmur2_same_length(data: np.ndarray, length: int) -> np.ndarray:
    m = np.uint32(M)
    h = np.full(data.shape[0], (SEED ^ length) & MASK32, dtype=np.uint32)
    whole = length - length % 4
    if whole:
        blocks = np.ascontiguousarray(data[:, :whole]).view("<u4")  # uint32 arithmetic wraps like Java int
        for b in range(whole // 4):
            k = blocks[:, b] * m
            k ^= k >> np.uint32(R)
            k *= m
            h *= m
            h ^= k
    tail = length % 4
    if tail >= 3:
        h ^= data[:, whole + 2].astype(np.uint32) << np.uint32(16)
    if tail >= 2:
        h ^= data[:, whole + 1].astype(np.uint32) << np.uint32(8)
    if tail >= 1:
        h ^= data[:, whole].astype(np.uint32)
        h *= m
    h ^= h >> np.uint32(13)
    h *= m
    h ^= h >> np.uint32(15)
    return h
