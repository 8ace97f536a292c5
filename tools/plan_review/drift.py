"""Risks in the drift: what someone changed outside Terraform (`resource_drift`), run through the same rules.

A drifted resource is read as a change from what the last apply recorded to what AWS holds now: a
security group opened to the world in the console is `open-security-group` as if a plan had done it.
Each such risk says whether this plan keeps it (the same risk still holds between the recorded value and
what the plan leaves, e.g. under `ignore_changes`, or with no change planned to the resource) or undoes it.

Only settings changed in place are read: a resource deleted outside Terraform is listed in the drift
table, and the plan's own create of it is reviewed with the other changes.
"""
from __future__ import annotations

from dataclasses import replace

from tools.plan_review.model import PlanInputError, StackPlan
from tools.plan_review.rules import DRIFT_KEPT, DRIFT_UNDONE, HIGH, RULES, Risk


def assess(plan: StackPlan) -> list[Risk]:
    """Every risk in one stack's drift, each marked kept or undone by the plan; high first, then by address."""
    drifted = tuple(c for c in plan.drift if c.managed and c.kind == "update")
    if not drifted:
        return []
    as_drift = replace(plan, changes=drifted)
    planned = {c.address: c for c in plan.changes if c.managed and not c.deposed}
    found = []
    for change in drifted:
        after_plan = planned.get(change.address)
        if after_plan is not None and after_plan.kind in ("update", "no-op", "replace", "create"):
            # from the recorded value to what applying the plan leaves
            result = replace(change, after=after_plan.after, after_unknown=after_plan.after_unknown)
        else:  # deleted by the plan, or not in it: nothing of it is left, or nothing changes it
            result = None if after_plan is not None else change
        for check in RULES:
            try:
                risks = list(check(change, as_drift))
                left = {(r.rule, r.reason) for r in check(result, as_drift)} if result is not None else set()
            except (TypeError, AttributeError, ValueError, KeyError, IndexError) as error:
                raise PlanInputError(f"{plan.source}: {change.address} (drift): the `{check.__name__}` rule cannot "
                                     f"read this change ({type(error).__name__}: {error}); nothing was reviewed") from error
            found.extend(replace(r, drift=DRIFT_KEPT if (r.rule, r.reason) in left else DRIFT_UNDONE) for r in risks)
    return sorted(set(found), key=lambda r: (r.severity != HIGH, r.address, r.rule, r.reason))
