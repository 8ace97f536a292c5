"""IAM: the AWS managed policies the stacks attach."""
from __future__ import annotations

import os

from localdev.moto_extensions.registry import extension


@extension
def aws_managed_policies() -> None:
    """The stacks attach AWS managed policies (AWS Backup's service role policies, RDS
    enhanced monitoring). moto knows them but loads them only when asked."""
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
