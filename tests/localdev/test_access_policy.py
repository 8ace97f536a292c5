"""The local IAM evaluator decides as AWS does: deny wins, keys need their key policy, conditions on absent keys."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from localdev.access.policy import Policy, Request, conditions_hold, evaluate
from localdev.access.report import Entry, grants, refusals, unused_grants

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/processor-task"
STREAM = f"arn:aws:kinesis:eu-west-1:{ACCOUNT}:stream/factory-readings-dev"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VIA_KINESIS = {"kms:ViaService": "kinesis.eu-west-1.amazonaws.com", "kms:CallerAccount": ACCOUNT}


def identity(*statements: dict) -> list[Policy]:
    return [Policy.parse("identity policy run", {"Version": "2012-10-17", "Statement": list(statements)})]


def key_policy(*statements: dict) -> Policy:
    return Policy.parse("key policy", {"Version": "2012-10-17", "Statement": list(statements)})


READ = {"Sid": "ReadTheStream", "Effect": "Allow", "Action": ["kinesis:GetRecords", "kinesis:ListShards"],
        "Resource": [STREAM]}
DECRYPT_VIA_KINESIS = {"Sid": "DecryptTheStream", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [KEY],
                       "Condition": {"StringEquals": {"kms:ViaService": "kinesis.eu-west-1.amazonaws.com"}}}
ACCOUNT_USES_KEY_THROUGH_SERVICES = {
    "Sid": "AccountPrincipalsUseTheKeyThroughServices", "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
    "Resource": "*", "Condition": {"StringEquals": {"kms:ViaService": ["kinesis.eu-west-1.amazonaws.com",
                                                                      "sns.eu-west-1.amazonaws.com"],
                                                    "kms:CallerAccount": ACCOUNT}}}


def test_an_identity_statement_allows_its_actions_on_its_resources_and_names_itself() -> None:
    decision = evaluate(Request(ROLE, "kinesis:GetRecords", STREAM), identity(READ))
    assert decision.allowed and decision.reason == "allowed by ReadTheStream (identity policy run)"


def test_another_stream_or_action_is_an_implicit_deny_naming_the_action() -> None:
    other = STREAM.replace("factory-readings-dev", "retail-updates-dev")
    assert evaluate(Request(ROLE, "kinesis:GetRecords", other), identity(READ)).reason == (
        "no identity-based policy allows the kinesis:GetRecords action")
    assert not evaluate(Request(ROLE, "kinesis:PutRecords", STREAM), identity(READ)).allowed


def test_actions_match_without_case_and_with_wildcards_resources_with_case() -> None:
    policy = identity({"Effect": "Allow", "Action": "Kinesis:Get*", "Resource": STREAM.replace("dev", "*")})
    assert evaluate(Request(ROLE, "kinesis:GetShardIterator", STREAM), policy).allowed
    assert not evaluate(Request(ROLE, "kinesis:GetShardIterator", STREAM.upper()), policy).allowed


def test_an_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Sid": "NoReads", "Effect": "Deny", "NotAction": "kinesis:ListShards", "Resource": "*"}
    decision = evaluate(Request(ROLE, "kinesis:GetRecords", STREAM), identity(READ, deny))
    assert not decision.allowed and decision.reason == "explicitly denied by NoReads (identity policy run)"
    assert evaluate(Request(ROLE, "kinesis:ListShards", STREAM), identity(READ, deny)).allowed


def test_a_key_use_through_kinesis_needs_both_the_key_policy_and_the_identity_policy() -> None:
    request = Request(ROLE, "kms:Decrypt", KEY, VIA_KINESIS)
    keys = key_policy(ACCOUNT_USES_KEY_THROUGH_SERVICES)
    decision = evaluate(request, identity(DECRYPT_VIA_KINESIS), key_policy=keys)
    assert decision.allowed
    assert decision.reason == ("allowed by DecryptTheStream (identity policy run), which "
                               "AccountPrincipalsUseTheKeyThroughServices (key policy) lets IAM decide")
    missing = evaluate(request, identity(READ), key_policy=keys)
    assert not missing.allowed and missing.reason.startswith("no identity-based policy allows the kms:Decrypt action")


def test_a_direct_key_call_is_refused_by_a_key_policy_that_allows_only_use_through_services() -> None:
    anywhere = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}
    decision = evaluate(Request(ROLE, "kms:Decrypt", KEY, {"kms:CallerAccount": ACCOUNT}), identity(anywhere),
                        key_policy=key_policy(ACCOUNT_USES_KEY_THROUGH_SERVICES))
    assert not decision.allowed and decision.reason == "the key policy does not allow it for this principal"
    via_s3 = {**VIA_KINESIS, "kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    assert not evaluate(Request(ROLE, "kms:Decrypt", KEY, via_s3), identity(anywhere),
                        key_policy=key_policy(ACCOUNT_USES_KEY_THROUGH_SERVICES)).allowed


def test_a_key_policy_naming_the_role_allows_it_without_an_identity_grant() -> None:
    named = {"Sid": "ExecAgent", "Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms:GenerateDataKey",
             "Resource": "*"}
    assert evaluate(Request(ROLE, "kms:GenerateDataKey", KEY), [], key_policy=key_policy(named)).allowed


def test_a_resource_policy_allows_a_named_principal_but_the_account_root_only_defers_to_iam() -> None:
    topic = f"arn:aws:sns:eu-west-1:{ACCOUNT}:factory-incidents-dev"
    root = Policy.parse("topic policy", {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                        "Action": "sns:Publish", "Resource": topic}]})
    named = Policy.parse("topic policy", {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE},
                                                         "Action": "sns:Publish", "Resource": topic}]})
    assert not evaluate(Request(ROLE, "sns:Publish", topic), [], resource_policy=root).allowed
    assert evaluate(Request(ROLE, "sns:Publish", topic), [], resource_policy=named).allowed


def test_a_trust_statement_without_a_resource_allows_the_service_it_names_and_no_role_or_other_service() -> None:
    trust = Policy.parse("trust policy", {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                                                         "Action": "sts:AssumeRole"}]})
    assert evaluate(Request("ecs-tasks.amazonaws.com", "sts:AssumeRole", ROLE), [], resource_policy=trust).allowed
    assert not evaluate(Request("iot.amazonaws.com", "sts:AssumeRole", ROLE), [], resource_policy=trust).allowed
    assert not evaluate(Request(ROLE, "sts:AssumeRole", ROLE), [], resource_policy=trust).allowed


def test_a_condition_on_a_key_the_request_lacks_fails_except_negated_ifexists_and_null() -> None:
    assert not conditions_hold({"StringEquals": {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}}, {})
    assert conditions_hold({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}, {})
    assert conditions_hold({"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}}, {})
    assert conditions_hold({"Null": {"aws:SourceVpce": "true"}}, {})
    assert not conditions_hold({"Null": {"aws:SourceVpce": "false"}}, {})
    assert conditions_hold({"Bool": {"aws:SecureTransport": "false"}}, {"AWS:securetransport": "False"})


def test_multivalued_conditions_follow_for_any_value_and_for_all_values() -> None:
    tags = {"aws:TagKeys": ["line", "severity"]}
    assert conditions_hold({"ForAllValues:StringEquals": {"aws:TagKeys": ["line", "severity", "x"]}}, tags)
    assert not conditions_hold({"ForAllValues:StringEquals": {"aws:TagKeys": ["line"]}}, tags)
    assert conditions_hold({"ForAnyValue:StringLike": {"aws:TagKeys": ["sev*"]}}, tags)
    assert conditions_hold({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/processor-*"}},
                           {"aws:PrincipalArn": ROLE})


def test_an_operator_the_evaluator_does_not_know_fails_closed_and_is_named() -> None:
    odd = {"Effect": "Allow", "Action": "kinesis:GetRecords", "Resource": STREAM,
           "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}
    decision = evaluate(Request(ROLE, "kinesis:GetRecords", STREAM), identity(odd))
    assert not decision.allowed and decision.reason.endswith("condition operators not understood here: DateLessThan")
    deny = {**odd, "Effect": "Deny"}
    assert not evaluate(Request(ROLE, "kinesis:GetRecords", STREAM), identity(READ, deny)).allowed


def test_the_report_names_each_refusal_once_and_the_grants_no_call_used() -> None:
    entries = [Entry(ROLE, "kinesis:GetRecords", STREAM, True, "ok"),
               Entry(ROLE, "kms:Decrypt", KEY, False, "no identity-based policy allows the kms:Decrypt action",
                     on_behalf_of="kinesis:GetRecords")] * 2
    assert refusals(entries) == [f"processor-task: kms:Decrypt on {KEY} (for kinesis:GetRecords) denied: "
                                 "no identity-based policy allows the kms:Decrypt action"]
    db_user = f"arn:aws:rds-db:eu-west-1:{ACCOUNT}:dbuser:db-ABC/processor"
    granted = grants("processor-task", identity(READ, {"Sid": "SignIn", "Effect": "Allow", "Action": "rds-db:connect",
                                                       "Resource": db_user}))
    unused, unexercisable = unused_grants(entries, granted)
    assert [(g.action, g.resource) for g in unused] == [("kinesis:ListShards", STREAM)]
    assert [(g.action, reason.split(" (")[0]) for g, reason in unexercisable] == [
        ("rds-db:connect", "the local PostgreSQL cannot check an IAM token")]


def test_a_refused_call_stops_the_run_naming_role_action_and_resource(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from localdev import deploy

    log = tmp_path / "access.jsonl"
    allowed = {"principal": ROLE, "action": "kinesis:GetRecords", "resource": STREAM, "allowed": True, "reason": "ok"}
    log.write_text(json.dumps(allowed) + "\n")
    monkeypatch.setattr(deploy, "ACCESS_LOG", log)
    offset = deploy.log_size()
    deploy.fail_on_refusals(0, "the pipeline run")  # only allowed calls: the run goes on
    refused = {**allowed, "action": "kms:Decrypt", "resource": KEY, "allowed": False, "on_behalf_of": "kinesis:GetRecords",
               "reason": "no identity-based policy allows the kms:Decrypt action"}
    with open(log, "a", encoding="utf-8") as out:
        out.write(json.dumps(refused) + "\n")
    with pytest.raises(SystemExit) as stopped:
        deploy.fail_on_refusals(offset, "the pipeline run")
    assert str(stopped.value).endswith(f"processor-task: kms:Decrypt on {KEY} (for kinesis:GetRecords) denied: "
                                       "no identity-based policy allows the kms:Decrypt action")
    deploy.fail_on_refusals(log.stat().st_size, "a later run")  # a run is judged on its own calls
