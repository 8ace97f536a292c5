"""The tuning the stack hands the processor: each setting declared once, with its type, unit,
default and bounds.

One spelling everywhere: `lease_duration_s` is the field of the stack's config object
(pipeline_lib/settings.py), the task definition renders it as LEASE_DURATION_S
(pipeline_lib/processor_service.py), and `ProcessorConfig.from_env` reads it back with the
same bounds (processor/config.py). Rules between settings (a heartbeat within a third of the
lease, a read interval the read budget allows) are checked where a config is built: in the
config objects on the stack's side, in `from_env` on the processor's.

Standard library only: the construct library imports it without the processor's dependencies.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# Kinesis' read limit per shard (Kinesis Data Streams quotas): GetRecords calls a second, shared
# by every shared-throughput reader of the stream, the processor's tasks and Firehose alike.
KINESIS_SHARD_READS_PER_SECOND = 5


class SettingError(ValueError):
    """A value outside its setting's declaration; the message is the one line an operator sees."""


@dataclass(frozen=True)
class Setting:
    name: str  # the field, in snake case; its environment variable is the same in upper case
    kind: type[int] | type[float]
    unit: str  # what the number counts, in words ("seconds", "calls a second")
    default: float
    low: float
    high: float
    bounds_why: str = ""  # where the bounds come from, when not obvious

    @property
    def env(self) -> str:
        return self.name.upper()

    def check(self, value: float, *, low: float | None = None, high: float | None = None) -> float:
        """`value` if within bounds (`low`/`high` narrow them where another setting does), else SettingError."""
        low, high = self.low if low is None else low, self.high if high is None else high
        if not low <= value <= high:
            raise SettingError(self._range_message(self.name, low, high, value))
        return value

    def render(self, value: float) -> str:
        """The environment variable's text for `value` (`20`, `0.5`)."""
        return str(int(value)) if self.kind is int else f"{value:g}"

    def read(self, env: Mapping[str, str], *, default: float | None = None, low: float | None = None,
             high: float | None = None) -> float:
        """The setting from `env` (its default when unset), or ConfigError-worthy SettingError naming the variable."""
        text = env.get(self.env, "").strip()
        if not text:
            return self.default if default is None else default
        low, high = self.low if low is None else low, self.high if high is None else high
        try:
            value = self.kind(text)
        except ValueError:
            raise SettingError(self._type_message(text, low, high)) from None
        if not math.isfinite(value) or not low <= value <= high:
            raise SettingError(self._range_message(self.env, low, high, text))
        return value

    def _type_message(self, text: str, low: float, high: float) -> str:
        if self.kind is int:
            return self._range_message(self.env, low, high, text)
        return f"{self.env} must be a number of {self.unit}, not {text!r}"

    def _range_message(self, name: str, low: float, high: float, value: object) -> str:
        if self.kind is int:
            why = f" ({self.bounds_why})" if self.bounds_why else ""
            return f"{name} must be an integer between {low:g} and {high:g}{why}"
        return f"{name} must be between {low:g} and {high:g} {self.unit}, not {value}"


# -- the fleet (processor/balance.py, processor/scheduler.py) -------------------------------------------------------

# A dead task's shards are taken over once its lease expires, so a lease is also how long
# a task's death leaves its shards unread.
LEASE_DURATION_S = Setting("lease_duration_s", float, "seconds", default=20.0, low=1, high=600)
# Renew leases, rebalance, report: every lease / 10, at most every 2 s; never less often than
# three times a lease (`heartbeat_default`, `heartbeat_high`).
HEARTBEAT_S = Setting("heartbeat_s", float, "seconds", default=2.0, low=0.05, high=200)


def heartbeat_default(lease_duration_s: float) -> float:
    return min(HEARTBEAT_S.default, lease_duration_s / 10)


def heartbeat_high(lease_duration_s: float) -> float:
    return lease_duration_s / 3


# -- the read budget per shard (processor/pacing.py) ----------------------------------------------------------------

# At most this many GetRecords a second while a shard is behind; Kinesis allows 5 (the bounds),
# and a stack with an archive's Firehose leaves it one (pipeline_lib/settings.py, ServiceConfig).
MAX_READS_PER_SHARD_PER_S = Setting("max_reads_per_shard_per_s", float, "calls a second", default=3.0, low=0.1,
                                    high=KINESIS_SHARD_READS_PER_SECOND)
# One read a second at the tip, as the KCL waits about a second after an empty read; never
# shorter than the budget allows (`read_interval_low`).
READ_INTERVAL_AT_TIP_S = Setting("read_interval_at_tip_s", float, "seconds", default=1.0,
                                 low=1 / KINESIS_SHARD_READS_PER_SECOND, high=60)


def read_interval_low(max_reads_per_shard_per_s: float) -> float:
    return 1 / max_reads_per_shard_per_s


# -- the factory's incidents (processor/incidents.py) ---------------------------------------------------------------

# What fires on one line within this much event time is one incident.
INCIDENT_WINDOW_S = Setting("incident_window_s", float, "seconds", default=300.0, low=1, high=86_400)
# An open incident nothing has touched for this long (its line silent) closes.
INCIDENT_QUIET_S = Setting("incident_quiet_s", float, "seconds", default=900.0, low=60, high=7 * 86_400)

# -- the processor's own (the stack leaves them at their defaults) --------------------------------------------------

BATCH_LIMIT = Setting("batch_limit", int, "records", default=1000, low=1, high=10_000,
                      bounds_why="the GetRecords limit")
# How long a new task waits for the migration before it gives up.
SCHEMA_WAIT_S = Setting("schema_wait_s", float, "seconds", default=600.0, low=0, high=86_400)

# What the service's task definition sets from ServiceConfig, and from IncidentConfig where incidents are published.
SERVICE_SETTINGS = (LEASE_DURATION_S, READ_INTERVAL_AT_TIP_S, MAX_READS_PER_SHARD_PER_S)
INCIDENT_SETTINGS = (INCIDENT_WINDOW_S, INCIDENT_QUIET_S)


def rendered(values: object, settings: tuple[Setting, ...]) -> dict[str, str]:
    """The environment a task definition sets: each setting's variable with the value `values` holds under its name."""
    return {setting.env: setting.render(getattr(values, setting.name)) for setting in settings}
