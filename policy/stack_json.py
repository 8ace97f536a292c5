"""Read access to one synthesized stack (`cdk.tf.json`)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_REFERENCE = re.compile(r"\$\{(?:data\.)?(aws_[a-z0-9_]+)\.")


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    config: dict[str, Any]

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    @property
    def path(self) -> str:
        """The construct path (`retail-dev/stream/stream`), stable and readable."""
        return self.config.get("//", {}).get("metadata", {}).get("path", self.address)


@dataclass(frozen=True)
class StackJson:
    stack_id: str
    document: dict[str, Any] = field(repr=False)

    @classmethod
    def load(cls, path: Path) -> StackJson:
        return cls(path.parent.name, json.loads(path.read_text()))

    @property
    def workload(self) -> str:
        return self.stack_id.split("-", 1)[0]

    @property
    def suffix(self) -> str:
        return self.stack_id.split("-", 1)[1]

    def resources(self, type_: str | None = None) -> Iterator[Resource]:
        for rtype, instances in sorted(self.document.get("resource", {}).items()):
            if type_ is None or rtype == type_:
                for name, config in sorted(instances.items()):
                    yield Resource(rtype, name, config)

    def data_sources(self, type_: str | None = None) -> Iterator[Resource]:
        for rtype, instances in sorted(self.document.get("data", {}).items()):
            if type_ is None or rtype == type_:
                for name, config in sorted(instances.items()):
                    yield Resource(rtype, name, config)

    def by_reference(self, reference: str) -> Resource | None:
        """The resource a `${aws_x.name.attr}` token points at."""
        match = re.search(r"\$\{(aws_[a-z0-9_]+)\.([^.}]+)", reference or "")
        if not match:
            return None
        config = self.document.get("resource", {}).get(match.group(1), {}).get(match.group(2))
        return Resource(match.group(1), match.group(2), config) if config is not None else None

    @property
    def provider(self) -> dict[str, Any]:
        return self.document.get("provider", {}).get("aws", [{}])[0]

    @property
    def outputs(self) -> dict[str, Any]:
        return self.document.get("output", {})


def references(value: Any, type_: str) -> bool:
    """True when `value` is (or contains) a Terraform reference to a resource of `type_`."""
    return isinstance(value, str) and type_ in _REFERENCE.findall(value)


def load_app(outdir: Path) -> list[StackJson]:
    stacks = sorted((outdir / "stacks").glob("*/cdk.tf.json"))
    if not stacks:
        raise FileNotFoundError(f"no synthesized stacks under {outdir}/stacks; run the synth first")
    return [StackJson.load(path) for path in stacks]
