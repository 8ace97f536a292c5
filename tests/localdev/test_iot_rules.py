"""The local rules engine applies the factory rule's WHERE as IoT SQL does (localdev/iot/rules.py): a message
passes only when its MQTT client id is the thing its topic names; any other WHERE is refused by name."""
from __future__ import annotations

import pytest

from localdev.iot.rules import Message, Rule, UnsupportedSql
from pipeline_lib.iot_topics import TOPIC_FILTER, device_topic, rule_name, thing_name
from policy.stack_json import StackJson
from tests.helpers import only

LINE, SENSOR = "line-1", "temp-1-00"


@pytest.fixture(scope="module")
def factory_rule(factory: StackJson) -> Rule:
    """The factory rule as synthesized, parsed as the local engine parses the deployed one."""
    config = only(factory, "aws_iot_topic_rule").config
    return Rule.parse(config["name"], {"sql": config["sql"], "actions": []})


def message(client_id: str, *, topic: str = device_topic("unused", LINE, SENSOR, basic_ingest=False)) -> Message:
    return Message(topic, b'{"readings": []}', client_id, "certificate-id", 1)


def test_a_message_from_the_thing_its_topic_names_passes_the_rules_where(factory_rule: Rule) -> None:
    assert factory_rule.admits(message(thing_name("factory", "dev", LINE, SENSOR)))


def test_the_where_reads_the_same_levels_of_a_basic_ingest_topic_once_iot_strips_its_prefix(
        factory_rule: Rule) -> None:
    # IoT's topic(n) does not count `$aws/rules/<rule>/`: the engine hands the rule the topic without it
    basic = device_topic(rule_name("factory", "dev"), LINE, SENSOR, basic_ingest=True)
    stripped = basic.split("/", 3)[3]
    assert factory_rule.admits(message(thing_name("factory", "dev", LINE, SENSOR), topic=stripped))


@pytest.mark.parametrize("client_id", [
    thing_name("factory", "dev", LINE, "temp-1-01"),  # another sensor of the line
    thing_name("factory", "dev", "line-2", SENSOR),  # the same sensor id on another line
    thing_name("factory", "prod", LINE, SENSOR),  # the same sensor in another environment
    "n/a",  # what clientid() is for a publish over HTTPS (an IAM principal with iot:Publish)
    "ops-console",
])
def test_a_message_from_any_other_client_id_is_dropped_by_the_rules_where(factory_rule: Rule, client_id: str) -> None:
    assert not factory_rule.admits(message(client_id))


def test_a_rule_without_where_admits_every_message() -> None:
    rule = Rule.parse("r", {"sql": f"SELECT encode(*, 'base64') AS payload FROM '{TOPIC_FILTER}'", "actions": []})
    assert rule.admits(message("anyone"))


@pytest.mark.parametrize(("where", "named"), [
    ("clientid() <> 'a'", "clientid() <> 'a'"),
    ("clientid() = 'a' AND topic(2) = 'b'", "AND topic(2)"),
    ("timestamp() > 5", "timestamp() > 5"),
    ("upper(clientid()) = 'A'", "upper(clientid())"),
])
def test_a_where_outside_the_subset_the_stack_uses_stops_the_rules_load_named(where: str, named: str) -> None:
    with pytest.raises(UnsupportedSql, match=r"rule r: .*" + named.replace("(", r"\(").replace(")", r"\)")):
        Rule.parse("r", {"sql": f"SELECT * FROM '{TOPIC_FILTER}' WHERE {where}", "actions": []})


def test_concat_of_a_topic_level_the_topic_lacks_is_undefined_and_no_where_holds_on_it() -> None:
    rule = Rule.parse("r", {"sql": "SELECT * FROM 'a/#' WHERE clientid() = concat('x:', topic(5))", "actions": []})
    assert not rule.admits(message("x:", topic="a/b"))
    assert rule.admits(message("x:e", topic="a/b/c/d/e"))
