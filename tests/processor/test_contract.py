"""The wire contract (processor/contract/*.json) and the processor's decode give the same verdict.

Whatever the schema accepts the processor stores, and whatever the processor would dead-letter the
schema refuses: so an edge that validates against the schema (the supplier API's model) never lets
through a record the processor throws away for a reason the schema could have caught.
"""
from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from processor import contract
from processor.device_messages import envelope
from processor.records import DeviceMessage, Poison
from processor.samples import product, reading, status, stock
from processor.traffic import POISON, FactoryTraffic, Faults, RetailTraffic, generate
from processor.workloads import WORKLOADS

WORKLOAD_TYPES = {"retail": contract.RETAIL_RECORD_TYPES, "factory": contract.FACTORY_RECORD_TYPES}
VALIDATORS = {name: Draft4Validator(contract.schema(name)) for name in contract.SCHEMAS}
# The draft-4 keywords API Gateway models take that these schemas use; nothing else may creep in
# (`format` is ignored by API Gateway, `$ref` must be a model URL there, `const` and `if` are not draft 4).
API_GATEWAY_KEYWORDS = {"$schema", "title", "description", "type", "properties", "required", "additionalProperties",
                        "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "anyOf", "items",
                        "minItems", "maxItems"}


def schema_accepts(workload: str, body: object) -> bool:
    return any(VALIDATORS[name].is_valid(body) for name in WORKLOAD_TYPES[workload])


def decode_accepts(workload: str, data: bytes) -> bool:
    return not isinstance(WORKLOADS[workload].decode(data), Poison)


def keywords(node: object, found: set[str] | None = None) -> set[str]:
    found = set() if found is None else found
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            children = value.values() if key == "properties" else [value]
            for child in children:
                keywords(child, found)
    elif isinstance(node, list):
        for item in node:
            keywords(item, found)
    return found


@pytest.mark.parametrize("record_type", contract.SCHEMAS)
def test_each_record_type_has_a_draft_4_schema_in_the_subset_api_gateway_models_take(record_type: str) -> None:
    document = contract.schema(record_type)
    Draft4Validator.check_schema(document)
    assert document["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert document["title"] == record_type
    assert keywords(document) - API_GATEWAY_KEYWORDS - set(document["properties"]) == set()


@pytest.mark.parametrize("record_type", contract.SCHEMAS)
def test_every_pattern_is_anchored_at_both_ends_so_a_trailing_newline_never_passes(record_type: str) -> None:
    for field, spec in contract.schema(record_type)["properties"].items():
        if "pattern" in spec:
            assert spec["pattern"].startswith("^") and spec["pattern"].endswith(r"(?![\s\S])"), field


# Values a valid record's field may be swapped for: each check's edges, and values of every JSON type.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)
EDGES = [
    "", " ", "SKU-1\n", "\nSKU-1", "SKU-1 ", "-SKU", "_a", "a" * 64, "a" * 65, "x" * 128, "x" * 129, "x" * 512,
    "x" * 513, "\x00", "mug\x00", "\ud800", "\udfff", "é" * 200, "😀", "a\nb", "USD", "usd", "US", "USDX", "USD\n",
    "Kettl\ufffd", "\ufffd",  # what a decoder leaves for bytes that were not UTF-8
    "19.99", "19.999999", "19.9999", "1e3", "-1", "00019.9", "1234567890.1234", "12345678901", "19.", ".99", "١٩.٩٩",
    # timestamps: the forms RFC 3339 has, those fromisoformat takes beyond it, and the calendar's edges
    "2026-11-01T12:00:00Z", "2026-11-01T12:00:00+02:00", "2026-11-01T12:00:00-23:59", "2026-11-01T12:00:00",
    "2026-11-01 12:00:00Z", "2026-11-01T12:00:00.123456789Z", "2026-11-01T12:00:00.1234567890Z", "2026-11-01T12:00Z",
    "2026-11-01T12:00:00+0200", "2026-11-01T12:00:00+02", "2026-11-01T12:00:00,5Z", "2026-11-01T12:00:00.Z",
    "2026-11-01t12:00:00z", "2026-11-01T24:00:00Z", "2026-11-01T12:60:00Z", "2026-11-01T12:00:60Z",
    "2026-11-01T12:00:00+24:00", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2400-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
    "2026-04-30T00:00:00Z", "2026-12-31T23:59:59Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
    "2026-01-00T00:00:00Z", "0999-12-31T23:59:59Z", "1000-01-01T00:00:00+23:59", "9997-12-31T23:59:59-23:59",
    "9998-01-01T00:00:00Z", "9999-12-31T23:00:00Z", "0001-01-01T00:00:00+01:00", "20261101T120000Z",
    "2026-11-01T12:00:00Z\n", " 2026-11-01T12:00:00Z",
    # UUIDs: the canonical form in both cases, and the forms uuid.UUID also reads
    "8446F58B-DD96-4A06-8E30-EED2A756C321", "8446f58b-dd96-4a06-8e30-eed2a756c321",
    "{8446f58b-dd96-4a06-8e30-eed2a756c321}", "8446f58bdd964a068e30eed2a756c321", "8446f58b-dd96-4a06-8e30-eed2a756c32",
    "urn:uuid:8446f58b-dd96-4a06-8e30-eed2a756c321", "8446f58b-dd96-4a06-8e30-eed2a756c321\n",
    # kinds, units, statuses, types
    "RUNNING", "FAULT", "IDLE", "running", "status", "temperature", "pressure", "vibration", "current", "voltage",
    "flow", "humidity", "C", "F", "kPa", "g", "A", "V", "L/min", "inventory_update", "product_upsert", "price_change",
    # numbers
    0, -0.0, 0.0, 1, 1.5, -1, -1.5, 2**31 - 1, 2**31, 10**30, 1e308, -1e308, 1.7976931348623157e308,
    2**1024 - 2**971, 10**400, -(10**400), -273.15, -273.16, -300, 5.0, True, False, None, [], {}, ["FAULT"],
]
tricky_values = json_values | st.sampled_from(EDGES)
VALID = {
    "retail": [product(), stock(), {**product(), "supplier_id": "acme"}, stock(quantity=0),
               product(price="0.0001", name="x" * 512, category="c" * 128)],
    "factory": [reading(), reading(kind="pressure", value=-12), reading(kind="vibration", value=0.0),
                reading(kind="current", value=12), reading(kind="voltage", value=400.5),
                reading(kind="flow", value=1.5), reading(value=-273.15), status(), status(value="FAULT")],
}
FIELDS = sorted({*product(), *stock(), *reading(), "unit", "extra"})


def timestamps() -> st.SearchStrategy[str]:
    """RFC 3339 timestamps of any offset and precision, and a few ways to write them badly."""
    offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
    moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets)

    def write(moment: datetime, style: int) -> str:
        text = moment.isoformat(timespec=["seconds", "milliseconds", "microseconds", "minutes", "hours"][style % 5])
        return text.replace("+00:00", "Z") if style % 2 else text

    return st.builds(write, moments, st.integers(min_value=0, max_value=9))


