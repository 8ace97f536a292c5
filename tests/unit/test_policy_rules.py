"""Each policy rule passes the real app and catches the violation it exists for."""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from policy import rules
from policy.check import Suppression, check_app, load_suppressions
from policy.stack_json import StackJson

Mutation = Callable[[dict[str, Any]], None]


def mutated(stack: StackJson, mutate: Mutation) -> StackJson:
    document = copy.deepcopy(stack.document)
    mutate(document)
    return StackJson(stack.stack_id, document)


def first(document: dict[str, Any], type_: str) -> dict[str, Any]:
    """The processor's resource of `type_` where a stack has more than one (the catalog read API's)."""
    found = list(document["resource"][type_].values())
    return next((r for r in found if r["//"]["metadata"]["path"].split("/")[1] == "processor"), found[0])


def findings(rule: rules.Rule, stack: StackJson) -> list[rules.Finding]:
    return list(rule(stack))


def test_the_synthesized_app_has_no_findings_in_any_environment(
    dev_stacks: dict[str, StackJson], prod_stacks: dict[str, StackJson], exec_stacks: dict[str, StackJson]
) -> None:
    assert check_app([*dev_stacks.values(), *prod_stacks.values(), *exec_stacks.values()]) == []


def test_every_rule_is_registered() -> None:
    assert set(rules.RULES) == {
        "names_carry_the_suffix", "resources_are_tagged", "data_at_rest_uses_the_cmk", "tls_is_enforced",
        "no_wildcard_actions", "no_wildcard_resources", "no_secrets_are_created", "destroyable_outside_production",
        "production_is_protected", "vended_logs_share_one_resource_policy_statement",
        "production_alarms_reach_someone", "endpoints_are_fenced_to_this_account",
        "shard_level_metrics_are_read", "in_use_resources_are_replaced_create_first",
        "final_snapshots_are_unique_per_instance", "production_state_is_remote_and_encrypted",
        "kinesis_sourced_firehose_is_watched_at_its_source", "scaling_can_act_and_tracks_what_tasks_change",
        "aws_created_log_groups_are_owned", "device_policies_scope_each_device_to_itself",
        "topic_rules_key_by_device_and_keep_failures", "iot_logs_are_owned_where_iot_logging_is_set",
        "trust_conditions_are_ones_the_service_sends", "alarms_watch_published_metrics",
    }


def test_a_name_without_the_suffix_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_kinesis_stream").update(name="retail-updates"))
    assert [f.message for f in findings(rules.names_carry_the_suffix, bad)] == [
        "name 'retail-updates' lacks the environment suffix 'dev'"
    ]


def test_a_suffix_hidden_inside_a_word_does_not_count(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_sns_topic").update(name="retail-devices"))
    assert len(findings(rules.names_carry_the_suffix, bad)) == 1


def test_an_unnamed_role_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_iam_role").pop("name"))
    assert "has no explicit physical name" in findings(rules.names_carry_the_suffix, bad)[0].message


def test_a_missing_default_tag_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: d["provider"]["aws"][0]["default_tags"][0]["tags"].pop("CostCenter"))
    assert [f.message for f in findings(rules.resources_are_tagged, bad)] == ["default_tags lacks CostCenter"]


def test_tasks_that_do_not_inherit_tags_are_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_ecs_service").pop("propagate_tags"))
    assert len(findings(rules.resources_are_tagged, bad)) == 1


