from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policy.stack_json import StackJson
from stacks.config import build_config

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_OUTPUTS = {
    "stream_name", "stream_arn", "kms_key_arn", "cluster_name", "service_name", "ecr_repository_url", "db_endpoint",
    "db_port", "db_name", "db_secret_arn", "redis_endpoint", "redis_port", "redis_auth_secret_arn",
    "archive_bucket_name", "archive_delivery_stream_name", "alerts_topic_arn", "dashboard_name", "metrics_namespace",
    "stack_region", "migrate_task_family", "private_subnet_ids", "processor_security_group_id",
}


def test_each_workload_targets_its_region(retail: StackJson, factory: StackJson) -> None:
    assert retail.provider["region"] == "us-east-1"
    assert factory.provider["region"] == "eu-west-1"


def test_default_tags_name_project_workload_environment_owner_and_cost(stack: StackJson) -> None:
    tags = stack.provider["default_tags"][0]["tags"]
    assert tags["Workload"] == stack.workload and tags["Environment"] == "dev" and tags["ManagedBy"] == "cdktf"
    assert {"Project", "Owner", "CostCenter", "DataClassification"} <= tags.keys()


def test_outputs_are_exactly_what_the_processor_and_tests_need(stack: StackJson) -> None:
    own = {"factory": {"incident_topic_arn", "iot_thing_type_name", "iot_policy_name", "iot_topic_rule_name",
                       "iot_rule_error_log_group"},
           "retail": {"supplier_api_url", "supplier_api_id", "catalog_api_url", "catalog_api_alb_dns_name",
                      "catalog_api_callers_security_group_id", "catalog_api_service_name",
                      "catalog_api_task_family"}}[stack.workload]
    assert set(stack.outputs) == EXPECTED_OUTPUTS | own


def test_state_is_local_without_a_state_bucket(stack: StackJson) -> None:
    assert stack.document["terraform"]["backend"] == {"local": {"path": f"../../../terraform.{stack.stack_id}.tfstate"}}


def test_provider_is_pinned_to_the_prestaged_version(stack: StackJson) -> None:
    assert stack.document["terraform"]["required_providers"]["aws"]["version"] == "5.100.0"


def _synth_subprocess(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "main.py"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "CDKTF_OUTDIR": str(tmp_path / "out"), **env},
    )


def test_a_state_bucket_switches_to_s3_with_locking(tmp_path: Path) -> None:
    result = _synth_subprocess(tmp_path, {"TF_STATE_BUCKET": "acme-tf-state", "ENVIRONMENT_SUFFIX": "qa"})
    assert result.returncode == 0, result.stderr
    stack = StackJson.load(tmp_path / "out" / "stacks" / "retail-qa" / "cdk.tf.json")
    backend = stack.document["terraform"]["backend"]["s3"]
    assert backend["bucket"] == "acme-tf-state" and backend["encrypt"] is True and backend["use_lockfile"] is True
    assert backend["key"] == "streaming-pipelines/retail-qa/terraform.tfstate"


def test_production_refuses_to_synthesize_without_a_state_bucket(tmp_path: Path) -> None:
    result = _synth_subprocess(tmp_path, {"TF_STATE_BUCKET": "", "ENVIRONMENT_SUFFIX": "prod",
                                          "ALERT_SUBSCRIPTIONS": "email:oncall@example.com",
                                          "INCIDENT_SUBSCRIPTIONS": "email:line-1@example.com"})
    assert result.returncode == 2
    assert "retail-prod: production state must be remote and encrypted: set TF_STATE_BUCKET" in result.stderr
    assert not (tmp_path / "out").exists()


def test_production_state_goes_to_the_named_bucket_encrypted_and_locked(prod_stacks: dict[str, StackJson]) -> None:
    from tests.conftest import PROD_STATE_BUCKET

    for stack in prod_stacks.values():
        backend = stack.document["terraform"]["backend"]
        assert backend == {"s3": {"bucket": PROD_STATE_BUCKET, "encrypt": True, "use_lockfile": True,
                                  "key": f"streaming-pipelines/{stack.stack_id}/terraform.tfstate",
                                  "region": {"retail": "us-east-1", "factory": "eu-west-1"}[stack.workload]}}


