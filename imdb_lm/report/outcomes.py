"""Per-review test outcomes of a run, in review-hash order: what paired statistics need.

A run folder holds them as `predictions.csv` (review hash, label, probability); a compact published
record (report/publish.py) holds them inside its metrics.json as bit strings in the sorted order of
the review hashes, with the fingerprint of that set of hashes instead of the hashes themselves. An
`imdb_lm.evaluate` result (e.g. out of domain) has its own: `evaluations/<name>.predictions.csv`,
published under its name. Two runs scored on the same set (equal fingerprint) are then paired
position by position, so a published record needs a few hundred bytes per thousand reviews.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imdb_lm.data.splits import fingerprint
from imdb_lm.runs.records import PREDICTIONS_FILE, predictions_file, read_metrics, read_predictions

OUTCOMES_KEY = "outcomes"  # the compact record's field: {split name: encoded Outcomes}
# Same rule as torchmetrics' BinaryAccuracy and statistics.paired_outcomes: positive above the threshold.
THRESHOLD = 0.5


@dataclass(frozen=True)
class Outcomes:
    digest: str          # fingerprint digest of the reviews' hash set (runs with equal digests pair up)
    labels: np.ndarray   # bool, review-hash order
    correct: np.ndarray  # bool, review-hash order

    @property
    def count(self) -> int:
        return len(self.labels)


def encode_bits(values: np.ndarray) -> str:
    return base64.urlsafe_b64encode(np.packbits(np.asarray(values, bool)).tobytes()).decode("ascii")


def decode_bits(text: str, count: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.urlsafe_b64decode(text), np.uint8), count=count).astype(bool)


def from_predictions(predictions: dict[str, tuple[int, float]]) -> Outcomes:
    hashes = sorted(predictions)
    labels = np.array([bool(predictions[h][0]) for h in hashes])
    correct = np.array([(predictions[h][1] > THRESHOLD) == bool(predictions[h][0]) for h in hashes])
    return Outcomes(fingerprint(hashes).digest, labels, correct)


def encode(outcomes: Outcomes) -> dict:
    return {"order": "review hash", "count": outcomes.count, "digest": outcomes.digest,
            "labels": encode_bits(outcomes.labels), "correct": encode_bits(outcomes.correct)}


def decode(stored: dict) -> Outcomes:
    count = int(stored["count"])
    return Outcomes(stored["digest"], decode_bits(stored["labels"], count), decode_bits(stored["correct"], count))


def run_outcomes(run_dir: str | Path, record: dict | None = None, evaluation: str | None = None) -> Outcomes | None:
    """The run's per-review outcomes on its test split, or on the reviews of its `imdb_lm.evaluate`
    result named `evaluation` (e.g. rotten_tomatoes): from the predictions file in the run folder,
    else from its compact record; None without either."""
    run_dir = Path(run_dir)
    if (run_dir / predictions_file(evaluation)).is_file():
        return from_predictions(read_predictions(run_dir, evaluation))
    record = record if record is not None else read_metrics(run_dir)
    stored = (record.get(OUTCOMES_KEY) or {}).get(evaluation or "test")
    return decode(stored) if stored else None


def has_test_outcomes(run_dir: str | Path, record: dict) -> bool:
    return (Path(run_dir) / PREDICTIONS_FILE).is_file() or bool((record.get(OUTCOMES_KEY) or {}).get("test"))


def stack(runs: list[Outcomes]) -> np.ndarray:
    """Seeds x reviews correctness of runs scored on one set of reviews (refused otherwise)."""
    digests = {o.digest for o in runs}
    if len(digests) != 1:
        raise ValueError(f"the runs were scored on {len(digests)} different sets of test reviews")
    return np.stack([o.correct for o in runs])
