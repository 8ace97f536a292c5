"""Kinesis: tags at creation, resharding as Kinesis does it, reads from the position, shard limits."""
from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localdev.moto_extensions.registry import extension


@extension
def kinesis_tags_at_creation() -> None:
    """CreateStream's Tags were dropped, so the first plan after an apply re-tagged the stream."""
    from moto.kinesis.responses import KinesisResponse

    create = KinesisResponse.create_stream

    def create_stream(self: KinesisResponse) -> Any:
        answer = create(self)
        tags = self._get_param("Tags")
        if tags:
            self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), tags)
        return answer

    KinesisResponse.create_stream = create_stream


@extension
def kinesis_faithful_resharding() -> None:
    """Measured on moto 5 (tests/processor/test_resilience.py): SplitShard moves the
    parent's records into the children, and PutRecord keeps routing keys to the closed
    parent (the first shard whose hash range matches, open or not). Kinesis keeps a closed
    parent's records in the parent and routes new records to open shards only, which is
    what "parents drained before children" relies on."""
    from moto.kinesis import models

    models.Stream.get_shard_for_key = _route_to_open_shards(models.Stream.get_shard_for_key)
    models.Stream.split_shard = _split_keeping_parent_records(models.Stream.split_shard)


def _route_to_open_shards(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_shard_for_key(self: Any, partition_key: str, explicit_hash_key: str) -> Any:  # a moto Stream
        shard = original(self, partition_key, explicit_hash_key)  # validates the key, first match wins
        if shard is None or shard.is_open:
            return shard
        if explicit_hash_key:
            hashed = int(explicit_hash_key)
        else:
            hashed = int(hashlib.md5(partition_key.encode()).hexdigest(), 16)
        return next((s for s in self.shards.values() if s.is_open and s.starting_hash <= hashed < s.ending_hash),
                    None)

    return get_shard_for_key


def _split_keeping_parent_records(original: Callable[..., Any]) -> Callable[..., None]:
    def split_shard(self: Any, shard_to_split: str, new_starting_hash_key: str) -> None:
        parent = self.shards[shard_to_split]
        kept = OrderedDict(parent.records)
        original(self, shard_to_split, new_starting_hash_key)
        for shard in self.shards.values():  # undo the move into the children
            if shard.parent == parent.shard_id:
                shard.records = OrderedDict()
        parent.records = kept

    return split_shard


# --- Reads and writes as Kinesis meters them --------------------------------------------------------------------
# Per shard (Kinesis Data Streams quotas): 5 GetRecords calls a second and 2 MiB/s of reads,
# shared by every reader; at most 10,000 records or 10 MiB a call; 1,000 records and 1 MiB a
# second of writes. Over a limit Kinesis answers ProvisionedThroughputExceededException (a
# PutRecords entry fails alone, with that code). Reads may overdraw the byte budget once (a
# 10 MiB call is allowed), then every call fails until the budget has refilled: a 10 MiB
# read blocks the shard's readers for about 4 s, as AWS documents.
READS_PER_SECOND = 5
READ_BYTES_PER_SECOND = 2 * 1024 * 1024
RECORDS_PER_CALL = 10_000
BYTES_PER_CALL = 10 * 1024 * 1024
WRITE_RECORDS_PER_SECOND = 1_000
WRITE_BYTES_PER_SECOND = 1024 * 1024


@dataclass
class ShardUsage:
    """What one shard served and refused, for tests and benchmarks (LocaldevShardUsage)."""

    get_records: int = 0
    read_throttled: int = 0
    records_read: int = 0
    bytes_read: int = 0
    peak_reads_per_second: int = 0  # most GetRecords served within any one second
    records_written: int = 0
    bytes_written: int = 0
    write_throttled: int = 0  # records refused
    read_calls: deque = field(default_factory=deque, repr=False)  # served calls in the last second
    read_tokens: float = READ_BYTES_PER_SECOND
    refilled_at: float = field(default_factory=time.monotonic)
    writes: deque = field(default_factory=deque, repr=False)  # (time, records, bytes) in the last second
    written_records: int = 0  # ... their sums
    written_bytes: int = 0

    def public(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("get_records", "read_throttled", "records_read", "bytes_read",
                                                  "peak_reads_per_second", "records_written", "bytes_written",
                                                  "write_throttled")}


USAGE: dict[tuple[str, str, str, str], ShardUsage] = {}  # (account, region, stream, shard)
_LOCK = threading.RLock()  # moto's Kinesis is not thread-safe (a put reads max + 1); the server is threaded


def _throttle_error(shard_id: str, stream: str, account: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError("ProvisionedThroughputExceededException",
                         f"Rate exceeded for shard {shard_id} in stream {stream} under account {account}.")


def _size(record: Any) -> int:
    data = record.data
    return len(data) * 3 // 4 - data[-2:].count("=") + len(record.partition_key)


def _usage(backend: Any, stream: str, shard_id: str) -> ShardUsage:
    return USAGE.setdefault((backend.account_id, backend.region_name, stream, shard_id), ShardUsage())


def _admit_read(usage: ShardUsage, now: float) -> bool:
    while usage.read_calls and usage.read_calls[0] <= now - 1.0:
        usage.read_calls.popleft()
    usage.read_tokens = min(READ_BYTES_PER_SECOND, usage.read_tokens + (now - usage.refilled_at) * READ_BYTES_PER_SECOND)
    usage.refilled_at = now
    return len(usage.read_calls) < READS_PER_SECOND and usage.read_tokens > 0


def _admit_write(usage: ShardUsage, now: float, size: int) -> bool:
    while usage.writes and usage.writes[0][0] <= now - 1.0:
        _, records, size_then = usage.writes.popleft()
        usage.written_records -= records
        usage.written_bytes -= size_then
    if usage.written_records + 1 > WRITE_RECORDS_PER_SECOND or usage.written_bytes + size > WRITE_BYTES_PER_SECOND:
        usage.write_throttled += 1
        return False
    usage.writes.append((now, 1, size))
    usage.written_records += 1
    usage.written_bytes += size
    usage.records_written += 1
    usage.bytes_written += size
    return True


def _indexed_keys(shard: Any) -> list[int]:
    """The shard's sequence numbers in order, kept beside its records (which are appended in
    order, or replaced whole by a reshard): a read finds its position by bisection."""
    keys = shard.__dict__.get("_localdev_keys")
    if shard.__dict__.get("_localdev_keyed") is not shard.records or keys is None or len(keys) > len(shard.records):
        keys = list(shard.records)
        shard._localdev_keys, shard._localdev_keyed = keys, shard.records
    elif len(keys) < len(shard.records):
        keys.extend(itertools.islice(shard.records, len(keys), None))
    return keys


@extension
def kinesis_reads_from_the_position() -> None:
    """moto scans a shard from its first record on every GetRecords and on every put (its
    next sequence number is max() over a copied key list), so a long run slows down as the
    stream grows: reads and writes cost O(records in the shard). Here a shard keeps its
    sequence numbers in order and a read bisects to its position. A read also returns at
    most 10,000 records and 10 MiB, and MillisBehindLatest is above 0 whenever records are
    left after the page (moto derived it from arrival times, so a backlog put in one burst
    read as 0, "at the tip")."""
    from moto.core.utils import unix_time, utcnow
    from moto.kinesis import models

    def get_records(self: models.Shard, last_sequence_id: str, limit: int | None) -> tuple[list, int, int]:
        keys = _indexed_keys(self)
        start = bisect.bisect_right(keys, int(last_sequence_id))
        results, size = [], 0
        for key in keys[start:start + min(limit or RECORDS_PER_CALL, RECORDS_PER_CALL)]:
            record = self.records[key]
            size += _size(record)
            if results and size > BYTES_PER_CALL:
                break
            results.append(record)
        last = results[-1].sequence_number if results else int(last_sequence_id)
        following = start + len(results)
        behind = 0
        if following < len(keys):
            behind = max(1, int((unix_time(utcnow()) - self.records[keys[following]].created_at) * 1000))
        return results, last, behind

    def put_record(self: models.Shard, partition_key: str, data: str, explicit_hash_key: str) -> str:
        keys = _indexed_keys(self)
        sequence_number = (keys[-1] if keys else 0) + 1
        self.records[sequence_number] = models.Record(partition_key, data, sequence_number, explicit_hash_key)
        keys.append(sequence_number)
        return str(sequence_number)

    models.Shard.get_records = get_records
    models.Shard.put_record = put_record
    models.Shard.get_min_sequence_number = lambda self: next(iter(self.records), 0)
    models.Shard.get_max_sequence_number = lambda self: next(reversed(self.records), 0)


@extension
def kinesis_shard_limits() -> None:
    """Kinesis meters every shard (see the limits above); moto serves any rate. A reader
    that polls too often, or a producer that writes too fast, must see it here as on AWS.
    Every shard's usage is kept for tests and benchmarks: the LocaldevShardUsage action
    (`localdev.kinesis_usage`) answers it, per stream."""
    from moto.kinesis.exceptions import InvalidArgumentError, RecordSizeExceedsLimit, TooManyRecords, TotalRecordsSizeExceedsLimit
    from moto.kinesis.models import KinesisBackend
    from moto.kinesis.responses import KinesisResponse
    from moto.kinesis.utils import decompose_shard_iterator

    read, put_one = KinesisBackend.get_records, KinesisBackend.put_record

    def get_records(self: KinesisBackend, stream_arn: str | None, shard_iterator: str, limit: int | None) -> Any:
        if limit is not None and not 1 <= int(limit) <= RECORDS_PER_CALL:
            raise InvalidArgumentError(f"Limit must be between 1 and {RECORDS_PER_CALL}, not {limit}")
        stream_name, shard_id, _ = decompose_shard_iterator(shard_iterator)
        stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
        with _LOCK:
            usage, now = _usage(self, stream.stream_name, shard_id), time.monotonic()
            if not _admit_read(usage, now):
                usage.read_throttled += 1
                raise _throttle_error(shard_id, stream.stream_name, self.account_id)
            next_iterator, records, behind = read(self, stream_arn, shard_iterator, limit)
            usage.read_calls.append(now)
            usage.get_records += 1
            usage.peak_reads_per_second = max(usage.peak_reads_per_second, len(usage.read_calls))
            usage.records_read += len(records)
            size = sum(_size(r) for r in records)
            usage.bytes_read += size
            usage.read_tokens -= size
        return next_iterator, records, behind

    def put_record(self: KinesisBackend, stream_arn: str | None, stream_name: str | None, partition_key: str,
            explicit_hash_key: str | None, data: str) -> Any:
        stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
        with _LOCK:
            shard = stream.get_shard_for_key(partition_key, explicit_hash_key)
            size = len(base64.b64decode(data)) + len(partition_key)
            if shard is not None and not _admit_write(_usage(self, stream.stream_name, shard.shard_id),
                                                       time.monotonic(), size):
                raise _throttle_error(shard.shard_id, stream.stream_name, self.account_id)
            return put_one(self, stream_arn, stream_name, partition_key, explicit_hash_key, data)

    def put_records(self: KinesisBackend, stream_arn: str | None, stream_name: str | None, records: list) -> Any:
        stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
        if len(records) > 500:
            raise TooManyRecords
        sizes = [len(base64.b64decode(r.get("Data", ""))) + len(r.get("PartitionKey", "")) for r in records]
        if sum(sizes) > 5 * 1024 * 1024:
            raise TotalRecordsSizeExceedsLimit
        too_big = next((i for i, size in enumerate(sizes) if size > 1024 * 1024), None)
        if too_big is not None:
            raise RecordSizeExceedsLimit(position=too_big + 1)
        answers, failed, accepted = [], 0, 0
        with _LOCK:
            for record, size in zip(records, sizes, strict=True):
                key, hash_key = record.get("PartitionKey"), record.get("ExplicitHashKey")
                shard = stream.get_shard_for_key(key, hash_key)
                if shard is not None and not _admit_write(_usage(self, stream.stream_name, shard.shard_id),
                                                           time.monotonic(), size):
                    failed += 1
                    answers.append({"ErrorCode": "ProvisionedThroughputExceededException",
                                    "ErrorMessage": f"Rate exceeded for shard {shard.shard_id} in stream "
                                                    f"{stream.stream_name} under account {self.account_id}."})
                    continue
                sequence_number, shard_id = stream.put_record(key, hash_key, record.get("Data"))
                answers.append({"SequenceNumber": sequence_number, "ShardId": shard_id})
                accepted += size
        if accepted:
            self._send_stream_metrics(stream.stream_name, incoming_bytes=accepted,
                                      incoming_records=len(records) - failed)
        return {"FailedRecordCount": failed, "Records": answers}

    def localdev_shard_usage(self: KinesisResponse) -> str:
        stream = self._get_param("StreamName")
        backend = self.kinesis_backend
        with _LOCK:
            shards = [{"StreamName": s, "ShardId": shard, **usage.public()}
                      for (account, region, s, shard), usage in sorted(USAGE.items())
                      if (account, region) == (backend.account_id, backend.region_name) and s == stream]
        return json.dumps({"Shards": shards})

    KinesisBackend.get_records = get_records
    KinesisBackend.put_record = put_record
    KinesisBackend.put_records = put_records
    KinesisResponse.localdev_shard_usage = localdev_shard_usage
