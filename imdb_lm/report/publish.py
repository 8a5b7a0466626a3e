"""`python -m imdb_lm.report.publish SWEEP_DIR [MORE_DIRS] out=docs/study`: compact records for the repo.

Writes, per run under the folders (every status but `interrupted`: that run is still to be resumed),
`<out>/runs/<model>-<config key>/metrics.json`: its record without paths, machine-independent and
small, holding its per-review test outcomes as bits in review-hash order (report/outcomes.py) and its
`imdb_lm.evaluate` results (out-of-domain accuracy). Then `<out>/results.csv`, one row per published
run. Runs already in `out` stay; a run published again is replaced by its newest record.

The file name is the run folder's own (`metrics.json`), so `skip_completed` finds the compact records
with `results_dirs=[outputs,docs/study]` and a study continues from the repo, and
`python -m imdb_lm.report docs/study` rebuilds the report from them alone.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import sys
from pathlib import Path, PurePath

from imdb_lm.config.options import Option, run_main
from imdb_lm.errors import UserError

OPTIONS = [
    Option("dirs", [], "sweep or run folders, searched recursively for metrics.json", list, positional=True),
    Option("out", "docs/study", "folder of the compact records and results.csv", str),
]
RUNS_DIR = "runs"
RESULTS_CSV = "results.csv"
EXPLAIN_LIMIT = 64_000  # bytes: an explain.json above this stays out (the report then lacks its scores)
COLUMNS = ["model", "family", "optimizer", "lr", "batch_size", "seed", "train_reviews", "stage", "val_acc",
           "test_acc", "ood_acc", "train_seconds", "status", "config_key", "record"]
# An absolute path inside a string: at its start or after a space, quote, '=' or '(' (not a URL's '://').
ABSOLUTE_PATH = re.compile(r"(?:(?<=^)|(?<=[\s'\"=(\[,]))(?:~?/|[A-Za-z]:[\\/])[^\s'\",)\]]*")
# Record fields that only say where files were on the machine that made the run.
MACHINE_FIELDS = ("run_dir", "traceback", "reused_from", "resumed_from", "checkpoint")


def strip_paths(node):
    """The same structure with every absolute path replaced by its last part (a file or folder name)."""
    if isinstance(node, dict):
        return {k: strip_paths(v) for k, v in node.items()}
    if isinstance(node, list):
        return [strip_paths(v) for v in node]
    if isinstance(node, str):
        return ABSOLUTE_PATH.sub(lambda m: PurePath(m.group().replace("\\", "/")).name or "(path)", node)
    return node


def compact(record: dict) -> dict:
    """A run's record as published: no paths, test outcomes as bits, evaluations inside."""
    from imdb_lm.report import collect, outcomes

    out = {k: copy.deepcopy(v) for k, v in record.items() if k not in (*MACHINE_FIELDS, outcomes.OUTCOMES_KEY)}
    config = out.get("config") or {}
    for section in ("paths", "hydra"):
        config.pop(section, None)
    evaluations = collect.evaluations(record)
    if evaluations:
        out["evaluations"] = evaluations
    out = strip_paths(out)
    stored = dict(record.get(outcomes.OUTCOMES_KEY) or {})
    for name in [None, *(n for n, e in evaluations.items() if e.get("out_of_domain"))]:
        found = outcomes.run_outcomes(record["run_dir"], record, name)
        if found is not None:  # added after stripping: nothing in the bits is a path
            stored[name or "test"] = outcomes.encode(found)
    if stored:
        out[outcomes.OUTCOMES_KEY] = stored
    return out


def keep_published(new: dict, earlier: dict) -> dict:
    """`new` (compact) with what the published record of the same result holds and `new` lacks: a job
    reused by a later sweep is a copy of its record made without the evaluations stored beside the
    original (out of domain), and publishing that copy must not drop them. A different result (the
    job trained again) replaces the earlier record whole: its evaluations scored another checkpoint."""
    from imdb_lm.report import outcomes

    if new.get("finished_at") != earlier.get("finished_at"):
        return new
    merged = dict(new)
    for key in ("evaluations", outcomes.OUTCOMES_KEY):
        kept = {**(earlier.get(key) or {}), **(new.get(key) or {})}
        if kept:
            merged[key] = kept
    return merged


