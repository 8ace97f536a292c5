"""The release path (tools/release.py): which image tool, what it runs, the migrate task."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from tools import release

OUTPUTS = {"cluster_name": "retail-cluster-dev", "migrate_task_family": "retail-migrate-dev",
           "private_subnet_ids": ["subnet-a", "subnet-b"], "processor_security_group_id": "sg-1",
           "stack_region": "us-east-1",
           "ecr_repository_url": "123456789012.dkr.ecr.us-east-1.amazonaws.com/retail-processor-dev"}


def test_outputs_are_read_from_a_cdktf_outputs_file_or_one_stacks_terraform_output(tmp_path: Path) -> None:
    cdktf = tmp_path / "all.json"
    cdktf.write_text(json.dumps({"retail-dev": OUTPUTS, "factory-dev": {**OUTPUTS, "cluster_name": "f"}}))
    assert set(release.read_outputs(cdktf, [])) == {"retail-dev", "factory-dev"}
    assert set(release.read_outputs(cdktf, ["factory-dev"])) == {"factory-dev"}
    terraform = tmp_path / "tf.json"
    terraform.write_text(json.dumps({k: {"value": v, "type": "string"} for k, v in OUTPUTS.items()}))
    assert release.read_outputs(terraform, ["retail-dev"]) == {"retail-dev": OUTPUTS}
    with pytest.raises(release.ReleaseError, match="exactly one --stack"):
        release.read_outputs(terraform, [])
    with pytest.raises(release.ReleaseError, match="no outputs for billing-dev"):
        release.read_outputs(cdktf, ["billing-dev"])


def test_docker_is_preferred_then_the_daemonless_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    assert release.image_tool(lambda probe: True) == "docker"
    assert release.image_tool(lambda probe: probe[0] != "docker") == "podman"  # a client without an engine
    assert release.image_tool(lambda probe: probe[0] == "buildah") == "buildah"
    with pytest.raises(release.ReleaseError, match="needs Docker .* Podman or Buildah"):
        release.image_tool(lambda probe: False)


def test_every_tool_builds_for_arm64_and_pushes_the_tagged_image() -> None:
    image = "r.example/repo:abc123"
    assert release.build_and_push("docker", image) == [
        ["docker", "buildx", "build", "--platform", "linux/arm64", "--tag", image, "--push", "processor"]]
    assert release.build_and_push("podman", image) == [
        ["podman", "build", "--platform", "linux/arm64", "--tag", image, "processor"], ["podman", "push", image]]
    assert release.build_and_push("buildah", image)[0][:2] == ["buildah", "bud"]


class Session:
    def __init__(self, **clients: object) -> None:
        self.clients = clients

    def client(self, service: str, region_name: str) -> object:
        return self.clients[service]


def ecr_client() -> tuple[object, Stubber]:
    ecr = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    return ecr, Stubber(ecr)


def test_an_image_already_under_its_tag_is_left_alone() -> None:
    ecr, stub = ecr_client()
    stub.add_response("describe_images", {"imageDetails": [{"imageTags": ["abc123"]}]},
                      {"repositoryName": "retail-processor-dev", "imageIds": [{"imageTag": "abc123"}]})
    ran: list = []
    with stub:
        done = release.push_image({"retail-dev": OUTPUTS}, "abc123", Session(ecr=ecr), "podman",
                                  run=lambda *a, **k: ran.append(a))
    assert ran == [] and done == [f"retail-dev: {OUTPUTS['ecr_repository_url']}:abc123 is already there"]


def test_a_new_tag_is_logged_in_built_and_pushed() -> None:
    ecr, stub = ecr_client()
    stub.add_client_error("describe_images", "ImageNotFoundException")
    token = base64.b64encode(b"AWS:secret-password").decode()
    stub.add_response("get_authorization_token", {"authorizationData": [{"authorizationToken": token}]})
    ran: list = []
    with stub:
        release.push_image({"retail-dev": OUTPUTS}, "abc123", Session(ecr=ecr), "podman",
                           run=lambda command, **kwargs: ran.append((command, kwargs.get("input"))))
    registry = OUTPUTS["ecr_repository_url"].split("/")[0]
    assert ran[0] == (["podman", "login", "--username", "AWS", "--password-stdin", registry], "secret-password")
    assert [c[0][:2] for c in ran[1:]] == [["podman", "build"], ["podman", "push"]]
    assert ran[2][0][2] == f"{OUTPUTS['ecr_repository_url']}:abc123"


def ecs_client() -> tuple[object, Stubber]:
    ecs = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    return ecs, Stubber(ecs)


def started(stub: Stubber) -> None:
    stub.add_response("run_task", {"tasks": [{"taskArn": "arn:task/1"}], "failures": []}, {
        "cluster": "retail-cluster-dev", "taskDefinition": "retail-migrate-dev", "launchType": "FARGATE", "count": 1,
        "startedBy": "tools.release", "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}}})


def stopped(stub: Stubber, exit_code: int, reason: str | None = None) -> None:
    container = {"exitCode": exit_code, **({"reason": reason} if reason else {})}
    task = {"taskArn": "arn:task/1", "lastStatus": "STOPPED", "containers": [container]}
    stub.add_response("describe_tasks", {"tasks": [task]}, {"cluster": "retail-cluster-dev", "tasks": ANY})  # waiter
    stub.add_response("describe_tasks", {"tasks": [task]}, {"cluster": "retail-cluster-dev", "tasks": ["arn:task/1"]})


def test_the_migration_runs_privately_and_succeeds_only_on_exit_zero() -> None:
    ecs, stub = ecs_client()
    started(stub)
    stopped(stub, 0)
    with stub:
        assert release.run_migration(ecs, OUTPUTS) == "arn:task/1"
    ecs, stub = ecs_client()
    started(stub)
    stopped(stub, 2, "processor: cannot reach PostgreSQL")
    with stub, pytest.raises(release.ReleaseError, match="exited 2: processor: cannot reach PostgreSQL"):
        release.run_migration(ecs, OUTPUTS)


def test_a_migration_that_cannot_start_says_why() -> None:
    ecs, stub = ecs_client()
    stub.add_response("run_task", {"tasks": [], "failures": [{"arn": "x", "reason": "RESOURCE:ENI"}]}, None)
    with stub, pytest.raises(release.ReleaseError, match="did not start: x RESOURCE:ENI"):
        release.run_migration(ecs, OUTPUTS)


def test_latest_is_refused_as_a_release_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = tmp_path / "o.json"
    outputs.write_text(json.dumps({"retail-dev": OUTPUTS}))
    assert release.main(["push-image", "--outputs", str(outputs), "--tag", "latest"]) == 1
    assert "never 'latest'" in capsys.readouterr().err


def service_state(stub: Stubber, rollout_state: str) -> None:
    stub.add_response("describe_services", {"services": [{"serviceName": "retail-processor-dev", "deployments": [
        {"status": "PRIMARY", "rolloutState": rollout_state}]}]},
        {"cluster": "retail-cluster-dev", "services": ["retail-processor-dev"]})


def stable(stub: Stubber) -> None:
    stub.add_response("describe_services", {"services": [{"serviceName": "retail-processor-dev", "desiredCount": 2,
                                                          "runningCount": 2, "deployments": [{"status": "PRIMARY"}]}]},
                      {"cluster": "retail-cluster-dev", "services": ["retail-processor-dev"]})


def test_a_rollout_waits_for_a_stable_service_and_restarts_one_that_failed_for_its_image() -> None:
    values = {**OUTPUTS, "service_name": "retail-processor-dev"}
    ecs, stub = ecs_client()
    service_state(stub, "COMPLETED")
    stable(stub)
    with stub:
        assert release.rollout(ecs, values) == "retail-processor-dev"
    ecs, stub = ecs_client()
    service_state(stub, "FAILED")
    stub.add_response("update_service", {"service": {}}, {"cluster": "retail-cluster-dev",
                                                          "service": "retail-processor-dev", "forceNewDeployment": True})
    stable(stub)
    with stub:
        release.rollout(ecs, values)
        stub.assert_no_pending_responses()
