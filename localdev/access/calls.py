"""What one emulator request asks IAM for, read from the request and moto's backends.

`questions(call)` is the list of authorization questions AWS would ask for it: first the
call itself (action, the resource ARN its parameters name, the context keys), then each
use of a KMS key the service makes on the caller's behalf (a read from an encrypted
stream is also a `kms:Decrypt` by the caller through Kinesis, a publish to an encrypted
topic a `kms:GenerateDataKey` and a `kms:Decrypt` through SNS). Each question carries
the policies that decide it: the caller's identity policies plus the resource's own
policy or the key policy.

A call whose resource this module cannot name is a question with resource "" and is
denied, naming the gap, rather than waved through: teach `RESOURCES` the service.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localdev.access.policy import Policy, Request

# Calls AWS authorizes for anyone holding credentials.
ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})
AWS_MANAGED_SECRETS_KEY = "alias/aws/secretsmanager"


@dataclass(frozen=True)
class Call:
    """One emulator request: who, what, where, and its parameters (`param(name)`)."""

    principal: str  # the role ARN
    service: str  # the IAM prefix: kinesis, sns, secretsmanager, kms, ...
    operation: str  # GetRecords
    region: str
    account: str
    param: Callable[[str], Any]

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass(frozen=True)
class Question:
    request: Request
    resource_policy: Policy | None = None
    key_policy: Policy | None = None
    on_behalf_of: str = ""  # the call a key use is made for, e.g. "kinesis:GetRecords"


def context_for(call: Call, **extra: str) -> dict[str, str]:
    """The global condition keys AWS sets on every request of a role, and the service's own."""
    return {"aws:PrincipalArn": call.principal, "aws:PrincipalAccount": call.account,
            "aws:RequestedRegion": call.region, **extra}


def arn(call: Call, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{call.region}:{call.account}:{resource}"


# -- per service: what a call names ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    resource: str  # the ARN; "" when the call does not say
    policy: str | None = None  # the resource's own policy (JSON), if it has one
    key: str | None = None  # the KMS key the service uses for this call, if any
    context: Mapping[str, str] = field(default_factory=dict)  # the service's own condition keys


def _kinesis(call: Call) -> Target:
    from moto.kinesis.models import kinesis_backends
    from moto.kinesis.utils import decompose_shard_iterator

    backend = kinesis_backends[call.account][call.region]
    name, stream_arn = call.param("StreamName"), call.param("StreamARN")
    if not (name or stream_arn) and call.param("ShardIterator"):
        try:
            name = decompose_shard_iterator(call.param("ShardIterator"))[0]
        except (ValueError, IndexError, UnicodeDecodeError):
            name = None
    if not (name or stream_arn):
        return Target("")
    stream = backend.streams.get(name) if name else next(
        (s for s in backend.streams.values() if s.arn == stream_arn), None)
    resource = stream.arn if stream else (stream_arn or arn(call, "kinesis", f"stream/{name}"))
    key = stream.key_id if stream is not None and stream.encryption_type == "KMS" else None
    return Target(resource, key=key)


def _secretsmanager(call: Call) -> Target:
    from moto.secretsmanager.models import secretsmanager_backends

    secret_id = call.param("SecretId")
    if not secret_id:
        return Target("")
    backend = secretsmanager_backends[call.account][call.region]
    if secret_id not in backend.secrets:
        return Target(secret_id if secret_id.startswith("arn:") else arn(call, "secretsmanager", f"secret:{secret_id}"))
    secret = backend.secrets[secret_id]
    key = secret.kms_key_id if secret.kms_key_id not in (None, "", AWS_MANAGED_SECRETS_KEY) else None
    return Target(secret.arn, secret.policy, key)


def _sns(call: Call) -> Target:
    from moto.sns.models import sns_backends

    topic_arn = call.param("TopicArn") or call.param("TargetArn")
    if not topic_arn:
        return Target("")
    topic = sns_backends[call.account][call.region].topics.get(topic_arn)
    if topic is None:
        return Target(topic_arn)
    return Target(topic_arn, topic.policy, topic.kms_master_key_id or None)


def _kms(call: Call) -> Target:
    """A direct use of a key (ECS Exec's session key is one): KMS's own condition keys, the
    caller's account and each pair of the request's encryption context."""
    key = call.param("KeyId")
    context = {"kms:CallerAccount": call.account}
    encryption_context = call.param("EncryptionContext")
    if isinstance(encryption_context, dict):
        context |= {f"kms:EncryptionContext:{k}": str(v) for k, v in encryption_context.items()}
    return Target(key_arn(call, key) if key else "", context=context)


def _s3(call: Call) -> Target:
    """Object calls (Firehose's writes, made in-process: moto's S3 has its own request path)."""
    from moto.s3.models import s3_backends

    bucket, key = call.param("Bucket"), call.param("Key")
    if not bucket:
        return Target("")
    found = s3_backends[call.account]["aws"].buckets.get(bucket)
    policy = found.policy if found is not None else None
    encryption, kms_key = call.param("ServerSideEncryption"), call.param("SSEKMSKeyId")
    context = {"s3:x-amz-server-side-encryption": encryption} if encryption else {}
    if kms_key:
        context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = kms_key
    return Target(f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else ""),
                  policy.decode() if isinstance(policy, bytes) else policy, kms_key, context)


