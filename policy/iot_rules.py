"""The rules for devices through AWS IoT Core, over the synthesized JSON (registered with policy/rules.py).

A device policy that lets one device speak for another, a topic rule that loses a sensor's
order or drops failed messages on the floor, or IoT's own log left for AWS to create
unencrypted: each is a finding, whatever construct or hand edit produced it.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from policy.conventions import IOT_LOG_GROUP
from policy.rules import Finding, _alarm_metrics, _as_list, _finding, rule
from policy.stack_json import StackJson

THING = "${iot:Connection.Thing."  # the policy variables of the connected thing
# A partition key that keeps one device's messages in order names the device: its topic or client id.
PER_DEVICE_KEYS = ("topic(", "clientid()")


def _document(text: str) -> dict[str, Any]:
    """An IoT policy document as IoT reads it (Terraform's `$${` is IoT's `${`)."""
    return json.loads(text.replace("$${", "${"))


@rule
def device_policies_scope_each_device_to_itself(stack: StackJson) -> Iterator[Finding]:
    """Every IoT policy allows connecting only as the thing the certificate is attached to, and every
    other action only on resources named by that thing's own variables: no wildcard, no shared topic."""
    name = "device_policies_scope_each_device_to_itself"
    for res in stack.resources("aws_iot_policy"):
        for statement in _document(str(res.config.get("policy", "{}"))).get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            sid = statement.get("Sid", "?")
            actions = _as_list(statement.get("Action"))
            resources = _as_list(statement.get("Resource"))
            if any(a == "*" or a.endswith(":*") for a in actions) or "*" in resources:
                yield _finding(name, stack, res.path, f"statement {sid} allows a wildcard")
                continue
            for action in actions:
                if action == "iot:Connect":
                    attached = str((statement.get("Condition") or {}).get("Bool", {}).get(
                        "iot:Connection.Thing.IsAttached", "")).lower() == "true"
                    if not attached or not all(r.endswith(":client/${iot:Connection.Thing.ThingName}")
                                               for r in resources):
                        yield _finding(name, stack, res.path, f"statement {sid} lets a client connect as something "
                                       "other than the thing its certificate is attached to")
                elif not all(THING in r for r in resources):
                    yield _finding(name, stack, res.path,
                                   f"statement {sid} allows {action} on a resource no thing variable names")


@rule
def topic_rules_key_by_device_and_keep_failures(stack: StackJson) -> Iterator[Finding]:
    """A topic rule into Kinesis keys each record by its device (a constant key makes one hot shard,
    `newuuid()` loses a device's order), sends failed actions to an error action, and is watched
    by an alarm on its failed actions."""
    name = "topic_rules_key_by_device_and_keep_failures"
    watched = {str((m.get("dimensions") or {}).get("RuleName"))
               for alarm in stack.resources("aws_cloudwatch_metric_alarm") for m in _alarm_metrics(alarm.config)
               if m.get("namespace") == "AWS/IoT" and m.get("metric_name") == "Failure"}
    for res in stack.resources("aws_iot_topic_rule"):
        for action in res.config.get("kinesis") or []:
            key = str(action.get("partition_key") or "")
            if not any(marker in key for marker in PER_DEVICE_KEYS):
                yield _finding(name, stack, res.path, f"Kinesis partition key {key or '(none)'!r} does not name the "
                               "device: its messages lose their order or crowd one shard")
        if not res.config.get("error_action"):
            yield _finding(name, stack, res.path, "has no error action: a failed action's message is lost")
        if not watched & {str(res.config.get("name")), f"${{aws_iot_topic_rule.{res.name}.name}}"}:
            yield _finding(name, stack, res.path, "no alarm reads its failed actions (AWS/IoT Failure)")


@rule
def iot_logs_are_owned_where_iot_logging_is_set(stack: StackJson) -> Iterator[Finding]:
    """A stack that sets IoT's logging options creates IoT's log group first (else IoT creates it
    unencrypted and kept for ever) and does not turn the logs off."""
    name = "iot_logs_are_owned_where_iot_logging_is_set"
    groups = {res.config.get("name") for res in stack.resources("aws_cloudwatch_log_group")}
    for res in stack.resources("aws_iot_logging_options"):
        if IOT_LOG_GROUP not in groups:
            yield _finding(name, stack, res.path, f"IoT would create {IOT_LOG_GROUP} itself, unencrypted and kept "
                           "for ever: create it in the stack")
        if res.config.get("disable_all_logs") is True or res.config.get("default_log_level") == "DISABLED":
            yield _finding(name, stack, res.path, "turns IoT's logs off")
