"""Every fast path gives what the straightforward one gives (same logits within tolerance)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from imdb_lm.bench.baselines.rnn_tutorial import TutorialBiGRU
from imdb_lm.bench.harness import autocast
from imdb_lm.models.recurrent import CELLS, RecurrentClassifier
from tests.helpers import padded_batch


def packed_reference(model: RecurrentClassifier) -> nn.Module:
    """The fused, packed bidirectional RNN a tutorial would use, holding our model's weights."""
    first = model.forward_layers[0]
    ref = CELLS[model.cell](first.input_size, first.hidden_size, num_layers=len(model.forward_layers),
                            batch_first=True, bidirectional=True)
    with torch.no_grad():
        for layer, (fwd, back) in enumerate(zip(model.forward_layers, model.backward_layers, strict=True)):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, f"{name}_l{layer}").copy_(getattr(fwd, f"{name}_l0"))
                getattr(ref, f"{name}_l{layer}_reverse").copy_(getattr(back, f"{name}_l0"))
    return ref.eval()


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_reverse_within_length_equals_packed_sequences(cell, num_layers):
    torch.manual_seed(0)
    model = RecurrentClassifier(50, cell=cell, embedding_dim=16, hidden_size=12, num_layers=num_layers,
                                bidirectional=True).eval()
    ids, mask, lengths = padded_batch([9, 3, 7, 1, 9])
    embedded = model.embedding(ids)
    ours = model.encode(embedded, lengths)
    packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
    ref, _ = pad_packed_sequence(packed_reference(model)(packed)[0], batch_first=True)
    real = mask.bool()
    torch.testing.assert_close(ours[real], ref[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["max", "mean", "last"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_padding_never_changes_a_reviews_prediction(pooling, bidirectional):
    torch.manual_seed(1)
    model = RecurrentClassifier(50, embedding_dim=16, hidden_size=12, bidirectional=bidirectional,
                                pooling=pooling).eval()
    ids, mask, lengths = padded_batch([4, 11])
    with torch.no_grad():
        batched = model(ids, mask, lengths)
        alone = model(ids[:1, :4], mask[:1, :4], lengths[:1])
    torch.testing.assert_close(batched[0], alone[0], atol=1e-6, rtol=1e-5)


def test_tutorial_baseline_is_the_same_model_as_ours():
    """Same weights in the tutorial BiGRU (fused, packed) and ours (split, padded): same logits, so
    the benchmark compares two ways of running one model."""
    torch.manual_seed(2)
    ours = RecurrentClassifier(60, embedding_dim=16, hidden_size=12, bidirectional=True, pooling="max").eval()
    tutorial = TutorialBiGRU(60, 16, 12, pad_id=0, dropout=0.3, embedding_dropout=0.3).eval()
    with torch.no_grad():
        tutorial.embedding.weight.copy_(ours.embedding.weight)
        tutorial.fc.load_state_dict(ours.head.state_dict())
        tutorial.rnn.load_state_dict(packed_reference(ours).state_dict())
    assert sum(p.numel() for p in tutorial.parameters()) == sum(p.numel() for p in ours.parameters())
    ids, mask, lengths = padded_batch([6, 13, 2], vocab=60)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, mask, lengths), tutorial(ids, lengths), atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def minilm():
    from imdb_lm.models.transformer import TransformerClassifier

    torch.manual_seed(0)
    return TransformerClassifier("bundled").eval()


def test_sdpa_attention_equals_eager_attention(minilm):
    from transformers import AutoModelForSequenceClassification

    from imdb_lm.models.pretrained import resolve_checkpoint

    ckpt = resolve_checkpoint("bundled")
    eager = AutoModelForSequenceClassification.from_pretrained(ckpt.source, num_labels=2, attn_implementation="eager",
                                                               **ckpt.kwargs()).eval()
    eager.load_state_dict(minilm.model.state_dict())
    ids, mask, lengths = padded_batch([20, 7, 33], vocab=2000)
    with torch.no_grad():
        torch.testing.assert_close(minilm(ids, mask, lengths),
                                   eager(input_ids=ids, attention_mask=mask).logits, atol=1e-4, rtol=1e-4)


def assert_bf16_logits_match(bf16: torch.Tensor, fp32: torch.Tensor) -> None:
    """bf16 keeps 8 bits of mantissa: on MiniLM with logits of O(1) it differs from fp32 by up to
    7e-3 here (logits up to 0.8); it must never decide another class where fp32's margin is clear."""
    torch.testing.assert_close(bf16, fp32, atol=0.03, rtol=0)
    clear = (fp32[:, 1] - fp32[:, 0]).abs() > 0.05
    assert torch.equal(bf16.argmax(-1)[clear], fp32.argmax(-1)[clear])


def test_transformer_padding_and_bf16_autocast(minilm):
    model = copy.deepcopy(minilm)
    with torch.no_grad():  # the untrained head gives logits of ~0.02, below any tolerance: one of O(1)
        head = model.model.classifier
        head.weight.copy_(torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(0)) * 0.5)
        head.bias.zero_()
    ids, mask, lengths = padded_batch([25, 9, 40, 16, 33, 12, 28, 5], vocab=20000, seed=1)
    with torch.no_grad():
        fp32 = model(ids, mask, lengths)
        alone = model(ids[1:2, :9], mask[1:2, :9], lengths[1:2])
        with autocast("bf16-mixed", torch.device("cpu")):
            bf16 = model(ids, mask, lengths).float()
    torch.testing.assert_close(fp32[1], alone[0], atol=1e-4, rtol=1e-4)
    margins = fp32[:, 1] - fp32[:, 0]
    assert fp32.abs().max() > 0.5 and (margins.abs() > 0.05).sum() >= 6, fp32  # the check has teeth
    assert_bf16_logits_match(bf16, fp32)


def test_flop_count_matches_the_known_formula(minilm):
    """The per-step FLOP model reproduces an exact count at an unseen length, and its token term is
    close to the textbook 6 x parameters (forward 2N, backward 4N) of the encoder's matrices."""
    from imdb_lm.bench.harness import StepFlops, count_flops

    def count_shape(batch, length):
        ids = torch.randint(1000, 2000, (batch, length))
        def step():
            minilm(ids, torch.ones_like(ids), torch.full((batch,), length)).sum().backward()
        flops = count_flops(step)
        minilm.zero_grad(set_to_none=True)
        return flops

    model = StepFlops(count_shape)
    assert abs(model(3, 96) - count_shape(3, 96)) / count_shape(3, 96) < 1e-6
    matrices = sum(p.numel() for n, p in minilm.model.bert.encoder.named_parameters() if p.ndim == 2)
    assert 0.9 < model.linear / (6 * matrices) < 1.1
    assert model.quadratic > 0  # attention is counted


def test_compiled_model_gives_the_eager_logits_for_every_batch_length():
    """`compile=true` (torch.compile, dynamic shapes) is a speed option only: same logits, same
    state_dict keys, across the varying lengths of bucketed batches."""
    torch.manual_seed(3)
    model = RecurrentClassifier(50, embedding_dim=16, hidden_size=12, bidirectional=True).eval()
    keys = list(model.state_dict())
    batches = [padded_batch(lengths, seed=i) for i, lengths in enumerate(([5, 3, 2], [9, 9, 4], [12, 1, 7]))]
    with torch.no_grad():
        eager = [model(*batch) for batch in batches]
        model.compile(dynamic=True)
        compiled = [model(*batch) for batch in batches]
    assert list(model.state_dict()) == keys
    for want, got in zip(eager, compiled, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["gru", "transformer"])
def test_frozen_compiled_inference_gives_the_eager_logits(family, minilm):
    """predict's compile=true (torch.compile with frozen weights, bf16 autocast where it applies):
    the eager logits for batches of several sizes and lengths, and for a single review; freezing
    is set only inside the call, never left on for models that still train."""
    import torch._inductor.config as inductor_config

    from imdb_lm.models.frozen import FrozenForward

    torch.manual_seed(5)
    if family == "gru":
        model, vocab = RecurrentClassifier(50, embedding_dim=16, hidden_size=12, bidirectional=True).eval(), 50
    else:
        # MiniLM with its first layer only: the same modules, attention and autocast as the whole
        # model, at a sixth of its compile time (all six layers take over a minute on an AVX2 CPU).
        model, vocab = copy.deepcopy(minilm), 2000
        model.model.bert.encoder.layer = model.model.bert.encoder.layer[:1]
    batches = [padded_batch(lengths, vocab=vocab, seed=i)
               for i, lengths in enumerate(([9, 5, 3, 2], [17, 17, 4], [30, 1, 12, 8, 6], [11]))]
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    with torch.no_grad(), autocast():
        eager = [model(*batch).float() for batch in batches]
    frozen = FrozenForward(model, autocast)
    with torch.inference_mode():
        compiled = [frozen(*batch).float() for batch in batches]
    assert inductor_config.freezing is False
    for want, got in zip(eager, compiled, strict=True):
        # bf16 products fused differently: ~3e-4 apart here, against MiniLM logits of ~3e-2 (untrained head)
        torch.testing.assert_close(got, want, atol=1e-3, rtol=1e-2)


def test_cpu_dropout_keeps_each_value_with_probability_1_minus_p():
    from imdb_lm.models.dropout import Dropout

    torch.manual_seed(0)
    layer = Dropout(0.3).train()
    x = torch.ones(200_000, requires_grad=True)
    y = layer(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.7))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # the gradient is the same mask and scale
    assert torch.equal(layer.eval()(x), x)


