"""Load the prebuilt AWS provider bindings without paying for all 1,500 resource types.

`import cdktf_cdktf_provider_aws` costs about 12-20 s on this machine because:

1. its Python `__init__` imports every one of the ~2,100 generated submodules, and
2. the jsii kernel `require()`s the package's `lib/index.js`, which in turn
   `require()`s every resource module on the Node side.

Neither is needed to synthesize our stacks. This module:

* registers the Python package object *without* executing its `__init__`, so a plain
  `from cdktf_cdktf_provider_aws.kinesis_stream import KinesisStream` imports only that
  submodule (jsii >= 1.1xx resolves types from lazily imported submodules);
* loads the jsii assembly from a derived tarball whose `lib/index.js` exposes each
  resource namespace through a lazy getter instead of an eager `require`. Nothing else in
  the tarball changes, so the kernel sees the same types and the synthesized JSON is
  byte-identical (the `bench/bench_synth.py` benchmark and a test compare both paths).

The derived tarball lives under `.gen/` (git-ignored), keyed by the SHA-256 of the
original, and is rebuilt automatically when the provider package changes. Setting
`PIPELINE_PROVIDER_IMPORT=full` switches back to the stock import, which is what the
benchmark uses as its baseline. If anything about the installed package does not match
what this loader expects, it falls back to the stock import and logs why.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import os
import re
import sys
import tarfile
import time
import types
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PACKAGE = "cdktf_cdktf_provider_aws"
ASSEMBLY = "@cdktf/provider-aws"
MODE_ENV = "PIPELINE_PROVIDER_IMPORT"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
GEN_DIR = Path(os.environ.get("PIPELINE_GEN_DIR", PROJECT_ROOT / ".gen"))

# `exports.kinesisStream = require("./kinesis-stream");` as emitted by tsc for the
# provider's `export * as kinesisStream from './kinesis-stream'`.
_EAGER_EXPORT = re.compile(r'^exports\.(\w+) = require\("(\./[\w-]+)"\);$', re.MULTILINE)
_INDEX_MEMBER = "package/lib/index.js"


@dataclass(frozen=True)
class LoadedProvider:
    mode: str  # "lazy" or "full"
    tarball: Path | None


_loaded: LoadedProvider | None = None


def _original_tarball() -> tuple[Path, str]:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{PACKAGE} is not installed; run `pipenv sync --dev`")
    jsii_dir = Path(list(spec.submodule_search_locations)[0]) / "_jsii"
    tarballs = sorted(jsii_dir.glob("provider-aws@*.jsii.tgz"))
    if len(tarballs) != 1:
        raise RuntimeError(f"expected one provider-aws tarball in {jsii_dir}, found {len(tarballs)}")
    version = tarballs[0].name[len("provider-aws@") : -len(".jsii.tgz")]
    return tarballs[0], version


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _kernel_cache_key(tarball: Path, version: str) -> str:
    """The directory name the jsii kernel gives a tarball in its package cache."""
    digest = hashlib.sha256(tarball.read_bytes())
    for part in (ASSEMBLY, version):
        digest.update(b"\0")
        digest.update(part.encode())
    return digest.hexdigest()


def lazy_index(source: str) -> str:
    """Rewrite eager `exports.x = require("./x")` lines into lazy getters."""
    count = len(_EAGER_EXPORT.findall(source))
    if count < 100:
        raise RuntimeError(f"provider lib/index.js has an unexpected shape ({count} eager exports)")
    return _EAGER_EXPORT.sub(
        lambda m: (
            f'Object.defineProperty(exports, "{m.group(1)}", '
            f'{{ enumerable: true, configurable: true, get: () => require("{m.group(2)}") }});'
        ),
        source,
    )


def build_lazy_tarball(original: Path, destination: Path) -> Path:
    """Copy the provider's jsii tarball, changing only `lib/index.js`."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(f".partial-{os.getpid()}")
    rewritten = False
    with tarfile.open(original, "r:gz") as src, tarfile.open(partial, "w:gz", compresslevel=1) as dst:
        for member in src:
            payload = src.extractfile(member) if member.isfile() else None
            if member.name == _INDEX_MEMBER and payload is not None:
                data = lazy_index(payload.read().decode("utf-8")).encode("utf-8")
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
                rewritten = True
            else:
                dst.addfile(member, payload)
    if not rewritten:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"{_INDEX_MEMBER} not found in {original}")
    os.replace(partial, destination)  # atomic: concurrent builders never see a half file
    return destination


