#!/usr/bin/env python
"""Synthesize both workload stacks: `retail-<suffix>` (us-east-1), `factory-<suffix>` (eu-west-1).

The environment suffix comes from ENVIRONMENT_SUFFIX, else the cdktf context key
`environmentSuffix`, else "dev". A bad suffix stops synthesis before anything is written.
"""
from __future__ import annotations

import json
import os
import sys

# jsii warns on every run that Node 20 is past end of life. We know, and pin the
# silence to that one major version so a different Node still gets its warning.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from cdktf import App

from pipeline_lib.naming import InvalidSuffixError
from stacks.config import ConfigError, build_config
from stacks.state import state_for
from stacks.workload_stack import WorkloadStack
from stacks.workloads import WORKLOADS

DEFAULT_SUFFIX = "dev"


def environment_suffix() -> str:
    """ENVIRONMENT_SUFFIX, else the `environmentSuffix` context, else "dev".

    The context is read from CDKTF_CONTEXT_JSON, where the cdktf CLI passes `cdktf.json`
    context and `--context` values, so the suffix is known (and validated) before the
    App exists: constructing an App already creates the output directory.
    """
    from_env = os.environ.get("ENVIRONMENT_SUFFIX", "").strip()
    if from_env:
        return from_env
    try:
        context = json.loads(os.environ.get("CDKTF_CONTEXT_JSON") or "{}")
    except json.JSONDecodeError as error:
        raise InvalidSuffixError(f"CDKTF_CONTEXT_JSON is not valid JSON: {error}") from error
    from_context = context.get("environmentSuffix") if isinstance(context, dict) else None
    return str(from_context) if from_context else DEFAULT_SUFFIX


def build_app(outdir: str | None = None, suffix: str | None = None, alert_subscriptions: str | None = None,
              incident_subscriptions: str | None = None, state_bucket: str | None = None) -> App:
    """Both stacks; the subscriptions default to ALERT_SUBSCRIPTIONS and INCIDENT_SUBSCRIPTIONS
    (stacks/config.py), the state bucket to TF_STATE_BUCKET (stacks/state.py)."""
    suffix = suffix or environment_suffix()
    # Every config and its state are built (and validated) before the App exists: it creates the output directory.
    configs = [build_config(workload, suffix, alert_subscriptions, incident_subscriptions) for workload in WORKLOADS]
    states = [state_for(config, bucket=state_bucket) for config in configs]
    app = App(outdir=outdir) if outdir else App()
    for config, state in zip(configs, states, strict=True):
        WorkloadStack(app, config, state)
    return app


def main() -> int:
    try:
        app = build_app()
    except (InvalidSuffixError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
