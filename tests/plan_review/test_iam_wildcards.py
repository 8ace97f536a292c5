"""Partial wildcards in IAM: a grant widened through one is reported, a verb-wide or resource-wide
pattern is as high as `*`, one that keeps a name is a gain, and a rewrite that narrows raises nothing.
The project's own synthesized policies must stay clear of every one of these."""
from __future__ import annotations

import re
from typing import Any

import pytest

from policy.stack_json import StackJson
from tests.plan_review.changes import ACCOUNT, allow, change, document, plan
from tools.plan_review import iam, rules

BUCKET_OBJECTS = "arn:aws:s3:::retail-archive-dev-1/*"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/retail-processor-task-dev"
STREAM = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/retail-updates-dev"


def _review(before: str, after: str) -> list[tuple[str, str, str]]:
    found = rules.assess(plan(change("aws_iam_role_policy", "update", {"policy": before}, {"policy": after})))
    return [(r.rule, r.severity, r.reason) for r in found]


def test_a_grant_widened_from_one_action_to_a_verb_wildcard_is_a_high_wildcard() -> None:
    assert _review(document(allow("s3:GetObject", BUCKET_OBJECTS)), document(allow("s3:Get*", BUCKET_OBJECTS))) == [
        ("iam-wildcard", rules.HIGH, f"wildcard granted: `s3:Get*` on `{BUCKET_OBJECTS}`")]


