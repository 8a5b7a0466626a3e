"""A fit that would end before its first validation is refused before its first training step, in one
line that names the numbers and a fix that works; one that ends without a validation for a reason
known only afterwards is recorded `failed`, and so is the trial of a sweep that ran it.

The refusal is checked against Lightning itself: on a real Trainer, a fit is refused exactly when,
run without the check, it would not validate, and each fix the line gives makes it validate."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import lightning as L
import optuna
import pytest
import yaml
from lightning.pytorch.demos.boring_classes import BoringModel

from imdb_lm.callbacks.first_validation import FirstValidationCheck, budget_error
from imdb_lm.callbacks.min_steps import MinTrainSteps
from imdb_lm.config.compose import compose_train
from imdb_lm.data.batching import BucketBatchSampler
from imdb_lm.errors import UserError
from imdb_lm.runs.optuna_study import open_storage, resolve
from tests.helpers import TINY, load_metrics, run_cli, run_dirs


class FirstValidation(L.Callback):
    def __init__(self):
        self.step: int | None = None

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking and self.step is None:
            self.step = trainer.global_step


def fit(check: bool, batches: int = 4, max_steps: int = -1, max_epochs: int = 1, accumulate: int = 1,
        every: int | float | None = None, every_n_epochs: int | None = 1, val_batches: int = 1,
        min_steps: MinTrainSteps | None = None) -> int | None:
    """The optimizer step at the fit's first validation (None: it never validated)."""
    seen = FirstValidation()
    callbacks = [c for c in (min_steps, seen, FirstValidationCheck() if check else None) if c is not None]
    trainer = L.Trainer(max_epochs=max_epochs, max_steps=max_steps, limit_train_batches=batches,
                        limit_val_batches=val_batches, accumulate_grad_batches=accumulate, val_check_interval=every,
                        check_val_every_n_epoch=every_n_epochs, callbacks=callbacks, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0)
    trainer.fit(BoringModel())
    return seen.step


CASES = {  # name: (Trainer settings, whether the fit validates)
    "max_steps inside the first epoch": ({"max_steps": 3}, False),
    "max_steps at the epoch's end": ({"max_steps": 4}, True),
    "accumulated steps inside the first epoch": ({"accumulate": 3, "max_steps": 1}, False),
    "accumulated steps to the epoch's end": ({"accumulate": 3, "max_steps": 2}, True),
    "every third epoch of two": ({"every_n_epochs": 3, "max_epochs": 2}, False),
    "every third epoch of three": ({"every_n_epochs": 3, "max_epochs": 3}, True),
    "batches counted across epochs, beyond the steps": ({"every": 6, "every_n_epochs": None, "max_steps": 5,
                                                         "max_epochs": 5}, False),
    "batches counted across epochs, mid accumulation": ({"every": 5, "every_n_epochs": None, "accumulate": 3,
                                                         "max_steps": 2, "max_epochs": 5}, False),
    "half an epoch, one step": ({"every": 0.5, "max_steps": 1}, False),
    "half an epoch, two steps": ({"every": 0.5, "max_steps": 2}, True),
    "epochs raised by MinTrainSteps, validating 5 times": ({"batches": 1, "min_steps": (19, 5)}, True),
}


def checked(settings: dict, **changes) -> int | None:
    """fit(True, ...) with a fresh MinTrainSteps where the case has one (it keeps the epochs it gave)."""
    settings = dict(settings, **changes)
    if "min_steps" in settings:
        settings["min_steps"] = MinTrainSteps(*settings["min_steps"])
    return fit(True, **settings)


@pytest.mark.parametrize("name", list(CASES))
def test_refused_exactly_when_lightning_would_not_validate_and_each_fix_validates(name):
    settings, validates = CASES[name]
    unchecked = dict(settings, min_steps=MinTrainSteps(*settings["min_steps"])) if "min_steps" in settings else settings
    assert (fit(False, **unchecked) is not None) == validates
    if validates:
        assert checked(settings) is not None
        return
    with pytest.raises(UserError) as refused:
        checked(settings)
    line = str(refused.value)
    assert "\n" not in line and "ends the fit at optimizer step" in line and "one epoch is" in line
    assert "trainer.val_check_interval=" in line
    limit, needed = re.search(r"set trainer\.(max_steps|max_epochs)>=(\d+)", line).groups()
    assert checked(settings, **{limit: int(needed)}) is not None  # the budget that reaches the validation
    within = re.search(r"trainer\.val_check_interval=(\d+) trainer\.check_val_every_n_epoch=null", line)
    assert checked(settings, every=int(within[1]), every_n_epochs=None) is not None


