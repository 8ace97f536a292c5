"""The factory's incidents reach people: an encrypted topic of its own, exactly the IAM to publish, subscriptions from config."""
from __future__ import annotations

import json

import pytest

from policy.stack_json import Resource, StackJson
from stacks.config import ConfigError, build_config
from tests.conftest import PROD_ALERTS
from tests.helpers import by_path, only, policy_statements, ref, statement


def incidents_topic(stack: StackJson) -> Resource:
    return by_path(stack, "aws_sns_topic", "incidents/topic")


def test_the_factory_has_an_encrypted_incidents_topic_apart_from_the_alerts_and_retail_has_none(
        factory: StackJson, retail: StackJson) -> None:
    topic = incidents_topic(factory)
    assert topic.config["name"] == "factory-incidents-dev"
    assert topic.config["kms_master_key_id"] == ref(only(factory, "aws_kms_key"), "arn")
    (policy,) = json.loads(topic.config["policy"])["Statement"]
    assert policy["Principal"]["AWS"].endswith(":root")  # this account; its IAM decides who
    assert policy["Action"] == ["sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic", "sns:Publish",
                                "sns:Subscribe"]
    assert policy["Resource"].endswith(":factory-incidents-dev")
    assert [t.config["name"] for t in retail.resources("aws_sns_topic")] == ["retail-alerts-dev"]
    assert factory.outputs["incident_topic_arn"]["value"] == ref(topic, "arn")


def test_the_task_may_publish_to_that_topic_only_and_use_the_key_only_through_sns(factory: StackJson) -> None:
    policy = by_path(factory, "aws_iam_role_policy", "processor/task-policy")
    publish = statement(policy, "PublishIncidents")
    assert publish["Action"] == ["sns:Publish"] and publish["Resource"] == [ref(incidents_topic(factory), "arn")]
    key = statement(policy, "EncryptIncidentsThroughSns")
    assert key["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}}
    sns_actions = [a for s in policy_statements(policy) for a in s["Action"] if a.startswith("sns:")]
    assert sns_actions == ["sns:Publish"]


def test_the_tasks_reach_sns_through_an_interface_endpoint_fenced_to_the_account(factory: StackJson) -> None:
    (endpoint,) = [r.config for r in factory.resources("aws_vpc_endpoint")
                   if r.config["service_name"] == "com.amazonaws.eu-west-1.sns"]
    assert endpoint["private_dns_enabled"] is True and endpoint["vpc_endpoint_type"] == "Interface"
    (fence,) = json.loads(endpoint["policy"])["Statement"]
    assert fence["Action"] == "sns:*" and "aws:PrincipalAccount" in fence["Condition"]["StringEquals"]


def test_production_subscriptions_come_from_config_with_a_filter_policy_per_line_or_severity(
        prod_stacks: dict[str, StackJson]) -> None:
    stack = prod_stacks["factory-prod"]
    topic = ref(incidents_topic(stack), "arn")
    subscriptions = {s.config["endpoint"]: s.config for s in stack.resources("aws_sns_topic_subscription")
                     if s.config["topic_arn"] == topic}
    assert {e: (json.loads(c.get("filter_policy", "null")), c.get("filter_policy_scope"))
            for e, c in subscriptions.items()} == {
        "line-1-team@example.com": ({"line": ["line-1"]}, "MessageAttributes"),
        next(e for e in subscriptions if e.endswith(":plant-incidents-prod")): (
            {"severity": ["critical"]}, "MessageAttributes"),
    }


def test_production_refuses_to_synthesize_incidents_that_reach_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INCIDENT_SUBSCRIPTIONS", raising=False)
    with pytest.raises(ConfigError, match="factory-prod: production incidents must reach someone: set "
                                          "INCIDENT_SUBSCRIPTIONS"):
        build_config("factory", "prod", PROD_ALERTS)
    assert build_config("retail", "prod", PROD_ALERTS).incidents is None  # retail publishes none


@pytest.mark.parametrize(("text", "message"), [
    ("email:a@example.com;line", "incident subscription filter 'line' is not line=A|B or severity=S"),
    ("email:a@example.com;colour=red", "incident subscription filter 'colour=red' is not line=A|B or severity=S"),
    ("email:a@example.com;severity=urgent", "severity must be one of warning, critical, not 'urgent'"),
    ("email:a@example.com;line=line 1", "'line 1' is not a line id"),
    (";line=line-1", "has no protocol:endpoint"),
    ("sms:+15551234567", "alert subscription protocol must be email, https, sqs or lambda"),
])
def test_a_bad_incident_subscription_is_refused_naming_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^INCIDENT_SUBSCRIPTIONS: .*" + message.replace("|", r"\|")):
        build_config("factory", "dev", "", text)
