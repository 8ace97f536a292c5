"""Incidents reach people: the outbox through moto's SNS into an SQS queue, across an SNS outage and a kill -9."""
from __future__ import annotations

import json
import signal as signals
import subprocess
import sys
import uuid
from datetime import timedelta

import boto3
import psycopg2
import pytest
from botocore.client import BaseClient
from botocore.config import Config

from localdev.servers import MotoServer, PostgresServer, RedisServer, wait_for
from processor.outbox import OutboxPublisher, backlog
from processor.samples import encode, status
from processor.sinks.factory import FactorySink, IncidentSettings
from processor.workloads import FACTORY
from tests.processor.batches import apply
from tests.processor.conftest import ROOT, count, count_or_zero, make_stream, processor_env, put

WINDOW = IncidentSettings(window=timedelta(seconds=60))


@pytest.fixture()
def topic(moto: MotoServer) -> tuple[str, str, object]:
    """An SNS topic with an SQS queue subscribed, as the demo and an operator subscribe; (topic, queue url, sqs)."""
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=moto.url)
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto.url)
    name = f"incidents-{uuid.uuid4().hex[:8]}"
    topic_arn = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, queue_url, sqs


def delivered(sqs: BaseClient, queue_url: str) -> list[dict]:
    """Every notification in the queue: the incident message and its attributes."""
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        for m in got:
            envelope = json.loads(m["Body"])
            out.append({**json.loads(envelope["Message"]),
                        "attributes": {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def line_traffic(start_s: int, end_s: int, faults: dict[int, str], line: str = "line-1") -> list[dict]:
    """Two status sensors of `line` once a second; FAULT where `faults` says (second -> sensor)."""
    return [{**status(f"{line}-{sensor}", "FAULT" if faults.get(t) == sensor else "RUNNING", at=t), "line_id": line}
            for t in range(start_s, end_s) for sensor in ("mill-1", "mill-2")]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_sns_outage_delays_the_messages_and_loses_none(
        conn: psycopg2.extensions.connection, moto: MotoServer, topic: tuple[str, str, object]) -> None:
    topic_arn, queue_url, sqs = topic
    FACTORY.migrate(conn)
    clock = Clock()
    down = boto3.client("sns", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",  # nothing listens
                        config=Config(connect_timeout=1, retries={"total_max_attempts": 1}))
    publisher = OutboxPublisher(down, topic_arn, clock=clock)
    sink = FactorySink(incident_settings=WINDOW, publisher=publisher)
    # GIVEN SNS unreachable while two incidents open and one closes
    apply(conn, sink, line_traffic(0, 100, {10: "mill-1"}))
    apply(conn, sink, line_traffic(100, 130, {120: "mill-2"}))
    assert delivered(sqs, queue_url) == []
    assert backlog(conn).unsent == 3
    assert count(conn, "SELECT min(attempts) FROM incident_outbox WHERE last_error IS NOT NULL") >= 1
    # WHEN SNS answers again (after the backoff)
    publisher.sns = boto3.client("sns", region_name="us-east-1", endpoint_url=moto.url)
    assert sink.maintain(conn)["IncidentOutboxBacklog"] == 3  # still backing off
    clock.now += 120
    gauges = sink.maintain(conn)
    # THEN every message arrives once, in order, and the outbox is empty
    got = delivered(sqs, queue_url)
    assert [m["event"] for m in got] == ["opened", "closed", "opened"]
    assert len({m["message_id"] for m in got}) == 3
    assert gauges == {"IncidentOutboxBacklog": 0, "IncidentOutboxOldestAgeS": 0}
    assert got[0]["attributes"] == {"line": "line-1", "kinds": '["status"]', "severity": "critical", "event": "opened"}


def test_a_crash_between_publishing_and_marking_sent_redelivers_with_the_same_ids(
        conn: psycopg2.extensions.connection, moto: MotoServer, topic: tuple[str, str, object]) -> None:
    topic_arn, queue_url, sqs = topic
    FACTORY.migrate(conn)
    apply(conn, FactorySink(incident_settings=WINDOW), line_traffic(0, 100, {10: "mill-1", 80: "mill-2"}))
    real = boto3.client("sns", region_name="us-east-1", endpoint_url=moto.url)

    class CrashAfterTwo:
        def __init__(self) -> None:
            self.calls = 0

        def publish(self, **kwargs: object) -> dict:
            self.calls += 1
            if self.calls > 2:
                raise SystemExit("killed")  # the task dies: SNS has two messages, PostgreSQL no mark
            return real.publish(**kwargs)

    with pytest.raises(SystemExit):
        OutboxPublisher(CrashAfterTwo(), topic_arn).publish(conn)
    conn.rollback()
    assert backlog(conn).unsent == 3  # nothing marked: the transaction never committed
    OutboxPublisher(real, topic_arn).publish(conn)  # the next task
    got = delivered(sqs, queue_url)
    ids = [m["message_id"] for m in got]
    assert len(ids) == 5 and len(set(ids)) == 3  # the first two twice, each time with the same message id
    assert backlog(conn).unsent == 0


def test_a_subscription_filter_policy_picks_one_lines_incidents(conn: psycopg2.extensions.connection, moto: MotoServer,
                                                                topic: tuple[str, str, object]) -> None:
    topic_arn, _, sqs = topic
    sns = boto3.client("sns", region_name="us-east-1", endpoint_url=moto.url)
    queue_url = sqs.create_queue(QueueName=f"line-2-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"FilterPolicy": json.dumps({"line": ["line-2"], "severity": ["critical"]})})
    FACTORY.migrate(conn)
    sink = FactorySink(incident_settings=WINDOW, publisher=OutboxPublisher(sns, topic_arn))
    apply(conn, sink, line_traffic(0, 30, {5: "mill-1"}) + line_traffic(0, 30, {7: "mill-1"}, line="line-2"))
    assert [(m["line_id"], m["event"]) for m in delivered(sqs, queue_url)] == [("line-2", "opened")]


def test_a_kill_9_mid_stream_loses_no_incident_message(kinesis: BaseClient, moto: MotoServer, postgres: PostgresServer,
        database: str, redis_server: RedisServer, conn: psycopg2.extensions.connection,
                                                        topic: tuple[str, str, object]) -> None:
    topic_arn, queue_url, sqs = topic
    stream = make_stream(kinesis, shards=2)
    faults = {100: "mill-1", 300: "mill-2", 500: "mill-1"}
    bodies = line_traffic(0, 600, faults) + line_traffic(0, 600, {200: "mill-2"}, line="line-2")
    put(kinesis, stream, [encode(b) for b in bodies], key=lambda i: bodies[i]["sensor_id"])
    env = processor_env("factory", stream, moto=moto, postgres=postgres, database=database, redis_server=redis_server,
                        BATCH_LIMIT="50", CONSUMER_GROUP="outbox-kill", LEASE_DURATION_S="3",
                        INCIDENT_TOPIC_ARN=topic_arn, INCIDENT_WINDOW_S="60")
    command = [sys.executable, "-m", "processor", "--exit-when-idle", "2"]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: count_or_zero(conn, "SELECT count(*) FROM incident_outbox") > 0, 90, "a first incident")
    finally:
        first.send_signal(signals.SIGKILL)
        first.wait(10)
    assert count(conn, "SELECT count(*) FROM sensor_readings") < len(bodies)  # really killed mid-stream
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-2000:]
    with conn, conn.cursor() as cur:
        cur.execute("SELECT incident_id::text, line_id, closed_at IS NOT NULL FROM incidents ORDER BY opened_at")
        stored = cur.fetchall()
    assert [(line, closed) for _, line, closed in stored] == [
        ("line-1", True), ("line-2", True), ("line-1", True), ("line-1", True)]
    expected = {(iid, event) for iid, _, _ in stored for event in ("opened", "closed")}
    got = delivered(sqs, queue_url)
    assert {(m["incident_id"], m["event"]) for m in got} == expected  # every transition reached the queue
    assert len({m["message_id"] for m in got}) == len(expected)  # a redelivery, if any, carries its id
    assert backlog(conn).unsent == 0
