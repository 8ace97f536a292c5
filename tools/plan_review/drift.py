"""Risks in the drift: what someone changed outside Terraform (`resource_drift`), run through the same rules.

A drifted resource is read as a change from what the last apply recorded to what AWS holds now: a
security group opened to the world in the console is `open-security-group` as if a plan had done it.
Each such risk says whether this plan keeps it (the same risk still holds between the recorded value and
what the plan leaves, e.g. under `ignore_changes`, or with no change planned to the resource) or undoes it.

A group's `ingress` and `egress` are computed: they list the rules the stack manages as resources of their
own too, which show there as drift after the apply that created them. A world-open rule found that way
is that resource's, reviewed when it was planned, not drift. The same holds for a role's computed
`inline_policy` and the stack's `aws_iam_role_policy` resources.

Only settings changed in place are read: a resource deleted outside Terraform is listed in the drift
table, and the plan's own create of it is reviewed with the other changes.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from tools.plan_review.model import Change, PlanInputError, StackPlan
from tools.plan_review.rules import DRIFT_KEPT, DRIFT_UNDONE, HIGH, RULES, Risk, separately_managed_open_rules


def assess(plan: StackPlan) -> list[Risk]:
    """Every risk in one stack's drift, each marked kept or undone by the plan; high first, then by address."""
    drifted = tuple(c for c in plan.drift if c.managed and c.kind == "update")
    if not drifted:
        return []
    as_drift = replace(plan, changes=drifted)
    planned = {c.address: c for c in plan.changes if c.managed and not c.deposed}
    managed_elsewhere = separately_managed_open_rules(plan)
    found = []
    role_policies = _separate_role_policies(plan)
    for change in drifted:
        change = _without_role_policies(change, role_policies)
        after_plan = planned.get(change.address)
        if after_plan is not None and after_plan.kind in ("update", "no-op", "replace", "create"):
            # from the recorded value to what applying the plan leaves
            result = _without_role_policies(replace(change, after=after_plan.after, after_unknown=after_plan.after_unknown),
                                            role_policies)
        else:  # deleted by the plan, or not in it: nothing of it is left, or nothing changes it
            result = None if after_plan is not None else change
        for check in RULES:
            try:
                risks = list(check(change, as_drift))
                left = {(r.rule, r.reason) for r in check(result, as_drift)} if result is not None else set()
            except (TypeError, AttributeError, ValueError, KeyError, IndexError) as error:
                raise PlanInputError(f"{plan.source}: {change.address} (drift): the `{check.__name__}` rule cannot "
                                     f"read this change ({type(error).__name__}: {error}); nothing was reviewed") from error
            found.extend(replace(r, drift=DRIFT_KEPT if (r.rule, r.reason) in left else DRIFT_UNDONE) for r in risks
                         if (str(change.after_value("id")), r.reason) not in managed_elsewhere)
    return sorted(set(found), key=lambda r: (r.severity != HIGH, r.address, r.rule, r.reason))


def _separate_role_policies(plan: StackPlan) -> set[tuple[str, str]]:
    """(role, policy name) of every `aws_iam_role_policy` the stack manages."""
    return {(str(side.get("role")), str(side.get("name"))) for c in plan.changes
            if c.managed and c.type == "aws_iam_role_policy" for side in (c.before, c.after) if isinstance(side, dict)}


def _without_role_policies(change: Change, managed: set[tuple[str, str]]) -> Change:
    """A role's drift without the `inline_policy` blocks that are `aws_iam_role_policy` resources of the stack
    (the role's computed `inline_policy` lists them after the apply that created them)."""
    if change.type != "aws_iam_role" or not managed:
        return change

    def strip(side: Any) -> Any:
        if not isinstance(side, dict):
            return side
        names = {str(side.get("name")), str(side.get("id"))}
        kept = [b for b in side.get("inline_policy") or []
                if not (isinstance(b, dict) and any((role, str(b.get("name"))) in managed for role in names))]
        return {**side, "inline_policy": kept}

    return replace(change, before=strip(change.before), after=strip(change.after))
