from __future__ import annotations

import json

from policy.stack_json import Resource, StackJson
from tests.helpers import by_path, only, ref

INTERFACE_SERVICES = {"kinesis-streams", "ecr.api", "ecr.dkr", "logs", "secretsmanager"}
EXEC_SERVICES = {"kms", "ssmmessages"}  # ECS Exec's agent channel and its session key


def test_private_subnets_span_at_least_two_availability_zones(stack: StackJson) -> None:
    subnets = [r.config for r in stack.resources("aws_subnet")]
    assert len({s["availability_zone"] for s in subnets}) >= 2
    assert all(s["map_public_ip_on_launch"] is False for s in subnets)


def test_there_is_no_internet_or_nat_gateway(stack: StackJson) -> None:
    types = {r.type for r in stack.resources()}
    assert not types & {"aws_internet_gateway", "aws_nat_gateway", "aws_eip", "aws_route"}
    assert "route" not in only(stack, "aws_route_table").config


def interface_endpoints(stack: StackJson) -> dict[str, dict]:
    region = stack.provider["region"]
    return {r.config["service_name"].removeprefix(f"com.amazonaws.{region}."): r.config
            for r in stack.resources("aws_vpc_endpoint") if r.config["vpc_endpoint_type"] == "Interface"}


def test_fargate_reaches_every_aws_api_it_needs_through_interface_endpoints(stack: StackJson,
                                                                            exec_stacks: dict[str, StackJson]) -> None:
    # Exactly these: no sts (task credentials come from the ECS agent), no monitoring (EMF log lines),
    # no kms or ssmmessages unless ECS Exec is on. The factory's tasks also publish incidents to SNS.
    incidents = {"sns"} if stack.workload == "factory" else set()
    assert set(interface_endpoints(stack)) == INTERFACE_SERVICES | incidents
    assert set(interface_endpoints(exec_stacks[stack.stack_id])) == INTERFACE_SERVICES | EXEC_SERVICES | incidents
    assert all(e["private_dns_enabled"] is True for e in interface_endpoints(stack).values())


def test_interface_endpoints_sit_in_every_zone_in_production_and_in_one_in_dev(stack: StackJson,
                                                                               prod_stacks: dict[str, StackJson]) -> None:
    subnets = [ref(r, "id") for r in stack.resources("aws_subnet")]
    assert all(e["subnet_ids"] == subnets[:1] for e in interface_endpoints(stack).values())
    prod = prod_stacks[f"{stack.workload}-prod"]
    prod_subnets = [ref(r, "id") for r in prod.resources("aws_subnet")]
    assert len(prod_subnets) >= 2
    assert all(e["subnet_ids"] == prod_subnets for e in interface_endpoints(prod).values())


def test_s3_is_reached_through_a_gateway_endpoint_on_the_private_routes(stack: StackJson) -> None:
    gateway = [r.config for r in stack.resources("aws_vpc_endpoint") if r.config["vpc_endpoint_type"] == "Gateway"]
    assert len(gateway) == 1 and gateway[0]["service_name"].endswith(".s3")
    assert gateway[0]["route_table_ids"] == [ref(only(stack, "aws_route_table"), "id")]


def test_the_default_security_group_is_closed(stack: StackJson) -> None:
    default = only(stack, "aws_default_security_group").config
    assert "ingress" not in default and "egress" not in default


def test_flow_logs_capture_all_traffic_into_an_encrypted_log_group(stack: StackJson) -> None:
    flow = only(stack, "aws_flow_log").config
    group = by_path(stack, "aws_cloudwatch_log_group", "network/flow-logs/group")
    assert flow["traffic_type"] == "ALL" and flow["log_destination"] == ref(group, "arn")
    assert "aws_kms_key" in group.config["kms_key_id"]


def test_no_security_group_rule_opens_to_a_cidr(stack: StackJson) -> None:
    rules = [*stack.resources("aws_vpc_security_group_ingress_rule"), *stack.resources("aws_vpc_security_group_egress_rule")]
    assert rules
    for rule in rules:
        assert "cidr_ipv4" not in rule.config and "cidr_ipv6" not in rule.config, rule.path


