"""Point Terraform at a local provider mirror, offline, without machine paths in the repo.

`python -m stacks.terraform_cli` prints the path of a Terraform CLI config to export as
TF_CLI_CONFIG_FILE. Resolution, first match wins:

1. TF_PROVIDER_MIRROR: a filesystem mirror directory (holding
   `registry.terraform.io/hashicorp/aws/<version>/...`); a config for it is written.
2. TF_CLI_CONFIG_FILE naming an existing file: used as it is.
3. A mirror found in Terraform's implied local mirror directories, or one level under
   /opt (where machine images stage plugins); a config for it is written.
4. None: a config without a mirror is written, and Terraform uses the registry.

The written config lives in `.gen/terraform/cli.tfrc` (git-ignored).

`automation_env()` is the one environment Terraform and the cdktf CLI run with, for AWS
(`make plan`) and for the local emulator (localdev adds its endpoint and keys). A leaf module:
standard library only, importing nothing of this repository, so both sides depend on it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"
AWS_PROVIDER_VERSION = "5.100.0"  # what cdktf-cdktf-provider-aws 20.1.0 was generated from
CONFIG_PATH = PROJECT_ROOT / ".gen" / "terraform" / "cli.tfrc"


def holds_provider(mirror: Path) -> bool:
    return (mirror / AWS_PROVIDER / AWS_PROVIDER_VERSION).is_dir()


def candidate_mirrors() -> list[Path]:
    home = Path.home()
    xdg = Path(os.environ.get("XDG_DATA_HOME", home / ".local" / "share"))
    implied = [
        home / ".terraform.d" / "plugins",
        xdg / "terraform" / "plugins",
        Path("/usr/local/share/terraform/plugins"),
        Path("/usr/share/terraform/plugins"),
    ]
    opt = Path("/opt")
    staged = sorted(p for p in opt.iterdir() if p.is_dir()) if opt.is_dir() else []
    return implied + staged


def render(mirror: Path | None) -> str:
    lines = ["# Written by stacks/terraform_cli.py; do not edit.", "disable_checkpoint = true", ""]
    if mirror is not None:
        lines += [
            "provider_installation {",
            "  filesystem_mirror {",
            f'    path    = "{mirror}"',
            f'    include = ["{AWS_PROVIDER}"]',
            "  }",
            "  direct {",
            f'    exclude = ["{AWS_PROVIDER}"]',
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def resolve() -> tuple[Path, str]:
    explicit = os.environ.get("TF_PROVIDER_MIRROR", "").strip()
    if explicit:
        mirror = Path(explicit)
        if not holds_provider(mirror):
            raise SystemExit(
                f"TF_PROVIDER_MIRROR={explicit} does not hold {AWS_PROVIDER} {AWS_PROVIDER_VERSION}"
            )
        return write(mirror), f"mirror from TF_PROVIDER_MIRROR: {mirror}"
    existing = os.environ.get("TF_CLI_CONFIG_FILE", "").strip()
    if existing and Path(existing).is_file() and Path(existing).resolve() != CONFIG_PATH.resolve():
        return Path(existing), f"existing TF_CLI_CONFIG_FILE: {existing}"
    for mirror in candidate_mirrors():
        if holds_provider(mirror):
            return write(mirror), f"mirror found at {mirror}"
    return write(None), "no local mirror found: Terraform will use the registry"


def write(mirror: Path | None) -> Path:
    CONFIG_PATH.parent.mkdir(parents=True, exist_ok=True)
    content = render(mirror)
    if not CONFIG_PATH.exists() or CONFIG_PATH.read_text() != content:
        CONFIG_PATH.write_text(content)
    return CONFIG_PATH


def automation_env(**extra: str) -> dict[str, str]:
    """This process's environment plus what every unattended Terraform run needs, plus `extra`."""
    cli_config, _ = resolve()
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(cli_config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1",
            "FORCE_COLOR": "0", "NO_COLOR": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", **extra}


def main() -> None:
    path, reason = resolve()
    print(reason, file=sys.stderr)
    print(path)


if __name__ == "__main__":
    main()
