"""The demo's suppliers (localdev/suppliers.py): what of the retail traffic they send as records, and as poison."""
from __future__ import annotations

import json

from localdev.suppliers import split
from processor.samples import product, stock
from processor.traffic import POISON


def test_a_contract_record_is_sent_in_its_types_array_without_the_fields_the_api_stamps() -> None:
    record = stock("SKU-9", "SUP-3", 4)
    array, sent = split(json.dumps(record).encode())
    assert array == "inventory_updates"
    assert sent == {k: v for k, v in record.items() if k not in ("type", "supplier_id")}
    assert split(json.dumps(product("SKU-8")).encode())[0] == "product_upserts"


def test_every_poison_payload_of_the_traffic_is_sent_as_a_body_of_its_own() -> None:
    assert [split(payload) for payload in POISON] == [None] * len(POISON)