def _logs(call: Call) -> Target:
    """A log group's calls (IoT's error action writes as its role): the group, or the stream written to."""
    group, stream = call.param("logGroupName"), call.param("logStreamName")
    if not group:
        return Target("")
    resource = arn(call, "logs", f"log-group:{group}")
    return Target(f"{resource}:log-stream:{stream}" if call.operation == "PutLogEvents" and stream else resource)


RESOURCES: dict[str, Callable[[Call], Target]] = {
    "kinesis": _kinesis, "secretsmanager": _secretsmanager, "sns": _sns, "kms": _kms, "s3": _s3, "logs": _logs,
}
# The key use a service makes for the caller, per call (AWS's documented permissions for
# reading an encrypted stream, reading a CMK-encrypted secret, publishing to an encrypted topic).
KEY_USES: dict[str, tuple[str, ...]] = {
    "kinesis:GetRecords": ("kms:Decrypt",),
    "kinesis:PutRecord": ("kms:GenerateDataKey",),
    "kinesis:PutRecords": ("kms:GenerateDataKey",),
    "secretsmanager:GetSecretValue": ("kms:Decrypt",),
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
    "s3:PutObject": ("kms:GenerateDataKey",),
}


def key_arn(call: Call, key: str) -> str:
    """A key id, alias or ARN as the key's ARN (the alias's target), or the alias ARN if unknown."""
    from moto.kms.models import kms_backends

    backend = kms_backends[call.account][call.region]
    try:
        return backend.describe_key(backend.any_id_to_key_id(key)).arn
    except Exception:
        return key if key.startswith("arn:") else arn(call, "kms", key if key.startswith("alias/") else f"key/{key}")


def key_policy(call: Call, key: str) -> Policy | None:
    from moto.kms.models import kms_backends

    backend = kms_backends[call.account][call.region]
    try:
        found = backend.describe_key(backend.any_id_to_key_id(key))
    except Exception:
        return None
    return Policy.parse(f"key policy of {found.arn}", found.policy)


def identity_policies(call: Call) -> list[Policy]:
    """The role's inline and attached managed policies, as the emulator holds them now."""
    from moto.iam.models import iam_backends

    backend = iam_backends[call.account]["aws"]
    role = backend.get_role(call.principal.rsplit("/", 1)[-1])
    found = [Policy.parse(f"inline policy {name} of {role.name}", document)
             for name, document in sorted(role.policies.items())]
    for policy_arn, managed in sorted(role.managed_policies.items()):
        found.append(Policy.parse(f"managed policy {policy_arn}", managed.document))
    return found


def questions(call: Call) -> list[Question]:
    """The authorization questions AWS asks for `call`, the call's own first."""
    resolve = RESOURCES.get(call.service)
    if call.action in ALWAYS_ALLOWED:
        return []
    if resolve is None:
        return [Question(Request(call.principal, call.action, "", context_for(call)))]
    target = resolve(call)
    resource = target.resource
    own = Question(Request(call.principal, call.action, resource, context_for(call, **target.context)),
                   resource_policy=Policy.parse(f"resource policy of {resource}", target.policy)
                   if target.policy else None,
                   key_policy=key_policy(call, resource) if call.service == "kms" and resource else None)
    found = [own]
    if target.key and resource:
        via = f"{call.service}.{call.region}.amazonaws.com"
        key, policy = key_arn(call, target.key), key_policy(call, target.key)
        for action in KEY_USES.get(call.action, ()):
            context = context_for(call, **{"kms:ViaService": via, "kms:CallerAccount": call.account})
            found.append(Question(Request(call.principal, action, key, context), key_policy=policy,
                                  on_behalf_of=call.action))
    return found