def test_a_local_state_directory_keeps_state_apart_from_the_default(tmp_path: Path) -> None:
    result = _synth_subprocess(tmp_path, {"TF_LOCAL_STATE_DIR": ".local/state", "ENVIRONMENT_SUFFIX": "local"})
    assert result.returncode == 0, result.stderr
    stack = StackJson.load(tmp_path / "out" / "stacks" / "factory-local" / "cdk.tf.json")
    assert stack.document["terraform"]["backend"] == {
        "local": {"path": "../../../.local/state/terraform.factory-local.tfstate"}}


def test_a_local_state_directory_outside_the_project_is_refused(tmp_path: Path) -> None:
    result = _synth_subprocess(tmp_path, {"TF_LOCAL_STATE_DIR": "../elsewhere"})
    assert result.returncode != 0
    assert "must stay inside the project" in result.stderr


def test_an_invalid_suffix_fails_before_anything_is_written(tmp_path: Path) -> None:
    result = _synth_subprocess(tmp_path, {"ENVIRONMENT_SUFFIX": "Not_Valid"})
    assert result.returncode == 2
    assert "not a valid name fragment" in result.stderr
    assert not (tmp_path / "out").exists()


def test_two_suffixes_share_no_physical_name(dev_stacks: dict[str, StackJson],
                                             prod_stacks: dict[str, StackJson]) -> None:
    from policy.rules import _physical_name

    def names(stacks: dict[str, StackJson]) -> set[str]:
        return {n for s in stacks.values() for r in s.resources() if (n := _physical_name(r.type, r.config))}

    assert names(dev_stacks).isdisjoint(names(prod_stacks))


@pytest.mark.parametrize("workload", ["retail", "factory"])
def test_service_never_runs_more_tasks_than_shards(workload: str) -> None:
    dev = build_config(workload, "dev")
    assert dev.service.desired_count <= dev.max_tasks == 4  # on demand: four shards to start with
    prod = build_config(workload, "prod", "email:a@example.com", "email:b@example.com")
    assert prod.service.desired_count <= prod.max_tasks == prod.stream.shard_count


def test_the_suffix_can_come_from_cdktf_context(tmp_path: Path) -> None:
    env = {"CDKTF_CONTEXT_JSON": '{"environmentSuffix": "ctx"}', "ENVIRONMENT_SUFFIX": ""}
    result = _synth_subprocess(tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "stacks").iterdir()) == ["factory-ctx", "retail-ctx"]


def test_the_local_emulator_stacks_differ_from_dev_only_in_the_suffix_and_state_path(tmp_path: Path) -> None:
    """No feature is left out for the emulator (docs/local-deployment.md: "Exceptions: none")."""
    (tmp_path / "dev").mkdir()
    (tmp_path / "local").mkdir()
    dev = _synth_subprocess(tmp_path / "dev", {"ENVIRONMENT_SUFFIX": "dev"})
    local = _synth_subprocess(tmp_path / "local", {"ENVIRONMENT_SUFFIX": "local", "TF_LOCAL_STATE_DIR": ".local/state"})
    assert dev.returncode == 0 and local.returncode == 0, dev.stderr + local.stderr
    for workload in ("retail", "factory"):
        documents = {}
        for suffix in ("dev", "local"):
            text = (tmp_path / suffix / "out" / "stacks" / f"{workload}-{suffix}" / "cdk.tf.json").read_text()
            document = json.loads(text.replace(f"{workload}-{suffix}", f"{workload}-SUFFIX")
                                  .replace(f"-{suffix}", "-SUFFIX").replace(f"/{suffix}/", "/SUFFIX/")
                                  .replace(f'"Environment": "{suffix}"', '"Environment": "SUFFIX"')
                                  .replace(f"({suffix})", "(SUFFIX)")
                                  .replace(f"_{suffix}", "_SUFFIX"))  # names that allow no hyphen (IoT rules)
            document["terraform"].pop("backend")
            documents[suffix] = document
        assert documents["dev"] == documents["local"]


def test_the_workload_list_lives_once_and_every_reader_gets_it_from_there() -> None:
    import subprocess
    import sys
    import typing

    import main
    from stacks import config, workloads
    from tools import plan

    assert workloads.WORKLOADS == ("retail", "factory")
    assert typing.get_args(config.Workload) == workloads.WORKLOADS
    assert main.WORKLOADS is workloads.WORKLOADS and plan.WORKLOADS is workloads.WORKLOADS
    for workload, region in workloads.WORKLOAD_REGIONS.items():
        assert config.build_config(workload, "dev").region == region
    listed = subprocess.run([sys.executable, "-m", "stacks", "list", "--suffix", "qa"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert listed == ["retail-qa", "factory-qa"]
