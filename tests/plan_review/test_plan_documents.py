"""The review on whole plan documents shaped like what `terraform show -json` writes for the things
a naive reader gets wrong: module and key names that look like syntax, deposed objects, replacements
that forget, drift, sensitive variables, resource policies kept on the resource itself.

Each document goes through `python -m tools.plan_review` (its `main`), and the test reads the report
and the exit status; one test plans a real configuration with `terraform` (built-in provider only).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.plan_review.changes import ACCOUNT, allow, document, plan_document, resource_change
from tools.plan_review.__main__ import main


def review(tmp_path: Path, plan: dict[str, Any], *extra: str) -> tuple[int, str]:
    """(exit status, report) of the review of one plan document, with no acknowledgement."""
    source = tmp_path / "retail-dev.json"
    source.write_text(json.dumps(plan))
    out = tmp_path / "report.md"
    status = main([str(source), "--acknowledgements", str(tmp_path / "none.toml"), "--out", str(out), *extra])
    return status, out.read_text()


def risk_rows(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith(("| HIGH", "| medium"))]


def test_a_resource_in_a_module_named_data_is_reviewed_like_any_other(tmp_path: Path) -> None:
    plan = plan_document(resource_change("module.data.aws_s3_bucket.archive", "aws_s3_bucket", ["delete"],
                                         {"bucket": "retail-archive-dev"}, module_address="module.data"))
    status, report = review(tmp_path, plan)
    assert status == 1
    assert risk_rows(report) == ["| HIGH | `stateful-delete` | retail-dev | `module.data.aws_s3_bucket.archive` | "
                                 "deleted: loses the bucket and every object in it |"]
    assert "| retail-dev | 0 | 0 | 0 | 1 | 0 | 0 |" in report


def test_for_each_keys_holding_dots_brackets_and_pipes_neither_hide_a_change_nor_break_the_report(tmp_path: Path) -> None:
    plan = plan_document(
        resource_change('aws_kinesis_stream.feed["eu.data.raw"]', "aws_kinesis_stream", ["delete"],
                        {"name": "feed-dev"}, index="eu.data.raw"),
        resource_change('aws_sqs_queue.jobs["a|b"]', "aws_sqs_queue", ["update"],
                        {"tags": {"team[ops]": "a", "cost.center": "1"}}, {"tags": {"team[ops]": "b", "cost.center": "2"}},
                        index="a|b"))
    status, report = review(tmp_path, plan)
    assert status == 1 and len(risk_rows(report)) == 1 and 'aws_kinesis_stream.feed["eu.data.raw"]' in report
    rows = [line.split(" | ")[1:] for line in report.splitlines() if "` update |" in line or line.startswith("|  |  |")]
    assert rows == [['`aws_sqs_queue.jobs["a\\|b"]`', '`tags["cost.center"]`', "`1`", "`2` |"],
                    ["", '`tags["team[ops]"]`', "`a`", "`b` |"]]


def test_a_sensitive_value_under_a_dotted_map_key_never_reaches_the_report(tmp_path: Path) -> None:
    plan = plan_document(resource_change(
        "aws_ssm_parameter.settings", "aws_ssm_parameter", ["update"],
        {"tags": {"db.password": "old-secret-1", "plain": "p1"}}, {"tags": {"db.password": "new-secret-2", "plain": "p2"}},
        change_before_sensitive={"tags": {"db.password": True}}, change_after_sensitive={"tags": {"db.password": True}}))
    _, report = review(tmp_path, plan)
    assert "secret-1" not in report and "secret-2" not in report
    assert '| `tags["db.password"]` | (sensitive) | (sensitive) |' in report


def test_a_sensitive_value_of_a_real_plan_is_masked_in_the_report_and_its_redacted_copy(tmp_path: Path) -> None:
    """`terraform plan` of a configuration with only the built-in provider: a sensitive variable,
    a map key with a dot and a resource in a module called `data`."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed")
    config = tmp_path / "config"
    (config / "store").mkdir(parents=True)
    (config / "main.tf").write_text("""
variable "token" {
  type      = string
  sensitive = true
  default   = "tok-from-a-variable-4711"
}
variable "unused_key" {
  type      = string
  sensitive = true
  default   = "key-nobody-uses-0815"
}
module "data" {
  source = "./store"
}
resource "terraform_data" "settings" {
  input = { "api.token" = var.token, plain = "p2" }
}
""")
    (config / "store" / "main.tf").write_text('resource "terraform_data" "inner" {\n  input = "m"\n}\n')
    state = {"version": 4, "terraform_version": "1.11.4", "serial": 1, "lineage": "plan-review-test", "outputs": {},
             "resources": [{"mode": "managed", "type": "terraform_data", "name": "settings",
                            "provider": 'provider["terraform.io/builtin/terraform"]',
                            "instances": [{"schema_version": 0, "sensitive_attributes": [], "attributes": {
                                "id": "1", "triggers_replace": None,
                                "input": {"value": {"api.token": "t0", "plain": "p1"},
                                          "type": ["object", {"api.token": "string", "plain": "string"}]},
                                "output": {"value": {"api.token": "t0", "plain": "p1"},
                                           "type": ["object", {"api.token": "string", "plain": "string"}]}}}]}]}
    (config / "terraform.tfstate").write_text(json.dumps(state))

    def terraform(*args: str) -> str:
        done = subprocess.run(["terraform", *args], cwd=config, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    terraform("init", "-input=false", "-no-color")
    terraform("plan", "-refresh=false", "-input=false", "-no-color", "-out=plan.tfplan")
    plan = json.loads(terraform("show", "-json", "plan.tfplan"))
    assert "tok-from-a-variable-4711" in json.dumps(plan) and "key-nobody-uses-0815" in json.dumps(plan)
    status, report = review(tmp_path, plan, "--redact-to", str(tmp_path / "redacted"))
    assert status == 0 and "tok-from-a-variable-4711" not in report
    assert '`input["api.token"]` | (sensitive) | (sensitive) |' in report
    assert "`module.data.terraform_data.inner`" in report
    redacted = (tmp_path / "redacted" / "retail-dev.json").read_text()
    assert "tok-from-a-variable-4711" not in redacted and "key-nobody-uses-0815" not in redacted


def test_redacted_plans_mask_sensitive_values_in_drift_and_in_variables(tmp_path: Path) -> None:
    sensitive = {"value": True}
    plan = plan_document(
        resource_change("aws_ssm_parameter.dsn", "aws_ssm_parameter", ["update"], {"value": "now-in-aws", "tier": "Standard"},
                        {"value": "now-in-aws", "tier": "Advanced"}, change_before_sensitive=sensitive,
                        change_after_sensitive=sensitive),
        resource_drift=[resource_change("aws_ssm_parameter.dsn", "aws_ssm_parameter", ["update"],
                                        {"value": "was-before-drift", "tier": "Standard"},
                                        {"value": "now-in-aws", "tier": "Standard"},
                                        change_before_sensitive=sensitive, change_after_sensitive=sensitive)],
        variables={"token": {"value": "only-in-a-variable"}, "region": {"value": "eu-west-1"}},
        configuration={"provider_config": {}, "root_module": {"variables": {"token": {"sensitive": True},
                                                                            "region": {}}}})
    review(tmp_path, plan, "--redact-to", str(tmp_path / "redacted"))
    redacted = json.loads((tmp_path / "redacted" / "retail-dev.json").read_text())
    text = json.dumps(redacted)
    assert "was-before-drift" not in text and "now-in-aws" not in text and "only-in-a-variable" not in text
    assert redacted["variables"] == {"token": {"value": "(sensitive)"}, "region": {"value": "eu-west-1"}}
    assert redacted["resource_drift"][0]["change"]["before"] == {"value": "(sensitive)", "tier": "Standard"}


@pytest.mark.parametrize("principal", [{"AWS": ["*"]}, {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", "*"]}, ["*"]])
def test_a_principal_list_holding_star_is_anyone(tmp_path: Path, principal: Any) -> None:
    plan = plan_document(resource_change(
        "aws_s3_bucket_policy.archive", "aws_s3_bucket_policy", ["update"], {"bucket": "b", "policy": document()},
        {"bucket": "b", "policy": document(allow("s3:GetObject", "arn:aws:s3:::b/*", principal=principal))}))
    status, report = review(tmp_path, plan)
    assert status == 1 and [row.split(" | ")[1] for row in risk_rows(report)] == ["`iam-wildcard`"]


def test_kms_star_for_the_keys_own_root_in_a_one_item_list_is_a_gain_not_a_wildcard(tmp_path: Path) -> None:
    from tools.plan_review import iam

    own = frozenset({ACCOUNT})
    for principal in ({"AWS": [f"arn:aws:iam::{ACCOUNT}:root"]}, {"AWS": [ACCOUNT]}):
        (grant,) = iam.grants(document(allow("kms:*", principal=principal)))
        assert not grant.wildcard(True, own)
    (other,) = iam.grants(document(allow("kms:*", principal={"AWS": ["arn:aws:iam::999999999999:root"]})))
    assert other.wildcard(True, own)


@pytest.mark.parametrize(("type_", "attribute"), [
    ("aws_sns_topic", "policy"), ("aws_sqs_queue", "policy"), ("aws_secretsmanager_secret", "policy")])
def test_a_policy_kept_on_the_topic_queue_or_secret_itself_is_compared(tmp_path: Path, type_: str, attribute: str) -> None:
    plan = plan_document(resource_change(f"{type_}.this", type_, ["update"], {attribute: document()},
                                         {attribute: document(allow("*", "*", principal="*"))}))
    status, report = review(tmp_path, plan)
    assert status == 1 and "`iam-wildcard`" in report and "wildcard granted: `*` on `*` to `\"*\"`" in report


def test_a_role_inline_policy_gaining_a_wildcard_is_high(tmp_path: Path) -> None:
    narrow = document(allow("kinesis:GetRecords", "arn:aws:kinesis:us-east-1:123456789012:stream/s"))
    plan = plan_document(resource_change(
        "aws_iam_role.task", "aws_iam_role", ["update"], {"inline_policy": [{"name": "run", "policy": narrow}]},
        {"inline_policy": [{"name": "run", "policy": document(allow("s3:*"))}]}))
    status, report = review(tmp_path, plan)
    assert status == 1 and "wildcard granted: `s3:*` on `*`" in report


def test_a_new_policy_known_only_after_apply_is_listed_for_review(tmp_path: Path) -> None:
    plan = plan_document(resource_change("aws_iam_role_policy.run", "aws_iam_role_policy", ["create"], None,
                                         {"name": "retail-run-dev", "role": "retail-task-dev"},
                                         change_after_unknown={"id": True, "policy": True}))
    status, report = review(tmp_path, plan)
    assert status == 0
    assert risk_rows(report) == ["| medium | `iam-gain` | retail-dev | `aws_iam_role_policy.run` | `policy` is known "
                                 "only after apply: review the policy in the synthesized JSON |"]


def test_a_deny_dropped_from_a_policy_is_a_gain(tmp_path: Path) -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}}
    plan = plan_document(resource_change("aws_s3_bucket_policy.archive", "aws_s3_bucket_policy", ["update"],
                                         {"bucket": "b", "policy": document(deny)}, {"bucket": "b", "policy": document()}))
    status, report = review(tmp_path, plan)
    assert status == 0 and [row.split(" | ")[-1] for row in risk_rows(report)] == [
        "a Deny is dropped: `s3:*` on `arn:aws:s3:::b/*` to `\"*\"` is no longer denied |"]


@pytest.mark.parametrize(("actions", "after", "reason"), [
    (["delete"], None, "the account's public access block is removed"),
    (["update"], {"block_public_acls": True, "block_public_policy": False, "ignore_public_acls": True,
                  "restrict_public_buckets": True}, "public access block relaxed: `block_public_policy` off"),
])
def test_the_account_public_access_block_removed_or_relaxed_is_high(tmp_path: Path, actions: list[str],
                                                                   after: Any, reason: str) -> None:
    before = dict.fromkeys(("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"),
                           True)
    plan = plan_document(resource_change("aws_s3_account_public_access_block.account",
                                         "aws_s3_account_public_access_block", actions, before, after))
    status, report = review(tmp_path, plan)
    assert status == 1 and [row.split(" | ")[-1] for row in risk_rows(report)] == [f"{reason} |"]


def test_a_bucket_acl_granting_the_public_is_high(tmp_path: Path) -> None:
    plan = plan_document(resource_change("aws_s3_bucket_acl.site", "aws_s3_bucket_acl", ["update"],
                                         {"bucket": "b", "acl": "private"}, {"bucket": "b", "acl": "public-read"}))
    status, report = review(tmp_path, plan)
    assert status == 1 and "the bucket ACL is `public-read`: anyone may read it" in report


def test_a_replacement_that_forgets_the_old_object_does_not_claim_to_destroy_it(tmp_path: Path) -> None:
    plan = plan_document(resource_change("aws_db_instance.main", "aws_db_instance", ["create", "forget"],
                                         {"identifier": "retail-db-dev"}, {"identifier": "retail-db-dev"}))
    status, report = review(tmp_path, plan)
    assert status == 0 and "destroys" not in report
    assert [row.split(" | ")[1] for row in risk_rows(report)] == ["`stateful-forget`"]
    assert "replaced, but the old object is only forgotten" in report


def test_a_deposed_object_deleted_and_a_tainted_replacement_say_so(tmp_path: Path) -> None:
    plan = plan_document(
        resource_change("aws_db_instance.main", "aws_db_instance", ["delete"], {"identifier": "retail-db-dev"},
                        deposed="0f1e2d3c"),
        resource_change("aws_kinesis_stream.feed", "aws_kinesis_stream", ["delete", "create"],
                        {"name": "feed-dev"}, {"name": "feed-dev"}, action_reason="replace_because_tainted"))
    status, report = review(tmp_path, plan)
    assert status == 1
    assert "the deposed object 0f1e2d3c (left by an interrupted create-before-destroy replacement) is deleted" in report
    assert "| `-` delete | `aws_db_instance.main` (deposed 0f1e2d3c) |" in report
    assert "replaced because it is tainted" in report
    assert "| `-/+` replace (tainted) | `aws_kinesis_stream.feed` |" in report


def test_imports_and_moves_without_other_change_are_listed(tmp_path: Path) -> None:
    plan = plan_document(
        resource_change("aws_s3_bucket.archive", "aws_s3_bucket", ["no-op"], {"bucket": "b"}, {"bucket": "b"},
                        change_importing={"id": "b"}),
        resource_change("aws_sqs_queue.jobs", "aws_sqs_queue", ["no-op"], {"name": "q"}, {"name": "q"},
                        previous_address="aws_sqs_queue.queue"))
    status, report = review(tmp_path, plan)
    assert status == 0
    assert "| import | `aws_s3_bucket.archive` | | | |" in report
    assert "| moved | `aws_sqs_queue.jobs` (from `aws_sqs_queue.queue`) | | | |" in report


def test_a_change_no_provider_schema_would_give_exits_2_naming_it_rather_than_crash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = plan_document(resource_change("aws_security_group.db", "aws_security_group", ["update"],
                                         {"ingress": []}, {"ingress": 22}))
    source = tmp_path / "retail-dev.json"
    source.write_text(json.dumps(plan))
    out = tmp_path / "report.md"
    out.write_text("previous report")
    assert main([str(source), "--acknowledgements", str(tmp_path / "none.toml"), "--out", str(out)]) == 2
    assert "aws_security_group.db: the `security_group_open_to_the_world` rule cannot read this change" in \
        capsys.readouterr().err
    assert out.read_text() == "previous report"


def test_a_new_group_open_to_the_world_is_high_though_its_egress_is_known_only_after_apply(tmp_path: Path) -> None:
    """What `terraform plan` gives for an aws_security_group created with one ingress block and no egress."""
    ingress = {"cidr_blocks": ["0.0.0.0/0"], "description": "", "from_port": 5432, "ipv6_cidr_blocks": [],
               "prefix_list_ids": [], "protocol": "tcp", "security_groups": [], "self": False, "to_port": 5432}
    plan = plan_document(resource_change(
        "aws_security_group.db", "aws_security_group", ["create"], None, {"name": "retail-db-dev", "ingress": [ingress]},
        change_after_unknown={"arn": True, "egress": True, "id": True, "ingress": [
            {"cidr_blocks": [False], "ipv6_cidr_blocks": [], "prefix_list_ids": [], "security_groups": []}]}))
    status, report = review(tmp_path, plan)
    assert status == 1 and "| HIGH | `open-security-group` | retail-dev | `aws_security_group.db` | ingress from " \
        "0.0.0.0/0 on tcp 5432 |" in report


def test_outputs_and_drift_are_reported_with_their_sensitive_values_masked(tmp_path: Path) -> None:
    sensitive = {"value": True}
    plan = plan_document(
        resource_change("aws_ssm_parameter.dsn", "aws_ssm_parameter", ["no-op"], {"value": "now", "tier": "Advanced"},
                        {"value": "now", "tier": "Advanced"}, change_before_sensitive=sensitive,
                        change_after_sensitive=sensitive),
        resource_drift=[
            resource_change("aws_ssm_parameter.dsn", "aws_ssm_parameter", ["update"],
                            {"value": "drifted-secret-old", "tier": "Standard"},
                            {"value": "drifted-secret-new", "tier": "Advanced"},
                            change_before_sensitive=sensitive, change_after_sensitive=sensitive),
            resource_change("aws_sqs_queue.jobs", "aws_sqs_queue", ["delete"], {"name": "jobs-dev"})],
        output_changes={
            "stream_name": {"actions": ["update"], "before": "retail-updates-dev", "after": "retail-feed-dev",
                            "after_unknown": False, "before_sensitive": False, "after_sensitive": False},
            "redis_token": {"actions": ["update"], "before": "tok-old-1", "after": "tok-new-2", "after_unknown": False,
                            "before_sensitive": True, "after_sensitive": True},
            "bucket_arn": {"actions": ["create"], "before": None, "after": None, "after_unknown": True,
                           "before_sensitive": False, "after_sensitive": False},
            "db_port": {"actions": ["no-op"], "before": 5432, "after": 5432, "after_unknown": False,
                        "before_sensitive": False, "after_sensitive": False}})
    status, report = review(tmp_path, plan)
    assert status == 0 and "drifted-secret" not in report and "tok-" not in report
    assert "| `aws_ssm_parameter.dsn` | `tier` | `Standard` | `Advanced` |" in report
    assert "| | `value` | (sensitive) | (sensitive) |" in report.replace("|  |", "| |")
    assert "| `aws_sqs_queue.jobs` | deleted outside Terraform | | |" in report
    assert "| `~` update | `stream_name` | `retail-updates-dev` | `retail-feed-dev` |" in report
    assert "| `~` update | `redis_token` | (sensitive) | (sensitive) |" in report
    assert "| `+` create | `bucket_arn` |  | (known after apply) |" in report and "db_port" not in report


def test_a_targeted_or_deferred_plan_is_called_incomplete(tmp_path: Path) -> None:
    stream = resource_change("aws_kinesis_stream.feed", "aws_kinesis_stream", ["update"], {"shard_count": 1},
                             {"shard_count": 2})
    _, targeted = review(tmp_path, plan_document(stream, complete=False, applyable=True))
    assert "**retail-dev: this plan is incomplete** (planned with `-target`, or with changes deferred): it does not " \
        "show every change" in targeted
    deferred = plan_document(stream, deferred_changes=[{"reason": "resource_config_unknown", "resource_change": resource_change(
        'aws_s3_bucket.logs["x"]', "aws_s3_bucket", ["create"], None, {"bucket": "x"})}])
    _, report = review(tmp_path, deferred)
    assert 'deferred: `aws_s3_bucket.logs["x"]` (resource_config_unknown))' in report
    _, whole = review(tmp_path, plan_document(stream, complete=True))
    assert "incomplete" not in whole


def test_a_failing_check_block_is_shown_though_terraform_only_warns(tmp_path: Path) -> None:
    """`checks` as `terraform show -json` writes it for a `check` block whose assertion fails."""
    checks = [{"address": {"kind": "check", "name": "archive", "to_display": "check.archive"}, "status": "fail",
               "instances": [{"address": {"to_display": "check.archive"}, "status": "fail",
                              "problems": [{"message": "the archive bucket has no replication"}]}]},
              {"address": {"kind": "check", "name": "ok", "to_display": "check.ok"}, "status": "pass", "instances": []}]
    _, report = review(tmp_path, plan_document(checks=checks))
    assert "**retail-dev: check `check.archive` fails**: the archive bucket has no replication (Terraform only warns)." \
        in report and "check.ok" not in report


@pytest.mark.parametrize("type_", ["aws_ebs_volume", "aws_opensearch_domain", "aws_cognito_user_pool",
                                   "aws_kms_replica_key", "aws_msk_cluster"])
def test_deleting_a_store_this_project_does_not_make_is_still_a_stateful_delete(tmp_path: Path, type_: str) -> None:
    status, report = review(tmp_path, plan_document(resource_change(f"{type_}.this", type_, ["delete"], {"id": "x"})))
    assert status == 1 and [row.split(" | ")[1] for row in risk_rows(report)] == ["`stateful-delete`"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_plan_saved_with_a_byte_order_mark_is_reviewed(tmp_path: Path, encoding: str) -> None:
    """`terraform show -json plan > plan.json` in Windows PowerShell writes UTF-16 with a byte order mark."""
    source = tmp_path / "retail-dev.json"
    source.write_bytes(json.dumps(plan_document(resource_change("aws_kinesis_stream.feed", "aws_kinesis_stream", ["delete"],
                                                                {"name": "feed-dev"}))).encode(encoding))
    out = tmp_path / "report.md"
    assert main([str(source), "--acknowledgements", str(tmp_path / "none.toml"), "--out", str(out)]) == 1
    assert "`stateful-delete`" in out.read_text()


def _deferred_policy(actions: list[str]) -> dict[str, Any]:
    """A role policy reading an aws_iam_policy_document that waits for a new bucket's ARN, as the
    hashicorp/aws provider plans it: the document is read at apply, the policy unknown."""
    statement = {"actions": actions, "condition": [], "effect": None, "not_actions": None, "not_principals": [],
                 "not_resources": None, "principals": [], "resources": [None], "sid": None}
    configuration = {"provider_config": {}, "root_module": {"module_calls": {"app": {"module": {"resources": [
        {"address": "aws_iam_role_policy.run", "mode": "managed", "type": "aws_iam_role_policy", "name": "run",
         "expressions": {"name": {"constant_value": "run"},
                         "policy": {"references": ["data.aws_iam_policy_document.run.json",
                                                   "data.aws_iam_policy_document.run"]}}}]}}}}}
    return plan_document(
        resource_change('module.app["eu"].data.aws_iam_policy_document.run', "aws_iam_policy_document", ["read"], None,
                        {"statement": [statement]}, mode="data", action_reason="read_because_config_unknown"),
        resource_change('module.app["eu"].aws_iam_role_policy.run', "aws_iam_role_policy", ["create"], None,
                        {"name": "retail-run-dev"}, change_after_unknown={"id": True, "policy": True, "role": True}),
        configuration=configuration)


def test_a_wildcard_in_a_policy_document_read_only_at_apply_is_high(tmp_path: Path) -> None:
    status, report = review(tmp_path, _deferred_policy(["s3:GetObject", "*"]))
    assert status == 1
    assert "| HIGH | `iam-wildcard` | retail-dev | `module.app[\"eu\"].aws_iam_role_policy.run` | wildcard granted (by " \
        "`module.app[\"eu\"].data.aws_iam_policy_document.run`, read at apply): `*` on `(known after apply)` |" in report
    status, report = review(tmp_path, _deferred_policy(["s3:GetObject"]))
    assert status == 0 and "iam-wildcard" not in report


@pytest.mark.parametrize(("engine", "old", "new", "major"), [
    ("mysql", "5.6.51", "5.7.44", True), ("mariadb", "10.6.14", "10.11.6", True), ("postgres", "9.6.24", "10.21", True),
    ("postgres", "16.3", "17.2", True), ("postgres", "16.3", "16.4", False), ("mysql", "8.0.35", "8.0.36", False),
    ("mariadb", "10.11.5", "10.11.6", False)])
def test_a_major_upgrade_is_told_by_each_engines_own_numbering(tmp_path: Path, engine: str, old: str, new: str,
                                                                major: bool) -> None:
    plan = plan_document(resource_change("aws_db_instance.main", "aws_db_instance", ["update"],
                                         {"engine": engine, "engine_version": old}, {"engine": engine, "engine_version": new}))
    status, report = review(tmp_path, plan)
    assert (status, "`engine-major-upgrade`" in report) == ((1, True) if major else (0, False))


def test_a_secret_copied_where_the_plan_does_not_mark_it_is_masked_in_the_report_too(tmp_path: Path) -> None:
    token = "r3dis-t0ken-9f8e7d"
    containers = json.dumps([{"environment": [{"name": "REDIS_AUTH", "value": token}]}])
    plan = plan_document(
        resource_change("aws_elasticache_replication_group.cache", "aws_elasticache_replication_group", ["update"],
                        {"auth_token": "old-token-123456", "num_cache_clusters": 2},
                        {"auth_token": token, "num_cache_clusters": 2},
                        change_before_sensitive={"auth_token": True}, change_after_sensitive={"auth_token": True}),
        resource_change("aws_ecs_task_definition.app", "aws_ecs_task_definition", ["delete", "create"],
                        {"container_definitions": "[]"}, {"container_definitions": containers},
                        change_replace_paths=[["container_definitions"]]),
        resource_change("aws_kinesis_stream.feed", "aws_kinesis_stream", ["update"], {"name": "feed-dev"},
                        {"name": "feed-dev", "stream_mode_details": [{"stream_mode": token}]}))
    _, report = review(tmp_path, plan, "--redact-to", str(tmp_path / "redacted"))
    assert token not in report and "t0ken" not in report and "old-token" not in report
    assert token not in (tmp_path / "redacted" / "retail-dev.json").read_text()
    assert "| `-/+` replace | `aws_ecs_task_definition.app` | `container_definitions` (forces replacement) |" in report
