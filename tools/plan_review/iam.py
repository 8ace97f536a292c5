"""Policy documents compared grant by grant: what a change adds.

A grant is one (effect Allow, action, resource or principal, condition) tuple; a statement
with two actions and three resources is six grants. What the new document allows that the
old one did not is the set difference. Dropping a condition shows up as a grant gained
(the same action and resource, now without the condition).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from policy.conventions import UNSCOPABLE_ACTIONS
from policy.iam_patterns import action_covers, covers, wide_action, wide_resource

# Where a resource type keeps a policy document, and whether it is a resource policy
# (in a key or bucket policy, "Resource": "*" means the key or bucket itself).
POLICY_ATTRIBUTES: dict[str, tuple[str, bool]] = {
    "aws_iam_role_policy": ("policy", False),
    "aws_iam_policy": ("policy", False),
    "aws_iam_user_policy": ("policy", False),
    "aws_iam_group_policy": ("policy", False),
    "aws_iam_role": ("assume_role_policy", True),
    "aws_kms_key": ("policy", True),
    "aws_s3_bucket_policy": ("policy", True),
    "aws_sns_topic_policy": ("policy", True),
    "aws_sqs_queue_policy": ("policy", True),
    "aws_ecr_repository_policy": ("policy", True),
    "aws_secretsmanager_secret_policy": ("policy", True),
    "aws_kinesis_resource_policy": ("policy", True),
    "aws_sns_topic": ("policy", True),
    "aws_sqs_queue": ("policy", True),
    "aws_secretsmanager_secret": ("policy", True),
}
# Of those, the ones whose policy may be left unset (AWS fills in a default): unknown on every create.
OPTIONAL_POLICIES = frozenset({"aws_sns_topic", "aws_sqs_queue", "aws_secretsmanager_secret"})
# AWS-managed policies as wide as they read: administrator, power user, and every `...FullAccess`
# (AmazonS3FullAccess is `s3:*` on `*`, the same grant written inline is a wildcard too).
BROAD_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
AWS_MANAGED_POLICY = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?([^/]+)$")


def broad_managed_policy(arn: str) -> bool:
    """An AWS-managed policy with administrator or full-access scope."""
    match = AWS_MANAGED_POLICY.match(arn)
    if not match:
        return False
    name = match.group(1)
    return name in BROAD_MANAGED_POLICIES or name.endswith("FullAccess") or name.endswith("AdministratorAccess")


ACCOUNT_ROOT = re.compile(r"^(?:arn:aws[a-z-]*:iam::(\d{12}):root|(\d{12}))$")  # an ARN or a bare id


def _principal(principal: str) -> Any:
    try:
        return json.loads(principal) if principal else None
    except json.JSONDecodeError:
        return principal


def anyone(principal: str) -> bool:
    """`"*"`, or `*` among the principals of any kind: `{"AWS": "*"}`, `{"AWS": ["arn:...", "*"]}`."""
    value = _principal(principal)
    for block in value if isinstance(value, list) else [value]:
        values = block.values() if isinstance(block, dict) else [block]
        if any(v == "*" or (isinstance(v, list) and "*" in v) for v in values):
            return True
    return False


def root_account(principal: str) -> str | None:
    """The account whose root is the statement's only principal (`{"AWS": "arn:aws:iam::ID:root"}`, a bare id,
    either in a one-item list), else None."""
    value = _principal(principal)
    if not isinstance(value, dict) or list(value) != ["AWS"]:
        return None
    aws = value["AWS"]
    if isinstance(aws, list) and len(aws) == 1:
        aws = aws[0]
    match = ACCOUNT_ROOT.match(aws) if isinstance(aws, str) else None
    return (match.group(1) or match.group(2)) if match else None


@dataclass(frozen=True, order=True)
class Grant:
    action: str
    resource: str
    principal: str  # JSON of the statement's Principal in a trust or resource policy, "" in an identity policy
    condition: str  # JSON, "" when none

    def wildcard(self, resource_policy: bool, own_accounts: frozenset[str] = frozenset()) -> bool:
        """Anyone, every action or every one of a verb (`*`, `NotAction`, `*:*`, `s3:*`, `s3:Get*`,
        `iam:Pass*`: `iam_patterns.wide_action`), or every resource where a scope exists (`*`,
        `arn:aws:s3:::*`, `arn:aws:kinesis:*:*:stream/*`: `iam_patterns.wide_resource`).

        Two things are not wildcards here: a wide resource in a resource policy (there "*" means the
        key or bucket itself, and the policy reaches nothing else), and `kms:*` (or any narrower KMS
        pattern) for the root of the key's **own** account in a key policy (the statement that hands the
        key's access control to IAM, in every key policy). Another account's root, or a root whose account
        the plan does not show, gets no such exemption: it is the whole key handed to someone else.
        """
        if anyone(self.principal):
            return True
        if wide_action(self.action):
            return not (self.action.lower().startswith("kms:") and root_account(self.principal) in own_accounts)
        return not resource_policy and self.action not in UNSCOPABLE_ACTIONS and wide_resource(self.resource)

    def covers(self, other: Grant) -> bool:
        """True when this grant allows everything `other` does: the same principal, an action and resource
        pattern matching all `other`'s do (`s3:*` covers `s3:Get*`, `s3:Get*` covers `s3:GetObject`), and no
        condition or the same one."""
        return self.principal == other.principal and self.condition in ("", other.condition) and \
            action_covers(self.action, other.action) and covers(self.resource, other.resource)


def gained(after: set[Grant], before: set[Grant]) -> set[Grant]:
    """The grants of `after` that no grant of `before` covers: what a change adds. A pattern rewritten
    narrower (`s3:Get*` to `s3:GetObject`) adds nothing; one rewritten wider (`s3:GetObject` to `s3:Get*`) does."""
    return {grant for grant in after if not any(old.covers(grant) for old in before)}


class PolicyParseError(ValueError):
    pass


def grants(document: Any, effect: str = "Allow") -> set[Grant]:
    """Every Allow grant of a policy document (a JSON string or a parsed dict); with
    `effect="Deny"`, every Deny instead (what it refuses, in the same terms)."""
    if document in (None, ""):
        return set()
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as error:
            raise PolicyParseError(f"policy is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise PolicyParseError("policy is not a JSON object")
    statements = document.get("Statement", [])
    found: set[Grant] = set()
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != effect:
            continue
        if "NotAction" in statement:  # everything but a list: as wide as a wildcard
            actions = ["* except " + ", ".join(_list(statement["NotAction"]))]
        else:
            actions = _list(statement.get("Action"))
        principal = json.dumps(statement["Principal"], sort_keys=True) if "Principal" in statement else ""
        resources = ["*"] if "NotResource" in statement else _list(statement.get("Resource")) or ["" if principal else "*"]
        if "NotPrincipal" in statement:  # everyone but a list
            principal = '"*"'
        condition = json.dumps(statement["Condition"], sort_keys=True) if statement.get("Condition") else ""
        for action in actions:
            for resource in resources:
                found.add(Grant(action, resource, principal, condition))
    return found


LATER = "(known after apply)"


def document_grants(after: Any) -> set[Grant]:
    """The Allow grants an `aws_iam_policy_document` data source read only at apply already shows: its
    `statement` blocks keep what the configuration wrote as constants; a value still unknown (an ARN of a
    resource not yet created) reads as "(known after apply)", which is never a wildcard."""
    found: set[Grant] = set()
    for statement in (after or {}).get("statement") or [] if isinstance(after, dict) else []:
        if not isinstance(statement, dict) or (statement.get("effect") or "Allow") != "Allow":
            continue
        not_actions = _known(statement.get("not_actions"))
        actions = ["* except " + ", ".join(not_actions)] if not_actions else _known(statement.get("actions"))
        resources = ["*"] if _known(statement.get("not_resources")) else _known(statement.get("resources")) or ["*"]
        principals = [{"AWS" if p.get("type") == "AWS" else str(p.get("type")): sorted(
            i if isinstance(i, str) else LATER for i in p.get("identifiers") or [])}
            for p in statement.get("principals") or [] if isinstance(p, dict)]
        principal = json.dumps(principals[0] if len(principals) == 1 else principals, sort_keys=True) \
            if principals else ""
        if statement.get("not_principals"):
            principal = '"*"'
        for action in actions:
            for resource in resources:
                found.add(Grant(action, "" if principal and resource == "*" else resource, principal, ""))
    return found


def _known(values: Any) -> list[str]:
    return [v if isinstance(v, str) else LATER for v in values] if isinstance(values, list) else []


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def summarize(added: set[Grant], limit: int = 6) -> str:
    """`actions a, b on x, y` in a line, with the condition noted when the new grant lacks one."""
    actions = sorted({g.action for g in added})
    resources = sorted({g.resource for g in added if g.resource})
    principals = sorted({g.principal for g in added if g.principal})

    def listing(items: list[str]) -> str:
        shown = ", ".join(f"`{i}`" for i in items[:limit])
        return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")

    text = listing(actions) + (f" on {listing(resources)}" if resources else "")
    return text + (f" to {listing(principals)}" if principals else "")
