"""ProcessorConfig from the environment (processor/config.py): defaults, limits, one clear line per mistake."""
from __future__ import annotations

import pytest

from processor.config import ConfigError, ProcessorConfig
from processor.task_settings import LEASE_DURATION_S, MAX_READS_PER_SHARD_PER_S, READ_INTERVAL_AT_TIP_S

BASE = {"WORKLOAD": "retail", "STREAM_NAME": "s", "AWS_REGION": "us-east-1", "DB_HOST": "db", "DB_NAME": "d",
        "DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x", "REDIS_HOST": "r"}


def test_the_fleet_and_read_budget_defaults_follow_the_lease() -> None:
    settings = ProcessorConfig.from_env(BASE)
    assert settings.lease_duration_s == LEASE_DURATION_S.default
    assert settings.heartbeat_s == min(2.0, settings.lease_duration_s / 10)
    assert (settings.read_interval_at_tip_s, settings.max_reads_per_shard_per_s) == (
        READ_INTERVAL_AT_TIP_S.default, MAX_READS_PER_SHARD_PER_S.default)
    assert ProcessorConfig.from_env({**BASE, "LEASE_DURATION_S": "6"}).heartbeat_s == pytest.approx(0.6)


def test_the_read_budget_can_be_set_within_what_kinesis_allows() -> None:
    settings = ProcessorConfig.from_env({**BASE, "MAX_READS_PER_SHARD_PER_S": "4", "READ_INTERVAL_AT_TIP_S": "0.5",
                                  "HEARTBEAT_S": "1"})
    assert (settings.max_reads_per_shard_per_s, settings.read_interval_at_tip_s, settings.heartbeat_s) == (4, 0.5, 1)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("WORKLOAD", "warehouse", "WORKLOAD must be one of retail, factory, not 'warehouse'"),
    ("MAX_READS_PER_SHARD_PER_S", "6", "MAX_READS_PER_SHARD_PER_S must be between 0.1 and 5 calls a second, not 6"),
    ("READ_INTERVAL_AT_TIP_S", "0.1", "READ_INTERVAL_AT_TIP_S must be between 0.333333 and 60 seconds, not 0.1"),
    ("HEARTBEAT_S", "10", "HEARTBEAT_S must be between 0.05 and 6.66667 seconds, not 10"),
    ("LEASE_DURATION_S", "soon", "LEASE_DURATION_S must be a number of seconds, not 'soon'"),
    ("BATCH_LIMIT", "20000", "BATCH_LIMIT must be an integer between 1 and 10000 (the GetRecords limit)"),
])
def test_a_bad_value_is_one_line_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        ProcessorConfig.from_env({**BASE, "LEASE_DURATION_S": "20", name: value})  # the heartbeat's bound follows it
    assert str(raised.value) == message
