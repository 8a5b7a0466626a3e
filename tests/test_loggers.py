"""Trackers: each logger, offline, in a tiny real run, writes what its own tool reads, with the same
hyperparameters and final metrics as metrics.json; a tracker that is not installed costs one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import yaml

from imdb_lm.config.overrides import check_train_argv
from imdb_lm.errors import UserError
from tests.helpers import ROOT, TINY, cli_env, load_metrics, run_cli, run_dirs

FINAL = ("hp/val_acc", "hp/test_acc", "hp/fit_seconds", "hp/latency_ms_p50")


def needs(extra: str) -> None:
    """The optional trackers are installed by `make` (EXTRAS); a leaner install skips their tests."""
    pytest.importorskip(extra, reason=f"{extra} is not installed: pip install 'imdb_lm[{extra}]' (make installs it)")


def final_metrics(record: dict) -> dict[str, float]:
    return {"hp/val_acc": record["metrics"]["best_val_acc"], "hp/test_acc": record["metrics"]["test"]["acc"],
            "hp/fit_seconds": record["timing"]["fit_seconds"], "hp/latency_ms_p50": record["timing"]["latency_ms_p50"]}


def one_run(cwd, cache, *args):
    proc = run_cli("imdb_lm.train", *TINY, "model=gru", "model.hidden_size=16", "model.embedding_dim=16", *args,
                   cwd=cwd, cache=cache, timeout=600)
    (run_dir,) = run_dirs(cwd)
    return proc, run_dir, load_metrics(run_dir)


@pytest.fixture(scope="module")
def many(tmp_path_factory, cache_dir):
    """logger=many: TensorBoard, CSV and MLflow in one run."""
    needs("mlflow")
    return one_run(tmp_path_factory.mktemp("many"), cache_dir, "logger=many")


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory, cache_dir):
    """A list of loggers, W&B among them: offline by its config, no account, no network."""
    needs("wandb")
    return one_run(tmp_path_factory.mktemp("wandb"), cache_dir, "logger=[csv,wandb]")


def test_tensorboard_gets_hparams_and_final_metrics(many):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, run_dir, record = many
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    scalars, hparams = {}, {}
    for events in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        scalars |= {tag: acc.Scalars(tag)[-1].value for tag in acc.Tags()["scalars"]}
        try:  # what the HPARAMS tab reads
            content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        except KeyError:  # an events file without them
            continue
        for key, value in HParamsPluginData.FromString(content).session_start_info.hparams.items():
            hparams[key] = getattr(value, value.WhichOneof("kind"))
    assert {tag: scalars[tag] for tag in FINAL} == pytest.approx(final_metrics(record), rel=1e-6)
    # TensorBoard keeps numbers (booleans as 0/1) and strings
    assert hparams == {k: v if isinstance(v, str) else float(v) for k, v in record["hparams"].items()}


def test_csv_logger_writes_curves_hparams_and_final_metrics(many):
    proc, run_dir, record = many
    metrics = pd.read_csv(run_dir / "csv" / "metrics.csv")
    final = metrics.dropna(subset=["hp/val_acc"])
    assert len(final) == 1
    assert final[list(FINAL)].iloc[0].to_dict() == pytest.approx(final_metrics(record), rel=1e-6)
    assert metrics["val/acc"].dropna().tolist() == pytest.approx([record["metrics"]["val"]["acc"]])
    assert metrics["train/loss_step"].notna().sum() == 4  # debug=smoke: 4 steps, logged every step
    assert yaml.safe_load((run_dir / "csv" / "hparams.yaml").read_text()) == record["hparams"]
    assert f"csv: {run_dir / 'csv' / 'metrics.csv'}" in proc.stdout


def test_mlflow_store_holds_the_run_params_and_metrics(many):
    from mlflow.tracking import MlflowClient

    proc, run_dir, record = many
    uri = f"sqlite:///{run_dir.parents[2] / 'outputs' / 'mlflow.db'}"
    assert (run_dir.parents[1] / "mlflow.db").is_file()  # outputs/mlflow.db: one store for every run
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("imdb_lm")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"runs/{run_dir.name}" and run.data.tags["run_dir"] == str(run_dir)
    assert run.data.params == {k: str(v) for k, v in record["hparams"].items()}
    assert {k: run.data.metrics[k] for k in FINAL} == pytest.approx(final_metrics(record), rel=1e-6)
    val = client.get_metric_history(run.info.run_id, "val/acc")
    assert [m.value for m in val] == pytest.approx([record["metrics"]["val"]["acc"]])
    assert len(client.get_metric_history(run.info.run_id, "train/loss_step")) == 4
    assert f"mlflow ui --backend-store-uri {uri}" in proc.stdout and run.info.run_id in proc.stdout


def test_wandb_runs_offline_and_its_run_file_holds_config_and_metrics(wandb_run):
    from wandb_records import config, history, read_records

    proc, run_dir, record = wandb_run
    (run_file,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    records = read_records(run_file)
    assert {k: json.loads(v) for k, v in config(records).items() if not k.startswith("_")} == record["hparams"]
    rows = history(records)
    final = [row for row in rows if "hp/val_acc" in row]
    assert len(final) == 1
    assert {k: json.loads(final[0][k]) for k in FINAL} == pytest.approx(final_metrics(record), rel=1e-6)
    assert [json.loads(r["val/acc"]) for r in rows if "val/acc" in r] == pytest.approx([record["metrics"]["val"]["acc"]])
    assert f"wandb: wandb sync {run_file.parent}" in proc.stdout
    assert (run_dir / "csv" / "metrics.csv").is_file()  # the other logger of the list


def _without(module: str, tmp_path):
    """PYTHONPATH for a child process in which `module` cannot be imported (as if not installed)."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(f"import sys\nsys.modules[{module!r}] = None\n")
    return f"{blocker}{os.pathsep}{ROOT}"


