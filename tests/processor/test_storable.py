"""Whatever `decode` accepts, PostgreSQL stores: a record that passes validation but fails
in the database would fail its whole batch again on every retry and stop the shard."""
from __future__ import annotations

import json

import psycopg2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.records import Poison
from processor.samples import product, reading, stock
from processor.sinks import Sink, run_batch
from processor.sinks.factory import FactorySink
from processor.sinks.retail import RetailSink
from processor.workloads import FACTORY, RETAIL, WORKLOADS
from tests.processor.conftest import count

# Values near the contract's edges: odd text, huge and tiny numbers, odd timestamps.
texts = st.text(min_size=0, max_size=40) | st.sampled_from(["SKU-1", "a" * 64, "a" * 65, "x\n", "\u0000", "é"])
numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=True, allow_infinity=True)
stamps = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.sampled_from(
    ["2026-11-01T12:00:00Z", "2026-11-01T12:00:00.123456789+14:00", "0001-01-01T00:00:00-12:00",
     "9998-12-31T23:59:59Z", "2026-02-30T00:00:00Z"])
event_ids = st.uuids().map(str) | st.uuids().map(lambda u: u.hex.upper()) | st.uuids().map(lambda u: f"{{{u}}}")
fields = {"sku": texts, "supplier_id": texts, "name": texts, "category": texts, "currency": texts,
          "price": st.from_regex(r"[0-9]{1,11}(\.[0-9]{0,5})?", fullmatch=True) | texts,
          "quantity": numbers, "value": numbers | st.sampled_from(["RUNNING", "FAULT"]), "updated_at": stamps,
          "ts": stamps, "event_id": event_ids, "sensor_id": texts, "line_id": texts}


def mutated(template: dict) -> st.SearchStrategy[dict]:
    """A valid body with some fields replaced by edge values."""
    return st.fixed_dictionaries({}, optional={k: fields[k] for k in template if k in fields}).map(
        lambda changes: {**template, **changes})


retail_bodies = st.one_of(mutated(product()), mutated(stock()))
factory_bodies = st.one_of(mutated(reading()), mutated(reading(kind="pressure")),
                           mutated({**reading(), "kind": "status", "value": "FAULT"}))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def store(conn: psycopg2.extensions.connection, sink: Sink, bodies: list[dict], workload: str) -> list:
    records = [WORKLOADS[workload].decode(json.dumps(b).encode()) for b in bodies]
    valid = [r for r in records if not isinstance(r, Poison)]
    run_batch(conn, sink, valid)  # raises if PostgreSQL refuses any of it
    return valid


@SETTINGS
@given(st.lists(retail_bodies, min_size=1, max_size=20))
def test_every_retail_record_decode_accepts_is_stored(conn: psycopg2.extensions.connection, bodies: list[dict]) -> None:
    RETAIL.migrate(conn)
    skus = sorted({r.sku for r in store(conn, RetailSink(), bodies, "retail")})
    found = count(conn, "SELECT count(DISTINCT sku) FROM (SELECT sku FROM products UNION ALL "
                          "SELECT sku FROM inventory) AS s WHERE sku = ANY(%s)", skus)
    assert found == len(skus)


@SETTINGS
@given(st.lists(factory_bodies, min_size=1, max_size=20))
def test_every_reading_decode_accepts_is_stored(conn: psycopg2.extensions.connection, bodies: list[dict]) -> None:
    FACTORY.migrate(conn)
    ids = sorted({r.event_id for r in store(conn, FactorySink(), bodies, "factory")})
    assert count(conn, "SELECT count(DISTINCT event_id) FROM sensor_readings WHERE event_id = ANY(%s::uuid[])",
                   ids) == len(ids)
