"""Resting a Redis that failed: after a failed call, Redis is left alone for a while before it is tried again.

A Redis that does not answer at all (an ElastiCache failover: the primary's address is silent until DNS
moves; a network partition) holds every call for the client's socket timeout, and one that refuses costs
every call a failed connection. Its users (the catalog read API, the stream processor's sinks) ask
`resting()` before a call and skip Redis meanwhile, doing what they do when it fails; each call's
result goes to `failed` or `answered`. An outage is logged once when it starts and once when it ends.
"""
from __future__ import annotations

import logging
import time

import redis
from redis.backoff import ExponentialBackoff

logger = logging.getLogger(__name__)

# Every client of the project's Redis retries a failed call once, after at most 50 ms, and then gives up: redis-py's
# default (10 retries, with backoff) would hold one call to a silent Redis for eleven socket timeouts.
REDIS_RETRY_BACKOFF = ExponentialBackoff(cap=0.05, base=0.01)
REDIS_RETRIES = 1
# The read API's rest: a read skipping Redis costs only a PostgreSQL read, so Redis is tried again soon.
REDIS_REST_S = 1.0
# The processor's: a batch skipping Redis costs nothing (what it skips is written, or repaired, once Redis
# answers), while each try at a silent Redis holds the stream for the client's timeout (connections.py).
PROCESSOR_REDIS_REST_S = 5.0


class RedisRest:
    """Whether Redis is resting; `away` and `back` say, in the outage's two log lines, what its user does."""

    def __init__(self, rest_s: float, *, away: str, back: str) -> None:
        self.rest_s = rest_s
        self.away, self.back = away, back
        self.up = True
        self._until = 0.0

    def resting(self) -> bool:
        return time.monotonic() < self._until

    def failed(self, error: redis.RedisError) -> None:
        self._until = time.monotonic() + self.rest_s
        if self.up:  # one line per outage, not one per call
            self.up = False
            logger.warning("Redis unavailable (%s): %s; Redis is tried again every %g s",
                           error.__class__.__name__, self.away, self.rest_s)

    def answered(self) -> None:
        if not self.up:
            self.up = True
            self._until = 0.0
            logger.warning("Redis answers again: %s", self.back)
