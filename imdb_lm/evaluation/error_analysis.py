"""Error analysis of a run's test predictions: accuracy by review length, the most confidently wrong
reviews, and calibration (expected calibration error and a reliability plot).

Written next to metrics.json as `analysis.json` and `reliability.png` (for `imdb_lm.evaluate` on
another source: `evaluations/<name>.analysis.json` / `.reliability.png`). Review length is counted in
whitespace words of the cleaned text, so the buckets mean the same thing for both model families.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from imdb_lm.atomic import replacing
from imdb_lm.runs.records import write_artifact

LENGTH_EDGES = (0, 100, 200, 400, 800)  # words; the last bucket is open-ended
N_BINS = 10


def length_buckets(texts: list[str], labels: list[int], probs: list[float]) -> list[dict]:
    edges = list(LENGTH_EDGES) + [None]
    buckets = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        rows = [(y, p) for t, y, p in zip(texts, labels, probs, strict=True)
                if len(t.split()) >= low and (high is None or len(t.split()) < high)]
        correct = sum(int(p >= 0.5) == y for y, p in rows)
        buckets.append({"words": f"{low}-{high - 1}" if high else f"{low}+", "count": len(rows),
                        "accuracy": correct / len(rows) if rows else None})
    return buckets


def reliability_bins(labels: list[int], probs: list[float], n_bins: int = N_BINS) -> list[dict]:
    """Top-label confidence bins: mean confidence vs accuracy (what ECE sums over)."""
    p = torch.tensor(probs, dtype=torch.float64)
    conf = torch.maximum(p, 1 - p)
    correct = ((p >= 0.5).long() == torch.tensor(labels)).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    index = (torch.bucketize(conf, edges, right=True) - 1).clamp(0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        members = index == b
        n = int(members.sum())
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": n,
                     "confidence": float(conf[members].mean()) if n else None,
                     "accuracy": float(correct[members].mean()) if n else None})
    return bins


def expected_calibration_error(labels: list[int], probs: list[float], n_bins: int = N_BINS) -> float:
    p = torch.tensor(probs, dtype=torch.float32)
    return float(multiclass_calibration_error(torch.stack([1 - p, p], dim=1), torch.tensor(labels),
                                              num_classes=2, n_bins=n_bins, norm="l1"))


def confidently_wrong(texts, labels, probs, hashes, k: int = 10, preview: int = 400) -> list[dict]:
    wrong = [i for i, (y, p) in enumerate(zip(labels, probs, strict=True)) if int(p >= 0.5) != y]
    wrong.sort(key=lambda i: -abs(probs[i] - 0.5))
    return [{"hash": hashes[i], "label": labels[i], "prob_pos": probs[i], "words": len(texts[i].split()),
             "text": texts[i][:preview] + ("..." if len(texts[i]) > preview else "")} for i in wrong[:k]]


def analyse(texts: list[str], labels: list[int], probs: list[float], hashes: list[str]) -> dict:
    bins = reliability_bins(labels, probs)
    return {"n": len(labels),
            "accuracy": sum(int(p >= 0.5) == y for y, p in zip(labels, probs, strict=True)) / len(labels),
            "accuracy_by_length": length_buckets(texts, labels, probs),
            "calibration": {"ece": expected_calibration_error(labels, probs), "n_bins": N_BINS, "bins": bins},
            "confidently_wrong": confidently_wrong(texts, labels, probs, hashes)}


def reliability_plot(bins: list[dict], ece: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    used = [b for b in bins if b["count"]]
    width = bins[0]["high"] - bins[0]["low"]
    ax.bar([b["low"] for b in used], [b["accuracy"] for b in used], width=width, align="edge",
           edgecolor="black", alpha=.7, label="accuracy")
    ax.plot([0.5, 1], [0.5, 1], "k--", lw=1, label="perfect calibration")
    ax.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], "o", color="C3", ms=4,
            label="mean confidence")
    ax.set(xlim=(0.5, 1), ylim=(0, 1), xlabel="confidence (top-label probability)", ylabel="accuracy",
           title=f"{title}\nECE = {ece:.3f}")
    ax.legend(fontsize=7, loc="upper left")
    try:
        with replacing(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)


def write_analysis(run_dir: str | Path, texts, labels, probs, hashes, prefix: str = "",
                   title: str = "test split") -> dict:
    """analysis.json + reliability.png in `run_dir` (`prefix` names an evaluation's copies)."""
    run_dir = Path(run_dir)
    record = analyse(list(texts), list(labels), list(probs), list(hashes))
    name = f"{prefix}analysis.json" if prefix else "analysis.json"
    png = run_dir / (f"{prefix}reliability.png" if prefix else "reliability.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    reliability_plot(record["calibration"]["bins"], record["calibration"]["ece"], png, title)
    write_artifact(run_dir, name, {**record, "reliability_plot": png.name})
    return record
