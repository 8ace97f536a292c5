"""`make cost` prices the devices: IoT connectivity, messaging (unless Basic Ingest), rules and actions,
per message and 5 KB; batching readings into messages is what moves the figure."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from stacks.config import build_config
from tools.cost import estimate, prices
from tools.cost.usage import usage_of

TABLE = """
as_of = 2030-01-31
currency = "USD"
hours_per_month = 730

[region.r1]
iot_connection_minutes_per_million = 0.08
iot_messages_per_million = 1.0
iot_rules_triggered_per_million = 0.15
iot_actions_executed_per_million = 0.15
"""
# 500 sensors reading once a second: the factory's stated peak (30,000 readings a minute).
DEVICES = dict(devices=500, device_readings_per_minute=30_000)
RULE = estimate.Resource("aws_iot_topic_rule.rule", "aws_iot_topic_rule", {"kinesis": [{"stream_name": "s"}]})


def policy(topic: str) -> estimate.Resource:
    document = {"Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": f"arn:aws:iot:r1:1:topic/{topic}"}]}
    return estimate.Resource("aws_iot_policy.p", "aws_iot_policy", {"policy": json.dumps(document)})


@pytest.fixture()
def table(tmp_path: Path) -> prices.PriceTable:
    path = tmp_path / "prices.toml"
    path.write_text(TABLE)
    return prices.load(path)


def monthly(table: prices.PriceTable, topic: str, readings_per_message: int, message_bytes: int) -> float:
    usage = estimate.Usage(records_per_minute=0, record_bytes=0, processor_log_gb_month=0, flow_log_gb_month=0,
                           other_log_gb_month=0, database_gb=0, image_gb=0, archive_compression=1, archive_months=1,
                           readings_per_message=readings_per_message, device_message_bytes=message_bytes, **DEVICES)
    return estimate.estimate("f-prod", "r1", [RULE, policy(topic)], table, usage).total()


def test_500_sensors_cost_about_1700_a_month_one_reading_a_message_on_topics_and_41_in_tens_through_basic_ingest(
        table: prices.PriceTable) -> None:
    # The front-doors note says ~1,650: a 30-day month.
    assert round(monthly(table, "factory/${iot:Connection.Thing.ThingName}/readings", 1, 146)) == 1_710
    assert round(monthly(table, "$aws/rules/r/factory/${iot:Connection.Thing.ThingName}/readings", 1, 146)) == 396
    assert round(monthly(table, "$aws/rules/r/factory/${iot:Connection.Thing.ThingName}/readings", 10, 1_316)) == 41


def test_a_message_is_billed_per_5_kb_so_a_bigger_batch_stops_saving_past_it(table: prices.PriceTable) -> None:
    basic = "$aws/rules/r/x/${iot:Connection.Thing.ThingName}"
    assert monthly(table, basic, 40, 5_216) == pytest.approx(monthly(table, basic, 20, 2_616), rel=0.01)


def test_the_factory_is_priced_at_its_configured_batch_and_its_stream_records_are_the_messages() -> None:
    config = build_config("factory", "prod", "email:x@example.com", "email:x@example.com")
    usage = usage_of(config)
    assert (usage.devices, usage.readings_per_message) == (500, 10)
    assert usage.records_per_minute == 3_000  # a record a message: Firehose rounds 3,000 records, not 30,000
    single = usage_of(replace(config, iot=replace(config.iot, readings_per_message=1)))  # type: ignore[arg-type]
    assert single.records_per_minute == 30_000 and single.record_bytes < usage.record_bytes
