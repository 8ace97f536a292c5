"""The monthly cost: a pure function of the resources, a price table and the usage; every resource
priced, free or listed with why not; the table's date on every figure."""
from __future__ import annotations

from pathlib import Path

import pytest

from policy.stack_json import StackJson
from tools.cost import estimate, prices
from tools.cost.__main__ import render

TABLE = """
as_of = 2030-01-31
currency = "USD"
hours_per_month = 100

[region.r1]
fargate_arm64_vcpu_hour = 0.04
fargate_arm64_gb_hour = 0.01
kinesis_shard_hour = 0.02
kinesis_extended_retention_shard_hour = 0.03
kinesis_on_demand_stream_hour = 0.05
kinesis_on_demand_ingest_gb = 0.1
kinesis_on_demand_retrieval_gb = 0.05
kinesis_on_demand_extended_retention_gb_month = 0.2
kinesis_put_payload_units_per_million = 0.5
rds_gp3_gb_month = 0.1
database_insights_vcpu_hour = 0.01
interface_endpoint_az_hour = 0.01
interface_endpoint_gb = 0.01
firehose_gb = 0.03
s3_standard_gb_month = 0.02
s3_standard_ia_gb_month = 0.01
s3_glacier_flexible_gb_month = 0.004
s3_put_per_thousand = 0.005
cloudwatch_alarm_month = 0.1
cloudwatch_dashboard_month = 3.0
logs_ingest_gb = 0.5
logs_storage_gb_month = 0.03
kms_key_month = 1.0
secret_month = 0.4
backup_rds_gb_month = 0.1
ecr_storage_gb_month = 0.1
apigateway_rest_requests_per_million = 3.5
waf_web_acl_month = 5.0
waf_rule_month = 1.0
waf_requests_per_million = 0.6
cloudwatch_custom_metric_month = 0.3
alb_hour = 0.02

[region.r1.rds_postgres_instance_hour]
"db.small" = 0.05

[region.r1.elasticache_node_hour]
"cache.small" = 0.03

[vcpus]
"db.small" = 2
"""
USAGE = estimate.Usage(records_per_minute=1_000, record_bytes=400, processor_log_gb_month=2, flow_log_gb_month=1,
                       other_log_gb_month=0.5, database_gb=10, image_gb=0.2, archive_compression=4, archive_months=12)


@pytest.fixture()
def table(tmp_path: Path) -> prices.PriceTable:
    path = tmp_path / "prices.toml"
    path.write_text(TABLE)
    return prices.load(path)


def cost_of(table: prices.PriceTable, *resources: estimate.Resource, usage: estimate.Usage | None = USAGE
            ) -> estimate.StackCost:
    return estimate.estimate("s-dev", "r1", list(resources), table, usage)


def res(address: str, values: dict, **refs: tuple[str, ...]) -> estimate.Resource:
    return estimate.Resource(address, address.split(".")[0], values, refs)


def test_a_service_costs_its_tasks_vcpu_and_memory_hours(table: prices.PriceTable) -> None:
    task = res("aws_ecs_task_definition.t", {"cpu": "512", "memory": "2048", "runtime_platform": {"cpu_architecture": "ARM64"}})
    service = res("aws_ecs_service.s", {"desired_count": 2}, task_definition=("aws_ecs_task_definition.t",))
    cost = cost_of(table, task, service)
    assert cost.total() == pytest.approx(2 * (0.5 * 0.04 + 2 * 0.01) * 100)  # 8.00
    assert dict(cost.free)["aws_ecs_task_definition.t"].startswith("free")


def scaled_service(desired: int, floor: int, ceiling: int) -> list[estimate.Resource]:
    task = res("aws_ecs_task_definition.t", {"cpu": "512", "memory": "2048", "runtime_platform": {"cpu_architecture": "ARM64"}})
    service = res("aws_ecs_service.s", {"name": "w-api-dev", "desired_count": desired},
                  task_definition=("aws_ecs_task_definition.t",))
    target = res("aws_appautoscaling_target.a", {"min_capacity": floor, "max_capacity": ceiling,
                                                 "resource_id": "service/c/${aws_ecs_service.s.name}"},
                 resource_id=("aws_ecs_service.s",))
    return [task, service, target]


