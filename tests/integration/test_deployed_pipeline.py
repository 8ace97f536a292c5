"""The deployed stacks behave as the stacks and the processor promise (see conftest for where they run)."""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg2
import pytest
import redis
from botocore.client import BaseClient
from psycopg2 import errors

from processor.produce import batches, put_all
from stacks.config import build_config
from tests.helpers import read_stream


def eventually(check: Callable[[], object], timeout_s: float = 60, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} did not hold within {timeout_s} s")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_the_flat_outputs_file_holds_strings_only_as_cloudformation_writes_it(outputs: dict) -> None:
    assert {name: type(value).__name__ for name, value in outputs.items() if not isinstance(value, str)} == {}
    subnets = [value for name, value in outputs.items() if name.endswith("_private_subnet_ids")]
    assert subnets and all(len(value.split(",")) >= 2 for value in subnets)  # a list, joined with commas


def test_stream_is_active_and_encrypted_with_the_stack_key(aws: Callable[[str], Any], out: Callable[[str], Any]) -> None:
    summary = aws("kinesis").describe_stream_summary(StreamName=out("stream_name"))["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["EncryptionType"] == "KMS"
    key_id = aws("kms").describe_key(KeyId=summary["KeyId"])["KeyMetadata"]["Arn"]
    assert key_id == out("kms_key_arn")


def test_database_secret_rotates_on_the_configured_schedule_of_at_most_30_days(aws: Callable[[str], Any],
                                                                               out: Callable[[str], Any], workload: str) -> None:
    secret = aws("secretsmanager").describe_secret(SecretId=out("db_secret_arn"))
    days = build_config(workload, str(out("stack_id")).split("-", 1)[1]).database.rotation_days
    assert secret["RotationEnabled"] is True
    assert secret["RotationRules"]["AutomaticallyAfterDays"] == days <= 30


def test_a_record_put_into_the_stream_reaches_postgres_and_redis(aws: Callable[[str], Any], out: Callable[[str], Any],
        workload: str, db: psycopg2.extensions.connection, cache: redis.Redis,
                                                                 processor: None) -> None:
    marker = uuid.uuid4().hex[:10]
    if workload == "retail":
        sku = f"IT-{marker}"
        body = {"event_id": str(uuid.uuid4()), "type": "product_upsert", "sku": sku, "name": "Integration test",
                "category": "test", "price": "9.99", "currency": "USD", "updated_at": _now()}
        put_all(aws("kinesis"), out("stream_name"), [(sku, json.dumps(body).encode())])

        def stored() -> object:
            with db.cursor() as cur:
                cur.execute("SELECT name FROM products WHERE sku = %s", (sku,))
                return cur.fetchone()

        assert eventually(stored, what="product row")[0] == "Integration test"
        cached = eventually(lambda: cache.hget(f"product:{sku}", "p"), what="cached product")
        assert json.loads(cached)["name"] == "Integration test"
    else:
        sensor = f"temp-it-{marker}"
        body = {"event_id": str(uuid.uuid4()), "sensor_id": sensor, "line_id": "line-it", "kind": "temperature",
                "value": 71.5, "unit": "C", "ts": _now()}
        put_all(aws("kinesis"), out("stream_name"), [(sensor, json.dumps(body).encode())])

        def stored() -> object:
            with db.cursor() as cur:
                cur.execute("SELECT value FROM sensor_readings WHERE sensor_id = %s", (sensor,))
                return cur.fetchone()

        assert eventually(stored, what="sensor reading row")[0] == 71.5
        assert eventually(lambda: cache.hgetall(f"sensor:{sensor}"), what="latest reading in Redis")


def test_a_poison_record_is_dead_lettered_and_the_records_after_it_still_land(aws: Callable[[str], Any], out: Callable[[str],
        Any], workload: str, db: psycopg2.extensions.connection,
                                                                             processor: None) -> None:
    marker = uuid.uuid4().hex
    poison = f"not json {marker}".encode()
    follow = {"retail": {"event_id": str(uuid.uuid4()), "type": "product_upsert", "sku": f"IT-{marker[:10]}",
                         "name": "after poison", "category": "test", "price": "1.00", "currency": "USD",
                         "updated_at": _now()},
              "factory": {"event_id": str(uuid.uuid4()), "sensor_id": f"pres-it-{marker[:10]}", "line_id": "line-it",
                          "kind": "pressure", "value": 300.0, "unit": "kPa", "ts": _now()}}[workload]
    partition = f"it-{marker[:10]}"
    for batch in batches([(partition, poison), (partition, json.dumps(follow).encode())]):
        put_all(aws("kinesis"), out("stream_name"), batch)

    def dead_lettered() -> object:
        with db.cursor() as cur:
            cur.execute("SELECT count(*) FROM dead_letters WHERE position(%s IN payload) > 0", (marker.encode(),))
            return cur.fetchone()[0]

    assert eventually(dead_lettered, what="dead letter") == 1
    table, column, value = (("products", "sku", follow.get("sku")) if workload == "retail"
                            else ("sensor_readings", "sensor_id", follow.get("sensor_id")))

    def landed() -> object:
        with db.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (value,))
            return cur.fetchone()[0]

    assert eventually(landed, what="record after the poison") == 1


