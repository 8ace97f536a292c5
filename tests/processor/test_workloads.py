"""The workload registry: every workload's contract, tables, sink and traffic in one place."""
from __future__ import annotations

import random

import pytest

from processor import records
from processor.records import Poison, SensorReading
from processor.samples import encode, product
from processor.sinks.factory import FactorySink
from processor.sinks.retail import RetailSink
from processor.traffic import FactoryTraffic, RetailTraffic
from processor.workloads import FACTORY, NAMES, RETAIL, WORKLOADS, UnknownWorkload, workload


def test_the_registry_holds_retail_and_factory_by_name() -> None:
    from stacks.workloads import WORKLOADS

    assert NAMES == WORKLOADS  # the processor's registry and the stacks' name the same workloads
    assert workload("retail") is RETAIL and workload("factory") is FACTORY


def test_an_unknown_workload_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownWorkload, match="unknown workload 'warehouse': expected one of retail, factory"):
        workload("warehouse")


def test_each_workload_builds_its_own_sink_and_traffic() -> None:
    assert type(RETAIL.sink()) is RetailSink and type(FACTORY.sink()) is FactorySink
    assert type(RETAIL.traffic(random.Random(1), 10)) is RetailTraffic
    assert type(FACTORY.traffic(random.Random(1), 10)) is FactoryTraffic


def test_each_workload_creates_only_its_own_tables() -> None:
    retail, factory = " ".join(RETAIL.tables), " ".join(FACTORY.tables)
    assert "products" in retail and "sensor_readings" not in retail
    assert "sensor_readings" in factory and "products" not in factory


def test_every_retail_type_has_a_fast_path_and_a_thorough_check_under_one_tag() -> None:
    fast_tags = {struct.__struct_config__.tag for struct in records._RETAIL_FAST}
    assert fast_tags == set(records.RETAIL_TYPES) == {"product_upsert", "inventory_update"}


def test_a_record_of_a_retail_type_nobody_declared_is_poison_naming_the_type() -> None:
    body = {**product(), "type": "price_change"}
    assert RETAIL.decode(encode(body)) == Poison("unknown retail record type 'price_change'")


def test_the_fast_path_reads_exactly_the_factory_kinds_the_checks_know() -> None:
    assert set(records._Kind.__args__) == {"status", *records.UNITS} == {
        "status", "temperature", "pressure", "vibration", "current", "voltage", "flow"}


def test_a_record_of_one_workload_is_poison_to_the_other() -> None:
    assert isinstance(FACTORY.decode(encode(product())), Poison)
    assert all(isinstance(WORKLOADS[name].decode(b"{}"), Poison) for name in NAMES)
    assert not isinstance(RETAIL.decode(encode(product())), (Poison, SensorReading))
