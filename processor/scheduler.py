"""The worker: leases, pacing and fetching for every shard it owns (the KCL's scheduler).

One loop. Every heartbeat (processor/leases.py) the worker renews its leases, takes,
hands over or asks for shards (processor/balance.py), and starts a `ShardProcessor` for
each shard it has gained; between heartbeats it reads whichever owned shard is due
(processor/pacing.py) and hands each page, decoded, to the writer thread
(processor/pipeline.py), which commits it with its dead letters and its checkpoint in one
transaction guarded by the lease. After a crash at any instant a restart resumes exactly
after the last committed record: nothing twice, nothing skipped.
"""
from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import psycopg2
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from processor import balance, schema
from processor import metrics as m
from processor.config import ConfigError, ProcessorConfig
from processor.connections import connect_postgres, connect_redis, first_line, is_auth_failure, local_hostname
from processor.leases import Heartbeat, LeaseLost, LeaseTable, Shard
from processor.metrics import LatencyHistogram, Metrics
from processor.pacing import ReadBudget, ShardPacer
from processor.pipeline import Writer
from processor.shard_processor import Batch, ShardProcessor, State
from processor.sinks import run_batch
from processor.workloads import workload

logger = logging.getLogger(__name__)

DEAD_LETTER = """
INSERT INTO dead_letters (stream, shard_id, sequence_number, payload, reason)
SELECT %s, %s, * FROM unnest(%s::text[], %s::bytea[], %s::text[])
ON CONFLICT DO NOTHING
"""
THROTTLED = {"ProvisionedThroughputExceededException", "LimitExceededException", "KMSThrottlingException"}
RETRYABLE_KINESIS = THROTTLED | {"InternalFailure", "ServiceUnavailable"}
# GetShardIterator and GetRecords answer this for a shard Kinesis has deleted: a closed shard
# goes, records and all, once it is older than the stream's retention period.
GONE = "ResourceNotFoundException"
SHARD_SYNC_EVERY_S = 10.0  # ListShards: resharding is rare, and a shard's end triggers a sync anyway


@dataclass
class Stats:
    records: int = 0
    valid: int = 0
    dead_letters: int = 0
    batches: int = 0
    get_records: int = 0  # calls
    throttled: int = 0  # calls answered ProvisionedThroughputExceeded (or another throttle)
    counts: Counter = field(default_factory=Counter)  # what the sink's outcomes add, e.g. Anomalies
    last_commit_at: float | None = None  # time.monotonic() of the last batch's commit

    @property
    def anomalies(self) -> int:
        return self.counts["Anomalies"]


class Backoff:
    def __init__(self, base: float = 0.2, cap: float = 10.0) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def wait(self, stop: threading.Event) -> None:
        delay = min(self.cap, self.base * 2**self.attempt) * (0.5 + random.random() / 2)
        self.attempt += 1
        stop.wait(delay)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Owned:
    """A shard this worker holds: its record processor and its read pacing."""

    processor: ShardProcessor
    pacer: ShardPacer


