"""Sweep mechanics: rerunning skips finished jobs; the submitit local launcher and Optuna run real jobs."""

from __future__ import annotations

import time

import pytest
import yaml

from imdb_lm.runs.records import read_metrics
from tests.helpers import run_cli
from tests.report_fixtures import JOBS, SWEEP_ARGS, tiny_sweep_dir

TINY_JOB = ["model=gru", "data.train_limit=48", "data.val_limit=32", "data.test_limit=48", "data.max_length=32",
            "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", "callbacks.metrics_timing.latency_samples=3"]


def test_rerunning_a_sweep_reuses_every_finished_job(cache_dir):
    sweep = tiny_sweep_dir(cache_dir.parent, cache_dir)
    cwd = sweep.parents[2]
    def job(record):
        hparams = record["hparams"]
        return hparams["model"], hparams["optimizer"], hparams["batch_size"], record["seed"]
    first = {job(read_metrics(p.parent)): read_metrics(p.parent) for p in sweep.rglob("metrics.json")}
    again = cwd / "outputs" / "multirun" / "again"
    start = time.perf_counter()
    proc = run_cli("imdb_lm.train", *SWEEP_ARGS, f"hydra.sweep.dir={again}", cwd=cwd, cache=cache_dir)
    reused = [read_metrics(p.parent) for p in again.rglob("metrics.json")]
    assert len(reused) == JOBS, proc.stdout[-2000:]
    assert proc.stdout.count("skip_completed: reusing") == JOBS
    for record in reused:
        assert record["reused_from"].startswith(str(sweep))
        original = first[job(record)]
        assert record["metrics"] == original["metrics"]
    assert not list(again.rglob("*.ckpt")), "a reused job must not train again"
    # the seed stage still picked the same best settings from the reused values
    assert sorted(r["seed"] for r in reused) == [1, 1, 42, 42, 42, 42, 42, 42]
    assert time.perf_counter() - start < 300


def test_a_changed_setting_is_not_reused(cache_dir):
    from imdb_lm.config.compose import compose_train
    from imdb_lm.runs.key import config_key

    sweep = tiny_sweep_dir(cache_dir.parent, cache_dir)
    records = {p.parent: read_metrics(p.parent) for p in sweep.rglob("metrics.json")}
    assert len({r["config_key"] for r in records.values()}) == JOBS  # every job of the sweep has its own key
    run_dir, record = next(iter(records.items()))
    assert (run_dir / "config_key.txt").read_text().strip() == record["config_key"]
    # The job's own overrides composed again give its stored key: that is what a rerun compares.
    job_overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert config_key(compose_train(job_overrides)) == record["config_key"]
    # Where it runs and how it is bookkept do not change the key ...
    moved = ["paths.run_dir=/elsewhere/run", "paths.cache_dir=/elsewhere/cache", "results_dirs=[/x]",
             "skip_completed=false", "hydra.run.dir=/elsewhere/run"]
    assert config_key(compose_train([*job_overrides, *moved])) == record["config_key"]
    # ... any setting that changes the result does.
    for change in ("seed=7", "data.max_length=33", "optimizer.lr=0.123"):
        assert config_key(compose_train([*job_overrides, change])) != record["config_key"], change


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_two_job_sweep(tmp_path, cache_dir):
    # fresh: each job's process is started from what the launcher pickles of this one (its __main__ included),
    # which a forked run only imitates
    proc = run_cli("imdb_lm.train", "--multirun", "hydra/launcher=submitit_local", "optimizer=adam,sgd", *TINY_JOB,
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path, cache=cache_dir, fresh=True)
    records = [read_metrics(p.parent) for p in (tmp_path / "sweep").rglob("metrics.json")]
    assert sorted(r["hparams"]["optimizer"] for r in records) == ["adam", "sgd"], proc.stdout[-2000:]
    assert all(r["status"] == "completed" for r in records)
    assert list((tmp_path / "sweep" / ".submitit").iterdir()), "submitit keeps each job's logs"


