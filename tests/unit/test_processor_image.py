"""The image the task definition runs matches what the task definition assumes."""
from __future__ import annotations

import json
from pathlib import Path

from pipeline_lib.processor_service import CONTAINER_USER

PROCESSOR = Path(__file__).resolve().parents[2] / "processor"


def test_image_runs_as_the_non_root_user_the_task_definition_names() -> None:
    dockerfile = (PROCESSOR / "Dockerfile").read_text()
    assert f"USER {CONTAINER_USER}" in dockerfile
    assert 'ENTRYPOINT ["python", "-m", "processor"]' in dockerfile


def test_image_ships_the_rds_ca_bundle_the_processor_verifies_against() -> None:
    assert "certs/rds-global-bundle.pem" in (PROCESSOR / "Dockerfile").read_text()


def test_image_requirements_match_the_lock_file() -> None:
    locked = json.loads((PROCESSOR.parent / "Pipfile.lock").read_text())["default"]
    for line in (PROCESSOR / "requirements.txt").read_text().split():
        name, version = line.split("==")
        assert locked[name]["version"] == f"=={version}", name
