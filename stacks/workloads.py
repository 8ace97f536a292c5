"""The workloads and their regions, once. Standard library only, so the Makefile, the workflows
(`python -m stacks list`), the local deployment, `make plan` and the integration tests can read
it without the provider bindings; `stacks/config.py` builds each workload's config for its region,
and tests hold the workflow matrices and the processor's own registry (processor/workloads.py) to it.
"""
from __future__ import annotations

WORKLOAD_REGIONS: dict[str, str] = {"retail": "us-east-1", "factory": "eu-west-1"}
WORKLOADS: tuple[str, ...] = tuple(WORKLOAD_REGIONS)


def redis_auth_secret_name(workload: str, suffix: str) -> str:
    """The secret an operator creates before a first deploy, holding the Redis AUTH token."""
    return f"{workload}-{suffix}/redis-auth"


def catalog_api_secret_names(workload: str, suffix: str) -> dict[str, str]:
    """The secrets an operator creates before a first deploy of a stack with the catalog read API
    (docs/catalog-api.md): the reader role's password, the callers' bearer tokens (comma-separated), and
    the tasks' serving certificate and key (PEM)."""
    return {purpose: f"{workload}-{suffix}/catalog-api-{purpose}" for purpose in ("reader", "tokens", "tls")}
