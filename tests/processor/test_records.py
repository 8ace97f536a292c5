from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor import records
from processor.records import InventoryUpdate, Poison, ProductUpsert, SensorReading
from processor.samples import encode, product, reading, status, stock
from processor.workloads import FACTORY, RETAIL, WORKLOADS


def test_a_valid_product_upsert_decodes_with_a_decimal_price() -> None:
    record = RETAIL.decode(encode(product(price="19.99")))
    assert isinstance(record, ProductUpsert) and record.price == Decimal("19.99")
    assert record.updated_at.tzinfo is not None


def test_a_valid_inventory_update_decodes() -> None:
    assert isinstance(RETAIL.decode(encode(stock(quantity=42))), InventoryUpdate)


def test_readings_and_statuses_decode() -> None:
    temp = FACTORY.decode(encode(reading(value=71.3)))
    assert isinstance(temp, SensorReading) and temp.value == 71.3 and temp.unit == "C"
    fault = FACTORY.decode(encode(status(value="FAULT")))
    assert isinstance(fault, SensorReading) and fault.status == "FAULT" and fault.value is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**stock(), "quantity": -1}, "quantity must be a non-negative integer"),
        ({**stock(), "quantity": True}, "quantity must be a non-negative integer"),
        ({**product(), "price": "12,50"}, "price must be a decimal string"),
        ({**product(), "price": 12.5}, "price must be a decimal string"),
        ({**product(), "updated_at": "yesterday"}, "updated_at must be an RFC 3339 timestamp"),
        ({**product(), "updated_at": "2026-11-01T12:00:00"}, "updated_at must carry a UTC offset"),
        ({**product(), "event_id": "not-a-uuid"}, "event_id must be a UUID string"),
        ({**product(), "type": "price_change"}, "unknown retail record type 'price_change'"),
        ({k: v for k, v in product().items() if k != "sku"}, "sku must be a non-empty string"),
        ({**product(), "currency": "USD\n"}, "currency 'USD\\n' has an invalid format"),
        ({**product(), "sku": "SKU-1\n"}, "sku 'SKU-1\\n' has an invalid format"),
        ({**product(), "price": "\u0661\u0669.99"}, "price must be a decimal string"),
        ({**product(), "name": "mug\u0000"}, "name contains NUL or an unpaired surrogate"),
        ({**product(), "category": "\ud800"}, "category contains NUL or an unpaired surrogate"),
        ({**product(), "name": "Kettl\ufffd"}, "name contains U+FFFD, the mark of text lost"),
        ({**product(), "updated_at": "0001-01-01T00:00:00+01:00"}, "updated_at is out of range"),
    ],
)
def test_retail_poison_records_say_why(body: dict, reason: str) -> None:
    record = RETAIL.decode(encode(body))
    assert isinstance(record, Poison) and record.reason.startswith(reason)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**reading(), "kind": "humidity"}, "unknown sensor kind 'humidity'"),
        ({**reading(), "unit": "F"}, "temperature unit must be C (got 'F')"),
        ({k: v for k, v in reading().items() if k != "unit"}, "temperature unit must be C (got missing)"),
        ({**reading(kind="flow", value=12.0), "unit": ["L/min"]}, "flow unit must be L/min (got not text)"),
        ({**reading(kind="vibration", value=0.4), "unit": "mm/s"}, "vibration unit must be g (got 'mm/s')"),
        ({**reading(kind="current", value=12.0), "unit": "mA"}, "current unit must be A (got 'mA')"),
        ({**reading(kind="voltage", value=230.0), "unit": "kV"}, "voltage unit must be V (got 'kV')"),
        (reading(kind="vibration", value=-0.01), "vibration value -0.01 g is below 0 (an RMS value is never negative)"),
        (reading(kind="current", value=-3), "current value -3 A is below 0 (an RMS value is never negative)"),
        (reading(kind="voltage", value=-1.0), "voltage value -1 V is below 0 (an RMS value is never negative)"),
        (reading(kind="flow", value=-5.5), "flow value -5.5 L/min is below 0 (a flow meter reports a rate, never negative)"),
        (reading(value=-300.0), "temperature value -300 C is below -273.15 (below absolute zero)"),
        (reading(kind="flow", value="fast"), "flow value must be a finite number"),
        ({**reading(), "value": "hot"}, "temperature value must be a finite number"),
        ({**status(), "value": "BROKEN"}, "status value must be one of FAULT, IDLE, RUNNING"),
        ({**status(), "value": ["FAULT"]}, "status value must be one of FAULT, IDLE, RUNNING"),
        ({**reading(), "kind": ["temperature"]}, "unknown sensor kind \"['temperature']\""),
        ({**reading(), "value": 10**400}, "temperature value must be a finite number"),
        ({**reading(), "ts": "9999-12-31T23:00:00Z"}, "ts is out of range"),
    ],
)
def test_factory_poison_records_say_why(body: dict, reason: str) -> None:
    record = FACTORY.decode(encode(body))
    assert isinstance(record, Poison) and record.reason == reason


