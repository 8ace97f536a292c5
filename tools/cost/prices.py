"""The pinned price table (`prices.toml`): dated, per region, and strict about what it lacks."""
from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TABLE = Path(__file__).with_name("prices.toml")


class PriceError(KeyError):
    """The table has no price for what is asked; the message names the key and the region."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class PriceTable:
    as_of: dt.date
    currency: str
    hours_per_month: float
    regions: dict[str, dict[str, Any]]
    vcpus: dict[str, int]
    source: str

    def price(self, region: str, key: str, size: str | None = None) -> float:
        """One price: `key` in `region`, or the price of `size` (an instance class) under `key`."""
        prices = self.regions.get(region)
        if prices is None:
            raise PriceError(f"{self.source}: no prices for region {region!r} (it has {', '.join(sorted(self.regions))})")
        if key not in prices:
            raise PriceError(f"{self.source}: no {key!r} in {region}")
        value = prices[key]
        if size is not None:
            if not isinstance(value, dict) or size not in value:
                raise PriceError(f"{self.source}: no {key} price for {size!r} in {region}")
            value = value[size]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PriceError(f"{self.source}: {key} in {region} is not a number")
        return float(value)

    def vcpu(self, size: str) -> int:
        if size not in self.vcpus:
            raise PriceError(f"{self.source}: no vCPU count for {size!r}")
        return self.vcpus[size]

    @property
    def stamp(self) -> str:
        return f"{self.currency}/month at on-demand prices of {self.as_of.isoformat()}"


def load(path: Path = DEFAULT_TABLE) -> PriceTable:
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    as_of = document.get("as_of")
    if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
        raise ValueError(f"{path}: `as_of` must be a TOML date: every figure carries it")
    return PriceTable(as_of=as_of, currency=str(document.get("currency", "USD")),
                      hours_per_month=float(document.get("hours_per_month", 730)),
                      regions=dict(document.get("region", {})), vcpus=dict(document.get("vcpus", {})),
                      source=path.name)
