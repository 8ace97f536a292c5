"""Every change this project makes to moto, one module per service, each with its reason and a test.

moto 5.2 serves most of what the stacks create. Where it lacks an operation the AWS
provider calls, or answers one differently from AWS, an extension adds or corrects it
in-process, before the emulator's server starts (localdev/emulator.py). The stacks
themselves are never changed for the emulator. Each extension is a function registered
with `@extension` (registry.py); `apply_all()` applies each once. Tests:
tests/localdev/test_moto_extensions.py, one per extension.
"""
from __future__ import annotations

from localdev.moto_extensions import (  # noqa: F401 - importing a module registers its extensions
    access,
    appautoscaling,
    backup,
    cloudwatch,
    core,
    ec2,
    ecs,
    elasticache,
    firehose,
    iam,
    iot,
    kinesis,
    kms,
    rds,
    route53,
    secretsmanager,
)
from localdev.moto_extensions.registry import EXTENSIONS, apply_all

__all__ = ["EXTENSIONS", "apply_all"]
