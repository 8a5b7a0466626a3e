"""Sampling from a trained language model, the same code for every family.

Each new token: the model's next-token logits (models carry their state: an RNN's hidden states,
the transformer's KV cache, so a step reads one token), transformers' logits processors
(temperature, top-k, top-p: the library's tested warpers, not a sampler of our own), then one draw
from a torch.Generator seeded once, so a seed repeats its samples exactly. `cache=False` recomputes
every step from the whole sequence instead: the reference the cached path is tested against.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from imdb_lm.errors import UserError
from imdb_lm.lm.data import LMTokenizer, start_tokens
from imdb_lm.lm.options import LABELS, UNKNOWN
from imdb_lm.models.pretrained import resolve_checkpoint
from imdb_lm.runs.checkpoint import find_checkpoint, load_run_config, read_checkpoint


@dataclass
class LoadedLM:
    run_dir: Path
    cfg: DictConfig
    model: torch.nn.Module
    tokenizer: LMTokenizer

    @property
    def conditional(self) -> bool:
        return bool(self.cfg.lm.conditional)


def load_config(path: str | Path) -> tuple[Path, Path, DictConfig]:
    """(run folder, checkpoint, config) of a language-model run; any other run is refused in one line."""
    run_dir, ckpt = find_checkpoint(path)
    cfg = load_run_config(run_dir)
    if cfg.get("task", "classifier") != "lm":
        raise UserError(f"ckpt={path}: a {cfg.get('task', 'classifier')} run ({cfg.model.name}), not a language "
                        "model; give a run of `python -m imdb_lm.train task=lm model=gru_lm` (or lstm_lm, "
                        "mingru_lm, transformer_lm)")
    return run_dir, ckpt, cfg


def load_lm(path: str | Path, device: torch.device) -> LoadedLM:
    from imdb_lm.lm.task import lm_class

    run_dir, ckpt, cfg = load_config(path)
    data = read_checkpoint(ckpt)
    model = lm_class(str(cfg.model.family))(**dict(data["hyper_parameters"]))
    try:
        model.load_state_dict(data["state_dict"])
    except RuntimeError as err:
        raise UserError(f"ckpt={ckpt}: weights do not fit a {type(model).__name__} "
                        f"({str(err).splitlines()[0][:160]})") from None
    source = resolve_checkpoint(str(cfg.data.pretrained), option="data.pretrained")
    tokenizer = LMTokenizer(source.source, int(cfg.data.max_length), str(cfg.data.truncation), **source.kwargs())
    return LoadedLM(run_dir, cfg, model.to(device).eval(), tokenizer)


def prompt_ids(lm: LoadedLM, prompt: str, label: str | None) -> list[int]:
    """The start token (the label's for a conditional LM: unknown unless given) + the prompt's wordpieces."""
    start = start_tokens(lm.tokenizer)[label or UNKNOWN] if lm.conditional else lm.tokenizer.prefix[0]
    return [start] + lm.tokenizer._raw([prompt])[0]


def check_label(label: str | None, conditional: bool) -> None:
    if label is None:
        return
    choices = (*LABELS, UNKNOWN)
    if label not in choices:
        raise UserError(f"label={label} is unknown; choose one of {', '.join(choices)}")
    if not conditional:
        raise UserError(f"label={label}: this language model is unconditional (trained without lm.conditional=true); "
                        "leave label= away, or train with lm.conditional=true")


def processors(temperature: float, top_k: int, top_p: float):
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    chain = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
    if top_k > 0:
        chain.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        chain.append(TopPLogitsWarper(top_p))
    return chain


@torch.inference_mode()
def sample(model, prompt: list[int], max_new_tokens: int, chain, generator: torch.Generator,
           end_id: int | None = None, cache: bool = True, keep_scores: bool = False) -> tuple[list[int], list]:
    """One continuation of `prompt` (ids): its new ids (stopping after `end_id`) and, with
    keep_scores, each step's raw next-token logits [vocabulary]."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt], device=device)
    logits, state = model.next_logits(ids)
    new, scores = [], []
    for _ in range(max_new_tokens):
        if keep_scores:
            scores.append(logits[0].cpu())
        warped = chain(ids, logits)
        token = torch.multinomial(warped.softmax(-1).cpu(), 1, generator=generator).to(device)
        ids = torch.cat([ids, token], dim=1)
        new.append(int(token))
        if end_id is not None and new[-1] == end_id:
            break
        logits, state = model.next_logits(token, state) if cache else model.next_logits(ids)
    return new, scores


def generate(lm: LoadedLM, prompt: str, label: str | None, n: int, max_new_tokens: int, temperature: float,
             top_k: int, top_p: float, seed: int, cache: bool = True) -> list[dict]:
    """n samples, one at a time (batch 1, as a user waits for one), each with its own seconds."""
    ids = prompt_ids(lm, prompt, label)
    chain = processors(temperature, top_k, top_p)
    generator = torch.Generator().manual_seed(seed)
    end_id = lm.tokenizer.suffix[0] if lm.tokenizer.suffix else None
    rows = []
    for _ in range(n):
        start = time.perf_counter()
        new, _ = sample(lm.model, ids, max_new_tokens, chain, generator, end_id, cache)
        seconds = time.perf_counter() - start
        rows.append({"prompt": prompt, "label": (label or UNKNOWN) if lm.conditional else None,
                     "text": lm.tokenizer.hf.decode(new, skip_special_tokens=True), "tokens": len(new),
                     "ended": bool(new) and new[-1] == end_id, "seconds": round(seconds, 4)})
    return rows
