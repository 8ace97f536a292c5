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


def _secrets(tokens: dict[str, str]) -> object:
    """A session whose Secrets Manager holds `tokens` by secret name, in moto (in-process)."""
    for name, token in tokens.items():
        region = "us-east-1" if name.startswith("retail-") else "eu-west-1"
        boto3.client("secretsmanager", region_name=region).create_secret(Name=name, SecretString=token)
    return boto3.session.Session()


@pytest.fixture()
def suffix(monkeypatch: pytest.MonkeyPatch) -> object:
    """moto in-process, and a suffix of this test's own: the suite's emulator shares moto's
    backends, so each test's secrets get names no other test uses."""
    import uuid

    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield f"t{uuid.uuid4().hex[:8]}"


def test_auth_tokens_elasticache_accepts_pass_the_check_before_a_deploy(suffix: str) -> None:
    session = _secrets({f"retail-{suffix}/redis-auth": "a" * 32 + "!&#$^<>-",
                        f"factory-{suffix}/redis-auth": "0123456789abcdef"})
    assert release.check_auth_tokens(session, suffix) == [
        f"retail-{suffix}: retail-{suffix}/redis-auth holds a token ElastiCache accepts",
        f"factory-{suffix}: factory-{suffix}/redis-auth holds a token ElastiCache accepts"]


@pytest.mark.parametrize(("token", "problem"), [
    ("p@ssword-with-at-sign", "contains '@': besides letters and digits ElastiCache accepts only ! & # $ ^ < > -"),
    ("under_score_is_refused", "contains '_'"),
    ('quote"and/slash%percent', "contains '\"', '%', '/'"),
    ("short", "has 5 characters, not 16 to 128"),
    ("x" * 129, "has 129 characters, not 16 to 128"),
])
def test_a_token_elasticache_would_refuse_stops_the_deploy_naming_the_secret_not_the_token(
        token: str, problem: str, suffix: str) -> None:
    session = _secrets({f"retail-{suffix}/redis-auth": token, f"factory-{suffix}/redis-auth": "0123456789abcdef"})
    with pytest.raises(release.ReleaseError) as refused:
        release.check_auth_tokens(session, suffix)
    message = str(refused.value)
    assert message.startswith(f"retail-{suffix}/redis-auth (us-east-1): the Redis AUTH token {problem}")
    assert token not in message and "openssl rand -hex 32" in message


def test_a_missing_auth_token_secret_is_named_before_a_deploy(suffix: str) -> None:
    session = _secrets({f"retail-{suffix}/redis-auth": "0123456789abcdef"})
    with pytest.raises(release.ReleaseError, match=rf"factory-{suffix}/redis-auth \(eu-west-1\) does not exist"):
        release.check_auth_tokens(session, suffix)
    assert release.check_auth_tokens(session, suffix, [f"retail-{suffix}"]) == [
        f"retail-{suffix}: retail-{suffix}/redis-auth holds a token ElastiCache accepts"]


class _Session:
    def __init__(self, clients: dict[str, object]) -> None:
        self.clients = clients

    def client(self, service: str, region_name: str) -> object:
        return self.clients[service]


def _sns(pages: list[list[dict]]) -> tuple[object, Stubber]:
    sns = boto3.client("sns", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    stub = Stubber(sns)
    for subscriptions in pages:
        stub.add_response("list_subscriptions_by_topic", {"Subscriptions": subscriptions}, {"TopicArn": ANY})
    stub.activate()
    return sns, stub


TOPIC = "arn:aws:sns:us-east-1:123456789012:retail-alerts-prod"
CONFIRMED = {"SubscriptionArn": f"{TOPIC}:1b2c", "Protocol": "sqs", "Endpoint": "arn:aws:sqs:us-east-1:1:q",
             "Owner": "1", "TopicArn": TOPIC}
WAITING = {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "Endpoint": "oncall@example.com",
           "Owner": "1", "TopicArn": TOPIC}


def test_a_production_alarm_subscription_nobody_confirmed_fails_the_release() -> None:
    sns, _ = _sns([[CONFIRMED, WAITING]])
    with pytest.raises(release.ReleaseError, match="retail-prod: email:oncall@example.com on retail-alerts-prod not "
                                                   "confirmed yet"):
        release.check_subscriptions(_Session({"sns": sns}),
                                    {"retail-prod": {"stack_region": "us-east-1", "alerts_topic_arn": TOPIC}})


def test_outside_production_a_pending_subscription_is_a_warning_and_confirmed_ones_pass() -> None:
    sns, _ = _sns([[WAITING], [CONFIRMED]])
    outputs = {"retail-dev": {"stack_region": "us-east-1", "alerts_topic_arn": TOPIC.replace("prod", "dev")},
               "retail-prod": {"stack_region": "us-east-1", "alerts_topic_arn": TOPIC}}
    lines, warnings = release.check_subscriptions(_Session({"sns": sns}), outputs)
    assert lines == ["retail-prod: every subscription of retail-alerts-prod is confirmed"]
    assert len(warnings) == 1 and warnings[0].startswith("retail-dev: email:oncall@example.com on retail-alerts-dev")


def test_roll_tasks_starts_new_tasks_then_waits_until_the_service_is_stable() -> None:
    ecs = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    stub = Stubber(ecs)
    stub.add_response("update_service", {}, {"cluster": "retail-cluster-dev", "service": "retail-processor-dev",
                                             "forceNewDeployment": True})
    stub.add_response("describe_services", {"services": [{"serviceName": "retail-processor-dev", "deployments": [
        {"status": "PRIMARY", "rolloutState": "IN_PROGRESS"}]}]},
        {"cluster": "retail-cluster-dev", "services": ["retail-processor-dev"]})
    stub.add_response("describe_services", {"services": [{"serviceName": "retail-processor-dev", "desiredCount": 2,
                                                          "runningCount": 2, "deployments": [{"status": "PRIMARY"}]}]},
                      {"cluster": "retail-cluster-dev", "services": ["retail-processor-dev"]})
    with stub:
        assert release.roll_tasks(ecs, {**OUTPUTS, "service_name": "retail-processor-dev"}) == "retail-processor-dev"
    stub.assert_no_pending_responses()
