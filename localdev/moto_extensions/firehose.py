"""Firehose: a delivery stream with a Kinesis source delivers, as Firehose does.

moto stores a `KinesisStreamAsSource` delivery stream and never reads its source, so the
archive stayed empty locally. Here one background reader does Firehose's part for every such
stream: it reads each shard of the source as a shared-throughput consumer (one GetRecords a
second per shard, through the same metered path the processor's reads take, so it spends the
shard's read budget as the real Firehose does), buffers by the stream's buffering hints
(interval and size), and writes one object per flush under the configured prefix
(`!{timestamp:...}` expressions from the records' arrival time), GZIP when configured, with the
configured SSE-KMS key. Every record is delivered once; records are concatenated as Firehose
concatenates them (no delimiter added).

Each read and write is made as the delivery stream's role (moto_extensions/access.py): a
role that may not read the stream, decrypt it, write the bucket or use the key for it stops
that step, as it stops Firehose, and the refusal is in the access log and the emulator log.
Before using a role, the reader assumes it as Firehose does: a trust policy that does not let
`firehose.amazonaws.com` in with the ExternalId Firehose sends (the account) stops delivery too.
"""
from __future__ import annotations

import gzip
import re
import threading
import time
import uuid
from base64 import b64decode
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localdev.moto_extensions.registry import extension

POLL_SECONDS = 1.0  # one read a second per shard, as Firehose reads a Kinesis source
TIMESTAMP = re.compile(r"!\{timestamp:([^}]*)\}")
JAVA_TO_STRFTIME = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))


@dataclass
class Delivery:
    """One delivery stream's reader state: where each shard was read to, and what is buffered."""
    account: str
    region: str
    name: str
    iterators: dict[str, str] = field(default_factory=dict)  # shard id -> next shard iterator
    buffered: list[bytes] = field(default_factory=list)
    buffered_bytes: int = 0
    first_arrival: datetime | None = None
    buffered_since: float | None = None
    objects_written: int = 0
    records_delivered: int = 0
    described: bool = False  # Firehose describes its source once, then lists shards each pass
    refusals: set[str] = field(default_factory=set)  # printed once each
    sessions: dict[str, float] = field(default_factory=dict)  # role ARN -> when its assumed session ends


def _as_role(delivery: Delivery, role_arn: str | None, service: str, operation: str, **params: Any) -> bool:
    """Whether the delivery stream's role may make this call (always logged; a refusal printed once)."""
    if not role_arn:
        return True
    from localdev.access.calls import Call
    from localdev.moto_extensions.access import authorize

    session = f"firehose-{delivery.name}"[:64]
    refusal = _assume(delivery, role_arn, session) or authorize(
        Call(role_arn, service, operation, delivery.region, delivery.account, params.get), session)
    seen = re.sub(r"(arn:aws:s3:::[^/ ]+)/\S+", r"\1/*", refusal or "")  # each flush names a new object
    if refusal and seen not in delivery.refusals:
        delivery.refusals.add(seen)
        print(f"[localdev firehose] {delivery.name}: {refusal}", flush=True)
    return refusal is None


def _assume(delivery: Delivery, role_arn: str, session: str) -> str | None:
    """Firehose's AssumeRole of the role, once a session (STS's refusal, or None)."""
    from localdev.access.trust import FIREHOSE, SESSION_SECONDS
    from localdev.moto_extensions.access import assume_refusal

    if delivery.sessions.get(role_arn, 0.0) > time.monotonic():
        return None
    refusal = assume_refusal(role_arn, FIREHOSE, delivery.account, session)
    if refusal is None:
        delivery.sessions[role_arn] = time.monotonic() + SESSION_SECONDS
    return refusal


DELIVERIES: dict[tuple[str, str, str], Delivery] = {}
_LOCK = threading.Lock()
_reader: threading.Thread | None = None


def prefix_for(template: str, at: datetime) -> str:
    """A Firehose custom prefix with its `!{timestamp:...}` expressions evaluated at `at` (UTC)."""
    def evaluate(match: re.Match[str]) -> str:
        pattern = match.group(1)
        for java, python in JAVA_TO_STRFTIME:
            pattern = pattern.replace(java, python)
        return at.strftime(pattern)

    return TIMESTAMP.sub(evaluate, template)


def _destination(stream: Any) -> dict[str, Any] | None:
    destination = stream.destinations[0] if stream.destinations else {}
    return destination.get("ExtendedS3") or destination.get("S3")


