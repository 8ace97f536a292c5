from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline_lib.settings import ServiceConfig
from policy.stack_json import StackJson
from processor.config import ProcessorConfig
from tests.helpers import by_path, only, policy_statements, ref, statement


def container(stack: StackJson) -> dict[str, Any]:
    definitions = json.loads(by_path(stack, "aws_ecs_task_definition", "processor/task").config["container_definitions"])
    assert len(definitions) == 1
    return definitions[0]


def test_cluster_has_container_insights_and_encrypted_exec_logging(stack: StackJson) -> None:
    cluster = only(stack, "aws_ecs_cluster").config
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enhanced"}]
    exec_cfg = cluster["configuration"]["execute_command_configuration"]
    assert "aws_kms_key" in exec_cfg["kms_key_id"] and exec_cfg["logging"] == "OVERRIDE"
    assert exec_cfg["log_configuration"]["cloud_watch_encryption_enabled"] is True


def test_task_runs_on_arm64_fargate(stack: StackJson) -> None:
    task = by_path(stack, "aws_ecs_task_definition", "processor/task").config
    assert task["requires_compatibilities"] == ["FARGATE"] and task["network_mode"] == "awsvpc"
    assert task["runtime_platform"] == {"cpu_architecture": "ARM64", "operating_system_family": "LINUX"}


def test_container_is_non_root_with_a_read_only_root_filesystem(stack: StackJson) -> None:
    main = container(stack)
    assert main["user"] == "10001:10001" and main["readonlyRootFilesystem"] is True
    assert {"containerPath": "/tmp", "readOnly": False, "sourceVolume": "tmp"} in main["mountPoints"]


def test_execution_and_task_roles_are_separate(stack: StackJson) -> None:
    task = by_path(stack, "aws_ecs_task_definition", "processor/task").config
    assert task["execution_role_arn"] != task["task_role_arn"]


def test_credentials_never_appear_as_plain_environment_values(stack: StackJson) -> None:
    main = container(stack)
    env = {e["name"]: e["value"] for e in main["environment"]}
    assert not env.keys() & {"DB_PASSWORD", "REDIS_PASSWORD", "DB_SECRET_ARN"}
    secret = next(stack.data_sources("aws_secretsmanager_secret"))
    assert main["secrets"] == [{"name": "REDIS_PASSWORD",
                                "valueFrom": f"${{data.{secret.type}.{secret.name}.arn}}"}]
    # The service signs in as the application role with IAM tokens; it has no password at all.
    assert (env["DB_USER"], env["DB_IAM_AUTH"]) == ("processor", "true")


def test_environment_matches_the_processor_contract(stack: StackJson) -> None:
    env = {e["name"]: e["value"] for e in container(stack)["environment"]}
    incidents = ["INCIDENT_QUIET_S", "INCIDENT_TOPIC_ARN", "INCIDENT_WINDOW_S"] if stack.workload == "factory" else []
    assert sorted(env) == sorted(["AWS_REGION", "CONSUMER_GROUP", "DB_HOST", "DB_IAM_AUTH", "DB_NAME", "DB_PORT",
                                  "DB_SSLMODE", "DB_USER", "LEASE_DURATION_S", "MAX_READS_PER_SHARD_PER_S",
                                  "METRICS_NAMESPACE", "READ_INTERVAL_AT_TIP_S", "REDIS_HOST", "REDIS_PORT",
                                  "REDIS_TLS", "STREAM_NAME", "WORKLOAD", *incidents])
    assert env["WORKLOAD"] == stack.workload and env["DB_SSLMODE"] == "verify-full" and env["REDIS_TLS"] == "true"


def test_the_processor_starts_from_exactly_the_synthesized_environment(stack: StackJson) -> None:
    main = container(stack)
    env = {e["name"]: e["value"] for e in main["environment"]}
    env.update({s["name"]: "injected-by-ecs" for s in main["secrets"]})
    if "INCIDENT_TOPIC_ARN" in env:  # a reference Terraform resolves at apply time
        assert env["INCIDENT_TOPIC_ARN"].startswith("${aws_sns_topic.incidents_topic_")
        assert env["INCIDENT_TOPIC_ARN"].endswith(".arn}")
        env["INCIDENT_TOPIC_ARN"] = "arn:aws:sns:eu-west-1:123456789012:factory-incidents-dev"
    settings = ProcessorConfig.from_env(env)
    assert (settings.workload, settings.region) == (stack.workload, stack.provider["region"])
    assert (settings.db_sslmode, settings.redis_tls, settings.redis_password) == ("verify-full", True, "injected-by-ecs")
    assert settings.consumer_group == f"{stack.workload}-processor-dev"
    assert settings.metrics_namespace == f"Pipeline/{stack.workload}-dev"
    # The fleet and the read budget (processor/balance.py, processor/pacing.py), from ServiceConfig.
    assert (settings.lease_duration_s, settings.heartbeat_s) == (20.0, 2.0)
    assert (settings.read_interval_at_tip_s, settings.max_reads_per_shard_per_s) == (1.0, 3.0)


