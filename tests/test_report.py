"""The report over a real tiny sweep: every table and figure holds the runs' own numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from statistics import mean

import numpy as np
import pytest
from scipy import stats

from imdb_lm.runs.records import read_metrics, read_predictions
from tests.helpers import mcnemar_reference, run_cli
from tests.report_fixtures import JOBS, tiny_sweep_dir


@pytest.fixture(scope="module")
def sweep(cache_dir):
    return tiny_sweep_dir(cache_dir.parent, cache_dir)


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("report")
    proc = run_cli("imdb_lm.report", str(sweep), "--out", str(out), "--bootstrap", "2000", "--explain", "6",
                   cwd=out, cache=cache_dir)
    assert "report.html" in proc.stdout
    return out


def records(sweep):
    return {str(p.parent): read_metrics(p.parent) for p in sweep.rglob("metrics.json")}


def test_sweep_ran_the_grid_then_reseeded_each_models_best_setting(sweep):
    runs = list(records(sweep).values())
    assert len(runs) == JOBS
    assert all(r["status"] == "completed" for r in runs)
    grid = [r for r in runs if r["seed"] == 42]
    assert sorted((r["hparams"]["model"], r["hparams"]["optimizer"], r["hparams"]["batch_size"]) for r in grid) == [
        ("gru", "adam", 16), ("gru", "adam", 32), ("gru", "sgd", 16), ("gru", "sgd", 32),
        ("transformer", "adam", 16), ("transformer", "sgd", 16)]  # compare_quick narrows the transformer
    for model in ("gru", "transformer"):
        reseeded = [r for r in runs if r["seed"] == 1 and r["hparams"]["model"] == model]
        assert len(reseeded) == 1
        # the reseeded setting is the grid job with the best *validation* accuracy
        best_val = max(r["metrics"]["best_val_acc"] for r in grid if r["hparams"]["model"] == model)
        tied_best = {(r["hparams"]["optimizer"], r["hparams"]["batch_size"]) for r in grid
                     if r["hparams"]["model"] == model and r["metrics"]["best_val_acc"] == best_val}
        assert (reseeded[0]["hparams"]["optimizer"], reseeded[0]["hparams"]["batch_size"]) in tied_best  # any of equally good settings
    # one frozen split for all jobs, whatever the family and tokenizer
    assert len({json.dumps(r["splits"], sort_keys=True) for r in runs}) == 1


def test_results_csv_holds_every_runs_numbers(sweep, report):
    runs = records(sweep)
    with (report / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == JOBS
    for row in rows:
        record = runs[row["run_dir"]]
        assert float(row["test_acc"]) == pytest.approx(record["metrics"]["test"]["acc"])
        assert float(row["val_acc"]) == pytest.approx(record["metrics"]["best_val_acc"])
        assert float(row["latency_ms_p50"]) == pytest.approx(record["timing"]["latency_ms_p50"])
        assert int(row["params"]) == record["model"]["params"]["total"]


def test_leaderboard_and_seed_level_comparison_are_computed_from_the_runs(sweep, report):
    runs = records(sweep)
    text = (report / "report.md").read_text()

    def setting(r):
        return r["hparams"]["optimizer"], r["hparams"]["batch_size"]

    selected = {}
    for model in ("gru", "transformer"):
        mine = [r for r in runs.values() if r["hparams"]["model"] == model]
        best_val = max(r["metrics"]["best_val_acc"] for r in mine if r["seed"] == 42)
        # with tied val accuracies, the selected setting is the one the sweeper reseeded
        reseeded = {setting(r) for r in mine if r["seed"] != 42}
        chosen = [r for r in mine if r["seed"] == 42 and r["metrics"]["best_val_acc"] == best_val
                  and setting(r) in reseeded][0]
        selected[model] = {r["seed"]: d for d, r in runs.items() if r["hparams"]["model"] == model
                           and setting(r) == setting(chosen)}
        accs = [runs[d]["metrics"]["test"]["acc"] * 100 for d in selected[model].values()]
        avg = sum(accs) / len(accs)
        std = (sum((a - avg) ** 2 for a in accs) / (len(accs) - 1)) ** 0.5
        row = next(line for line in text.splitlines() if line.startswith(f"| {model} |"))
        assert f"{avg:.1f} ± {std:.1f}" in row
    # the headline contrast, recomputed without the report's code: each seed's test accuracy as its
    # record holds it and as its predictions give it, the seed means and their difference
    assert sorted(selected["gru"]) == sorted(selected["transformer"]) == [1, 42]
    cells = _cells(text, "| transformer | gru |")
    assert [int(c) for c in cells[2:5]] == [2, 2, 48]
    correct = {model: {seed: _correct(read_predictions(d)) for seed, d in selected[model].items()}
               for model in ("transformer", "gru")}
    for model, seeds in correct.items():
        for seed, right in seeds.items():
            assert len(right) == 48
            assert runs[selected[model][seed]]["metrics"]["test"]["acc"] == pytest.approx(right.mean(), abs=1e-6)
    acc_a, acc_b = (100 * mean(runs[d]["metrics"]["test"]["acc"] for d in selected[m].values())
                    for m in ("transformer", "gru"))
    assert float(cells[5]) == pytest.approx(acc_a, abs=0.05) and float(cells[6]) == pytest.approx(acc_b, abs=0.05)
    assert float(cells[7]) == pytest.approx(acc_a - acc_b, abs=0.05 + 1e-9)
    low, high = (float(v) for v in cells[8].split(" to "))
    assert low <= round(acc_a - acc_b, 1) <= high
    # the verdict: Welch's t on the per-seed test accuracies (rules v3), recomputed with scipy
    welch = stats.ttest_ind(*([runs[d]["metrics"]["test"]["acc"] for d in selected[m].values()]
                              for m in ("transformer", "gru")), equal_var=False)
    assert float(cells[9]) == pytest.approx(welch.pvalue, rel=0.05)  # printed to two significant digits
    assert cells[12] in ("different", "different, within the margin", "equivalent", "not settled")
    for seed in (1, 42):  # McNemar per pair of seeds, beside the interval, against scipy's binomial test
        a, b = correct["transformer"][seed], correct["gru"][seed]
        only_a, only_b, p = (float(c) for c in _cells(text, f"| {seed} | {seed} |")[2:5])
        assert (only_a, only_b) == ((a & ~b).sum(), (~a & b).sum())
        exact, tolerance = mcnemar_reference(int(only_a), int(only_b))
        assert p == pytest.approx(exact, rel=1e-2, abs=tolerance)  # the table shows 3 significant digits
    assert "Comparison: On the same 48 test reviews" in text and "2 seeds" in text


def test_compact_records_rebuild_the_same_report(sweep, report, tmp_path, cache_dir):
    """Published compact records (no paths, outcomes as bits) give the report's tables unchanged."""
    published = tmp_path / "docs" / "study"
    run_cli("imdb_lm.report.publish", str(sweep), f"out={published}", cwd=tmp_path, cache=cache_dir)
    assert len(list(published.rglob("metrics.json"))) == JOBS
    assert str(tmp_path) not in "".join(p.read_text() for p in published.rglob("*") if p.is_file())
    assert not list(published.rglob("predictions.csv"))
    out = tmp_path / "rebuilt"
    run_cli("imdb_lm.report", str(published), f"out={out}", "bootstrap=2000", cwd=tmp_path, cache=cache_dir)

    def tables(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("|") and "run_dir" not in line]

    original, rebuilt = (report / "report.md").read_text(), (out / "report.md").read_text()
    # the interpretability table reads explain.json, which the publish copies: same rows too
    assert tables(rebuilt) == tables(original)
    assert [line for line in rebuilt.splitlines() if line.startswith("- ")] == [
        line for line in original.splitlines() if line.startswith("- ")]


