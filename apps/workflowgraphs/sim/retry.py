"""Retry policies, in integer logical milliseconds (DOMAIN.md §4).

- **Airflow** (``TaskInstance.next_retry_datetime``): ``retries`` (default 0), ``retry_delay``
  (default 300 s). With ``retry_exponential_backoff`` the wait after failed try ``n`` is
  ``min_backoff = max(1, ceil(retry_delay_s * 2**(n-1)))`` seconds plus a deterministic jitter
  ``sha1("dag#task#logical_date#n") % min_backoff``, capped at 24 h (Airflow's MAX_RETRY_DELAY)
  and then at ``max_retry_delay`` when one is set. Try ``n`` may be retried while ``n <= retries``.
- **Temporal** (``RetryPolicy``): initial interval 1 s, backoff coefficient 2.0, maximum interval
  100 x initial, maximum attempts 0 (unlimited; 1 = no retry). The wait after failed attempt
  ``n`` is ``initial * coefficient**(n-1)``, capped at the maximum: 1, 2, 4, ... 64, 100, 100 s.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

MAX_RETRY_DELAY_S = 24 * 60 * 60  # Airflow's hard cap on an exponential wait (abstractoperator)
LOGICAL_DATE = "2025-01-01 00:00:00+00:00"  # the run's logical date as Airflow prints it into the hash
KINDS = ("temporal", "airflow")


@dataclass(frozen=True)
class RetryPolicy:
    kind: str = "temporal"  # temporal | airflow
    # Temporal
    initial_ms: int = 1000
    coefficient: float = 2.0
    maximum_ms: int = 0  # 0: 100 x initial (Temporal's default)
    maximum_attempts: int = 0  # 0: unlimited, 1: no retry
    # Airflow
    retries: int = 0
    retry_delay_ms: int = 300_000
    exponential: bool = False
    max_retry_delay_ms: int = 0  # 0: none set (the 24 h cap still holds for exponential waits)

    @property
    def temporal_max_ms(self) -> int:
        return self.maximum_ms or 100 * self.initial_ms


def temporal_wait_ms(p: RetryPolicy, attempt: int) -> int:
    """Temporal: the wait after failed attempt ``attempt`` (1-based) before the next one."""
    cap = p.temporal_max_ms
    wait = float(p.initial_ms)
    for _ in range(attempt - 1):  # multiply step by step and stop at the cap: no float overflow
        wait *= p.coefficient
        if wait >= cap:
            return cap
    return min(int(wait), cap)


def airflow_jitter_hash(dag_id: str, task_id: str, try_number: int, logical_date: str = LOGICAL_DATE) -> int:
    return int(hashlib.sha1(f"{dag_id}#{task_id}#{logical_date}#{try_number}".encode()).hexdigest(), 16)


def airflow_min_backoff_s(retry_delay_ms: int, try_number: int) -> int:
    """``max(1, ceil(retry_delay_s * 2**(try_number-1)))``, in exact integer arithmetic."""
    return max(1, -(-(retry_delay_ms << (try_number - 1)) // 1000))


def airflow_wait_ms(p: RetryPolicy, try_number: int, dag_id: str, task_id: str,
                    logical_date: str = LOGICAL_DATE) -> int:
    """Airflow: the wait after failed try ``try_number`` before the next one."""
    if not p.exponential:
        return p.retry_delay_ms
    low = airflow_min_backoff_s(p.retry_delay_ms, try_number)
    seconds = min(low + airflow_jitter_hash(dag_id, task_id, try_number, logical_date) % low, MAX_RETRY_DELAY_S)
    wait = seconds * 1000
    return min(wait, p.max_retry_delay_ms) if p.max_retry_delay_ms else wait


def may_retry(p: RetryPolicy, attempt: int) -> bool:
    """Whether failed attempt ``attempt`` is followed by another under the policy."""
    if p.kind == "airflow":
        return attempt <= p.retries
    return p.maximum_attempts == 0 or attempt < p.maximum_attempts


def wait_ms(p: RetryPolicy, attempt: int, dag_id: str, task_id: str) -> int:
    if p.kind == "airflow":
        return airflow_wait_ms(p, attempt, dag_id, task_id)
    return temporal_wait_ms(p, attempt)


def arithmetic(p: RetryPolicy, attempt: int, dag_id: str, task_id: str) -> str:
    """The wait's arithmetic in words, for the narration."""
    w = wait_ms(p, attempt, dag_id, task_id)
    if p.kind == "temporal":
        raw = p.initial_ms * p.coefficient ** (attempt - 1)
        capped = f", capped at {p.temporal_max_ms:,} ms" if raw > p.temporal_max_ms else ""
        return f"Temporal waits {p.initial_ms:,} ms x {p.coefficient:g}^{attempt - 1}{capped} = {w:,} ms"
    if not p.exponential:
        return f"Airflow waits retry_delay = {w:,} ms"
    low = airflow_min_backoff_s(p.retry_delay_ms, attempt)
    return (f"Airflow waits {low:,} s (retry_delay x 2^{attempt - 1}) plus a jitter of "
            f"{w // 1000 - low:,} s = {w:,} ms")