def test_the_read_budget_leaves_room_for_the_archive_firehose() -> None:
    with pytest.raises(ValueError, match="at most 4: Kinesis allows 5 a shard, Firehose takes 1"):
        ServiceConfig(max_reads_per_shard_per_second=5)
    with pytest.raises(ValueError, match="read_interval_at_tip_seconds must not be shorter"):
        ServiceConfig(read_interval_at_tip_seconds=0.2)


def test_sigterm_gets_thirty_seconds_before_sigkill(stack: StackJson) -> None:
    assert container(stack)["stopTimeout"] == 30


def test_logs_go_to_the_encrypted_processor_log_group(stack: StackJson) -> None:
    options = container(stack)["logConfiguration"]["options"]
    group = by_path(stack, "aws_cloudwatch_log_group", "processor/logs/group")
    assert options["awslogs-group"] == ref(group, "name") and "aws_kms_key" in group.config["kms_key_id"]


def test_service_runs_privately_with_a_rolling_back_circuit_breaker(stack: StackJson) -> None:
    service = only(stack, "aws_ecs_service").config
    assert service["network_configuration"]["assign_public_ip"] is False
    assert service["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
    assert service["launch_type"] == "FARGATE" and service["propagate_tags"] == "SERVICE"
    assert service["lifecycle"]["ignore_changes"] == ["desired_count"]


def test_autoscaling_tracks_iterator_age_and_cpu_capped_at_shard_count(stack: StackJson,
                                                                       prod_stacks: dict[str, StackJson]) -> None:
    target = only(stack, "aws_appautoscaling_target").config
    assert target["max_capacity"] == 4  # a dev stream is on demand: it starts with four shards
    prod = prod_stacks[f"{stack.workload}-prod"]
    prod_target = only(prod, "aws_appautoscaling_target").config
    assert prod_target["max_capacity"] == only(prod, "aws_kinesis_stream").config["shard_count"]
    policies = {r.config["name"]: r.config["target_tracking_scaling_policy_configuration"]
                for r in stack.resources("aws_appautoscaling_policy")}
    lag = policies[f"{stack.workload}-processor-lag-dev"]["customized_metric_specification"]
    assert lag["metric_name"] == "GetRecords.IteratorAgeMilliseconds" and lag["namespace"] == "AWS/Kinesis"
    cpu = policies[f"{stack.workload}-processor-cpu-dev"]["predefined_metric_specification"]
    assert cpu["predefined_metric_type"] == "ECSServiceAverageCPUUtilization"


def test_image_repository_scans_on_push_with_immutable_kms_encrypted_tags(stack: StackJson) -> None:
    repo = only(stack, "aws_ecr_repository").config
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert repo["image_scanning_configuration"] == {"scan_on_push": True}
    assert repo["encryption_configuration"][0]["encryption_type"] == "KMS"


def test_task_role_reads_only_this_stacks_stream_and_signs_in_as_the_application_role(stack: StackJson) -> None:
    policy = by_path(stack, "aws_iam_role_policy", "processor/task-policy")
    read = statement(policy, "ReadTheStream")
    assert read["Resource"] == [ref(only(stack, "aws_kinesis_stream"), "arn")]
    assert not any(a.startswith("kinesis:Put") for a in read["Action"])
    assert "ReadTheDatabaseSecret" not in {s["Sid"] for s in policy_statements(policy)}
    connect = statement(policy, "SignInAsTheApplicationRole")
    (user,) = connect["Resource"]
    db = only(stack, "aws_db_instance")
    assert connect["Action"] == ["rds-db:connect"]
    assert user.endswith(f":dbuser:{ref(db, 'resource_id')}/processor") and ":rds-db:" in user


def test_the_task_role_cannot_call_cloudwatch_its_metrics_travel_in_its_logs(stack: StackJson) -> None:
    policy = by_path(stack, "aws_iam_role_policy", "processor/task-policy")
    actions = {a for s in policy_statements(policy) for a in s["Action"]}
    assert not {a for a in actions if a.startswith("cloudwatch:")}


def test_execution_role_pulls_only_its_own_repository(stack: StackJson) -> None:
    policy = by_path(stack, "aws_iam_role_policy", "processor/execution-policy")
    pull = statement(policy, "PullTheProcessorImage")
    assert pull["Resource"] == [ref(only(stack, "aws_ecr_repository"), "arn")]
    assert len(policy_statements(policy)) == 5


def test_ecs_exec_is_off_in_production(prod_stacks: dict[str, StackJson]) -> None:
    stack = prod_stacks["retail-prod"]
    assert only(stack, "aws_ecs_service").config["enable_execute_command"] is False
    sids = {s["Sid"] for s in policy_statements(by_path(stack, "aws_iam_role_policy", "processor/task-policy"))}
    assert "EcsExecSessions" not in sids


def test_ecs_exec_gets_writable_paths_for_its_agent_while_the_root_stays_read_only(dev_stacks: dict[str, StackJson],
        prod_stacks: dict[str, StackJson],
                                                                                  exec_stacks: dict[str, StackJson]) -> None:
    with_exec, prod = container(exec_stacks["retail-dev"]), container(prod_stacks["retail-prod"])
    assert with_exec["readonlyRootFilesystem"] is True and prod["readonlyRootFilesystem"] is True
    assert {m["containerPath"] for m in with_exec["mountPoints"]} == {
        "/tmp", "/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm"}
    task = by_path(exec_stacks["retail-dev"], "aws_ecs_task_definition", "processor/task")
    volumes = {v["name"] for v in task.config["volume"]}
    assert volumes == {m["sourceVolume"] for m in with_exec["mountPoints"]}
    assert only(exec_stacks["retail-dev"], "aws_ecs_service").config["enable_execute_command"] is True
    # Without Exec (production, and a dev that did not opt in) no agent paths either.
    for stack in (prod_stacks["retail-prod"], dev_stacks["retail-dev"]):
        assert [m["containerPath"] for m in container(stack)["mountPoints"]] == ["/tmp"]
        assert only(stack, "aws_ecs_service").config["enable_execute_command"] is False



def migrate_container(stack: StackJson) -> dict[str, Any]:
    (definition,) = json.loads(by_path(stack, "aws_ecs_task_definition", "migration/task").config[
        "container_definitions"])
    return definition


def test_the_migration_is_its_own_task_with_the_master_secret_and_the_same_image(stack: StackJson) -> None:
    migrate, service = migrate_container(stack), container(stack)
    assert migrate["command"] == ["migrate"] and migrate["image"] == service["image"]
    assert migrate["readonlyRootFilesystem"] is True and migrate["user"] == "10001:10001"
    env = {e["name"]: e["value"] for e in migrate["environment"]}
    assert env["APP_DB_USER"] == "processor" and "master_user_secret" in env["DB_SECRET_ARN"]
    assert "DB_IAM_AUTH" not in env and migrate["secrets"] == []
    role = by_path(stack, "aws_iam_role_policy", "migration/task-policy")
    assert {s["Sid"] for s in policy_statements(role)} == {"ReadTheDatabaseSecret", "DecryptTheDatabaseSecret"}


def test_the_migration_starts_from_exactly_its_synthesized_environment(stack: StackJson) -> None:
    env = {e["name"]: e["value"] for e in migrate_container(stack)["environment"]}
    settings = ProcessorConfig.from_env(env)
    assert settings.app_db_user == "processor" and settings.db_secret_arn and not settings.db_iam_auth


def test_a_release_tag_from_the_environment_goes_into_both_task_definitions(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from cdktf import App

    from policy.stack_json import load_app
    from stacks.config import build_config
    from stacks.workload_stack import WorkloadStack

    monkeypatch.setenv("PROCESSOR_IMAGE_TAG", "abc123")
    app = App(outdir=str(tmp_path))
    for workload in ("retail", "factory"):
        WorkloadStack(app, build_config(workload, "dev", ""))
    app.synth()
    for synthesized in load_app(tmp_path):
        images = {container(synthesized)["image"], migrate_container(synthesized)["image"]}
        repository = only(synthesized, "aws_ecr_repository")
        assert images == {f"{ref(repository, 'repository_url')}:abc123"}


@pytest.mark.parametrize("tag", ["latest", "", "has space", "-leading-dash"])
def test_latest_or_a_malformed_tag_is_refused(tag: str) -> None:
    with pytest.raises(ValueError, match="is not a release tag"):
        ServiceConfig(image_tag=tag)