def _correct(predictions: dict[str, tuple[int, float]]) -> np.ndarray:
    """Per-review correctness in review-hash order: positive when the probability exceeds 0.5."""
    return np.array([(prob > 0.5) == bool(label) for _, (label, prob) in sorted(predictions.items())])


def _cells(text: str, prefix: str) -> list[str]:
    row = next(line for line in text.splitlines() if line.startswith(prefix))
    return [c.strip() for c in row.strip("|").split("|")]


def test_interpretability_scores_the_two_compared_runs_on_the_same_reviews(sweep, report):
    explained = {r["hparams"]["model"]: (d, json.loads((Path(d) / "explain.json").read_text()))
                 for d, r in records(sweep).items() if (Path(d) / "explain.json").is_file()}
    assert sorted(explained) == ["gru", "transformer"]  # only the two selected runs were explained
    hashes = [[r["hash"] for r in e["per_review"]] for _, e in explained.values()]
    assert hashes[0] == hashes[1] and len(hashes[0]) == 6  # the same six test reviews
    for model, (run_dir, _) in explained.items():  # the runs of the paired test: best validation accuracy
        mine = [r for r in records(sweep).values() if r["hparams"]["model"] == model]
        assert read_metrics(run_dir)["metrics"]["best_val_acc"] == max(r["metrics"]["best_val_acc"] for r in mine)
    text = (report / "report.md").read_text()
    for model, family, method, key in (("gru", "recurrent", "integrated gradients", "integrated_gradients"),
                                       ("transformer", "transformer", "integrated gradients", "integrated_gradients"),
                                       ("transformer", "transformer", "attention rollout", "attention_rollout")):
        faith = explained[model][1]["faithfulness"][key]
        cells = _cells(text, f"| {model} | {family} | {method} |")
        assert int(cells[3]) == 6
        assert [float(c) for c in cells[4:7]] == pytest.approx(
            [round(faith["aopc"], 3), round(faith["random_aopc"], 3), round(faith["aopc_gain"], 3)], abs=1e-9)
    gains = {m: {r["hash"]: r["aopc_integrated_gradients"] - r["aopc_random"] for r in e["per_review"]}
             for m, (_, e) in explained.items()}
    diff = sum(gains["gru"][h] - gains["transformer"][h] for h in hashes[0]) / 6
    assert f"best RNN minus best transformer: {diff:+.3f}" in text
    # the verdict weighs it: the paired gain's CI decides whether interpretability separates the models
    assert any(line.startswith("- Verdict: Interpretability ") and f"{diff:+.3f}" in line for line in text.splitlines())
    assert (report / "explain.html").stat().st_size > 1000
    assert 'href="explain.html"' in (report / "report.html").read_text()


