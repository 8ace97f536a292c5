from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline_lib.settings import IncidentConfig, ServiceConfig
from policy.stack_json import StackJson
from processor.config import ConfigError as ProcessorConfigError
from processor.config import ProcessorConfig
from processor.task_settings import (
    INCIDENT_SETTINGS,
    MAX_READS_PER_SHARD_PER_S,
    READ_INTERVAL_AT_TIP_S,
    SERVICE_SETTINGS,
    Setting,
)
from tests.helpers import by_path, only, paging_alarm_purposes, policy_statements, ref, statement


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
    service = ServiceConfig()
    assert (settings.lease_duration_s, settings.heartbeat_s) == (service.lease_duration_s,
                                                                 min(2.0, service.lease_duration_s / 10))
    assert (settings.read_interval_at_tip_s, settings.max_reads_per_shard_per_s) == (
        service.read_interval_at_tip_s, service.max_reads_per_shard_per_s)


@pytest.mark.parametrize("setting", [*SERVICE_SETTINGS, *INCIDENT_SETTINGS], ids=lambda s: s.name)
def test_the_stack_and_the_processor_refuse_the_same_values_of_each_setting(setting: Setting) -> None:
    config = IncidentConfig if setting in INCIDENT_SETTINGS else ServiceConfig
    base = {"WORKLOAD": "factory", "STREAM_NAME": "s", "AWS_REGION": "eu-west-1", "DB_HOST": "db", "DB_NAME": "d",
            "DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:x", "REDIS_HOST": "r"}
    for value in (setting.low, setting.high):
        if setting is MAX_READS_PER_SHARD_PER_S and value == setting.high:
            continue  # the stack leaves one read to the archive's Firehose (test above)
        if setting is READ_INTERVAL_AT_TIP_S and value == setting.low:
            continue  # the stack's read budget sets a longer least interval (test above)
        paced = {"read_interval_at_tip_s": max(1.0, 1 / value)} if setting is MAX_READS_PER_SHARD_PER_S else {}
        config(**{setting.name: value}, **paced)
        assert getattr(ProcessorConfig.from_env({**base, setting.env: setting.render(value)}), setting.name) == value
    for value in (setting.low - 0.01, setting.high + 1):
        with pytest.raises(ValueError, match=setting.name):
            config(**{setting.name: value})
        with pytest.raises(ProcessorConfigError, match=setting.env):
            ProcessorConfig.from_env({**base, setting.env: setting.render(value)})


def test_the_read_budget_leaves_room_for_the_archive_firehose() -> None:
    with pytest.raises(ValueError, match="at most 4: Kinesis allows 5 a shard, Firehose takes 1"):
        ServiceConfig(max_reads_per_shard_per_s=5)
    with pytest.raises(ValueError, match="read_interval_at_tip_s must not be shorter"):
        ServiceConfig(read_interval_at_tip_s=0.2)


def test_sigterm_gets_thirty_seconds_before_sigkill(stack: StackJson) -> None:
    assert container(stack)["stopTimeout"] == 30


def test_logs_go_to_the_encrypted_processor_log_group(stack: StackJson) -> None:
    options = container(stack)["logConfiguration"]["options"]
    group = by_path(stack, "aws_cloudwatch_log_group", "processor/logs/group")
    assert options["awslogs-group"] == ref(group, "name") and "aws_kms_key" in group.config["kms_key_id"]


