"""Where each stack's Terraform state lives: S3 (encrypted, locked) when a bucket is named,
a local file otherwise; production only in S3.

The state holds what the stack reads and writes in clear, the Redis AUTH token among them
(provider 5.100 has no write-only argument for it): a production state left as a local file
would leak it to whoever reads the disk and be lost with a CI runner. Production therefore
refuses to synthesize without `TF_STATE_BUCKET`, as it refuses without alert subscriptions.
Who may read the bucket: docs/operations.md, "The state bucket".
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from stacks.config import ConfigError, WorkloadConfig

STATE_BUCKET_ENV = "TF_STATE_BUCKET"
STATE_REGION_ENV = "TF_STATE_REGION"
# Local state under another directory (relative to the project root): the local emulator
# deployment keeps its state in .local/state so it never mixes with a real deployment's.
LOCAL_STATE_DIR_ENV = "TF_LOCAL_STATE_DIR"


@dataclass(frozen=True)
class RemoteState:
    """The S3 backend: encrypted, with S3-native locking (Terraform >= 1.10)."""

    bucket: str
    key: str
    region: str


@dataclass(frozen=True)
class LocalState:
    path: str  # relative to cdktf.out/stacks/<id>/, where Terraform runs


def state_for(config: WorkloadConfig, environ: Mapping[str, str] | None = None,
              bucket: str | None = None) -> RemoteState | LocalState:
    """The state of `config`'s stack; `bucket` defaults to TF_STATE_BUCKET. Raises ConfigError
    for production without a bucket, and for a local directory outside the project."""
    env = os.environ if environ is None else environ
    bucket = (env.get(STATE_BUCKET_ENV, "") if bucket is None else bucket).strip()
    if bucket:
        return RemoteState(bucket=bucket, key=f"{config.project}/{config.stack_id}/terraform.tfstate",
                           region=env.get(STATE_REGION_ENV, "").strip() or config.region)
    if config.is_production:
        raise ConfigError(f"{config.stack_id}: production state must be remote and encrypted: set {STATE_BUCKET_ENV} "
                          "(an S3 bucket; the state holds the Redis AUTH token in clear, see docs/operations.md)")
    directory = env.get(LOCAL_STATE_DIR_ENV, "").strip().strip("/")
    if directory.startswith("..") or "/../" in f"/{directory}/":
        raise ConfigError(f"{LOCAL_STATE_DIR_ENV} must stay inside the project, not {directory!r}")
    # Terraform runs in cdktf.out/stacks/<id>/: keep state at the project root, outside cdktf.out.
    prefix = f"../../../{directory}/" if directory else "../../../"
    return LocalState(path=f"{prefix}terraform.{config.stack_id}.tfstate")