def test_the_line_names_max_steps_the_steps_of_an_epoch_and_the_validation_interval():
    line = budget_error(batches=313, accumulate=1, every=313, every_n_epochs=1, max_epochs=5, max_steps=40,
                        interval=1.0)
    assert line == ("trainer.max_steps=40 ends the fit at optimizer step 40, before its first validation (in step "
                    "313): one epoch is 313 optimizer steps (313 training batches), and validation comes at the end "
                    "of each epoch (trainer.val_check_interval=1.0, trainer.check_val_every_n_epoch=1); set "
                    "trainer.max_steps>=313, or validate within the budget: trainer.val_check_interval=40 "
                    "trainer.check_val_every_n_epoch=null")


def test_a_fit_without_validation_batches_is_refused():
    with pytest.raises(UserError, match=r"never validates \(trainer.limit_val_batches=0\).*limit_val_batches>0"):
        fit(True, val_batches=0)


WHOLE_SPLIT = 20_005  # train reviews of the bundled split (docs/study.md)


def experiment_fits(experiment: str):
    """Every (model, batch size, train reviews, overrides) an experiment's sweep trains, as the numbers
    Lightning starts the fit with (MinTrainSteps applied): (label, budget_error's arguments)."""
    cfg = compose_train([f"experiment={experiment}"], with_hydra=True)
    sweeper = cfg.hydra.sweeper
    params = sweeper.get("params") or {}
    models = str(params.get("model", cfg.model.name)).split(",")
    runs = [("grid", cfg.data.train_limit, None)]
    promote = sweeper.get("promote") or {}
    if promote.get("top_k"):  # promoted jobs train on the train_limit of promote.overrides
        runs += [("promoted", None if v in ("null", "None") else int(v), None) for o in promote.get("overrides") or []
                 for k, v in [o.split("=", 1)] if k == "data.train_limit"]
    curves = sweeper.get("curves") or {}
    curve_models = [m for group in (curves.get("families") or {}).values() for m in group]
    for model in models:
        job = compose_train([f"experiment={experiment}", f"model={model}"])
        batch_sizes = str(params["data.batch_size"]).split(",") if "data.batch_size" in params else [job.data.batch_size]
        curve = [("curve", size, curves_validations(curves)) for size in curves.get("sizes") or []]
        for batch in batch_sizes:
            for stage, size, validations in runs + (curve if model in curve_models else []):
                yield f"{experiment} {stage} {model} batch {batch} on {size or WHOLE_SPLIT}", numbers(
                    job, int(batch), size, validations)


def curves_validations(curves) -> int | None:
    given = [o.split("=", 1)[1] for o in curves.get("overrides") or [] if o.startswith("callbacks.min_steps.validations=")]
    return int(given[0]) if given else None


def numbers(job, batch_size: int, size: int | None, validations: int | None) -> dict:
    reviews = min(size or WHOLE_SPLIT, WHOLE_SPLIT)
    trainer = job.trainer
    batches = len(BucketBatchSampler([1] * reviews, batch_size, shuffle=True,
                                     chunk_batches=int(job.data.get("chunk_batches") or 50)))
    limit = trainer.limit_train_batches
    if limit is not None:
        batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
    stub = SimpleNamespace(train_dataloader=object(), num_training_batches=batches,
                           accumulate_grad_batches=trainer.accumulate_grad_batches,
                           fit_loop=SimpleNamespace(max_epochs=int(trainer.max_epochs)),
                           check_val_every_n_epoch=trainer.check_val_every_n_epoch)
    min_steps = job.callbacks.get("min_steps")
    if min_steps is not None:
        MinTrainSteps(int(min_steps.steps), validations if validations else min_steps.get("validations")).setup(
            stub, None, "fit")
    interval = 1.0 if trainer.val_check_interval is None else trainer.val_check_interval
    every = interval if isinstance(interval, int) else max(1, int(batches * interval))
    return {"batches": batches, "accumulate": stub.accumulate_grad_batches, "every": every,
            "every_n_epochs": stub.check_val_every_n_epoch, "max_epochs": stub.fit_loop.max_epochs,
            "max_steps": int(trainer.max_steps), "interval": interval}


