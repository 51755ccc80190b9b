"""Kafka's partitioner, checked against the Java client's and kafka-python's own test vectors."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.logpartitions.sim import explain_key, murmur2, murmur2_many, partition_for, to_positive

# clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2
JAVA_VECTORS = [
    ("21", -973932308),
    ("foobar", -790332482),
    ("abc", 479470107),
    ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
]

# kafka-python test/test_partitioner.py: the partition of each key among 1000
PARTITION_OF_1000 = [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)]


@pytest.mark.parametrize(("text", "expected"), JAVA_VECTORS)
def test_murmur2_matches_the_java_client(text, expected):
    assert murmur2(text.encode("utf-8")) == expected


@pytest.mark.parametrize(("key", "expected"), PARTITION_OF_1000)
def test_partition_of_1000_matches_kafka_python(key, expected):
    assert to_positive(murmur2(key)) % 1000 == expected


def test_to_positive_is_a_mask_not_abs():
    h = murmur2(b"21")  # negative
    assert to_positive(h) == h & 0x7FFFFFFF != abs(h)


def test_partition_for_hashes_the_utf8_key():
    assert partition_for("foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7
    assert partition_for("é", 12) == to_positive(murmur2("é".encode("utf-8"))) % 12


def test_explain_key_gives_the_numbers_for_the_narration():
    how = explain_key("abc", 3)
    assert how == {"key": "abc", "hash": 479470107, "positive": 479470107, "partitions": 3,
                   "partition": 479470107 % 3}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=23), max_size=60))
def test_murmur2_many_equals_one_at_a_time(keys):
    assert [int(h) for h in murmur2_many(keys)] == [murmur2(k) & 0xFFFFFFFF for k in keys]
