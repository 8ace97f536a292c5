"""Who and where the stack deploys: account id, partition and region as tokens."""
from __future__ import annotations

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from constructs import Construct


class AccountContext(Construct):
    """Resolves the deploying account; constructs build ARNs from it."""

    def __init__(self, scope: Construct, id_: str, *, region: str) -> None:
        super().__init__(scope, id_)
        self.region = region
        self._caller = DataAwsCallerIdentity(self, "caller")
        self._partition = DataAwsPartition(self, "partition")

    @property
    def account_id(self) -> str:
        return self._caller.account_id

    @property
    def partition(self) -> str:
        return self._partition.partition

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def service_host(self, service: str) -> str:
        return f"{service}.{self.region}.amazonaws.com"
