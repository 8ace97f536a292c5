"""The access log of a local run, read back: what was refused, and what was granted but never used.

Each line of the log is one decision of the emulator (localdev/moto_extensions/access.py).
`refusals(entries)` fails a run: a refused call is a permission the deployed role lacks
(or a resource it names wrongly), and on AWS the task would fail the same way.
`unused_grants(...)` is the least-privilege half: each action a role's policies grant, on
each resource, that no call of the run needed. Some grants cannot be used by a local run
at all; those are listed apart, with the reason, rather than as unused.
"""
from __future__ import annotations

import fnmatch
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from localdev.access.policy import Policy, action_matches, as_list, resource_matches

# What a local run cannot exercise: (role name pattern, an action prefix ("ecr:") or the actions,
# the kms:ViaService service the grant is for or "", why).
NOT_EXERCISED_LOCALLY = (
    ("*", "rds-db:connect", "", "the local PostgreSQL cannot check an IAM token (only RDS can); "
                                "the token is made as on AWS"),
    ("*", "ecr:", "", "the processor runs from source here; no image is pulled"),
    ("*", "kms:", "ecr", "no image is pulled, so no image layer is decrypted through ECR"),
    ("*", "logs:", "", "container output goes to .local/logs/, not through the awslogs driver"),
    ("*", "ssmmessages:", "", "ECS Exec has no local counterpart"),
    ("*-firehose-*", ("s3:AbortMultipartUpload", "s3:ListBucketMultipartUploads"), "",
     "multipart uploads: the local delivery writes each object whole"),
    ("*-firehose-*", ("s3:GetBucketLocation", "s3:ListBucket", "s3:GetObject"), "",
     "Firehose's own checks of its destination bucket, which the local delivery does not make"),
)


@dataclass(frozen=True)
class Entry:
    principal: str
    action: str
    resource: str
    allowed: bool
    reason: str
    on_behalf_of: str = ""

    @property
    def role(self) -> str:
        return self.principal.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Grant:
    role: str
    action: str
    resource: str
    statement: str  # Sid
    via: tuple[str, ...] = ()  # the kms:ViaService values the statement requires, if any


def read(path: Path, offset: int = 0) -> list[Entry]:
    """The decisions logged from byte `offset` on (a run's own: the log's size when it started)."""
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as log:
        log.seek(offset)
        lines = log.read().splitlines()
    entries = []
    for line in lines:
        item = json.loads(line)
        entries.append(Entry(item["principal"], item["action"], item["resource"], bool(item["allowed"]),
                             item["reason"], item.get("on_behalf_of", "")))
    return entries


def refusals(entries: Iterable[Entry]) -> list[str]:
    """One line per distinct refused request: role, action, resource and AWS's reason."""
    seen: dict[tuple[str, str, str], str] = {}
    for entry in entries:
        if not entry.allowed:
            through = f" (for {entry.on_behalf_of})" if entry.on_behalf_of else ""
            seen.setdefault((entry.role, entry.action, entry.resource),
                            f"{entry.role}: {entry.action} on {entry.resource or '?'}{through} denied: {entry.reason}")
    return list(seen.values())


def grants(role: str, policies: Sequence[Policy]) -> list[Grant]:
    """Every (action, resource) an identity policy of `role` allows, statement by statement."""
    found = []
    for policy in policies:
        for statement in policy.statements():
            if statement.get("Effect") != "Allow":
                continue
            via = tuple(as_list((statement.get("Condition") or {}).get("StringEquals", {}).get("kms:ViaService")))
            for action in as_list(statement.get("Action")):
                for resource in as_list(statement.get("Resource")):
                    found.append(Grant(role, action, resource, str(statement.get("Sid") or ""), via))
    return found


def not_exercisable(grant: Grant) -> str:
    """Why a local run cannot use `grant`, or ""."""
    for role, action, via, reason in NOT_EXERCISED_LOCALLY:
        if not fnmatch.fnmatchcase(grant.role, role):
            continue
        if isinstance(action, tuple):
            if grant.action not in action:
                continue
        elif not (grant.action == action or (action.endswith(":") and grant.action.startswith(action))):
            continue
        if via and not (grant.via and all(v.split(".")[0] == via for v in grant.via)):
            continue
        return reason
    return ""


def unused_grants(entries: Sequence[Entry], granted: Iterable[Grant]) -> tuple[list[Grant], list[tuple[Grant, str]]]:
    """(grants no allowed call of the run matched, grants a local run cannot exercise with the reason)."""
    unused, unexercisable = [], []
    for grant in granted:
        used = any(e.allowed and e.role == grant.role and action_matches(grant.action, e.action)
                   and resource_matches(grant.resource, e.resource) for e in entries)
        if used:
            continue
        reason = not_exercisable(grant)
        if reason:
            unexercisable.append((grant, reason))
        else:
            unused.append(grant)
    return unused, unexercisable


def summary_lines(entries: Sequence[Entry], policies: Mapping[str, Sequence[Policy]]) -> list[str]:
    """The demo summary's IAM section: per role, calls checked and refused, then the unused grants."""
    calls = Counter(e.role for e in entries)
    refused = Counter(e.role for e in entries if not e.allowed)
    lines = []
    for role in sorted(policies):
        unused, unexercisable = unused_grants(entries, grants(role, policies[role]))
        lines.append(f"  {role}: {calls[role]} request{'' if calls[role] == 1 else 's'} checked against its policies, "
                     f"{refused[role]} denied")
        for grant in unused:
            lines.append(f"    granted, never used: {grant.action} on {grant.resource} ({grant.statement})")
        for reason in sorted({r for _, r in unexercisable}):
            actions = sorted({g.action for g, r in unexercisable if r == reason})
            lines.append(f"    not exercisable locally: {', '.join(actions)} ({reason})")
    return lines
