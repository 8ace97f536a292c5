"""Usage plans' throttles and quotas, and a stage's own throttle, as API Gateway applies them: a token
bucket per key and plan (the burst is its size, the rate its refill a second) and a request count per
quota period (UTC days, weeks from Monday, calendar months); and a WAF rate-based rule's count of each
client's requests over its evaluation window.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.size = rate_per_s, max(1, burst)
        self._clock = clock
        self._tokens = float(self.size)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True if a request may pass now (and spend a token)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.size, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


def period_start(period: str, now: datetime) -> str:
    """The quota period `now` falls in, as a label (a new label: a fresh quota)."""
    if period == "DAY":
        return now.strftime("%Y-%m-%d")
    if period == "WEEK":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "MONTH":
        return now.strftime("%Y-%m")
    raise ValueError(f"unknown quota period {period!r}")


class Quota:
    def __init__(self, limit: int, period: str, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.limit, self.period = limit, period
        self._now = now
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True if the request is within the period's quota (and counts it)."""
        label = period_start(self.period, self._now())
        with self._lock:
            used = self._used.get(label, 0)
            if used >= self.limit:
                return False
            self._used = {label: used + 1}
            return True

    def remaining(self) -> int:
        return self.limit - self._used.get(period_start(self.period, self._now()), 0)


class RateWindow:
    """A rate-based rule's count: the requests of each key (a client's IP) over the last `window_s`
    seconds. WAF acts on a key once its count is over `limit`, until the window holds `limit` or fewer
    again. Only the newest `limit` + 1 times of a key are kept: all a verdict needs."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"a rate-based rule needs a limit >= 1 and a window > 0 (not {limit}, {window_s})")
        self.limit, self.window_s = limit, window_s
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def over(self, key: str) -> bool:
        """Count a request of `key`; True if the key's count over the window is now over the limit."""
        now = self._clock()
        with self._lock:
            times = self._seen.get(key)
            if times is None:
                times = self._seen[key] = deque(maxlen=self.limit + 1)
            times.append(now)
            return len(times) > self.limit and times[0] > now - self.window_s
