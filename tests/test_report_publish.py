"""Compact published records (report/publish.py): no paths, outcomes as bits, results.csv, found by
skip_completed, and enough for the report and docs/study.md to be rebuilt from them alone."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from imdb_lm.errors import UserError
from imdb_lm.report import analyze, outcomes, write_report
from imdb_lm.report.publish import ABSOLUTE_PATH, COLUMNS, publish, strip_paths
from imdb_lm.runs import jobs
from imdb_lm.runs.key import RESULTS_VERSION, config_key
from imdb_lm.runs.records import new_record, write_metrics, write_predictions
from tests.study_records import correct_at, write_run, write_study

ROOT = Path(__file__).resolve().parents[1]


def run_publish(*dirs: Path, out: Path) -> dict:
    return publish(OmegaConf.create({"dirs": [str(d) for d in dirs], "out": str(out)}))


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    base = tmp_path_factory.mktemp("publish")
    runs = write_study(base / "outputs")
    out = base / "docs" / "study"
    run_publish(runs, out=out)
    return base, runs, out


def test_compact_records_hold_no_paths_and_outcomes_as_bits(published):
    base, runs, out = published
    records = sorted(out.glob("runs/*/metrics.json"))
    assert len(records) == len(list(runs.glob("*/metrics.json"))) == 28
    for path in records:
        text = path.read_text()
        assert str(base) not in text and not ABSOLUTE_PATH.search(text), path
        record = json.loads(text)
        assert "run_dir" not in record and "paths" not in record["config"]
        original = outcomes.run_outcomes(runs / record["config_key"].removeprefix("key-"))
        stored = outcomes.decode(record["outcomes"]["test"])
        assert stored.digest == original.digest and stored.count == 200
        assert np.array_equal(stored.correct, original.correct) and np.array_equal(stored.labels, original.labels)
        ood = outcomes.run_outcomes(runs / record["config_key"].removeprefix("key-"), evaluation="rotten_tomatoes")
        if ood is None:
            assert "rotten_tomatoes" not in record["outcomes"]
        else:  # out-of-domain outcomes travel with the record too
            stored = outcomes.decode(record["outcomes"]["rotten_tomatoes"])
            assert stored.count == 100 and np.array_equal(stored.correct, ood.correct)
    assert not list(out.rglob("*predictions.csv"))


def test_results_csv_has_one_row_per_run_with_the_study_columns(published):
    _, _, out = published
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == COLUMNS and len(rows) == 28
    row = next(r for r in rows if r["config_key"] == "key-seed-trf-1")
    assert (row["model"], row["optimizer"], row["batch_size"], row["seed"], row["train_reviews"], row["stage"],
            row["status"]) == ("transformer", "adamw", "16", "1", "20000", "seed", "completed")
    assert (float(row["val_acc"]), float(row["test_acc"]), float(row["ood_acc"]), float(row["train_seconds"])) == (
        0.9, 0.85, 0.8, 1000.0)
    assert row["record"] == "runs/transformer-key-seed-trf-1"
    assert next(r for r in rows if r["config_key"] == "key-grid-gru-adam-16")["ood_acc"] == ""


def test_the_report_from_compact_records_equals_the_report_from_the_runs(published, tmp_path):
    base, runs, out = published
    original = write_report(analyze([runs], resamples=500), tmp_path / "a")["markdown"].read_text()
    rebuilt = write_report(analyze([out], resamples=500), tmp_path / "b")["markdown"].read_text()
    assert original.split("## Findings", 1)[1] == rebuilt.split("## Findings", 1)[1]


def test_study_md_is_regenerated_from_the_records_alone(published, tmp_path, monkeypatch):
    """docs/study.md from a set of compact records, as documented (relative paths from the repo root);
    a fresh copy of docs/ elsewhere regenerates the same tables."""
    _, _, out = published
    texts = []
    for name in ("first", "second"):
        shutil.copytree(out.parent, tmp_path / name / "docs")
        monkeypatch.chdir(tmp_path / name)
        write_report(analyze(["docs/study"], resamples=500), "docs/study/report", markdown="docs/study.md")
        texts.append((tmp_path / name / "docs" / "study.md").read_text())
    assert tables(texts[0]) == tables(texts[1]) and len(tables(texts[0])) > 40
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", texts[0])
    assert "study/report/figures/efficiency.png" in links
    assert all((tmp_path / "first" / "docs" / link).is_file() for link in links)
    assert str(tmp_path) not in texts[0] and "from docs/study;" in texts[0]


def tables(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


def test_committed_study_md_matches_its_committed_records(tmp_path):
    """The published study: docs/study.md's tables are what the records in docs/study/ give."""
    if not (ROOT / "docs" / "study.md").is_file() or not (ROOT / "docs" / "study" / "runs").is_dir():
        pytest.skip("no study published in docs/study yet")
    rebuilt = write_report(analyze([ROOT / "docs" / "study"]), tmp_path / "report")["markdown"].read_text()
    assert tables(rebuilt) == tables((ROOT / "docs" / "study.md").read_text())


