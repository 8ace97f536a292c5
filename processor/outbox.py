"""The incidents' transactional outbox, published to SNS after the commit.

processor/incidents.py writes each incident's `opened` and `closed` message into
`incident_outbox` in the batch's transaction. `OutboxPublisher.publish` sends the unsent
ones in creation order, in a transaction of its own that locks them (`FOR UPDATE SKIP
LOCKED`: two workers never send the same row at once), and marks them sent in that same
transaction once SNS has accepted them.

So a message is delayed, never lost: an SNS outage leaves it unsent (its attempts and last
error recorded) and it goes out when SNS answers again, after a backoff; a crash after
SNS accepted it and before the mark committed sends it again on the next try. That second
delivery is not silent: every delivery of one event carries the same `message_id` (and
the incident's id), for the subscriber to drop what it has seen.

Message attributes (`line`, `kinds`, `severity`, `event`) let each operator subscribe to
their own lines or severities with an SNS filter policy.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg2
from botocore.exceptions import BotoCoreError, ClientError

from processor.metrics import INCIDENT_OUTBOX_BACKLOG, INCIDENT_OUTBOX_OLDEST_AGE_S

logger = logging.getLogger(__name__)

PENDING = """
SELECT message_id::text, body, attributes FROM incident_outbox
 WHERE sent_at IS NULL ORDER BY created_at, message_id LIMIT %s FOR UPDATE SKIP LOCKED
"""
MARK_SENT = "UPDATE incident_outbox SET sent_at = now(), attempts = attempts + 1 WHERE message_id = ANY(%s::uuid[])"
MARK_FAILED = "UPDATE incident_outbox SET attempts = attempts + 1, last_error = %s WHERE message_id = %s::uuid"
BACKLOG = """
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) FROM incident_outbox WHERE sent_at IS NULL
"""


@dataclass(frozen=True)
class Backlog:
    unsent: int
    oldest_age_s: float

    def gauges(self) -> dict[str, float]:
        return {INCIDENT_OUTBOX_BACKLOG: self.unsent, INCIDENT_OUTBOX_OLDEST_AGE_S: round(self.oldest_age_s, 1)}


def backlog(conn: psycopg2.extensions.connection) -> Backlog:
    with conn, conn.cursor() as cur:
        cur.execute(BACKLOG)
        unsent, age = cur.fetchone()
    return Backlog(int(unsent), float(age))


def sns_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Message attributes as SNS takes them: lists as String.Array (filter policies match any element)."""
    out = {}
    for name, value in attributes.items():
        if isinstance(value, list):
            out[name] = {"DataType": "String.Array", "StringValue": json.dumps(value)}
        else:
            out[name] = {"DataType": "String", "StringValue": str(value)}
    return out


class OutboxPublisher:
    """Sends the outbox to one SNS topic. `publish` is cheap to call often: it does nothing
    while backing off after a failure."""

    def __init__(self, sns: Any, topic_arn: str, *, batch: int = 50, base_backoff_s: float = 1.0,
                 max_backoff_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.sns, self.topic_arn, self.batch = sns, topic_arn, batch
        self.base_backoff_s, self.max_backoff_s, self.clock = base_backoff_s, max_backoff_s, clock
        self._failures = 0
        self._not_before = 0.0
        self.sent = 0

    def publish(self, conn: psycopg2.extensions.connection) -> int:
        """Send what is unsent, oldest first, until the outbox is empty or SNS fails; how many were sent."""
        if self.clock() < self._not_before:
            return 0
        total = 0
        while True:
            sent, failed = self._publish_batch(conn)
            total += sent
            if failed or sent < self.batch:
                break
        self.sent += total
        return total

    def _publish_batch(self, conn: psycopg2.extensions.connection) -> tuple[int, bool]:
        sent: list[str] = []
        failed = False
        with conn, conn.cursor() as cur:
            cur.execute(PENDING, (self.batch,))
            for message_id, body, attributes in cur.fetchall():
                try:
                    self.sns.publish(TopicArn=self.topic_arn, Message=json.dumps(body, sort_keys=True),
                                     MessageAttributes=sns_attributes(attributes))
                except (ClientError, BotoCoreError) as error:
                    cur.execute(MARK_FAILED, (_describe(error), message_id))
                    self._back_off(error)
                    failed = True
                    break
                sent.append(message_id)
            if sent:
                cur.execute(MARK_SENT, (sent,))
        if sent and not failed:
            self._failures, self._not_before = 0, 0.0
        return len(sent), failed

    def _back_off(self, error: Exception) -> None:
        self._failures += 1
        delay = min(self.max_backoff_s, self.base_backoff_s * 2 ** (self._failures - 1))
        self._not_before = self.clock() + delay
        logger.warning("incident messages not published (%s); retrying in %.0f s", _describe(error), delay)


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        return f"{error.response.get('Error', {}).get('Code', 'ClientError')}: " \
               f"{error.response.get('Error', {}).get('Message', '')}"[:300]
    return f"{error.__class__.__name__}: {error}"[:300]
