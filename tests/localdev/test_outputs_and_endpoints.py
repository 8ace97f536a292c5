"""The flat outputs file and the local run's one set of differences from the ECS task."""
from __future__ import annotations

from pathlib import Path

import pytest

from localdev.local_endpoints import processor_environment
from localdev.outputs import flatten, main, read, update, write

TASK = {"WORKLOAD": "retail", "STREAM_NAME": "retail-updates-local", "DB_HOST": "retail-db.x.rds.amazonaws.com",
        "DB_PORT": "5432", "DB_NAME": "catalog", "DB_SECRET_ARN": "arn:secret:db", "DB_SSLMODE": "verify-full",
        "REDIS_HOST": "master.retail-cache.x.cache.amazonaws.com", "REDIS_PORT": "6379", "REDIS_TLS": "true",
        "REDIS_PASSWORD": "token"}
LOCAL = {"db_host": "127.0.0.1", "db_port": 40001, "redis_host": "127.0.0.1", "redis_port": 40002,
         "ca_file": "/work/.local/tls/ca.pem"}
AWS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:40000", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}


def test_outputs_of_both_stacks_flatten_to_workload_prefixed_keys() -> None:
    flat = flatten({"retail-local": {"stream_name": "r"}, "factory-local": {"stream_name": "f"}})
    assert flat == {"retail_stack_id": "retail-local", "retail_stream_name": "r",
                    "factory_stack_id": "factory-local", "factory_stream_name": "f"}


def test_flat_outputs_are_strings_only_lists_joined_with_commas_and_numbers_as_text() -> None:
    flat = flatten({"retail-dev": {"private_subnet_ids": ["subnet-a", "subnet-b"], "db_port": 5432,
                                   "redis_port": 6379, "stream_name": "retail-updates-dev", "flag": True}})
    assert flat == {"retail_stack_id": "retail-dev", "retail_private_subnet_ids": "subnet-a,subnet-b",
                    "retail_db_port": "5432", "retail_redis_port": "6379",
                    "retail_stream_name": "retail-updates-dev", "retail_flag": "true"}
    assert all(isinstance(value, str) for value in flat.values())


def test_an_output_that_is_a_map_is_refused_rather_than_flattened_into_a_non_string() -> None:
    with pytest.raises(ValueError, match="has no flat form"):
        flatten({"retail-dev": {"tags": {"a": "b"}}})


def test_an_unknown_stack_or_two_suffixes_of_one_workload_are_refused() -> None:
    with pytest.raises(ValueError, match="not one of this project's stacks"):
        flatten({"billing-dev": {}})
    with pytest.raises(ValueError, match="two retail stacks"):
        flatten({"retail-dev": {}, "retail-qa": {}})


def test_the_outputs_command_explains_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "outputs:" in capsys.readouterr().err


def test_the_local_run_changes_only_endpoints_the_ca_it_trusts_and_aws_access() -> None:
    env = processor_environment(TASK, LOCAL, "us-east-1", AWS)
    changed = {k for k in TASK if env[k] != TASK[k]}
    assert changed == {"DB_HOST", "DB_PORT", "REDIS_HOST", "REDIS_PORT"}
    assert env["DB_SSLMODE"] == "verify-full" and env["REDIS_TLS"] == "true"  # TLS as deployed, verified
    assert env["DB_SSLROOTCERT"] == env["REDIS_SSL_CA_CERTS"] == "/work/.local/tls/ca.pem"
    assert env["DB_HOST"] == "127.0.0.1" and env["DB_PORT"] == "40001" and env["REDIS_PORT"] == "40002"
    assert env["DB_SECRET_ARN"] == "arn:secret:db"  # credentials still come from the deployed secret
    assert env["AWS_REGION"] == "us-east-1" and env["AWS_ENDPOINT_URL"] == AWS["AWS_ENDPOINT_URL"]


def test_a_local_url_replaces_the_emulators_in_the_written_outputs_and_the_rest_is_kept(tmp_path: Path) -> None:
    path = write({"retail-local": {"supplier_api_url": "https://x.execute-api.us-east-1.amazonaws.com/live",
                                   "stream_name": "retail-updates-local"}}, tmp_path / "flat.json")
    update({"retail_supplier_api_url": "https://127.0.0.1:8443/live"}, path)
    assert read(path) == {"retail_stack_id": "retail-local", "retail_stream_name": "retail-updates-local",
                          "retail_supplier_api_url": "https://127.0.0.1:8443/live"}