def test_an_autoscaled_service_costs_its_floor_before_traffic_not_the_count_it_starts_at(
        table: prices.PriceTable) -> None:
    cost = cost_of(table, *scaled_service(desired=2, floor=1, ceiling=4))
    task_month = (0.5 * 0.04 + 2 * 0.01) * 100  # 4.00
    assert cost.total(estimate.FIXED) == pytest.approx(task_month)
    assert cost.total(estimate.TRAFFIC) == 0  # no tasks are needed for the service by that name
    assert "autoscaling's floor; it starts at 2" in cost.lines[0].basis


def test_the_tasks_stated_traffic_needs_beyond_the_floor_are_traffic_up_to_the_ceiling(
        table: prices.PriceTable) -> None:
    task_month = (0.5 * 0.04 + 2 * 0.01) * 100
    for needed, extra in ((1, 0), (3, 2), (9, 3)):
        usage = estimate.Usage(**{**USAGE.__dict__, "tasks_needed": {"w-api-dev": needed}})
        cost = cost_of(table, *scaled_service(desired=2, floor=1, ceiling=4), usage=usage)
        assert cost.total(estimate.FIXED) == pytest.approx(task_month)
        assert cost.total(estimate.TRAFFIC) == pytest.approx(extra * task_month), needed


def test_a_provisioned_stream_costs_shard_hours_retention_and_put_units(table: prices.PriceTable) -> None:
    stream = res("aws_kinesis_stream.k", {"shard_count": 2, "retention_period": 168,
                                          "stream_mode_details": {"stream_mode": "PROVISIONED"}})
    cost = cost_of(table, stream)
    assert cost.total(estimate.FIXED) == pytest.approx(2 * 0.02 * 100 + 2 * 0.03 * 100)  # 10.00
    records = 1_000 * 730 * 60  # a month of minutes at 730 h
    assert cost.total(estimate.TRAFFIC) == pytest.approx(records / 1e6 * 0.5)


def test_an_on_demand_stream_costs_its_stream_hours_and_its_gigabytes(table: prices.PriceTable) -> None:
    stream = res("aws_kinesis_stream.k", {"retention_period": 48, "stream_mode_details": {"stream_mode": "ON_DEMAND"}})
    cost = cost_of(table, stream)
    assert cost.total(estimate.FIXED) == pytest.approx(0.05 * 100)
    month_gb = 1_000 * 730 * 60 * 400 / 1e9  # 17.52 GB
    ingested = 1_000 * 730 * 60 * 1_000 / 1e9  # records rounded up to 1 KB
    held = month_gb * 24 / 24 / (730 / 24)  # a day beyond the first 24 h
    assert cost.total(estimate.TRAFFIC) == pytest.approx(ingested * 0.1 + month_gb * 0.05 + held * 0.2)


def test_a_database_costs_its_instance_storage_insights_and_master_secret(table: prices.PriceTable) -> None:
    db = res("aws_db_instance.d", {"instance_class": "db.small", "multi_az": True, "allocated_storage": 50,
                                   "performance_insights_enabled": True, "performance_insights_retention_period": 731,
                                   "manage_master_user_password": True})
    cost = cost_of(table, db)
    assert cost.total() == pytest.approx(2 * 0.05 * 100 + 2 * 50 * 0.1 + 4 * 0.01 * 100 + 0.4)  # 24.40
    assert cost.by_service() == pytest.approx({"RDS": 24.0, "Secrets Manager": 0.4})


def test_free_performance_insights_and_a_single_zone_cost_nothing_extra(table: prices.PriceTable) -> None:
    db = res("aws_db_instance.d", {"instance_class": "db.small", "multi_az": False, "allocated_storage": 20,
                                   "performance_insights_enabled": True, "performance_insights_retention_period": 7})
    assert cost_of(table, db).total() == pytest.approx(0.05 * 100 + 20 * 0.1)


