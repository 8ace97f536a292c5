from __future__ import annotations

from pathlib import Path

import pytest

from policy.stack_json import StackJson
from tests.helpers import only, paging_alarm_purposes, ref


def test_postgres_16_storage_is_encrypted_with_the_cmk(stack: StackJson) -> None:
    db = only(stack, "aws_db_instance").config
    assert db["engine"] == "postgres" and db["engine_version"].startswith("16")
    assert db["storage_encrypted"] is True and db["kms_key_id"] == ref(only(stack, "aws_kms_key"), "arn")


def test_master_password_is_rds_managed_and_encrypted_with_the_cmk(stack: StackJson) -> None:
    db = only(stack, "aws_db_instance").config
    assert db["manage_master_user_password"] is True and "password" not in db
    assert db["master_user_secret_kms_key_id"] == ref(only(stack, "aws_kms_key"), "arn")


def test_managed_secret_rotates_every_30_days_without_a_lambda(stack: StackJson) -> None:
    rotation = only(stack, "aws_secretsmanager_secret_rotation").config
    assert rotation["rotation_rules"] == {"automatically_after_days": 30}
    assert "rotation_lambda_arn" not in rotation
    assert "master_user_secret" in rotation["secret_id"]


def test_parameter_group_forces_ssl(stack: StackJson) -> None:
    params = {p["name"]: p["value"] for p in only(stack, "aws_db_parameter_group").config["parameter"]}
    assert params["rds.force_ssl"] == "1"


def test_database_is_private_with_current_ca_and_iam_auth(stack: StackJson) -> None:
    db = only(stack, "aws_db_instance").config
    assert db["publicly_accessible"] is False and db["ca_cert_identifier"] == "rds-ca-rsa2048-g1"
    assert db["iam_database_authentication_enabled"] is True


def test_logs_insights_and_enhanced_monitoring_are_on(stack: StackJson) -> None:
    db = only(stack, "aws_db_instance").config
    assert db["enabled_cloudwatch_logs_exports"] == ["postgresql", "upgrade"]
    assert db["performance_insights_enabled"] is True and "aws_kms_key" in db["performance_insights_kms_key_id"]
    assert db["monitoring_interval"] == 60 and "aws_iam_role" in db["monitoring_role_arn"]


def test_rds_log_groups_exist_before_the_instance_and_are_encrypted(stack: StackJson) -> None:
    db = only(stack, "aws_db_instance")
    groups = [r for r in stack.resources("aws_cloudwatch_log_group") if r.config["name"].startswith("/aws/rds/")]
    assert {g.config["name"] for g in groups} == {
        f"/aws/rds/instance/{db.config['identifier']}/{export}" for export in ("postgresql", "upgrade")
    }
    assert all(f"{g.type}.{g.name}" in db.config["depends_on"] for g in groups)


def test_dev_database_is_destroyable(stack: StackJson) -> None:
    db = only(stack, "aws_db_instance").config
    assert db["deletion_protection"] is False and db["skip_final_snapshot"] is True
    assert db["copy_tags_to_snapshot"] is True


def test_prod_database_is_protected_multi_az_and_keeps_backups_longer(prod_stacks: dict[str, StackJson]) -> None:
    db = only(prod_stacks["retail-prod"], "aws_db_instance").config
    assert db["deletion_protection"] is True and db["multi_az"] is True and db["skip_final_snapshot"] is False
    assert db["final_snapshot_identifier"] == 'retail-db-final-prod-${formatdate("YYYYMMDDhhmmss", timestamp())}'
    assert db["lifecycle"]["ignore_changes"] == ["final_snapshot_identifier"]  # one name per instance lifetime
    assert db["backup_retention_period"] == 35


def test_the_parameter_group_has_a_prefix_with_its_family_so_a_major_upgrade_can_create_the_next(tmp_path: Path) -> None:
    from dataclasses import replace

    from cdktf import App

    from policy.stack_json import load_app
    from stacks.config import build_config
    from stacks.workload_stack import WorkloadStack

    names = {}
    for version in ("16", "17"):
        config = build_config("retail", "dev")
        config = replace(config, database=replace(config.database, engine_version=version,
                                                  parameter_group_family=f"postgres{version}"))
        app = App(outdir=str(tmp_path / version))
        WorkloadStack(app, config)
        app.synth()
        (stack,) = load_app(tmp_path / version)
        group = only(stack, "aws_db_parameter_group").config
        assert group["family"] == f"postgres{version}" and group["lifecycle"]["create_before_destroy"] is True
        assert "name" not in group  # AWS completes the prefix: never the old group's name
        names[version] = group["name_prefix"]
    assert names == {"16": "retail-db-postgres16-dev-", "17": "retail-db-postgres17-dev-"}


def test_a_family_that_does_not_match_the_engine_is_refused() -> None:
    import pytest

    from pipeline_lib.settings import DatabaseConfig

    with pytest.raises(ValueError, match="parameter_group_family 'postgres16' does not match engine_version '17'"):
        DatabaseConfig(engine_version="17")


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_connections_alarm_fires_below_the_instance_class_connection_limit(
        environment: str, dev_stacks: dict[str, StackJson], prod_stacks: dict[str, StackJson]) -> None:
    from pipeline_lib.settings import pg_max_connections

    for stack in (dev_stacks if environment == "dev" else prod_stacks).values():
        db_class = only(stack, "aws_db_instance").config["instance_class"]
        (alarm,) = [a.config for a in stack.resources("aws_cloudwatch_metric_alarm")
                    if a.config.get("metric_name") == "DatabaseConnections"]
        limit = pg_max_connections(db_class)
        assert 0 < alarm["threshold"] < limit, (stack.stack_id, db_class, alarm["threshold"], limit)


def test_connection_limits_follow_rds_formula_for_the_classes_in_use() -> None:
    from pipeline_lib.settings import pg_max_connections

    # LEAST(DBInstanceClassMemory / 9531392, 5000) on the class's memory
    assert pg_max_connections("db.t4g.micro") == 112
    assert pg_max_connections("db.t4g.medium") == 450
    assert pg_max_connections("db.r7g.large") == 1802
    assert pg_max_connections("db.r7g.16xlarge") == 5000


def test_an_instance_class_without_a_known_memory_is_refused_by_name() -> None:
    from pipeline_lib.settings import DatabaseConfig

    with pytest.raises(ValueError, match="instance class 'db.x9.huge' has no memory figure"):
        DatabaseConfig(instance_class="db.x9.huge")


def test_the_database_pages_on_cpu_free_storage_and_connections(stack: StackJson) -> None:
    assert paging_alarm_purposes(stack, "db-") == {"db-cpu", "db-free-storage", "db-connections"}
