"""policy/checkov_skips.toml as written: what loads, and what is refused with a clear error."""
from __future__ import annotations

from pathlib import Path

import pytest

from tools.checkov_run import Skip, SkipFileError, load_skips, skips_for

pytestmark = pytest.mark.checks

REASON = 'reason = "a reason long enough to say why"'


def _load(tmp_path: Path, text: str) -> list[Skip]:
    path = tmp_path / "checkov_skips.toml"
    path.write_text(text)
    return load_skips(path)


def test_a_skip_with_resources_loads_its_patterns(tmp_path: Path) -> None:
    skips = _load(tmp_path, f'[skip.CKV_AWS_18]\nscope = "all"\nresources = ["aws_s3_bucket.logs_*"]\n{REASON}\n')
    assert skips == [Skip("CKV_AWS_18", "all", "a reason long enough to say why", ("aws_s3_bucket.logs_*",))]


def test_a_check_may_have_several_resource_scoped_entries_each_applied_in_its_own_scope(tmp_path: Path) -> None:
    skips = _load(tmp_path, f'''
[[skip.CKV_AWS_18]]
scope = "all"
resources = ["aws_s3_bucket.a_*"]
{REASON}

[[skip.CKV_AWS_18]]
scope = "production"
resources = ["aws_s3_bucket.b_*"]
{REASON}
''')
    assert [s.resources for s in skips_for(production=True, skips=skips)] == [("aws_s3_bucket.a_*",), ("aws_s3_bucket.b_*",)]
    assert [s.resources for s in skips_for(production=False, skips=skips)] == [("aws_s3_bucket.a_*",)]


@pytest.mark.parametrize(("text", "message"), [
    (f'[skip.CKV_AWS_18]\nscope = "all"\nresource = ["aws_s3_bucket.logs_*"]\n{REASON}\n', r"unknown key\(s\) \['resource'\]"),
    (f'[skip.CKV_AWS_18]\nscope = "all"\nresources = []\n{REASON}\n', "resources must be a non-empty list"),
    (f'[skip.CKV_AWS_18]\nscope = "all"\nresources = "aws_s3_bucket.logs_*"\n{REASON}\n', "resources must be a non-empty list"),
    (f'[skip.CKV_AWS_18]\nscope = "all"\nresources = [""]\n{REASON}\n', "non-empty string"),
    (f'[skip.CKV_AWS_18]\nscope = "all"\nresources = ["a", "a"]\n{REASON}\n', "a pattern twice"),
    (f'[skip.CKV_AWS_18]\nscope = "prod"\n{REASON}\n', "scope is 'prod'"),
    ('[skip.CKV_AWS_18]\nscope = "all"\nreason = "  "\n', "needs a reason"),
    (f'[skips.CKV_AWS_18]\nscope = "all"\n{REASON}\n', r"unknown top-level key\(s\) \['skips'\]"),
    (f'[[skip.CKV_AWS_18]]\nscope = "all"\n{REASON}\n[[skip.CKV_AWS_18]]\nscope = "all"\nresources = ["a"]\n{REASON}\n',
     "each must name its resources"),
    ('[skip.CKV_AWS_18\nscope = "all"\n', "not valid TOML"),
], ids=["typo-d key", "empty resources", "resources not a list", "empty pattern", "duplicate pattern",
        "unknown scope", "blank reason", "typo-d top-level table", "whole-check entry beside another", "broken toml"])
def test_a_bad_skip_entry_is_refused_with_an_error_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SkipFileError, match=message):
        _load(tmp_path, text)