# (action, resource): each new in an identity policy is as wide as a wildcard.
WIDE = [
    ("iam:Pass*", ROLE), ("iam:pass*", ROLE), ("s3:G*", BUCKET_OBJECTS), ("s3:*Object", BUCKET_OBJECTS),
    ("kms:*", KEY), ("*:*", STREAM), ("*:GetRecords", STREAM), ("kinesis:Get?ecords", "*"),
    ("ec2:Describe*", f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0abc"),
    ("s3:GetObject", "arn:aws:s3:::*"), ("s3:GetObject", "arn:aws:s3:::*/*"),
    ("kinesis:GetRecords", "arn:aws:kinesis:*:*:stream/*"),
    ("kinesis:GetRecords", f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/*"),
    ("dynamodb:GetItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/*-dev"),
    ("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:*"),
    ("logs:PutLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:*"),
    ("sts:AssumeRole", "arn:aws:iam::*:role/retail-processor-task-dev"),
    ("kms:Decrypt", "arn:aws:kms:*:*:*/*"),
]


@pytest.mark.parametrize(("action", "resource"), WIDE, ids=[f"{a} on {r}" for a, r in WIDE])
def test_a_verb_wide_action_or_a_resource_wide_arn_is_a_high_wildcard(action: str, resource: str) -> None:
    assert _review(document(), document(allow(action, resource))) == [
        ("iam-wildcard", rules.HIGH, f"wildcard granted: `{action}` on `{resource}`")]


def test_not_action_is_a_high_wildcard_even_on_one_bucket() -> None:
    statement = {"Effect": "Allow", "NotAction": "iam:*", "Resource": BUCKET_OBJECTS}
    assert _review(document(), document(statement)) == [
        ("iam-wildcard", rules.HIGH, f"wildcard granted: `* except iam:*` on `{BUCKET_OBJECTS}`")]


# (action, resource): partial wildcards that keep a name: a gain, reviewed, not a wildcard.
NAMED = [
    ("kms:GenerateDataKey*", KEY), ("kms:ReEncrypt*", KEY), ("s3:GetObject*", BUCKET_OBJECTS),
    ("s3:PutObject", BUCKET_OBJECTS), ("logs:PutLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/retail/dev/x:*"),
    ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/service-role/*"),
    ("kinesis:GetRecords", "arn:aws:kinesis:*:" + ACCOUNT + ":stream/retail-updates-dev"),
]


@pytest.mark.parametrize(("action", "resource"), NAMED, ids=[f"{a} on {r}" for a, r in NAMED])
def test_a_partial_wildcard_that_keeps_a_name_is_a_medium_gain(action: str, resource: str) -> None:
    assert _review(document(), document(allow(action, resource))) == [
        ("iam-gain", rules.MEDIUM, f"gains `{action}` on `{resource}`")]


# (before, after): the new policy allows nothing the old one did not.
NARROWED = [
    (allow("s3:Get*", BUCKET_OBJECTS), allow("s3:GetObject", BUCKET_OBJECTS)),
    (allow("s3:*", BUCKET_OBJECTS), allow(["s3:Get*", "s3:PutObject"], BUCKET_OBJECTS)),
    (allow("s3:GetObject", "arn:aws:s3:::*"), allow("s3:GetObject", BUCKET_OBJECTS)),
    (allow("kinesis:Get*", "arn:aws:kinesis:*:*:stream/*"), allow("kinesis:GetRecords", STREAM)),
    (allow("s3:GetObject", BUCKET_OBJECTS), allow("S3:getobject", BUCKET_OBJECTS)),
    (allow("*", "*"), allow("kms:Decrypt", KEY)),
]


@pytest.mark.parametrize(("before", "after"), NARROWED, ids=[f"{b['Action']} -> {a['Action']}" for b, a in NARROWED])
def test_a_policy_rewritten_narrower_raises_nothing(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert _review(document(before), document(after)) == []


def test_a_deny_narrowed_through_a_wildcard_is_a_dropped_deny_and_one_widened_is_not() -> None:
    def deny(action: str) -> dict[str, Any]:
        return {"Effect": "Deny", "Action": action, "Resource": BUCKET_OBJECTS}

    assert _review(document(deny("s3:Delete*")), document(deny("s3:DeleteObject"))) == [
        ("iam-gain", rules.MEDIUM, f"a Deny is dropped: `s3:Delete*` on `{BUCKET_OBJECTS}` is no longer denied")]
    assert _review(document(deny("s3:DeleteObject")), document(deny("s3:Delete*"))) == []


def test_a_wide_pattern_for_a_foreign_principal_in_a_resource_policy_is_high() -> None:
    foreign = {"AWS": "arn:aws:iam::999999999999:root"}
    bucket_policy = change("aws_s3_bucket_policy", "update", {"policy": document()},
                           {"policy": document(allow("s3:Get*", BUCKET_OBJECTS, principal=foreign))})
    assert [(r.rule, r.severity) for r in rules.assess(plan(bucket_policy))] == [("iam-wildcard", rules.HIGH)]


# -- the project's own policies ------------------------------------------------------------------------------------

TOKEN = re.compile(r"\$\{([^}]*)\}")


def _as_planned(text: str) -> str:
    """A synthesized policy with its references filled in as Terraform would at plan: an S3 bucket's or a log
    group's ARN in its own shape, other ARNs as `type/name`, ids and names as plain names."""
    def value(match: re.Match[str]) -> str:
        parts = match.group(1).split(".")
        if parts[-1] == "account_id":
            return ACCOUNT
        if parts[-1] == "partition":
            return "aws"
        if parts[-1] != "arn":
            return f"name-{parts[1] if len(parts) > 2 else 'x'}"
        if parts[0] == "aws_s3_bucket":
            return f"arn:aws:s3:::bucket-{parts[1]}"
        if parts[0] == "aws_cloudwatch_log_group":
            return f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/workload/dev/{parts[1]}"
        service = parts[0].removeprefix("aws_").split("_")[0]
        return f"arn:aws:{service}:us-east-1:{ACCOUNT}:{parts[0]}/{parts[1]}"
    return TOKEN.sub(value, text)


def _own_grants(stacks: dict[str, StackJson]) -> list[tuple[str, str, iam.Grant, bool]]:
    found = []
    for stack in stacks.values():
        for type_, (attribute, resource_policy) in iam.POLICY_ATTRIBUTES.items():
            for resource in stack.resources(type_):
                texts = [resource.config.get(attribute), *(b.get("policy") for b in resource.config.get("inline_policy") or [])]
                for text in (t for t in texts if isinstance(t, str)):
                    found.extend((stack.stack_id, resource.path, g, resource_policy) for g in iam.grants(_as_planned(text)))
    return found


@pytest.mark.parametrize("environment", ["dev_stacks", "prod_stacks"])
def test_no_grant_in_the_projects_own_policies_reads_as_a_wildcard(environment: str,
                                                                   request: pytest.FixtureRequest) -> None:
    grants = _own_grants(request.getfixturevalue(environment))
    assert len(grants) > 100  # every policy was read, partial wildcards (`kms:GenerateDataKey*`, `bucket/*`) among them
    assert any("*" in g.action for *_, g, _ in grants) and any("*" in g.resource for *_, g, _ in grants)
    wide = [(stack, path, g) for stack, path, g, resource_policy in grants
            if g.wildcard(resource_policy, frozenset({ACCOUNT}))]
    assert wide == []
