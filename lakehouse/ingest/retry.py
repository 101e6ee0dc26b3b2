"""Retries for source fetches: tenacity with exponential backoff + jitter, honouring Retry-After.

Every attempt, failed or not, is recorded as an ``Attempt`` so the ingestion audit table and the
log show exactly what happened (source, date, attempt, status, rows, bytes, duration, error).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from lakehouse.config import RetryConfig

log = logging.getLogger(__name__)
T = TypeVar("T")


class TransientError(Exception):
    """A failure worth retrying (timeout, refused connection, 5xx, 429). May carry Retry-After."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Attempt:
    source: str
    type: str
    run_date: str
    attempt: int
    status: str  # "ok" | "retry" | "failed"
    rows: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    error: str | None = None

    def as_row(self) -> dict:
        return asdict(self)


@dataclass
class AttemptLog:
    source: str
    type: str
    run_date: str
    attempts: list[Attempt] = field(default_factory=list)


class _WaitRetryAfterOrBackoff:
    """Wait what the server asked for (Retry-After, capped), else exponential backoff with jitter."""

    def __init__(self, cfg: RetryConfig):
        self.cap = cfg.max_wait_s
        self.backoff = wait_exponential_jitter(multiplier=cfg.initial_wait_s, max=cfg.max_wait_s,
                                               jitter=cfg.initial_wait_s)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.cap)
        return self.backoff(state)


def call_with_retries(fn: Callable[[], T], cfg: RetryConfig, log_to: AttemptLog,
                      measure: Callable[[T], tuple[int, int]] = lambda _: (0, 0)) -> T:
    """Run ``fn`` until it succeeds, retrying ``TransientError`` up to ``cfg.max_attempts`` times.

    ``measure`` turns the result into (rows, bytes) for the audit. Non-transient errors are not
    retried. The last error propagates once the budget is spent.
    """
    retrying = Retrying(
        stop=stop_after_attempt(cfg.max_attempts),
        wait=_WaitRetryAfterOrBackoff(cfg),
        retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
        reraise=True,
    )
    for attempt in retrying:
        number = attempt.retry_state.attempt_number
        started = time.perf_counter()
        with attempt:
            try:
                result = fn()
            except Exception as exc:
                last = number >= cfg.max_attempts or not isinstance(exc, TransientError)
                rec = Attempt(log_to.source, log_to.type, log_to.run_date, number, "failed" if last else "retry",
                              duration_s=round(time.perf_counter() - started, 3),
                              error=f"{type(exc).__name__}: {exc}"[:1000])
                log_to.attempts.append(rec)
                log.warning("%s/%s %s attempt %d/%d %s: %s", log_to.source, log_to.type, log_to.run_date,
                            number, cfg.max_attempts, "gave up" if last else "will retry", rec.error)
                raise
            rows, nbytes = measure(result)
            log_to.attempts.append(Attempt(log_to.source, log_to.type, log_to.run_date, number, "ok", rows,
                                           nbytes, round(time.perf_counter() - started, 3)))
    return result