class Scheduler:
    def __init__(self, settings: ProcessorConfig, *, kinesis: Any = None, redis_client: Any = None, conn: Any = None) -> None:
        self.settings = settings
        self.stop = threading.Event()
        # GetRecords goes out once: a throttled shard backs off alone (processor/pacing.py), where
        # the SDK's own retries would sleep inside the call and stall every other shard.
        self.kinesis = kinesis or boto3.client(
            "kinesis", region_name=settings.region, config=Config(retries={"max_attempts": 3, "mode": "standard"})
        )
        self.reader = kinesis or boto3.client(
            "kinesis", region_name=settings.region, config=Config(retries={"total_max_attempts": 1, "mode": "standard"})
        )
        self.redis = redis_client if redis_client is not None else connect_redis(settings)
        self.conn = conn
        self.workload = workload(settings.workload)
        self.sink = self.workload.sink(self.redis, settings)
        self.worker_id = f"{local_hostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.leases = LeaseTable(settings.consumer_group, settings.stream_name, self.worker_id,
                                 settings.lease_duration_s)
        self.budget = ReadBudget(settings.read_interval_at_tip_s, settings.max_reads_per_shard_per_s)
        self.metrics = Metrics(settings.metrics_namespace, settings.workload)
        self.stats = Stats()
        self.latency = LatencyHistogram()
        self.writer = Writer()
        self.owned: dict[str, Owned] = {}
        self._owned_at_beat: set[str] = set()  # the shards owned when the last heartbeat ended
        self.ending: dict[str, str] = {}  # closed shard -> its last sequence number (ListShards)
        self._db_backoff = Backoff()
        self._next_heartbeat = 0.0
        self._next_sync = 0.0
        self._last_record_at = time.monotonic()
        self._calls_reported = (0, 0)  # (get_records, throttled) at the last heartbeat's metrics

    # -- lifecycle ----------------------------------------------------------------------
    def initialize(self) -> None:
        if self.conn is None:
            from processor.connections import ensure_reachable

            self.conn = ensure_reachable(self.settings)
        self._wait_for_schema()
        try:
            self.kinesis.describe_stream_summary(StreamName=self.settings.stream_name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                raise ConfigError(f"stream {self.settings.stream_name} not found") from error
            raise

    def _wait_for_schema(self) -> None:
        """The migrate task runs beside a rolling deployment: a new task may start before it
        has finished. Wait for it (an error metric each try, so the alarm shows a migration
        that never comes), and give up after SCHEMA_WAIT_S with one line."""
        deadline, backoff = time.monotonic() + self.settings.schema_wait_s, Backoff(base=1.0, cap=30.0)
        while True:
            try:
                schema.check_version(self.conn, self.workload.name)
                return
            except schema.SchemaNotReady as not_ready:
                if time.monotonic() >= deadline or self.stop.is_set():
                    raise ConfigError(str(not_ready)) from None
                logger.warning("waiting for the migration: %s", not_ready)
                self.metrics.emit({m.PROCESSING_ERRORS: 1})
                backoff.wait(self.stop)

    def request_shutdown(self, *_: object) -> None:
        logger.info("shutdown requested: finishing the batch in hand, then handing the shards over")
        self.stop.set()

    def run(self, exit_when_idle_s: float | None = None) -> Stats:
        """Until SIGTERM or, with `exit_when_idle_s`, until the stream is drained (see `_drained`)."""
        self.initialize()
        while not self.stop.is_set():
            if self.conn is None and not self._reconnect():
                continue
            try:
                if time.monotonic() >= self._next_heartbeat and self._heartbeat(exit_when_idle_s):
                    logger.info("stream drained and idle for %.1f s: exiting", exit_when_idle_s)
                    break
                due = self._next_due(time.monotonic())
                if due is not None:
                    self._read(due)
                    continue
                self.writer.settle()  # nothing due: let the batch in hand commit now
                self._db_backoff.reset()
            except psycopg2.Error as error:
                self._on_database_error(error)
                continue
            self.stop.wait(max(0.0, self._wake_at() - time.monotonic()))
        self.shutdown()
        return self.stats

    def shutdown(self) -> None:
        try:
            self.writer.close()  # the batch in hand commits with its checkpoint
        except psycopg2.Error as error:
            logger.warning("last batch not committed (%s); it is read again", first_line(error))
        try:
            if self.conn is not None and not self.conn.closed:
                self.conn.rollback()
                handed = self.leases.leave(self.conn)
                if handed:
                    logger.info("leases handed over", extra={"to": handed})
        except psycopg2.Error as error:
            logger.warning("could not hand the leases over (%s); they will expire", error.__class__.__name__)
        for owned in self.owned.values():
            owned.processor.shutdown_requested()
        self.owned.clear()
        logger.info("stopped", extra={"records": self.stats.records, "dead_letters": self.stats.dead_letters})

    # -- leases -------------------------------------------------------------------------
    def _heartbeat(self, exit_when_idle_s: float | None) -> bool:
        """Renew, balance, start and drop shard processors; True when it is time to exit."""
        self.writer.settle()  # a batch boundary: nothing of any shard is in flight
        if time.monotonic() >= self._next_sync:
            self._sync_shards()
        beat = self.leases.heartbeat(self.conn, [s for s, o in self.owned.items() if o.processor.at_tip])
        for shard_id in list(self.owned):
            if shard_id in beat.handed_over:
                self.owned.pop(shard_id).processor.shutdown_requested()
                logger.info("lease handed over", extra={"shard": shard_id, "to": beat.handed_over[shard_id]})
            elif shard_id not in beat.held:
                self.owned.pop(shard_id).processor.lease_lost()
                logger.info("lease lost", extra={"shard": shard_id})
        if self._owned_at_beat - set(self.owned):
            self.sink.release()  # what it holds of those shards' keys may be moved on by their next reader
        for shard_id, checkpoint in beat.held.items():
            if shard_id not in self.owned:
                self._start(shard_id, checkpoint)
        self._owned_at_beat = set(self.owned)
        self._report(beat, self.sink.maintain(self.conn) or {})
        self._next_heartbeat = time.monotonic() + self.settings.heartbeat_s
        return exit_when_idle_s is not None and self._drained(beat, exit_when_idle_s)

    def _drained(self, beat: Heartbeat, idle_s: float) -> bool:
        """`--exit-when-idle S`: every open shard has been read to its tip, by this worker or
        a live one (a dead worker's lease is waited out), and no record of the stream has
        committed for S seconds, here or anywhere."""
        tips = {s: o.processor.at_tip for s, o in self.owned.items()}
        if not balance.drained(self.worker_id, beat.rows, beat.live_workers, tips):
            return False
        quiet_here = time.monotonic() - self._last_record_at >= idle_s
        return quiet_here and (beat.idle_s is None or beat.idle_s >= idle_s)

    def _start(self, shard_id: str, checkpoint: str | None) -> None:
        processor = ShardProcessor(shard_id, self.workload.decode)
        processor.ending_sequence = self.ending.get(shard_id)
        try:
            iterator = self._iterator(shard_id, checkpoint)
        except (ClientError, BotoCoreError) as error:
            if not self._gone(shard_id, error):
                if not _transient(error) and _code(error) != GONE:  # GONE here: a shard still listed
                    raise
                # The lease stays ours (each heartbeat renews it), so the next heartbeat starts it.
                logger.warning("kinesis GetShardIterator failed (%s); the shard starts at the next heartbeat",
                               first_line(error), extra={"shard": shard_id})
                return
            iterator = None
        processor.initialize(checkpoint, iterator)
        owned = self.owned[shard_id] = Owned(processor, ShardPacer(self.budget, time.monotonic()))
        logger.info("lease taken", extra={"shard": shard_id, "checkpoint": checkpoint})
        if iterator is None:
            self._end_gone(owned)

    def _sync_shards(self) -> None:
        """Every shard ListShards reports has a lease row; a failed call is tried at the next heartbeat,
        which renews the leases all the same."""
        try:
            shards = self._list_shards()
        except (ClientError, BotoCoreError) as error:
            if not _transient(error):
                raise
            logger.warning("kinesis ListShards failed (%s); retried at the next heartbeat", first_line(error))
            return
        self.leases.sync(self.conn, shards)
        self._next_sync = time.monotonic() + SHARD_SYNC_EVERY_S

    def _gone(self, shard_id: str, error: BaseException) -> bool:
        """Kinesis answered ResourceNotFound for a shard that ListShards no longer reports: deleted
        past the retention period. (A deleted stream fails ListShards itself and stops the task.)"""
        if not isinstance(error, ClientError) or error.response["Error"]["Code"] != GONE:
            return False
        try:
            listed = self._list_shards()
        except (ClientError, BotoCoreError) as again:
            if not _transient(again):
                raise
            return False  # asked again on the next try
        return shard_id not in {shard.shard_id for shard in listed}

    def _end_gone(self, owned: Owned) -> None:
        """The shard's lease ends as if it had been read to its end, so that its children, whose records
        follow it, may start; committed at once (the heartbeat may be under way)."""
        processor = owned.processor
        logger.warning("shard deleted by Kinesis (closed and older than the retention period): its lease ends; "
                       "records after the checkpoint, if any, were trimmed unread",
                       extra={"shard": processor.shard_id, "checkpoint": processor.checkpoint})
        self.writer.submit(*self._commit(owned, processor.gone()))
        self.writer.settle()

    def _list_shards(self) -> list[Shard]:
        shards, token = [], None
        while True:
            kwargs = {"NextToken": token} if token else {"StreamName": self.settings.stream_name}
            page = self.kinesis.list_shards(**kwargs)
            for s in page["Shards"]:
                parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)
                shards.append(Shard(s["ShardId"], parents))
                ending = s.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
                if ending is not None:
                    self.ending[s["ShardId"]] = ending
                    if s["ShardId"] in self.owned:
                        self.owned[s["ShardId"]].processor.ending_sequence = ending
            token = page.get("NextToken")
            if not token:
                return shards

    def _iterator(self, shard_id: str, after: str | None) -> str | None:
        kwargs = {"StreamName": self.settings.stream_name, "ShardId": shard_id}
        if after:
            try:
                return self.kinesis.get_shard_iterator(
                    **kwargs, ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)["ShardIterator"]
            except ClientError as error:
                if _code(error) != "InvalidArgumentException" or "startingsequencenumber" not in str(error).lower():
                    raise
                # The checkpoint is older than the stream's retention (the tasks were away that long):
                # what followed it expired unread, and the oldest record left is next. A replay of
                # anything already stored is harmless: every sink stores a record once.
                logger.warning("checkpoint refused (%s): reading on from the oldest record Kinesis keeps",
                               first_line(error), extra={"shard": shard_id, "checkpoint": after})
        return self.kinesis.get_shard_iterator(**kwargs, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]

    # -- reading ------------------------------------------------------------------------
    def _next_due(self, now: float) -> Owned | None:
        ready = [o for o in self.owned.values() if o.processor.reading and o.pacer.ready(now)]
        return min(ready, key=lambda o: o.pacer.next_read_at, default=None)

    def _wake_at(self) -> float:
        reads = [o.pacer.next_read_at for o in self.owned.values() if o.processor.reading]
        return min([self._next_heartbeat, *reads])

    def _read(self, owned: Owned) -> None:
        processor, pacer = owned.processor, owned.pacer
        self.stats.get_records += 1
        try:
            response = self.reader.get_records(ShardIterator=processor.iterator, Limit=self.settings.batch_limit)
        except (ClientError, BotoCoreError) as error:
            self._on_read_error(owned, error)
            return
        records, behind = response["Records"], response.get("MillisBehindLatest")
        pacer.read(time.monotonic(), behind=bool(behind) or len(records) >= self.settings.batch_limit)
        batch = processor.process_records(records, response.get("NextShardIterator"), behind)
        if batch is None:
            self.metrics.emit({m.MILLIS_BEHIND_LATEST: behind}, shard=processor.shard_id)
            return
        if records:
            self._last_record_at = time.monotonic()
        self.writer.submit(*self._commit(owned, batch))

    def _on_read_error(self, owned: Owned, error: ClientError | BotoCoreError) -> None:
        """A failed GetRecords: a fresh iterator for an expired one, the end of a deleted shard, or a
        backoff of this shard alone."""
        processor, pacer = owned.processor, owned.pacer
        if _code(error) == "ExpiredIteratorException":
            try:
                processor.iterator = self._iterator(processor.shard_id, processor.resume_after())
                pacer.retry(time.monotonic())
                return
            except (ClientError, BotoCoreError) as again:
                error = again
        if self._gone(processor.shard_id, error):
            self._end_gone(owned)
            return
        if not _transient(error) and _code(error) != GONE:  # GONE here: a shard still listed
            raise error
        self.stats.throttled += _code(error) in THROTTLED
        wait = pacer.throttled(time.monotonic())
        logger.warning("kinesis %s; shard backs off %.1f s", _code(error) or f"unreachable ({first_line(error)})",
                       wait, extra={"shard": processor.shard_id})

    def _commit(self, owned: Owned, batch: Batch) -> tuple[Any, Any]:
        """The batch's transaction (on the writer thread) and what follows it (on this one)."""
        stream, leases, sink, conn = self.settings.stream_name, self.leases, self.sink, self.conn

        def dead_letters_and_checkpoint(cur: Any) -> None:  # in the batch transaction
            if batch.poison:
                cur.execute(DEAD_LETTER, (
                    stream, batch.shard_id, [r["SequenceNumber"] for r, _ in batch.poison],
                    [bytes(r["Data"]) for r, _ in batch.poison], [p.reason for _, p in batch.poison],
                ))
            leases.checkpoint(cur, batch.shard_id, batch.last_sequence, batch.finished)

        def apply() -> tuple[Any, float, float] | None:  # on the writer thread
            try:
                outcome = run_batch(conn, sink, batch.valid, within=dead_letters_and_checkpoint)
            except LeaseLost:
                return None
            # Once run_batch returns the batch is durable; Redis and metrics can only lag, never lose it.
            return outcome, time.time(), time.monotonic()

        def done(result: tuple[Any, float, float] | None) -> None:  # back on this thread
            current = self.owned.get(batch.shard_id)
            if result is None:
                logger.warning("lease lost mid-batch: batch abandoned to the new owner", extra={"shard": batch.shard_id})
                owned.processor.lease_lost()
                if current is owned:
                    del self.owned[batch.shard_id]
                return
            outcome, committed_at, self.stats.last_commit_at = result
            owned.processor.committed(batch)
            if owned.processor.state is State.ENDED:
                logger.info("shard ended: children may start", extra={"shard": batch.shard_id})
                if current is owned:
                    del self.owned[batch.shard_id]
                self._next_sync = self._next_heartbeat = 0.0  # find and take the children now
            self._account(batch.shard_id, batch, outcome, self.latency.add(batch.records, committed_at))

        return apply, done

    def _account(self, shard_id: str, batch: Batch, outcome: Any, latency_ms: float | None) -> None:
        counts = outcome.metrics()
        self.stats.records += len(batch.records)
        self.stats.valid += len(batch.valid)
        self.stats.dead_letters += len(batch.poison)
        self.stats.counts.update(counts)
        self.stats.batches += 1
        self.metrics.emit({
            m.RECORDS_PROCESSED: len(batch.valid), m.DEAD_LETTERS: len(batch.poison), **counts,
            m.BATCH_LATENCY_MS: round((time.perf_counter() - batch.started) * 1000, 2),
            m.MILLIS_BEHIND_LATEST: batch.millis_behind,
            m.RECORD_TO_COMMIT_MS: latency_ms,
        }, shard=shard_id)

    def _report(self, beat: Heartbeat, gauges: Mapping[str, float]) -> None:
        calls, throttled = self.stats.get_records, self.stats.throttled
        before = self._calls_reported
        self._calls_reported = (calls, throttled)
        self.metrics.emit({m.LEASES_HELD: len(self.owned), m.LIVE_WORKERS: len(beat.live_workers | {self.worker_id}),
                           m.GET_RECORDS_CALLS: calls - before[0], m.READ_THROTTLED: throttled - before[1], **gauges},
                          worker=self.worker_id)

    # -- failures -----------------------------------------------------------------------
    def _on_database_error(self, error: psycopg2.Error) -> None:
        """Wait and reconnect; the shards start again from their committed checkpoints."""
        logger.warning("database unavailable (%s); retrying", first_line(error))
        self.metrics.emit({m.PROCESSING_ERRORS: 1})
        try:
            if self.conn is not None:
                self.conn.close()
        except psycopg2.Error:
            pass
        self.conn = None
        self._reconnect()

    def _reconnect(self) -> bool:
        self._db_backoff.wait(self.stop)
        try:
            self.conn = connect_postgres(self.settings)  # re-reads a rotated secret
        except psycopg2.Error as again:
            if is_auth_failure(again):
                logger.warning("authentication failed: the secret is re-read on the next attempt")
            self.conn = None
            return False
        except (ClientError, BotoCoreError, KeyError, ValueError) as error:  # the secret itself is unreadable
            logger.warning("database secret unavailable (%s); retrying", first_line(error))
            self.conn = None
            return False
        # Records after a checkpoint may have been read but not committed: the next
        # heartbeat renews the leases (they are still ours) and each shard starts again
        # from what committed. The writer's failed batch, if any, was dropped with it.
        for owned in self.owned.values():
            owned.processor.lease_lost()
        self.owned.clear()
        self._next_heartbeat = 0.0
        self._last_record_at = time.monotonic()  # an outage is not idleness: records may be waiting
        return True


def _code(error: BaseException) -> str | None:
    return error.response["Error"]["Code"] if isinstance(error, ClientError) else None


def _transient(error: BaseException) -> bool:
    """A Kinesis call worth trying again: a throttle, a 5xx, a dropped connection. (ResourceNotFound for a
    shard that ListShards still reports is tried again too; `_gone` tells it from a deleted shard.)"""
    return isinstance(error, BotoCoreError) or _code(error) in RETRYABLE_KINESIS


def install_signal_handlers(scheduler: Scheduler) -> None:
    signal.signal(signal.SIGTERM, scheduler.request_shutdown)
    signal.signal(signal.SIGINT, scheduler.request_shutdown)