def test_skip_completed_finds_and_reuses_a_compact_record(tmp_path):
    """The compact record is a run's metrics.json: a study continues from the repo."""
    cfg = OmegaConf.create({"seed": 7, "data": {"train_limit": 100}, "paths": {"run_dir": str(tmp_path / "new")},
                            "results_dirs": [str(tmp_path / "docs" / "study")]})
    source = tmp_path / "old" / "run"
    source.mkdir(parents=True)
    record = new_record(cfg, "completed", {"model": "gru", "family": "recurrent"},
                        splits={"test": {"count": 200, "digest": "t"}}, metrics={"best_val_acc": 0.8, "test": {}},
                        timing={}, env={})
    assert record["config_key"] == config_key(cfg) and record["results_version"] == RESULTS_VERSION
    write_metrics(source, {**record, "model": {"name": "gru", "family": "recurrent"}})
    write_predictions(source, [f"h{i:03d}" for i in range(200)], [1] * 200, [0.9] * 150 + [0.1] * 50)
    run_publish(source.parent, out=tmp_path / "docs" / "study")
    found = jobs.find_finished(cfg)
    assert found is not None and found["run_dir"].startswith(str(tmp_path / "docs" / "study" / "runs"))
    assert jobs.reuse(found, cfg) == 0.8
    reused = outcomes.run_outcomes(tmp_path / "new")  # the bits travel with the reused record
    assert reused.count == 200 and reused.correct.sum() == 150


def test_size_per_record_on_a_full_test_split(tmp_path):
    """A full-split record (2,500 test reviews, 5 epochs of history) stays far below 8 MB / 250 runs."""
    hashes = [f"{i:020x}" for i in range(2500)]
    labels = (np.arange(2500) % 2).tolist()
    run_dir = write_run(tmp_path / "runs", "full", model="bigru", family="recurrent", val_acc=0.88,
                        correct=correct_at(0.5), ood_acc=0.7)
    write_predictions(run_dir, hashes, labels, np.random.default_rng(0).random(2500).tolist())
    record = json.loads((run_dir / "metrics.json").read_text())
    record["history"] = [{"epoch": e, "val_acc": 0.8, "val_loss": 0.4, "train_loss": 0.3, "lr": 1e-3}
                         for e in range(5)]
    record["config"] = {**record["config"], "padding": "x" * 3500}  # a resolved training config's size
    record.pop("schema_version")
    write_metrics(run_dir, record)
    run_publish(tmp_path / "runs", out=tmp_path / "study")
    size = sum(p.stat().st_size for p in (tmp_path / "study" / "runs").rglob("*") if p.is_file())
    assert size < 8_000_000 / 250 / 3  # 10.7 kB: a third of the budget per run
    assert outcomes.run_outcomes(next((tmp_path / "study" / "runs").iterdir())).count == 2500


