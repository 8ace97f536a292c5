"""Sensors reach the factory's stream through IoT Core: one identity per device, its own topic only,
a rule keyed by sensor into the stream, failures kept and alarmed (pipeline_lib/iot_ingest.py)."""
from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from pipeline_lib.iot_topics import thing_name
from pipeline_lib.settings import IotConfig
from policy import iot_rules
from policy.conventions import carries_suffix
from policy.stack_json import Resource, StackJson
from stacks.config import build_config
from tests.helpers import by_path, only, paging_alarm_purposes, policy_statements, ref, statement


def device_policy(stack: StackJson) -> dict:
    """The device policy as IoT reads it: Terraform's `$${` is IoT's `${`."""
    return json.loads(only(stack, "aws_iot_policy").config["policy"].replace("$${", "${"))


def rule(stack: StackJson) -> Resource:
    return only(stack, "aws_iot_topic_rule")


def test_each_sensor_is_a_thing_of_the_stacks_own_type_searchable_by_line_and_sensor(factory: StackJson) -> None:
    thing_type = only(factory, "aws_iot_thing_type").config
    assert thing_type["name"] == "factory-sensor-dev"
    assert thing_type["properties"]["searchable_attributes"] == ["line_id", "sensor_id"]
    assert factory.outputs["iot_thing_type_name"]["value"] == ref(only(factory, "aws_iot_thing_type"), "name")


def test_an_edited_thing_type_description_never_plans_a_replacement_of_the_type_sensors_belong_to(
        factory: StackJson) -> None:
    # A thing type's properties can only be set at creation (CloudFormation: "Update requires:
    # Replacement"), and AWS refuses to delete a thing type that things belong to, only after it
    # has been deprecated for 5 minutes (DeleteThingType). A planned replacement would deprecate the
    # type (refusing every new registration) and then fail on the registered sensors.
    thing_type = only(factory, "aws_iot_thing_type").config
    assert "properties" in thing_type["lifecycle"]["ignore_changes"]


def test_a_device_may_connect_only_as_the_thing_its_certificate_is_attached_to_of_this_type(factory: StackJson) -> None:
    connect = next(s for s in device_policy(factory)["Statement"] if s["Sid"] == "ConnectAsItsOwnThing")
    assert connect["Action"] == "iot:Connect"
    assert connect["Resource"].endswith(":iot:eu-west-1:${data.aws_caller_identity.account_caller_1C5BE04F.account_id}"
                                        ":client/${iot:Connection.Thing.ThingName}")
    assert connect["Condition"] == {"Bool": {"iot:Connection.Thing.IsAttached": "true"},
                                    "StringEquals": {"iot:Connection.Thing.ThingTypeName": "factory-sensor-dev"}}


def test_a_device_may_publish_only_to_its_own_basic_ingest_topic_and_do_nothing_else(factory: StackJson) -> None:
    statements = device_policy(factory)["Statement"]
    assert [s["Action"] for s in statements] == ["iot:Connect", "iot:Publish"]  # no subscribe, receive, shadow
    publish = statements[1]
    assert publish["Resource"].endswith(
        ":topic/$aws/rules/factory_readings_dev/factory/${iot:Connection.Thing.Attributes[line_id]}/"
        "${iot:Connection.Thing.Attributes[sensor_id]}/readings")
    # Terraform is handed IoT's variables escaped, so it passes them through rather than interpolating.
    assert "$${iot:Connection.Thing.ThingName}" in only(factory, "aws_iot_policy").config["policy"]


def test_the_rule_puts_each_message_into_the_stream_keyed_by_its_sensor_identity_from_the_topic(
        factory: StackJson) -> None:
    config = rule(factory).config
    assert config["name"] == "factory_readings_dev" and config["enabled"] is True
    assert config["sql"].startswith("SELECT topic(2) AS line_id, topic(3) AS sensor_id, encode(*, 'base64') AS payload, "
                                    "timestamp() AS received_at_ms FROM 'factory/+/+/readings' WHERE ")
    (kinesis,) = config["kinesis"]
    assert kinesis == {"partition_key": "$${topic(3)}", "role_arn": ref(by_path(factory, "aws_iam_role", "iot/rule-role"), "arn"),
                       "stream_name": ref(only(factory, "aws_kinesis_stream"), "name")}


