"""The fused CPU GRU kernel against cuDNN's GRU: the same BiGRU weights and padded batch on both
devices, fp32 (TF32 off), compared on logits and on the weights' gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imdb_lm.models import fused_gru
from imdb_lm.models.recurrent import RecurrentClassifier


def _logits_and_grads(model: RecurrentClassifier, batch: dict, device: str) -> tuple[torch.Tensor, dict]:
    model = model.to(device)
    model.zero_grad(set_to_none=True)
    inputs = {k: v.to(device) for k, v in batch.items()}
    logits = model(inputs["input_ids"], inputs["attention_mask"], inputs["lengths"]).float()
    F.cross_entropy(logits, inputs["labels"]).backward()
    return logits.detach().cpu(), {n: p.grad.detach().cpu().clone() for n, p in model.named_parameters()}


def compare(batch_size: int = 16, length: int = 120, vocab: int = 1000, seed: int = 0) -> dict:
    """Largest absolute differences (logits; gradients relative to each gradient's largest entry)."""
    torch.manual_seed(seed)
    model = RecurrentClassifier(vocab_size=vocab, dropout=0.0, embedding_dropout=0.0).eval()  # default BiGRU
    lengths = torch.randint(1, length + 1, (batch_size,))
    lengths[0] = length
    mask = torch.arange(length)[None, :] < lengths[:, None]
    batch = {"input_ids": torch.randint(1, vocab, (batch_size, length)) * mask, "attention_mask": mask.long(),
             "lengths": lengths, "labels": torch.randint(0, 2, (batch_size,))}
    fused = fused_gru.usable(torch.zeros(1))
    cpu_logits, cpu_grads = _logits_and_grads(model, batch, "cpu")
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        cuda_logits, cuda_grads = _logits_and_grads(model, batch, "cuda")
    grad_rel = max(float((cpu_grads[n] - cuda_grads[n]).abs().max() / cpu_grads[n].abs().max().clamp(min=1e-12))
                   for n in cpu_grads)
    return {"fused_kernel": fused, "batch": batch_size, "max_length": length,
            "max_abs_logit_diff": float((cpu_logits - cuda_logits).abs().max()),
            "max_rel_grad_diff": grad_rel}
