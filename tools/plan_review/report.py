"""The Markdown a reviewer reads: risks first, then counts, then what changes, per stack."""
from __future__ import annotations

from dataclasses import dataclass

from tools.plan_review import cost
from tools.plan_review.diff import MASK, UNKNOWN, attribute_changes
from tools.plan_review.diff import render as value_text
from tools.plan_review.model import CHANGE_KINDS, OutputChange, StackPlan
from tools.plan_review.rules import DRIFT_KEPT, DRIFT_UNDONE, HIGH, Risk

MARKER = "<!-- plan-review -->"  # the workflow finds its sticky comment by this line
MAX_CHARS = 60_000  # a GitHub comment holds 65,536 characters
MAX_ROWS_PER_RESOURCE = 12
SYMBOL = {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "read": "<="}
WHY = {  # the plan's action_reason, in the report's words
    "replace_because_tainted": "tainted", "replace_by_request": "`-replace` requested",
    "replace_by_triggers": "`replace_triggered_by`", "replace_because_cannot_update": "cannot update in place",
    "delete_because_no_resource_config": "not in the configuration", "delete_because_no_module": "its module is gone",
    "delete_because_wrong_repetition": "count/for_each changed", "delete_because_count_index": "index beyond count",
    "delete_because_each_key": "key gone from for_each", "delete_because_no_move_target": "moved nowhere",
}


@dataclass(frozen=True)
class Reviewed:
    plan: StackPlan
    risks: list[Risk]
    cost: cost.CostChange | None = None


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(reviewed: list[Reviewed], title: str = "Terraform plan review", footer: str = "") -> str:
    every = [risk for item in reviewed for risk in item.risks]
    blocking = [r for r in every if r.blocking]
    risks = [r for r in every if not r.drift]
    acknowledged = [r for r in every if r.severity == HIGH and r.acknowledged_by]
    lines = [MARKER, f"## {title}", ""]
    if blocking:
        lines.append(f"**{len(blocking)} high risk{'s' if len(blocking) != 1 else ''} not acknowledged**: "
                     "this plan needs a reviewer's explicit acknowledgement (see docs/plan-review.md).")
    elif acknowledged:
        lines.append(f"High risks: {len(acknowledged)}, all acknowledged.")
    else:
        lines.append("No high risk.")
    undone = [r for r in every if r.severity == HIGH and r.drift == DRIFT_UNDONE and not r.acknowledged_by]
    if undone:
        lines[-1] += (f" {len(undone)} high risk{'s' if len(undone) != 1 else ''} changed outside Terraform, "
                      "undone by this plan: applying it closes them.")
    lines.append("")
    lines += _risk_table("### Risks", risks)
    lines += _risk_table("### Risks changed outside Terraform (drift)", [r for r in every if r.drift], [
        "Found in what AWS holds now against the last apply (`resource_drift`). A high one this plan keeps "
        "fails the review like any other; one it undoes (applying it reverts the change) is listed only.", ""])
    lines += ["### Summary", "", "| stack | " + " | ".join(CHANGE_KINDS) + " |", "|---" * (len(CHANGE_KINDS) + 1) + "|"]
    for item in reviewed:
        counts = item.plan.counts()
        lines.append(f"| {item.plan.stack} | " + " | ".join(str(counts[k]) for k in CHANGE_KINDS) + " |")
    lines.append("")
    for item in reviewed:
        if not item.plan.complete:
            deferred = "; ".join(f"`{address}` ({reason})" for address, reason in item.plan.deferred)
            lines += [f"**{item.plan.stack}: this plan is incomplete** (planned with `-target`, or with changes deferred"
                      f"{': ' + _cell(deferred) if deferred else ''}): it does not show every change the configuration "
                      "makes, and neither does this review.", ""]
        for address, status, problem in item.plan.failed_checks:
            lines += [f"**{item.plan.stack}: check `{_cell(address)}` {'fails' if status == 'fail' else 'errors'}**"
                      f"{': ' + _cell(problem) if problem else ''} (Terraform only warns).", ""]
    for item in reviewed:
        lines += _changes(item.plan)
        lines += _drift(item.plan)
        lines += _outputs(item.plan)
        if item.cost is not None:
            lines += cost.render(item.cost)
    if footer:
        lines += [footer, ""]
    return _unmask_nothing("\n".join(lines), {secret for item in reviewed for secret in item.plan.secrets})


def _risk_table(heading: str, risks: list[Risk], intro: list[str] | None = None) -> list[str]:
    """Unacknowledged high risks first, then acknowledged or drift undone by the plan, then medium ones."""
    if not risks:
        return []
    lines = [heading, "", *(intro or []), "| | rule | stack | resource | why |", "|---|---|---|---|---|"]
    for risk in sorted(risks, key=lambda r: (not r.blocking, r.severity != HIGH)):
        badge = "HIGH" if risk.severity == HIGH else "medium"
        if risk.acknowledged_by:
            badge = "HIGH (acknowledged)"
        why = risk.reason + (f" — {DRIFT_FATE[risk.drift]}" if risk.drift else "")
        why += f" — acknowledged: {risk.acknowledged_by}" if risk.acknowledged_by else ""
        lines.append(f"| {badge} | `{risk.rule}` | {risk.stack} | `{_cell(risk.address)}` | {_cell(why)} |")
    return [*lines, ""]


