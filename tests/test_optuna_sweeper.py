"""The Optuna sweeper (hydra_plugins/imdb_lm_optuna): shared journal studies, grids, pruning, SQLite.

Training searches go through the real `imdb_lm.train` CLI at smoke scale; the concurrency and grid
tests run the real sweeper on a tiny Hydra app (tests/optuna_app) whose jobs cost nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from imdb_lm.errors import UserError
from imdb_lm.runs.optuna_study import PRUNED_AT, open_storage, resolve
from imdb_lm.runs.records import read_metrics
from tests.helpers import ROOT, TINY, cli_env, run_cli

APP = ROOT / "tests" / "optuna_app" / "app.py"
SMOKE_SEARCH = ["--multirun", "hparams_search=optuna", "model=gru", *TINY, "logger=none",
                "callbacks.metrics_timing.latency_samples=2", "~callbacks.attributions"]


def app(tmp_path: Path, name: str, *args: str, sleep: float = 0.0) -> subprocess.Popen:
    """Start one sweeper process of the tiny app (its own sweep folder, jobs recorded under records/)."""
    cmd = [sys.executable, str(APP), "--multirun", f"record_dir={tmp_path / 'records'}", f"sleep={sleep}",
           f"hydra.sweep.dir={tmp_path / name}", *args]
    return subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(tmp_path / "cache"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    return out


def jobs_run(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]


def study(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(resolve(storage)))


def test_storage_strings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve(None) is None
    assert resolve("sqlite:///runs/o.db") == f"sqlite:///{tmp_path}/runs/o.db"  # where the sweep started
    assert resolve("postgresql://u@host/db") == "postgresql://u@host/db"
    assert resolve("runs/o.journal") == str(tmp_path / "runs" / "o.journal")
    with pytest.raises(UserError, match="three slashes"):
        resolve("sqlite:o.db")
    optuna.create_study(storage="sqlite:///o.db")
    with pytest.raises(UserError, match=f"o.db is a SQLite database; write sqlite:///{tmp_path}/o.db"):
        resolve("o.db")


@pytest.mark.parametrize(("sampler", "space", "points"), [
    ("tpe", ["x=interval(0, 4)", "y=choice(a, b)"], None),
    ("grid", ["x=choice(0, 1, 2)", "y=choice(a, b)"], {(x, y) for x in (0, 1, 2) for y in "ab"}),
])
def test_two_workers_share_one_journal_study(tmp_path, sampler, space, points):
    storage = str(tmp_path / "shared.journal")
    common = [f"hydra/sweeper/sampler={sampler}", *space, f"hydra.sweeper.storage={storage}",
              "hydra.sweeper.study_name=shared", "hydra.sweeper.n_trials=3" if sampler == "tpe" else
              "hydra.sweeper.n_trials=6"]
    workers = [app(tmp_path, f"w{i}", *common, sleep=2.0) for i in range(2)]
    outs = [finish(w) for w in workers]
    ran = jobs_run(tmp_path)
    # Two workers asking for one grid point at the same moment: the later trial gives way, never runs.
    trials = [t for t in study(storage, "shared").get_trials() if "grid_point_taken_by" not in t.user_attrs]
    assert len(ran) == 6, outs  # no trial lost ...
    assert sorted(r["number"] for r in ran) == sorted(t.number for t in trials)  # ... or run twice
    assert len(trials) == 6 and all(r["study"] == "shared" for r in ran)
    assert len({r["pid"] for r in ran}) == 2, "both workers ran trials"
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    by_number = {r["number"]: r for r in ran}
    for t in trials:  # the value told is the job's own
        assert t.value == pytest.approx((float(by_number[t.number]["x"]) - 2) ** 2 + (0.5 if t.params["y"] == "b" else 0))
    if points is not None:
        assert {(r["x"], r["y"]) for r in ran} == points  # every grid point exactly once
        assert any("the grid is done" in out for out in outs)


def test_two_trials_enqueued_on_one_grid_point_the_later_gives_way():
    """The race of two workers, played in one process: both enqueue the same free point."""
    from hydra_plugins.imdb_lm_optuna._grid import SharedGrid

    grid = SharedGrid({"x": [1, 2]}, seed=0)
    shared = optuna.create_study()
    first = grid.next_free(shared.get_trials())
    shared.enqueue_trial(grid.params(first))
    assert grid.next_free(shared.get_trials()) != first  # an enqueued point is taken before it runs
    shared.enqueue_trial(grid.params(first))  # the other worker looked before the first enqueue landed
    a = shared.ask()  # popped, params not stored yet: the point is known from its fixed_params
    b = shared.ask()
    assert grid.holder(shared.get_trials(), b.number, grid.params(first)) == a.number
    assert grid.holder(shared.get_trials(), a.number, grid.params(first)) is None
    assert grid.next_free(shared.get_trials()) is not None
    shared.enqueue_trial(grid.params(grid.next_free(shared.get_trials())))
    assert grid.next_free(shared.get_trials()) is None  # every point held: the grid is done


def test_a_worker_whose_queued_point_was_taken_runs_the_waiting_one_and_orphans_none(monkeypatch):
    """The race that lost a grid point: this worker's ask finds the queue empty (another worker
    popped it), so Optuna creates a fresh trial on a point of its own choosing. That trial is skipped
    and holds nothing; a trial still waiting is run before any new point is queued."""
    from hydra_plugins.imdb_lm_optuna._grid import SKIPPED, SharedGrid
    from hydra_plugins.imdb_lm_optuna._impl import OptunaSweeperImpl

    points = {"x": [1, 2, 3]}
    space = {"x": optuna.distributions.CategoricalDistribution(points["x"])}
    grid = SharedGrid(points, seed=0)
    shared = optuna.create_study(sampler=optuna.samplers.GridSampler(points))
    shared.enqueue_trial(grid.params(grid.order[1]))  # another worker's point, waiting for an ask
    popped = []
    real_pop = shared._pop_waiting_trial_id

    def pop_once_lost():  # the first pop loses the waiting trial to the other worker, later ones work
        popped.append(None)
        return None if len(popped) == 1 else real_pop()

    monkeypatch.setattr(shared, "_pop_waiting_trial_id", pop_once_lost)
    asked = object.__new__(OptunaSweeperImpl)._ask(shared, space, grid, 1)
    trials = shared.get_trials()
    assert [t.params for t in asked] == [grid.params(grid.order[1])]  # the waiting trial ran, no new one queued
    assert [t.state for t in trials] == [optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL]
    assert SKIPPED in trials[1].user_attrs and trials[1].user_attrs[SKIPPED] is None
    assert not grid.waiting(trials)
    assert grid.next_free(trials) == grid.order[0]  # the skipped fresh trial holds no point


def test_grid_skips_taken_points_and_stops_when_exhausted(tmp_path):
    storage = str(tmp_path / "grid.journal")
    space = {"x": optuna.distributions.CategoricalDistribution([1, 2, 3, 4])}
    shared = optuna.create_study(study_name="grid", storage=open_storage(storage))
    shared.add_trial(optuna.trial.create_trial(params={"x": 1}, distributions=space, value=1.0))
    shared.enqueue_trial({"x": 2})
    running = shared.ask(space)  # another worker is running x=2
    assert running.params == {"x": 2}
    args = ["hydra/sweeper/sampler=grid", "x=choice(1, 2, 3, 4)", f"hydra.sweeper.storage={storage}",
            "hydra.sweeper.study_name=grid", "hydra.sweeper.n_trials=10"]
    out = finish(app(tmp_path, "first", *args))
    assert sorted(r["x"] for r in jobs_run(tmp_path)) == [3, 4]  # only the free points ran
    assert "the grid is done" in out
    results = yaml.safe_load((tmp_path / "first" / "optimization_results.yaml").read_text())
    assert results["best_params"] == {"x": 1} and results["best_value"] == 1.0  # the other worker's, shared
    assert results["trials"] == {"complete": 3, "running": 1}
    # Every point taken: a second sweep launches nothing and still ends cleanly.
    out = finish(app(tmp_path, "again", *args))
    assert len(jobs_run(tmp_path)) == 2 and "Launching" not in out
    assert (tmp_path / "again" / "optimization_results.yaml").is_file()


def test_an_in_memory_study_runs_without_reporting_and_refuses_a_pruner(tmp_path):
    out = finish(app(tmp_path, "memory", "x=choice(1, 2, 3)", "hydra.sweeper.storage=null", "hydra.sweeper.n_trials=2"))
    ran = jobs_run(tmp_path)
    assert len(ran) == 2 and all(r["number"] is None for r in ran), out  # no trial to report to
    results = yaml.safe_load((tmp_path / "memory" / "optimization_results.yaml").read_text())
    assert results["storage"] is None and results["trials"] == {"complete": 2}
    assert results["best_value"] == min((r["x"] - 2) ** 2 for r in ran)
    proc = app(tmp_path, "refused", "x=choice(1, 2)", "hydra.sweeper.storage=null", "hydra/sweeper/pruner=median")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "hydra.sweeper.pruner needs a storage the jobs can report to" in out
    assert len(jobs_run(tmp_path)) == 2, "nothing ran"


def test_tpe_search_on_sqlite_through_the_training_cli(tmp_path, cache_dir):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    run_cli("imdb_lm.train", *SMOKE_SEARCH, "hydra.sweeper.n_trials=4", f"hydra.sweeper.storage={storage}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path, cache=cache_dir)
    records = [read_metrics(p.parent) for p in (tmp_path / "sweep").rglob("metrics.json")]
    trials = study(storage, "gru").get_trials()
    assert len(records) == len(trials) == 4
    assert all(r["status"] == "completed" for r in records)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # each trial holds its job's value and the validation it reported while training
    values = sorted(r["metrics"]["best_val_acc"] for r in records)
    assert sorted(t.value for t in trials) == pytest.approx(values)
    assert all(t.intermediate_values == {0: pytest.approx(t.value)} for t in trials)
    by_trial = {r["config"]["optuna_trial"]["number"]: r for r in records}
    for t in trials:
        hp = by_trial[t.number]["hparams"]
        assert (hp["optimizer"], hp["batch_size"]) == (t.params["optimizer"], t.params["data.batch_size"])
        assert by_trial[t.number]["config"]["lr_scale"] == pytest.approx(t.params["lr_scale"])
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(values[-1])
    assert best["storage"] == storage and best["dashboard"] == f"optuna-dashboard {storage}"
    assert best["study_name"] == "gru" and best["trials"] == {"complete": 4}


@pytest.fixture(scope="module")
def pruned_sweep(tmp_path_factory, cache_dir) -> tuple[Path, str]:
    """Two trials after two fake perfect ones (1.0 at every validation) under a median pruner that waits
    for three complete trials: the first runs its two epochs, the second is worse than the median
    (1.0) at its first validation and is stopped there."""
    tmp = tmp_path_factory.mktemp("pruning")
    storage = str(tmp / "study.journal")
    seeded = optuna.create_study(study_name="pruning", storage=open_storage(storage), direction="maximize")
    for _ in range(2):
        seeded.add_trial(optuna.trial.create_trial(value=1.0, intermediate_values={0: 1.0, 1: 1.0}))
    run_cli("imdb_lm.train", *SMOKE_SEARCH, "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=3",
            "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=pruning",
            "trainer.max_epochs=2", f"hydra.sweep.dir={tmp / 'sweep'}", cwd=tmp, cache=cache_dir)
    return tmp / "sweep", storage


def test_pruner_stops_a_trial_that_reports_worse_values(pruned_sweep):
    sweep, storage = pruned_sweep
    records = sorted((read_metrics(p.parent) for p in sweep.rglob("metrics.json")),
                     key=lambda r: r["config"]["optuna_trial"]["number"])
    first, second = records
    assert first["status"] == "completed" and len(first["history"]) == 2 and first["metrics"]["test"]
    assert second["status"] == "pruned" and len(second["history"]) == 1  # stopped after one of two epochs
    assert second["metrics"]["test"] == {} and "pruned by MedianPruner at validation 0" in second["error"]
    trials = {t.number: t for t in study(storage, "pruning").get_trials()}
    assert trials[2].state == optuna.trial.TrialState.COMPLETE and len(trials[2].intermediate_values) == 2
    assert trials[3].state == optuna.trial.TrialState.PRUNED and trials[3].user_attrs[PRUNED_AT] == 0
    assert trials[3].value == pytest.approx(second["metrics"]["best_val_acc"])  # its last reported value
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["trials"] == {"complete": 3, "pruned": 1}


def test_the_report_counts_pruned_runs_apart_from_failed_ones(pruned_sweep, tmp_path, cache_dir):
    sweep, _ = pruned_sweep
    out = tmp_path / "report"
    run_cli("imdb_lm.report", str(sweep), "--out", str(out), "--bootstrap", "200", cwd=tmp_path, cache=cache_dir)
    text = (out / "report.md").read_text()
    assert "2 runs (1 completed, 1 pruned)" in text
    assert "Optuna's pruner stopped 1 run early on validation accuracy" in text
    assert "of recurrent runs (0/1) failed" in text or "of recurrent runs (1/1) failed" in text  # pruned not counted
    assert "| pruned |" in text


def test_the_documented_search_composes_with_this_sweeper(tmp_path, cache_dir):
    docs = (ROOT / "docs" / "comparing.md").read_text()
    command = "python -m imdb_lm.train --multirun hparams_search=optuna model=gru"
    assert f"`{command}`" in docs
    # --cfg cannot be combined with --multirun: show the same overrides' Hydra config instead
    proc = run_cli("imdb_lm.train", *command.split()[4:], "--cfg", "all", "--resolve", cwd=tmp_path, cache=cache_dir)
    sweeper = yaml.safe_load(proc.stdout)["hydra"]["sweeper"]
    assert sweeper["_target_"] == "hydra_plugins.imdb_lm_optuna.optuna_sweeper.OptunaSweeper"
    assert sweeper["sampler"]["_target_"] == "optuna.samplers.TPESampler" and sweeper["sampler"]["seed"] == 42
    assert sweeper["pruner"]["_target_"] == "optuna.pruners.NopPruner"
    assert sweeper["direction"] == "maximize" and sweeper["study_name"] == "gru"
    assert sweeper["storage"].endswith("/optuna.journal")
    assert sweeper["params"]["lr_scale"] == "tag(log, interval(0.1, 10))"


def test_optuna_is_not_imported_at_start_up(tmp_path, cache_dir):
    """Hydra imports every plugin module at start-up; the sweeper's must not pull Optuna in."""
    probe = ("import atexit, runpy, sys\n"
             "atexit.register(lambda: print('MODULES', sorted(m for m in sys.modules if m.split('.')[0] in "
             "('optuna', 'sqlalchemy') or m.startswith('hydra_plugins.imdb_lm_optuna'))))\n"
             "sys.argv = ['imdb_lm.train', 'hparams_search=optuna', '--cfg', 'job']\n"
             "runpy.run_module('imdb_lm.train', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=cli_env(cache_dir),
                          capture_output=True, text=True, timeout=300)
    modules = eval(proc.stdout.rsplit("MODULES", 1)[1])
    assert "hydra_plugins.imdb_lm_optuna.config" in modules  # the plugin was scanned ...
    assert [m for m in modules if not m.startswith("hydra_plugins")] == []  # ... without importing Optuna