def test_a_cache_costs_each_node(table: prices.PriceTable) -> None:
    group = res("aws_elasticache_replication_group.c", {"node_type": "cache.small", "num_cache_clusters": 2})
    assert cost_of(table, group).total() == pytest.approx(2 * 0.03 * 100)


def test_an_interface_endpoint_costs_each_zone_and_a_gateway_is_free(table: prices.PriceTable) -> None:
    one = res("aws_vpc_endpoint.a", {"vpc_endpoint_type": "Interface", "service_name": "com.amazonaws.r1.ecr.api",
                                     "subnet_ids": ["${aws_subnet.x.id}"]})
    two = res("aws_vpc_endpoint.b", {"vpc_endpoint_type": "Interface", "service_name": "com.amazonaws.r1.logs",
                                     "subnet_ids": ["${aws_subnet.x.id}", "${aws_subnet.y.id}"]})
    gateway = res("aws_vpc_endpoint.s3", {"vpc_endpoint_type": "Gateway", "service_name": "com.amazonaws.r1.s3"})
    cost = cost_of(table, one, two, gateway, usage=None)
    assert cost.per_resource() == pytest.approx({"aws_vpc_endpoint.a": 1.0, "aws_vpc_endpoint.b": 2.0})
    assert "aws_vpc_endpoint.s3" in dict(cost.free)
    assert "ecr.api: 1 AZ(s)" in next(line.basis for line in cost.lines if line.address == "aws_vpc_endpoint.a")


def test_firehose_rounds_each_record_up_to_5_kb(table: prices.PriceTable) -> None:
    firehose = res("aws_kinesis_firehose_delivery_stream.f", {})
    records = 1_000 * 730 * 60
    assert cost_of(table, firehose).total() == pytest.approx(records * 5_000 / 1e9 * 0.03)


def test_the_archive_is_priced_by_its_lifecycle_after_a_year_of_growth(table: prices.PriceTable) -> None:
    bucket = res("aws_s3_bucket.a", {})
    lifecycle = res("aws_s3_bucket_lifecycle_configuration.l", {"bucket": "${aws_s3_bucket.a.id}", "rule": [{
        "status": "Enabled", "transition": [{"days": 30, "storage_class": "STANDARD_IA"},
                                            {"days": 90, "storage_class": "GLACIER"}],
        "expiration": {"days": 1096}}]}, bucket=("aws_s3_bucket.a",))
    firehose = res("aws_kinesis_firehose_delivery_stream.f", {}, extended_s3_configuration=("aws_s3_bucket.a",))
    cost = cost_of(table, bucket, lifecycle, firehose)
    monthly_gb = 1_000 * 730 * 60 * 400 / 1e9 / 4
    month = 730 / 24
    expected = (30 / month * monthly_gb * 0.02 + 60 / month * monthly_gb * 0.01
                + (12 * month - 90) / month * monthly_gb * 0.004 + 730 * 60 / 5 / 1000 * 0.005)
    assert cost.per_resource()["aws_s3_bucket.a"] == pytest.approx(expected)


def test_logs_backups_images_alarms_dashboards_keys_and_secrets(table: prices.PriceTable) -> None:
    cost = cost_of(
        table,
        res("aws_cloudwatch_log_group.p", {"name": "/s/processor", "retention_in_days": 30}),
        res("aws_backup_plan.b", {"rule": [{"lifecycle": {"delete_after": 7}}]}),
        res("aws_ecr_repository.e", {}),
        res("aws_ecr_lifecycle_policy.l", {"repository": "${aws_ecr_repository.e.name}",
                                           "policy": '{"rules":[{"selection":{"countNumber": 5}}]}'},
            repository=("aws_ecr_repository.e",)),
        res("aws_cloudwatch_metric_alarm.a", {}),
        res("aws_cloudwatch_dashboard.d", {}),
        res("aws_kms_key.k", {}),
        res("aws_secretsmanager_secret.s", {}),
    )
    growth = 1_000 * 730 * 60 * 400 / 1e9 / (730 / 24)
    assert cost.per_resource() == pytest.approx({
        "aws_cloudwatch_log_group.p": 2 * 0.5 + 2 * 30 / (730 / 24) * 0.03,
        "aws_backup_plan.b": (10 + growth * 7) * 0.1,
        "aws_ecr_repository.e": 5 * 0.2 * 0.1,
        "aws_cloudwatch_metric_alarm.a": 0.1, "aws_cloudwatch_dashboard.d": 3.0,
        "aws_kms_key.k": 1.0, "aws_secretsmanager_secret.s": 0.4})


