"""The record-processor lifecycle: initialize, process a batch, checkpoint, lease lost,
shard ended, shutdown requested.

One batch = one GetRecords page of one shard. Its valid records, its dead letters and
its checkpoint commit in one PostgreSQL transaction, so after a crash at any instant a
restart resumes exactly after the last committed record: nothing twice, nothing skipped.
"""
from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass

import boto3
import psycopg2
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from processor.config import ConfigError, Settings
from processor.connections import connect_postgres, connect_redis, first_line, is_auth_failure, local_hostname
from processor.leases import LeaseLost, LeaseTable, Shard
from processor.metrics import LatencyHistogram, Metrics
from processor.pipeline import Writer
from processor.records import Poison
from processor.sinks import run_batch
from processor.workloads import workload

logger = logging.getLogger(__name__)

DEAD_LETTER = """
INSERT INTO dead_letters (stream, shard_id, sequence_number, payload, reason)
SELECT %s, %s, * FROM unnest(%s::text[], %s::bytea[], %s::text[])
ON CONFLICT DO NOTHING
"""
RETRYABLE_KINESIS = {"ProvisionedThroughputExceededException", "LimitExceededException", "KMSThrottlingException",
                     "InternalFailure", "ServiceUnavailable"}


@dataclass
class Stats:
    records: int = 0
    valid: int = 0
    dead_letters: int = 0
    anomalies: int = 0
    batches: int = 0
    last_commit_at: float | None = None  # time.monotonic() of the last batch's commit


class Backoff:
    def __init__(self, base: float = 0.2, cap: float = 10.0) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def wait(self, stop: threading.Event) -> None:
        delay = min(self.cap, self.base * 2**self.attempt) * (0.5 + random.random() / 2)
        self.attempt += 1
        stop.wait(delay)

    def reset(self) -> None:
        self.attempt = 0


