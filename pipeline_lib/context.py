"""What every construct of one stack shares, handed over as one object."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline_lib.account import AccountContext
from pipeline_lib.encryption_key import EncryptionKey
from pipeline_lib.naming import Naming


@dataclass(frozen=True)
class StackContext:
    naming: Naming  # the workload and suffix every physical name carries
    account: AccountContext  # account, partition and region, as tokens
    key: EncryptionKey  # the stack's key: every data store and log group uses it
    log_retention_days: int  # every log group's retention but the processor's (ServiceConfig)