def test_alarms_cover_every_tier_and_notify_the_alerts_topic(aws: Callable[[str], Any], out: Callable[[str], Any],
                                                             workload: str) -> None:
    suffix = str(out("stack_id")).split("-", 1)[1]
    alarms = [a for a in aws("cloudwatch").describe_alarms(AlarmNamePrefix=f"{workload}-")["MetricAlarms"]
              if a["AlarmName"].endswith(f"-{suffix}")]
    namespaces = {a.get("Namespace") for a in alarms} | {
        q["MetricStat"]["Metric"]["Namespace"] for a in alarms for q in a.get("Metrics", []) if "MetricStat" in q}
    tiers = {"AWS/Kinesis", "AWS/RDS", "AWS/ElastiCache", "AWS/Firehose", "ECS/ContainerInsights",
             str(out("metrics_namespace"))}
    assert tiers <= namespaces
    # every alarm pages through the alerts topic, but the scaling policies' own, which act on the service
    scaling = [a for a in alarms if all(":scalingPolicy:" in action for action in a["AlarmActions"])]
    assert all(out("alerts_topic_arn") in a["AlarmActions"] for a in alarms if a not in scaling)
    assert {a["AlarmName"] for a in scaling} == {f"{workload}-processor-lag-scale-{d}-{suffix}" for d in ("out", "in")}


def test_dashboard_exists(aws: Callable[[str], Any], out: Callable[[str], Any]) -> None:
    body = json.loads(aws("cloudwatch").get_dashboard(DashboardName=out("dashboard_name"))["DashboardBody"])
    assert body["widgets"]


def _stream_records(kinesis: BaseClient, stream: str) -> list[tuple[datetime, bytes]]:
    """Every record the stream holds, with its arrival time."""
    return [(r["ApproximateArrivalTimestamp"], r["Data"]) for r in read_stream(kinesis, stream)]


def _archived(s3: BaseClient, bucket: str) -> bytes:
    import gzip

    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="records/")
            for o in page.get("Contents", [])]
    bodies = [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]
    return b"\n".join(gzip.decompress(b) if k.endswith(".gz") else b for k, b in zip(keys, bodies, strict=True))


def test_every_record_the_stream_holds_is_archived_once(aws: Callable[[str], Any], out: Callable[[str], Any]) -> None:
    """Firehose concatenates records without a delimiter, so each record is found by its bytes: once
    the newest record is a buffering interval old, every record the stream holds is in the archive
    exactly as many times as the stream holds it (duplicates sent twice are archived twice)."""
    from collections import Counter

    firehose = aws("firehose").describe_delivery_stream(DeliveryStreamName=out("archive_delivery_stream_name"))
    destination = firehose["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    interval = destination["BufferingHints"]["IntervalInSeconds"]
    records = _stream_records(aws("kinesis"), str(out("stream_name")))
    assert len(records) > 100, "the stream holds too few records to check the archive"
    every = Counter(data for _, data in records)
    distinct = [d for d in every if len(d) >= 32]  # short bytes (poison such as b"{") occur inside other records

    def complete() -> bytes | None:
        archive = _archived(aws("s3"), str(out("archive_bucket_name")))
        return archive if all(archive.count(d) >= every[d] for d in distinct) else None

    newest = max(arrived for arrived, _ in records).timestamp()
    wait = max(0.0, newest + interval - datetime.now(UTC).timestamp())
    archive = eventually(complete, timeout_s=wait + 90, what="the archive holding every record of the stream")
    assert all(archive.count(d) == every[d] for d in distinct)  # delivered once, not again on a later pass
    assert len(distinct) > 100


def test_the_services_database_role_does_its_dml_but_cannot_drop_a_table(app_db: psycopg2.extensions.connection) -> None:
    with app_db.cursor() as cur:
        cur.execute("SELECT count(*) FROM shard_leases")
        assert cur.fetchone()[0] >= 0
    app_db.rollback()
    with pytest.raises(errors.InsufficientPrivilege), app_db.cursor() as cur:
        cur.execute("DROP TABLE dead_letters")
    app_db.rollback()
    with pytest.raises(errors.InsufficientPrivilege), app_db.cursor() as cur:
        cur.execute("DELETE FROM dead_letters")
    app_db.rollback()