def lazy_tarball_path() -> Path:
    original, version = _original_tarball()
    key = _sha256(original)[:16]
    target = GEN_DIR / "provider-aws" / f"provider-aws@{version}-lazy-{key}.jsii.tgz"
    if not target.exists():
        logger.info("building lazy provider tarball %s (one-off, a few seconds)", target.name)
        build_lazy_tarball(original, target)
    return target


def _install_lazy() -> LoadedProvider:
    import cdktf._jsii  # noqa: F401  (the provider assembly depends on these two)
    import constructs._jsii  # noqa: F401
    import jsii
    from jsii import _reference_map
    from jsii._runtime import kernel

    tarball = lazy_tarball_path()
    _, version = _original_tarball()
    spec = importlib.util.find_spec(PACKAGE)
    package = importlib.util.module_from_spec(spec)  # not executed: no 2,100 imports
    jsii_module = types.ModuleType(f"{PACKAGE}._jsii")
    jsii_module.__package__ = f"{PACKAGE}._jsii"
    kernel.load(ASSEMBLY, version, os.fspath(tarball))
    _reference_map._assembly_to_module[ASSEMBLY] = PACKAGE
    jsii_module.__jsii_assembly__ = jsii.JSIIAssembly(ASSEMBLY, version, PACKAGE, tarball.name)
    jsii_module.__all__ = ["__jsii_assembly__"]
    package._jsii = jsii_module
    package.__pipeline_lazy_tarball__ = tarball
    sys.modules[PACKAGE] = package
    sys.modules[jsii_module.__name__] = jsii_module
    return LoadedProvider("lazy", tarball)


def _install_full() -> LoadedProvider:
    importlib.import_module(PACKAGE)
    return LoadedProvider("full", None)


def ensure_loaded() -> LoadedProvider:
    """Make `cdktf_cdktf_provider_aws.<submodule>` importable; idempotent."""
    global _loaded
    if _loaded is not None:
        return _loaded
    existing = sys.modules.get(PACKAGE)
    if existing is not None:  # already imported: by us under another module name, or the stock way
        lazy = getattr(existing, "__pipeline_lazy_tarball__", None)
        _loaded = LoadedProvider("lazy", lazy) if lazy else LoadedProvider("full", None)
        return _loaded
    mode = os.environ.get(MODE_ENV, "lazy")
    if mode not in {"lazy", "full"}:
        raise ValueError(f"{MODE_ENV} must be 'lazy' or 'full', not {mode!r}")
    if mode == "full":
        _loaded = _install_full()
        return _loaded
    try:
        _loaded = _install_lazy()
    except (OSError, RuntimeError, tarfile.TarError) as error:
        logger.warning("lazy provider load failed (%s); using the stock import", error)
        sys.modules.pop(PACKAGE, None)
        sys.modules.pop(f"{PACKAGE}._jsii", None)
        _loaded = _install_full()
    return _loaded


def warm(timeout_s: float = 120.0) -> Path:
    """Build the lazy tarball and let the jsii kernel finish its type index.

    The kernel extracts a tarball once into its package cache and builds a type index
    in a worker thread; until the index exists every load parses the 200 MB assembly
    (about 1 s). A short synth can exit before the worker finishes, so `make setup`
    calls this once and waits for the index file to appear.
    """
    loaded = ensure_loaded()
    if loaded.tarball is None:
        raise RuntimeError("provider was imported the stock way; nothing to warm")
    _, version = _original_tarball()
    root = Path(os.environ.get("JSII_RUNTIME_PACKAGE_CACHE_ROOT") or Path.home() / ".cache/aws/jsii/package-cache")
    index = root / ASSEMBLY / version / _kernel_cache_key(loaded.tarball, version) / ".jsii.runtime-index.v1"
    deadline = time.monotonic() + timeout_s
    while not index.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"jsii type index not built within {timeout_s:.0f} s: {index}")
        time.sleep(0.2)
    return index
