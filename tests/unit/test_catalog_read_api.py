"""The retail stack's catalog read API (pipeline_lib/catalog_read_api.py), over the synthesized JSON."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from pipeline_lib.settings import CatalogReadApiConfig
from policy.stack_json import StackJson
from processor.catalog_api_main import CatalogApiConfig
from stacks.config import build_config
from tests.helpers import by_path, only, paging_alarm_purposes, policy_statements, ref, statement


def container(stack: StackJson) -> dict[str, Any]:
    definitions = json.loads(by_path(stack, "aws_ecs_task_definition", "catalog-api/task").config["container_definitions"])
    assert len(definitions) == 1
    return definitions[0]


def ingress(stack: StackJson, group: str) -> list[dict[str, Any]]:
    sg = by_path(stack, "aws_security_group", group)
    return [{k: v for k, v in r.config.items() if k != "//"} for r in stack.resources("aws_vpc_security_group_ingress_rule")
            if r.config["security_group_id"] == ref(sg, "id")]


def egress(stack: StackJson, group: str) -> list[dict[str, Any]]:
    sg = by_path(stack, "aws_security_group", group)
    return [r.config for r in stack.resources("aws_vpc_security_group_egress_rule")
            if r.config["security_group_id"] == ref(sg, "id")]


def test_the_alb_is_internal_and_listens_only_for_tls_with_the_existing_certificate(retail: StackJson) -> None:
    alb = by_path(retail, "aws_lb", "catalog-api/alb").config
    assert (alb["internal"], alb["load_balancer_type"], alb["drop_invalid_header_fields"]) == (True, "application", True)
    assert alb["name"] == "retail-catalog-api-dev"
    listener = only(retail, "aws_lb_listener").config  # the only listener: no plain-HTTP port at all
    assert (listener["port"], listener["protocol"]) == (443, "HTTPS")
    assert listener["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    (certificate,) = retail.data_sources("aws_acm_certificate")
    assert listener["certificate_arn"] == f"${{data.aws_acm_certificate.{certificate.name}.arn}}"
    assert certificate.config["domain"] == "catalog-dev.retail.internal"
    assert certificate.config["statuses"] == ["ISSUED"]
    assert not list(retail.resources("aws_acm_certificate"))  # read, never created
    assert not list(retail.resources("aws_secretsmanager_secret"))


def test_the_alb_reaches_the_tasks_over_tls_and_checks_their_health_on_healthz(retail: StackJson) -> None:
    group = only(retail, "aws_lb_target_group").config
    # The listener and the service use it, and AWS will not delete a target group in use: a new port
    # or protocol makes a new group (under a new name) before the old one goes.
    assert group["lifecycle"] == {"create_before_destroy": True}
    assert len(group["name"]) <= 32
    assert (group["protocol"], group["port"], group["target_type"]) == ("HTTPS", 8443, "ip")
    assert group["health_check"] == {"enabled": True, "protocol": "HTTPS", "path": "/healthz", "matcher": "200",
                                          "interval": 15, "timeout": 5, "healthy_threshold": 2,
                                          "unhealthy_threshold": 3}
    service = by_path(retail, "aws_ecs_service", "catalog-api/service").config
    assert service["load_balancer"] == [{"target_group_arn": ref(only(retail, "aws_lb_target_group"), "arn"),
                                         "container_name": "catalog-api", "container_port": 8443}]
    assert service["network_configuration"]["assign_public_ip"] is False
    assert container(retail)["portMappings"] == [{"containerPort": 8443, "protocol": "tcp"}]


def test_only_the_callers_group_reaches_the_alb_and_only_the_alb_reaches_the_tasks(retail: StackJson) -> None:
    group = {name: ref(by_path(retail, "aws_security_group", f"catalog-api/{name}"), "id")
             for name in ("callers-sg", "alb-sg", "sg")}
    assert [(r["referenced_security_group_id"], r["from_port"], r["to_port"])
            for r in ingress(retail, "catalog-api/alb-sg")] == [(group["callers-sg"], 443, 443)]
    assert [(r["referenced_security_group_id"], r["to_port"]) for r in egress(retail, "catalog-api/callers-sg")] == [
        (group["alb-sg"], 443)]
    assert [(r["referenced_security_group_id"], r["to_port"]) for r in egress(retail, "catalog-api/alb-sg")] == [
        (group["sg"], 8443)]
    assert [(r["referenced_security_group_id"], r["from_port"]) for r in ingress(retail, "catalog-api/sg")] == [
        (group["alb-sg"], 8443)]
    ports = sorted(r["to_port"] for r in egress(retail, "catalog-api/sg"))
    assert ports == [443, 443, 5432, 6379]  # the endpoints, S3 (image layers), PostgreSQL, Redis
    assert retail.document["output"]["catalog_api_callers_security_group_id"]["value"] == group["callers-sg"]


def test_the_task_role_has_no_permission_and_the_execution_role_reads_only_its_four_secrets(retail: StackJson) -> None:
    task_role = by_path(retail, "aws_iam_role", "catalog-api/task-role")
    assert not [p for p in retail.resources("aws_iam_role_policy") if p.config["role"] == ref(task_role, "id")]
    assert not [p for p in retail.resources("aws_iam_role_policy_attachment")
                if p.config["role"] in (ref(task_role, "id"), ref(task_role, "name"))]
    execution = by_path(retail, "aws_iam_role_policy", "catalog-api/execution-policy")
    assert {s["Sid"] for s in policy_statements(execution)} == {
        "AuthenticateToEcr", "PullTheProcessorImage", "WriteContainerLogs", "InjectTheReadApiSecrets", "DecryptTheImage"}
    secrets = {s.name: f"${{data.aws_secretsmanager_secret.{s.name}.arn}}"
               for s in retail.data_sources("aws_secretsmanager_secret")}
    reader, tokens, tls = (next(v for k, v in secrets.items() if f"catalog-api_{part}" in k)
                           for part in ("reader-secret", "tokens-secret", "tls-secret"))
    redis = next(v for k, v in secrets.items() if k.startswith("cache_auth-secret"))
    assert sorted(statement(execution, "InjectTheReadApiSecrets")["Resource"]) == sorted([reader, tokens, tls, redis])
    assert statement(execution, "PullTheProcessorImage")["Resource"] == [
        ref(only(retail, "aws_ecr_repository"), "arn")]
    assert statement(execution, "WriteContainerLogs")["Resource"] == [
        f"{ref(by_path(retail, 'aws_cloudwatch_log_group', 'catalog-api/logs/group'), 'arn')}:*"]
    assert statement(execution, "DecryptTheImage")["Condition"]["StringEquals"]["kms:ViaService"].startswith("ecr.")
    injected = {s["name"]: s["valueFrom"] for s in container(retail)["secrets"]}
    assert injected == {"DB_PASSWORD": reader, "REDIS_PASSWORD": redis, "CATALOG_API_TOKENS": tokens,
                        "CATALOG_API_TLS": tls}


def test_the_container_is_the_processor_image_running_catalog_api_as_the_reader(retail: StackJson) -> None:
    api, processor = container(retail), json.loads(by_path(retail, "aws_ecs_task_definition", "processor/task")
                                                   .config["container_definitions"])[0]
    assert api["image"] == processor["image"] and api["command"] == ["catalog-api"]
    assert (api["user"], api["readonlyRootFilesystem"]) == ("10001:10001", True)
    env = {e["name"]: e["value"] for e in api["environment"]}
    assert env["DB_USER"] == "catalog_reader" and env["DB_SSLMODE"] == "verify-full" and env["REDIS_TLS"] == "true"
    assert not {"STREAM_NAME", "DB_IAM_AUTH", "CONSUMER_GROUP"} & set(env)  # nothing of the stream's
    # What the synthesized task sets plus what ECS injects is exactly what the entry point reads.
    injected = {s["name"]: "x" for s in api["secrets"]} | {
        "CATALOG_API_TLS": "-----BEGIN PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----"}
    settings = CatalogApiConfig.from_env({k: v for k, v in env.items() if not v.startswith("${")} | {
        "DB_HOST": "db", "DB_NAME": "catalog", "REDIS_HOST": "cache", "DB_PORT": "5432", "REDIS_PORT": "6379"}
        | injected)
    assert (settings.port, settings.pool_size, settings.db_user) == (8443, 4, "catalog_reader")
    assert api["logConfiguration"]["options"]["awslogs-group"] == ref(
        by_path(retail, "aws_cloudwatch_log_group", "catalog-api/logs/group"), "name")
    task = by_path(retail, "aws_ecs_task_definition", "catalog-api/task").config
    assert (task["cpu"], task["memory"], task["family"]) == ("256", "512", "retail-catalog-api-dev")


def test_requests_per_task_scale_the_service_between_the_configs_bounds(
        retail: StackJson, prod_stacks: dict[str, StackJson]) -> None:
    for stack, bounds in ((retail, (1, 2)), (prod_stacks["retail-prod"], (2, 6))):
        target = by_path(stack, "aws_appautoscaling_target", "catalog-api/scaling-target").config
        assert (target["min_capacity"], target["max_capacity"]) == bounds
        assert target["resource_id"].endswith("/${aws_ecs_service.catalog-api_service_D0C1D0C4.name}")
        policy = by_path(stack, "aws_appautoscaling_policy", "catalog-api/scale-on-requests").config
        tracking = policy["target_tracking_scaling_policy_configuration"]
        assert policy["policy_type"] == "TargetTrackingScaling" and tracking["target_value"] == 6000
        metric = tracking["predefined_metric_specification"]
        assert metric["predefined_metric_type"] == "ALBRequestCountPerTarget"
        assert metric["resource_label"] == (f"{ref(only(stack, 'aws_lb'), 'arn_suffix')}/"
                                            f"{ref(only(stack, 'aws_lb_target_group'), 'arn_suffix')}")
    assert only(prod_stacks["retail-prod"], "aws_lb").config["enable_deletion_protection"] is True
    assert only(retail, "aws_lb").config["enable_deletion_protection"] is False


def test_latency_5xx_and_unhealthy_tasks_page_through_the_alerts_topic(retail: StackJson) -> None:
    assert paging_alarm_purposes(retail, "catalog-api") == {
        "catalog-api-p99-latency", "catalog-api-target-5xx", "catalog-api-alb-5xx", "catalog-api-unhealthy-tasks",
        "catalog-api-no-healthy-task"}
    alarms = {a.config["alarm_name"]: a.config for a in retail.resources("aws_cloudwatch_metric_alarm")}
    latency = alarms["retail-catalog-api-p99-latency-dev"]
    assert (latency["namespace"], latency["metric_name"], latency["extended_statistic"], latency["threshold"]) == (
        "AWS/ApplicationELB", "TargetResponseTime", "p99", 0.25)
    assert latency["dimensions"] == {"LoadBalancer": ref(only(retail, "aws_lb"), "arn_suffix"),
                                     "TargetGroup": ref(only(retail, "aws_lb_target_group"), "arn_suffix")}
    assert alarms["retail-catalog-api-alb-5xx-dev"]["metric_name"] == "HTTPCode_ELB_5XX_Count"
    assert alarms["retail-catalog-api-target-5xx-dev"]["metric_name"] == "HTTPCode_Target_5XX_Count"
    topic = ref(only(retail, "aws_sns_topic"), "arn")
    assert all(alarms[f"retail-{p}-dev"]["alarm_actions"] == [topic] for p in paging_alarm_purposes(retail, "catalog-api"))
    dashboard = json.loads(only(retail, "aws_cloudwatch_dashboard").config["dashboard_body"])
    titles = [w["properties"]["title"] for w in dashboard["widgets"]]
    assert "Catalog read API: requests and errors" in titles and "Catalog read API: response time (s) and tasks" in titles


def test_the_migrate_task_makes_the_reader_with_the_password_from_its_secret(retail: StackJson) -> None:
    migrate = json.loads(by_path(retail, "aws_ecs_task_definition", "migration/task").config["container_definitions"])[0]
    env = {e["name"]: e["value"] for e in migrate["environment"]}
    reader = next(s for s in retail.data_sources("aws_secretsmanager_secret") if "reader-secret" in s.name)
    assert env["CATALOG_READER_USER"] == "catalog_reader"
    assert env["CATALOG_READER_SECRET_ARN"] == f"${{data.aws_secretsmanager_secret.{reader.name}.arn}}"
    policy = by_path(retail, "aws_iam_role_policy", "migration/task-policy")
    assert statement(policy, "ReadTheCatalogReaderPassword") == {
        "Sid": "ReadTheCatalogReaderPassword", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
        "Resource": [env["CATALOG_READER_SECRET_ARN"]]}


def test_the_secrets_are_the_ones_an_operator_creates_under_the_stacks_names(retail: StackJson) -> None:
    names = {s.config["name"] for s in retail.data_sources("aws_secretsmanager_secret")}
    assert names == {"retail-dev/redis-auth", "retail-dev/catalog-api-reader", "retail-dev/catalog-api-tokens",
                     "retail-dev/catalog-api-tls"}


def test_the_outputs_give_the_url_by_the_certificates_name_and_the_albs_dns_name(retail: StackJson) -> None:
    outputs = retail.document["output"]
    assert outputs["catalog_api_url"]["value"] == "https://catalog-dev.retail.internal"
    assert outputs["catalog_api_alb_dns_name"]["value"] == ref(only(retail, "aws_lb"), "dns_name")


def test_the_certificates_name_resolves_to_the_alb_inside_the_vpc_only(retail: StackJson) -> None:
    zone = only(retail, "aws_route53_zone")
    assert zone.config["name"] == "catalog-dev.retail.internal"  # the certificate's name, the url's host
    assert zone.config["vpc"] == [{"vpc_id": ref(only(retail, "aws_vpc"), "id")}]  # private: this VPC only
    assert zone.config["force_destroy"] is True  # goes with the stack, alias and all
    record = only(retail, "aws_route53_record").config
    assert (record["zone_id"], record["name"], record["type"]) == (ref(zone, "zone_id"), zone.config["name"], "A")
    balancer = only(retail, "aws_lb")
    assert record["alias"] == {"name": ref(balancer, "dns_name"), "zone_id": ref(balancer, "zone_id"),
                               "evaluate_target_health": True}


def test_the_factory_has_no_read_api(factory: StackJson) -> None:
    assert not list(factory.resources("aws_lb")) and build_config("factory", "dev").catalog_api is None


@pytest.mark.parametrize(("change", "message"), [
    ({"certificate_domain": "not a name"}, "certificate_domain 'not a name' is not a DNS name"),
    ({"memory_mib": 4096, "cpu": 256}, "256 CPU units with 4096 MiB is not a Fargate task size"),
    ({"min_count": 3, "max_count": 2}, "task counts must satisfy 1 <= min (3) <= max (2) <= 50"),
    ({"tls_policy": "ELBSecurityPolicy-2016-08"}, "tls_policy must be one of"),
    ({"container_port": 443}, "container_port must be an unprivileged port"),
    ({"reader_user": "Robert'); DROP"}, "is not a plain PostgreSQL role name"),
])
def test_the_config_refuses_what_would_not_deploy_or_serve(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        replace(CatalogReadApiConfig(certificate_domain="catalog.example.com"), **change)


def test_every_name_carries_the_suffix_and_the_tasks_get_the_stacks_tags(retail: StackJson) -> None:
    names = [by_path(retail, "aws_lb", "catalog-api/alb").config["name"],
             only(retail, "aws_lb_target_group").config["name"],
             by_path(retail, "aws_ecs_service", "catalog-api/service").config["name"],
             by_path(retail, "aws_iam_role", "catalog-api/task-role").config["name"],
             by_path(retail, "aws_iam_role", "catalog-api/execution-role").config["name"],
             by_path(retail, "aws_appautoscaling_policy", "catalog-api/scale-on-requests").config["name"]]
    assert re.fullmatch(r"retail-cat-[0-9a-f]{8}-dev", names.pop(1))  # replaced create-first: its name changes
    assert names == ["retail-catalog-api-dev", "retail-catalog-api-dev",
                     "retail-catalog-api-task-dev", "retail-catalog-api-exec-dev", "retail-catalog-api-requests-dev"]
    tags = retail.provider["default_tags"][0]["tags"]
    assert (tags["Workload"], tags["Environment"], tags["DataClassification"]) == ("retail", "dev", "confidential")
    service = by_path(retail, "aws_ecs_service", "catalog-api/service").config
    assert service["propagate_tags"] == "SERVICE" and service["enable_ecs_managed_tags"] is True
