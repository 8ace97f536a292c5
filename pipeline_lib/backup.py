"""AWS Backup for the database: daily recovery points, kept as long as the compliance archive
keeps records (a destroyable dev keeps them a week), in a vault locked in production."""
from __future__ import annotations

from cdktf_cdktf_provider_aws.backup_plan import BackupPlan, BackupPlanRule, BackupPlanRuleLifecycle
from cdktf_cdktf_provider_aws.backup_selection import BackupSelection
from cdktf_cdktf_provider_aws.backup_vault import BackupVault
from cdktf_cdktf_provider_aws.backup_vault_lock_configuration import BackupVaultLockConfiguration
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from pipeline_lib import iam
from pipeline_lib.context import StackContext
from pipeline_lib.database import Database
from pipeline_lib.settings import ArchiveConfig

BACKUP_MANAGED_POLICIES = ("AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores")
VAULT_LOCK_GRACE_DAYS = 3  # the shortest AWS allows: three days to undo a lock set by mistake


class DatabaseBackup(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        context: StackContext,
        database: Database,
        settings: ArchiveConfig,
    ) -> None:
        super().__init__(scope, id_)
        naming, account, key = context.naming, context.account, context.key
        delete_after_days = settings.backup_days
        self.vault = BackupVault(
            self, "vault", name=naming.name("backups"), kms_key_arn=key.arn, force_destroy=settings.force_destroy
        )
        if settings.backup_vault_lock:
            # Compliance mode once the grace period is over: no recovery point can be deleted
            # before its retention ends, and the lock itself cannot be removed.
            BackupVaultLockConfiguration(
                self, "vault-lock", backup_vault_name=self.vault.name, min_retention_days=delete_after_days,
                max_retention_days=delete_after_days, changeable_for_days=VAULT_LOCK_GRACE_DAYS,
            )
        self.plan = BackupPlan(
            self,
            "plan",
            name=naming.name("db-daily"),
            rule=[
                BackupPlanRule(
                    rule_name="daily",
                    target_vault_name=self.vault.name,
                    schedule="cron(0 3 * * ? *)",
                    start_window=60,
                    completion_window=180,
                    lifecycle=BackupPlanRuleLifecycle(delete_after=delete_after_days),
                    recovery_point_tags={"Workload": naming.workload, "Environment": naming.suffix},
                )
            ],
        )
        role = IamRole(
            self, "role", name=naming.name("backup"),
            assume_role_policy=iam.assume_role_policy("backup.amazonaws.com", account_id=account.account_id),
        )
        for policy in BACKUP_MANAGED_POLICIES:
            IamRolePolicyAttachment(
                self, policy, role=role.name,
                policy_arn=f"arn:{account.partition}:iam::aws:policy/service-role/{policy}",
            )
        BackupSelection(
            self, "selection", name=naming.name("db"), plan_id=self.plan.id, iam_role_arn=role.arn,
            resources=[database.instance.arn],
        )