def record_name(record: dict) -> str:
    """A stable folder name: the model and the run key (a keyless failed job: a hash of where it ran)."""
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", str((record.get("model") or {}).get("name") or "run"))
    key = record.get("config_key") or "nokey-" + hashlib.sha256(
        f"{Path(record['run_dir']).name}|{record.get('finished_at')}".encode()).hexdigest()[:12]
    return f"{model}-{key}"


def _explain(record: dict) -> str | None:
    from imdb_lm.runs.records import EXPLAIN_FILE

    path = Path(record["run_dir"]) / EXPLAIN_FILE
    if path.is_file() and path.stat().st_size <= EXPLAIN_LIMIT:
        return json.dumps(strip_paths(json.loads(path.read_text(encoding="utf-8"))), separators=(",", ":"))
    return None


def results_table(out: Path):
    """One row per published run (the columns of docs/study/results.csv)."""
    from imdb_lm.report import collect

    frame = collect.runs_frame(collect.find_records([out / RUNS_DIR]))
    frame["train_seconds"] = frame["fit_seconds"]
    frame["config_key"] = frame["job_key"]
    frame["record"] = [Path(d).relative_to(out).as_posix() for d in frame["run_dir"]]
    return frame[COLUMNS]


def publish(cfg) -> dict:
    from imdb_lm.atomic import write_text
    from imdb_lm.report import collect
    from imdb_lm.runs.records import EXPLAIN_FILE, METRICS_FILE

    if not cfg.dirs:
        raise UserError("name at least one sweep or run folder, e.g. python -m imdb_lm.report.publish "
                        "outputs/multirun/<sweep> out=docs/study")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"out={out} is a file; name a folder (e.g. out=docs/study)")
    records = [r for r in collect.find_records(list(cfg.dirs)) if r.get("status") != "interrupted"]
    published = collect.find_records([out / RUNS_DIR]) if (out / RUNS_DIR).is_dir() else []
    collect.check_fingerprints(records + published)  # one frozen split in the repo, or nothing is written
    newest: dict[str, dict] = {}
    for record in sorted(records, key=lambda r: r.get("finished_at") or ""):
        newest[record_name(record)] = record
    # Everything is built before anything is written: a bad record stops the command with nothing changed.
    earlier = {Path(r["run_dir"]).name: r for r in published}
    files, stale = {}, []
    for name, record in sorted(newest.items()):
        record_out = compact(record)
        if name in earlier:
            record_out = keep_published(record_out, earlier[name])
        files[out / RUNS_DIR / name / METRICS_FILE] = json.dumps(record_out, separators=(",", ":"))
        explain = _explain(record)
        if explain is not None:
            files[out / RUNS_DIR / name / EXPLAIN_FILE] = explain
        elif name in earlier and record_out.get("finished_at") != earlier[name].get("finished_at"):
            stale.append(out / RUNS_DIR / name / EXPLAIN_FILE)  # explained another checkpoint
    for path, text in files.items():
        write_text(path, text + "\n")
    for path in stale:
        path.unlink(missing_ok=True)
    table = results_table(out)
    write_text(out / RESULTS_CSV, table.to_csv(index=False))
    sizes = [p.stat().st_size for p in (out / RUNS_DIR).rglob("*") if p.is_file()]
    print(f"{len(newest)} run(s) published; {len(table)} in {out / RESULTS_CSV}; {len(sizes)} files under "
          f"{out / RUNS_DIR}, {sum(sizes) / 1e6:.2f} MB ({sum(sizes) / max(1, len(table)) / 1e3:.1f} kB per run)")
    return {"published": sorted(newest), "results": out / RESULTS_CSV}


def main(argv: list[str] | None = None) -> None:
    run_main(publish, sys.argv[1:] if argv is None else argv, OPTIONS, __doc__)


if __name__ == "__main__":
    main()