def test_a_quantity_refuses_readings_outside_its_floor_and_ceiling() -> None:
    humidity = records.Quantity("%RH", 45.0, 1.0, 0.0, 100.0, why="a relative humidity is a share")
    assert humidity.refusal(-0.5) == "below 0 (a relative humidity is a share)"
    assert humidity.refusal(100.5) == "above 100 (a relative humidity is a share)"
    assert humidity.refusal(0.0) is None and humidity.refusal(100.0) is None


def test_non_json_and_non_objects_are_poison() -> None:
    assert RETAIL.decode(b"\xff\xfe") == Poison("not UTF-8 JSON")
    assert FACTORY.decode(b"[1, 2]") == Poison("not a JSON object")
    assert FACTORY.decode(b'{"value": NaN, "kind": "temperature"}').__class__ is Poison


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["retail", "factory"]))
def test_arbitrary_bytes_never_raise_and_decode_to_one_of_the_workloads_types_or_poison(data: bytes, workload: str) -> None:
    from processor.records import InventoryUpdate, ProductUpsert, SensorReading

    decoded = WORKLOADS[workload].decode(data)
    allowed = (ProductUpsert, InventoryUpdate, Poison) if workload == "retail" else (SensorReading, Poison)
    assert isinstance(decoded, allowed)
    if isinstance(decoded, Poison):
        assert decoded.reason  # says why


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(product()) + list(reading())), json_values, max_size=9))
def test_fuzzed_objects_decode_or_become_poison(body: dict) -> None:
    for workload in ("retail", "factory"):
        record = WORKLOADS[workload].decode(json.dumps(body).encode())
        assert isinstance(record, (Poison, ProductUpsert, InventoryUpdate, SensorReading))


# Values a valid record's field may be swapped for: the edges each check draws.
tricky_values = (
    json_values
    | st.sampled_from([
        "", " ", "SKU-1\n", "a" * 64, "a" * 65, "x" * 512, "x" * 513, "\x00", "é" * 200, "😀", "USD", "usd", "US",
        "19.99", "19.999999", "1e3", "-1", "00019.9", "2026-11-01T12:00:00Z", "2026-11-01T12:00:00+02:00",
        "2026-11-01T12:00:00", "2026-11-01 12:00:00Z", "2026-11-01T12:00:00.123456789Z", "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+01:00", "RUNNING", "FAULT", "running", "status", "temperature", "pressure", "C", "kPa",
        "vibration", "current", "voltage", "flow", "g", "A", "V", "L/min", -273.15, -300,
        "inventory_update", "product_upsert", "8446F58B-DD96-4A06-8E30-EED2A756C321",
        "{8446f58b-dd96-4a06-8e30-eed2a756c321}", "8446f58bdd964a068e30eed2a756c321", "8446f58b-dd96-4a06-8e30-eed2a756c32",
        0, -0.0, 1.5, 2**31 - 1, 2**31, -1, 10**30, 1e308, True, None,
    ])
)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from([product(), stock(), reading(), reading(kind="pressure", value=101),
                        reading(kind="vibration", value=0.0), reading(kind="current", value=12),
                        reading(kind="voltage", value=400.5), reading(kind="flow", value=-0.5),
                        {**reading(), "kind": "status", "value": "FAULT"}]),
       st.dictionaries(st.sampled_from(sorted(set(product()) | set(stock()) | set(reading()))), tricky_values,
                       max_size=2),
       st.lists(st.sampled_from(sorted(set(product()) | set(reading()))), max_size=1))
def test_the_fast_path_decodes_exactly_as_the_thorough_checks(valid: dict, changes: dict, dropped: list) -> None:
    body = {k: v for k, v in {**valid, **changes}.items() if k not in dropped}
    data = json.dumps(body, ensure_ascii=False).encode()
    for workload in ("retail", "factory"):
        assert WORKLOADS[workload].decode(data) == WORKLOADS[workload].decode_thoroughly(data)


def test_the_fast_path_takes_valid_records_in_any_key_order() -> None:
    for body, workload in ((product(), "retail"), (stock(), "retail"), (reading(), "factory"), (status(), "factory")):
        shuffled = dict(reversed(list(body.items())))
        assert WORKLOADS[workload].decode(encode(shuffled)) == WORKLOADS[workload].decode(encode(body))
        assert not isinstance(WORKLOADS[workload].decode(encode(shuffled)), Poison)


def test_the_usual_records_take_the_fast_path() -> None:
    for body, workload in ((product(), "retail"), (stock(), "retail"), (reading(), "factory"),
                           (reading(kind="pressure", value=101), "factory"), (status(value="FAULT"), "factory"),
                           *((reading(kind=kind, value=1.5), "factory") for kind in records.UNITS)):
        fast = records._fast_retail if workload == "retail" else records._fast_factory
        assert fast(encode(body)) == WORKLOADS[workload].decode_thoroughly(encode(body))
