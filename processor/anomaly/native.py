"""Which detector runs: mypyc's compiled copy of detector.py, only when it was built from this very source.

`python -m processor.anomaly.build` compiles a copy of ``detector.py`` under another name
(``processor.anomaly._compiled.detector_compiled``, in a git-ignored folder) and writes into that copy the
SHA-256 of the source it was made from (``COMPILED_FROM``). Importing ``processor.anomaly`` calls `install`:
when the compiled module imports and its ``COMPILED_FROM`` is the hash of today's ``detector.py``, it is
registered as ``processor.anomaly.detector``, so every ``from processor.anomaly.detector import ...`` gets
it; otherwise nothing is registered and ``detector.py`` itself is imported as usual. A build left over from
an older ``detector.py`` (a stale ``.so``), one for another machine or Python, or none at all therefore
never runs: the pure detector does, and `implementation` says which one runs and why.

``ANOMALY_DETECTOR=pure`` in the environment keeps the pure detector whatever is built.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

PACKAGE = "processor.anomaly"
SOURCE = Path(__file__).with_name("detector.py")
COMPILED_DIR = Path(__file__).with_name("_compiled")  # git-ignored: the build's output
COMPILED = f"{PACKAGE}._compiled.detector_compiled"
PUBLIC = f"{PACKAGE}.detector"
PURE_ALIAS = f"{PACKAGE}.detector_pure"  # detector.py, when the compiled module holds the public name


@dataclass(frozen=True)
class Implementation:
    name: str  # "compiled" or "pure"
    why: str  # for a person: what was found

    def describe(self) -> str:
        return f"{self.name} ({self.why})"


def source_hash(text: bytes | None = None) -> str:
    """SHA-256 of detector.py (or of `text`), as the build records it."""
    return hashlib.sha256(SOURCE.read_bytes() if text is None else text).hexdigest()


def compiled_module(expected: str | None = None) -> tuple[ModuleType | None, str]:
    """The compiled detector if it imports and was built from the source whose hash is `expected`
    (default: today's detector.py), else None; and what was found."""
    expected = source_hash() if expected is None else expected
    try:
        module = importlib.import_module(COMPILED)
    except ImportError as error:
        return None, f"no compiled detector for this Python ({error.__class__.__name__}: {error}); " \
                     f"build it with python -m {PACKAGE}.build"
    built_from = getattr(module, "COMPILED_FROM", None)
    if built_from != expected:
        return None, (f"the compiled detector is stale: built from detector.py {str(built_from)[:12]}, "
                      f"the source is now {expected[:12]}; rebuild with python -m {PACKAGE}.build")
    return module, f"mypyc build of detector.py {expected[:12]}"


_chosen = Implementation("pure", "processor.anomaly not yet imported")


def install() -> Implementation:
    """Register the compiled detector as processor.anomaly.detector when it is current (see the module doc)."""
    global _chosen
    if os.environ.get("ANOMALY_DETECTOR", "").lower() == "pure":
        _chosen = Implementation("pure", "ANOMALY_DETECTOR=pure")
        return _chosen
    if PUBLIC in sys.modules:  # already imported (pure): never swap a module under running code
        module = sys.modules[PUBLIC]
        _chosen = Implementation("compiled" if module.__name__ == COMPILED else "pure", "imported before install")
        return _chosen
    module, why = compiled_module()
    if module is None:
        _chosen = Implementation("pure", why)
        return _chosen
    sys.modules[PUBLIC] = module
    sys.modules[PACKAGE].detector = module
    _chosen = Implementation("compiled", why)
    return _chosen


def implementation() -> Implementation:
    """Which detector ``processor.anomaly.detector`` is, and why."""
    return _chosen


def pure_module() -> ModuleType:
    """detector.py as Python runs it, whichever implementation holds the public name."""
    public = importlib.import_module(PUBLIC)
    if public.__name__ == PUBLIC:
        return public
    if PURE_ALIAS not in sys.modules:
        spec = importlib.util.spec_from_file_location(PURE_ALIAS, SOURCE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[PURE_ALIAS] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[PURE_ALIAS]


def implementations() -> dict[str, ModuleType | None]:
    """{"pure": detector.py, "compiled": the current compiled build or None}: for tests that hold both."""
    module, _ = compiled_module()
    return {"pure": pure_module(), "compiled": module}
