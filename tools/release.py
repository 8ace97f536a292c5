"""The processor's release path: check the Redis AUTH tokens, push the image, run the migration,
wait for the rollout, check who the alarms reach; and roll the tasks (the AUTH rotation's middle step).

    python -m tools.release check-auth-tokens --suffix <suffix> [--stack S ...]
    python -m tools.release push-image --outputs cfn-outputs/all-outputs.json --tag <sha> [--stack S ...]
    python -m tools.release migrate --outputs cfn-outputs/all-outputs.json [--stack S ...]
    python -m tools.release rollout --outputs cfn-outputs/all-outputs.json [--stack S ...]
    python -m tools.release check-subscriptions --outputs cfn-outputs/all-outputs.json [--stack S ...]
    python -m tools.release roll-tasks --outputs cfn-outputs/all-outputs.json [--stack S ...]

`check-auth-tokens` reads each stack's AUTH token secret (before a deploy: the stacks only read
it) and stops, naming the secret and what is wrong, if ElastiCache would refuse it (16-128
characters; besides letters and digits only ! & # $ ^ < > -); it never prints the token.
`check-subscriptions` lists the alerts and incidents topics' subscriptions still waiting for
their owner's confirmation (email): a warning outside production, a failure in production,
whose alarms must reach someone. `roll-tasks` starts each service's tasks anew (they read the
secret at start) and waits until the service is stable: docs/operations.md, "Rotating the
Redis AUTH token".

`--outputs` is what `cdktf output --outputs-file` writes (or `terraform output -json` of one
stack, with `--stack`). `push-image` builds processor/ for linux/arm64 with whichever of
Docker, Podman or Buildah is present (Podman and Buildah need no daemon) and pushes it to each
stack's ECR repository under `--tag`; a tag already there is left alone (the repositories
are immutable). `migrate` runs each stack's migrate task (`python -m processor migrate` with
the master secret) in the stack's private subnets and waits for it: exit 0 only when every
migration exited 0. `rollout` waits until each service is stable (its new tasks running,
the old ones gone) and fails if it is not within 10 minutes; a deployment that failed only
because its image was not there yet (a first deployment, pushed after the repositories
existed) is started again first. `make deploy` and the deploy workflow run them in order:
check-auth-tokens, push (where a repository exists), apply, push (a first deployment), migrate, rollout,
check-subscriptions.
`--skip-missing-repositories` lets the first push pass over stacks not yet deployed.
"""
from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from policy.conventions import PRODUCTION_SUFFIXES, redis_auth_token_problem
from stacks.workloads import WORKLOAD_REGIONS, redis_auth_secret_name

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "linux/arm64"  # the task definitions run on Graviton
MIGRATION_TIMEOUT_S = 900


class ReleaseError(Exception):
    """What stops a release; the message is one line."""


def read_outputs(path: Path, stacks: Sequence[str]) -> dict[str, Mapping[str, object]]:
    """Outputs by stack from a cdktf outputs file, or one stack's `terraform output -json`."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ReleaseError(f"cannot read outputs from {path}: {error}") from error
    if document and all(isinstance(v, dict) and "value" in v for v in document.values()):  # terraform output -json
        if len(stacks) != 1:
            raise ReleaseError(f"{path} holds one stack's terraform outputs: name it with exactly one --stack")
        return {stacks[0]: {name: entry["value"] for name, entry in document.items()}}
    chosen = {s: v for s, v in document.items() if not stacks or s in stacks}
    missing = set(stacks) - set(chosen)
    if missing or not chosen:
        raise ReleaseError(f"{path} has no outputs for {', '.join(sorted(missing)) or 'any stack'}")
    return chosen


# -- push-image ----------------------------------------------------------------------------------------------------


def image_tool(works: Callable[[list[str]], bool]) -> str:
    """Docker if its engine answers, else Podman, else Buildah (both daemonless)."""
    for tool, probe in (("docker", ["docker", "info"]), ("podman", ["podman", "--version"]),
                        ("buildah", ["buildah", "--version"])):
        if shutil.which(tool) and works(probe):
            return tool
    raise ReleaseError("push-image needs Docker (with a running engine), Podman or Buildah")


def build_and_push(tool: str, image: str, context: str = "processor") -> list[list[str]]:
    """The commands that build `context` for linux/arm64 as `image` and push it."""
    if tool == "docker":
        return [["docker", "buildx", "build", "--platform", PLATFORM, "--tag", image, "--push", context]]
    build = "bud" if tool == "buildah" else "build"
    return [[tool, build, "--platform", PLATFORM, "--tag", image, context], [tool, "push", image]]


def push_image(outputs: Mapping[str, Mapping[str, object]], tag: str, session: object, tool: str,
               run: Callable[..., object] = subprocess.run, skip_missing: bool = False) -> list[str]:
    """Build once per stack's registry and push; returns what was done, a line per stack."""
    done = []
    for stack, values in outputs.items():
        repository = str(values.get("ecr_repository_url") or "")
        if not repository:
            if skip_missing:
                done.append(f"{stack}: not deployed yet; pushed after its first apply")
                continue
            raise ReleaseError(f"{stack} has no ecr_repository_url output: deploy it first")
        registry, name = repository.split("/", 1)
        region = registry.split(".")[3]
        ecr = session.client("ecr", region_name=region)  # type: ignore[attr-defined]
        if skip_missing and not _repository_exists(ecr, name):
            done.append(f"{stack}: {name} does not exist yet; pushed after its first apply")
            continue
        if _tag_exists(ecr, name, tag):
            done.append(f"{stack}: {repository}:{tag} is already there")
            continue
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        password = base64.b64decode(token).decode().split(":", 1)[1]
        run([tool, "login", "--username", "AWS", "--password-stdin", registry], input=password, text=True, check=True)
        for command in build_and_push(tool, f"{repository}:{tag}", str(ROOT / "processor")):
            run(command, check=True)
        done.append(f"{stack}: pushed {repository}:{tag}")
    return done


