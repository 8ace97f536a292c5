"""`python -m tools.plan_review PLAN.json [PLAN.json ...]`: a Markdown review of Terraform plans.

Each PLAN.json is `terraform show -json` output (what `make plan` writes to plans/); the stack
is named after the file. The report goes to stdout, or to --out.

Exit status: 0 when no high risk is left unacknowledged, 1 when one is, 2 on bad input. A high
risk found in the drift (changed outside Terraform) counts unless this plan undoes it.
Acknowledge a high risk with an entry in policy/plan_acknowledgements.toml, or, in a pull
request, with the `plan-risk-acknowledged` label (the workflow passes --acknowledged-by).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools.cost import prices
from tools.plan_review import acknowledge, cost, drift, model, redact, report, rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan_review", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plans", nargs="+", type=Path, metavar="PLAN.json")
    parser.add_argument("--out", type=Path, help="write the Markdown here instead of stdout "
                        "(cut to what a pull-request comment holds when --full-out is given)")
    parser.add_argument("--full-out", type=Path, metavar="FILE",
                        help="also write the whole report here, never cut (what CI uploads)")
    parser.add_argument("--full-report-name", default="", metavar="TEXT",
                        help="where readers of a cut report find the whole one (default: the --full-out path)")
    parser.add_argument("--acknowledgements", type=Path, default=acknowledge.DEFAULT_FILE,
                        help="acknowledgements file (default policy/plan_acknowledgements.toml)")
    parser.add_argument("--acknowledged-by", default="", metavar="TEXT",
                        help="accept every high risk of this run, recording TEXT (e.g. who labelled the PR)")
    parser.add_argument("--redact-to", type=Path, metavar="DIR",
                        help="also write each plan with its sensitive values masked to DIR/<stack>.json")
    parser.add_argument("--title", default="Terraform plan review")
    args = parser.parse_args(argv)
    try:
        plans = [model.load(path) for path in args.plans]
        accepted = acknowledge.load(args.acknowledgements)
    except (model.PlanInputError, acknowledge.AcknowledgementError) as error:
        print(f"plan_review: {error}", file=sys.stderr)
        return 2
    duplicates = sorted({p.stack for p in plans if [q.stack for q in plans].count(p.stack) > 1})
    if duplicates:
        print(f"plan_review: two plans for the same stack: {', '.join(duplicates)}", file=sys.stderr)
        return 2
    table = prices.load()
    try:
        reviewed = [report.Reviewed(plan, acknowledge.apply(rules.assess(plan) + drift.assess(plan), accepted,
                                                                 args.acknowledged_by),
                                    cost.cost_change(plan, table))
                    for plan in plans]
    except model.PlanInputError as error:
        print(f"plan_review: {error}", file=sys.stderr)
        return 2
    all_risks = [risk for item in reviewed for risk in item.risks]
    footer = _footer(all_risks, accepted)
    text = report.render(reviewed, title=args.title, footer=footer)
    if args.full_out:
        args.full_out.parent.mkdir(parents=True, exist_ok=True)
        args.full_out.write_text(text, encoding="utf-8")
        text = report.fit_comment(text, args.full_report_name or f"`{args.full_out}`")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if args.redact_to:
        args.redact_to.mkdir(parents=True, exist_ok=True)
        for plan in plans:
            document = redact.redact(json.loads(plan.source.read_text(encoding="utf-8")))
            (args.redact_to / f"{plan.stack}.json").write_text(json.dumps(document, indent=1))
    blocking = [r for r in all_risks if r.blocking]
    for plan in reviewed:
        counts = plan.plan.counts()
        print(f"{plan.plan.stack}: " + ", ".join(f"{counts[k]} {k}" for k in model.CHANGE_KINDS) +
              f"; {sum(r.severity == rules.HIGH for r in plan.risks)} high, "
              f"{sum(r.severity != rules.HIGH for r in plan.risks)} medium risks", file=sys.stderr)
    if blocking:
        print(f"plan_review: {len(blocking)} high risk(s) not acknowledged", file=sys.stderr)
        return 1
    return 0


def _footer(risks: list[rules.Risk], accepted: list[acknowledge.Acknowledgement]) -> str:
    lines = []
    expired = acknowledge.expired(accepted)
    if expired:
        lines.append("Acknowledgements that expired and accept nothing any more (renew with a new date and reason, "
                     "or remove them): " + "; ".join(
                         f"`{a.rule}` {a.stack} `{a.address}`, expired {a.expires.isoformat()}" for a in expired))
    stale = acknowledge.unused(risks, accepted)
    if stale:
        lines.append("Acknowledgements that matched nothing (remove them): " + "; ".join(
            f"`{a.rule}` {a.stack} `{a.address}`" for a in stale))
    return "\n\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
