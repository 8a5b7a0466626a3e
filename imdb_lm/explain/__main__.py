"""`python -m imdb_lm.explain ckpt=<run> [n=20]`: explain trained runs and score the explanations.

Options (key=value):
  ckpt=PATH | ckpt=[A,B]  run folder(s) or checkpoint(s); several runs are explained on the same
                          test reviews (their test fingerprints must match) and shown side by side
  n=20                    test reviews scored for faithfulness (the first n in review-hash order)
  show=4                  of those, how many the page shows; plus per_category correct/misclassified
  per_category=1          examples of each (true class, correct|wrong) per model, from the first scan
  scan=300                test reviews searched for those examples
  n_steps=50              Integrated Gradients steps
  random_repeats=3        random deletion orders averaged for the baseline
  out=null                where the combined page goes when several runs are given
                          (default outputs/explain/<time>/explain.html)
  device=auto             auto | cpu | cuda[:N]

Writes, per run, `explain.json` (faithfulness, completeness, per-review AOPC) and `explain.html`
next to its metrics.json.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from imdb_lm.checkpoint import load_run
from imdb_lm.cli import run_main
from imdb_lm.errors import UserError
from imdb_lm.explain.explainer import Settings, explain_run, select
from imdb_lm.explain.page import attention_image, render
from imdb_lm.inference import run_split
from imdb_lm.results import EXPLAIN_FILE, write_artifact, write_text

DEFAULTS = {"ckpt": None, "n": 20, "show": 4, "per_category": 1, "scan": 300, "n_steps": 50,
            "random_repeats": 3, "out": None, "device": "auto"}


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


def explain(cfg) -> dict:
    if not cfg.ckpt:
        raise UserError("ckpt=<run folder or .ckpt> is required (ckpt=[A,B] for several runs)")
    for key in ("n", "show", "per_category", "scan", "n_steps", "random_repeats"):
        if not isinstance(cfg[key], int) or cfg[key] < (1 if key in ("n", "n_steps", "random_repeats") else 0):
            raise UserError(f"{key}={cfg[key]} must be a {'positive' if key in ('n', 'n_steps') else 'non-negative'} integer")
    paths = [cfg.ckpt] if isinstance(cfg.ckpt, str) else list(cfg.ckpt)
    runs = [load_run(p, cfg.device) for p in paths]
    test_prints = {str(r.run_dir): ((r.record or {}).get("splits") or {}).get("test") for r in runs}
    if len({str(v) for v in test_prints.values()}) > 1:
        raise UserError(f"ckpt: these runs were tested on different reviews (test fingerprints {test_prints}); "
                        "explain them together only when they share the test split")
    s = Settings(n=cfg.n, show=cfg.show, per_category=cfg.per_category, scan=cfg.scan, n_steps=cfg.n_steps,
                 random_repeats=cfg.random_repeats)
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
        write_text(run.run_dir / "explain.html", single)
        print(f"{name}: {run.run_dir / EXPLAIN_FILE}  {run.run_dir / 'explain.html'}")
    if len(runs) > 1:
        out = Path(cfg.out) if cfg.out else Path("outputs/explain") / time.strftime("%Y-%m-%d_%H-%M-%S") / "explain.html"
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


def main(argv: list[str] | None = None) -> None:
    run_main(explain, sys.argv[1:] if argv is None else argv, DEFAULTS, __doc__)


if __name__ == "__main__":
    main()
