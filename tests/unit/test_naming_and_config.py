from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline_lib.naming import InvalidSuffixError, Naming, validate_suffix
from pipeline_lib.settings import StreamConfig
from stacks.config import ConfigError, build_config
from tests.conftest import PROD_ALERTS


@pytest.mark.parametrize("suffix", ["dev", "pr-142", "prod", "qa2", "ab"])
def test_valid_suffixes_are_accepted(suffix: str) -> None:
    assert validate_suffix(suffix) == suffix


@pytest.mark.parametrize("suffix", ["", "Dev", "dev_1", "1dev", "dev-", "de--v", "a", "waytoolongsuffix", "dev.1"])
def test_invalid_suffixes_are_rejected_with_a_clear_error(suffix: str) -> None:
    with pytest.raises(InvalidSuffixError, match="not a valid name fragment"):
        validate_suffix(suffix)


def test_names_follow_workload_purpose_suffix() -> None:
    naming = Naming("retail", "dev")
    assert naming.name("updates") == "retail-updates-dev"
    assert naming.path("processor") == "/retail/dev/processor"


def test_retail_stream_carries_1000_updates_per_minute_with_headroom() -> None:
    stream = build_config("retail", "dev").stream
    assert stream.capacity_records_per_minute >= 2 * 1_000
    assert stream.capacity_records_per_minute >= stream.peak_records_per_minute * stream.headroom_factor


def test_shard_count_grows_with_the_required_peak() -> None:
    small = StreamConfig(peak_records_per_minute=1_000, average_record_bytes=400)
    large = StreamConfig(peak_records_per_minute=600_000, average_record_bytes=400)
    assert small.shard_count == small.min_shards
    assert large.shard_count == 20  # 600k/min * 2 headroom = 20k/s over 1k/s per shard


def test_shard_count_respects_the_byte_limit_for_large_records() -> None:
    heavy = StreamConfig(peak_records_per_minute=60_000, average_record_bytes=4_000)
    assert heavy.shard_count == 8  # 2,000 rec/s * 4 kB = 8 MB/s over 1 MiB/s per shard


def test_production_suffix_turns_on_protection() -> None:
    prod = build_config("retail", "prod", PROD_ALERTS)
    assert prod.is_production
    assert prod.database.deletion_protection and prod.database.multi_az and not prod.database.skip_final_snapshot
    assert prod.key_deletion_window_days == 30 and not prod.archive.force_destroy


def test_any_other_suffix_stays_destroyable() -> None:
    for suffix in ("dev", "staging", "pr-7"):
        config = build_config("factory", suffix)
        assert not config.is_production
        assert not config.database.deletion_protection and config.database.skip_final_snapshot
        assert config.archive.force_destroy


def test_retail_archive_keeps_data_at_least_three_years() -> None:
    assert build_config("retail", "dev").archive.expiration_days >= 1_096


def test_unknown_workload_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown workload"):
        build_config("billing", "dev")


def test_configs_are_frozen() -> None:
    config = build_config("retail", "dev")
    with pytest.raises(AttributeError):
        config.region = "eu-west-1"  # type: ignore[misc]


def test_production_refuses_to_synthesize_when_its_alarms_reach_nobody() -> None:
    with pytest.raises(ConfigError) as raised:
        build_config("factory", "prod", "")
    assert str(raised.value) == ("factory-prod: production alarms must reach someone: set ALERT_SUBSCRIPTIONS "
                                 "(e.g. email:oncall@example.com)")


def test_a_dev_environment_may_have_no_alert_subscription() -> None:
    assert build_config("retail", "dev", "").alert_subscriptions == ()


def test_alert_subscriptions_are_read_as_protocol_endpoint_items() -> None:
    config = build_config("retail", "prod", " email:oncall@example.com , https:https://hooks.example.com/a?b=1,"
                                            "sqs:alerts-prod,lambda:arn:aws:lambda:us-east-1:123456789012:function:page")
    assert [(s.protocol, s.endpoint) for s in config.alert_subscriptions] == [
        ("email", "oncall@example.com"), ("https", "https://hooks.example.com/a?b=1"), ("sqs", "alerts-prod"),
        ("lambda", "arn:aws:lambda:us-east-1:123456789012:function:page")]


@pytest.mark.parametrize(("text", "message"), [
    ("oncall@example.com", "ALERT_SUBSCRIPTIONS: alert subscription 'oncall@example.com' is not protocol:endpoint"),
    ("sms:+15551234567", "ALERT_SUBSCRIPTIONS: alert subscription protocol must be email, https, sqs or lambda"),
    ("email:not-an-address", "ALERT_SUBSCRIPTIONS: 'not-an-address' is not a valid email endpoint"),
    ("https:http://plain.example.com", "ALERT_SUBSCRIPTIONS: 'http://plain.example.com' is not a valid https"),
    ("sqs:arn:aws:sns:us-east-1:123456789012:x", "ALERT_SUBSCRIPTIONS: 'arn:aws:sns:us-east-1:123456789012:x' is not"),
])
def test_a_bad_alert_subscription_is_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+").replace("?", r"\?")):
        build_config("retail", "dev", text)


def test_ecs_exec_is_off_unless_a_dev_deployment_asks_and_production_refuses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_config("retail", "dev").service.enable_execute_command is False
    monkeypatch.setenv("ECS_EXEC", "on")
    assert build_config("retail", "dev").service.enable_execute_command is True
    with pytest.raises(ConfigError, match="retail-prod: ECS_EXEC=on: production tasks get no shell"):
        build_config("retail", "prod", "email:a@example.com")
    monkeypatch.setenv("ECS_EXEC", "sometimes")
    with pytest.raises(ConfigError, match="ECS_EXEC: 'sometimes' is neither on nor off"):
        build_config("retail", "dev")


def test_production_keeps_its_sizes_and_every_zone_while_dev_is_sized_down() -> None:
    prod = build_config("factory", "prod", "email:a@example.com", "email:b@example.com")
    dev = build_config("factory", "dev")
    assert (prod.database.instance_class, prod.cache.node_type, prod.service.cpu, prod.service.memory_mib) == (
        "db.r7g.large", "cache.r7g.large", 512, 1024)
    assert (prod.stream.stream_mode, prod.network.endpoint_zones, prod.database.multi_az) == ("PROVISIONED", None, True)
    assert (dev.database.instance_class, dev.cache.node_type, dev.service.cpu, dev.service.memory_mib) == (
        "db.t4g.micro", "cache.t4g.micro", 256, 512)
    assert (dev.stream.stream_mode, dev.network.endpoint_zones, dev.stream.retention_period_hours) == ("ON_DEMAND", 1, 168)


def test_a_lease_that_would_page_on_every_task_death_stops_the_config() -> None:
    factory = build_config("factory", "dev")  # its lag alarms fire at 30 s
    with pytest.raises(ConfigError, match=r"factory-dev: a lease of 28 s leaves a dead task's shards unread for 30 s, "
                                          r"at or over the lag alarms' threshold \(30 s\)"):
        replace(factory, service=replace(factory.service, lease_duration_s=28))
    replace(factory, service=replace(factory.service, lease_duration_s=25))  # 27 s unread: no page