@pytest.mark.parametrize(
    ("type_", "mutate"),
    [
        ("aws_kinesis_stream", lambda c: c.update(encryption_type="NONE")),
        ("aws_cloudwatch_log_group", lambda c: c.pop("kms_key_id")),
        ("aws_db_instance", lambda c: c.update(kms_key_id="alias/aws/rds")),
        ("aws_elasticache_replication_group", lambda c: c.update(at_rest_encryption_enabled="false")),
        ("aws_sns_topic", lambda c: c.update(kms_master_key_id="alias/aws/sns")),
        ("aws_backup_vault", lambda c: c.pop("kms_key_arn")),
        ("aws_s3_bucket_server_side_encryption_configuration",
         lambda c: c["rule"][0]["apply_server_side_encryption_by_default"].update(sse_algorithm="AES256")),
    ],
)
def test_a_data_store_without_the_cmk_is_found(retail: StackJson, type_: str, mutate: Callable) -> None:
    bad = mutated(retail, lambda d: mutate(first(d, type_)))
    found = findings(rules.data_at_rest_uses_the_cmk, bad)
    assert len(found) == 1 and found[0].message.startswith(("not encrypted", "bucket has no"))


def test_a_database_without_force_ssl_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_db_parameter_group").update(parameter=[]))
    assert findings(rules.tls_is_enforced, bad)[0].message == "parameter group does not set rds.force_ssl=1"


def test_redis_with_preferred_tls_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_elasticache_replication_group").update(transit_encryption_mode="preferred"))
    assert findings(rules.tls_is_enforced, bad)[0].message == "Redis does not require TLS"


def test_a_bucket_reachable_over_plain_http_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: d["resource"].pop("aws_s3_bucket_policy"))
    assert findings(rules.tls_is_enforced, bad)[0].message == "bucket policy does not deny plain HTTP"


def _add_statement(document: dict[str, Any], statement: dict[str, Any]) -> None:
    policy = first(document, "aws_iam_role_policy")
    body = json.loads(policy["policy"])
    body["Statement"].append(statement)
    policy["policy"] = json.dumps(body)


def test_an_allow_star_action_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: _add_statement(d, {"Sid": "Oops", "Effect": "Allow", "Action": "*",
                                                          "Resource": "arn:aws:s3:::x"}))
    assert findings(rules.no_wildcard_actions, bad)[0].message == "statement Oops allows Action '*'"


def test_a_scopable_action_on_star_resource_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: _add_statement(d, {"Sid": "Wide", "Effect": "Allow",
                                                          "Action": ["s3:GetObject", "ecr:GetAuthorizationToken"],
                                                          "Resource": "*"}))
    assert findings(rules.no_wildcard_resources, bad)[0].message == "statement Wide grants s3:GetObject on '*'"


def test_unscopable_actions_on_star_are_allowed(retail: StackJson) -> None:
    ok = mutated(retail, lambda d: _add_statement(d, {"Sid": "Token", "Effect": "Allow",
                                                         "Action": "ecr:GetAuthorizationToken", "Resource": "*"}))
    assert findings(rules.no_wildcard_resources, ok) == []


# Actions as wide as a wildcard in the plan review's sense: they name a verb, or nothing, not a thing.
WIDE_ACTIONS = ["s3:Get*", "iam:Pass*", "s3:*", "kinesis:G*"]


@pytest.mark.parametrize("action", WIDE_ACTIONS)
def test_an_allow_of_a_verb_wide_action_is_found_naming_the_statement(retail: StackJson, action: str) -> None:
    bad = mutated(retail, lambda d: _add_statement(d, {"Sid": "Verb", "Effect": "Allow", "Action": [action],
                                                          "Resource": "arn:aws:s3:::retail-archive-dev/*"}))
    assert [f.message for f in findings(rules.no_wildcard_actions, bad)] == [f"statement Verb allows Action '{action}'"]


def test_an_allow_through_not_action_is_found_as_wide_on_actions_and_resources(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: _add_statement(d, {"Sid": "AllBut", "Effect": "Allow", "NotAction": "iam:*",
                                                          "Resource": "*"}))
    assert [f.message for f in findings(rules.no_wildcard_actions, bad)] == [
        "statement AllBut allows every action but 'iam:*' (NotAction)"]
    assert [f.message for f in findings(rules.no_wildcard_resources, bad)] == [
        "statement AllBut grants every action but 'iam:*' on '*'"]


