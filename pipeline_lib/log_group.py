"""CloudWatch log groups: always encrypted with the workload key, always with retention."""
from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from constructs import Construct

from pipeline_lib.encryption_key import EncryptionKey

# Retention values CloudWatch Logs accepts.
VALID_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)


class EncryptedLogGroup(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, name: str, key: EncryptionKey, retention_in_days: int
    ) -> None:
        super().__init__(scope, id_)
        if retention_in_days not in VALID_RETENTION_DAYS:
            raise ValueError(f"log retention {retention_in_days} d is not a value CloudWatch accepts")
        self.log_group = CloudwatchLogGroup(
            self, "group", name=name, kms_key_id=key.arn, retention_in_days=retention_in_days
        )

    @property
    def name(self) -> str:
        return self.log_group.name

    @property
    def arn(self) -> str:
        return self.log_group.arn
