"""What the stacks cost per month: `make cost` (per stack and environment) and the plan review's
cost section, both from the pinned price table `prices.toml`. See docs/cost.md."""
