"""Explain trained runs and score the explanations: the library behind `python -m imdb_lm.explain`
and the report's interpretability section.

Writes, per run, `explain.json` (faithfulness, completeness, per-review AOPC) and `explain.html`
next to its metrics.json; several runs are explained on the same test reviews (their test
fingerprints must match) and also shown side by side on one page.
"""

from __future__ import annotations

import time
from pathlib import Path

from imdb_lm.errors import UserError
from imdb_lm.evaluation.inference import run_split
from imdb_lm.explain.explainer import Settings, explain_run, select
from imdb_lm.explain.page import attention_image, render
from imdb_lm.runs.checkpoint import load_run
from imdb_lm.runs.folders import EXPLAIN_PAGE
from imdb_lm.runs.records import EXPLAIN_FILE, write_artifact, write_text


def _page_reviews(reviews, page, explained: dict[str, dict], runs) -> list[dict]:
    out = []
    for i in page:
        per_model = {}
        for name, run in zip(explained, runs, strict=True):
            e = explained[name]["per"][i]
            per_model[name] = {"prob_pos": e["prob_pos"], "tokens": run.tokenizer.tokens(e["ids"]),
                               "ig": e["ig"].scores, "rollout": e.get("rollout"),
                               "attention_png": attention_image(run.tokenizer.tokens(e["ids"]), e["maps"])
                               if e.get("maps") is not None else None}
        out.append({"label": reviews.labels[i], "hash": reviews.hashes[i], "per_model": per_model})
    return out


def _model_entry(name: str, run, record: dict) -> dict:
    test = ((run.record or {}).get("metrics") or {}).get("test") or {}
    return {"name": name, "family": run.family, "test_acc": test.get("acc"), **record}


def explain_runs(ckpt, n: int = 20, show: int = 4, per_category: int = 1, scan: int = 300, n_steps: int = 50,
                 random_repeats: int = 3, out: str | None = None, device: str = "auto") -> dict:
    """Explain the runs at `ckpt` (one path or a list) on the same first `n` test reviews."""
    if not ckpt:
        raise UserError("ckpt=<run folder or .ckpt> is required (ckpt=[A,B] for several runs)")
    counts = {"n": n, "show": show, "per_category": per_category, "scan": scan, "n_steps": n_steps,
              "random_repeats": random_repeats}
    for key, value in counts.items():
        if not isinstance(value, int) or value < (1 if key in ("n", "n_steps", "random_repeats") else 0):
            raise UserError(f"{key}={value} must be a {'positive' if key in ('n', 'n_steps') else 'non-negative'} integer")
    paths = [ckpt] if isinstance(ckpt, str) else list(ckpt)
    runs = [load_run(p, device) for p in paths]
    test_prints = {str(r.run_dir): ((r.record or {}).get("splits") or {}).get("test") for r in runs}
    if len({str(v) for v in test_prints.values()}) > 1:
        raise UserError(f"ckpt: these runs were tested on different reviews (test fingerprints {test_prints}); "
                        "explain them together only when they share the test split")
    s = Settings(**counts)
    reviews = run_split(runs[0], "test")
    scored, page = select(reviews, runs, s)
    names = []
    for r in runs:
        base = str(r.cfg.model.get("name", r.family))
        names.append(base if base not in names else f"{base}-{len(names)}")
    explained, entries = {}, []
    for name, run in zip(names, runs, strict=True):
        start = time.perf_counter()
        result = explain_run(run, reviews, scored, page, s)
        record = {**result["record"], "seconds": time.perf_counter() - start,
                  "method": {"attribution": "integrated gradients on the word embeddings, target log-odds(positive)",
                             "baseline": "text tokens replaced by padding, special tokens and length kept",
                             "n_steps": s.n_steps, "deletion": "remove top-k% tokens, k in fractions",
                             "random_repeats": s.random_repeats},
                  "reviews": [reviews.hashes[i] for i in scored], "ckpt": str(run.ckpt_path)}
        write_artifact(run.run_dir, EXPLAIN_FILE, record)
        explained[name] = result
        entries.append(_model_entry(name, run, record))
        single = render(f"Explanations: {name}", [entries[-1]], _page_reviews(reviews, page, {name: result}, [run]))
        write_text(run.run_dir / EXPLAIN_PAGE, single)
        print(f"{name}: {run.run_dir / EXPLAIN_FILE}  {run.run_dir / EXPLAIN_PAGE}")
    if len(runs) > 1:
        out = Path(out) if out else Path("outputs/explain") / time.strftime("%Y-%m-%d_%H-%M-%S") / EXPLAIN_PAGE
        write_text(out, render("Explanations: " + " vs ".join(names), entries,
                               _page_reviews(reviews, page, explained, runs)))
        print(f"combined page: {out}")
    print(f"\nfaithfulness on the same {len(scored)} test reviews (AOPC = mean drop of the predicted class's "
          "probability after deleting the top 1-50% tokens):")
    print(f"{'model':<16}{'explanation':<24}{'AOPC':>8}{'random':>8}{'gain':>8}  IG completeness")
    for e in entries:
        for method, f in e["faithfulness"].items():
            print(f"{e['name']:<16}{method:<24}{f['aopc']:8.4f}{f['random_aopc']:8.4f}{f['aopc_gain']:+8.4f}"
                  f"  {e['completeness']:.1e}")
    return {e["name"]: e for e in entries}

