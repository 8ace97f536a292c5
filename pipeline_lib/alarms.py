"""What to watch, said by the construct that owns the metric: alarm specs built by keyword,
and the dashboard widgets that show it.

Each construct of the library that has something worth watching is `Watched`: it offers
`alarms(thresholds) -> list[AlarmSpec]` (the stream its lag and throttling, the cache its
nodes, the service its errors and missing tasks ...) and `widgets() -> list[Widget]`.
`Monitoring` turns every spec into one CloudWatch alarm that notifies the stack's alerts
topic, and lays every widget out on the stack's one dashboard, in the order it is given them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline_lib.settings import AlarmConfig

FIVE_MINUTES = 300


@dataclass(frozen=True, kw_only=True)
class MetricAlarmSpec:
    """One alarm on one metric. `purpose` is the alarm's construct id and the middle of its name."""

    purpose: str
    description: str
    namespace: str
    metric_name: str
    dimensions: Mapping[str, str] = field(default_factory=dict)
    statistic: str
    comparison: str
    threshold: float
    evaluation_periods: int = 3  # three 5-minute periods in a row: a blip does not page anyone
    period_seconds: int = FIVE_MINUTES
    treat_missing_data: str = "missing"


@dataclass(frozen=True, kw_only=True)
class MetricRef:
    namespace: str
    metric_name: str
    dimensions: Mapping[str, str] = field(default_factory=dict)
    statistic: str = "Average"
    period_seconds: int = 60


@dataclass(frozen=True, kw_only=True)
class MathAlarmSpec:
    """One alarm on an expression over metrics (`metrics` by query id, as the expression names them)."""

    purpose: str
    description: str
    metrics: Mapping[str, MetricRef]
    expression: str
    label: str
    comparison: str
    threshold: float
    evaluation_periods: int = 5
    treat_missing_data: str = "missing"


AlarmSpec = MetricAlarmSpec | MathAlarmSpec


@dataclass(frozen=True)
class Widget:
    """One dashboard graph: CloudWatch's `metrics` rows ([namespace, name, dimension, value, ..., {options}])."""

    title: str
    metrics: list[list[Any]]


class Watched(Protocol):
    def alarms(self, thresholds: AlarmConfig) -> list[AlarmSpec]: ...

    def widgets(self) -> list[Widget]: ...
