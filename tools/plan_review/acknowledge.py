"""Which high risks a reviewer has accepted.

Two ways, both visible in the pull request:

* an entry in `policy/plan_acknowledgements.toml` (committed with the change), naming the
  rule, the stack and the resource address (a glob), with a reason and an expiry date, so an
  acknowledgement cannot outlive the change it was written for;
* `--acknowledged-by TEXT` on the command line, which the pull-request workflow passes when
  a maintainer has put the `plan-risk-acknowledged` label on the pull request. It accepts every
  high risk of that run and the report says by whom.
"""
from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path

from tools.plan_review.rules import HIGH, RISK_RULES, Risk

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "policy" / "plan_acknowledgements.toml"


class AcknowledgementError(Exception):
    """The acknowledgements file is malformed; the message names the entry."""


@dataclass(frozen=True)
class Acknowledgement:
    rule: str
    stack: str
    address: str
    reason: str
    expires: dt.date
    source: str  # the file it came from

    def matches(self, risk: Risk) -> bool:
        """Names this risk (expired or not)."""
        return self.rule == risk.rule and glob(risk.stack, self.stack) and glob(risk.address, self.address)

    def covers(self, risk: Risk, today: dt.date) -> bool:
        return today <= self.expires and self.matches(risk)


def glob(text: str, pattern: str) -> bool:
    """`*` and `?` are wildcards; everything else is literal, so an address copied from the report
    (`aws_subnet.private[1]`, `aws_x.y["a"]`) matches itself: brackets are not a character class."""
    return text == pattern or fnmatchcase(text, pattern.replace("[", "[[]"))


def load(path: Path) -> list[Acknowledgement]:
    if not path.exists():
        return []
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise AcknowledgementError(f"{path}: not valid TOML: {error}") from error
    entries = document.get("acknowledge", [])
    if not isinstance(entries, list):
        raise AcknowledgementError(f"{path}: `acknowledge` must be an array of tables ([[acknowledge]])")
    found = []
    for index, entry in enumerate(entries, start=1):
        where = f"{path}: acknowledgement #{index}"
        if not isinstance(entry, dict):
            raise AcknowledgementError(f"{where} is not a table")
        missing = [key for key in ("rule", "stack", "address", "reason", "expires") if not entry.get(key)]
        if missing:
            raise AcknowledgementError(f"{where} lacks {', '.join(missing)}")
        if entry["rule"] not in RISK_RULES:
            raise AcknowledgementError(f"{where}: unknown rule {entry['rule']!r}; one of {', '.join(sorted(RISK_RULES))}")
        expires = entry["expires"]
        if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
            raise AcknowledgementError(f"{where}: `expires` must be a TOML date (2026-12-31), not {expires!r}")
        found.append(Acknowledgement(str(entry["rule"]), str(entry["stack"]), str(entry["address"]),
                                     str(entry["reason"]), expires, path.name))
    return found


def apply(risks: list[Risk], acknowledgements: list[Acknowledgement], acknowledged_by: str = "",
          today: dt.date | None = None) -> list[Risk]:
    """The risks with `acknowledged_by` filled in where an acknowledgement covers a high one."""
    today = today or dt.date.today()
    result = []
    for risk in risks:
        if risk.severity == HIGH:
            entry = next((a for a in acknowledgements if a.covers(risk, today)), None)
            if entry is not None:
                risk = replace(risk, acknowledged_by=f"{entry.source}: {entry.reason} (until {entry.expires})")
            elif acknowledged_by:
                risk = replace(risk, acknowledged_by=acknowledged_by)
        result.append(risk)
    return result


def unused(risks: list[Risk], acknowledgements: list[Acknowledgement], today: dt.date | None = None
           ) -> list[Acknowledgement]:
    """Entries that are in force but matched nothing: candidates for removal."""
    today = today or dt.date.today()
    return [a for a in acknowledgements if today <= a.expires and not any(a.matches(r) for r in risks)]


def expired(acknowledgements: list[Acknowledgement], today: dt.date | None = None) -> list[Acknowledgement]:
    """Entries past their date: they accept nothing any more (renew them with a new reason, or remove them)."""
    today = today or dt.date.today()
    return [a for a in acknowledgements if a.expires < today]
