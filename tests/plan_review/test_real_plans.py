"""Each risky change, planned for real against the deployed retail stack, is reported with its
reason; a harmless change is not. One plan per scenario, so a risk that shows up where it
should not is caught too."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.plan_review.scenarios import SECRET
from tools.plan_review import model, report, rules


def risks_of(plan: model.StackPlan) -> list[rules.Risk]:
    return rules.assess(plan)


def by_rule(plan: model.StackPlan) -> dict[str, list[rules.Risk]]:
    found: dict[str, list[rules.Risk]] = {}
    for risk in risks_of(plan):
        found.setdefault(risk.rule, []).append(risk)
    return found


def test_a_tag_value_and_an_alarm_threshold_change_many_resources_and_raise_no_risk(plans: dict[str, model.StackPlan]) -> None:
    plan = plans["harmless"]
    counts = plan.counts()
    assert counts["update"] > 50 and counts["replace"] == counts["delete"] == counts["create"] == 0
    assert risks_of(plan) == []


def test_renaming_the_database_is_reported_as_a_replacement_that_loses_its_data(plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["db-renamed"])
    assert set(found) == {"stateful-replace", "iam-gain"}
    (risk,) = found["stateful-replace"]
    assert risk.address.startswith("aws_db_instance.") and risk.severity == rules.HIGH
    assert "`db_name` forces replacement" in risk.reason and "data" in risk.reason
    # the service's policy names the instance's resource id (rds-db:connect) and the migration's
    # its master secret, both replaced with it: unreviewable until apply
    notes = found["iam-gain"]
    assert sorted(n.address.split(".")[1].split("_")[0] for n in notes) == ["migration", "processor"]
    assert all(n.severity == rules.MEDIUM and "known only after apply" in n.reason for n in notes)


def test_a_major_engine_upgrade_is_reported(plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["engine-17"])
    assert set(found) == {"engine-major-upgrade"}
    assert "16 -> 17" in found["engine-major-upgrade"][0].reason


def test_shortened_retention_and_a_retail_archive_under_three_years_are_reported(plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["retention"])
    assert set(found) == {"protection"}
    reasons = [r.reason for r in found["protection"]]
    assert any(r == "backup retention (days) shortened from 7 to 1" for r in reasons)
    assert sum(r == "log retention (days) shortened from 30 to 7" for r in reasons) >= 5
    assert any("archive expires after 365 days" in r and "3 years" in r for r in reasons)
    assert all(r.severity == rules.HIGH for r in found["protection"])


def test_a_widened_policy_shows_the_added_actions_and_flags_the_wildcard(plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["policy-widened"])
    assert set(found) == {"iam-wildcard", "iam-gain"}
    (wild,) = found["iam-wildcard"]
    assert wild.severity == rules.HIGH and "`s3:*`" in wild.reason
    (gain,) = found["iam-gain"]
    assert gain.severity == rules.MEDIUM and "s3:*" not in gain.reason
    assert gain.reason == "gains `kinesis:DeleteStream` on `arn:aws:kinesis:us-east-1:123456789012:stream/retail-updates-local`"


def test_a_port_opened_to_the_internet_is_reported(plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["port-opened"])
    assert set(found) == {"open-security-group"}
    (risk,) = found["open-security-group"]
    assert risk.severity == rules.HIGH and "0.0.0.0/0" in risk.reason and "5432" in risk.reason


def test_a_new_resource_without_tags_or_suffix_is_reported(plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["untagged"])
    assert set(found) == {"tags-and-suffix"}
    reasons = sorted(r.reason for r in found["tags-and-suffix"])
    assert reasons[0].startswith("name `audit-events` does not carry the environment suffix")
    assert reasons[1].startswith("new resource lacks tags: Project, Workload, Environment")


def test_rotation_longer_than_30_days_is_reported(plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["rotation-90"])
    assert set(found) == {"rotation"}
    assert found["rotation"][0].reason == "credentials rotate every 90 days (at most 30 allowed)"


def test_encryption_turned_off_is_reported_and_a_sensitive_value_never_shows(plans: dict[str, model.StackPlan],
                                                                             tmp_path: Path) -> None:
    plan = plans["unencrypted"]
    found = by_rule(plan)
    assert "encryption" in found and found["encryption"][0].address.startswith("aws_kinesis_stream.")
    text = report.render([report.Reviewed(plan, risks_of(plan))])
    assert "auth_token" in text and "(sensitive)" in text
    assert SECRET not in text


def test_forgetting_resources_is_a_valid_plan_and_a_note_for_each_says_it_stays_in_aws(plans: dict[str, model.StackPlan]) -> None:
    plan = plans["forget"]
    assert plan.counts()["forget"] == 4 and plan.counts()["delete"] == 0
    found = by_rule(plan)
    assert set(found) == {"stateful-forget"}
    notes = {r.address.split(".")[0]: r for r in found["stateful-forget"]}
    assert set(notes) == {"aws_flow_log", "aws_cloudwatch_log_group", "aws_iam_role", "aws_iam_role_policy"}
    assert all(r.severity == rules.MEDIUM and "stays in AWS" in r.reason and "billed" in r.reason
               for r in notes.values())
    assert notes["aws_cloudwatch_log_group"].reason.count("log group and its log events stays") == 1


def test_kms_star_for_another_accounts_root_is_high_while_the_keys_own_account_stays_exempt(
        plans: dict[str, model.StackPlan]) -> None:
    plan = plans["foreign-key-admin"]
    assert plan.accounts == frozenset({"123456789012"})  # moto's account, from the caller identity
    found = by_rule(plan)
    assert set(found) == {"iam-wildcard"}
    (risk,) = found["iam-wildcard"]
    assert risk.severity == rules.HIGH and risk.address.startswith("aws_kms_key.")
    assert "`kms:*`" in risk.reason and "999999999999" in risk.reason


def test_disabling_the_stacks_key_is_high(plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["key-disabled"])
    assert set(found) == {"encryption"}
    (risk,) = found["encryption"]
    assert risk.severity == rules.HIGH and risk.reason.startswith("the key is disabled")


def test_an_aws_managed_full_access_policy_is_as_wide_as_it_reads(plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["s3-full-access"])
    assert set(found) == {"iam-wildcard"}
    (risk,) = found["iam-wildcard"]
    assert risk.severity == rules.HIGH and "AmazonS3FullAccess" in risk.reason and "full-access" in risk.reason


def test_force_destroy_suspended_versioning_and_the_aws_managed_key_on_the_archive_are_high(
        plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["archive-weakened"])
    assert set(found) == {"protection", "encryption"}
    protection = sorted(r.reason for r in found["protection"])
    assert len(protection) == 2
    assert protection[0].startswith("`force_destroy` on") and protection[1].startswith("versioning suspended")
    (encryption,) = found["encryption"]
    assert "AWS-managed key" in encryption.reason and encryption.address.startswith(
        "aws_s3_bucket_server_side_encryption_configuration.")
    assert all(r.severity == rules.HIGH for risks in found.values() for r in risks)


def test_dropping_the_databases_backups_is_high(plans: dict[str, model.StackPlan]) -> None:
    found = by_rule(plans["backups-dropped"])
    assert set(found) == {"protection", "stateful-delete"}
    reasons = sorted(r.reason for r in found["protection"])
    assert reasons == ["the database's backup plan is deleted: no new backups are taken",
                       "the database's backup selection is deleted: no new backups are taken"]
    (vault,) = found["stateful-delete"]
    assert vault.address.startswith("aws_backup_vault.")


def test_a_destroy_plan_raises_the_stateful_deletes_and_no_noise_from_their_companions(plans: dict[str, model.StackPlan]) -> None:
    plan = plans["destroy"]
    assert plan.counts()["delete"] > 80 and plan.counts()["create"] == 0
    found = by_rule(plan)
    assert set(found) == {"stateful-delete"}
    deleted_types = {r.address.split(".")[0] for r in found["stateful-delete"]}
    assert {"aws_db_instance", "aws_s3_bucket", "aws_kinesis_stream", "aws_kms_key",
            "aws_elasticache_replication_group"} <= deleted_types


def test_every_risk_carries_a_rule_id_an_acknowledgement_can_name(plans: dict[str, model.StackPlan]) -> None:
    for plan in plans.values():
        for risk in risks_of(plan):
            assert risk.rule in rules.RISK_RULES, risk


def test_a_resize_is_no_risk_and_its_monthly_cost_change_is_shown_per_resource(plans: dict[str, model.StackPlan]) -> None:
    from stacks.config import build_config
    from tools.cost import prices
    from tools.plan_review import cost

    plan = plans["resized"]
    assert risks_of(plan) == []
    change = cost.cost_change(plan)
    rows = {address.split(".")[0]: (old, new) for address, old, new in change.rows}
    assert set(rows) == {"aws_db_instance", "aws_elasticache_replication_group"}
    table = prices.load()
    hour = table.hours_per_month
    db_old, db_new = rows["aws_db_instance"]
    assert db_new - db_old == pytest.approx((table.price("us-east-1", "rds_postgres_instance_hour", "db.t4g.small")
                                             - table.price("us-east-1", "rds_postgres_instance_hour", "db.t4g.micro")) * hour)
    nodes = build_config("retail", "local").cache.num_cache_clusters  # the plans are of the local stacks
    assert rows["aws_elasticache_replication_group"] == pytest.approx(
        (nodes * table.price("us-east-1", "elasticache_node_hour", "cache.t4g.micro") * hour,
         nodes * table.price("us-east-1", "elasticache_node_hour", "cache.t4g.small") * hour))
    text = "\n".join(cost.render(change))
    assert f"prices of {table.as_of.isoformat()}" in text and "`aws_db_instance." in text


def test_a_harmless_plan_changes_no_cost_and_a_destroy_takes_the_whole_fixed_cost_away(plans: dict[str, model.StackPlan]) -> None:
    from tools.plan_review import cost

    harmless = cost.cost_change(plans["harmless"])
    assert harmless.rows == () and harmless.before == pytest.approx(harmless.after) and harmless.before > 50
    assert "No change in fixed monthly cost" in "\n".join(cost.render(harmless))
    gone = cost.cost_change(plans["destroy"])
    assert gone.after == 0 and gone.before == pytest.approx(harmless.before)
    assert {address.split(".")[0] for address, _, _ in gone.rows} >= {
        "aws_db_instance", "aws_elasticache_replication_group", "aws_kinesis_stream", "aws_vpc_endpoint",
        "aws_ecs_service", "aws_kms_key", "aws_cloudwatch_metric_alarm"}
    # what depends on traffic is named, not guessed
    assert any("depends on traffic" in why for _, why in gone.unpriced)
