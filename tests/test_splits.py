"""The frozen split: deterministic, disjoint, balanced, order-independent, identical for both families."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import pytest

from imdb_lm.data.datamodule import IMDBDataModule
from imdb_lm.data.sources import bundled_csv_path, load_source
from imdb_lm.data.splits import fingerprints, frozen_split, review_hash, subsample

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundled_splits():
    return frozen_split(load_source("bundled"))


def test_bundled_split_sizes_disjoint_and_balanced(bundled_splits):
    sizes = {name: len(ds) for name, ds in bundled_splits.items()}
    assert sum(sizes.values()) == 25_000  # duplicates kept (together), nothing dropped
    assert 0.79 <= sizes["train"] / 25_000 <= 0.81
    assert 0.09 <= sizes["val"] / 25_000 <= 0.11 and 0.09 <= sizes["test"] / 25_000 <= 0.11
    texts = {name: {review_hash(t) for t in ds["text"]} for name, ds in bundled_splits.items()}
    assert not texts["train"] & texts["val"] and not texts["train"] & texts["test"] and not texts["val"] & texts["test"]
    for ds in bundled_splits.values():
        assert abs(sum(ds["label"]) / len(ds) - 0.5) <= 0.02


def test_duplicates_stay_in_one_split(bundled_splits):
    # The bundled file repeats 92 review texts (88 twice, 4 three times); cleaning whitespace and
    # markup makes 94 texts repeat. Every copy of a repeated review must land in the same split.
    rows = [r for r in csv.DictReader(bundled_csv_path().open(encoding="utf-8")) if r["source"] == "imdb"]
    raw = Counter(r["text"] for r in rows)
    assert sorted(Counter(n for n in raw.values() if n > 1).items()) == [(2, 88), (3, 4)]
    where: dict[str, list[str]] = {}
    for name, ds in bundled_splits.items():
        for h in ds["hash"]:
            where.setdefault(h, []).append(name)
    repeated = {h: names for h, names in where.items() if len(names) > 1}
    assert len(repeated) >= 92
    assert all(len(set(names)) == 1 for names in repeated.values())
    assert len({names[0] for names in repeated.values()}) > 1  # spread over splits, not all in train


def test_the_published_fingerprints_hold(bundled_splits):
    # README and docs quote these; every published result was compared on them.
    readme = (ROOT / "README.md").read_text()
    prints = fingerprints(bundled_splits)
    assert [prints[s]["count"] for s in ("train", "val", "test")] == [20_005, 2_496, 2_499]
    for split in ("train", "val", "test"):
        assert f"`{prints[split]['digest']}`" in readme, split


def test_rule_ignores_row_order():
    ds = load_source("bundled")["train"].select(range(0, 25_000, 10))
    shuffled = ds.shuffle(seed=3)
    assert fingerprints(frozen_split({"train": ds})) == fingerprints(frozen_split({"train": shuffled}))


def test_fingerprints_identical_in_a_fresh_process(bundled_splits):
    code = ("import json; from imdb_lm.data.sources import load_source; "
            "from imdb_lm.data.splits import frozen_split, fingerprints; "
            "print(json.dumps(fingerprints(frozen_split(load_source('bundled')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    assert json.loads(out) == fingerprints(bundled_splits)


def test_official_test_is_kept_and_overlap_dropped():
    train = datasets.Dataset.from_dict({"text": [f"review number {i}" for i in range(200)] + ["shared text"],
                                        "label": [i % 2 for i in range(200)] + [1]})
    test = datasets.Dataset.from_dict({"text": ["Shared   TEXT", "other"], "label": [1, 0]})
    split = frozen_split({"train": train, "test": test})
    assert len(split["test"]) == 2
    assert "shared text" not in list(split["train"]["text"]) + list(split["val"]["text"])
    assert len(split["val"]) == 20 and len(split["train"]) == 180


def test_subsets_are_nested(bundled_splits):
    # data-efficiency curves and low-fidelity grids compare runs on subsets of one train split
    sizes = (500, 1000, 5000)
    rows = [subsample(bundled_splits["train"], n) for n in sizes]
    assert [len(r) for r in rows] == list(sizes)
    subsets = [set(r["hash"]) for r in rows]  # fewer hashes than rows: repeated reviews share one
    assert subsets[0] < subsets[1] < subsets[2] < set(bundled_splits["train"]["hash"])


def test_subsample_is_label_mixed_and_deterministic(bundled_splits):
    a = subsample(bundled_splits["train"], 1000)
    b = subsample(bundled_splits["train"], 1000)
    assert a["hash"] == b["hash"] and len(a) == 1000
    assert 0.45 <= sum(a["label"]) / 1000 <= 0.55


def test_recurrent_and_transformer_datamodules_share_the_split(tmp_path):
    word = IMDBDataModule(tokenizer="word", max_length=64, cache_dir=str(tmp_path), train_limit=500,
                          val_limit=300, test_limit=300)
    pre = IMDBDataModule(tokenizer="pretrained", pretrained="bundled", max_length=64, cache_dir=str(tmp_path), train_limit=500,
                         val_limit=300, test_limit=300)
    word.setup()
    pre.setup()
    assert word.fingerprints == pre.fingerprints
    assert word.hashes("test") == pre.hashes("test")
    assert word.cache_dir != pre.cache_dir
