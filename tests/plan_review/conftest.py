"""Real plans: the retail stack, changed, planned against what `make demo` deployed.

Each scenario builds the stack from a changed config (or with a change made in code),
synthesizes it into its own directory, and runs `terraform plan` (with refresh) against the
local emulator, on a copy of the deployed stack's state so nothing can touch the real one.
All scenarios are planned once per session, a few at a time.

Without a running local deployment these tests skip with one reason, except under CI=true,
where `.ci/run` deploys first and a missing deployment is an error.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from localdev.deploy import state_file, terraform_env
from localdev.session import Session, running_session
from stacks.config import SUPPLIERS_ENV, WorkloadConfig, build_config
from tests.helpers import skip_unless_available
from tools.plan import plan_stack
from tools.plan_review import model

NOT_DEPLOYED = "no local deployment running: `make demo` (or python -m localdev up) first"

ConfigChange = Callable[[WorkloadConfig], WorkloadConfig]
StackChange = Callable[[object], None]
StateChange = Callable[[dict], None]  # edits the copied state document (what AWS "was" before the plan)


@dataclasses.dataclass(frozen=True)
class Scenario:
    change_config: ConfigChange | None = None
    change_stack: StackChange | None = None
    change_state: StateChange | None = None
    destroy: bool = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_unless_available(items, Path(__file__).parent, running_session() is not None, NOT_DEPLOYED, fixture="deployed")


@pytest.fixture(scope="session")
def deployed() -> Session:
    session = running_session()
    if session is None:
        pytest.fail(f"CI=true and {NOT_DEPLOYED}")
    return session


def synthesize(session: Session, scenario: Scenario, outdir: Path) -> Path:
    from cdktf import App

    from stacks.workload_stack import WorkloadStack

    # the suppliers the local deployment was made with (SUPPLIERS), so their keys are not planned away
    previous = os.environ.get(SUPPLIERS_ENV)
    os.environ[SUPPLIERS_ENV] = session.suppliers
    try:
        config = build_config("retail", session.suffix, session.alert_subscriptions)
    finally:
        if previous is None:
            os.environ.pop(SUPPLIERS_ENV)
        else:
            os.environ[SUPPLIERS_ENV] = previous
    if scenario.change_config is not None:
        config = scenario.change_config(config)
    outdir.mkdir(parents=True, exist_ok=True)
    app = App(outdir=str(outdir))
    stack = WorkloadStack(app, config)
    if scenario.change_stack is not None:
        scenario.change_stack(stack)
    app.synth()
    return outdir / "stacks" / config.stack_id


def plan_scenarios(session: Session, scenarios: dict[str, Scenario], workdir: Path) -> dict[str, model.StackPlan]:
    env = terraform_env(session)
    jobs = {}
    for name, scenario in scenarios.items():
        stack_dir = synthesize(session, scenario, workdir / name / "out")
        state = workdir / name / "terraform.tfstate"
        shutil.copyfile(state_file(session, "retail"), state)
        if scenario.change_state is not None:
            document = json.loads(state.read_text())
            scenario.change_state(document)
            state.write_text(json.dumps(document))
        jobs[name] = (stack_dir, state)

    def run(name: str) -> model.StackPlan:
        stack_dir, state = jobs[name]
        planned = plan_stack(stack_dir, workdir / name / "plans", env, backend_config={"path": str(state)},
                             destroy=scenarios[name].destroy)
        return model.load(planned.json)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(jobs, pool.map(run, jobs), strict=True))


@pytest.fixture(scope="session")
def plans(deployed: Session, tmp_path_factory: pytest.TempPathFactory) -> dict[str, model.StackPlan]:
    """Every scenario of `scenarios.SCENARIOS`, planned once for the session."""
    from tests.plan_review.scenarios import SCENARIOS

    return plan_scenarios(deployed, SCENARIOS, tmp_path_factory.mktemp("plans"))


@pytest.fixture(scope="session")
def state_document(deployed: Session, plans: dict[str, model.StackPlan]) -> Path:
    """`terraform show -json` of the deployed retail state: a real document that is not a plan."""
    from tools.plan import terraform

    scenario_dir = plans["harmless"].source.parent.parent  # <workdir>/harmless: out/, plans/, terraform.tfstate
    stack_dir = scenario_dir / "out" / "stacks" / plans["harmless"].source.stem
    out = scenario_dir / "state.json"
    shown = terraform(["show", "-json", str(scenario_dir / "terraform.tfstate")], stack_dir,
                      terraform_env(deployed), scenario_dir / "state.log")
    assert shown.returncode == 0, shown.stderr
    out.write_text(shown.stdout)
    return out
