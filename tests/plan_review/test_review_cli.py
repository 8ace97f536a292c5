"""`python -m tools.plan_review` on real plans: the report, the exit status, acknowledgements,
redaction and bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.plan_review.scenarios import SECRET
from tools.plan_review.__main__ import main


@pytest.fixture()
def files(plans, tmp_path: Path) -> dict[str, Path]:  # noqa: ANN001
    """Each scenario's JSON plan, named like a stack so one report can hold several."""
    copied = {}
    for name, plan in plans.items():
        copied[name] = tmp_path / f"retail-{name}.json"
        shutil.copyfile(plan.source, copied[name])
    return copied


def acknowledgements(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "acks.toml"
    path.write_text(text)
    return path


ROTATION_ACK = """
[[acknowledge]]
rule = "rotation"
stack = "retail-*"
address = "aws_secretsmanager_secret_rotation.*"
reason = "quarterly rotation agreed with security for this test"
expires = {expires}
"""


def test_one_report_holds_every_stack_and_fails_only_on_high_risk(files, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "report.md"
    none = acknowledgements(tmp_path, "")
    assert main([str(files["harmless"]), str(files["untagged"]), "--acknowledgements", str(none),
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("<!-- plan-review -->")
    assert "| retail-harmless | 0 | 75 | 0 | 0 | 25 |" in text  # counts per stack
    assert "No high risk." in text and "| medium | retail-untagged | `aws_sns_topic.audit` |" in text
    assert main([str(files["harmless"]), str(files["rotation-90"]), "--acknowledgements", str(none),
                 "--out", str(out)]) == 1
    assert "**1 high risk not acknowledged**" in out.read_text()


def test_a_high_risk_acknowledged_in_the_file_passes_until_the_entry_expires(files, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "report.md"
    valid = acknowledgements(tmp_path, ROTATION_ACK.format(expires="2999-12-31"))
    assert main([str(files["rotation-90"]), "--acknowledgements", str(valid), "--out", str(out)]) == 0
    assert "HIGH (acknowledged)" in out.read_text() and "quarterly rotation agreed" in out.read_text()
    expired = acknowledgements(tmp_path, ROTATION_ACK.format(expires="2020-01-01"))
    assert main([str(files["rotation-90"]), "--acknowledgements", str(expired), "--out", str(out)]) == 1
    assert "Acknowledgements that matched nothing" in out.read_text()


def test_an_acknowledgement_covers_only_the_rule_and_resource_it_names(files, tmp_path: Path) -> None:  # noqa: ANN001
    valid = acknowledgements(tmp_path, ROTATION_ACK.format(expires="2999-12-31"))
    assert main([str(files["retention"]), "--acknowledgements", str(valid), "--out", str(tmp_path / "r.md")]) == 1


def test_the_pull_request_label_acknowledges_every_high_risk_and_says_by_whom(files, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "report.md"
    none = acknowledgements(tmp_path, "")
    assert main([str(files["retention"]), "--acknowledgements", str(none), "--out", str(out),
                 "--acknowledged-by", "label plan-risk-acknowledged added by @owner"]) == 0
    text = out.read_text()
    assert "High risks: 8, all acknowledged." in text  # a dev keeps backups a week whatever the archive keeps
    assert text.count("acknowledged: label plan-risk-acknowledged added by @owner") == 8  # one per high risk


def test_redacted_plans_keep_no_sensitive_value(files, tmp_path: Path) -> None:  # noqa: ANN001
    assert SECRET in files["unencrypted"].read_text()  # terraform show -json prints it in clear
    none = acknowledgements(tmp_path, "")
    main([str(files["unencrypted"]), "--acknowledgements", str(none), "--out", str(tmp_path / "r.md"),
          "--redact-to", str(tmp_path / "redacted")])
    redacted = (tmp_path / "redacted" / "retail-unencrypted.json").read_text()
    assert SECRET not in redacted and "(sensitive)" in redacted
    assert json.loads(redacted)["resource_changes"]  # still a plan


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "not JSON"),
    ('{"resource_changes": []}', "not a Terraform JSON plan"),
])
def test_a_file_that_is_not_a_plan_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               content: str, message: str) -> None:
    bad = tmp_path / "retail-x.json"
    bad.write_text(content)
    out = tmp_path / "report.md"
    out.write_text("previous report")
    assert main([str(bad), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert out.read_text() == "previous report"


@pytest.mark.parametrize(("content", "message"), [
    ("[[acknowledge]]\nrule = 'rotation'\n", "lacks stack, address, reason, expires"),
    (ROTATION_ACK.format(expires="2999-12-31").replace('"rotation"', '"rotaton"'), "unknown rule 'rotaton'"),
    (ROTATION_ACK.format(expires='"soon"'), "must be a TOML date"),
    ("acknowledge = [", "not valid TOML"),
])
def test_a_malformed_acknowledgement_exits_2_naming_it(files, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # noqa: ANN001
                                                       content: str, message: str) -> None:
    path = acknowledgements(tmp_path, content)
    assert main([str(files["harmless"]), "--acknowledgements", str(path), "--out", str(tmp_path / "r.md")]) == 2
    assert message in capsys.readouterr().err
