"""Integrated Gradients and faithfulness on real models: completeness for both families, and a
model rigged so that one token decides the label."""

from __future__ import annotations

import pytest
import torch

from imdb_lm.data.sources import bundled_csv_path, read_csv
from imdb_lm.data.tokenize import PretrainedTokenizer, WordTokenizer
from imdb_lm.explain import faithfulness as faith
from imdb_lm.explain.attributions import attention_maps, attention_rollout, integrated_gradients
from imdb_lm.models.pretrained import resolve_checkpoint
from imdb_lm.models.recurrent import RecurrentClassifier
from imdb_lm.models.transformer import TransformerClassifier


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    ds = read_csv(bundled_csv_path(), where={"source": "imdb"})
    return [ds[i]["text"] for i in (3, 12_600)]  # one negative, one positive (the file is sorted by label)


def check_completeness(att, tolerance=0.02):
    """Completeness: the scores sum to F(x) - F(baseline), within a small share of that difference
    (measured from the scores and the model's outputs, not from captum's own convergence delta)."""
    gap = att.log_odds - att.baseline_log_odds
    assert abs(sum(att.scores) - gap) <= tolerance * abs(gap) + 1e-3, (sum(att.scores), gap)


def test_ig_completeness_recurrent(reviews):
    torch.manual_seed(0)
    tok = WordTokenizer.train(reviews * 3, vocab_size=500, min_freq=1, max_length=80, truncation="head")
    model = RecurrentClassifier(tok.vocab_size, tok.pad_id, cell="gru", embedding_dim=16, hidden_size=16).eval()
    for ids in tok.encode(reviews):
        att = integrated_gradients(model, ids, tok.pad_id, set(), n_steps=50)
        assert len(att.scores) == len(ids)
        check_completeness(att)


def test_ig_completeness_transformer_and_rollout(reviews):
    torch.manual_seed(0)
    model = TransformerClassifier("bundled").eval()
    tok = PretrainedTokenizer(resolve_checkpoint("bundled").source, 48, "head_tail")
    ids = tok.encode(reviews[:1])[0]
    special = {0, len(ids) - 1}
    att = integrated_gradients(model, ids, tok.pad_id, special, n_steps=50)
    check_completeness(att)
    maps = attention_maps(model, ids)
    assert maps.shape == (6, 12, len(ids), len(ids))
    assert torch.allclose(maps.sum(-1), torch.ones(6, 12, len(ids)), atol=1e-4)
    rollout = attention_rollout(maps)
    assert sum(rollout) == pytest.approx(1.0, abs=1e-4) and min(rollout) >= 0
    assert model.model.config._attn_implementation == "sdpa"  # restored after reading the maps


DECISIVE = 5  # token id that alone makes a review positive


def rigged_model(vocab: int = 12) -> RecurrentClassifier:
    """GRU whose hidden unit 0 follows tanh(embedding dim 0); head: log-odds = 20 * maxpool(h0) - 5.
    Token DECISIVE embeds to 3 in dim 0 (h0 ~ 0.5 -> positive); every other token to |x| <= 0.1."""
    torch.manual_seed(1)
    model = RecurrentClassifier(vocab, pad_id=0, cell="gru", embedding_dim=4, hidden_size=4, bidirectional=False,
                                dropout=0.0, embedding_dropout=0.0, pooling="max").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embedding.weight.uniform_(-0.1, 0.1)
        model.embedding.weight[0] = 0.0
        model.embedding.weight[DECISIVE] = torch.tensor([3.0, 0.0, 0.0, 0.0])
        model.forward_layers[0].weight_ih_l0[2 * 4 + 0, 0] = 1.0  # candidate state of unit 0 reads dim 0
        model.head.weight[1, 0] = 20.0
        model.head.bias[1] = -5.0
    return model


def model_probs(model):
    def probs(seqs):
        out = []
        for ids in seqs:
            x = torch.tensor([ids])
            logits = model(x, torch.ones_like(x), torch.tensor([len(ids)]))
            out.append(float(logits.softmax(-1)[0, 1]))
        return out
    return probs


def test_rigged_token_gets_top_attribution_and_deleting_it_flips():
    model = rigged_model()
    gen = torch.Generator().manual_seed(0)
    reviews = []
    for _ in range(8):
        ids = [int(t) for t in torch.randint(1, 12, (20,), generator=gen) if int(t) != DECISIVE]
        ids.insert(int(torch.randint(0, len(ids), (1,), generator=gen)), DECISIVE)
        reviews.append(ids)
    probs = model_probs(model)
    rankings, predicted = [], []
    for ids in reviews:
        assert probs([ids])[0] > 0.95
        att = integrated_gradients(model, ids, 0, set(), n_steps=64)
        check_completeness(att)
        top = max(range(len(ids)), key=lambda p: att.scores[p])
        assert ids[top] == DECISIVE
        without = faith.delete(ids, [top], filler=1)
        assert probs([without])[0] < 0.05  # deleting the decisive token flips the prediction
        rankings.append(faith.rank_by_scores(att.scores, set(), predicted=1))
        predicted.append(1)
    drops = faith.deletion_drops(probs, reviews, rankings, predicted, filler=1)
    random_drops = faith.deletion_drops(probs, reviews, [faith.random_ranking(len(r), set(), s)
                                                         for s, r in enumerate(reviews)], predicted, filler=1)
    result = faith.summary(drops, random_drops)
    assert result["curve"][0] > 0.9  # the first deletion (1 token) already removes the decisive one
    assert result["aopc"] > 0.9 and result["aopc"] > result["random_aopc"] + 0.3


def test_deletion_amounts_and_rankings():
    assert faith.amounts(200, faith.FRACTIONS) == [2, 10, 20, 40, 100]
    assert faith.amounts(3, faith.FRACTIONS) == [1, 1, 1, 1, 2]  # never the whole review
    assert faith.rank_by_scores([9.0, -1.0, 2.0, -5.0], {0}, predicted=0) == [3, 1, 2]
    assert faith.delete([7, 8, 9], [0, 1, 2], filler=1) == [1]
