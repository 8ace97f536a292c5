"""The traffic generator: realistic, seeded, and faults injected at the rates asked for."""
from __future__ import annotations

import collections
import itertools
import json

import pytest

from processor.produce import MAX_ENTRIES, batches
from processor.records import UNITS, InventoryUpdate, Poison, ProductUpsert, SensorReading
from processor.samples import T0
from processor.traffic import Faults, Labels
from processor.workloads import FACTORY, RETAIL, WORKLOADS


def test_the_same_seed_and_start_give_the_same_stream() -> None:
    faults = Faults(reorder=0.1, duplicates=0.1)
    first = list(FACTORY.generate(200, seed=3, faults=faults, start=T0))
    assert first == list(FACTORY.generate(200, seed=3, faults=faults, start=T0))
    assert first != list(FACTORY.generate(200, seed=4, start=T0))


def test_clean_retail_traffic_is_all_valid_and_skewed_towards_hot_products() -> None:
    records = [RETAIL.decode(data) for _, data in RETAIL.generate(5000, seed=1)]
    assert all(isinstance(r, (ProductUpsert, InventoryUpdate)) for r in records)
    products = sum(isinstance(r, ProductUpsert) for r in records)
    assert 300 < products < 700  # about one in ten
    top = collections.Counter(r.sku for r in records).most_common(10)
    assert sum(n for _, n in top) > 5000 * 0.1  # ten of 5,000 SKUs get over a tenth of the updates


def test_clean_factory_traffic_covers_every_sensor_kind_in_its_unit_and_is_all_valid() -> None:
    labels = Labels()
    records = [FACTORY.decode(data) for _, data in FACTORY.generate(
        5000, seed=5, faults=Faults(anomalies=0.05), labels=labels, sensors=70)]
    assert all(isinstance(r, SensorReading) for r in records)  # spikes included: none below a physical floor
    assert {r.kind for r in records} == {"status", *UNITS}
    assert all(r.unit == UNITS[r.kind] for r in records if r.kind != "status")
    assert len(labels.anomalies) > 150


def test_partition_keys_follow_the_wire_contract() -> None:
    for workload, field in (("retail", "sku"), ("factory", "sensor_id")):
        for key, data in WORKLOADS[workload].generate(100, seed=2):
            assert key == json.loads(data)[field]


def test_injected_faults_arrive_at_about_the_asked_rates_and_are_labelled() -> None:
    labels = Labels()
    out = list(FACTORY.generate(10_000, seed=5, labels=labels,
                        faults=Faults(duplicates=0.02, reorder=0.05, poison=0.01, anomalies=0.01)))
    decoded = [FACTORY.decode(data) for _, data in out]
    poison = sum(isinstance(r, Poison) for r in decoded)
    assert len(out) == 10_000 + labels.duplicates
    assert 150 < labels.duplicates < 250 and 50 < labels.poison < 150
    assert poison >= labels.poison  # duplicates of poison are poison too
    valid = [r for r in decoded if isinstance(r, SensorReading)]
    assert labels.anomalies <= {r.event_id for r in valid}
    late = sum(1 for a, b in itertools.pairwise(valid) if b.ts < a.ts)
    assert late > 100  # reordering really happened


def test_bad_shares_are_refused() -> None:
    with pytest.raises(ValueError, match="poison must be a share between 0 and 1"):
        Faults(poison=1.5)


def test_put_records_batches_respect_the_entry_limit() -> None:
    sizes = [len(b) for b in batches(RETAIL.generate(1234, seed=0))]
    assert sizes == [MAX_ENTRIES, MAX_ENTRIES, 234]
