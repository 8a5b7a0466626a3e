"""Forward/backward for every recurrent cell and the bundled transformer; exact padding-awareness."""

from __future__ import annotations

import pytest
import torch

from imdb_lm.errors import UserError
from imdb_lm.models.recurrent import RecurrentClassifier, reverse_within_length
from imdb_lm.models.transformer import TransformerClassifier


def batch(lengths: list[int], vocab: int = 50, pad: int = 0):
    torch.manual_seed(0)
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(2, vocab, (n,))
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()
    return ids, mask, torch.tensor(lengths)


def test_reverse_within_length_keeps_padding_in_place():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    assert reverse_within_length(x, torch.tensor([3, 2])).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_forward_backward(cell, bidirectional):
    model = RecurrentClassifier(50, cell=cell, bidirectional=bidirectional, num_layers=2,
                                embedding_dim=16, hidden_size=8)
    ids, mask, lengths = batch([7, 3, 5])
    logits = model(ids, mask, lengths)
    assert logits.shape == (3, 2)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
def test_padding_does_not_change_the_output(cell, bidirectional, pooling):
    model = RecurrentClassifier(50, cell=cell, bidirectional=bidirectional, pooling=pooling, num_layers=2,
                                embedding_dim=16, hidden_size=8).eval()
    ids, mask, lengths = batch([6])
    alone = model(ids, mask, lengths)
    padded_ids = torch.cat([ids, torch.zeros(1, 9, dtype=torch.long)], dim=1)
    padded = model(padded_ids, (padded_ids != 0).long(), lengths)
    # and inside a batch with a longer review
    other, _, _ = batch([15])
    both_ids = torch.cat([padded_ids, other], dim=0)
    both = model(both_ids, (both_ids != 0).long(), torch.tensor([6, 15]))
    torch.testing.assert_close(alone, padded, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(alone[0], both[0], atol=1e-6, rtol=1e-5)


def test_bad_model_options_are_one_line_errors():
    with pytest.raises(UserError, match="model.cell='cnn'"):
        RecurrentClassifier(50, cell="cnn")
    with pytest.raises(UserError, match="model.pooling"):
        RecurrentClassifier(50, pooling="attention")
    with pytest.raises(UserError, match="optimizer.lr=0"):
        RecurrentClassifier(50, optimizer={"_target_": "torch.optim.Adam", "lr": 0})


def test_bundled_transformer_forward_backward_and_padding():
    model = TransformerClassifier("bundled")
    assert all(m.training for m in model.modules())  # fine-tuning trains with dropout on
    assert 22_000_000 < model.count_parameters()["total"] < 23_000_000
    ids = torch.tensor([[101, 2023, 3185, 2001, 2307, 102]])
    mask = torch.ones_like(ids)
    model.eval()
    with torch.no_grad():
        alone = model(ids, mask, torch.tensor([6]))
        padded_ids = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
        padded = model(padded_ids, (padded_ids != 0).long(), torch.tensor([6]))
    torch.testing.assert_close(alone, padded, atol=1e-4, rtol=1e-4)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(ids, mask, torch.tensor([6])), torch.tensor([1]))
    loss.backward()
    assert model.model.classifier.weight.grad.abs().sum() > 0
    assert model.embeddings().weight.grad is not None