@pytest.mark.parametrize("workload", ["retail", "factory"])
def test_the_processors_decode_and_the_schema_agree_on_every_edge_in_every_field(workload: str) -> None:
    disagreements = []
    for valid in VALID[workload]:
        for field in sorted({*valid, "unit", "supplier_id", "extra"}):
            for value in EDGES:
                data = json.dumps({**valid, field: value}).encode()
                if schema_accepts(workload, json.loads(data)) != decode_accepts(workload, data):
                    disagreements.append((valid.get("type") or valid["kind"], field, value))
    assert disagreements == []


@settings(max_examples=1500, deadline=None)
@given(workload=st.sampled_from(["retail", "factory"]), which=st.integers(min_value=0, max_value=20),
       changes=st.dictionaries(st.sampled_from(FIELDS), tricky_values | timestamps(), max_size=3),
       dropped=st.lists(st.sampled_from(FIELDS), max_size=1))
def test_the_processors_decode_and_the_schema_agree_on_generated_records(
        workload: str, which: int, changes: dict, dropped: list) -> None:
    valid = VALID[workload][which % len(VALID[workload])]
    body = {k: v for k, v in {**valid, **changes}.items() if k not in dropped}
    data = json.dumps(body).encode()  # ASCII with escapes: a lone surrogate travels as JSON allows
    parsed = json.loads(data)
    assert schema_accepts(workload, parsed) == decode_accepts(workload, data), WORKLOADS[workload].decode(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["retail", "factory"]), json_values)
def test_anything_that_is_not_a_record_object_is_refused_by_both(workload: str, value: object) -> None:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in FIELDS}
    data = json.dumps(value).encode()
    assert not schema_accepts(workload, json.loads(data))
    assert not decode_accepts(workload, data)


@pytest.mark.parametrize(("workload", "body", "accepted"), [
    ("retail", stock(), True),
    ("retail", {**stock(), "sku": "SKU-1\n"}, False),
    ("retail", {**stock(), "updated_at": "2023-02-29T00:00:00Z"}, False),  # no such day
    ("retail", {**stock(), "updated_at": "2024-02-29T00:00:00Z"}, True),
    ("retail", {**stock(), "updated_at": "2026-11-01T12:00Z"}, False),  # fromisoformat reads it; RFC 3339 has seconds
    ("retail", {**stock(), "event_id": "{8446f58b-dd96-4a06-8e30-eed2a756c321}"}, False),
    ("retail", {**product(), "supplier_id": "acme"}, True),
    ("retail", {**product(), "supplier_id": None}, False),
    ("retail", {**stock(), "note": "fields the contract does not name are ignored"}, True),
    ("factory", reading(), True),
    ("factory", {**reading(), "value": 10**400}, False),
    ("factory", {**reading(), "unit": "F"}, False),
    ("factory", {**status(), "unit": "whatever"}, True),
])
def test_examples_of_the_shared_verdict(workload: str, body: dict, accepted: bool) -> None:
    data = json.dumps(body).encode()
    assert schema_accepts(workload, json.loads(data)) is accepted
    assert decode_accepts(workload, data) is accepted