def _repository_exists(ecr: object, repository: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        ecr.describe_repositories(repositoryNames=[repository])  # type: ignore[attr-defined]
    except ClientError as error:
        if error.response["Error"]["Code"] == "RepositoryNotFoundException":
            return False
        raise
    return True


def _tag_exists(ecr: object, repository: str, tag: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])  # type: ignore[attr-defined]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ImageNotFoundException":
            return False
        raise
    return True


# -- migrate -------------------------------------------------------------------------------------------------------


def run_migration(ecs: object, values: Mapping[str, object], timeout_s: float = MIGRATION_TIMEOUT_S) -> str:
    """Run one stack's migrate task and wait for it; returns its task ARN, raises on failure."""
    answer = ecs.run_task(  # type: ignore[attr-defined]
        cluster=values["cluster_name"], taskDefinition=values["migrate_task_family"], launchType="FARGATE",
        count=1, startedBy="tools.release",
        networkConfiguration={"awsvpcConfiguration": {
            "subnets": list(values["private_subnet_ids"]),  # type: ignore[arg-type]
            "securityGroups": [values["processor_security_group_id"]], "assignPublicIp": "DISABLED"}},
    )
    if answer.get("failures") or not answer.get("tasks"):
        reasons = "; ".join(f"{f.get('arn', '')} {f.get('reason', '')}".strip() for f in answer.get("failures", []))
        raise ReleaseError(f"the migrate task did not start: {reasons or 'no task returned'}")
    task = answer["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(  # type: ignore[attr-defined]
        cluster=values["cluster_name"], tasks=[task],
        WaiterConfig={"Delay": 6, "MaxAttempts": max(1, int(timeout_s / 6))})
    stopped = ecs.describe_tasks(cluster=values["cluster_name"], tasks=[task])["tasks"][0]  # type: ignore[attr-defined]
    container = stopped["containers"][0]
    if container.get("exitCode") != 0:
        reason = container.get("reason") or stopped.get("stoppedReason") or "no reason given"
        raise ReleaseError(f"the migration exited {container.get('exitCode')}: {reason} "
                           f"(logs: stream prefix 'migrate' in the processor log group)")
    return task


def rollout(ecs: object, values: Mapping[str, object], timeout_s: float = 600) -> str:
    """Wait until the service is stable; restart a deployment that failed for want of its image."""
    from botocore.exceptions import WaiterError

    cluster, service = values["cluster_name"], values["service_name"]
    current = ecs.describe_services(cluster=cluster, services=[service])["services"][0]  # type: ignore[attr-defined]
    primary = next((d for d in current.get("deployments", []) if d.get("status") == "PRIMARY"), {})
    if primary.get("rolloutState") == "FAILED":
        ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)  # type: ignore[attr-defined]
    try:
        ecs.get_waiter("services_stable").wait(  # type: ignore[attr-defined]
            cluster=cluster, services=[service], WaiterConfig={"Delay": 15, "MaxAttempts": max(1, int(timeout_s / 15))})
    except WaiterError as error:
        raise ReleaseError(f"{service} is not stable after {timeout_s:.0f} s: {error}") from error
    return str(service)


# -- check-auth-tokens ---------------------------------------------------------------------------------------------


def check_auth_tokens(session: object, suffix: str, stacks: Sequence[str] = ()) -> list[str]:
    """A line per stack whose AUTH token secret ElastiCache would accept; ReleaseError naming the
    first secret it would refuse (a deploy with it fails half way, at the replication group)."""
    from botocore.exceptions import ClientError

    done = []
    for workload, region in WORKLOAD_REGIONS.items():
        if stacks and f"{workload}-{suffix}" not in stacks:
            continue
        name = redis_auth_secret_name(workload, suffix)
        client = session.client("secretsmanager", region_name=region)  # type: ignore[attr-defined]
        try:
            token = client.get_secret_value(SecretId=name).get("SecretString") or ""
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                raise ReleaseError(f"{name} ({region}) does not exist: create it before the first deploy "
                                   "(docs/aws.md)") from error
            raise
        problem = redis_auth_token_problem(token)
        if problem:
            raise ReleaseError(f"{name} ({region}): the Redis AUTH token {problem}. Put a new value, e.g. "
                               f"aws secretsmanager put-secret-value --region {region} --secret-id {name} "
                               '--secret-string "$(openssl rand -hex 32)"')
        done.append(f"{workload}-{suffix}: {name} holds a token ElastiCache accepts")
    return done