def test_freed_memory_is_kept_for_reuse_and_released_at_epoch_ends():
    import sys

    from imdb_lm.memory import keep_freed_memory, release_freed_memory

    if not sys.platform.startswith("linux"):
        assert keep_freed_memory() is False
        return

    def resident_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    assert keep_freed_memory() is True
    big = torch.ones(300 * 2**20 // 4)  # 300 MB, touched
    with_it = resident_mb()
    del big
    kept = resident_mb()
    release_freed_memory()
    released = resident_mb()
    assert kept > with_it - 50  # freed, but kept in the heap for the next step
    assert released < kept - 250  # handed back at an epoch end


def test_kept_memory_is_bounded_after_a_batch_once_it_grows_past_the_bound():
    import sys

    from imdb_lm.callbacks.memory import ReleaseFreedMemory
    from imdb_lm.memory import keep_freed_memory, resident_bytes

    if not sys.platform.startswith("linux"):
        return
    assert keep_freed_memory() is True
    mb = lambda: resident_bytes() / 2**20  # noqa: E731
    bounded, epoch_only = ReleaseFreedMemory(max_growth_mb=200), ReleaseFreedMemory(max_growth_mb=None)
    for callback in (bounded, epoch_only):
        callback.on_train_batch_end(None, None, None, None, 0)  # the first batch sets the base
    small = torch.ones(50 * 2**20 // 4)  # 50 MB touched and freed: within the bound, kept for reuse
    del small
    before = mb()
    bounded.on_train_batch_end(None, None, None, None, 1)
    assert bounded.releases == 0 and mb() > before - 20
    big = torch.ones(300 * 2**20 // 4)  # 300 MB more: past the bound
    del big
    kept = mb()
    epoch_only.on_validation_batch_end(None, None, None, None, 2)
    assert epoch_only.releases == 0 and mb() > kept - 50  # null: nothing released between epochs
    bounded.on_validation_batch_end(None, None, None, None, 2)
    assert bounded.releases == 1 and mb() < kept - 250  # handed back after the batch that crossed it
    with pytest.raises(ValueError, match="max_growth_mb=-1"):
        ReleaseFreedMemory(max_growth_mb=-1)


def test_transformer_dropouts_are_the_fast_ones_with_the_checkpoints_probabilities(minilm):
    from imdb_lm.errors import UserError
    from imdb_lm.models.dropout import Dropout
    from imdb_lm.models.transformer import TransformerClassifier

    dropouts = [m for m in minilm.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(type(m) is Dropout for m in dropouts)
    assert {m.p for m in dropouts} == {0.1}  # the checkpoint's own, attention included (default: null)
    quiet = TransformerClassifier("bundled", attention_dropout=0.0)
    attention = [m.dropout.p for m in quiet.modules() if type(m).__name__.endswith("SelfAttention")]
    assert attention and set(attention) == {0.0}
    assert quiet.model.config.hidden_dropout_prob == 0.1  # only the attention probabilities change
    with pytest.raises(UserError, match="model.attention_dropout=1.5"):
        TransformerClassifier("bundled", attention_dropout=1.5)
