"""`python -m tools.plan_review` on real plans: the report, the exit status, acknowledgements,
redaction and bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.plan_review.scenarios import SECRET
from tools.plan_review import model
from tools.plan_review.__main__ import main


@pytest.fixture()
def files(plans: dict[str, model.StackPlan], tmp_path: Path) -> dict[str, Path]:
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


def test_one_report_holds_every_stack_and_fails_only_on_high_risk(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    none = acknowledgements(tmp_path, "")
    assert main([str(files["harmless"]), str(files["untagged"]), "--acknowledgements", str(none),
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("<!-- plan-review -->")
    assert "| stack | create | update | replace | delete | forget | no-op |" in text
    assert "| retail-harmless | 0 | 97 | 0 | 0 | 0 | 57 |" in text  # counts per stack
    assert "No high risk." in text
    assert "| medium | `tags-and-suffix` | retail-untagged | `aws_sns_topic.audit` |" in text  # the rule id to name
    assert main([str(files["harmless"]), str(files["rotation-90"]), "--acknowledgements", str(none),
                 "--out", str(out)]) == 1
    assert "**1 high risk not acknowledged**" in out.read_text()


def test_a_high_risk_acknowledged_in_the_file_passes_until_the_entry_expires(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    valid = acknowledgements(tmp_path, ROTATION_ACK.format(expires="2999-12-31"))
    assert main([str(files["rotation-90"]), "--acknowledgements", str(valid), "--out", str(out)]) == 0
    assert "HIGH (acknowledged)" in out.read_text() and "quarterly rotation agreed" in out.read_text()
    expired = acknowledgements(tmp_path, ROTATION_ACK.format(expires="2020-01-01"))
    assert main([str(files["rotation-90"]), "--acknowledgements", str(expired), "--out", str(out)]) == 1
    text = out.read_text()
    assert "Acknowledgements that expired and accept nothing any more" in text and "expired 2020-01-01" in text
    assert "matched nothing" not in text  # it matched; it is only out of date


def test_an_address_copied_from_the_report_acknowledges_that_resource_brackets_and_all(plans: dict[str, model.StackPlan],
                                                                                       tmp_path: Path) -> None:
    from tools.plan_review import acknowledge, rules

    risk = rules.assess(plans["rotation-90"])[0]
    indexed = rules.Risk(risk.severity, risk.rule, risk.stack, risk.address + "[1]", risk.reason)
    keyed = rules.Risk(risk.severity, risk.rule, risk.stack, risk.address + '["a"]', risk.reason)
    path = acknowledgements(tmp_path, ROTATION_ACK.format(expires="2999-12-31").replace(
        '"aws_secretsmanager_secret_rotation.*"', repr(indexed.address)))
    accepted = acknowledge.load(path)
    result = acknowledge.apply([indexed, keyed], accepted)
    assert result[0].acknowledged_by and not result[1].acknowledged_by
    assert acknowledge.glob(risk.address + "[1]", "aws_secretsmanager_secret_rotation.*")  # globs still work


def test_an_acknowledgement_covers_only_the_rule_and_resource_it_names(files: dict[str, Path], tmp_path: Path) -> None:
    valid = acknowledgements(tmp_path, ROTATION_ACK.format(expires="2999-12-31"))
    assert main([str(files["retention"]), "--acknowledgements", str(valid), "--out", str(tmp_path / "r.md")]) == 1


def test_the_pull_request_label_acknowledges_every_high_risk_and_says_by_whom(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    none = acknowledgements(tmp_path, "")
    assert main([str(files["retention"]), "--acknowledgements", str(none), "--out", str(out),
                 "--acknowledged-by", "label plan-risk-acknowledged added by @owner"]) == 0
    text = out.read_text()
    assert "High risks: 10, all acknowledged." in text  # a dev keeps backups a week whatever the archive keeps
    assert text.count("acknowledged: label plan-risk-acknowledged added by @owner") == 10  # one per high risk


def test_redacted_plans_keep_no_sensitive_value(files: dict[str, Path], tmp_path: Path) -> None:
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


def test_a_state_document_is_refused_and_the_report_left_as_it_was(state_document: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.md"
    out.write_text("previous report")
    assert main([str(state_document), "--out", str(out)]) == 2
    assert "a Terraform state" in capsys.readouterr().err and out.read_text() == "previous report"


def test_a_plan_format_of_another_major_version_is_refused(files: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(files["harmless"].read_text())
    document["format_version"] = "2.0"
    future = tmp_path / "retail-future.json"
    future.write_text(json.dumps(document))
    assert main([str(future), "--out", str(tmp_path / "r.md")]) == 2
    assert "JSON plan format 2.0" in capsys.readouterr().err and not (tmp_path / "r.md").exists()


def test_a_binary_plan_is_refused_with_the_command_that_makes_its_json(plans: dict[str, model.StackPlan], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    binary = plans["harmless"].source.with_suffix(".tfplan")
    assert binary.exists()
    assert main([str(binary), "--out", str(tmp_path / "r.md")]) == 2
    assert "terraform show -json retail-local.tfplan" in capsys.readouterr().err


def test_a_cut_comment_points_to_the_whole_report_which_is_written_uncut(files: dict[str, Path], tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.plan_review import report

    monkeypatch.setattr(report, "MAX_CHARS", 5_000)
    comment, whole = tmp_path / "comment.md", tmp_path / "report.md"
    none = acknowledgements(tmp_path, "")
    main([str(files["destroy"]), "--acknowledgements", str(none), "--out", str(comment), "--full-out", str(whole),
          "--full-report-name", "report.md in the plan-review artifact"])
    assert len(comment.read_text()) <= 5_000 < len(whole.read_text())
    assert comment.read_text().endswith("the full report is report.md in the plan-review artifact.*\n")
    assert "is cut here" not in whole.read_text() and whole.read_text().startswith(comment.read_text()[:4_000])


@pytest.mark.parametrize(("content", "message"), [
    ("[[acknowledge]]\nrule = 'rotation'\n", "lacks stack, address, reason, expires"),
    (ROTATION_ACK.format(expires="2999-12-31").replace('"rotation"', '"rotaton"'), "unknown rule 'rotaton'"),
    (ROTATION_ACK.format(expires='"soon"'), "must be a TOML date"),
    ("acknowledge = [", "not valid TOML"),
])
def test_a_malformed_acknowledgement_exits_2_naming_it(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       content: str, message: str) -> None:
    path = acknowledgements(tmp_path, content)
    assert main([str(files["harmless"]), "--acknowledgements", str(path), "--out", str(tmp_path / "r.md")]) == 2
    assert message in capsys.readouterr().err