def test_the_rule_takes_a_message_only_from_the_client_id_that_is_the_thing_its_topic_names(factory: StackJson) -> None:
    # topic(n) counts the levels after `$aws/rules/<rule>/` on a Basic Ingest topic, so topic(2) and topic(3) are
    # the line and sensor whichever way the device publishes; clientid() is `n/a` for an HTTPS publish.
    assert rule(factory).config["sql"].endswith(
        " WHERE clientid() = concat('factory-dev:', topic(2), ':', topic(3))")
    assert thing_name("factory", "dev", "line-1", "temp-1-00") == "factory-dev:line-1:temp-1-00"


def test_the_rules_role_may_only_put_records_into_this_stream_and_use_the_key_through_kinesis(
        factory: StackJson) -> None:
    role = by_path(factory, "aws_iam_role", "iot/rule-role")
    trust = json.loads(role.config["assume_role_policy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "iot.amazonaws.com"} and "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    policy = by_path(factory, "aws_iam_role_policy", "iot/rule-policy")
    assert [(s["Action"], s["Resource"]) for s in policy_statements(policy)] == [
        (["kinesis:PutRecord"], [ref(only(factory, "aws_kinesis_stream"), "arn")]),
        (["kms:GenerateDataKey"], [ref(only(factory, "aws_kms_key"), "arn")])]
    assert statement(policy, "EncryptThroughKinesis")["Condition"] == {
        "StringEquals": {"kms:ViaService": "kinesis.eu-west-1.amazonaws.com"}}


def test_failed_actions_go_to_an_encrypted_log_group_written_by_a_role_of_its_own(factory: StackJson) -> None:
    group = by_path(factory, "aws_cloudwatch_log_group", "iot/rule-errors/group")
    assert group.config["name"] == "/factory/dev/iot-rule-errors"
    assert group.config["kms_key_id"] == ref(only(factory, "aws_kms_key"), "arn")
    errors = rule(factory).config["error_action"]["cloudwatch_logs"]
    assert errors == {"log_group_name": ref(group, "name"),
                      "role_arn": ref(by_path(factory, "aws_iam_role", "iot/error-role"), "arn")}
    policy = by_path(factory, "aws_iam_role_policy", "iot/error-policy")
    assert [(s["Action"], s["Resource"]) for s in policy_statements(policy)] == [
        (["logs:CreateLogStream", "logs:DescribeLogStreams"], [ref(group, "arn"), f"{ref(group, 'arn')}:log-stream:*"]),
        (["logs:PutLogEvents"], [f"{ref(group, 'arn')}:log-stream:*"])]


def test_failed_actions_error_messages_and_iot_refusals_page_someone(factory: StackJson) -> None:
    assert paging_alarm_purposes(factory, "iot-") == {
        "iot-rule-kinesis-failures", "iot-rule-errors", "iot-rule-throttled", "iot-connect-authn-errors",
        "iot-connect-auth-errors", "iot-publish-auth-errors"}
    failures = by_path(factory, "aws_cloudwatch_metric_alarm", "monitoring/iot-rule-kinesis-failures").config
    assert (failures["namespace"], failures["metric_name"], failures["dimensions"]) == (
        "AWS/IoT", "Failure", {"RuleName": "factory_readings_dev", "ActionType": "Kinesis"})
    refused = by_path(factory, "aws_cloudwatch_metric_alarm", "monitoring/iot-connect-auth-errors").config
    assert (refused["metric_name"], refused["dimensions"], refused["threshold"]) == (
        "Connect.AuthError", {"Protocol": "MQTT"}, 10)


def test_a_certificate_refused_at_authentication_pages_someone_apart_from_a_connect_the_policy_refuses(
        factory: StackJson) -> None:
    # AWS IoT counts a connection refused at authentication (the certificate unknown, inactive or revoked)
    # as Connection.AuthNError, and one its policy does not authorize as Connect.AuthError: a revoked
    # sensor retrying for ever raises only the first.
    watched = {a.config["metric_name"]: a.config for a in factory.resources("aws_cloudwatch_metric_alarm")
               if a.config.get("namespace") == "AWS/IoT" and a.config["metric_name"].startswith("Connect")}
    assert sorted(watched) == ["Connect.AuthError", "Connection.AuthNError"]
    authn = watched["Connection.AuthNError"]
    assert authn["alarm_name"] == "factory-iot-connect-authn-errors-dev"
    assert (authn["dimensions"], authn["statistic"], authn["comparison_operator"], authn["threshold"]) == (
        {"Protocol": "MQTT"}, "Sum", "GreaterThanThreshold", 10)
    assert "revoked" in authn["alarm_description"] and "revoked" not in watched["Connect.AuthError"]["alarm_description"]
    (dashboard,) = factory.resources("aws_cloudwatch_dashboard")
    graphed = [row[1] for w in json.loads(dashboard.config["dashboard_body"])["widgets"]
               for row in w["properties"]["metrics"] if row[0] == "AWS/IoT"]
    assert "Connection.AuthNError" in graphed


def test_production_owns_the_regions_iot_log_encrypted_and_a_destroyable_environment_does_not(
        factory: StackJson, prod_stacks: dict[str, StackJson]) -> None:
    prod = prod_stacks["factory-prod"]
    options = only(prod, "aws_iot_logging_options").config
    assert options["default_log_level"] == "WARN" and options["disable_all_logs"] is False
    group = by_path(prod, "aws_cloudwatch_log_group", "iot-logging/group/group").config
    assert group["name"] == "AWSIotLogsV2" and group["kms_key_id"] == ref(only(prod, "aws_kms_key"), "arn")
    writes = policy_statements(by_path(prod, "aws_iam_role_policy", "iot-logging/policy"))
    assert [s["Action"] for s in writes] == [["logs:CreateLogStream", "logs:DescribeLogStreams"], ["logs:PutLogEvents"]]
    assert not list(factory.resources("aws_iot_logging_options"))
    assert build_config("factory", "dev").iot.account_logging is False  # type: ignore[union-attr]


def test_retail_has_no_devices(retail: StackJson) -> None:
    assert not [r for r in retail.resources() if r.type.startswith("aws_iot_")]
    assert build_config("retail", "dev").iot is None


def test_a_topic_rule_name_carries_the_suffix_in_its_underscored_spelling() -> None:
    assert carries_suffix("factory_readings_pr_142", "pr-142")
    assert not carries_suffix("factory_readings_pr_1420", "pr-142")


@pytest.mark.parametrize(("change", "message"), [
    ({"readings_per_message": 0}, "readings_per_message must be between 1 and 256"),
    ({"readings_per_message": 257}, "readings_per_message must be between 1 and 256"),
    ({"batch_wait_s": 0}, "batch_wait_s must be above 0"),
    ({"log_level": "DISABLED"}, "log_level must be one of ERROR, WARN, INFO, DEBUG"),
])
def test_a_batch_that_cannot_fit_a_message_or_logs_turned_off_stop_the_config(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(IotConfig(), **change)


def _mutated(stack: StackJson, type_: str, mutate: Callable[[dict], Any]) -> StackJson:
    document = copy.deepcopy(stack.document)
    mutate(next(iter(document["resource"][type_].values())))
    return StackJson(stack.stack_id, document)


def _with_policy(stack: StackJson, change: Callable[[list], Any]) -> StackJson:
    def edit(config: dict) -> None:
        document = json.loads(config["policy"])
        change(document["Statement"])
        config["policy"] = json.dumps(document)
    return _mutated(stack, "aws_iot_policy", edit)


def test_a_device_policy_that_lets_a_device_speak_for_another_is_found(factory: StackJson) -> None:
    rule_of = iot_rules.device_policies_scope_each_device_to_itself
    assert list(rule_of(factory)) == []
    shared = _with_policy(factory, lambda s: s[1].update(Resource=s[1]["Resource"].split(":topic/")[0] + ":topic/factory/#"))
    assert [f.message for f in rule_of(shared)] == [
        "statement PublishItsOwnReadings allows iot:Publish on a resource no thing variable names"]
    unattached = _with_policy(factory, lambda s: s[0].pop("Condition"))
    assert "other than the thing its certificate is attached to" in next(iter(rule_of(unattached))).message
    anything = _with_policy(factory, lambda s: s[1].update(Action="iot:*"))
    assert [f.message for f in rule_of(anything)] == ["statement PublishItsOwnReadings allows a wildcard"]


def test_a_rule_keyed_by_a_constant_or_newuuid_or_without_error_action_is_found(factory: StackJson) -> None:
    rule_of = iot_rules.topic_rules_key_by_device_and_keep_failures
    assert list(rule_of(factory)) == []
    for key in ("readings", "$${newuuid()}"):
        found = list(rule_of(_mutated(factory, "aws_iot_topic_rule", lambda c, k=key: c["kinesis"][0].update(partition_key=k))))
        assert len(found) == 1 and "does not name the device" in found[0].message
    dropped = list(rule_of(_mutated(factory, "aws_iot_topic_rule", lambda c: c.pop("error_action"))))
    assert [f.message for f in dropped] == ["has no error action: a failed action's message is lost"]


def test_iot_logging_without_its_own_encrypted_group_is_found(prod_stacks: dict[str, StackJson]) -> None:
    prod = prod_stacks["factory-prod"]
    rule_of = iot_rules.iot_logs_are_owned_where_iot_logging_is_set
    assert list(rule_of(prod)) == []
    document = copy.deepcopy(prod.document)
    groups = document["resource"]["aws_cloudwatch_log_group"]
    for name in [n for n, c in groups.items() if c["name"] == "AWSIotLogsV2"]:
        del groups[name]
    assert [f.message for f in rule_of(StackJson(prod.stack_id, document))] == [
        "IoT would create AWSIotLogsV2 itself, unencrypted and kept for ever: create it in the stack"]


STREAM_ACTIONS = {"logs:CreateLogStream", "logs:DescribeLogStreams"}  # make or find a stream of the group


def test_every_role_that_makes_or_finds_log_streams_is_granted_them_as_cloudwatch_logs_names_them(
        dev_stacks: dict[str, StackJson], prod_stacks: dict[str, StackJson]) -> None:
    # CloudWatch Logs authorizes the stream actions on `<group ARN>:log-stream:<stream>` (DescribeLogStreams
    # on `...:log-stream:` with an empty stream): a grant on the bare group ARN allows none of them
    # (fluent/fluent-bit-docs#913, aws/aws-cdk#7096). IoT's error action and its account logging call both.
    checked = 0
    for stack in (*dev_stacks.values(), *prod_stacks.values()):
        for policy in stack.resources("aws_iam_role_policy"):
            for stmt in json.loads(policy.config["policy"])["Statement"]:
                actions = {stmt["Action"]} if isinstance(stmt["Action"], str) else set(stmt["Action"])
                resources = [stmt["Resource"]] if isinstance(stmt["Resource"], str) else stmt["Resource"]
                if not actions & STREAM_ACTIONS:
                    continue
                for group in {r.split("}")[0] + "}" for r in resources if r.startswith("${aws_cloudwatch_log_group.")}:
                    checked += 1
                    for stream in (f"{group}:log-stream:", f"{group}:log-stream:device-1"):
                        assert any(fnmatch.fnmatchcase(stream, r) for r in resources), (
                            f"{policy.path} {stmt.get('Sid')}: {sorted(actions & STREAM_ACTIONS)} on {resources} "
                            f"does not reach {stream}")
    assert checked >= 3
