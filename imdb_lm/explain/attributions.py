"""Token attributions: Integrated Gradients on the embedding layer (both families), attention rollout
(transformers).

IG explains the log-odds `logit(positive) - logit(negative)`: a token's score is positive when it
pushes the review toward "positive". The baseline is the same review with every text token replaced
by padding (special tokens and the length kept), so completeness reads: sum of scores =
log-odds(review) - log-odds(baseline), up to captum's reported convergence delta.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import IntegratedGradients

from imdb_lm.models.classifier import SequenceClassifier


@dataclass
class TokenAttribution:
    scores: list[float]  # one per token, toward the positive class
    log_odds: float  # F(review)
    baseline_log_odds: float  # F(baseline)
    delta: float  # captum's convergence delta: sum(scores) - (F(review) - F(baseline))


def _log_odds(model: SequenceClassifier):
    def forward(embedded, attention_mask, lengths):
        logits = model.forward_embedded(embedded, attention_mask, lengths).float()
        return logits[:, 1] - logits[:, 0]
    return forward


def integrated_gradients(model: SequenceClassifier, ids: list[int], pad_id: int, special: set[int],
                         n_steps: int = 50) -> TokenAttribution:
    """IG for one review (fp32, eval mode: dropout off, so F is deterministic). Works inside Lightning's
    test/predict loops too, which run under inference mode."""
    with torch.inference_mode(False), torch.enable_grad():
        return _integrated_gradients(model, ids, pad_id, special, n_steps)


def _integrated_gradients(model, ids, pad_id, special, n_steps) -> TokenAttribution:
    model.eval()
    device = model.device
    input_ids = torch.tensor([ids], device=device)
    base_ids = torch.tensor([[i if pos in special else pad_id for pos, i in enumerate(ids)]], device=device)
    mask = torch.ones_like(input_ids)
    lengths = torch.tensor([len(ids)], device=device)
    layer = model.embeddings()
    with torch.no_grad():
        embedded, baseline = layer(input_ids), layer(base_ids)
    forward = _log_odds(model)
    ig = IntegratedGradients(forward)
    attributions, delta = ig.attribute(embedded, baselines=baseline, additional_forward_args=(mask, lengths),
                                       n_steps=n_steps, internal_batch_size=n_steps,
                                       return_convergence_delta=True)
    with torch.no_grad():
        f_x, f_b = forward(embedded, mask, lengths), forward(baseline, mask, lengths)
    scores = attributions.sum(-1)[0].detach().float().cpu().tolist()
    return TokenAttribution(scores, float(f_x), float(f_b), float(delta))


@torch.no_grad()
def attention_maps(model: SequenceClassifier, ids: list[int]) -> torch.Tensor:
    """[layers, heads, T, T] attention probabilities of one review (needs the eager attention code)."""
    hf = model.model
    previous = hf.config._attn_implementation
    if previous != "eager":
        hf.set_attn_implementation("eager")  # SDPA kernels do not return attention weights
    try:
        input_ids = torch.tensor([ids], device=model.device)
        out = hf(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), output_attentions=True)
    finally:
        if previous != "eager":
            hf.set_attn_implementation(previous)
    return torch.stack([a[0] for a in out.attentions]).float().cpu()


def attention_rollout(maps: torch.Tensor) -> list[float]:
    """Abnar & Zuidema (2020): average heads, add the residual (0.5 A + 0.5 I), renormalise, multiply
    through the layers; the first ([CLS]) row is how much each token flows into the classifier."""
    size = maps.shape[-1]
    eye = torch.eye(size)
    rollout = eye
    for layer in maps.mean(1):
        mixed = 0.5 * layer + 0.5 * eye
        rollout = (mixed / mixed.sum(-1, keepdim=True)) @ rollout
    return rollout[0].tolist()
