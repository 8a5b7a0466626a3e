"""`python -m imdb_lm.study.ood [SWEEP]`: the study's out-of-domain step.

Reads `study_selection.json` of a study sweep (written by the seeded-grid sweeper) and evaluates
every run of each model's selected setting (all its seeds, so families can be paired seed by seed)
on another source, by default the Rotten Tomatoes snippets bundled with the IMDB rows. Results go
where the run folder contract puts evaluations: `evaluations/<source>.json` in the run folder that
holds the checkpoint (a job reused by skip_completed points to it). Resumable: a run that already
has that evaluation is skipped; a run whose checkpoint is not here (a record committed from another
machine) is reported and skipped.

Checkpoints stay on the machine that trained them (only compact records are committed), so a study
that moves between machines evaluates before it moves: `runs=finished` takes every promoted and seed
run of the sweep that has finished so far, whichever of them the seed stage will select, before
`study_selection.json` exists. Publishing then carries their results into docs/study.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from imdb_lm.config.options import Option, run_main
from imdb_lm.errors import UserError
from imdb_lm.runs.folders import BEST_CHECKPOINT, EVALUATIONS_DIR, METRICS_FILE

SELECTION_FILE = "study_selection.json"  # hydra_plugins/imdb_lm_sweeper/seeded_grid.py writes it
OPTIONS = [
    Option("sweep", None, "the study sweep folder (default: the newest outputs/multirun/study_*)", str, positional=True),
    Option("source", "rotten_tomatoes", "the other source (data.source of imdb_lm.evaluate)"),
    Option("device", "auto", "auto | cpu | cuda[:N]"),
    Option("runs", "selected", "selected: every seed of each model's selected setting (after the seed stage); "
                               "finished: every promoted and seed run finished so far (before a move)"),
]
CANDIDATE_STAGES = ("promoted", "seed")  # the full-fidelity runs the seed stage selects from


def newest_sweep(root: Path = Path("outputs/multirun"), selected: bool = True) -> Path:
    """The newest study sweep under root (with its selection written, where `selected`)."""
    pattern = f"study_*/{SELECTION_FILE}" if selected else "study_*/multirun.yaml"
    sweeps = sorted((p.parent for p in root.glob(pattern)), key=lambda p: p.stat().st_mtime)
    if not sweeps:
        raise UserError(f"no study sweep{f' with {SELECTION_FILE}' if selected else ''} under {root}; "
                        "run `make study` first or give the sweep folder")
    return sweeps[-1]


def checkpoint_folder(run_dir: Path) -> Path:
    """The folder holding the run's checkpoint: the original run of a job reused by skip_completed."""
    record = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    return Path(record.get("reused_from") or run_dir)


def selected_runs(sweep: Path) -> list[Path]:
    path = sweep / SELECTION_FILE
    if not path.is_file():
        raise UserError(f"{path} does not exist: the sweep has not finished its seed stage; "
                        "rerun `make study` (finished jobs are reused)")
    selection = json.loads(path.read_text(encoding="utf-8"))
    return [Path(run["dir"]) for group in selection["groups"].values()
            for run in (group.get("selected") or {}).get("runs", [])]


def finished_runs(sweep: Path) -> list[Path]:
    """Every completed promoted or seed run of the sweep (the candidates of its selection)."""
    runs = []
    for path in sorted(sweep.glob(f"*/{METRICS_FILE}")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("stage") in CANDIDATE_STAGES and record.get("status") == "completed":
            runs.append(path.parent)
    return runs


def main_ood(cfg) -> list[Path]:
    from imdb_lm.evaluate import main as evaluate

    if cfg.runs not in ("selected", "finished"):
        raise UserError(f"runs={cfg.runs}: choose selected or finished")
    sweep = Path(cfg.sweep[0]) if cfg.sweep else newest_sweep(selected=cfg.runs == "selected")
    done = []
    for run_dir in selected_runs(sweep) if cfg.runs == "selected" else finished_runs(sweep):
        folder = checkpoint_folder(run_dir)
        result = folder / EVALUATIONS_DIR / f"{cfg.source}.json"
        if result.is_file():
            print(f"ood: {folder} already has {result.name}")
        elif not (folder / BEST_CHECKPOINT).is_file():
            print(f"ood: {folder} has no {BEST_CHECKPOINT} here (trained elsewhere): skipped")
            continue
        else:
            evaluate([f"ckpt={folder}", f"data.source={cfg.source}", f"device={cfg.device}"])
        done.append(result)
    print(f"ood: {len(done)} {cfg.runs} runs evaluated on {cfg.source} (sweep {sweep})")
    return done


def main(argv: list[str] | None = None) -> None:
    run_main(main_ood, sys.argv[1:] if argv is None else argv, OPTIONS, __doc__)


if __name__ == "__main__":
    main()