@pytest.mark.parametrize(("module", "args"), [
    ("mlflow", ["logger=many"]),
    ("wandb", ["--multirun", "logger=csv,wandb", "seed=1,2"]),  # a sweep: refused before its folder exists
])
def test_missing_tracker_is_one_line_naming_its_extra_and_nothing_is_written(tmp_path, cache_dir, module, args):
    # fresh: the package is hidden through PYTHONPATH, which only a new interpreter reads
    proc = run_cli("imdb_lm.train", *TINY, *args, cwd=tmp_path, cache=cache_dir, check=False, timeout=300,
                   fresh=True, PYTHONPATH=_without(module, tmp_path))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"error: logger {module} needs the {module} package, which is not installed: "
                                   f"pip install 'imdb_lm[{module}]' (or choose another logger, e.g. logger=csv)")
    assert not (tmp_path / "outputs").exists()


def test_unknown_logger_in_a_list_names_the_choices():
    with pytest.raises(UserError, match=r"^logger=mlfow: no such logger; choose one of csv, many, mlflow, none, "
                                        r"tensorboard, wandb$"):
        check_train_argv([*TINY, "logger=[csv,mlfow]"])


def test_concurrent_jobs_share_one_new_mlflow_store(tmp_path):
    """Two processes start on a store that does not exist yet (tables and experiment are created
    once, under the file lock), then log at the same time; every run and point is in the store."""
    needs("mlflow")
    script = textwrap.dedent(f"""
        import sys
        from imdb_lm.loggers import mlflow_logger
        logger = mlflow_logger(tracking_uri="sqlite:///{tmp_path}/outputs/mlflow.db", experiment_name="sweep",
                               run_dir=sys.argv[1])
        for step in range(20):
            logger.log_metrics({{"val/acc": step / 20}}, step=step)
        logger.log_hyperparams({{"job": sys.argv[1]}})
        logger.finalize("success")
    """)
    env = cli_env(tmp_path / "cache")
    jobs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "multirun" / f"{i}_gru")], env=env,
                             cwd=tmp_path, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for job in jobs:
        assert job.wait(timeout=300) == 0, job.stderr.read()[-3000:]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("sweep").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["multirun/0_gru", "multirun/1_gru"]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 20
    # a deleted experiment of that name: one line with the fix, instead of MLflow's refusal mid-run
    from imdb_lm.loggers import mlflow_logger

    client.delete_experiment(client.get_experiment_by_name("sweep").experiment_id)
    with pytest.raises(UserError, match=r"^logger.mlflow.experiment_name=sweep is a deleted experiment of .*; "
                                        r"restore it \(mlflow experiments restore\) or choose another name$"):
        mlflow_logger(tracking_uri=f"sqlite:///{tmp_path}/outputs/mlflow.db", experiment_name="sweep",
                      run_dir=str(tmp_path / "multirun" / "2_gru"))
