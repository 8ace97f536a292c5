"""Offline scoring of one sensor's series with the streaming detector itself.

Input CSV ``timestamp,value``; output ``timestamp,value,anomaly_score,label,incident`` for every
row: the score (a function of the reading's tail probability, detector.score_of), the alarm the
factory sink raises (``label``: score >= 0.5) and whether the sensor's latched incident is open
after the reading (``incident``), so that a CSV shows where incidents open and close.
Each row goes through the detector (`observe_at`: `observe` with the time in epoch seconds)
with the same configuration and the same `DetectorState` (and its JSON, with ``--state``)
as the factory processor uses per sensor.
A row timestamped before the one before it (a clock stepped back, a late reading) is
scored as the processor scores such a reading: as if it arrived right after the last one;
how many there were is said on stderr.
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from processor.anomaly.detector import CONFIG, DetectorConfig, DetectorState, observe_at


class InputError(ValueError):
    """The input is not a time-ordered `timestamp,value` CSV; says where."""


def parse_timestamp(text: str) -> datetime:
    ts = datetime.fromisoformat(text.strip())
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def read_series(lines: Iterable[str], out_of_order: list[int] | None = None,
                ) -> Iterator[tuple[int, str, str, datetime, float]]:
    """(line number, timestamp text, value text, timestamp, value) per data row, validated.
    The line numbers of rows earlier than the latest row before them go to `out_of_order`."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise InputError("line 1: the input is empty; expected a header 'timestamp,value'")
    if [h.strip().lower() for h in header[:2]] != ["timestamp", "value"]:
        raise InputError(f"line 1: expected a header 'timestamp,value', found {','.join(header)!r}")
    latest: datetime | None = None
    for row in reader:
        line = reader.line_num
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise InputError(f"line {line}: expected 'timestamp,value', found {','.join(row)!r}")
        ts_text, value_text = row[0], row[1]
        try:
            ts = parse_timestamp(ts_text)
        except ValueError:
            raise InputError(f"line {line}: {ts_text!r} is not an ISO 8601 / RFC 3339 timestamp") from None
        try:
            value = float(value_text)
        except ValueError:
            raise InputError(f"line {line}: value {value_text!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"line {line}: value {value_text!r} is not a finite number")
        if latest is not None and ts < latest:
            if out_of_order is not None:
                out_of_order.append(line)
        else:
            latest = ts
        yield line, ts_text, value_text, ts, value


def score_series(rows: Iterable[tuple[int, str, str, datetime, float]], state: DetectorState,
                 config: DetectorConfig = CONFIG) -> Iterator[tuple[str, str, float, int, int]]:
    """(timestamp text, value text, anomaly score, label, incident open) per row, folding each into `state`.

    A row's event id is its line number. A restored state skips the leading rows it has
    already seen (up to its last reading's time), as the processor never feeds a reading
    twice; every row after that is scored, whatever its timestamp.
    """
    resuming = state.count > 0
    for line, ts_text, value_text, ts, value in rows:
        event_id = f"{line:012d}"
        t = ts.timestamp()
        if resuming:
            if (t, event_id) <= (state.t, state.event_id):
                continue
            resuming = False
        verdict = observe_at(state, t, float(value), event_id, config)
        if verdict is None:
            continue
        score, anomalous, _, incident, _, _ = verdict
        yield ts_text, value_text, score, 1 if anomalous else 0, 1 if incident else 0


def score_file(source: Path, target: Path, state_path: Path | None = None) -> tuple[int, int, int]:
    """Score `source` into `target` (written whole or not at all); (rows, anomalies, rows out of order)."""
    state = DetectorState.from_json(state_path.read_text()) if state_path and state_path.exists() else DetectorState()
    partial = target.with_name(f".{target.name}.partial")
    rows = anomalies = 0
    late: list[int] = []
    try:
        # utf-8-sig: a byte-order mark (a spreadsheet's "CSV UTF-8") is read past, not taken for the header
        with source.open(newline="", encoding="utf-8-sig") as src, partial.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(("timestamp", "value", "anomaly_score", "label", "incident"))
            for ts_text, value_text, score, label, incident in score_series(read_series(src, late), state):
                writer.writerow((ts_text, value_text, f"{score:.6f}", label, incident))
                rows += 1
                anomalies += label
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if state_path is not None:
        state_path.write_text(state.to_json())
    return rows, anomalies, len(late)
