"""What a plan does to the monthly bill: each stack's fixed cost before and after, per resource,
from the same estimate and price table as `make cost` (tools/cost). Offline and deterministic.

Only what a plan knows is priced: fixed, hourly items (instances, nodes, shards, endpoints,
alarms, keys). What depends on traffic (Firehose, S3, logs, backups) or on values known only
after apply is listed as not priced, never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass

from tools.cost import estimate, prices
from tools.plan_review.model import Change, StackPlan

CENT = 0.005


@dataclass(frozen=True)
class CostChange:
    stack: str
    rows: tuple[tuple[str, float, float], ...]  # (address, before, after) per month, changed ones only
    before: float
    after: float
    unpriced: tuple[tuple[str, str], ...]  # changed resources without a figure, and why
    stamp: str


def _resource(plan: StackPlan, change: Change, values: object) -> estimate.Resource | None:
    if not isinstance(values, dict):
        return None
    return estimate.Resource(change.address, change.type, values, plan.references.get(change.address.split("[")[0], {}))


def cost_change(plan: StackPlan, table: prices.PriceTable | None = None) -> CostChange:
    table = table or prices.load()
    managed = [c for c in plan.changes if c.managed]
    before = [r for c in managed if c.kind != "create" and (r := _resource(plan, c, c.before))]
    after = [r for c in managed if c.kind not in ("delete", "forget") and (r := _resource(plan, c, c.after))]
    then = estimate.estimate(plan.stack, plan.region, before, table, None)
    now = estimate.estimate(plan.stack, plan.region, after, table, None)
    old, new = then.per_resource(), now.per_resource()
    changed = {c.address for c in managed if c.kind != "no-op"}
    rows = tuple((address, old.get(address, 0.0), new.get(address, 0.0)) for address in sorted(set(old) | set(new))
                 if abs(old.get(address, 0.0) - new.get(address, 0.0)) >= CENT)
    unpriced = tuple(sorted({(a, why) for a, why in (*then.unpriced, *now.unpriced) if a in changed}))
    return CostChange(plan.stack, rows, then.total(), now.total(), unpriced, table.stamp)


def render(change: CostChange) -> list[str]:
    lines = [f"### {change.stack}: monthly cost", ""]
    if not change.rows:
        lines.append(f"No change in fixed monthly cost ({change.stamp}).")
    else:
        delta = change.after - change.before
        lines += [f"Fixed monthly cost {_m(change.before)} -> {_m(change.after)} ({'+' if delta >= 0 else '-'}"
                  f"{_m(abs(delta))}), {change.stamp}:", "",
                  "| resource | before | after |", "|---|---:|---:|"]
        lines += [f"| `{address}` | {_m(old)} | {_m(new)} |" for address, old, new in change.rows]
    if change.unpriced:
        by_reason: dict[str, list[str]] = {}
        for address, why in change.unpriced:
            by_reason.setdefault(why, []).append(address)
        lines += ["", "Not priced (the figure leaves them out):", ""]
        for why, addresses in by_reason.items():
            shown = ", ".join(f"`{a}`" for a in addresses[:4]) + (f" and {len(addresses) - 4} more" if len(addresses) > 4 else "")
            lines.append(f"- {why}: {shown}")
    return [*lines, ""]


def _m(value: float) -> str:
    return f"${value:,.2f}"
