"""The wire contract, published once: a JSON Schema per record type, in the draft-4 subset that
API Gateway models accept (docs/contract.md).

`<record type>.json` beside this file is the one place a record's shape is written down. The
processor's decode (processor/records.py) takes its patterns from here; the supplier API's
request model is built from here (pipeline_lib/supplier_api.py); a property test holds the
decode and these schemas to the same verdict on generated records
(tests/processor/test_contract.py).

Standard library only: pipeline_lib and the processor image both read it.
"""
from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# Each workload's record types, by the name of their schema file. The factory's stream carries a
# reading put by a producer with AWS credentials, or a device's message as the IoT rule wraps it.
RETAIL_RECORD_TYPES = ("inventory_update", "product_upsert")
FACTORY_RECORD_TYPES = ("sensor_reading", "device_record")
RECORD_TYPES = RETAIL_RECORD_TYPES + FACTORY_RECORD_TYPES
# What is not a stream record but travels inside one: a sensor's MQTT message (a device_record's payload).
MESSAGE_TYPES = ("device_message",)
SCHEMAS = RECORD_TYPES + MESSAGE_TYPES


@cache
def _load(record_type: str) -> dict[str, Any]:
    if record_type not in SCHEMAS:
        raise KeyError(f"no record type {record_type!r} in the contract; expected one of {', '.join(SCHEMAS)}")
    return json.loads((HERE / f"{record_type}.json").read_text(encoding="utf-8"))


def schema(record_type: str) -> dict[str, Any]:
    """The record type's JSON Schema (a copy: the caller may change it)."""
    return copy.deepcopy(_load(record_type))


def path(record_type: str) -> Path:
    """Where the record type's schema file is (for docs and tools that publish it)."""
    _load(record_type)
    return HERE / f"{record_type}.json"


def pattern(record_type: str, field: str) -> str:
    """The regular expression a string field must match: anchored at both ends, in the syntax
    ECMA 262, Java and Python share (`(?![\\s\\S])` is the end of the string: `$` also matches
    before a final newline in Python and Java)."""
    return _load(record_type)["properties"][field]["pattern"]


def max_length(record_type: str, field: str) -> int:
    return _load(record_type)["properties"][field]["maxLength"]


LONGEST_SHOWN = 80  # characters of a caller's value that a refusal repeats


def shown(value: str) -> str:
    """A caller's text as a refusal at the edge names it: quoted, anything outside ASCII spelt out (a Cyrillic
    'А' in a SKU reads `'SKU-\\u0410'`, an invisible character shows what it is), and cut to LONGEST_SHOWN
    characters with its length when longer, so a refusal never repeats a caller's megabyte."""
    if len(value) <= LONGEST_SHOWN:
        return ascii(value)
    return f"{ascii(value[:LONGEST_SHOWN])}... ({len(value)} characters)"