def _rules(stack: StackJson, kind: str, client: str) -> list[Resource]:
    """The rules of `kind` that let `client` (a construct's tasks: processor, catalog-api) in or out."""
    group = ref(by_path(stack, "aws_security_group", f"{client}/sg"), "id")
    key = "referenced_security_group_id" if kind == "ingress" else "security_group_id"
    return [r for r in stack.resources(f"aws_vpc_security_group_{kind}_rule") if r.config.get(key) == group]


def test_ingress_exists_only_from_the_processor_and_the_read_apis_tasks_and_alb(stack: StackJson) -> None:
    ingress = {(r.path.split("/")[1], r.config["to_port"]) for r in _rules(stack, "ingress", "processor")}
    assert ingress == {("network", 443), ("database", 5432), ("cache", 6379)}
    others = [r for r in stack.resources("aws_vpc_security_group_ingress_rule") if r not in _rules(stack, "ingress", "processor")]
    if stack.workload == "retail":  # the catalog read API's tasks, to the same three; its ALB from its callers' group
        assert {(r.path.split("/")[1], r.config["to_port"]) for r in _rules(stack, "ingress", "catalog-api")} == ingress
        rest = {r.path for r in others if r not in _rules(stack, "ingress", "catalog-api")}
        assert rest == {f"{stack.stack_id}/catalog-api/alb-from-callers", f"{stack.stack_id}/catalog-api/tasks-from-alb"}
    else:
        assert others == []


def test_processor_egress_goes_only_to_endpoints_s3_database_and_cache(stack: StackJson) -> None:
    ports = sorted(r.config["to_port"] for r in _rules(stack, "egress", "processor"))
    assert ports == [443, 443, 5432, 6379]


def account_of(stack: StackJson) -> str:
    (caller,) = stack.data_sources("aws_caller_identity")
    return f"${{data.aws_caller_identity.{caller.name}.account_id}}"


def test_every_interface_endpoint_passes_only_this_accounts_principals_on_its_resources(stack: StackJson) -> None:
    region = stack.provider["region"]
    for endpoint in (r.config for r in stack.resources("aws_vpc_endpoint") if r.config["vpc_endpoint_type"] == "Interface"):
        (statement,) = json.loads(endpoint["policy"])["Statement"]
        service = endpoint["service_name"].removeprefix(f"com.amazonaws.{region}.")
        prefix = {"kinesis-streams": "kinesis", "ecr.api": "ecr", "ecr.dkr": "ecr"}.get(service, service)
        assert statement["Action"] == f"{prefix}:*" and statement["Effect"] == "Allow"
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": account_of(stack)},
                                          "StringEqualsIfExists": {"aws:ResourceAccount": account_of(stack)}}


def test_the_s3_gateway_passes_this_accounts_buckets_and_ecrs_image_layers_only(stack: StackJson) -> None:
    gateway = next(r.config for r in stack.resources("aws_vpc_endpoint") if r.config["vpc_endpoint_type"] == "Gateway")
    buckets, layers = json.loads(gateway["policy"])["Statement"]
    assert buckets["Condition"] == {"StringEquals": {"aws:ResourceAccount": account_of(stack)}}
    (partition,) = stack.data_sources("aws_partition")
    assert layers["Action"] == "s3:GetObject" and layers["Resource"] == (
        f"arn:${{data.aws_partition.{partition.name}.partition}}:s3:::prod-{stack.provider['region']}"
        "-starport-layer-bucket/*")


def test_a_task_calls_kms_itself_only_where_a_grant_is_not_through_another_service() -> None:
    from pipeline_lib import iam

    read = iam.statement("ReadTheStream", ["kinesis:GetRecords"], ["stream"])
    via = iam.statement("DecryptTheStream", ["kms:Decrypt"], ["key"],
                        condition={"StringEquals": {"kms:ViaService": "kinesis.eu-west-1.amazonaws.com"}})
    session = iam.statement("EcsExecSessionKey", ["kms:Decrypt"], ["key"])
    assert iam.direct_services([read, via]) == ["kinesis"]
    assert iam.direct_services([read, via, session]) == ["kinesis", "kms"]
