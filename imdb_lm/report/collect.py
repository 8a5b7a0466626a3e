"""Collect runs: every `metrics.json` under the given folders -> one pandas row per run.

Records are read only through `imdb_lm.runs.records`. A job reused by `skip_completed` appears in several
sweep folders with the same job key: it is counted once. Runs are compared only when every split
fingerprint that decides a comparison matches (val, test and the parent train split; train subsets
may differ); otherwise the report stops and names the differing runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from imdb_lm.errors import UserError
from imdb_lm.models.pretrained import BUNDLED_NAMES
from imdb_lm.report import cost, outcomes
from imdb_lm.report.timing import outlier_reasons
from imdb_lm.runs.records import EVALUATIONS_DIR, METRICS_FILE, read_metrics

SPLITS = ("train", "val", "test")
# Everything that defines a setting except the seed: runs that differ only in seed are repeats.
SETTING = ["model", "family", "optimizer", "lr", "lr_scale", "batch_size", "max_length", "max_epochs",
           "scheduler", "train_limit"]


def find_records(dirs: list[str | Path]) -> list[dict]:
    records = []
    for root in dirs:
        root = Path(root)
        if not root.exists():
            raise UserError(f"{root} does not exist; pass a sweep folder such as outputs/multirun/<stamp>")
        paths = [root / METRICS_FILE] if (root / METRICS_FILE).is_file() else sorted(root.rglob(METRICS_FILE))
        for path in paths:
            try:
                records.append(read_metrics(path))
            except (ValueError, OSError) as err:
                raise UserError(f"{path} is not a readable run record ({err}); remove it or rerun that job") from err
    if not records:
        raise UserError(f"no {METRICS_FILE} under {', '.join(map(str, dirs))}; run a sweep first "
                        "(python -m imdb_lm.train --multirun experiment=compare_quick)")
    return records


# Runs are compared on the same test reviews and the same parent train split; their train subsets
# may differ (nested subsets of that parent: data-efficiency curves, low-fidelity grids), and so may
# their val subsets (val_limit: a low-fidelity grid validates on fewer reviews). With the same
# source and rule, equal test and parent train splits leave the same val split (the rest of the
# data), and every limit takes its subset by one rule (splits.subsample); runs whose val has the
# same size must have the same val reviews. Selection compares runs of one fidelity only.
COMPARED_SPLITS = ("test", "train_full")


def split_key(record: dict) -> tuple:
    splits = record.get("splits") or {}
    # Records made before train_full was written name only the train split they used.
    parent = splits.get("train_full") or splits.get("train") or {}
    chosen = {"test": splits.get("test") or {}, "train_full": parent}
    return tuple((name, chosen[name].get("count"), chosen[name].get("digest")) for name in COMPARED_SPLITS)


def _refuse(groups: dict, name_of_difference) -> None:
    if len(groups) <= 1:
        return
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    reference_key, reference_runs = ordered[0]
    lines = [f"{len(runs)} run(s) differ in the {name_of_difference(key, reference_key)} split, e.g. {runs[0]}"
             for key, runs in ordered[1:]]
    raise UserError(f"runs have different split fingerprints ({'; '.join(lines)}; the majority, "
                    f"e.g. {reference_runs[0]}, is the reference): report them separately")


def check_fingerprints(records: list[dict]) -> None:
    """Refuse to compare runs tested on different reviews, trained on subsets of different train
    splits, or validated on different reviews at one val size; name the runs that differ."""
    split = [r for r in records if r.get("splits")]  # failed jobs may have stopped before the data was split
    groups: dict[tuple, list[str]] = {}
    for record in split:
        groups.setdefault(split_key(record), []).append(record["run_dir"])
    _refuse(groups, lambda key, ref: "/".join(n for (n, c, d), (_, rc, rd) in zip(key, ref, strict=True)
                                              if (c, d) != (rc, rd)))
    by_size: dict[int | None, dict[str | None, list[str]]] = {}
    for record in split:
        val = record["splits"].get("val") or {}
        by_size.setdefault(val.get("count"), {}).setdefault(val.get("digest"), []).append(record["run_dir"])
    for digests in by_size.values():
        _refuse(digests, lambda key, ref: "val")


def _row(record: dict) -> dict:
    hp, metrics, timing = record.get("hparams") or {}, record.get("metrics") or {}, record.get("timing") or {}
    config, test = record.get("config") or {}, (record.get("metrics") or {}).get("test") or {}
    model, env = record.get("model") or {}, record.get("env") or {}
    params = model.get("params") or {}
    return {
        "run_dir": record["run_dir"], # Reused jobs are copies of one result: same config key, one row (records
        # without a key, e.g. unresolvable failures, stay rows of their own).
        "job_key": record.get("config_key") or record["run_dir"], "status": record.get("status"),
        "error": record.get("error"), "finished_at": record.get("finished_at") or "",
        "model": hp.get("model", model.get("name")), "family": hp.get("family", model.get("family")),
        "optimizer": hp.get("optimizer"), "lr": hp.get("lr"), "lr_scale": float(config.get("lr_scale", 1.0)),
        "batch_size": hp.get("batch_size"), "max_length": hp.get("max_length"),
        "max_epochs": hp.get("max_epochs"), "scheduler": hp.get("scheduler"),
        "max_steps": step_budget((config.get("trainer") or {}).get("max_steps")),
        # what the run did with its budget (report/design.py): optimizer steps, validations to choose from
        "steps_run": steps_run(record.get("history")),
        "val_check_interval": (config.get("trainer") or {}).get("val_check_interval"),
        "validations": validations(record.get("history"), (config.get("trainer") or {}).get("val_check_interval"),
                                   step_budget((config.get("trainer") or {}).get("max_steps")), record.get("status")),
        # the rest of the training policy (report/design.py states it from the records)
        "warmup_ratio": (config.get("scheduler") or {}).get("warmup_ratio"),
        "precision": hp.get("precision"), "gradient_clip_val": hp.get("gradient_clip_val"),
        "min_steps": ((config.get("callbacks") or {}).get("min_steps") or {}).get("steps"),
        "train_limit": hp.get("train_limit"), "seed": record.get("seed", hp.get("seed")),
        # more axes a sweep may vary (report/importance.py): regularisation, truncation, model shape
        "weight_decay": hp.get("weight_decay"), "truncation": hp.get("truncation"),
        **{k: v for k, v in hp.items() if k.startswith("model.")},
        "params": params.get("total"), "trainable_params": params.get("trainable"),
        "val_acc": metrics.get("best_val_acc"), "best_epoch": metrics.get("best_epoch"),
        "test_acc": test.get("acc"), "test_f1": test.get("f1"), "test_auroc": test.get("auroc"),
        "test_loss": test.get("loss"),
        "fit_seconds": timing.get("fit_seconds"), "epoch_seconds": timing.get("mean_epoch_seconds"),
        "epochs_given": epochs_given(hp.get("max_epochs"), timing.get("epoch_seconds")),
        "train_samples_per_s": timing.get("train_samples_per_s"),
        "train_tokens_per_s": timing.get("train_tokens_per_s"),
        "test_samples_per_s": timing.get("test_samples_per_s"),
        "latency_ms_p50": timing.get("latency_ms_p50"), "latency_ms_p95": timing.get("latency_ms_p95"),
        "device": (record.get("env") or {}).get("device"),
        "machine": cost.machine(env.get("device"), env.get("cpu_capability"), env.get("bf16_native")),
        "git_revision": env.get("git_revision"),
        "wall_seconds": cost.wall_seconds(record.get("started_at"), record.get("finished_at")),
        "has_predictions": outcomes.has_test_outcomes(record["run_dir"], record),
        # the study's stage (grid / promoted / seed / curve / ablation) and fidelity, where recorded
        "stage": record.get("stage"), "train_reviews": train_reviews(record),
        "val_reviews": ((record.get("splits") or {}).get("val") or {}).get("count"),
        # the share of reviews the length cut, per split, and in which tokens (report/design.py)
        "tokens": tokens((config.get("data") or {}), (config.get("model") or {})),
        **{f"truncated_{split}": (((record.get("data") or {}).get("truncated_share") or {}).get(split))
           for split in SPLITS},
        **out_of_domain(record),
    }


def step_budget(max_steps) -> int | None:
    """A run's optimizer-step budget (trainer.max_steps), None when unset (-1: train by epochs)."""
    return int(max_steps) if max_steps is not None and int(max_steps) > 0 else None


