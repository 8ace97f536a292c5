from __future__ import annotations

from pathlib import Path

import pytest

from policy.stack_json import StackJson
from tests.helpers import only, paging_alarm_purposes, ref


def test_production_redis_has_two_nodes_across_azs_with_automatic_failover(prod_stacks: dict[str, StackJson]) -> None:
    for stack in prod_stacks.values():
        group = only(stack, "aws_elasticache_replication_group").config
        assert group["num_cache_clusters"] == 2
        assert group["automatic_failover_enabled"] is True and group["multi_az_enabled"] is True


def test_a_dev_redis_is_one_node_without_failover_and_keeps_every_protection(stack: StackJson) -> None:
    group = only(stack, "aws_elasticache_replication_group").config
    assert group["num_cache_clusters"] == 1
    assert group["automatic_failover_enabled"] is False and group["multi_az_enabled"] is False
    assert group["transit_encryption_mode"] == "required" and group["at_rest_encryption_enabled"] == "true"
    assert group["auth_token"].startswith("${data.aws_secretsmanager_secret_version.")


def test_a_cache_of_no_nodes_or_more_than_six_is_refused_naming_the_range() -> None:
    from pipeline_lib.settings import CacheConfig

    for nodes in (0, 7):
        with pytest.raises(ValueError, match="1 to 6 nodes"):
            CacheConfig(num_cache_clusters=nodes)


def test_redis_is_encrypted_at_rest_with_the_cmk_and_requires_tls(stack: StackJson) -> None:
    group = only(stack, "aws_elasticache_replication_group").config
    assert group["at_rest_encryption_enabled"] == "true"
    assert group["kms_key_id"] == ref(only(stack, "aws_kms_key"), "arn")
    assert group["transit_encryption_enabled"] is True and group["transit_encryption_mode"] == "required"


def test_auth_token_is_read_from_an_existing_secret(stack: StackJson) -> None:
    group = only(stack, "aws_elasticache_replication_group").config
    secret = next(stack.data_sources("aws_secretsmanager_secret"))
    assert secret.config["name"] == f"{stack.workload}-dev/redis-auth"
    assert group["auth_token"].startswith("${data.aws_secretsmanager_secret_version.")


def test_snapshots_are_retained(stack: StackJson) -> None:
    assert only(stack, "aws_elasticache_replication_group").config["snapshot_retention_limit"] >= 1


def test_slow_and_engine_logs_go_to_encrypted_vended_log_groups(stack: StackJson) -> None:
    deliveries = only(stack, "aws_elasticache_replication_group").config["log_delivery_configuration"]
    assert {d["log_type"] for d in deliveries} == {"slow-log", "engine-log"}
    assert all(d["destination_type"] == "cloudwatch-logs" for d in deliveries)
    groups = {d["log_type"]: stack.by_reference(d["destination"]).config for d in deliveries}
    assert {t: g["name"] for t, g in groups.items()} == {
        "slow-log": f"/aws/vendedlogs/{stack.workload}/dev/redis/slow-log",
        "engine-log": f"/aws/vendedlogs/{stack.workload}/dev/redis/engine-log"}
    assert all("aws_kms_key" in g["kms_key_id"] for g in groups.values())


def test_parameter_group_sets_the_eviction_policy(stack: StackJson) -> None:
    params = {p["name"]: p["value"] for p in only(stack, "aws_elasticache_parameter_group").config["parameter"]}
    # Retail's hot-product cache evicts the coldest key; factory's detector state has no TTL and must stay.
    assert params["maxmemory-policy"] == {"retail": "allkeys-lru", "factory": "volatile-lru"}[stack.workload]


def _cache_parameter_group(tmp_path: Path, family: str, engine_version: str) -> dict:
    from dataclasses import replace

    from cdktf import App

    from policy.stack_json import load_app
    from stacks.config import build_config
    from stacks.workload_stack import WorkloadStack

    config = build_config("retail", "dev")
    config = replace(config, cache=replace(config.cache, parameter_group_family=family, engine_version=engine_version))
    app = App(outdir=str(tmp_path / family))
    WorkloadStack(app, config)
    app.synth()
    (stack,) = load_app(tmp_path / family)
    return only(stack, "aws_elasticache_parameter_group").config


def test_a_redis_major_upgrade_creates_the_next_parameter_group_under_a_new_name_first(tmp_path: Path) -> None:
    now, upgrade = _cache_parameter_group(tmp_path, "redis6.x", "6.2"), _cache_parameter_group(tmp_path, "redis7", "7.1")
    assert now["lifecycle"]["create_before_destroy"] is True and upgrade["lifecycle"]["create_before_destroy"] is True
    assert now["name"].startswith("retail-cache-redis6-x-") and now["name"].endswith("-dev")
    assert upgrade["name"].startswith("retail-cache-redis7-") and now["name"] != upgrade["name"]


def test_the_cache_security_group_is_replaced_new_first_under_a_prefix(stack: StackJson) -> None:
    (group,) = [r.config for r in stack.resources("aws_security_group") if r.path.endswith("cache/sg")]
    assert "name" not in group and group["name_prefix"] == f"{stack.workload}-cache-dev-"
    assert group["lifecycle"]["create_before_destroy"] is True


def test_a_production_cache_leaves_a_final_snapshot_named_once_per_creation(prod_stacks: dict[str, StackJson]) -> None:
    group = only(prod_stacks["factory-prod"], "aws_elasticache_replication_group").config
    assert group["final_snapshot_identifier"] == 'factory-cache-final-prod-${formatdate("YYYYMMDDhhmmss", timestamp())}'
    assert group["lifecycle"]["ignore_changes"] == ["final_snapshot_identifier"]


def test_a_new_auth_token_is_set_in_the_steady_state_and_rotated_only_on_request(
        stack: StackJson, prod_stacks: dict[str, StackJson], monkeypatch: pytest.MonkeyPatch) -> None:
    from stacks.config import ConfigError, build_config

    assert only(stack, "aws_elasticache_replication_group").config["auth_token_update_strategy"] == "SET"
    assert only(prod_stacks[f"{stack.workload}-prod"],
                "aws_elasticache_replication_group").config["auth_token_update_strategy"] == "SET"
    monkeypatch.setenv("REDIS_AUTH_UPDATE", "rotate")  # the rotation's middle step (make rotate-redis-auth)
    assert build_config(stack.workload, "dev").cache.auth_token_update_strategy == "ROTATE"
    monkeypatch.setenv("REDIS_AUTH_UPDATE", "DELETE")
    with pytest.raises(ConfigError, match="REDIS_AUTH_UPDATE: auth_token_update_strategy must be SET or ROTATE"):
        build_config(stack.workload, "dev")


def test_each_redis_node_pages_on_cpu_memory_and_evictions(stack: StackJson, prod_stacks: dict[str, StackJson]) -> None:
    assert paging_alarm_purposes(stack, "cache-") == {"cache-1-cpu", "cache-1-memory", "cache-1-evictions"}
    assert paging_alarm_purposes(prod_stacks[f"{stack.workload}-prod"], "cache-") == {
        "cache-1-cpu", "cache-1-memory", "cache-1-evictions", "cache-2-cpu", "cache-2-memory", "cache-2-evictions"}