def test_service_runs_privately_with_a_rolling_back_circuit_breaker(stack: StackJson) -> None:
    service = by_path(stack, "aws_ecs_service", "processor/service").config
    assert service["network_configuration"]["assign_public_ip"] is False
    assert service["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
    assert service["launch_type"] == "FARGATE" and service["propagate_tags"] == "SERVICE"
    assert service["lifecycle"]["ignore_changes"] == ["desired_count"]


def _scaling(stack: StackJson) -> tuple[dict, dict[str, dict], dict[str, dict]]:
    target = by_path(stack, "aws_appautoscaling_target", "processor/scaling-target").config
    policies = {r.config["name"]: r for r in stack.resources("aws_appautoscaling_policy") if "/processor/" in r.path}
    alarms = {r.config["alarm_name"]: r.config for r in stack.resources("aws_cloudwatch_metric_alarm")}
    return target, policies, alarms


def test_autoscaling_steps_on_the_processors_own_lag_up_to_one_task_per_shard(stack: StackJson) -> None:
    target, policies, alarms = _scaling(stack)
    assert (target["min_capacity"], target["max_capacity"]) == (1, 4)  # on demand: four shards to start with
    assert {p.config["policy_type"] for p in policies.values()} == {"StepScaling"}  # no target tracking left
    out = policies[f"{stack.workload}-processor-lag-out-dev"]
    steps = out.config["step_scaling_policy_configuration"]["step_adjustment"]
    assert [s["scaling_adjustment"] for s in steps] == [1, 3]  # +1, then every shard its own task
    assert max(s["scaling_adjustment"] for s in steps) <= target["max_capacity"] - target["min_capacity"]
    alarm = alarms[f"{stack.workload}-processor-lag-scale-out-dev"]
    assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == (
        f"Pipeline/{stack.workload}-dev", "MillisBehindLatest", "Maximum")
    assert alarm["alarm_actions"] == [ref(out, "arn")]
    assert alarm["threshold"] == {"retail": 30_000, "factory": 10_000}[stack.workload]
    scale_in = policies[f"{stack.workload}-processor-lag-in-dev"]
    assert [s["scaling_adjustment"] for s in scale_in.config["step_scaling_policy_configuration"]["step_adjustment"]] == [-1]
    assert alarms[f"{stack.workload}-processor-lag-scale-in-dev"]["alarm_actions"] == [ref(scale_in, "arn")]


def test_production_with_a_task_per_shard_has_no_inert_scaling_but_an_alarm_naming_resharding(
        prod_stacks: dict[str, StackJson]) -> None:
    for prod in prod_stacks.values():
        shards = only(prod, "aws_kinesis_stream").config["shard_count"]
        assert by_path(prod, "aws_ecs_service", "processor/service").config["desired_count"] == shards == 2
        assert [r for r in prod.resources("aws_appautoscaling_target") if "/processor/" in r.path] == []
        assert [r for r in prod.resources("aws_appautoscaling_policy") if "/processor/" in r.path] == []
        (alarm,) = [r.config for r in prod.resources("aws_cloudwatch_metric_alarm")
                    if r.config["alarm_name"] == f"{prod.workload}-processor-lag-prod"]
        assert alarm["metric_name"] == "MillisBehindLatest" and "add shards" in alarm["alarm_description"]


def test_a_step_can_never_add_more_tasks_than_there_is_room_for_below_the_shard_count(tmp_path: Path) -> None:
    from dataclasses import replace

    from cdktf import App

    from policy.stack_json import load_app
    from stacks.config import build_config
    from stacks.workload_stack import WorkloadStack

    config = build_config("retail", "dev")
    config = replace(config, stream=replace(config.stream, stream_mode="PROVISIONED", min_shards=3),
                     service=replace(config.service, min_count=2, desired_count=2))
    app = App(outdir=str(tmp_path))
    WorkloadStack(app, config)
    app.synth()
    (stack,) = load_app(tmp_path)
    target, policies, _ = _scaling(stack)
    assert (target["min_capacity"], target["max_capacity"]) == (2, 3)
    steps = policies["retail-processor-lag-out-dev"].config["step_scaling_policy_configuration"]["step_adjustment"]
    assert [s["scaling_adjustment"] for s in steps] == [1]  # room for one: one step of one


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
    assert by_path(stack, "aws_ecs_service", "processor/service").config["enable_execute_command"] is False
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
    assert by_path(exec_stacks["retail-dev"], "aws_ecs_service", "processor/service").config["enable_execute_command"] is True
    # Without Exec (production, and a dev that did not opt in) no agent paths either.
    for stack in (prod_stacks["retail-prod"], dev_stacks["retail-dev"]):
        assert [m["containerPath"] for m in container(stack)["mountPoints"]] == ["/tmp"]
        assert by_path(stack, "aws_ecs_service", "processor/service").config["enable_execute_command"] is False



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
    reader = {"ReadTheCatalogReaderPassword"} if stack.workload == "retail" else set()  # test_catalog_read_api.py
    assert {s["Sid"] for s in policy_statements(role)} == {"ReadTheDatabaseSecret", "DecryptTheDatabaseSecret"} | reader


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


def test_container_insights_performance_logs_go_to_a_group_the_stack_owns_with_its_key(stack: StackJson) -> None:
    cluster = only(stack, "aws_ecs_cluster")
    group = by_path(stack, "aws_cloudwatch_log_group", "processor/insights-logs/group")
    assert group.config["name"] == f"/aws/ecs/containerinsights/{stack.workload}-cluster-dev/performance"
    assert group.config["kms_key_id"] == ref(only(stack, "aws_kms_key"), "arn") and group.config["retention_in_days"] == 30
    assert cluster.config["depends_on"] == [group.address]  # created before the cluster, so before any task reports


def test_the_processor_pages_on_errors_dead_letters_lag_missing_tasks_and_a_stuck_outbox(stack: StackJson) -> None:
    outbox = {"incident-outbox-backlog"} if stack.workload == "factory" else set()
    assert paging_alarm_purposes(stack, "processor-") | paging_alarm_purposes(stack, "incident-") == {
        "processor-errors", "processor-dead-letters", "processor-lag", "processor-tasks-below-desired", *outbox}
