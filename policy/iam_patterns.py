"""IAM action and resource patterns: which one covers another, and which are as wide as a wildcard.

IAM matches `*` (any run of characters) and `?` (any one) in actions, case-insensitively, and in
resource ARNs, case-sensitively. A pattern covers another when every string the second matches, the
first matches too: `s3:*` covers `s3:Get*`, which covers `s3:GetObject`, never the other way round.

Wide (reported as `iam-wildcard`): a pattern that names no service or only a verb, so it spans every
kind of thing a service has, and a resource ARN that names no particular resource. Partial wildcards
that keep a name (`kms:GenerateDataKey*`, `s3:GetObject*`, `arn:aws:s3:::bucket/*`, `...:log-group:name:*`)
are not wide: a new one is still a gain, listed as such.
"""
from __future__ import annotations

import re
from functools import lru_cache

WILDCARD = re.compile(r"[*?]")
# The verbs AWS action names start with. An action pattern whose literal part (before its first wildcard)
# is one of them, or the start of one (`s3:Get*`, `iam:Pass*`, `s3:G*`, `ec2:Describe*`), grants that verb on
# every kind of resource of the service: as wide as `service:*` for what it does.
VERBS = ("abort", "accept", "activate", "add", "apply", "archive", "assign", "associate", "assume", "attach",
         "authorize", "batch", "cancel", "change", "check", "complete", "confirm", "copy", "create", "deactivate",
         "decrypt", "delete", "deregister", "describe", "detach", "disable", "disassociate", "download", "enable",
         "encrypt", "execute", "export", "filter", "generate", "get", "grant", "import", "initiate", "invoke",
         "list", "lookup", "merge", "modify", "pass", "post", "publish", "purge", "put", "query", "read", "reboot",
         "receive", "register", "reject", "remove", "replace", "replicate", "request", "reset", "restore",
         "retire", "revoke", "rotate", "run", "scan", "schedule", "search", "send", "set", "sign", "start",
         "stop", "subscribe", "tag", "terminate", "test", "transfer", "unsubscribe", "untag", "update",
         "upload", "validate", "verify", "write")
# Services whose ARNs name the resource first, with no `type/` or `type:` before it.
UNTYPED_ARNS = frozenset({"s3", "sqs", "sns"})


@lru_cache(maxsize=4096)
def _regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """`pattern` as a regex over other patterns: its `*` takes anything (wildcards too), its `?` one
    character that is not itself a wildcard (a `?` cannot cover the run a `*` stands for)."""
    parts = [".*" if c == "*" else "[^*?]" if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def covers(wider: str, narrower: str, ignore_case: bool = False) -> bool:
    """True when every string `narrower` matches, `wider` matches too."""
    if wider == narrower or wider == "*":
        return True
    return _regex(wider, ignore_case).fullmatch(narrower) is not None


def action_covers(wider: str, narrower: str) -> bool:
    """The same for actions (case-insensitive). `* except ...` (a NotAction) is covered by `*` or itself."""
    if wider.startswith("* except") or narrower.startswith("* except"):
        return wider == "*" or wider.lower() == narrower.lower()
    return covers(wider, narrower, ignore_case=True)


def wide_action(action: str) -> bool:
    """`*`, a NotAction, any wildcard in the service (`*:*`, `*:GetObject`), or a verb-only action (`s3:*`,
    `s3:Get*`, `iam:Pass*`, `s3:*Object`)."""
    if action == "*" or action.startswith("* except"):
        return True
    service, _, name = action.partition(":")
    if WILDCARD.search(service) or not name:
        return bool(WILDCARD.search(action))
    match = WILDCARD.search(name)
    if match is None:
        return False
    literal = name[: match.start()].lower()
    return any(verb.startswith(literal) for verb in VERBS)


def wide_resource(resource: str) -> bool:
    """`*`, or an ARN pattern naming no particular resource: a wildcard in its partition, service or account
    (`arn:aws:kinesis:*:*:...`: any account's), or in front of the resource's name (`arn:aws:s3:::*`,
    `arn:aws:kinesis:us-east-1:123456789012:stream/*`, `arn:aws:dynamodb:...:table/*-dev`)."""
    if resource == "*":
        return True
    if not WILDCARD.search(resource):
        return False
    fields = resource.split(":", 5)
    if len(fields) < 6 or fields[0] != "arn":
        return True  # a pattern that is no ARN (`arn:*`, `*/*`) names nothing in particular
    _, partition, service, _region, account, name = fields
    if WILDCARD.search(partition) or WILDCARD.search(service) or WILDCARD.search(account):
        return True
    if service.lower() not in UNTYPED_ARNS and (separator := re.search(r"[/:]", name)):
        if WILDCARD.search(name[: separator.start()]):  # `*/name`: any type
            return True
        name = name[separator.end() :]
    return WILDCARD.match(name.lstrip("/")) is not None  # (log group names start with `/`)
