"""`python -m tools.cost [--suffix dev --suffix prod] [--detail]`: the monthly cost of each stack.

Synthesizes both stacks for each suffix (in a temporary directory; nothing is deployed or
written to cdktf.out) and prices the synthesized JSON with tools/cost/prices.toml at the usage
tools/cost/usage.py states. Fixed cost is what a stack costs before a single record flows;
traffic is what the stated usage adds. Every resource is priced, free, or listed as not priced
with the reason.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from tools.cost import estimate, prices

# Subscriptions and where the state lives change nothing a bill shows; production refuses to
# synthesize without them.
PLACEHOLDER_SUBSCRIPTION = "email:cost-estimate@example.invalid"
PLACEHOLDER_STATE_BUCKET = "cost-estimate-state"


def stack_costs(suffix: str, table: prices.PriceTable) -> list[estimate.StackCost]:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from main import build_app
    from stacks.config import build_config
    from stacks.workloads import WORKLOADS
    from tools.cost.usage import usage_of

    with tempfile.TemporaryDirectory(prefix="cost-") as outdir:
        build_app(outdir, suffix, PLACEHOLDER_SUBSCRIPTION, PLACEHOLDER_SUBSCRIPTION, PLACEHOLDER_STATE_BUCKET).synth()
        costs = []
        for workload in WORKLOADS:
            config = build_config(workload, suffix, PLACEHOLDER_SUBSCRIPTION, PLACEHOLDER_SUBSCRIPTION)
            document = json.loads((Path(outdir) / "stacks" / config.stack_id / "cdk.tf.json").read_text())
            costs.append(estimate.estimate(config.stack_id, config.region, estimate.from_synthesized(document),
                                           table, usage_of(config)))
        return costs


def render(costs: list[estimate.StackCost], table: prices.PriceTable, detail: bool) -> str:
    lines = [f"Monthly cost, {table.stamp} ({table.source}); fixed = before any traffic, traffic = at the "
             "stated usage (tools/cost/usage.py)", ""]
    lines += ["| stack | region | fixed | traffic | total |", "|---|---|---:|---:|---:|"]
    by_suffix: dict[str, list[estimate.StackCost]] = {}
    for cost in costs:
        by_suffix.setdefault(cost.stack.split("-", 1)[1], []).append(cost)
        lines.append(f"| {cost.stack} | {cost.region} | {_m(cost.total(estimate.FIXED))} | "
                     f"{_m(cost.total(estimate.TRAFFIC))} | {_m(cost.total())} |")
    for suffix, group in by_suffix.items():
        lines.append(f"| **{suffix}** (both stacks) | | {_m(sum(c.total(estimate.FIXED) for c in group))} | "
                     f"{_m(sum(c.total(estimate.TRAFFIC) for c in group))} | {_m(sum(c.total() for c in group))} |")
    for cost in costs:
        lines += ["", f"### {cost.stack} ({cost.region}), {table.stamp}", "",
                  "| service | fixed | traffic |", "|---|---:|---:|"]
        fixed, traffic = cost.by_service(estimate.FIXED), cost.by_service(estimate.TRAFFIC)
        for service in sorted(set(fixed) | set(traffic), key=lambda s: -(fixed.get(s, 0) + traffic.get(s, 0))):
            lines.append(f"| {service} | {_m(fixed.get(service, 0))} | {_m(traffic.get(service, 0))} |")
        if detail:
            lines += ["", "| resource | kind | per month | basis |", "|---|---|---:|---|"]
            for line in sorted(cost.lines, key=lambda item: -item.monthly):
                lines.append(f"| `{line.address}` | {line.kind} | {_m(line.monthly)} | {line.basis} |")
        lines += ["", f"Free: {len(cost.free)} resources" + (
            ": " + "; ".join(f"`{a}` ({why})" for a, why in cost.free) if detail else
            " (IAM, networking without hourly charges, configuration resources; --detail lists them)")]
        if cost.unpriced:
            lines += ["", "**Not priced**: " + "; ".join(f"`{a}`: {why}" for a, why in cost.unpriced)]
    return "\n".join(lines) + "\n"


def _m(value: float) -> str:
    return f"${value:,.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--suffix", action="append", help="environment suffix (repeatable; default: dev and prod)")
    parser.add_argument("--detail", action="store_true", help="every resource: its figure and how it is made")
    parser.add_argument("--prices", type=Path, default=prices.DEFAULT_TABLE, help="price table (TOML)")
    args = parser.parse_args(argv)
    try:
        table = prices.load(args.prices)
    except (OSError, ValueError) as error:
        print(f"cost: {error}", file=sys.stderr)
        return 2
    costs = [cost for suffix in (args.suffix or ["dev", "prod"]) for cost in stack_costs(suffix, table)]
    sys.stdout.write(render(costs, table, args.detail))
    return 0


if __name__ == "__main__":
    sys.exit(main())