@pytest.mark.parametrize(("workload", "source"), [("retail", RetailTraffic), ("factory", FactoryTraffic)])
def test_the_traffic_generators_valid_records_meet_the_contract_and_its_poison_does_not(workload: str, source: type) -> None:
    sent = list(generate(lambda rng, _sensors: source(rng), 400, faults=Faults(poison=0.05, duplicates=0.05),
                         seed=3, start=datetime(2026, 11, 1, tzinfo=UTC)))
    poison = set(POISON)
    for _key, payload in sent:
        if payload in poison:
            assert not decode_accepts(workload, payload)
            continue
        assert schema_accepts(workload, json.loads(payload)), payload


# -- a device's message: the rule's record (device_record) around what the device sent (device_message)
def message_accepted_by_schemas(record: object) -> bool:
    """The rule's record valid, and the message it carries: the verdict of both schemas."""
    if not VALIDATORS["device_record"].is_valid(record):
        return False
    assert isinstance(record, dict)
    try:
        message = json.loads(base64.b64decode(record["payload"]))
    except ValueError:  # not UTF-8 JSON: no schema's document at all
        return False
    return VALIDATORS["device_message"].is_valid(message)


def message_stored_whole(data: bytes) -> bool:
    decoded = WORKLOADS["factory"].decode(data)
    return isinstance(decoded, DeviceMessage) and decoded.refusal is None


def test_a_devices_reading_is_a_sensor_reading_whose_line_and_sensor_the_topic_may_name_instead() -> None:
    item = contract.schema("device_message")["properties"]["readings"]["items"]
    reading_schema = contract.schema("sensor_reading")
    for field in ("$schema", "title", "description"):
        reading_schema.pop(field)
    reading_schema["required"] = [f for f in reading_schema["required"] if f not in ("line_id", "sensor_id")]
    for field in ("line_id", "sensor_id"):  # only their descriptions differ
        item["properties"][field].pop("description")
        reading_schema["properties"][field].pop("description")
    assert item == reading_schema


@settings(max_examples=1000, deadline=None)
@given(readings=st.lists(st.tuples(st.integers(min_value=0, max_value=20),
                                   st.dictionaries(st.sampled_from(FIELDS), tricky_values | timestamps(), max_size=2),
                                   st.lists(st.sampled_from(FIELDS), max_size=1)), max_size=3),
       outer=st.dictionaries(st.sampled_from(["line_id", "sensor_id", "received_at_ms", "extra"]), tricky_values,
                             max_size=1))
def test_the_processors_decode_and_the_schemas_agree_on_generated_device_messages(
        readings: list, outer: dict) -> None:
    # readings of the topic's own line and sensor (or naming none), changed as the records above are
    own = {"line_id": "line-1", "sensor_id": "temp-1-00"}
    bodies = []
    for which, changes, dropped in readings:
        valid = {**VALID["factory"][which % len(VALID["factory"])], **own}
        # naming another line or sensor than the topic's is refused, which no schema can say: left out
        bodies.append({k: v for k, v in {**valid, **changes}.items() if k not in dropped and
                       not (k in own and (outer.keys() & own.keys() or k in changes and changes[k] != own[k]))})
    payload = json.dumps({"readings": bodies}).encode()
    # received after every reading the schema allows (years to 9997): a reading dated more than 5 minutes after
    # IoT received its message is refused, which no schema can say (it compares two fields of two documents)
    record = {**json.loads(envelope("line-1", "temp-1-00", payload, AFTER_EVERY_READING_MS)), **outer}
    data = json.dumps(record).encode()
    accepted, decoded = message_accepted_by_schemas(json.loads(data)), WORKLOADS["factory"].decode(data)
    if accepted and "received_at_ms" in outer and isinstance(decoded, DeviceMessage) and decoded.refusal:
        assert only_dated_after_receipt(decoded.refusal.reason), decoded  # another receipt time: that refusal only
    else:
        assert accepted == message_stored_whole(data), decoded


AFTER_EVERY_READING_MS = int(datetime(9998, 1, 1, tzinfo=UTC).timestamp() * 1000)


def only_dated_after_receipt(reason: str) -> bool:
    """Whether each reading a device message's dead letter names is refused for its date alone."""
    named = reason.split(" readings refused: ", 1)[1].split("; and ")[0].split("; [")
    return all(item.split("] ", 1)[1].endswith("minutes after IoT received the message") for item in named)


@pytest.mark.parametrize("payload", ["", "e30", "e30=", "e3=0", "e 30=", "!!!!", "eyJyZWFkaW5ncyI6W119", "\u00e930="])
def test_a_payload_that_is_not_canonical_base64_is_refused_by_both(payload: str) -> None:
    record = {**json.loads(envelope("line-1", "temp-1-00", b"{}", 0)), "payload": payload}
    data = json.dumps(record).encode()
    assert message_accepted_by_schemas(json.loads(data)) is False
    assert message_stored_whole(data) is False