class Processor:
    def __init__(self, settings: Settings, *, kinesis=None, redis_client=None, conn=None) -> None:  # noqa: ANN001
        self.settings = settings
        self.stop = threading.Event()
        self.kinesis = kinesis or boto3.client(
            "kinesis", region_name=settings.region, config=Config(retries={"max_attempts": 3, "mode": "standard"})
        )
        self.redis = redis_client if redis_client is not None else connect_redis(settings)
        self.conn = conn
        self.workload = workload(settings.workload)
        self.sink = self.workload.sink(self.redis, settings.cache_ttl_s)
        owner = f"{local_hostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.leases = LeaseTable(settings.consumer_group, settings.stream_name, owner, settings.lease_duration_s)
        self.metrics = Metrics(settings.metrics_namespace, settings.workload)
        self.stats = Stats()
        self.iterators: dict[str, str | None] = {}  # shard -> next iterator
        self.checkpoints: dict[str, str | None] = {}  # committed
        self.positions: dict[str, str] = {}  # read (handed to the writer), perhaps not committed yet
        self.writer = Writer()
        self.latency = LatencyHistogram()
        self.ending: dict[str, str] = {}  # closed shard -> its last sequence number
        self._db_backoff = Backoff()
        self._kinesis_backoff = Backoff(base=0.5)  # grows over consecutive throttles, reset by a success
        self._last_activity = time.monotonic()  # last record, or last sight of a foreign lease

    # -- lifecycle ----------------------------------------------------------------
    def initialize(self) -> None:
        if self.conn is None:
            from processor.connections import ensure_reachable

            self.conn = ensure_reachable(self.settings)
        self.workload.migrate(self.conn)
        try:
            self.kinesis.describe_stream_summary(StreamName=self.settings.stream_name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                raise ConfigError(f"stream {self.settings.stream_name} not found") from error
            raise

    def request_shutdown(self, *_: object) -> None:
        logger.info("shutdown requested: finishing the batch in hand")
        self.stop.set()

    def run(self, exit_when_idle_s: float | None = None) -> Stats:
        self.initialize()
        next_lease_check = 0.0
        while not self.stop.is_set():
            if self.conn is None and not self._reconnect():
                continue
            try:
                if time.monotonic() >= next_lease_check:
                    self.writer.settle()  # the connection is the writer's until then
                    self._refresh_leases()
                    self.sink.maintain(self.conn)
                    next_lease_check = time.monotonic() + self.settings.lease_duration_s / 3
                got = 0
                for shard_id in list(self.iterators):
                    if self.stop.is_set():
                        break
                    got += self._process_shard(shard_id)
                if got == 0:
                    self.writer.settle()
                self._db_backoff.reset()
            except psycopg2.Error as error:
                self._on_database_error(error)
                continue
            if got:
                self._last_activity = time.monotonic()
            if exit_when_idle_s is not None and time.monotonic() - self._last_activity > exit_when_idle_s:
                logger.info("idle for %.1f s: exiting", exit_when_idle_s)
                break
            if got == 0:
                self.stop.wait(self.settings.poll_interval_s)
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
                self.leases.release(self.conn)
        except psycopg2.Error as error:
            logger.warning("could not release leases (%s); they will expire", error.__class__.__name__)
        logger.info("stopped", extra={"records": self.stats.records, "dead_letters": self.stats.dead_letters})

    # -- leases -------------------------------------------------------------------
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
            token = page.get("NextToken")
            if not token:
                return shards

    def _refresh_leases(self) -> None:
        self.leases.sync(self.conn, self._list_shards())
        leases = self.leases.acquire(self.conn, list(self.iterators))
        owned = {lease.shard_id for lease in leases}
        for shard_id in list(self.iterators):
            if shard_id not in owned:
                logger.info("lease lost", extra={"shard": shard_id})
                self.iterators.pop(shard_id, None)
        if self.leases.held_by_others(self.conn):
            # Not drained while another worker (perhaps a dead one, until its lease
            # expires) holds part of the stream: --exit-when-idle must keep waiting.
            self._last_activity = time.monotonic()
        for lease in leases:
            if lease.shard_id not in self.iterators:
                self.checkpoints[lease.shard_id] = lease.checkpoint
                self.positions.pop(lease.shard_id, None)
                self.iterators[lease.shard_id] = self._iterator(lease.shard_id, lease.checkpoint)
                logger.info("lease taken", extra={"shard": lease.shard_id, "checkpoint": lease.checkpoint})

    def _iterator(self, shard_id: str, checkpoint: str | None) -> str | None:
        kwargs = {"StreamName": self.settings.stream_name, "ShardId": shard_id}
        if checkpoint:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=checkpoint)
        else:
            kwargs.update(ShardIteratorType="TRIM_HORIZON")
        return self.kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    # -- one batch ----------------------------------------------------------------
    def _get_records(self, shard_id: str) -> dict | None:
        iterator = self.iterators.get(shard_id)
        if iterator is None:
            return None
        try:
            response = self.kinesis.get_records(ShardIterator=iterator, Limit=self.settings.batch_limit)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "ExpiredIteratorException":
                self.iterators[shard_id] = self._iterator(shard_id, self.checkpoints.get(shard_id))
                return None
            if code in RETRYABLE_KINESIS:
                logger.warning("kinesis throttled (%s); backing off", code, extra={"shard": shard_id})
                self._kinesis_backoff.wait(self.stop)
                return None
            raise
        self._kinesis_backoff.reset()
        return response

    def _process_shard(self, shard_id: str) -> int:
        """Fetch and decode one page of `shard_id`, then hand it to the writer thread: while
        PostgreSQL applies it the loop goes on to the next page (processor/pipeline.py)."""
        response = self._get_records(shard_id)
        if response is None:
            return 0
        records = response["Records"]
        next_iterator = response.get("NextShardIterator")
        finished = next_iterator is None or (not records and self._drained(shard_id, response))
        if not records and not finished:
            self.iterators[shard_id] = next_iterator
            self._emit_lag(shard_id, response)
            return 0
        started = time.perf_counter()
        decode = self.workload.decode
        decoded = [decode(r["Data"]) for r in records]
        valid = [d for d in decoded if not isinstance(d, Poison)]
        poison = [(r, d) for r, d in zip(records, decoded, strict=True) if isinstance(d, Poison)]
        last_sequence = records[-1]["SequenceNumber"] if records else None
        self.writer.settle()  # the batch before may have lost this shard's lease, or failed
        if shard_id not in self.iterators:
            return 0  # lease lost meanwhile: the new owner reads this page again
        # The next read continues after this page, committed or not: if it does not commit,
        # the iterators are reset to the checkpoint (a database error) or the shard is gone
        # (a lost lease), and this page is read again.
        self.iterators[shard_id] = None if finished else next_iterator
        if last_sequence is not None:
            self.positions[shard_id] = last_sequence

        def dead_letters_and_checkpoint(cur) -> None:  # noqa: ANN001 - in the batch transaction
            if poison:
                cur.execute(DEAD_LETTER, (
                    self.settings.stream_name, shard_id, [r["SequenceNumber"] for r, _ in poison],
                    [bytes(r["Data"]) for r, _ in poison], [d.reason for _, d in poison],
                ))
            self.leases.checkpoint(cur, shard_id, last_sequence, finished)

        def apply():  # noqa: ANN202 - on the writer thread
            try:
                outcome = run_batch(self.conn, self.sink, valid, within=dead_letters_and_checkpoint)
            except LeaseLost:
                return None
            # Once run_batch returns the batch is durable; Redis and metrics can only lag, never lose it.
            return outcome, time.time(), time.monotonic()

        def done(result) -> None:  # noqa: ANN001 - back on this thread
            if result is None:
                logger.warning("lease lost mid-batch: batch abandoned to the new owner", extra={"shard": shard_id})
                self.iterators.pop(shard_id, None)
                return
            outcome, committed_at, self.stats.last_commit_at = result
            self.checkpoints[shard_id] = last_sequence or self.checkpoints.get(shard_id)
            if finished:
                logger.info("shard ended: children may start", extra={"shard": shard_id})
                self.iterators.pop(shard_id, None)
            latency_ms = self.latency.add(records, committed_at)
            self._account(shard_id, len(records), len(valid), len(poison), outcome.metrics().get("Anomalies", 0),
                          started, response, latency_ms)

        self.writer.submit(apply, done)
        return len(records)

    def _drained(self, shard_id: str, response: dict) -> bool:
        """A closed shard read to its end. Kinesis says so with a null NextShardIterator;
        an empty page at the tip of a shard that ListShards reports closed means the same
        (and is the only sign some emulators give)."""
        ending = self.ending.get(shard_id)
        if ending is None:
            return False
        position = self.positions.get(shard_id) or self.checkpoints.get(shard_id)
        at_end = position is not None and int(position) >= int(ending)
        return at_end or response.get("MillisBehindLatest") == 0

    def _account(self, shard_id: str, total: int, valid: int, poison: int, anomalies: int, started: float,
                 response: dict, latency_ms: float | None) -> None:
        self.stats.records += total
        self.stats.valid += valid
        self.stats.dead_letters += poison
        self.stats.anomalies += anomalies
        self.stats.batches += 1
        self.metrics.emit({
            "RecordsProcessed": valid, "DeadLetters": poison, "Anomalies": anomalies,
            "BatchLatencyMs": round((time.perf_counter() - started) * 1000, 2),
            "MillisBehindLatest": response.get("MillisBehindLatest"),
            "RecordToCommitMs": latency_ms,
        }, shard=shard_id)

    def _emit_lag(self, shard_id: str, response: dict) -> None:
        self.metrics.emit({"MillisBehindLatest": response.get("MillisBehindLatest")}, shard=shard_id)

    # -- failures -----------------------------------------------------------------
    def _on_database_error(self, error: psycopg2.Error) -> None:
        """Wait and reconnect; re-read iterators from the last committed checkpoint."""
        logger.warning("database unavailable (%s); retrying", first_line(error))
        self.metrics.emit({"ProcessingErrors": 1})
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
        # Records after the checkpoint may have been read but not committed: read them again.
        self.iterators = {}
        self.checkpoints = {}
        self.positions = {}
        self._last_activity = time.monotonic()  # an outage is not idleness: records may be waiting
        return True


def install_signal_handlers(processor: Processor) -> None:
    signal.signal(signal.SIGTERM, processor.request_shutdown)
    signal.signal(signal.SIGINT, processor.request_shutdown)
