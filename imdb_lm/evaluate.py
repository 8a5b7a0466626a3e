"""`python -m imdb_lm.evaluate ckpt=<run folder|.ckpt>`: re-test a checkpoint, on its own split or
on another source (`data.source=rotten_tomatoes`: the bundled critic snippets, out of domain).

Measures with the training code (same metrics callback: accuracy, F1, AUROC, loss, throughput) and
writes `evaluations/<name>.json` plus its error analysis (`<name>.analysis.json`,
`<name>.reliability.png`) in the run folder.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone

from omegaconf import OmegaConf

from imdb_lm.config.options import Option, run_main
from imdb_lm.errors import UserError
from imdb_lm.runs.folders import EVALUATIONS_DIR

OPTIONS = [
    Option("ckpt", None, "a run folder written by imdb_lm.train, or one of its checkpoints/*.ckpt (required)", str),
    Option("split", "test", "own-source evaluation: train | val | test, rebuilt by the frozen rule (its "
                            "fingerprint must equal the run's)"),
    Option("data", None, "another source, evaluated on all its rows: data.source=rotten_tomatoes | csv "
                         "(data.path=FILE) | aclimdb | hf | bundled; data.path, data.text_column, "
                         "data.label_column, data.hf_name as in training", section=True),
    Option("batch_size", 64, "reviews per forward pass"),
    Option("device", "auto", "auto | cpu | cuda[:N]"),
    Option("name", None, "output name (default: the split or source)", str),
]
DATA_KEYS = ("source", "path", "text_column", "label_column", "hf_name")


def _target(run, overrides: dict) -> tuple[bool, dict]:
    """(is another source, the data arguments to load)."""
    unknown = sorted(set(overrides) - set(DATA_KEYS))
    if unknown:
        raise UserError(f"data.{unknown[0]} is not an evaluation option; use data.{', data.'.join(DATA_KEYS)}")
    from imdb_lm.evaluation.inference import data_args_of

    own = data_args_of(run.cfg.data)
    if overrides.get("source") and overrides["source"] != own["source"] and "path" not in overrides:
        overrides = {**overrides, "path": None}  # another source does not inherit the run's path
    wanted = {**own, **overrides}
    return wanted != own, wanted


def evaluate(cfg) -> dict:
    if not cfg.ckpt:
        raise UserError("ckpt=<run folder or .ckpt> is required (e.g. ckpt=outputs/runs/<run>)")
    if not isinstance(cfg.batch_size, int) or cfg.batch_size <= 0:
        raise UserError(f"batch_size={cfg.batch_size} must be a positive integer")
    # Imported once the options are known to be good: --help and a mistyped option answer at once.
    import lightning as L

    from imdb_lm.callbacks.metrics import MetricsTimingCallback
    from imdb_lm.data.splits import fingerprint
    from imdb_lm.evaluation.error_analysis import write_analysis
    from imdb_lm.evaluation.inference import encode, loader, run_split, source_reviews
    from imdb_lm.memory import keep_freed_memory
    from imdb_lm.runs.checkpoint import load_run
    from imdb_lm.runs.records import write_artifact, write_predictions

    keep_freed_memory()  # as training does: batches reuse memory instead of faulting in fresh pages
    run = load_run(cfg.ckpt, cfg.device)
    other, data_args = _target(run, OmegaConf.to_container(cfg.data, resolve=True))
    if other:
        reviews = source_reviews(data_args)
        split = "all"
        default_name = data_args["source"] + (f"-{re.sub(r'[^A-Za-z0-9]+', '_', str(data_args['path']))[-40:]}"
                                              if data_args["path"] else "")
    else:
        reviews = run_split(run, cfg.split)
        split = cfg.split
        default_name = f"{split}"
    name = str(cfg.name or default_name)
    data = encode(run, reviews)
    timing = MetricsTimingCallback()
    trainer = L.Trainer(accelerator=run.device.type, devices=1, logger=False, enable_checkpointing=False,
                        precision=str(run.cfg.trainer.get("precision", "32-true")), callbacks=[timing],
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.test(run.model, dataloaders=loader(run, data, cfg.batch_size), verbose=False)
    probs = [timing.test_predictions[i] for i in range(len(data))]
    metrics = {k: v for k, v in timing.test_record.items() if k not in ("seconds", "samples_per_s")}
    trained_test = (((run.record or {}).get("metrics") or {}).get("test")) or {}
    record = {
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ckpt": str(run.ckpt_path), "source": data_args, "split": split, "out_of_domain": other,
        "fingerprint": fingerprint(reviews.hashes).as_dict(),
        "metrics": {"test": metrics},
        "timing": {"seconds": timing.test_record.get("seconds"), "samples_per_s": timing.test_record.get("samples_per_s"),
                   "device": str(run.device)},
        "training_test_metrics": trained_test if not other and split == "test" else None,
    }
    analysis = write_analysis(run.run_dir, reviews.texts, reviews.labels, probs, reviews.hashes,
                              prefix=f"{EVALUATIONS_DIR}/{name}.", title=f"{name} ({len(reviews)} reviews)")
    record["calibration_ece"] = analysis["calibration"]["ece"]
    # per review, so that two runs evaluated on the same rows are compared review by review (the report)
    record["predictions"] = write_predictions(run.run_dir, reviews.hashes, reviews.labels, probs, name).name
    path = write_artifact(run.run_dir, f"{EVALUATIONS_DIR}/{name}.json", record)
    where = f"{data_args['source']} (all {len(reviews)} rows)" if other else f"{split} split ({len(reviews)} reviews, fingerprint ok)"
    print(f"{run.cfg.model.get('name', run.family)} on {where}: accuracy {metrics['acc']:.4f}  F1 {metrics['f1']:.4f}  "
          f"AUROC {metrics['auroc']:.4f}  loss {metrics['loss']:.4f}  ECE {record['calibration_ece']:.4f}")
    if record["training_test_metrics"]:
        print(f"training recorded test accuracy {trained_test.get('acc', float('nan')):.4f}")
    print(f"results: {path}")
    return record


def main(argv: list[str] | None = None) -> None:
    run_main(evaluate, sys.argv[1:] if argv is None else argv, OPTIONS, __doc__)


if __name__ == "__main__":
    main()