def test_figures_exist_and_html_is_self_contained(report):
    figures = sorted(p.name for p in (report / "figures").glob("*.png"))
    assert figures == ["batch_size.png", "learning_curves.png", "parallel_recurrent.png", "parallel_transformer.png",
                       "pareto.png", "sensitivity.png", "stability.png"]
    assert all((report / "figures" / f).stat().st_size > 5000 for f in figures)
    page = (report / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 7
    assert 'src="figures' not in page and "<link" not in page
    for heading in ("Findings", "Leaderboard", "Sensitivity to optimizer", "Sensitivity to batch size",
                    "Accuracy against training time", "Learning curves", "Stability",
                    "Hyperparameters: parallel coordinates and importance per family"):
        assert heading in page


def test_parallel_coordinates_and_importance_per_family(sweep, report):
    text = (report / "report.md").read_text()
    page = (report / "report.html").read_text()
    for family in ("recurrent", "transformer"):
        assert f"![parallel_{family}](figures/parallel_{family}.png)" in text
        assert f'alt="parallel_{family}"' in page
    # The GRU grid, optimizer x batch size (complete; the reseeded setting averaged over its seeds),
    # decomposed by hand: a main effect is each level's mean minus the grand mean.
    cells: dict[tuple, list[float]] = {}
    for r in records(sweep).values():
        if r["hparams"]["model"] == "gru":
            cells.setdefault((r["hparams"]["optimizer"], r["hparams"]["batch_size"]), []).append(r["metrics"]["best_val_acc"])
    means = {k: sum(v) / len(v) for k, v in cells.items()}
    assert len(means) == 4
    grand = sum(means.values()) / 4
    total = sum((m - grand) ** 2 for m in means.values()) / 4

    def main_effect(axis: int) -> float:  # variance of the level means around the grand mean
        levels = sorted({k[axis] for k in means})
        level_means = [sum(m for k, m in means.items() if k[axis] == level) / 2 for level in levels]
        return sum((m - grand) ** 2 for m in level_means) / len(levels)

    effect = [main_effect(0), main_effect(1)]
    assert "5 runs, 4 settings over optimizer, batch_size (2 x 2: a complete grid)" in text
    if total < 1e-10:
        assert "No importance: every setting reached the same validation accuracy." in text
    else:
        assert float(_cells(text, "| optimizer | 2 | adam, sgd |")[3]) == pytest.approx(round(effect[0] / total * 100, 1))
        assert float(_cells(text, "| batch_size | 2 | 16, 32 |")[3]) == pytest.approx(round(effect[1] / total * 100, 1))
        rest = (total - effect[0] - effect[1]) / total * 100
        assert float(_cells(text, "| interactions and noise |")[3]) == pytest.approx(round(rest, 1))
    # the transformer ran at batch 16 only (constant), two optimizers: too few settings to split
    assert "Constant: model=transformer, lr_scale=1, batch_size=16" in text
    assert "No importance: only 2 settings; importance needs at least 3." in text


@pytest.fixture(scope="module")
def bad_sweep(tmp_path_factory, cache_dir):
    """A real 2-job sweep: lr=-1 is rejected when the model is built (failed); SGD at an infinite lr makes
    the weights NaN after the first step, so the whole second epoch has a NaN loss (diverged). It uses a
    40-review test slice, so its split differs from the tiny sweep's."""
    cwd = tmp_path_factory.mktemp("bad")
    args = ["--multirun", "model=gru", "optimizer=sgd", "optimizer.lr=-1,inf", "data.batch_size=16",
            "data.train_limit=48", "data.val_limit=32", "data.test_limit=40", "data.max_length=32",
            "trainer.max_epochs=2", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false",
            "callbacks.metrics_timing.latency_samples=3", f"hydra.sweep.dir={cwd / 'bad'}"]
    proc = run_cli("imdb_lm.train", *args, cwd=cwd, cache=cache_dir)
    assert "optimizer.lr=-1" in proc.stderr
    return cwd / "bad"


def test_failed_and_diverged_jobs_are_recorded_and_reported(bad_sweep, tmp_path, cache_dir):
    statuses = {r["hparams"]["lr"]: r for r in (read_metrics(p.parent) for p in bad_sweep.rglob("metrics.json"))}
    assert statuses[-1.0]["status"] == "failed" and "optimizer.lr=-1" in statuses[-1.0]["error"]
    assert statuses[float("inf")]["status"] == "diverged"
    out = tmp_path / "report"
    run_cli("imdb_lm.report", str(bad_sweep), "--out", str(out), "--bootstrap", "500", cwd=tmp_path, cache=cache_dir)
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["status"] for r in rows) == ["diverged", "failed"]
    assert all(r["failed"] == "True" for r in rows)
    text = (out / "report.md").read_text()
    assert "Runs that did not complete" in text and "| diverged |" in text and "| failed |" in text
    assert "2 runs (1 failed, 1 diverged)" in text or "2 runs (1 diverged, 1 failed)" in text
    assert "100% of recurrent runs (2/2) failed" in text