DRIFT_FATE = {DRIFT_KEPT: "this plan keeps it", DRIFT_UNDONE: "this plan undoes it"}


def _unmask_nothing(text: str, secrets: set[str]) -> str:
    """Every copy of a sensitive string masked, wherever the plan failed to mark it."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def fit_comment(text: str, full_report: str) -> str:
    """The report cut to what a pull-request comment holds, saying where the whole one is."""
    if len(text) <= MAX_CHARS:
        return text
    cut = text.rfind("\n", 0, MAX_CHARS - 300)
    return text[:cut] + (f"\n\n*The report is longer than a comment holds and is cut here; the full report is "
                         f"{full_report}.*\n")


def _changes(plan: StackPlan) -> list[str]:
    # no-ops too when they import or move: the state changes, and a reviewer should see it
    changes = [c for c in plan.changes if c.managed and (c.kind != "no-op" or c.importing or c.previous_address)]
    if not changes:
        return [f"### {plan.stack}: no changes", ""]
    lines = [f"### {plan.stack}: changes", "", "<details open>" if len(changes) <= 20 else "<details>",
             f"<summary>{len(changes)} resource{'s' if len(changes) != 1 else ''}</summary>", "",
             "| action | resource | attribute | before | after |", "|---|---|---|---|---|"]
    for change in changes:
        action = f"`{SYMBOL.get(change.kind, change.kind)}` {change.kind}" if change.kind != "no-op" else \
            ("import" if change.importing else "moved")
        if change.kind != "no-op" and change.importing:
            action += " (import)"
        if change.action_reason in WHY:
            action += f" ({WHY[change.action_reason]})"
        resource = _cell(f"`{change.address}`" + (f" (deposed {change.deposed})" if change.deposed else ""))
        if change.previous_address:
            resource += _cell(f" (from `{change.previous_address}`)")
        rows = attribute_changes(change)
        if not rows:
            lines.append(f"| {action} | {resource} | | | |")
            continue
        for index, row in enumerate(rows[:MAX_ROWS_PER_RESOURCE]):
            first = index == 0
            attribute = f"`{row.path}`" + (" (forces replacement)" if row.forces_replacement else "")
            lines.append(f"| {action if first else ''} | {resource if first else ''} | {_cell(attribute)} "
                         f"| {_cell(_code(row.before))} | {_cell(_code(row.after))} |")
        if len(rows) > MAX_ROWS_PER_RESOURCE:
            lines.append(f"| | | *{len(rows) - MAX_ROWS_PER_RESOURCE} more attributes* | | |")
    lines += ["", "</details>", ""]
    return lines


def _drift(plan: StackPlan) -> list[str]:
    """What changed outside Terraform since the last apply: the plan may undo it, or keep it if ignored."""
    drifted = [c for c in plan.drift if c.managed and c.kind != "no-op"]
    if not drifted:
        return []
    lines = [f"### {plan.stack}: changed outside Terraform", "",
             "What AWS holds now differs from the last apply; the changes above start from it.", "",
             "| resource | attribute | recorded | now |", "|---|---|---|---|"]
    for change in drifted:
        resource = _cell(f"`{change.address}`")
        rows = attribute_changes(change)
        if not rows:
            lines.append(f"| {resource} | {'deleted outside Terraform' if change.kind == 'delete' else ''} | | |")
        for index, row in enumerate(rows[:MAX_ROWS_PER_RESOURCE]):
            lines.append(f"| {resource if index == 0 else ''} | {_cell(f'`{row.path}`')} | {_cell(_code(row.before))} "
                         f"| {_cell(_code(row.after))} |")
        if len(rows) > MAX_ROWS_PER_RESOURCE:
            lines.append(f"| | *{len(rows) - MAX_ROWS_PER_RESOURCE} more attributes* | | |")
    return [*lines, ""]


def _outputs(plan: StackPlan) -> list[str]:
    """Root outputs the plan changes: what other stacks and deploy scripts read."""
    if not plan.outputs:
        return []
    lines = [f"### {plan.stack}: outputs", "", "| action | output | before | after |", "|---|---|---|---|"]
    for output in plan.outputs:
        lines.append(f"| `{SYMBOL.get(output.kind, output.kind)}` {output.kind} | `{_cell(output.name)}` "
                     f"| {_cell(_output_value(output, 'before'))} | {_cell(_output_value(output, 'after'))} |")
    return [*lines, ""]


def _output_value(output: OutputChange, side: str) -> str:
    value = output.before if side == "before" else output.after
    if side == "after" and output.unknown:
        return UNKNOWN
    if value is None:
        absent = (side == "before" and output.kind == "create") or (side == "after" and output.kind == "delete")
        return "" if absent else _code(value_text(None))
    return MASK if output.sensitive else _code(value_text(value))


def _code(value: str) -> str:
    if value.startswith("("):
        return value
    return "`" + value.replace("`", "'") + "`"
