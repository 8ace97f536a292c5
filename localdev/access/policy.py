"""IAM policy evaluation for one account: what AWS decides for one request.

The order is AWS's: an explicit Deny in any policy that applies wins; otherwise a KMS key
is usable only if its key policy allows the caller, either by name or by allowing the
account (which hands the decision to the caller's identity policies); any other resource is
usable if an identity policy or the resource's own policy allows it. Everything else is
an implicit deny. A role's trust policy is evaluated here too, as the resource policy of an
sts:AssumeRole whose principal is the assuming service (trust.py). Not modelled, because
nothing here uses them: permission boundaries, session policies, SCPs and cross-account access.

A condition operator this module does not know fails closed: the statement is treated as
matching for a Deny and as not matching for an Allow, and the decision names the operator.
"""
from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ContextValue = str | Sequence[str]


@dataclass(frozen=True)
class Request:
    """One authorization question: `principal` (a role ARN, or a service principal such as
    `ecs-tasks.amazonaws.com` asking for sts:AssumeRole) calls `action` on `resource`."""

    principal: str
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)  # condition keys, any case

    @property
    def account(self) -> str:
        """The principal's account ("" for a service principal, which belongs to no account)."""
        parts = self.principal.split(":")
        return parts[4] if len(parts) > 4 else ""


@dataclass(frozen=True)
class Policy:
    """A policy document and where it came from, for the decision's reason."""

    source: str  # "identity policy factory-processor-run-dev", "key policy", ...
    document: Mapping[str, Any]

    @classmethod
    def parse(cls, source: str, document: str | Mapping[str, Any]) -> Policy:
        parsed = json.loads(document) if isinstance(document, str) else document
        if not isinstance(parsed, Mapping):
            raise ValueError(f"{source} is not a JSON object")
        return cls(source, parsed)

    def statements(self) -> list[Mapping[str, Any]]:
        body = self.document.get("Statement", [])
        return [s for s in (body if isinstance(body, list) else [body]) if isinstance(s, Mapping)]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "allowed by ReadTheStream (identity policy x)", "no identity-based policy allows ..."


class UnknownOperator(ValueError):
    pass


def evaluate(request: Request, identity: Sequence[Policy], *, resource_policy: Policy | None = None,
             key_policy: Policy | None = None) -> Decision:
    """AWS's decision for `request` (same account as its principal)."""
    unknown: list[str] = []
    resource_side = [p for p in (resource_policy, key_policy) if p is not None]
    for policy in [*identity, *resource_side]:
        for statement in policy.statements():
            if statement.get("Effect") == "Deny" and _applies(statement, request, policy in resource_side,
                                                              unknown, deny=True):
                return Decision(False, f"explicitly denied by {_sid(statement)} ({policy.source})")
    by_identity = _allowing(identity, request, unknown, resource_side=False)
    if key_policy is not None:
        direct = _allowing([key_policy], request, unknown, resource_side=True, delegation=False)
        delegated = _allowing([key_policy], request, unknown, resource_side=True, delegation=True)
        if direct:
            return Decision(True, f"allowed by {direct}")
        if delegated and by_identity:
            return Decision(True, f"allowed by {by_identity}, which {delegated} lets IAM decide")
        if not delegated:
            return Decision(False, _why("the key policy does not allow it for this principal", unknown))
        return Decision(False, _why(f"no identity-based policy allows the {request.action} action "
                                    f"(the key policy lets IAM decide: {delegated})", unknown))
    if by_identity:
        return Decision(True, f"allowed by {by_identity}")
    if resource_policy is not None:
        direct = _allowing([resource_policy], request, unknown, resource_side=True, delegation=False)
        if direct:
            return Decision(True, f"allowed by {direct}")
    return Decision(False, _why(f"no identity-based policy allows the {request.action} action", unknown))


def _why(text: str, unknown: list[str]) -> str:
    return text + (f"; condition operators not understood here: {', '.join(sorted(set(unknown)))}" if unknown else "")


def _sid(statement: Mapping[str, Any]) -> str:
    return str(statement.get("Sid") or "an unnamed statement")


def _allowing(policies: Sequence[Policy], request: Request, unknown: list[str], *, resource_side: bool,
              delegation: bool = False) -> str:
    """`Sid (source)` of the first Allow statement that applies, or ""."""
    for policy in policies:
        for statement in policy.statements():
            if statement.get("Effect") != "Allow":
                continue
            if resource_side and _principal_kind(statement, request) != ("account" if delegation else "named"):
                continue
            if _applies(statement, request, resource_side, unknown, deny=False):
                return f"{_sid(statement)} ({policy.source})"
    return ""


