"""The bundled checkpoint and data, made small enough to carry: MiniLM's weights in bf16 (half the
fp32 file) and only the IMDB rows of the bundled CSV, bzip2-compressed (3 MiB smaller than gzip:
the folder and the checkout share one size limit)."""

from __future__ import annotations

import bz2
import csv
import io
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from imdb_lm.atomic import replacing

WEIGHTS = "model.safetensors"
# What `from_pretrained` needs for the model and its tokenizer; the sentence-transformers files are not.
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
DATA_FILE = "imdb.csv.bz2"


def write_bf16_checkpoint(source: Path, dest: Path) -> Path:
    """A Hugging Face model directory whose floating-point weights are stored in bf16. Its config
    keeps the checkpoint's dtype (fp32), so `from_pretrained` upcasts them on load: training keeps
    fp32 master weights, starting from the bf16-rounded values."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, dest / name)
    config = json.loads((dest / "config.json").read_text())
    config.setdefault("torch_dtype", "float32")
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tensors = {k: v.to(torch.bfloat16) if v.is_floating_point() else v
               for k, v in load_file(source / WEIGHTS).items()}
    with replacing(dest / WEIGHTS) as tmp:
        save_file(tensors, tmp, metadata={"format": "pt"})
    return dest


def write_imdb_rows(source_csv: Path, dest: Path) -> tuple[Path, int]:
    """The bundled CSV's IMDB rows as `text,label` (what `data.source=csv` reads), bzip2-compressed.
    Same rows in the same order as `data.source=bundled`, so the frozen splits are the same."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label"])
    rows = 0
    with source_csv.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["source"] == "imdb":
                writer.writerow([row["text"], row["label"]])
                rows += 1
    path = dest / DATA_FILE
    with replacing(path) as tmp:
        # bzip2 stores no timestamp: the same rows give the same bytes, so the folder is reproducible
        tmp.write_bytes(bz2.compress(buffer.getvalue().encode("utf-8"), compresslevel=9))
    return path, rows


def unpack_imdb_rows(packed: Path, dest: Path) -> Path:
    """The CSV that `data.source=csv data.path=...` reads, next to the packed copy."""
    if not dest.is_file() or dest.stat().st_mtime < packed.stat().st_mtime:
        with bz2.open(packed, "rb") as src, replacing(dest) as tmp, tmp.open("wb") as out:
            shutil.copyfileobj(src, out)
    return dest