def _read_source(delivery: Delivery, stream: Any) -> None:
    from moto.kinesis.models import kinesis_backends

    kinesis = kinesis_backends[delivery.account][delivery.region]
    source_arn = (stream.source or {}).get("KinesisStreamARN")
    role = (stream.source or {}).get("RoleARN")
    try:
        source = kinesis.describe_stream(stream_arn=source_arn, stream_name=None)
    except Exception:
        return
    if not delivery.described:
        if not _as_role(delivery, role, "kinesis", "DescribeStream", StreamARN=source_arn):
            return
        delivery.described = True
    if not _as_role(delivery, role, "kinesis", "ListShards", StreamARN=source_arn):
        return
    for shard_id in list(source.shards):
        if shard_id not in delivery.iterators:
            if not _as_role(delivery, role, "kinesis", "GetShardIterator", StreamARN=source_arn, ShardId=shard_id):
                continue
            delivery.iterators[shard_id] = kinesis.get_shard_iterator(
                source_arn, None, shard_id, "TRIM_HORIZON", None, None)  # type: ignore[arg-type]
        if not _as_role(delivery, role, "kinesis", "GetRecords", StreamARN=source_arn):
            continue
        try:
            next_iterator, records, _ = kinesis.get_records(source_arn, delivery.iterators[shard_id], None)
        except Exception as error:
            if getattr(error, "error_type", "") == "ProvisionedThroughputExceededException":
                continue  # the shard's read budget is spent this second: read it on the next pass
            raise
        delivery.iterators[shard_id] = next_iterator
        for record in records:
            data = b64decode(record.data)
            delivery.buffered.append(data)
            delivery.buffered_bytes += len(data)
            if delivery.first_arrival is None:
                delivery.first_arrival = record.created_at_datetime.replace(tzinfo=UTC)
                delivery.buffered_since = time.monotonic()


def _flush_if_due(delivery: Delivery, stream: Any, destination: dict[str, Any], now: float) -> None:
    if not delivery.buffered or delivery.buffered_since is None or delivery.first_arrival is None:
        return
    hints = destination.get("BufferingHints") or {}
    interval = float(hints.get("IntervalInSeconds", 300))
    size = float(hints.get("SizeInMBs", 5)) * 1024 * 1024
    if delivery.buffered_bytes < size and now - delivery.buffered_since < interval:
        return
    from moto.s3.models import s3_backends

    body = b"".join(delivery.buffered)
    compressed = destination.get("CompressionFormat") == "GZIP"
    if compressed:
        body = gzip.compress(body)
    at = delivery.first_arrival
    key = (f"{prefix_for(destination.get('Prefix') or '', at)}{stream.delivery_stream_name}-{stream.version_id}-"
           f"{at.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}{'.gz' if compressed else ''}")
    kms = ((destination.get("EncryptionConfiguration") or {}).get("KMSEncryptionConfig") or {}).get("AWSKMSKeyARN")
    bucket = destination["BucketARN"].split(":")[-1]
    if not _as_role(delivery, destination.get("RoleARN"), "s3", "PutObject", Bucket=bucket, Key=key,
                    ServerSideEncryption="aws:kms" if kms else None, SSEKMSKeyId=kms):
        return  # Firehose retries the delivery: the records stay buffered
    backend = s3_backends[delivery.account]["aws"]
    backend.put_object(bucket, key, body, encryption="aws:kms" if kms else None, kms_key_id=kms)
    delivery.objects_written += 1
    delivery.records_delivered += len(delivery.buffered)
    delivery.buffered, delivery.buffered_bytes = [], 0
    delivery.first_arrival, delivery.buffered_since = None, None


def deliver_once(now: float | None = None) -> None:
    """One pass over every Kinesis-sourced delivery stream: read each shard once, flush what is due."""
    from moto.firehose.models import firehose_backends

    now = time.monotonic() if now is None else now
    with _LOCK:
        for (account, region, name), delivery in list(DELIVERIES.items()):
            stream = firehose_backends[account][region].delivery_streams.get(name)
            destination = _destination(stream) if stream is not None else None
            if stream is None or destination is None:
                DELIVERIES.pop((account, region, name), None)  # deleted: what was buffered is dropped, as on AWS
                continue
            _read_source(delivery, stream)
            _flush_if_due(delivery, stream, destination, now)


def _run() -> None:
    while True:
        started = time.monotonic()
        try:
            deliver_once(started)
        except Exception as error:
            print(f"[localdev firehose] delivery pass failed: {error!r}", flush=True)
        time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))


def _ensure_reader() -> None:
    global _reader
    if _reader is None or not _reader.is_alive():
        _reader = threading.Thread(target=_run, name="localdev-firehose", daemon=True)
        _reader.start()


@extension
def firehose_delivers_from_its_kinesis_source() -> None:
    """A KinesisStreamAsSource delivery stream is registered with the reader when created."""
    from moto.firehose.models import FirehoseBackend

    create = FirehoseBackend.create_delivery_stream

    def create_delivery_stream(self: FirehoseBackend, region: str, delivery_stream_name: str, delivery_stream_type: str,
                               *args: Any, **kwargs: Any) -> str:
        arn = create(self, region, delivery_stream_name, delivery_stream_type, *args, **kwargs)
        if delivery_stream_type == "KinesisStreamAsSource":
            with _LOCK:
                DELIVERIES[(self.account_id, self.region_name, delivery_stream_name)] = Delivery(
                    self.account_id, self.region_name, delivery_stream_name)
            _ensure_reader()
        return arn

    FirehoseBackend.create_delivery_stream = create_delivery_stream