def test_bad_input_is_one_line_and_writes_nothing(published, tmp_path):
    _, runs, _ = published
    with pytest.raises(UserError, match="name at least one sweep"):
        run_publish(out=tmp_path / "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is a file"):
        run_publish(runs, out=tmp_path / "file")
    odd = tmp_path / "odd"
    write_run(odd, "other-test-split", model="gru", family="recurrent", val_acc=0.5, correct=correct_at(0.5))
    record = json.loads((odd / "other-test-split" / "metrics.json").read_text())
    record["splits"]["test"] = {"count": 10, "digest": "elsewhere"}
    (odd / "other-test-split" / "metrics.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match="different split fingerprints"):
        run_publish(runs, odd, out=tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_strip_paths_keeps_urls_and_relative_names():
    assert strip_paths({"a": "/home/x/outputs/run1", "b": "sqlite:///outputs/o.db", "c": "val/acc",
                        "d": "error in /tmp/x/y.py line 3", "e": ["C:\\Users\\me\\run"]}) == {
        "a": "run1", "b": "sqlite:///outputs/o.db", "c": "val/acc", "d": "error in y.py line 3", "e": ["run"]}


def _reused_copy(source: Path, into: Path, finished_at: str | None = None) -> Path:
    """The copy an earlier skip_completed made of a finished run: its record and test predictions,
    without the evaluations stored beside the original."""
    record = json.loads((source / "metrics.json").read_text())
    if finished_at is not None:  # or: the job trained again, another result
        record["finished_at"] = finished_at
    into.mkdir(parents=True)
    (into / "metrics.json").write_text(json.dumps({**record, "reused_from": str(source)}))
    shutil.copyfile(source / "predictions.csv", into / "predictions.csv")
    return into


def test_publishing_a_reused_copy_keeps_the_published_evaluations(tmp_path):
    original = write_run(tmp_path / "sweep1", "gru", model="gru", family="recurrent", val_acc=0.8,
                         correct=correct_at(0.8), stage="promoted", ood_acc=0.7)
    (original / "explain.json").write_text(json.dumps({"n_reviews": 2}))
    out = tmp_path / "docs" / "study"
    run_publish(tmp_path / "sweep1", out=out)
    (name,) = [p.parent.name for p in out.glob("runs/*/metrics.json")]
    before = json.loads((out / "runs" / name / "metrics.json").read_text())
    assert set(before["outcomes"]) == {"test", "rotten_tomatoes"} and "evaluations" in before

    _reused_copy(original, tmp_path / "sweep2" / "gru")
    run_publish(tmp_path / "sweep2", out=out)
    after = json.loads((out / "runs" / name / "metrics.json").read_text())
    assert after["evaluations"] == before["evaluations"] and after["outcomes"] == before["outcomes"]
    assert (out / "runs" / name / "explain.json").is_file()
    assert analyze([out], resamples=200).leaderboard.iloc[0]["ood_acc"] == pytest.approx(0.7)

    # the same job trained again is another result: the evaluations of the old checkpoint go
    _reused_copy(original, tmp_path / "sweep3" / "gru", finished_at="2026-02-01T00:00:00+00:00")
    run_publish(tmp_path / "sweep3", out=out)
    retrained = json.loads((out / "runs" / name / "metrics.json").read_text())
    assert "evaluations" not in retrained and set(retrained["outcomes"]) == {"test"}
    assert not (out / "runs" / name / "explain.json").exists()


def test_a_reused_job_carries_the_evaluations_of_the_run_it_copies(tmp_path):
    source = write_run(tmp_path / "old", "gru", model="gru", family="recurrent", val_acc=0.8,
                       correct=correct_at(0.8), ood_acc=0.7)
    (source / "explain.json").write_text("{}")
    record = {**json.loads((source / "metrics.json").read_text()), "run_dir": str(source)}
    cfg = OmegaConf.create({"paths": {"run_dir": str(tmp_path / "new")}, "stage": "seed"})
    (tmp_path / "new").mkdir()
    assert jobs.reuse(record, cfg) == 0.8
    assert sorted(p.name for p in (tmp_path / "new" / "evaluations").iterdir()) == sorted(
        p.name for p in (source / "evaluations").iterdir())
    assert (tmp_path / "new" / "explain.json").is_file()
    assert analyze([tmp_path / "new"], resamples=200).leaderboard.iloc[0]["ood_acc"] == pytest.approx(0.7)
