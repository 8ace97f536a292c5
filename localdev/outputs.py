"""`cfn-outputs/flat-outputs.json`: both stacks' outputs in one flat object.

Keys are `<workload>_<output>` (`retail_stream_name`, `factory_db_secret_arn`, ...) plus
`<workload>_stack_id`, so the integration tests read the same keys whatever the suffix.
Every value is a string, as in CloudFormation's flat outputs, which the integration tests were
written against: a list is joined with commas (`subnet-a,subnet-b`), a number is its decimal
text, a boolean `true` or `false`.
`python -m localdev.outputs CDKTF_OUTPUTS.json` flattens what `cdktf deploy --outputs-file`
(or `cdktf output --outputs-file`) wrote, for a real AWS deployment too.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from stacks.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
FLAT_OUTPUTS = ROOT / "cfn-outputs" / "flat-outputs.json"


def key(workload: str, output: str) -> str:
    return f"{workload}_{output}"


def flatten(by_stack: dict[str, dict[str, object]]) -> dict[str, str]:
    """`{"retail-dev": {"stream_name": ...}, ...}` → `{"retail_stream_name": ..., "retail_stack_id": "retail-dev"}`."""
    flat: dict[str, str] = {}
    for stack_id, outputs in sorted(by_stack.items()):
        workload = stack_id.split("-", 1)[0]
        if workload not in WORKLOADS or not isinstance(outputs, dict):
            raise ValueError(f"{stack_id!r} is not one of this project's stacks (<workload>-<suffix>)")
        if key(workload, "stack_id") in flat:
            raise ValueError(f"two {workload} stacks in one outputs file: keep one suffix per file")
        flat[key(workload, "stack_id")] = stack_id
        for name, value in outputs.items():
            flat[key(workload, name)] = as_string(value)
    return flat


def as_string(value: object) -> str:
    """One output as CloudFormation would flatten it: a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(as_string(item) for item in value)
    if isinstance(value, dict):
        raise ValueError(f"an output that is a map ({sorted(value)}) has no flat form: output its fields one by one")
    return "" if value is None else str(value)


def write(by_stack: dict[str, dict[str, object]], path: Path = FLAT_OUTPUTS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(flatten(by_stack), indent=2, sort_keys=True) + "\n")
    return path


def update(values: dict[str, str], path: Path = FLAT_OUTPUTS) -> Path:
    """Set some outputs in the written file (a local deployment's own URLs)."""
    outputs = read(path)
    outputs.update(values)
    path.write_text(json.dumps(outputs, indent=2, sort_keys=True) + "\n")
    return path


def read(path: Path = FLAT_OUTPUTS) -> dict[str, object]:
    return json.loads(path.read_text())


def remove(path: Path = FLAT_OUTPUTS) -> None:
    path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m localdev.outputs CDKTF_OUTPUTS.json", file=sys.stderr)
        return 2
    try:
        written = write(json.loads(Path(args[0]).read_text()))
    except (OSError, ValueError) as error:
        print(f"outputs: {error}", file=sys.stderr)
        return 2
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