@pytest.mark.slow
def test_optuna_search_gets_the_val_metric(tmp_path, cache_dir):
    run_cli("imdb_lm.train", "--multirun", "hparams_search=optuna", "hydra.sweeper.n_trials=3", *TINY_JOB,
            f"hydra.sweep.dir={tmp_path / 'optuna'}", cwd=tmp_path, cache=cache_dir)
    records = [read_metrics(p.parent) for p in (tmp_path / "optuna").rglob("metrics.json")]
    assert len(records) == 3
    best = yaml.safe_load((tmp_path / "optuna" / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(r["metrics"]["best_val_acc"] for r in records))


def test_narrow_keeps_a_smaller_grid_for_one_group_only():
    from hydra_plugins.imdb_lm_sweeper.seeded_grid import narrowed

    jobs = [[f"model={m}", f"lr_scale={lr}", f"data.batch_size={b}"]
            for m in ("gru", "transformer") for lr in ("0.3", "1", "3") for b in ("16", "32")]
    kept = narrowed(jobs, "model", {"transformer": {"lr_scale": [1, 3], "data.batch_size": [16]}})
    assert [j for j in kept if j[0] == "model=gru"] == jobs[:6]  # other groups keep the whole grid
    assert [j for j in kept if j[0] == "model=transformer"] == [
        ["model=transformer", "lr_scale=1", "data.batch_size=16"],
        ["model=transformer", "lr_scale=3", "data.batch_size=16"]]  # numbers match their override text
    assert narrowed(jobs, "model", {}) == jobs
    assert narrowed(jobs, "model", {"bilstm": {"lr_scale": [1]}}) == jobs  # a model not in this sweep
    with pytest.raises(ValueError, match="'batch_size' is not a key of this sweep"):
        narrowed(jobs, "model", {"transformer": {"batch_size": [16]}})  # a typo must not keep everything
    with pytest.raises(ValueError, match=r"lr_scale=\[10\] keeps no job of model=transformer"):
        narrowed(jobs, "model", {"transformer": {"lr_scale": [10]}})


def test_a_mistaken_narrow_stops_the_sweep_before_any_job(tmp_path, cache_dir):
    proc = run_cli("imdb_lm.train", "--multirun", "experiment=compare_quick", "model=gru,transformer",
                   "+hydra.sweeper.narrow.transformer.batch_size=[16]", cwd=tmp_path, cache=cache_dir, check=False)
    assert proc.returncode != 0
    assert "hydra.sweeper.narrow.transformer: 'batch_size' is not a key of this sweep" in proc.stderr
    assert "data.batch_size" in proc.stderr  # names the key that is swept
    assert not list(tmp_path.rglob("metrics.json")) and not list(tmp_path.rglob("*.ckpt"))


def _done(overrides: list[str], val: float | None):
    from hydra.core.utils import JobReturn, JobStatus

    return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=val)


def test_grid_edges_extend_where_the_best_rate_sits_at_an_edge_and_only_there():
    from hydra_plugins.imdb_lm_sweeper.stages import edge_extensions

    vals = {("gru", "0.3"): 0.60, ("gru", "1"): 0.70, ("gru", "3"): 0.80,      # best at the high edge
            ("rnn", "0.3"): 0.75, ("rnn", "1"): 0.70, ("rnn", "3"): None,      # best at the low edge (3 failed)
            ("lstm", "0.3"): 0.60, ("lstm", "1"): 0.90, ("lstm", "3"): 0.70}   # inside: no extension
    grid = [_done([f"model={m}", "optimizer=adam", f"lr_scale={s}", "stage=grid"], v) for (m, s), v in vals.items()]
    jobs = edge_extensions(grid, "model", "lr_scale", below=[0.03, 0.1], above=[10.0])  # nearest first
    assert sorted(jobs) == sorted([["model=gru", "optimizer=adam", "lr_scale=10.0", "stage=grid"],
                                   ["model=rnn", "optimizer=adam", "lr_scale=0.1", "stage=grid"]])
    # the next round: gru's best is now at 10 (nothing beyond in `above`), rnn's at 0.1 -> 0.03
    grid += [_done(jobs[0], 0.85 if "model=gru" in jobs[0] else 0.80),
             _done(jobs[1], 0.85 if "model=gru" in jobs[1] else 0.80)]
    assert edge_extensions(grid, "model", "lr_scale", below=[0.1, 0.03], above=[10.0]) == [
        ["model=rnn", "optimizer=adam", "lr_scale=0.03", "stage=grid"]]
    # a group that swept a single rate has no edge
    assert edge_extensions([_done(["model=gru", "lr_scale=1"], 0.8)], "model", "lr_scale", [0.1], [10.0]) == []


def test_curve_overrides_reach_the_subset_sizes_but_not_the_whole_split_point():
    from hydra_plugins.imdb_lm_sweeper.stages import curve_jobs, identity

    best = _done(["model=gru", "optimizer=adam", "data.train_limit=null", "stage=promoted"], 0.8)
    jobs = curve_jobs(best, [500, None], [42], ["callbacks.min_steps.validations=5"])
    assert jobs[0] == ["model=gru", "optimizer=adam", "data.train_limit=500", "callbacks.min_steps.validations=5",
                       "seed=42", "stage=curve"]
    # the whole-split point is the promoted run itself: the same identity, so it is not trained again
    assert identity(jobs[1], "42") == identity(best.overrides, "42")