# -- check-subscriptions -------------------------------------------------------------------------------------------

PENDING = "PendingConfirmation"  # what SNS shows as the ARN of a subscription its owner has not confirmed


def pending_subscriptions(sns: object, topic_arn: str) -> list[str]:
    """`protocol:endpoint` of each subscription of the topic still waiting for confirmation."""
    pending, token = [], None
    while True:
        page = sns.list_subscriptions_by_topic(  # type: ignore[attr-defined]
            TopicArn=topic_arn, **({"NextToken": token} if token else {}))
        pending += [f"{s['Protocol']}:{s['Endpoint']}" for s in page.get("Subscriptions", [])
                    if s.get("SubscriptionArn") == PENDING]
        token = page.get("NextToken")
        if not token:
            return pending


def check_subscriptions(session: object, outputs: Mapping[str, Mapping[str, object]]) -> tuple[list[str], list[str]]:
    """(lines, warnings) about subscriptions nobody confirmed yet; ReleaseError if a production
    stack has one: its alarms or incidents would reach only an inbox that never said yes."""
    lines, warnings, failures = [], [], []
    for stack, values in outputs.items():
        sns = session.client("sns", region_name=str(values["stack_region"]))  # type: ignore[attr-defined]
        for output in ("alerts_topic_arn", "incident_topic_arn"):
            topic = values.get(output)
            if not topic:
                continue
            pending = pending_subscriptions(sns, str(topic))
            if not pending:
                lines.append(f"{stack}: every subscription of {str(topic).rsplit(':', 1)[-1]} is confirmed")
                continue
            text = (f"{stack}: {', '.join(pending)} on {str(topic).rsplit(':', 1)[-1]} not confirmed yet: the owner "
                    "must open the 'AWS Notification - Subscription Confirmation' email and confirm "
                    "(docs/configuration.md, 'Who the alarms reach')")
            (failures if stack.split("-", 1)[-1] in PRODUCTION_SUFFIXES else warnings).append(text)
    if failures:
        raise ReleaseError("; ".join(failures))
    return lines, warnings


# -- roll-tasks ----------------------------------------------------------------------------------------------------


def roll_tasks(ecs: object, values: Mapping[str, object], timeout_s: float = 600) -> str:
    """New tasks for the service (each reads the secrets at start), then wait until it is stable."""
    ecs.update_service(  # type: ignore[attr-defined]
        cluster=values["cluster_name"], service=values["service_name"], forceNewDeployment=True)
    return rollout(ecs, values, timeout_s)


# -- command line --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.release", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check-auth-tokens", "push-image", "migrate", "rollout",
                                            "check-subscriptions", "roll-tasks"])
    parser.add_argument("--outputs", type=Path, help="cdktf outputs file or terraform output -json (all but "
                                                        "check-auth-tokens)")
    parser.add_argument("--suffix", help="check-auth-tokens: the environment suffix")
    parser.add_argument("--stack", action="append", default=[], help="only this stack (repeatable)")
    parser.add_argument("--tag", help="push-image: the image tag (the commit SHA)")
    parser.add_argument("--skip-missing-repositories", action="store_true",
                        help="push-image: pass over stacks whose repository does not exist yet (before a first apply)")
    args = parser.parse_args(argv)
    try:
        import boto3

        session = boto3.session.Session()
        if args.command == "check-auth-tokens":
            if not args.suffix:
                raise ReleaseError("check-auth-tokens needs --suffix")
            for line in check_auth_tokens(session, args.suffix, args.stack):
                print(line)
            return 0
        if args.outputs is None:
            raise ReleaseError(f"{args.command} needs --outputs")
        outputs = read_outputs(args.outputs, args.stack)
        if args.command == "check-subscriptions":
            lines, warnings = check_subscriptions(session, outputs)
            for line in lines:
                print(line)
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr)
            return 0
        if args.command == "push-image":
            if not args.tag or args.tag == "latest":
                raise ReleaseError("push-image needs --tag: one per release, never 'latest' (immutable repositories)")
            tool = image_tool(lambda probe: subprocess.run(probe, capture_output=True).returncode == 0)
            for line in push_image(outputs, args.tag, session, tool, skip_missing=args.skip_missing_repositories):
                print(line)
            return 0
        for stack, values in outputs.items():
            ecs = session.client("ecs", region_name=str(values["stack_region"]))
            if args.command == "migrate":
                print(f"{stack}: migrated ({run_migration(ecs, values)})")
            elif args.command == "roll-tasks":
                print(f"{stack}: {roll_tasks(ecs, values)} runs new tasks")
            else:
                print(f"{stack}: {rollout(ecs, values)} is stable")
        return 0
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