def steps_run(history) -> int | None:
    """Optimizer steps the run took: the step of its last validation (each history entry records one)."""
    steps = [h["step"] for h in history or [] if isinstance(h, dict) and h.get("step") is not None]
    return int(max(steps)) if steps else None


def validations(history, val_check_interval, max_steps: int | None, status) -> int | None:
    """How many validations the best checkpoint was chosen among. The history keeps one entry per epoch,
    so a step budget validated every `val_check_interval` steps (the ablation's) counts its intervals:
    all of them for a completed run, those it reached otherwise."""
    entries = [h for h in history or [] if isinstance(h, dict) and "val_acc" in h]
    if isinstance(val_check_interval, int) and val_check_interval > 0 and max_steps:
        reached = max_steps if status == "completed" else (steps_run(history) or 0)
        return max(reached // val_check_interval, len(entries))
    return len(entries) if history is not None else None


def tokens(data: dict, model: dict) -> str | None:
    """The tokens a length limit counts, as the report names them: data.tokenizer, and for a pretrained
    tokenizer its checkpoint (the bundled one is MiniLM-L6's)."""
    kind = data.get("tokenizer")
    if kind is None:
        return None
    if kind != "pretrained":
        return f"{kind} tokens"
    name = data.get("pretrained") or model.get("pretrained")
    return "MiniLM wordpieces" if name in BUNDLED_NAMES or name is None else f"{name} subwords"


def epochs_given(max_epochs, epoch_seconds) -> int | None:
    """The epochs a fit was given: the config's max_epochs, or the epochs it ran where more
    (callbacks.min_steps raises max_epochs on small subsets; records hold the config's value and one
    timing per epoch run). A run stopped early counts the config's value or what it ran."""
    ran = len(epoch_seconds) if isinstance(epoch_seconds, list) else 0
    if max_epochs is None:
        return ran or None
    return max(int(max_epochs), ran)


def train_reviews(record: dict) -> int | None:
    """Training reviews the run used: the study records it; older runs have their train split's count."""
    value = ((record.get("data") or {}).get("train_reviews") or record.get("train_reviews")
             or (record.get("hparams") or {}).get("train_reviews"))
    if value is None:
        value = ((record.get("splits") or {}).get("train") or {}).get("count")
    return int(value) if value is not None else None


def evaluations(record: dict) -> dict[str, dict]:
    """name -> `imdb_lm.evaluate` record of the run (from its folder, or carried by a compact record)."""
    if record.get("evaluations") is not None:
        return dict(record["evaluations"])
    folder = Path(record["run_dir"]) / EVALUATIONS_DIR
    found = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.name.endswith(".analysis.json"):
            continue
        try:
            found[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a broken evaluation is not a result; the run's own numbers still stand
    return found


def out_of_domain(record: dict) -> dict:
    """Accuracy on another source (the first out-of-domain evaluation by name, e.g. rotten_tomatoes)."""
    for name, evaluation in sorted(evaluations(record).items()):
        test = ((evaluation.get("metrics") or {}).get("test")) or {}
        if evaluation.get("out_of_domain") and test.get("acc") is not None:
            return {"ood_acc": test["acc"], "ood_source": name,
                    "ood_reviews": (evaluation.get("fingerprint") or {}).get("count")}
    return {"ood_acc": None, "ood_source": None, "ood_reviews": None}


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per distinct job (newest record wins), numbers as floats, sorted for stable output."""
    frame = pd.DataFrame([_row(r) for r in records])
    frame = frame.sort_values("finished_at").drop_duplicates("job_key", keep="last")
    numeric = ["lr", "lr_scale", "val_acc", "ood_acc", "test_acc", "test_f1", "test_auroc", "test_loss", "fit_seconds",
               "epoch_seconds", "wall_seconds", "train_samples_per_s", "train_tokens_per_s", "test_samples_per_s", "latency_ms_p50", "latency_ms_p95"]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    frame["timing_outlier"] = outlier_reasons(frame, SETTING)  # its timings are left out (report/timing.py)
    return frame.sort_values(["family", "model", "optimizer", "lr", "batch_size", "seed"],
                             na_position="last").reset_index(drop=True)


def majority_share(frame: pd.DataFrame) -> float | None:
    """Share of the most frequent label in the test split (all compared runs share that split)."""
    for run_dir in frame.loc[frame["has_predictions"], "run_dir"]:
        found = outcomes.run_outcomes(run_dir)
        if found is not None and found.count:
            positive = float(found.labels.mean())
            return max(positive, 1 - positive)
    return None


def load_runs(dirs: list[str | Path]) -> pd.DataFrame:
    """The report's input: every run under `dirs`, checked to share one frozen split."""
    records = find_records(dirs)
    check_fingerprints(records)
    return runs_frame(records)


def histories(run_dirs: list[str]) -> dict[str, list[dict]]:
    return {d: read_metrics(d).get("history") or [] for d in run_dirs}
