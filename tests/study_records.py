"""Constructed run folders of a study (grid, seeds, curves, ablations, out-of-domain evaluations) whose
per-review outcomes are chosen, so the report's statistics and tables have known answers.

Every run is scored on the same N_TEST test reviews (hashes h000..); a run's per-review correctness is
given as a boolean array and written as predictions.csv, as training writes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from imdb_lm.data.splits import fingerprint
from imdb_lm.runs.records import write_metrics, write_predictions

N_TEST = 200
HASHES = [f"h{i:03d}" for i in range(N_TEST)]
LABELS = np.arange(N_TEST) % 2 == 0  # balanced: majority-class share 50%
SPLITS = {"train": {"count": 20000, "digest": "full"}, "train_full": {"count": 20000, "digest": "full"},
          "val": {"count": 2500, "digest": "val"}, "test": fingerprint(HASHES).as_dict()}
RECIPE_LR = {"recurrent": {"adam": 2e-3, "sgd": 0.1}, "transformer": {"adamw": 5e-5, "sgd": 1e-3},
             "bow": {"adam": 1e-2}}


N_OOD = 100  # out-of-domain rows every run with an ood_acc is evaluated on
OOD_HASHES = [f"rt{i:03d}" for i in range(N_OOD)]
OOD_LABELS = np.arange(N_OOD) % 2 == 1


def correct_at(accuracy: float, offset: int = 0, n: int = N_TEST) -> np.ndarray:
    """A correctness pattern with the given accuracy: reviews offset.. are right, cyclically."""
    right = round(accuracy * n)
    out = np.zeros(n, bool)
    out[(np.arange(right) + offset) % n] = True
    return out


def write_run(root: Path, name: str, *, model: str, family: str, optimizer: str = "adam", lr_scale: float = 1.0,
              batch_size: int = 64, seed: int = 42, val_acc: float, correct: np.ndarray | None = None,
              status: str = "completed", stage: str | None = None, train_reviews: int = 20000,
              max_epochs: int = 5, fit_seconds: float = 100.0, ood_acc: float | None = None,
              latency: float = 2.0, tokens_per_s: float = 1000.0, hparams: dict | None = None,
              epochs_run: int | None = None, wall_seconds: float | None = None, env: dict | None = None,
              config: dict | None = None, history: list[dict] | None = None, data: dict | None = None) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    lr = RECIPE_LR[family].get(optimizer, 1e-3) * lr_scale
    test = {}
    if correct is not None:
        test = {"acc": float(correct.mean()), "f1": float(correct.mean()), "auroc": float(correct.mean()), "loss": 0.5}
        probs = np.where(correct == LABELS, 0.9, 0.1)  # prob > 0.5 predicts positive
        write_predictions(run_dir, HASHES, LABELS.astype(int).tolist(), probs.tolist())
    finished_at = f"2026-01-01T00:00:{len(list(root.iterdir())):02d}+00:00"
    record = {
        "status": status, "error": None if status == "completed" else "constructed failure",
        "finished_at": finished_at,
        "model": {"name": model, "family": family, "params": {"total": 1_000_000, "trainable": 1_000_000}},
        "hparams": {"model": model, "family": family, "optimizer": optimizer, "lr": lr, "batch_size": batch_size,
                    "max_length": 128, "max_epochs": max_epochs, "scheduler": "linear",
                    "train_limit": None if train_reviews == 20000 else train_reviews, "seed": seed,
                    **(hparams or {})},
        "seed": seed, "splits": {**SPLITS, "train": {"count": train_reviews, "digest": f"sub{train_reviews}"}},
        "metrics": {"best_val_acc": val_acc, "best_epoch": 1, "test": test},
        "timing": {"fit_seconds": fit_seconds, "mean_epoch_seconds": fit_seconds / max_epochs,
                   "test_samples_per_s": 100.0, "latency_ms_p50": latency, "train_tokens_per_s": tokens_per_s,
                   **({"epoch_seconds": [fit_seconds / epochs_run] * epochs_run} if epochs_run else {})},
        "env": env or {"device": "cpu: constructed"},
        "history": history if history is not None else [{"epoch": 0, "val_acc": val_acc, "train_loss": 0.5}],
        "config": {"lr_scale": lr_scale, "paths": {"run_dir": str(run_dir)}, **(config or {})},
        "config_key": f"key-{name}", "results_version": 1,
    }
    if data is not None:  # what the data module recorded (e.g. truncated_share per split)
        record["data"] = data
    if wall_seconds is not None:  # started that long before it finished
        record["started_at"] = (pd.Timestamp(finished_at) - pd.Timedelta(seconds=wall_seconds)).isoformat()
    if stage is not None:
        record["stage"] = stage
        record["train_reviews"] = train_reviews
    write_metrics(run_dir, record)
    if ood_acc is not None:  # as imdb_lm.evaluate writes it: the record and its per-review predictions
        ood_correct = correct_at(ood_acc, seed % N_OOD, N_OOD)
        evaluation = {"schema_version": 2, "ckpt": str(run_dir / "checkpoints" / "best.ckpt"),
                      "source": {"source": "rotten_tomatoes"}, "split": "all", "out_of_domain": True,
                      "fingerprint": fingerprint(OOD_HASHES).as_dict(),
                      "metrics": {"test": {"acc": float(ood_correct.mean())}}}
        probs = np.where(ood_correct == OOD_LABELS, 0.9, 0.1)
        write_predictions(run_dir, OOD_HASHES, OOD_LABELS.astype(int).tolist(), probs.tolist(), "rotten_tomatoes")
        (run_dir / "evaluations" / "rotten_tomatoes.json").write_text(json.dumps(evaluation))
    return run_dir


def write_study(root: Path) -> Path:
    """A small study with known answers (see the tests that read it):

    - grid (1,000 reviews, 2 epochs): gru over optimizer x batch size; at batch 16 the setting with the
      best *test* accuracy (sgd) is not the one validation chooses (adam); sgd at batch 64 failed.
    - seeds (full fidelity, 20,000 reviews): gru adam/64 and transformer adamw/16, 3 seeds each; the
      transformer 10 points ahead in every seed; out-of-domain accuracy for each.
    - curves: both families at 500 and 2,000 reviews, 3 seeds; the RNN leads at 500, the transformer at 2,000.
    - ablations: a bigru_large and a transformer with the best validation accuracy of all, never selected.
    """
    grid = dict(stage="grid", train_reviews=1000, max_epochs=2)
    write_run(root, "grid-gru-adam-16", model="gru", family="recurrent", batch_size=16, val_acc=0.80,
              correct=correct_at(0.70), **grid)
    write_run(root, "grid-gru-sgd-16", model="gru", family="recurrent", optimizer="sgd", batch_size=16,
              val_acc=0.70, correct=correct_at(0.78), **grid)
    write_run(root, "grid-gru-adam-64", model="gru", family="recurrent", batch_size=64, val_acc=0.82,
              correct=correct_at(0.74), **grid)
    write_run(root, "grid-gru-sgd-64", model="gru", family="recurrent", optimizer="sgd", batch_size=64,
              val_acc=0.50, correct=correct_at(0.50), **grid)
    for seed, offset in ((42, 0), (1, 7), (2, 13)):
        write_run(root, f"seed-gru-{seed}", model="gru", family="recurrent", seed=seed, val_acc=0.84,
                  correct=correct_at(0.75, offset), stage="seed", ood_acc=0.65, fit_seconds=100)
        write_run(root, f"seed-trf-{seed}", model="transformer", family="transformer", optimizer="adamw",
                  batch_size=16, seed=seed, val_acc=0.90, correct=correct_at(0.85, offset), stage="seed",
                  ood_acc=0.80, fit_seconds=1000, latency=20.0)
        for size, rnn, trf in ((500, 0.70, 0.60), (2000, 0.72, 0.80)):
            common = dict(seed=seed, stage="curve", train_reviews=size)
            write_run(root, f"curve-gru-{size}-{seed}", model="gru", family="recurrent", val_acc=rnn,
                      correct=correct_at(rnn + 0.01 * (seed % 3), offset), fit_seconds=size / 100, **common)
            write_run(root, f"curve-trf-{size}-{seed}", model="transformer", family="transformer", optimizer="adamw",
                      batch_size=16, val_acc=trf, correct=correct_at(trf + 0.01 * (seed % 3), offset),
                      fit_seconds=size / 10, **common)
        write_run(root, f"ablation-bigru_large-{seed}", model="bigru_large", family="recurrent", seed=seed,
                  val_acc=0.99, correct=correct_at(0.60, offset), stage="ablation")
        write_run(root, f"ablation-trf-{seed}", model="transformer", family="transformer", optimizer="adamw",
                  lr_scale=3.0, batch_size=16, seed=seed, val_acc=0.99, correct=correct_at(0.55, offset),
                  stage="ablation")
    return root


def benched_figures(seconds_per_mtok: float, latency: float, rounds: list[float] | None = None) -> dict:
    """A model's figures in an across-models bench; `rounds`: seconds per million tokens per interleaved round."""
    return {"family": "any", "params": {"total": 2, "non_embedding": 1},
            "config": {"max_length": 128, "batch_size": 16, "precision": "32-true", "train_slice": 256,
                       "infer_sample": 256},
            "train": {"tokens_per_s": 1e6 / seconds_per_mtok, "tokens_per_s_all": [1e6 / r for r in rounds or []]},
            "train_seconds_per_million_tokens": seconds_per_mtok,
            "inference": {"latency_ms_p50": latency}}


def write_bench(root: Path, models: dict[str, dict]) -> None:
    """An interleaved bench record (speed.json) of the given models' figures beside the runs."""
    (root / "speed.json").write_text(json.dumps({
        "created_at": "2026-01-01T00:00:00+00:00", "env": {"device": "cpu: constructed"}, "models": {},
        "across_models": models}))