def test_the_supplier_api_costs_its_requests_at_the_stated_batching_and_its_web_acl_and_metric(
        table: prices.PriceTable) -> None:
    cost = cost_of(table, res("aws_api_gateway_rest_api.a", {}),
                   res("aws_wafv2_web_acl.w", {"rule": [{"name": "per-ip-rate"}]}),
                   res("aws_cloudwatch_log_metric_filter.f", {}))
    requests = 1_000 * 730 * 60 / 100  # 100 records a request (Usage.api_records_per_request)
    assert cost.per_resource() == pytest.approx({
        "aws_api_gateway_rest_api.a": requests / 1e6 * 3.5,
        "aws_wafv2_web_acl.w": 5.0 + 1.0 + requests / 1e6 * 0.6,
        "aws_cloudwatch_log_metric_filter.f": 0.3})
    (line,) = [li for li in cost.lines if li.address == "aws_api_gateway_rest_api.a"]
    assert f"one record a request: ${1_000 * 730 * 60 / 1e6 * 3.5:,.2f}" in line.basis  # what batching saves


def test_a_plan_review_without_usage_still_prices_what_is_billed_by_the_hour_or_month(table: prices.PriceTable) -> None:
    """Only traffic needs the usage figures: the web ACL's month and the ALB's hours are billed without it."""
    cost = cost_of(table, res("aws_wafv2_web_acl.w", {"rule": [{"name": "per-ip-rate"}]}),
                   res("aws_lb.l", {"load_balancer_type": "application"}), usage=None)
    assert cost.per_resource() == pytest.approx({"aws_wafv2_web_acl.w": 5.0 + 1.0,
                                                 "aws_lb.l": 0.02 * table.hours_per_month})
    assert cost.unpriced == ()


def test_a_type_the_table_does_not_know_is_reported_never_priced_at_zero(table: prices.PriceTable) -> None:
    cost = cost_of(table, res("aws_nat_gateway.n", {}), res("aws_vpc.v", {}))
    assert cost.lines == () and dict(cost.unpriced) == {"aws_nat_gateway.n": "`aws_nat_gateway` is not in the price table"}
    assert dict(cost.free) == {"aws_vpc.v": "free"}


def test_a_size_or_region_the_table_lacks_is_reported_by_name(table: prices.PriceTable) -> None:
    cost = cost_of(table, res("aws_elasticache_replication_group.c", {"node_type": "cache.huge", "num_cache_clusters": 2}))
    assert "no elasticache_node_hour price for 'cache.huge' in r1" in dict(cost.unpriced)["aws_elasticache_replication_group.c"]
    other = estimate.estimate("s", "r9", [res("aws_kms_key.k", {})], table, None)
    assert "no prices for region 'r9'" in dict(other.unpriced)["aws_kms_key.k"]


def test_traffic_items_without_a_usage_say_so_rather_than_guess(table: prices.PriceTable) -> None:
    cost = cost_of(table, res("aws_kinesis_firehose_delivery_stream.f", {}), usage=None)
    assert "depends on traffic" in dict(cost.unpriced)["aws_kinesis_firehose_delivery_stream.f"]


