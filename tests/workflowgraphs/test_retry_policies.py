"""DOMAIN.md §4: Temporal's default backoff, Airflow's retry_delay and exponential bounds."""
from __future__ import annotations

import hashlib
import math
from datetime import datetime, timezone

import pytest

from apps.workflowgraphs.sim.retry import RetryPolicy, airflow_wait_ms, may_retry, temporal_wait_ms, wait_ms

TEMPORAL = RetryPolicy()
AIRFLOW = RetryPolicy(kind="airflow", retries=3)
AIRFLOW_EXP = RetryPolicy(kind="airflow", retries=30, exponential=True)


def test_temporal_default_waits():
    assert [temporal_wait_ms(TEMPORAL, n) // 1000 for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 100, 100, 100]


def test_temporal_attempts():
    assert may_retry(TEMPORAL, 1000)  # 0: unlimited
    assert not may_retry(RetryPolicy(maximum_attempts=1), 1)  # 1: no retry
    assert may_retry(RetryPolicy(maximum_attempts=3), 2) and not may_retry(RetryPolicy(maximum_attempts=3), 3)


def test_airflow_defaults_and_fixed_delay():
    assert RetryPolicy(kind="airflow").retries == 0 and not may_retry(RetryPolicy(kind="airflow"), 1)
    assert [wait_ms(AIRFLOW, n, "d", "t") for n in (1, 2, 3)] == [300_000] * 3
    assert may_retry(AIRFLOW, 3) and not may_retry(AIRFLOW, 4)


def test_airflow_try_one_waits_300_to_600_seconds():
    assert 300_000 <= airflow_wait_ms(AIRFLOW_EXP, 1, "order_saga", "charge_payment") < 600_000


@pytest.mark.parametrize("n", range(1, 9))
def test_airflow_exponential_is_min_plus_the_deterministic_hash(n):
    logical = str(datetime(2025, 1, 1, tzinfo=timezone.utc))
    low = max(1, math.ceil(300 * 2 ** (n - 1)))
    h = int(hashlib.sha1(f"order_saga#charge_payment#{logical}#{n}".encode()).hexdigest(), 16)
    expected = min(low + h % low, 86_400) * 1000
    got = airflow_wait_ms(AIRFLOW_EXP, n, "order_saga", "charge_payment")
    assert got == expected and low * 1000 <= got < 2 * low * 1000 or got == 86_400_000


def test_airflow_caps():
    assert airflow_wait_ms(AIRFLOW_EXP, 20, "d", "t") == 86_400_000  # 24 h, Airflow's MAX_RETRY_DELAY
    capped = RetryPolicy(kind="airflow", exponential=True, max_retry_delay_ms=3_600_000)
    assert airflow_wait_ms(capped, 10, "d", "t") == 3_600_000
    tiny = RetryPolicy(kind="airflow", exponential=True, retry_delay_ms=0)
    assert airflow_wait_ms(tiny, 1, "d", "t") == 1000  # min_backoff is at least 1 s