def test_runs_with_other_fingerprints_are_refused_by_name(sweep, bad_sweep, tmp_path, cache_dir):
    proc = run_cli("imdb_lm.report", str(sweep), str(bad_sweep), cwd=tmp_path, cache=cache_dir, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: runs have different split fingerprints")
    # the diverged run (the failed one never split the data) is named, and the differing split too
    assert str(bad_sweep) in proc.stderr and "differ in the test split" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not (sweep / "report").exists(), "nothing is written when the report refuses"


def test_tensorboard_gets_confusion_matrix_and_misclassified_reviews(sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = next(p.parent for p in sweep.rglob("metrics.json"))
    record = read_metrics(run_dir)
    images, texts = [], []
    for events in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"images": 0, "tensors": 0})
        acc.Reload()
        images += acc.Images("test/confusion_matrix") if "test/confusion_matrix" in acc.Tags()["images"] else []
        if "test/misclassified/text_summary" in acc.Tags()["tensors"]:
            texts += [e.tensor_proto.string_val[0].decode() for e in acc.Tensors("test/misclassified/text_summary")]
    assert len(images) == 1 and images[0].width > 100
    wrong = round((1 - record["metrics"]["test"]["acc"]) * record["splits"]["test"]["count"])
    assert texts and texts[0].startswith(f"{wrong} of {record['splits']['test']['count']} test reviews misclassified")