def test_every_synthesized_resource_is_priced_or_free_and_the_date_is_on_every_figure(dev_stacks: dict[str, StackJson],
                                                                                      prod_stacks: dict[str, StackJson]) -> None:
    from stacks.config import build_config
    from tools.cost.usage import usage_of

    table = prices.load()
    costs = []
    for stack in [*dev_stacks.values(), *prod_stacks.values()]:
        config = build_config(stack.workload, stack.stack_id.split("-", 1)[1], "email:a@example.com", "email:b@example.com")
        resources = estimate.from_synthesized(stack.document)
        cost = estimate.estimate(stack.stack_id, config.region, resources, table, usage_of(config))
        assert cost.unpriced == (), cost.unpriced
        assert {line.address for line in cost.lines} | {a for a, _ in cost.free} == {r.address for r in resources}
        costs.append(cost)
    text = render(costs, table, detail=False)
    assert text.count(f"prices of {table.as_of.isoformat()}") == 1 + len(costs)  # the summary and each stack


def test_a_dev_environment_of_one_stack_costs_at_most_150_a_month_with_its_stated_traffic(
        dev_stacks: dict[str, StackJson]) -> None:
    from stacks.config import build_config
    from tools.cost.usage import usage_of

    table = prices.load()
    for stack in dev_stacks.values():
        config = build_config(stack.workload, "dev")
        cost = estimate.estimate(stack.stack_id, config.region, estimate.from_synthesized(stack.document), table,
                                 usage_of(config))
        assert cost.total() <= 150, (stack.stack_id, cost.by_service(estimate.FIXED), cost.by_service(estimate.TRAFFIC))


def test_an_alb_access_log_bucket_is_priced_by_its_reads_log_lines_and_expiry(table: prices.PriceTable) -> None:
    bucket = res("aws_s3_bucket.logs", {})
    lifecycle = res("aws_s3_bucket_lifecycle_configuration.l", {"bucket": "${aws_s3_bucket.logs.id}", "rule": [{
        "status": "Enabled", "expiration": {"days": 61}}]}, bucket=("aws_s3_bucket.logs",))
    alb = res("aws_lb.a", {"load_balancer_type": "application", "subnets": ["s1", "s2", "s3"],
                           "access_logs": {"bucket": "${aws_s3_bucket.logs.id}"}}, access_logs=("aws_s3_bucket.logs",))
    usage = estimate.Usage(**{**USAGE.__dict__, "catalog_reads_per_second": 10.0, "catalog_bytes_per_read": 1_000,
                              "catalog_access_log_bytes_per_read": 100.0})
    cost = cost_of(table, bucket, lifecycle, alb, usage=usage)
    monthly_gb = 10 * 730 * 3600 * 100 / 1e9
    held_gb = monthly_gb * 61 / (730 / 24)  # expired at 61 days: two months' logs held after a year
    puts = 730 * 60 / 5 * 3  # one object per node (subnet) every five minutes
    assert cost.per_resource()["aws_s3_bucket.logs"] == pytest.approx(held_gb * 0.02 + puts / 1000 * 0.005)
    assert dict(cost_of(table, bucket, alb, usage=usage).unpriced)["aws_s3_bucket.logs"].startswith(
        "no enabled lifecycle rule with an expiry")


def test_the_usage_names_the_tasks_each_service_needs_and_logs_only_those_that_run() -> None:
    from stacks.config import build_config
    from tools.cost.usage import PROCESSOR_LOG_GB_PER_TASK_MONTH, usage_of

    dev, prod = build_config("retail", "dev"), build_config("retail", "prod", "email:a@example.com", "email:b@example.com")
    # A tenth of 6,000 records a minute is far under one quarter-vCPU task; 600 reads a minute, one read API task.
    assert usage_of(dev).tasks_needed == {"retail-processor-dev": 1, "retail-catalog-api-dev": 1}
    assert usage_of(dev).processor_log_gb_month == pytest.approx(PROCESSOR_LOG_GB_PER_TASK_MONTH)  # scaled in to one
    assert usage_of(prod).processor_log_gb_month == pytest.approx(2 * PROCESSOR_LOG_GB_PER_TASK_MONTH)  # floor of two
