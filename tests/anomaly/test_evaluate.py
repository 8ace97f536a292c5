"""The evaluation harness on a small generated corpus: every detector scored, the project's ahead."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from processor.anomaly import evaluate, nab, skab, synthetic

ROOT = Path(__file__).resolve().parents[2]


Reported = tuple[evaluate.Report, synthetic.Corpus]  # the evaluation's report and the corpus it scored


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[evaluate.Report, synthetic.Corpus]:
    corpus = synthetic.write_corpus(tmp_path_factory.mktemp("corpus"), seed=31, count=12, days=5.0)
    return evaluate.evaluate(corpus), corpus


def test_the_project_detector_scores_above_every_baseline_on_every_nab_profile(report: Reported) -> None:
    result, _ = report
    assert {b.name for b in result.baselines()} >= {"static threshold", "windowed Gaussian, 1 h"}
    for profile in nab.PROFILES:
        ours = result.project().nab[profile.name].normalized
        best = max(b.nab[profile.name].normalized for b in result.baselines())
        assert ours > best, f"{profile.name}: {ours:.1f} vs {best:.1f}"
    assert evaluate.targets(result, min_rate=0.0) == []


def test_event_figures_count_what_the_labels_hold(report: Reported) -> None:
    result, corpus = report
    events = sum(len(v["events"]) for v in corpus.labels().values())
    assert sum(result.events_by_kind.values()) == events
    for stats in result.stats.values():
        assert stats.events == events
        assert 0 <= stats.detected <= events and 0 <= stats.false_alarms <= stats.alarms
        assert sum(hit for hit, _ in stats.recall_by_kind.values()) == stats.detected


def test_the_report_names_every_detector_profile_and_the_speed(report: Reported) -> None:
    result, corpus = report
    text = evaluate.render(result, corpus)
    for d in result.detections:
        assert d.name in text
    assert "standard" in text and "low FP" in text and "low FN" in text
    assert "readings/s, best of 3 passes" in text


def test_make_style_run_generates_the_corpus_scores_it_and_writes_json(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    result = subprocess.run([sys.executable, "-m", "processor.anomaly", "evaluate", str(tmp_path / "c"), "--seed", "4",
                             "--series", "4", "--days", "4", "--json", str(figures), "--min-rate", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "NAB score" in result.stdout
    assert (tmp_path / "c" / "labels.json").exists()
    body = json.loads(figures.read_text())
    assert set(body["nab"]) == {d for d in body["events"]}
    assert result.returncode == 0, result.stderr
    ours = body["nab"][evaluate.PROJECT]
    assert all(ours[p] > scores[p] for name, scores in body["nab"].items() if name not in (
        evaluate.DEPLOYED, evaluate.PROJECT) for p in scores)


def test_a_missed_target_is_named(report: Reported) -> None:
    result, _ = report
    misses = evaluate.targets(result, min_rate=1e12)
    assert len(misses) == 1 and "readings/s is under" in misses[0]


def test_on_real_data_a_single_series_score_not_above_the_windowed_gaussian_is_named(report: Reported) -> None:
    result, _ = report
    line = skab.OutlierScore(0.8, 0.1, 0.2)
    ours = skab.SkabResult(evaluate.INCIDENTS, {p.name: 50.0 for p in nab.PROFILES}, line, line)
    single = {evaluate.PROJECT: {"standard": 9.0}, "windowed Gaussian, 1 min": {"standard": 10.2},
              "windowed Gaussian, 10 min": {"standard": 2.7}}
    real = evaluate.RealReport([ours], 34, 37_401, result, {}, single, 0.35, 0.54)
    misses = evaluate.targets_real(real)
    assert any("one sensor at a time: NAB standard 9.0 is not above the windowed Gaussian's 10.2" in m for m in misses)
    real.single[evaluate.PROJECT]["standard"] = 11.2
    assert not any("one sensor at a time" in m for m in evaluate.targets_real(real))


def test_a_corpus_whose_labels_do_not_match_its_rows_is_refused_with_the_label_named(tmp_path: Path) -> None:
    corpus = synthetic.write_corpus(tmp_path, seed=3, count=1, days=3.0)
    labels = corpus.labels()
    (name, body), = labels.items()
    body["events"] = [{"kind": "spike", "timestamp": "1999-01-01T00:00:00Z"}]
    corpus.labels_path.write_text(json.dumps(labels))
    (tmp_path / "corpus.json").unlink()  # now a corpus of the user's own, used as it is
    result = subprocess.run([sys.executable, "-m", "processor.anomaly", "evaluate", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "1999-01-01T00:00:00Z" in result.stderr and f"a row of {name}.csv" in result.stderr


def test_on_real_data_the_f1_target_is_judged_on_the_rows_the_leaderboards_f1_is_of(report: Reported) -> None:
    result, corpus = report
    single = {evaluate.PROJECT: dict.fromkeys((p.name for p in nab.PROFILES), 12.0),
              "windowed Gaussian, 1 min": dict.fromkeys((p.name for p in nab.PROFILES), 10.2)}
    whole, test = skab.OutlierScore(0.77, 0.1, 0.26), skab.OutlierScore(0.79, 0.15, 0.27)
    ours = skab.SkabResult(evaluate.INCIDENTS, {p.name: 50.0 for p in nab.PROFILES}, whole, test)
    real = evaluate.RealReport([ours], 34, 37_401, result, {}, single, 0.35, 0.54)
    assert not any("F1" in m for m in evaluate.targets_real(real))
    real.skab[0] = skab.SkabResult(evaluate.INCIDENTS, ours.nab, test, whole)
    misses = evaluate.targets_real(real)
    assert any("F1 0.770 (each run after its first 400 rows, as the leaderboard's) is under 0.78" in m for m in misses)
    text = evaluate.render_real(real, corpus)
    assert "Conv-AE 0.784 there, 0.730 on all rows" in text


def test_every_cell_where_nabs_windowed_gaussian_is_not_beaten_is_named(report: Reported) -> None:
    result, _ = report
    line = skab.OutlierScore(0.8, 0.1, 0.2)
    profiles = [p.name for p in nab.PROFILES]
    ours = skab.SkabResult(evaluate.INCIDENTS, dict.fromkeys(profiles, 50.0), line, line)
    floor_line = skab.SkabResult(evaluate.NAB_GAUSSIAN, dict.fromkeys(profiles, -300.0), line, line)
    single = {evaluate.PROJECT: dict.fromkeys(profiles, 12.0), evaluate.NAB_GAUSSIAN: dict.fromkeys(profiles, 3.0),
              "windowed Gaussian, 1 min": dict.fromkeys(profiles, 10.2)}
    # GIVEN the classes' table with one cell where the detector is behind NAB's windowed Gaussian
    figures = {group: {evaluate.PROJECT: dict.fromkeys(profiles, 60.0), evaluate.NAB_GAUSSIAN: dict.fromkeys(profiles, 40.0)}
               for group in ("periodic", evaluate.ALL_CLASSES)}
    figures["periodic"][evaluate.PROJECT]["reward_low_FN_rate"] = 39.0
    classes_report = evaluate.ClassesReport(2, 8_000, {"spike": 2}, figures)
    real = evaluate.RealReport([ours, floor_line], 34, 37_401, result, {}, single, 0.35, 0.54, classes_report)
    misses = evaluate.targets_real(real, min_rate=0.0)
    # THEN exactly that cell is named, with both figures
    assert [m for m in misses if "windowed Gaussian" in m] == [
        "class periodic, NAB reward_low_FN_rate: 39.0 is not above NAB's windowed Gaussian (40.0)"]
    assert "all six together" in "\n".join(evaluate.render_classes(classes_report))


def test_the_paired_speed_benchmark_finds_the_tree_bit_identical_to_its_own_commit_and_prints_a_ratio_per_round(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from processor.anomaly import paired

    code = paired.main([str(tmp_path / "corpus"), "--against", "HEAD", "--rounds", "2", "--series", "2", "--days", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "against HEAD: bit-identical" in out
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("round ")] == ["round 1", "round 2"]
    assert "this tree's detector: " in out  # which detector ran (compiled or pure, and why) is said
    assert out.splitlines()[-1].startswith("median of 2 rounds:") and out.rstrip().endswith("x")