# Resource ARNs that name no particular resource: any bucket, any account's streams, every stream here.
WIDE_RESOURCES = ["arn:aws:s3:::*", "arn:aws:kinesis:*:*:stream/*",
                  "arn:${data.aws_partition.p.partition}:kinesis:us-east-1:${data.aws_caller_identity.c.account_id}:stream/*"]


@pytest.mark.parametrize("resource", WIDE_RESOURCES)
def test_a_scopable_action_on_a_resource_wide_arn_is_found_naming_the_statement(retail: StackJson,
                                                                                resource: str) -> None:
    bad = mutated(retail, lambda d: _add_statement(d, {"Sid": "AnyBucket", "Effect": "Allow",
                                                          "Action": ["s3:GetObject", "kinesis:ListStreams"],
                                                          "Resource": [resource]}))
    assert [f.message for f in findings(rules.no_wildcard_resources, bad)] == [
        f"statement AnyBucket grants s3:GetObject on '{resource}'"]


def test_an_allow_through_not_resource_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: _add_statement(d, {"Sid": "Elsewhere", "Effect": "Allow", "Action": "s3:GetObject",
                                                          "NotResource": "arn:aws:s3:::retail-archive-dev/*"}))
    assert [f.message for f in findings(rules.no_wildcard_resources, bad)] == [
        "statement Elsewhere grants s3:GetObject on every resource but 'arn:aws:s3:::retail-archive-dev/*' (NotResource)"]


