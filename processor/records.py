"""Decode and validate one Kinesis record: pure, no I/O, testable without servers.

Anything that does not match the wire contract becomes a `Poison` with a reason; it
never raises, so one bad record can never stop a shard.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal, Union

import msgspec

from processor import contract

# The wire contract's patterns (processor/contract/*.json), anchored at both ends there: a
# pattern's match() is a whole-string match, and a trailing newline never gets through.
_KEY = re.compile(contract.pattern("inventory_update", "sku"))
_CURRENCY = re.compile(contract.pattern("product_upsert", "currency"))
_PRICE = re.compile(contract.pattern("product_upsert", "price"))
_CANONICAL_UUID = re.compile(contract.pattern("inventory_update", "event_id"))
_BASE64 = re.compile(contract.pattern("device_record", "payload"))
# RFC 3339 with an offset, a real calendar date and a year from 1000 to 9997 (so that any
# offset keeps it a datetime in UTC, and the month after it a partition's upper bound).
_TIMESTAMP = re.compile(contract.pattern("inventory_update", "updated_at"))
MIN_WRITTEN_YEAR, MAX_WRITTEN_YEAR = 1000, 9997
# PostgreSQL text cannot hold NUL, and lone surrogates are not valid UTF-8: JSON allows
# both as escapes, so they must be caught here rather than fail a whole batch later.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# U+FFFD is what a decoder leaves where bytes were not UTF-8 (a supplier's latin-1 body read by
# the API): the text it stands for is already lost, so a record holding it is refused, not stored.
_LOST = "\ufffd"
_REFUSED_TEXT = re.compile("[\x00\ud800-\udfff\ufffd]")  # either, in one search (the fast path)
MAX_QUANTITY = 2**31 - 1
MAX_YEAR = 9998  # the month after must still be a datetime (a partition's upper bound)
STATUSES = frozenset({"RUNNING", "IDLE", "FAULT"})


@dataclass(frozen=True)
class Quantity:
    """What a numeric sensor kind measures: its one unit, the range a reading can take, and what
    a healthy sensor of the kind typically reads (the traffic generator's baseline, processor/traffic.py)."""

    unit: str
    typical: float  # a healthy sensor's level, in `unit`
    noise: float  # a healthy sensor's spread around it, in `unit`
    minimum: float | None = None  # None: no floor (a gauge pressure may be negative)
    maximum: float | None = None  # None: no ceiling
    why: str = ""  # why nothing outside [minimum, maximum] is a reading

    def refusal(self, value: float) -> str | None:
        """Why `value` is no reading of this kind (`below 0 (...)`), or None."""
        if self.minimum is not None and value < self.minimum:
            return f"below {self.minimum:g} ({self.why})"
        if self.maximum is not None and value > self.maximum:
            return f"above {self.maximum:g} ({self.why})"
        return None


# The factory's sensor kinds. One unit each: the processor stores and compares values as
# sent, so a reading in another unit is poison, never converted.
QUANTITIES = {
    "temperature": Quantity("C", 70.0, 0.5, -273.15, why="below absolute zero"),
    "pressure": Quantity("kPa", 300.0, 2.0),  # gauge pressure: below atmospheric is negative
    "vibration": Quantity("g", 0.25, 0.01, 0.0, why="an RMS value is never negative"),  # RMS acceleration
    "current": Quantity("A", 12.0, 0.2, 0.0, why="an RMS value is never negative"),
    "voltage": Quantity("V", 400.0, 1.5, 0.0, why="an RMS value is never negative"),
    "flow": Quantity("L/min", 120.0, 1.0, 0.0, why="a flow meter reports a rate, never negative"),
}
UNITS = {kind: q.unit for kind, q in QUANTITIES.items()}


# Plain slotted dataclasses: a frozen one is built through object.__setattr__ field by
# field, ~8x slower (1.7 us of a ~9 us decode). Nothing mutates a record once decoded.
@dataclass(slots=True)
class ProductUpsert:
    event_id: str
    sku: str
    name: str
    category: str
    price: Decimal
    currency: str
    updated_at: datetime


@dataclass(slots=True)
class InventoryUpdate:
    event_id: str
    sku: str
    supplier_id: str
    quantity: int
    updated_at: datetime


@dataclass(slots=True)
class SensorReading:
    event_id: str
    sensor_id: str
    line_id: str
    kind: str  # a key of UNITS, or status
    value: float | None  # numeric kinds
    status: str | None  # status kind
    unit: str | None
    ts: datetime


@dataclass(frozen=True, slots=True)
class Poison:
    reason: str


@dataclass(slots=True)
class DeviceMessage:
    """A device's message through the IoT rule (contract: device_record): the readings that pass,
    and, if any was refused, the dead letter the whole record also becomes (None if none was)."""

    line_id: str
    sensor_id: str
    readings: list[SensorReading]
    refusal: Poison | None = None


Record = ProductUpsert | InventoryUpdate | SensorReading | DeviceMessage | Poison


class _Invalid(Exception):
    pass


def _str(obj: dict, field: str, pattern: re.Pattern[str] | None = None, max_len: int = 256) -> str:
    value = obj.get(field)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise _Invalid(f"{field} must be a non-empty string of at most {max_len} characters")
    if pattern is not None and not pattern.match(value):
        raise _Invalid(f"{field} {value[:40]!r} has an invalid format")
    if pattern is None and _UNSTORABLE.search(value):
        raise _Invalid(f"{field} contains NUL or an unpaired surrogate")
    if pattern is None and _LOST in value:
        raise _Invalid(f"{field} contains U+FFFD, the mark of text lost to a decode of bytes that were not UTF-8")
    return value


def _event_id(obj: dict) -> str:
    value = obj.get("event_id")
    if not isinstance(value, str):
        raise _Invalid("event_id must be a UUID string")
    if not _CANONICAL_UUID.match(value):  # the contract's one form: 8-4-4-4-12 hex digits
        raise _Invalid("event_id must be a UUID string")
    return value.lower()


def _timestamp(obj: dict, field: str) -> datetime:
    return _utc(obj.get(field), field)


def _utc(value: object, field: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40 or "T" not in value:
        raise _Invalid(f"{field} must be an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"{field} must be an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise _Invalid(f"{field} must carry a UTC offset")
    if not MIN_WRITTEN_YEAR <= parsed.year <= MAX_WRITTEN_YEAR:
        raise _Invalid(f"{field} is out of range")
    if not _TIMESTAMP.match(value):  # what fromisoformat takes beyond RFC 3339 (no seconds, +0200, ...)
        raise _Invalid(f"{field} must be an RFC 3339 timestamp")
    if parsed.tzinfo is UTC:  # "Z" and "+00:00": already UTC
        utc = parsed
    else:
        try:
            utc = parsed.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise _Invalid(f"{field} is out of range") from None
    if utc.year > MAX_YEAR:
        raise _Invalid(f"{field} is out of range")
    return utc


def _product(obj: dict) -> ProductUpsert:
    price_text = obj.get("price")
    if not isinstance(price_text, str) or not _PRICE.match(price_text):
        raise _Invalid("price must be a decimal string such as \"19.99\"")
    try:
        price = Decimal(price_text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        raise _Invalid("price must be a decimal string") from None
    if "supplier_id" in obj:  # optional: who sent the change (the supplier API stamps it); not stored
        _str(obj, "supplier_id", _KEY)
    return ProductUpsert(
        event_id=_event_id(obj), sku=_str(obj, "sku", _KEY), name=_str(obj, "name", max_len=512),
        category=_str(obj, "category", max_len=128), price=price,
        currency=_str(obj, "currency", _CURRENCY), updated_at=_timestamp(obj, "updated_at"),
    )


def _stock(obj: dict) -> InventoryUpdate:
    quantity = obj.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 <= quantity <= MAX_QUANTITY:
        raise _Invalid("quantity must be a non-negative integer")
    return InventoryUpdate(
        event_id=_event_id(obj), sku=_str(obj, "sku", _KEY), supplier_id=_str(obj, "supplier_id", _KEY),
        quantity=quantity, updated_at=_timestamp(obj, "updated_at"),
    )


# Retail record types by their `type` tag. A new type goes here and into _RETAIL_FAST
# below (tests/processor/test_records.py checks the two agree); any other tag is poison.
RETAIL_TYPES = {"product_upsert": _product, "inventory_update": _stock}


def _decode_retail(obj: dict) -> Record:
    kind = obj.get("type")
    check = RETAIL_TYPES.get(kind) if isinstance(kind, str) else None
    if check is None:
        raise _Invalid(f"unknown retail record type {str(kind)[:40]!r}")
    return check(obj)


def _finite(value: int | float) -> bool:
    """Within float range, compared exactly (an integer just past the largest float would round to it)."""
    return -sys.float_info.max <= value <= sys.float_info.max  # False for NaN and the infinities


def _decode_factory(obj: dict) -> Record:
    if "payload" in obj and "kind" not in obj:  # the IoT rule's record: a device's message
        return _decode_device_record(obj)
    return _decode_reading(obj)


# The fields the IoT rule's SQL writes (pipeline_lib/iot_ingest.py rule_sql), and no others.
DEVICE_RECORD_FIELDS = frozenset(contract.schema("device_record")["required"])
MAX_REFUSALS_NAMED = 5  # a dead letter names this many refused readings, then counts the rest
# How far ahead of IoT's receipt of its message (received_at_ms, IoT's own clock) a device's reading may be
# dated: a device clock's drift. Later is a clock that is wrong (an RTC reset to 2036 is common), and such a
# reading would stay its sensor's latest value for good and make a partition for each month it names.
MAX_AHEAD_OF_RECEIPT_MS = 5 * 60 * 1000


def _decode_device_record(obj: dict) -> DeviceMessage:
    """The rule's envelope checked as the contract says, then each reading of the message as a
    reading sent on its own, its line and sensor the topic's: a reading that names another is
    refused. The readings that pass are kept; the refused ones are named by position."""
    if set(obj) != DEVICE_RECORD_FIELDS:
        raise _Invalid(f"device record must have exactly {', '.join(sorted(DEVICE_RECORD_FIELDS))}")
    line, sensor = _str(obj, "line_id", _KEY), _str(obj, "sensor_id", _KEY)
    received = obj["received_at_ms"]
    if not isinstance(received, int) or isinstance(received, bool) or received < 0:
        raise _Invalid("received_at_ms must be a non-negative integer")
    where = f"device message from {line}/{sensor}"
    payload = obj["payload"]
    if not isinstance(payload, str) or not _BASE64.match(payload):
        raise _Invalid(f"{where}: payload is not base64")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (ValueError, binascii.Error):
        raise _Invalid(f"{where}: payload is not base64") from None
    if not raw:
        raise _Invalid(f"{where}: empty message")  # MQTT allows a PUBLISH without a payload; IoT passes it on
    try:
        body = _parse(raw)
    except (ValueError, RecursionError):
        raise _Invalid(f"{where}: not UTF-8 JSON") from None
    readings = body.get("readings") if isinstance(body, dict) else None
    if not isinstance(readings, list):
        raise _Invalid(f"{where}: not a JSON object with a readings list")
    if not readings:
        raise _Invalid(f"{where}: no readings")
    message, refused = DeviceMessage(line, sensor, []), []
    for index, reading in enumerate(readings):
        try:
            decoded = _device_reading(reading, line, sensor)
            if decoded.ts.timestamp() * 1000 > received + MAX_AHEAD_OF_RECEIPT_MS:
                raise _Invalid(f"ts {decoded.ts.isoformat()} is more than {MAX_AHEAD_OF_RECEIPT_MS // 60_000} "
                               "minutes after IoT received the message")
            message.readings.append(decoded)
        except _Invalid as invalid:
            refused.append(f"[{index}] {invalid}")
    if refused:
        more = len(refused) - MAX_REFUSALS_NAMED
        shown = "; ".join(refused[:MAX_REFUSALS_NAMED]) + (f"; and {more} more" if more > 0 else "")
        message.refusal = Poison(f"{where}: {len(refused)} of {len(readings)} readings refused: {shown}")
    return message


def _device_reading(reading: object, line: str, sensor: str) -> SensorReading:
    if not isinstance(reading, dict):
        raise _Invalid("not a JSON object")
    for field, own in (("line_id", line), ("sensor_id", sensor)):
        claimed = reading.get(field, own)
        if claimed != own:
            shown = repr(claimed[:40]) if isinstance(claimed, str) else "not text"
            raise _Invalid(f"names {field} {shown}, but its topic is {own}'s")
    return _decode_reading({**reading, "line_id": line, "sensor_id": sensor})


def _decode_reading(obj: dict) -> SensorReading:
    kind = obj.get("kind")
    event_id, sensor_id = _event_id(obj), _str(obj, "sensor_id", _KEY)
    line_id, ts = _str(obj, "line_id", _KEY), _timestamp(obj, "ts")
    value = obj.get("value")
    if kind == "status":
        if not isinstance(value, str) or value not in STATUSES:
            raise _Invalid(f"status value must be one of {', '.join(sorted(STATUSES))}")
        return SensorReading(event_id, sensor_id, line_id, "status", None, value, None, ts)
    quantity = QUANTITIES.get(kind) if isinstance(kind, str) else None
    if quantity is None:
        raise _Invalid(f"unknown sensor kind {str(kind)[:40]!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not _finite(value):
        raise _Invalid(f"{kind} value must be a finite number")
    unit = obj.get("unit")
    if unit != quantity.unit:
        shown = repr(unit[:20]) if isinstance(unit, str) else "missing" if unit is None else "not text"
        raise _Invalid(f"{kind} unit must be {quantity.unit} (got {shown})")
    refusal = quantity.refusal(value)
    if refusal is not None:
        raise _Invalid(f"{kind} value {float(value):g} {quantity.unit} is {refusal}")
    return SensorReading(event_id, sensor_id, line_id, kind, float(value), None, quantity.unit, ts)


_fast_parse = msgspec.json.Decoder().decode


def _parse(data: bytes | str) -> object:
    """json.loads(data), in about half the time on the usual record.

    msgspec parses into plain dicts and lists as json.loads does, from the bytes, UTF-8
    checked on the way. The few things it refuses that json.loads takes (NaN, Infinity,
    numbers beyond float range, unpaired surrogate escapes) go to json.loads, so that the
    checks below decide them and the poison record says what is really wrong with it.
    """
    try:
        return _fast_parse(data)
    except ValueError:
        return json.loads(data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data,
                          parse_int=_json_int)


def _json_int(text: str) -> int | float:
    """A JSON integer; one of more digits than int() takes (sys.get_int_max_str_digits, 4300) is far past
    float range, so it is the infinity float() makes of it: the checks refuse it as a number, where
    int()'s ValueError read as a record that is not JSON at all."""
    try:
        return int(text)
    except ValueError:
        return float(text)


# The fast path. msgspec checks the shape of the usual record in C, straight from the
# bytes (~2 us, against ~4 us for the checks above on a parsed dict); the few checks
# it cannot express follow in Python. It accepts a subset of what the checks above
# accept and builds the same record from it: anything it refuses (a poison record, or
# a valid one in an unusual form, such as a UUID in braces) goes through
# `decode_thoroughly`, which decides and says why.
# tests/processor/test_records.py checks both paths agree on fuzzed input.
def _matching(pattern: re.Pattern[str]) -> msgspec.Meta:
    return msgspec.Meta(pattern=pattern.pattern)  # anchored at both ends by the contract


_Key = Annotated[str, _matching(_KEY)]
_Kind = Literal.__getitem__(("status", *UNITS))  # every kind the thorough checks know
_Uuid = Annotated[str, _matching(_CANONICAL_UUID)]


class _Product(msgspec.Struct, tag_field="type", tag="product_upsert"):
    event_id: _Uuid
    sku: _Key
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    price: Annotated[str, _matching(_PRICE)]
    currency: Annotated[str, _matching(_CURRENCY)]
    updated_at: str
    supplier_id: _Key | msgspec.UnsetType = msgspec.UNSET  # optional; an explicit null goes to the thorough checks


class _Stock(msgspec.Struct, tag_field="type", tag="inventory_update"):
    event_id: _Uuid
    sku: _Key
    supplier_id: _Key
    quantity: Annotated[int, msgspec.Meta(ge=0, le=MAX_QUANTITY)]
    updated_at: str


class _Reading(msgspec.Struct):
    event_id: _Uuid
    sensor_id: _Key
    line_id: _Key
    kind: _Kind
    value: float | str
    ts: str
    unit: str | None = None


def _fast_product(r: _Product) -> ProductUpsert:
    if _REFUSED_TEXT.search(r.name) or _REFUSED_TEXT.search(r.category):
        raise _Invalid("unstorable text")
    return ProductUpsert(r.event_id.lower(), r.sku, r.name, r.category, Decimal(r.price), r.currency,
                         _utc(r.updated_at, "updated_at"))


def _fast_stock(r: _Stock) -> InventoryUpdate:
    return InventoryUpdate(r.event_id.lower(), r.sku, r.supplier_id, r.quantity, _utc(r.updated_at, "updated_at"))


# The fast path's retail types: the struct msgspec checks, and what builds the record from it.
_RETAIL_FAST: dict[type, Callable] = {_Product: _fast_product, _Stock: _fast_stock}
_read_retail = msgspec.json.Decoder(Union[tuple(_RETAIL_FAST)]).decode  # noqa: UP007 - built from the table
_read_reading = msgspec.json.Decoder(_Reading).decode


def _fast_retail(data: bytes) -> Record:
    r = _read_retail(data)
    return _RETAIL_FAST[type(r)](r)


def _fast_factory(data: bytes) -> Record:
    r = _read_reading(data)
    ts = _utc(r.ts, "ts")
    if r.kind == "status":
        if r.value not in STATUSES:
            raise _Invalid("status")
        return SensorReading(r.event_id.lower(), r.sensor_id, r.line_id, "status", None, r.value, None, ts)
    quantity = QUANTITIES[r.kind]
    if type(r.value) is not float or r.unit != quantity.unit or quantity.refusal(r.value) is not None:
        raise _Invalid("value or unit")
    return SensorReading(r.event_id.lower(), r.sensor_id, r.line_id, r.kind, r.value, None, r.unit, ts)


class WireContract:
    """One workload's wire contract: the fast path for the usual record, and the thorough
    checks, which decide whatever the fast path refuses and name the fault."""

    def __init__(self, fast: Callable[[bytes], Record], thorough: Callable[[dict], Record]) -> None:
        self._fast, self._thorough = fast, thorough
        slow = self.decode_thoroughly

        # A plain function with its callees bound as locals: `decode` runs once per record,
        # and a method's attribute lookups would cost more than the fast path saves.
        def decode(data: bytes, _fast: Callable[[bytes], Record] = fast) -> Record:
            """The record `data` holds, or a Poison saying what is wrong with it."""
            try:
                return _fast(data)
            except (ValueError, RecursionError, _Invalid):  # msgspec's errors are ValueErrors
                return slow(data)

        self.decode = decode

    def decode_thoroughly(self, data: bytes) -> Record:
        """`decode` without the fast path: every check in Python, one at a time, so that the
        poison record names the first that fails."""
        try:
            obj = _parse(data)
        except (ValueError, RecursionError):  # msgspec.DecodeError and UnicodeDecodeError are ValueErrors
            return Poison("not UTF-8 JSON")
        if not isinstance(obj, dict):
            return Poison("not a JSON object")
        try:
            return self._thorough(obj)
        except _Invalid as invalid:
            return Poison(str(invalid))


RETAIL_RECORDS = WireContract(_fast_retail, _decode_retail)
FACTORY_RECORDS = WireContract(_fast_factory, _decode_factory)
