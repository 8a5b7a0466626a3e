"""BagOfNgramsClassifier: a linear classifier over the mean of unigram and bigram embeddings
(fastText-style, Joulin et al. 2017): the floor every neural model has to beat.

Unigrams are the tokenizer's own ids; bigrams (each token with the next) are hashed into
`bigram_buckets` extra rows of one `nn.EmbeddingBag` table, so no bigram vocabulary is stored.
A review of n tokens is the mean of its n unigram and n - 1 bigram rows; padding is left out of the
mean (the bag's padding_idx). The same mean, written per position (a token's unigram row plus the
row of the bigram it starts), is what Integrated Gradients attributes to: `embeddings()` gives it
per token, and `forward_embedded` averages it, equal to `forward` up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imdb_lm.errors import UserError
from imdb_lm.models.classifier import SequenceClassifier

# Knuth's multiplicative constant: spreads the pair index over the buckets (ids are < 2**31, so the
# product stays within int64).
HASH_MULTIPLIER = 2654435761


def bigram_ids(input_ids: torch.Tensor, pad_id: int, vocab_size: int, buckets: int) -> torch.Tensor:
    """[B, T] -> [B, T] bigram rows: position t holds (token t, token t+1) hashed into
    vocab_size + [0, buckets); pad_id where either token is padding (and at the last position)."""
    left, right = input_ids, F.pad(input_ids[:, 1:], (0, 1), value=pad_id)
    pair = left.long() * vocab_size + right.long()
    hashed = vocab_size + (pair * HASH_MULTIPLIER) % buckets
    return torch.where((left == pad_id) | (right == pad_id), torch.full_like(hashed, pad_id), hashed)


class NgramEmbedding(nn.Module):
    """The unigram + hashed-bigram table; called on ids it gives each position's own contribution
    (its unigram row plus the row of the bigram it starts): [B, T] -> [B, T, D]."""

    def __init__(self, vocab_size: int, buckets: int, dim: int, pad_id: int):
        super().__init__()
        self.vocab_size, self.buckets, self.pad_id = vocab_size, buckets, pad_id
        self.bag = nn.EmbeddingBag(vocab_size + buckets, dim, mode="sum", padding_idx=pad_id)
        nn.init.uniform_(self.bag.weight, -1.0 / dim, 1.0 / dim)  # fastText's initialisation
        with torch.no_grad():
            self.bag.weight[pad_id].zero_()

    def bigrams(self, input_ids: torch.Tensor) -> torch.Tensor:
        return bigram_ids(input_ids, self.pad_id, self.vocab_size, self.buckets)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        weight = self.bag.weight
        return F.embedding(input_ids, weight, self.pad_id) + F.embedding(self.bigrams(input_ids), weight, self.pad_id)

    def pooled_sum(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, D]: the sum of every unigram and bigram row of each review, in one bag lookup."""
        return self.bag(torch.cat([input_ids, self.bigrams(input_ids)], dim=1))


def feature_counts(lengths: torch.Tensor) -> torch.Tensor:
    """n unigrams + (n - 1) bigrams per review of n tokens."""
    return (2 * lengths - 1).clamp(min=1)


class BagOfNgramsClassifier(SequenceClassifier):
    family = "bag_of_ngrams"

    def __init__(self, vocab_size: int, pad_id: int = 0, embedding_dim: int = 64, bigram_buckets: int = 262_144,
                 optimizer: dict | None = None, scheduler: dict | None = None):
        super().__init__(optimizer, scheduler)
        for name, value in (("embedding_dim", embedding_dim), ("bigram_buckets", bigram_buckets)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UserError(f"model.{name}={value} must be a positive integer")
        self.save_hyperparameters(logger=False)
        self.ngrams = NgramEmbedding(vocab_size, bigram_buckets, embedding_dim, pad_id)
        self.head = nn.Linear(embedding_dim, 2)

    def embeddings(self) -> nn.Module:
        return self.ngrams

    def _classify(self, summed: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(summed / feature_counts(lengths).to(summed)[:, None])

    def forward_embedded(self, embedded: torch.Tensor, attention_mask: torch.Tensor,
                         lengths: torch.Tensor) -> torch.Tensor:
        return self._classify((embedded * attention_mask[..., None].to(embedded)).sum(1), lengths.to(embedded.device))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._classify(self.ngrams.pooled_sum(input_ids), lengths.to(input_ids.device))

    def forward_flops_per_token(self, length: int) -> float:
        """Analytic: each token adds its unigram and bigram rows into the review's sum (2 x width
        additions); the mean and the head (one multiply-add per head weight) run once per review."""
        dim = self.head.in_features
        return 2.0 * dim + (dim + 2.0 * self.head.weight.numel()) / max(1, length)
