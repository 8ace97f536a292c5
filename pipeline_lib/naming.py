"""Physical names: every one carries the workload and the environment suffix."""
from __future__ import annotations

import re
from dataclasses import dataclass

from policy.conventions import VENDED_LOGS_PREFIX

# The suffix ends up in S3 bucket names (lowercase, no underscores), RDS identifiers
# and ElastiCache replication group ids (letters, digits, single hyphens, at most 40
# characters for the whole id), IAM role names (at most 64). Twelve characters keep the
# longest name we build ("factory-processor-exec-<suffix>", 35 + 12) inside every limit.
SUFFIX_PATTERN = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-)){0,10}[a-z0-9]$")
MAX_SUFFIX_LENGTH = 12


class InvalidSuffixError(ValueError):
    """The environment suffix cannot be part of an AWS resource name."""


def validate_suffix(suffix: str) -> str:
    if not isinstance(suffix, str) or not SUFFIX_PATTERN.match(suffix):
        raise InvalidSuffixError(
            f"environment suffix {suffix!r} is not a valid name fragment: use 2-{MAX_SUFFIX_LENGTH} "
            "lowercase letters, digits or single hyphens, starting with a letter and not ending "
            "with a hyphen (e.g. 'dev', 'pr-142', 'prod')"
        )
    return suffix


@dataclass(frozen=True)
class Naming:
    """Builds `<workload>-<purpose>-<suffix>` names, the contract two suffixes rely on."""

    workload: str
    suffix: str

    def __post_init__(self) -> None:
        validate_suffix(self.suffix)

    def name(self, purpose: str) -> str:
        return f"{self.workload}-{purpose}-{self.suffix}"

    def prefix(self, purpose: str) -> str:
        """A `name_prefix` (`<workload>-<purpose>-<suffix>-`): AWS appends a unique tail, so a
        replacement can be created beside the resource it replaces."""
        return f"{self.name(purpose)}-"

    def per_creation(self, purpose: str) -> str:
        """A name unique to one creation of the resource that holds it (`<workload>-<purpose>-
        <suffix>-<UTC time of the apply that created it>`): for what outlives its resource, such
        as a final snapshot, which a re-created resource would otherwise collide with. The
        holder must ignore later changes to it (`lifecycle.ignore_changes`), or every plan
        would show a new time."""
        from cdktf import Fn

        return f"{self.name(purpose)}-{Fn.formatdate('YYYYMMDDhhmmss', Fn.timestamp())}"

    def path(self, purpose: str) -> str:
        """Log group style: `/<workload>/<suffix>/<purpose>`."""
        return f"/{self.workload}/{self.suffix}/{purpose}"

    def vended_log_path(self, purpose: str) -> str:
        """A log group an AWS service delivers to (ElastiCache logs): under
        `/aws/vendedlogs/`, AWS's convention (policy/conventions.py says why)."""
        return f"{VENDED_LOGS_PREFIX}{self.workload}/{self.suffix}/{purpose}"
