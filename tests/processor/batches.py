"""What the sink tests share: a batch of sample bodies run through a sink, and rows read back."""
from __future__ import annotations

import psycopg2

from processor.samples import encode
from processor.sinks import Sink, run_batch
from processor.workloads import WORKLOADS


def apply(conn: psycopg2.extensions.connection, sink: Sink, bodies: list[dict], workload: str = "factory") -> None:
    """One batch of `bodies` (sample records, decoded as the workload decodes them) through `sink`."""
    run_batch(conn, sink, [WORKLOADS[workload].decode(encode(b)) for b in bodies])


def rows(conn: psycopg2.extensions.connection, sql: str) -> list[tuple]:
    """The rows `sql` reads, in a transaction of their own."""
    with conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()
