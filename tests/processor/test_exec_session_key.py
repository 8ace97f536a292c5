"""ECS Exec's session key through the emulator's request path: the retail dev stack of ECS_EXEC=on's
key policy and operator policy, in moto, with the local access evaluator deciding each call
(localdev/access/, as `make demo` runs it). The operator the config names makes the key as the
session-manager-plugin does; another role of the account, allowed kms:* by its own policy, is refused."""
from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import pytest
from botocore.exceptions import ClientError

from localdev.servers import MotoServer
from policy.stack_json import StackJson
from stacks.config import DEFAULT_EXEC_OPERATOR_ROLES
from tests.helpers import by_path, only
from tests.localdev.test_exec_access import ACCOUNT, SESSION, bound

REGION = "us-east-1"  # the retail stack's: its key policy names its services there
CONTEXT = {k.removeprefix("kms:EncryptionContext:"): v for k, v in SESSION.items() if k.startswith("kms:EncryptionContext:")}


@pytest.fixture()
def session_of(exec_stacks: dict[str, StackJson], moto: MotoServer) -> Callable[[str, str], tuple[object, str]]:
    """A KMS client of a session of `role` (created with `policy`), and the key made from the stack's key policy."""
    stack = exec_stacks["retail-dev"]
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto.url)
    for role in (*DEFAULT_EXEC_OPERATOR_ROLES, "developer"):  # KMS wants a key policy's principals to exist
        try:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
        except ClientError:
            pass  # made by an earlier test of this session
    kms = boto3.client("kms", region_name=REGION, endpoint_url=moto.url)
    key = kms.create_key(Policy="{}")["KeyMetadata"]["Arn"]
    policy = bound(stack, only(stack, "aws_kms_key").config["policy"]).replace(
        json.dumps("arn:aws:kms:us-east-1:123456789012:key/0b3f6a2e-1111-2222-3333-444455556666")[1:-1], key)
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)

    def session(role: str, identity: str) -> tuple[object, str]:
        iam.put_role_policy(RoleName=role, PolicyName="own", PolicyDocument=identity.replace(
            "arn:aws:kms:us-east-1:123456789012:key/0b3f6a2e-1111-2222-3333-444455556666", key))
        keys = boto3.client("sts", region_name=REGION, endpoint_url=moto.url).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="operator")["Credentials"]
        client = boto3.client("kms", region_name=REGION, endpoint_url=moto.url, aws_access_key_id=keys["AccessKeyId"],
                              aws_secret_access_key=keys["SecretAccessKey"], aws_session_token=keys["SessionToken"])
        return client, key
    return session


def test_the_named_operator_makes_a_session_key_through_the_emulator(session_of: Callable, exec_stacks: dict) -> None:
    stack = exec_stacks["retail-dev"]
    operators = bound(stack, by_path(stack, "aws_iam_policy", "processor/exec-operators").config["policy"])
    client, key = session_of(DEFAULT_EXEC_OPERATOR_ROLES[0], operators)
    made = client.generate_data_key(KeyId=key, NumberOfBytes=64, EncryptionContext=CONTEXT)
    assert len(made["Plaintext"]) == 64


def test_a_role_the_config_does_not_name_is_refused_even_with_kms_star(session_of: Callable) -> None:
    everything = json.dumps({"Version": "2012-10-17",
                             "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})
    client, key = session_of("developer", everything)
    with pytest.raises(ClientError) as refused:
        client.generate_data_key(KeyId=key, NumberOfBytes=64, EncryptionContext=CONTEXT)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "the key policy does not allow it for this principal" in refused.value.response["Error"]["Message"]
