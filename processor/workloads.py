"""The workloads the processor knows, each in one place: its wire contract, its tables, its
sink and its traffic.

Everything in `processor/` that differs by workload asks this registry; nothing branches
on a workload's name. An unknown name is an error (`UnknownWorkload`), never a fall-through
to another workload's behaviour. Adding a workload = one `Workload(...)` here plus the
modules it names.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from processor import schema
from processor.records import FACTORY_RECORDS, RETAIL_RECORDS, Record, WireContract
from processor.sinks import Sink
from processor.traffic import FactoryTraffic, RetailTraffic, TrafficSource, generate


class UnknownWorkload(ValueError):
    """A workload name the registry does not hold."""


@dataclass(frozen=True)
class Workload:
    name: str
    records: WireContract
    tables: Sequence[str]  # created after schema.COMMON, idempotently
    grants: schema.Grants  # the application role's DML on them
    make_sink: Callable[[Any, Any], Sink]  # (Redis client or None, processor.config.ProcessorConfig or None)
    traffic: Callable[[random.Random, int], TrafficSource]  # (seeded rng, sensors)

    @property
    def decode(self) -> Callable[[bytes], Record]:
        """The record a payload holds, or a Poison naming its fault (records.WireContract)."""
        return self.records.decode

    def decode_thoroughly(self, data: bytes) -> Record:
        return self.records.decode_thoroughly(data)

    def migrate(self, conn: Any, app_user: str | None = None) -> None:
        """The schema (run with the master credentials); with `app_user`, the application role
        the processor connects as, holding exactly `grants`."""
        schema.migrate(conn, self.tables, self.name, self.grants, app_user)

    def sink(self, redis_client: Any = None, settings: Any = None) -> Sink:
        """The workload's sink; without `settings` (tests), its defaults and no outside services."""
        return self.make_sink(redis_client, settings)

    def generate(self, count: int, **options: Any) -> Iterator[tuple[str, bytes]]:
        """Seeded, realistic (partition key, payload) pairs (processor/traffic.py `generate`)."""
        return generate(self.traffic, count, **options)


def _retail_sink(redis_client: Any, settings: Any) -> Sink:
    from processor.sinks.retail import RetailSink

    return RetailSink.from_settings(redis_client, settings)


def _factory_sink(redis_client: Any, settings: Any) -> Sink:
    from processor.sinks.factory import FactorySink

    return FactorySink.from_settings(redis_client, settings)


RETAIL = Workload("retail", RETAIL_RECORDS, schema.RETAIL_TABLES, schema.RETAIL_GRANTS, _retail_sink,
                  lambda rng, sensors: RetailTraffic(rng))
FACTORY = Workload("factory", FACTORY_RECORDS, schema.FACTORY_TABLES, schema.FACTORY_GRANTS, _factory_sink,
                   lambda rng, sensors: FactoryTraffic(rng, sensors))

WORKLOADS: Mapping[str, Workload] = {w.name: w for w in (RETAIL, FACTORY)}
NAMES = tuple(WORKLOADS)


def workload(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise UnknownWorkload(f"unknown workload {name!r}: expected one of {', '.join(NAMES)}") from None