@pytest.mark.parametrize("experiment", ["study", "ablation", "compare", "compare_quick", "fast_cpu_rnn",
                                        "fast_cpu_transformer"])
def test_no_fit_of_an_experiment_is_refused(experiment):
    fits = dict(experiment_fits(experiment))
    assert fits
    refused = {label: error for label, args in fits.items() if (error := budget_error(**args))}
    assert refused == {}
    if experiment == "ablation":  # 600 steps validated at 200, 400 and 600: reached at its first check
        assert {(a["max_steps"], a["every"], a["every_n_epochs"]) for a in fits.values()} == {(600, 200, None)}


# ---- through the real CLI -----------------------------------------------------------------------

def test_a_single_run_ending_before_its_first_validation_is_refused_before_training(tmp_path, cache_dir):
    proc = run_cli("imdb_lm.train", *TINY, "trainer.max_steps=3", cwd=tmp_path, cache=cache_dir, check=False)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: trainer.max_steps=3 ends the fit at optimizer step 3, before its first "
                           "validation (in step 4): one epoch is 4 optimizer steps (4 training batches)")
    assert "trainer.val_check_interval=1.0" in line and "set trainer.max_steps>=4" in line
    assert "best val accuracy" not in proc.stdout and run_dirs(tmp_path) == []  # nothing half-written
    assert not list((tmp_path / "outputs").rglob("config.yaml"))


def test_a_run_that_ended_without_a_validation_is_failed_not_completed(tmp_path, cache_dir):
    """No training batch at all: nothing to check before training; the record says `failed`, and why."""
    proc = run_cli("imdb_lm.train", *TINY, "trainer.limit_train_batches=0", cwd=tmp_path, cache=cache_dir,
                   check=False)
    assert proc.returncode == 2
    record = load_metrics(run_dirs(tmp_path)[0])
    assert record["status"] == "failed" and record["metrics"]["test"] == {}
    assert record["error"].startswith("the fit ended at optimizer step 0 without a validation "
                                      "(trainer.limit_train_batches=0, trainer.max_steps=-1, trainer.max_time=None)")
    assert proc.stderr.strip().splitlines()[-1] == f"error: {record['error']}"


def test_a_sweeps_trials_that_would_not_validate_are_failed_with_the_line(tmp_path, cache_dir):
    storage = str(tmp_path / "study.journal")
    proc = run_cli("imdb_lm.train", "--multirun", "hparams_search=optuna", "model=gru", *TINY, "logger=none",
                   "~callbacks.attributions", "hydra/sweeper/pruner=median", "hydra.sweeper.n_trials=2",
                   f"hydra.sweeper.storage={storage}", "trainer.max_steps=3", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                   cwd=tmp_path, cache=cache_dir)
    records = [json.loads(p.read_text()) for p in (tmp_path / "sweep").rglob("metrics.json")]
    assert len(records) == 2 and {r["status"] for r in records} == {"failed"}
    errors = {r["config"]["optuna_trial"]["number"]: r["error"] for r in records}
    assert all("trainer.max_steps=3 ends the fit at optimizer step 3" in e and "trainer.max_steps>=" in e
               for e in errors.values())
    study = optuna.load_study(study_name="gru", storage=open_storage(resolve(storage)))
    for trial in study.get_trials():
        assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["error"] == errors[trial.number]
        assert f"trial {trial.number}: failed: {errors[trial.number]}" in proc.stdout + proc.stderr
    assert "TypeError" not in proc.stdout + proc.stderr
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["trials"] == {"fail": 2} and results["failed"] == errors and results["best_value"] is None


def test_a_seeded_grid_sweep_logs_each_failed_job_with_its_line(tmp_path, cache_dir):
    proc = run_cli("imdb_lm.train", "--multirun", "hydra/sweeper=seeded_grid", "model=gru", *TINY, "logger=none",
                   "trainer.max_steps=3", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path, cache=cache_dir)
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "sweep").rglob("metrics.json")]
    assert record["status"] == "failed" and "trainer.max_steps=3 ends the fit at optimizer step 3" in record["error"]
    assert f"failed: {record['error']}" in proc.stdout + proc.stderr
    assert "no successful job to reseed" in proc.stdout + proc.stderr
