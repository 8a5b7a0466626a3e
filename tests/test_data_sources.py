"""Each source loader on a small fixture it builds; bad files get one clear error."""

from __future__ import annotations

import csv
from pathlib import Path

import datasets
import pytest

from imdb_lm.data.sources import bundled_csv_path, clean_text, load_source
from imdb_lm.errors import UserError

POS = ["A wonderful film.<br /><br />Loved every minute", "Brilliant acting and a great story", "Superb!"]
NEG = ["Dull and far too long.<br />Avoid", "The worst plot I have seen", "Awful"]


def write_csv(path: Path, rows: list[dict], header=("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(header))
        writer.writeheader()
        writer.writerows(rows)
    return path


def make_aclimdb(root: Path) -> Path:
    for part in ("train", "test"):
        for label, texts in (("pos", POS), ("neg", NEG)):
            folder = root / part / label
            folder.mkdir(parents=True)
            for i, text in enumerate(texts):
                (folder / f"{i}_{7 if label == 'pos' else 2}.txt").write_text(f"{part} {text}", encoding="utf-8")
    (root / "train" / "unsup").mkdir()
    (root / "train" / "unsup" / "0_0.txt").write_text("unlabelled review, ignored")
    return root


def test_clean_text_removes_markup():
    assert clean_text("Good.<br /><br />Very  good<BR>") == "Good. Very good"


def test_bundled_is_the_25000_labelled_imdb_reviews():
    parts = load_source("bundled")
    assert set(parts) == {"train"}
    train = parts["train"]
    assert len(train) == 25_000
    assert sum(train["label"]) == 12_500
    assert not any("<br" in t for t in train["text"][:2000])
    assert bundled_csv_path().is_file()


def test_rotten_tomatoes_rows_are_available_for_out_of_domain_checks():
    rt = load_source("rotten_tomatoes")["train"]
    assert len(rt) == 8_530 and set(rt.unique("label")) == {0, 1}


def test_aclimdb_folder(tmp_path):
    parts = load_source("aclimdb", str(make_aclimdb(tmp_path / "aclImdb")))
    assert set(parts) == {"train", "test"}
    assert len(parts["train"]) == 6 and len(parts["test"]) == 6  # unsup ignored
    assert sorted(parts["test"]["label"]) == [0, 0, 0, 1, 1, 1]
    assert all(t.startswith("test ") for t in parts["test"]["text"])
    assert "<br" not in " ".join(parts["train"]["text"])


def test_aclimdb_missing_folder_names_the_path(tmp_path):
    with pytest.raises(UserError, match="aclImdb folder"):
        load_source("aclimdb", str(tmp_path / "nope"))


def test_csv_with_word_labels(tmp_path):
    rows = [{"text": t, "label": "pos"} for t in POS] + [{"text": t, "label": "neg"} for t in NEG]
    parts = load_source("csv", str(write_csv(tmp_path / "r.csv", rows)))
    assert sorted(parts["train"]["label"]) == [0, 0, 0, 1, 1, 1]


def test_csv_custom_columns(tmp_path):
    rows = [{"review": t, "sentiment": 1} for t in POS]
    path = write_csv(tmp_path / "r.csv", rows, header=("review", "sentiment"))
    parts = load_source("csv", str(path), text_column="review", label_column="sentiment")
    assert len(parts["train"]) == 3


@pytest.mark.parametrize(("rows", "header", "message"), [
    ([{"body": "x", "label": 1}], ("body", "label"), r"missing column\(s\) \['text'\]"),
    ([{"text": "fine", "label": 3}], ("text", "label"), "row 2: label '3'"),
    ([{"text": "fine", "label": 1}, {"text": "  ", "label": 0}], ("text", "label"), "row 3 has an empty review"),
])
def test_csv_bad_input_is_one_clear_line(tmp_path, rows, header, message):
    path = write_csv(tmp_path / "bad.csv", rows, header=header)
    with pytest.raises(UserError, match=message) as err:
        load_source("csv", str(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_csv_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"text,label\ngood film,1\nna\xefve plot,0\n")
    with pytest.raises(UserError, match="line 3 is not valid UTF-8"):
        load_source("csv", str(path))


def test_hf_loader_reads_a_local_dataset_with_train_and_test(tmp_path):
    folder = tmp_path / "imdb_copy"
    for part, prefix in (("train", "tr"), ("test", "te")):
        ds = datasets.Dataset.from_dict({"text": [f"{prefix} {t}" for t in POS + NEG], "label": [1] * 3 + [0] * 3})
        (folder / "plain_text").mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(folder / "plain_text" / f"{part}-00000-of-00001.parquet"))
    parts = load_source("hf", str(folder))
    assert len(parts["train"]) == 6 and len(parts["test"]) == 6
    assert all(t.startswith("te ") for t in parts["test"]["text"])
    assert "<br" not in " ".join(parts["train"]["text"])


def test_hf_offline_fails_fast_naming_the_offline_option(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(UserError, match="data.source=bundled"):
        load_source("hf")


def test_unknown_source_lists_the_choices():
    with pytest.raises(UserError, match="bundled, hf, aclimdb, csv"):
        load_source("kaggle")
