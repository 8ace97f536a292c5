"""checkov over the synthesized JSON: zero failures, and no stale or missing skips."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.checkov_run import CheckovResult, Skip, load_skips, run_checkov, skips_for

pytestmark = pytest.mark.checks


@pytest.fixture(scope="module", params=["dev", "prod"])
def environment(request: pytest.FixtureRequest, dev_outdir: Path, prod_outdir: Path) -> tuple[str, Path]:
    return request.param, {"dev": dev_outdir, "prod": prod_outdir}[request.param]


@pytest.fixture(scope="module")
def with_skips(environment: tuple[str, Path]) -> CheckovResult:
    name, outdir = environment
    return run_checkov(outdir, skips_for(production=name == "prod"))


def test_checkov_finds_no_failed_check_with_the_documented_skips(with_skips: CheckovResult) -> None:
    assert with_skips.parsing_errors == 0
    assert [(f.check, f.resource, f.file) for f in with_skips.failures] == []
    assert with_skips.passed > 300  # both stacks were really scanned


def test_every_resource_pattern_of_a_skip_still_drops_a_failure(with_skips: CheckovResult) -> None:
    assert with_skips.unused_patterns == ()
    assert with_skips.dropped  # the log buckets' failures of CKV_AWS_18/CKV_AWS_145 were seen and dropped


def test_every_skip_is_still_needed_and_nothing_else_fails(environment: tuple[str, Path]) -> None:
    name, outdir = environment
    result = run_checkov(outdir, [])
    assert set(result.failed_checks) == {skip.check for skip in skips_for(production=name == "prod")}


def test_every_skip_has_a_scope_and_a_reason() -> None:
    skips = load_skips()
    assert skips and all(len(skip.reason) > 40 for skip in skips)


def test_the_log_bucket_skips_name_only_the_log_delivery_buckets() -> None:
    narrowed = {(s.check, p) for s in load_skips() if s.check in ("CKV_AWS_18", "CKV_AWS_145") for p in s.resources}
    assert narrowed == {
        ("CKV_AWS_18", "aws_s3_bucket.catalog-api_access-log-bucket_*"),
        ("CKV_AWS_18", "aws_s3_bucket.archive_bucket_*"),  # dev only: see its scope
        ("CKV_AWS_145", "aws_s3_bucket.catalog-api_access-log-bucket_*"),
        ("CKV_AWS_145", "aws_s3_bucket.archive_access-log-bucket_*"),
    }
    assert all(s.resources for s in load_skips() if s.check in ("CKV_AWS_18", "CKV_AWS_145"))


# Two buckets with neither access logging nor KMS encryption: both fail CKV_AWS_18 and CKV_AWS_145.
TWO_BUCKETS = {
    "resource": {
        "aws_s3_bucket": {
            "log-bucket_AAAA1111": {"bucket": "log-bucket-dev"},
            "data-bucket_BBBB2222": {"bucket": "data-bucket-dev"},
        },
    },
}


@pytest.fixture(scope="module")
def two_buckets_result(tmp_path_factory: pytest.TempPathFactory) -> CheckovResult:
    outdir = tmp_path_factory.mktemp("two-buckets")
    stack = outdir / "stacks" / "tiny-dev"
    stack.mkdir(parents=True)
    (stack / "cdk.tf.json").write_text(json.dumps(TWO_BUCKETS))
    skips = [
        Skip("CKV_AWS_18", "all", "the log bucket is not logged in turn",
             resources=("aws_s3_bucket.log-bucket_*", "aws_s3_bucket.gone-bucket_*")),
        Skip("CKV_AWS_145", "all", "skipped for every resource"),
    ]
    return run_checkov(outdir, skips)


def test_a_skip_narrowed_to_a_resource_drops_that_resources_failure(two_buckets_result: CheckovResult) -> None:
    assert [(f.check, f.resource) for f in two_buckets_result.dropped] == [("CKV_AWS_18", "aws_s3_bucket.log-bucket_AAAA1111")]
    assert ("CKV_AWS_18", "aws_s3_bucket.log-bucket_AAAA1111") not in {(f.check, f.resource) for f in two_buckets_result.failures}


def test_a_skip_narrowed_to_a_resource_keeps_another_resources_failure_of_the_same_check(
        two_buckets_result: CheckovResult) -> None:
    assert ("CKV_AWS_18", "aws_s3_bucket.data-bucket_BBBB2222") in {(f.check, f.resource) for f in two_buckets_result.failures}


def test_a_resource_pattern_that_drops_no_failure_is_reported_stale(two_buckets_result: CheckovResult) -> None:
    assert two_buckets_result.unused_patterns == (("CKV_AWS_18", "aws_s3_bucket.gone-bucket_*"),)


def test_a_skip_without_resources_turns_its_check_off_for_every_resource(two_buckets_result: CheckovResult) -> None:
    seen = {f.check for f in two_buckets_result.failures + two_buckets_result.dropped}
    assert "CKV_AWS_145" not in seen
    assert "CKV_AWS_18" in seen  # the run did check the buckets
