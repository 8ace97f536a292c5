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


def build_stage(dockerfile: str) -> str:
    """The Dockerfile's detector-build stage, up to the next FROM."""
    return dockerfile.split(" AS detector-build")[1].split("\nFROM ")[0]


def test_image_compiles_the_detector_with_the_locked_mypy_in_a_builder_stage_and_the_runtime_stays_slim() -> None:
    dockerfile = (PROCESSOR / "Dockerfile").read_text()
    lock = json.loads((PROCESSOR.parent / "Pipfile.lock").read_text())
    stage = build_stage(dockerfile)
    # the compiler comes with the builder's full Python image, at the lock file's mypy and msgspec
    assert f"mypy{lock['develop']['mypy']['version']}" in stage
    assert f"msgspec{lock['default']['msgspec']['version']}" in stage
    assert "python -m processor.anomaly.build --stamp" in stage and "test -f" in stage  # no build, no image
    # the runtime stage is the slim image; it drops any build from the context and takes the builder's
    runtime = dockerfile.split("\nFROM ")[-1]
    assert runtime.startswith("python:3.11-slim")
    assert "/app/processor/anomaly/_compiled" in runtime.split("COPY --from=detector-build")[0]
    assert "COPY --from=detector-build /build/processor/anomaly/_compiled/ /app/processor/anomaly/_compiled/" in runtime
    assert "gcc" not in runtime and "apt-get" not in runtime
