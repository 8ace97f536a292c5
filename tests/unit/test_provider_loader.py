from __future__ import annotations

import sys

import pytest

from pipeline_lib import provider_loader


def test_eager_requires_become_lazy_getters() -> None:
    source = "\n".join(f'exports.res{i} = require("./res-{i}");' for i in range(150))
    rewritten = provider_loader.lazy_index(source)
    assert "require(" in rewritten and "exports.res0 =" not in rewritten
    assert ('Object.defineProperty(exports, "res0", { enumerable: true, configurable: true, '
            'get: () => require("./res-0") });') in rewritten


def test_an_index_of_unexpected_shape_is_refused() -> None:
    with pytest.raises(RuntimeError, match="unexpected shape"):
        provider_loader.lazy_index('module.exports = require("./bundle");')


def test_the_app_imports_only_the_submodules_it_uses() -> None:
    loaded = [m for m in sys.modules if m.startswith("cdktf_cdktf_provider_aws.")]
    assert provider_loader.ensure_loaded().mode == "lazy"
    assert 30 < len(loaded) < 200  # of ~2,100 submodules


def test_an_unknown_import_mode_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provider_loader, "_loaded", None)
    monkeypatch.setenv(provider_loader.MODE_ENV, "fast")
    monkeypatch.delitem(sys.modules, provider_loader.PACKAGE)
    try:
        with pytest.raises(ValueError, match="must be 'lazy' or 'full'"):
            provider_loader.ensure_loaded()
    finally:
        monkeypatch.undo()
