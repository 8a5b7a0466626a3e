"""The language-model families (imdb_lm/lm/): minGRU's scan, the carried state of generation, the
chunked loss, padding, and the preset sizes the study compares at."""

from __future__ import annotations

import pytest
import torch

from imdb_lm.config.compose import compose_train
from imdb_lm.lm.generation import processors, sample
from imdb_lm.lm.mingru import MinGRU
from imdb_lm.lm.output import FullSoftmax
from imdb_lm.lm.recurrent import RecurrentLM
from imdb_lm.lm.task import build_lm
from imdb_lm.lm.transformer import TransformerLM

FAMILIES = ["gru_lm", "lstm_lm", "mingru_lm", "transformer_lm"]
VOCAB = 300  # small: the behaviour under test does not depend on the vocabulary's size


def tiny(preset: str, vocab: int = VOCAB):
    torch.manual_seed(0)
    cfg = compose_train(["task=lm", f"model={preset}", "model.size=tiny"])
    return build_lm(cfg, vocab, 0).eval()


def test_mingru_parallel_scan_equals_the_step_by_step_recurrence():
    torch.manual_seed(0)
    cell = MinGRU(8, 16)
    x = torch.randn(3, 40, 8) * 3  # large inputs reach both branches of g and saturated gates
    states, last = cell(x)
    h, steps = None, []
    for t in range(x.shape[1]):
        h = cell.step(x[:, t], h)
        steps.append(h)
    torch.testing.assert_close(states, torch.stack(steps, 1), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(last, steps[-1], rtol=1e-4, atol=1e-5)
    # a scan continued from a carried state equals the scan of the whole sequence
    head, carried = cell(x[:, :25])
    tail, _ = cell(x[:, 25:], carried)
    torch.testing.assert_close(torch.cat([head, tail], 1), states, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("preset", FAMILIES)
def test_cached_generation_gives_the_same_logits_as_uncached(preset):
    """The KV cache (transformer) and the carried hidden state (RNNs) against recomputing every step
    from the whole sequence: the same logits at every step, so the same samples."""
    model = tiny(preset)
    chain = processors(temperature=1.0, top_k=0, top_p=1.0)
    cached, cached_scores = sample(model, [101, 7, 8, 9], 12, chain, torch.Generator().manual_seed(3),
                                   cache=True, keep_scores=True)
    full, full_scores = sample(model, [101, 7, 8, 9], 12, chain, torch.Generator().manual_seed(3),
                               cache=False, keep_scores=True)
    assert cached == full and len(cached) == 12
    torch.testing.assert_close(torch.stack(cached_scores), torch.stack(full_scores), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("preset", FAMILIES)
def test_padding_never_changes_a_reviews_loss(preset):
    model = tiny(preset)
    gen = torch.Generator().manual_seed(0)
    reviews = [torch.randint(5, VOCAB, (n,), generator=gen) for n in (12, 5)]
    padded = torch.zeros(2, 12, dtype=torch.long)
    for row, ids in enumerate(reviews):
        padded[row, :len(ids)] = ids
    batch = {"input_ids": padded, "lengths": torch.tensor([12, 5]), "index": torch.arange(2)}
    with torch.no_grad():
        together = model._shared_step(batch)["nll"]
        alone = torch.cat([model._shared_step({"input_ids": ids[None], "lengths": torch.tensor([len(ids)]),
                                               "index": torch.arange(1)})["nll"] for ids in reviews])
    assert together.shape == (11 + 4,)
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_the_chunked_loss_equals_the_whole_softmax_in_value_and_gradient():
    torch.manual_seed(0)
    table = torch.nn.Embedding(50, 8)
    hidden = torch.randn(23, 8, requires_grad=True)
    targets = torch.randint(0, 50, (23,))
    results = []
    for chunk in (5, 1000):
        layer = FullSoftmax(table, chunk)
        table.zero_grad()
        hidden.grad = None
        nll = layer.nll(hidden, targets)
        nll.mean().backward()
        results.append((nll.detach(), hidden.grad.clone(), table.weight.grad.clone()))
        whole = torch.nn.functional.cross_entropy(layer.logits(hidden), targets, reduction="none")
        torch.testing.assert_close(nll, whole)
    for chunked, whole in zip(*results, strict=True):
        torch.testing.assert_close(chunked, whole)


def test_the_output_layer_is_tied_and_counted_with_the_embeddings():
    model = tiny("gru_lm")
    assert model.output.embedding.weight is model.embedding.weight
    assert "output.embedding.weight" not in model.state_dict()  # saved once, as the input table
    counts = model.count_parameters()
    assert counts["total"] - counts["non_embedding"] == VOCAB * 128 + VOCAB  # the table and the output bias


@pytest.mark.parametrize("size, target", [("tiny", 0.4e6), ("study", 3.0e6)])
def test_sizes_match_across_families(size, target):
    """The study compares families at ~3M non-embedding parameters (within 10%), with one embedding width."""
    counts, widths = {}, set()
    for preset in FAMILIES:
        cfg = compose_train(["task=lm", f"model={preset}", f"model.size={size}"])
        model = build_lm(cfg, 30522, 0)
        counts[preset] = model.count_parameters()["non_embedding"]
        widths.add(model.embeddings().weight.shape[1])
        assert model.forward_flops_per_token(256) > 2 * 30522 * model.embeddings().weight.shape[1]
    assert len(widths) == 1
    assert all(abs(n / target - 1) < 0.10 for n in counts.values()), counts


def test_recurrent_and_transformer_classes_are_the_families():
    assert type(tiny("gru_lm")) is RecurrentLM and type(tiny("transformer_lm")) is TransformerLM
    assert tiny("mingru_lm").layers[0].cell.__class__ is MinGRU