def _edit_trust(document: dict[str, Any], path_suffix: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the one trust statement of the role whose construct path ends with `path_suffix`."""
    (role,) = [r for r in document["resource"]["aws_iam_role"].values()
               if r["//"]["metadata"]["path"].endswith(path_suffix)]
    trust = json.loads(role["assume_role_policy"])
    edit(trust["Statement"][0])
    role["assume_role_policy"] = json.dumps(trust)


def test_the_supplier_apis_role_trusts_api_gateway_without_a_key_api_gateway_does_not_send(retail: StackJson) -> None:
    (role,) = [r for r in retail.resources("aws_iam_role") if r.path.endswith("supplier-api/role")]
    (trust,) = json.loads(role.config["assume_role_policy"])["Statement"]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"} and "Condition" not in trust
    assert findings(rules.trust_conditions_are_ones_the_service_sends, retail) == []


@pytest.mark.parametrize("key", ["aws:SourceAccount", "aws:SourceArn", "AWS:SourceAccount"])
def test_a_trust_condition_on_a_key_the_service_never_sends_is_found_as_a_role_never_assumed(
        retail: StackJson, key: str) -> None:
    bad = mutated(retail, lambda d: _edit_trust(d, "supplier-api/role", lambda t: t.update(
        Condition={"StringEquals": {key: "123456789012"}})))
    assert [f.message for f in findings(rules.trust_conditions_are_ones_the_service_sends, bad)] == [
        f"requires {key}, which apigateway.amazonaws.com does not send when it assumes a role: "
        "every AssumeRole would be refused"]


def test_a_trust_condition_only_if_the_key_exists_is_not_found(retail: StackJson) -> None:
    lenient = mutated(retail, lambda d: _edit_trust(d, "supplier-api/role", lambda t: t.update(
        Condition={"StringEqualsIfExists": {"aws:SourceAccount": "123456789012"}})))
    assert findings(rules.trust_conditions_are_ones_the_service_sends, lenient) == []


def test_a_service_trusted_without_the_key_it_sends_or_one_the_table_does_not_know_is_found(retail: StackJson) -> None:
    unguarded = mutated(retail, lambda d: _edit_trust(d, "processor/task-role", lambda t: t.pop("Condition")))
    assert [f.message for f in findings(rules.trust_conditions_are_ones_the_service_sends, unguarded)] == [
        "trusts ecs-tasks.amazonaws.com with no confused-deputy condition (it sends aws:SourceAccount, aws:SourceArn)"]
    unknown = mutated(retail, lambda d: _edit_trust(d, "processor/task-role", lambda t: t.update(
        Principal={"Service": ["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"]})))
    assert [f.message for f in findings(rules.trust_conditions_are_ones_the_service_sends, unknown)] == [
        "trusts lambda.amazonaws.com, whose confused-deputy keys are not in SERVICE_TRUST_KEYS"]


def test_a_trust_policy_for_a_service_whose_keys_are_not_known_is_refused_at_synth() -> None:
    from pipeline_lib import iam
    with pytest.raises(ValueError, match="lambda.amazonaws.com: which confused-deputy key"):
        iam.assume_role_policy("lambda.amazonaws.com", account_id="123456789012")
    with pytest.raises(ValueError, match="pass account_id"):
        iam.assume_role_policy("ecs-tasks.amazonaws.com")


def test_a_created_secret_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: d["resource"].setdefault("aws_secretsmanager_secret", {}).update(
        s={"name": "retail-x-dev", "//": {"metadata": {"path": "retail-dev/s"}}}))
    assert findings(rules.no_secrets_are_created, bad)[0].resource == "retail-dev/s"


def test_a_literal_database_password_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_db_instance").update(password="hunter22"))
    assert findings(rules.no_secrets_are_created, bad)[0].message == "master password is not RDS-managed"


def test_a_literal_redis_token_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_elasticache_replication_group").update(auth_token="x" * 32))
    assert len(findings(rules.no_secrets_are_created, bad)) == 1


def test_deletion_protection_in_dev_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_db_instance").update(deletion_protection=True))
    assert len(findings(rules.destroyable_outside_production, bad)) == 1


def test_prevent_destroy_is_found_everywhere(prod_stacks: dict[str, StackJson]) -> None:
    bad = mutated(prod_stacks["retail-prod"], lambda d: first(d, "aws_kms_key").update(lifecycle={"prevent_destroy": True}))
    assert findings(rules.destroyable_outside_production, bad)[0].message == "lifecycle.prevent_destroy is set"


def test_an_unprotected_production_database_is_found(prod_stacks: dict[str, StackJson]) -> None:
    bad = mutated(prod_stacks["factory-prod"], lambda d: first(d, "aws_db_instance").update(multi_az=False))
    assert len(findings(rules.production_is_protected, bad)) == 1


def test_a_suppression_silences_exactly_its_rule_and_resource(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_kinesis_stream").update(name="retail-updates"))
    path = next(bad.resources("aws_kinesis_stream")).path
    assert check_app([bad], [Suppression("names_carry_the_suffix", path, "testing")]) == []
    assert len(check_app([bad], [Suppression("tls_is_enforced", path, "testing")])) == 1


def test_a_suppression_without_a_reason_is_rejected(tmp_path: Path) -> None:
    file = tmp_path / "s.toml"
    file.write_text('[[suppression]]\nrule = "tls_is_enforced"\nresource = "x"\nreason = ""\n')
    with pytest.raises(ValueError, match="needs a reason"):
        load_suppressions(file)


def test_redis_logs_delivered_outside_the_vendedlogs_prefix_are_found(retail: StackJson) -> None:
    def move(document: dict[str, Any]) -> None:
        for group in document["resource"]["aws_cloudwatch_log_group"].values():
            if group["name"].startswith("/aws/vendedlogs/"):
                group["name"] = group["name"].replace("/aws/vendedlogs/", "/")
    found = findings(rules.vended_logs_share_one_resource_policy_statement, mutated(retail, move))
    assert [f.message for f in found] == [
        "slow-log is delivered to '/retail/dev/redis/slow-log', outside /aws/vendedlogs/",
        "engine-log is delivered to '/retail/dev/redis/engine-log', outside /aws/vendedlogs/"]


def test_production_alarms_without_a_subscriber_are_found(prod_stacks: dict[str, StackJson]) -> None:
    bad = mutated(prod_stacks["factory-prod"], lambda d: d["resource"].pop("aws_sns_topic_subscription"))
    found = findings(rules.production_alarms_reach_someone, bad)
    assert len(found) == len(list(bad.resources("aws_cloudwatch_metric_alarm"))) > 0
    assert found[0].message.startswith("notifies ${aws_sns_topic.") and found[0].message.endswith("has no subscription")


def test_an_endpoint_without_a_policy_or_with_an_unfenced_one_is_found(retail: StackJson) -> None:
    def strip(document: dict[str, Any]) -> None:
        endpoints = list(document["resource"]["aws_vpc_endpoint"].values())
        del endpoints[0]["policy"]
        endpoints[1]["policy"] = json.dumps({"Statement": [{"Sid": "Open", "Effect": "Allow", "Principal": "*",
                                                           "Action": "*", "Resource": "*"}]})
    messages = sorted(f.message for f in findings(rules.endpoints_are_fenced_to_this_account, mutated(retail, strip)))
    assert messages == ["has no endpoint policy", "statement Open passes any account's resources"]


def test_a_production_archive_that_can_be_deleted_is_found(prod_stacks: dict[str, StackJson]) -> None:
    def unlock(document: dict[str, Any]) -> None:
        for kind in ("aws_s3_bucket_object_lock_configuration", "aws_s3_bucket_logging",
                     "aws_backup_vault_lock_configuration"):
            document["resource"].pop(kind)
    messages = sorted(f.message for f in findings(rules.production_is_protected, mutated(prod_stacks["retail-prod"], unlock)))
    assert messages == ["production archive access must be logged",
                        "production archive must be write-once (Object Lock, COMPLIANCE mode)",
                        "production backups need a vault lock"]


def test_a_lock_outside_production_is_found(retail: StackJson, prod_stacks: dict[str, StackJson]) -> None:
    prod = prod_stacks["retail-prod"].document["resource"]
    def lock(document: dict[str, Any]) -> None:
        for kind in ("aws_s3_bucket_object_lock_configuration", "aws_backup_vault_lock_configuration"):
            document["resource"][kind] = prod[kind]
    assert len(findings(rules.destroyable_outside_production, mutated(retail, lock))) == 2


def test_an_access_log_bucket_encrypted_with_kms_is_found(prod_stacks: dict[str, StackJson]) -> None:
    def kms(document: dict[str, Any]) -> None:
        for res in document["resource"]["aws_s3_bucket_server_side_encryption_configuration"].values():
            res["rule"][0]["apply_server_side_encryption_by_default"] = {"sse_algorithm": "aws:kms",
                                                                        "kms_master_key_id": "x"}
    found = findings(rules.data_at_rest_uses_the_cmk, mutated(prod_stacks["retail-prod"], kms))
    # Both deliveries' buckets: the archive's S3 server access logs and the catalog ALB's access logs.
    assert sorted((f.resource.rsplit("/", 2)[-2], f.message) for f in found if "access-log" in f.resource) == [
        (owner, "an access-log bucket must use SSE-S3: S3 and ELB deliver no logs to SSE-KMS buckets")
        for owner in ("archive", "catalog-api")]


def test_shard_level_metrics_no_alarm_reads_are_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_kinesis_stream").update(shard_level_metrics=["IncomingBytes"]))
    assert [f.message for f in findings(rules.shard_level_metrics_are_read, bad)] == [
        "enables shard-level metrics ['IncomingBytes'] that no alarm reads"]


def test_shard_level_metrics_a_per_shard_alarm_reads_are_allowed(retail: StackJson) -> None:
    def hot_shard(document: dict[str, Any]) -> None:
        first(document, "aws_kinesis_stream").update(shard_level_metrics=["IncomingBytes"])
        first(document, "aws_cloudwatch_metric_alarm").update(
            namespace="AWS/Kinesis", metric_name="IncomingBytes", dimensions={"StreamName": "s", "ShardId": "shardId-0"})
    assert findings(rules.shard_level_metrics_are_read, mutated(retail, hot_shard)) == []


@pytest.mark.parametrize("type_", ["aws_security_group", "aws_db_parameter_group", "aws_elasticache_parameter_group",
                                   "aws_lb_target_group"])
def test_an_in_use_resource_with_a_fixed_name_is_found(retail: StackJson, type_: str) -> None:
    def fix(document: dict[str, Any]) -> None:
        resource = first(document, type_)
        resource.pop("name_prefix", None)
        resource["name"] = "retail-fixed-dev"
    found = findings(rules.in_use_resources_are_replaced_create_first, mutated(retail, fix))
    assert len(found) == 1 and found[0].message.startswith("fixed name 'retail-fixed-dev': a change to ")


@pytest.mark.parametrize("type_", ["aws_security_group", "aws_db_parameter_group", "aws_elasticache_parameter_group",
                                   "aws_db_subnet_group", "aws_elasticache_subnet_group", "aws_lb_target_group"])
def test_an_in_use_resource_replaced_delete_first_is_found(retail: StackJson, type_: str) -> None:
    found = findings(rules.in_use_resources_are_replaced_create_first,
                     mutated(retail, lambda d: first(d, type_).pop("lifecycle")))
    assert [f.message for f in found] == ["in use, so it must be replaced create-first (lifecycle.create_before_destroy)"]


def test_a_target_group_whose_name_misses_a_new_port_is_found(retail: StackJson) -> None:
    # A listener and a service use it: AWS refuses to delete it (ResourceInUse), so a new port must
    # come under a new name, created before the old one goes.
    assert findings(rules.in_use_resources_are_replaced_create_first, retail) == []
    bad = mutated(retail, lambda d: first(d, "aws_lb_target_group").update(port=9443))
    assert len(findings(rules.in_use_resources_are_replaced_create_first, bad)) == 1


def test_a_cache_parameter_group_whose_name_misses_a_new_description_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_elasticache_parameter_group").update(description="edited"))
    assert len(findings(rules.in_use_resources_are_replaced_create_first, bad)) == 1


@pytest.mark.parametrize("type_", ["aws_db_instance", "aws_elasticache_replication_group"])
def test_a_fixed_final_snapshot_identifier_is_found(prod_stacks: dict[str, StackJson], type_: str) -> None:
    bad = mutated(prod_stacks["retail-prod"], lambda d: first(d, type_).update(final_snapshot_identifier="retail-final-prod"))
    assert [f.message for f in findings(rules.final_snapshots_are_unique_per_instance, bad)] == [
        "final snapshot identifier 'retail-final-prod' is the same for every instance it names"]


def test_a_timestamped_final_snapshot_identifier_that_plans_would_change_is_found(prod_stacks: dict[str, StackJson]) -> None:
    bad = mutated(prod_stacks["retail-prod"], lambda d: first(d, "aws_db_instance").pop("lifecycle"))
    assert len(findings(rules.final_snapshots_are_unique_per_instance, bad)) == 1


def test_production_state_in_a_local_file_or_unencrypted_is_found(prod_stacks: dict[str, StackJson]) -> None:
    local = mutated(prod_stacks["retail-prod"], lambda d: d["terraform"].update(backend={"local": {"path": "x"}}))
    assert [f.message for f in findings(rules.production_state_is_remote_and_encrypted, local)] == [
        "production state is kept by local, not S3"]
    plain = mutated(prod_stacks["retail-prod"], lambda d: d["terraform"]["backend"]["s3"].update(encrypt=False))
    assert len(findings(rules.production_state_is_remote_and_encrypted, plain)) == 1


def test_a_kinesis_sourced_firehose_without_source_side_alarms_is_found(retail: StackJson) -> None:
    def drop(document: dict[str, Any]) -> None:
        alarms = document["resource"]["aws_cloudwatch_metric_alarm"]
        for name in [n for n, a in alarms.items() if "archive-not-reading" in a["alarm_name"]
                     or "archive-freshness" in a["alarm_name"]]:
            del alarms[name]
    assert sorted(f.message for f in findings(rules.kinesis_sourced_firehose_is_watched_at_its_source,
                                              mutated(retail, drop))) == [
        "no alarm reads its DataReadFromKinesisStream.Records", "no alarm reads its DeliveryToS3.DataFreshness"]


def test_a_scaling_target_with_no_room_or_a_step_beyond_it_is_found(retail: StackJson) -> None:
    inert = mutated(retail, lambda d: first(d, "aws_appautoscaling_target").update(min_capacity=4))
    assert [f.message for f in findings(rules.scaling_can_act_and_tracks_what_tasks_change, inert)][0] == (
        "min 4 = max 4: its policies can never act (drop them; reshard to scale)")
    def big_step(document: dict[str, Any]) -> None:
        for policy in document["resource"]["aws_appautoscaling_policy"].values():
            for step in (policy.get("step_scaling_policy_configuration") or {}).get("step_adjustment", []):
                step["scaling_adjustment"] = 10 if step["scaling_adjustment"] > 0 else step["scaling_adjustment"]
    assert {f.message for f in findings(rules.scaling_can_act_and_tracks_what_tasks_change, mutated(retail, big_step))} == {
        "a step of 10 tasks exceeds the room of 3"}


def test_target_tracking_on_the_streams_iterator_age_is_found(retail: StackJson) -> None:
    def track(document: dict[str, Any]) -> None:
        policy = first(document, "aws_appautoscaling_policy")
        policy.pop("step_scaling_policy_configuration")
        policy.update(policy_type="TargetTrackingScaling", target_tracking_scaling_policy_configuration={
            "target_value": 30000, "customized_metric_specification": {
                "namespace": "AWS/Kinesis", "metric_name": "GetRecords.IteratorAgeMilliseconds", "statistic": "Maximum"}})
    assert [f.message for f in findings(rules.scaling_can_act_and_tracks_what_tasks_change, mutated(retail, track))] == [
        "tracks the stream-level GetRecords.IteratorAgeMilliseconds, which more tasks do not lower"]


def test_more_tasks_than_a_provisioned_stream_has_shards_is_found(prod_stacks: dict[str, StackJson],
                                                                  retail: StackJson) -> None:
    def provisioned(document: dict[str, Any]) -> None:
        first(document, "aws_kinesis_stream").update(shard_count=2)
    found = findings(rules.scaling_can_act_and_tracks_what_tasks_change, mutated(retail, provisioned))
    assert [f.message for f in found] == ["max 4 tasks for 2 shards: a task without a shard idles"]


def test_a_log_group_aws_would_create_itself_is_found_when_the_stack_does_not(retail: StackJson) -> None:
    def drop(document: dict[str, Any]) -> None:
        groups = document["resource"]["aws_cloudwatch_log_group"]
        for name in [n for n, g in groups.items() if g["name"].startswith(("/aws/ecs/containerinsights/",
                                                                           "/aws/rds/instance/"))]:
            del groups[name]
    messages = sorted(f.message for f in findings(rules.aws_created_log_groups_are_owned, mutated(retail, drop)))
    assert messages == [
        "AWS would create /aws/ecs/containerinsights/retail-cluster-dev/performance itself, unencrypted and kept "
        "for ever: create it in the stack",
        "AWS would create /aws/rds/instance/retail-db-dev/postgresql itself, unencrypted and kept for ever: create it "
        "in the stack",
        "AWS would create /aws/rds/instance/retail-db-dev/upgrade itself, unencrypted and kept for ever: create it in "
        "the stack"]


def test_a_stack_owning_a_log_group_the_whole_region_shares_is_found(retail: StackJson) -> None:
    bad = mutated(retail, lambda d: first(d, "aws_cloudwatch_log_group").update(name="RDSOSMetrics"))
    assert any("shared by the region" in f.message for f in findings(rules.aws_created_log_groups_are_owned, bad))
