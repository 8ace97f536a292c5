"""The workload's customer managed KMS key: every data store and log group uses it."""
from __future__ import annotations

from typing import Any

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.account import AccountContext
from pipeline_lib.naming import Naming
from policy.resource_types import via_services

# What administering the key takes (Terraform reads, tags, rotates, re-aliases, re-writes the
# policy, schedules deletion), and nothing that encrypts or decrypts: no Encrypt, Decrypt,
# GenerateDataKey or ReEncrypt, and no CreateGrant (a grant is a way to use the key).
ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey", "kms:DisableKey",
    "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation", "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus", "kms:ListAliases", "kms:ListGrants", "kms:ListKeyPolicies",
    "kms:ListKeyRotations", "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:RevokeGrant", "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
)


# A Session Manager session key (ECS Exec) is made and read with this encryption context: the
# operator's client calls GenerateDataKey, the task's agent Decrypt, both naming the session
# (aws/session-manager-plugin, its data channel's KMS handshake).
SSM_SESSION_CONTEXT = {"Null": {"kms:EncryptionContext:aws:ssm:SessionId": "false"}}


class EncryptionKey(Construct):
    """KMS CMK with yearly rotation, a key policy naming exactly the services that use it."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        naming: Naming,
        account: AccountContext,
        deletion_window_in_days: int = 7,
    ) -> None:
        super().__init__(scope, id_)
        if not 7 <= deletion_window_in_days <= 30:
            raise ValueError("KMS deletion window must be between 7 and 30 days")
        root = f"arn:{account.partition}:iam::{account.account_id}:root"
        # Services that encrypt on the caller's behalf (kms:ViaService) and may hold grants.
        via = [account.service_host(service) for service in via_services()]
        crypto = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        # Administration and use are apart. The account (its IAM policies decide who) may
        # administer the key; using it goes through a named service for this account, or a
        # service principal scoped to this account's resources, or a direct grant the key
        # names (`allow_direct_use`). Nobody decrypts the archive, backups or logs with it
        # directly: that would need a Decrypt this policy does not give.
        self._statements: list[dict[str, Any]] = [
            {
                "Sid": "AccountAdministersTheKey",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": list(ADMIN_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "AccountPrincipalsUseTheKeyThroughServices",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": crypto,
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": via, "kms:CallerAccount": account.account_id}},
            },
            {
                "Sid": "ServicesHoldGrantsForTheirResources",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:ViaService": via, "kms:CallerAccount": account.account_id},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            },
            {
                "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": account.service_host("logs")},
                "Action": crypto,
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": account.arn("logs", "log-group:*"),
                    }
                },
            },
            {
                "Sid": "CloudWatchAlarmsPublishToTheEncryptedTopic",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account.account_id}},
            },
        ]
        self.key = KmsKey(
            self,
            "key",
            description=f"Encrypts the {naming.workload} pipeline's data at rest ({naming.suffix})",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=deletion_window_in_days,
            policy=iam.document(*self._statements),
        )
        self._account = account
        self.alias = KmsAlias(self, "alias", name=f"alias/{naming.name('data')}", target_key_id=self.key.key_id)

    @property
    def arn(self) -> str:
        return self.key.arn

    def allow_direct_use(self, sid: str, principal_arns: str | list[str], actions: list[str],
                         condition: dict[str, Any] | None = None) -> None:
        """Let named principals call KMS with this key themselves, not through a service (ECS
        Exec: the operator's client makes the session key, the task's agent decrypts it)."""
        statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principal_arns},
                                     "Action": sorted(actions), "Resource": "*"}
        if condition:
            statement["Condition"] = condition
        self._statements.append(statement)
        self.key.policy = iam.document(*self._statements)

    def role_arn(self, name: str) -> str:
        """The ARN of a role of this stack's account, by name."""
        return f"arn:{self._account.partition}:iam::{self._account.account_id}:role/{name}"

    def via(self, service: str) -> str:
        """The `kms:ViaService` value for `service` in this key's region."""
        return self._account.service_host(service)
