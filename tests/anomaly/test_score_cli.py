"""python -m processor.anomaly score: the processor's detector over a CSV, and bad input refused."""
from __future__ import annotations

import csv
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from processor.anomaly.detector import DetectorState, observe
from processor.anomaly.score import parse_timestamp
from tests.anomaly.conftest import series

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "processor.anomaly", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def write(path: Path, rows: list[tuple[str, float]], header: str = "timestamp,value") -> Path:
    path.write_text(header + "\n" + "".join(f"{ts},{v}\n" for ts, v in rows))
    return path


def read(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture()
def spiked(tmp_path: Path) -> tuple[Path, int]:
    s = series(12, "spike", days=4.0)
    return write(tmp_path / "in.csv", s.rows), s.events[0].index


def test_every_row_gets_a_score_in_the_unit_interval_and_the_spike_is_labelled(spiked: tuple[Path, int], tmp_path: Path) -> None:
    source, spike_row = spiked
    result = run("score", source, tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    rows = read(tmp_path / "out.csv")
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label", "incident"]
    assert [(r["timestamp"], r["value"]) for r in rows] == [tuple(r) for r in csv.reader(source.open())][1:]
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)
    assert rows[spike_row]["label"] == "1"
    assert {r["label"] for r in rows} == {"0", "1"}
    assert "anomalies" in result.stderr


def test_scoring_in_two_parts_through_the_saved_state_equals_scoring_at_once(spiked: tuple[Path, int], tmp_path: Path) -> None:
    source, _ = spiked
    lines = source.read_text().splitlines(keepends=True)
    half = len(lines) // 2
    (tmp_path / "a.csv").write_text("".join(lines[:half]))
    (tmp_path / "b.csv").write_text(lines[0] + "".join(lines[half:]))
    state = tmp_path / "state.json"
    for part in ("a", "b"):
        assert run("score", tmp_path / f"{part}.csv", tmp_path / f"{part}.out", "--state", state).returncode == 0
    assert run("score", source, tmp_path / "whole.out").returncode == 0
    parts = read(tmp_path / "a.out") + read(tmp_path / "b.out")
    assert [(r["anomaly_score"], r["label"]) for r in parts] == [
        (r["anomaly_score"], r["label"]) for r in read(tmp_path / "whole.out")]


def test_a_clock_stepped_back_an_hour_is_scored_through_as_the_processor_scores_it_and_counted(tmp_path: Path) -> None:
    s = series(12, "spike", days=4.0)
    # GIVEN a plant clock that steps back an hour once (and a reading repeated at the step)
    step = 3000
    rows = s.rows[:step] + [s.rows[step - 1]] + [
        ((parse_timestamp(ts) - timedelta(hours=1)).isoformat().replace("+00:00", "Z"), v) for ts, v in s.rows[step:]]
    source = write(tmp_path / "in.csv", rows)
    result = run("score", source, tmp_path / "out.csv")
    # THEN nothing is refused: every row is scored, and stderr says how many were out of order
    assert result.returncode == 0, result.stderr
    out = read(tmp_path / "out.csv")
    assert [(r["timestamp"], r["value"]) for r in out] == [(ts, str(v)) for ts, v in rows]
    times = [parse_timestamp(ts) for ts, _ in rows]
    late = sum(1 for i in range(1, len(times)) if times[i] < max(times[:i]))
    assert 50 < late <= 60  # the hour replayed (a minute apart, less the network's gaps)
    assert f"{late} readings were timestamped before" in result.stderr
    # AND each row got what the processor's detector gives that reading in that order
    state = DetectorState()
    expected = [observe(state, parse_timestamp(ts), v, f"{line:012d}") for line, (ts, v) in enumerate(rows, start=2)]
    assert [float(r["anomaly_score"]) for r in out] == pytest.approx([e.score for e in expected], abs=1e-6)
    assert max(float(r["anomaly_score"]) for r in out[step:step + 120]) < 0.5


def test_a_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_and_crlf_line_ends_is_scored_as_plain_csv(
        spiked: tuple[Path, int], tmp_path: Path) -> None:
    source, _ = spiked
    saved = tmp_path / "saved.csv"
    saved.write_bytes(b"\xef\xbb\xbf" + source.read_bytes().replace(b"\n", b"\r\n"))
    assert run("score", source, tmp_path / "plain.out").returncode == 0
    result = run("score", saved, tmp_path / "saved.out")
    assert result.returncode == 0, result.stderr
    assert read(tmp_path / "saved.out") == read(tmp_path / "plain.out")


@pytest.mark.parametrize(("content", "message"), [
    ("", "line 1: the input is empty"),
    ("time,reading\n2026-01-01T00:00:00Z,1\n", "line 1: expected a header 'timestamp,value'"),
    ("timestamp,value\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z,warm\n", "line 3: value 'warm' is not a number"),
    ("timestamp,value\nyesterday,1\n", "line 2: 'yesterday' is not an ISO 8601"),
    ("timestamp,value\n2026-01-01T00:00:00Z,nan\n", "line 2: value 'nan' is not a finite number"),
    ("timestamp,value\n2026-01-01T00:00:00Z\n", "line 2: expected 'timestamp,value'"),
])
def test_bad_input_exits_2_with_the_line_at_fault_and_leaves_the_previous_output_alone(
        tmp_path: Path, content: str, message: str) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(content)
    target.write_text("previous results\n")
    result = run("score", source, target)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert target.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_scoring_a_file_onto_itself_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", [("2026-01-01T00:00:00Z", 1.0)])
    same = run("score", source, source)
    assert same.returncode == 2 and "OUTPUT must differ from INPUT" in same.stderr
    assert source.read_text().startswith("timestamp,value")
    missing = run("score", tmp_path / "nope.csv", tmp_path / "out.csv")
    assert missing.returncode == 2 and "is not a file" in missing.stderr