def _principal_kind(statement: Mapping[str, Any], request: Request) -> str:
    """How a resource-side statement's Principal covers the caller: "named" (the role, its
    session or anyone), "account" (the caller's account: IAM decides), or ""."""
    if "NotPrincipal" in statement:
        return "" if _in_principals(statement["NotPrincipal"], request) else "named"
    return _in_principals(statement.get("Principal"), request)


def _in_principals(principal: Any, request: Request) -> str:
    if principal == "*":
        return "named"
    if not isinstance(principal, Mapping):
        return ""
    if request.principal in as_list(principal.get("Service")):  # a service principal, as a trust policy names it
        return "named"
    names = principal.get("AWS", [])
    for name in names if isinstance(names, list) else [names]:
        name = str(name)
        if name == "*" or name == request.principal:
            return "named"
        if request.account and name in (request.account, f"arn:aws:iam::{request.account}:root"):
            return "account"
    return ""


def _applies(statement: Mapping[str, Any], request: Request, resource_side: bool, unknown: list[str], *,
             deny: bool) -> bool:
    if resource_side and deny and not _principal_kind(statement, request):
        return False
    if "NotAction" in statement:
        if any(action_matches(p, request.action) for p in as_list(statement["NotAction"])):
            return False
    elif not any(action_matches(p, request.action) for p in as_list(statement.get("Action"))):
        return False
    if "NotResource" in statement:
        if any(resource_matches(p, request.resource) for p in as_list(statement["NotResource"])):
            return False
    elif "Resource" in statement or not resource_side:
        if not any(resource_matches(p, request.resource) for p in as_list(statement.get("Resource"))):
            return False
    try:
        return conditions_hold(statement.get("Condition") or {}, request.context)
    except UnknownOperator as error:
        unknown.append(str(error))
        return deny  # fail closed


def as_list(value: Any) -> list[str]:
    """A policy field that may be one string or a list, as a list of strings."""
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _glob(pattern: str, value: str, *, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern, action, case=False)


def resource_matches(pattern: str, resource: str) -> bool:
    return _glob(pattern, resource, case=True)


# -- conditions -----------------------------------------------------------------------------------------------


def _string_like(expected: str, actual: str) -> bool:
    return fnmatch.fnmatchcase(actual, expected.replace("[", "[[]"))


def _bool(expected: str, actual: str) -> bool:
    return expected.lower() == actual.lower()


def _numeric(compare: str) -> Callable[[str, str], bool]:
    def test(expected: str, actual: str) -> bool:
        try:
            a, e = float(actual), float(expected)
        except ValueError:
            return False
        return {"Equals": a == e, "LessThan": a < e, "LessThanEquals": a <= e,
                "GreaterThan": a > e, "GreaterThanEquals": a >= e}[compare]
    return test


# operator -> (test of one expected value against one actual value, negated)
OPERATORS = {
    "StringEquals": (lambda e, a: e == a, False),
    "StringNotEquals": (lambda e, a: e == a, True),
    "StringEqualsIgnoreCase": (lambda e, a: e.lower() == a.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda e, a: e.lower() == a.lower(), True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (lambda e, a: e == a, False),
    "ArnNotEquals": (lambda e, a: e == a, True),
    "ArnLike": (_string_like, False),
    "ArnNotLike": (_string_like, True),
    "Bool": (_bool, False),
    "NumericEquals": (_numeric("Equals"), False),
    "NumericNotEquals": (_numeric("Equals"), True),
    "NumericLessThan": (_numeric("LessThan"), False),
    "NumericLessThanEquals": (_numeric("LessThanEquals"), False),
    "NumericGreaterThan": (_numeric("GreaterThan"), False),
    "NumericGreaterThanEquals": (_numeric("GreaterThanEquals"), False),
}


def conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, ContextValue]) -> bool:
    """Every operator and key of a Condition block holds for `context` (keys compared without case).

    A key absent from the request fails the condition, except under `...IfExists`, `Null`
    and the negated operators (which an absent key satisfies), as AWS evaluates them."""
    lowered = {k.lower(): ([v] if isinstance(v, str) else list(v)) for k, v in context.items()}
    for operator, keys in conditions.items():
        qualifier, _, name = operator.rpartition(":")
        if_exists = name.endswith("IfExists")
        name = name.removesuffix("IfExists")
        for key, expected in (keys or {}).items():
            expected_values = as_list(expected)
            actual = lowered.get(key.lower())
            if name == "Null":
                if (actual is None) != (expected_values[0].lower() == "true"):
                    return False
                continue
            if name not in OPERATORS:
                raise UnknownOperator(operator)
            test, negated = OPERATORS[name]
            if actual is None:
                if if_exists or negated or qualifier == "ForAllValues":
                    continue
                return False
            if qualifier == "ForAllValues":
                held = all(any(test(e, a) for e in expected_values) for a in actual)
            else:  # ForAnyValue, or a single-valued key
                held = any(test(e, a) for e in expected_values for a in actual)
            if held == negated:
                return False
    return True
