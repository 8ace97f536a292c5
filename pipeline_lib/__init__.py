"""The shared construct library for the retail and factory streaming pipelines.

Named `pipeline_lib`, not `constructs`: a local `constructs/` folder would shadow the
`constructs` package that cdktf itself imports.

Importing any module of this package first makes the AWS provider bindings importable
cheaply (see `provider_loader`), so constructs use ordinary
`from cdktf_cdktf_provider_aws.<resource> import <Class>` imports.
"""
from pipeline_lib.provider_loader import ensure_loaded as _ensure_provider_loaded

_ensure_provider_loaded()
