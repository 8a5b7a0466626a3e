"""The ablation presets (transformer_scratch, bigru_large, bigru_wordpiece, bigru_minilm_emb, bow):
what each one claims to be, and that each trains through the real CLI and records its size."""

from __future__ import annotations

import pytest
import torch

from imdb_lm.config.compose import compose_train
from imdb_lm.config.validate import validate_config
from imdb_lm.data.batching import TokenizedReviews
from imdb_lm.errors import UserError
from imdb_lm.evaluation.inference import predict_probs
from imdb_lm.explain.attributions import integrated_gradients
from imdb_lm.models.bag import BagOfNgramsClassifier
from imdb_lm.models.build import build_model
from imdb_lm.models.recurrent import RecurrentClassifier
from imdb_lm.models.transformer import TransformerClassifier
from imdb_lm.runs.checkpoint import load_run, read_checkpoint
from tests.helpers import TINY, load_metrics, padded_batch, run_cli, run_dirs

NEW_PRESETS = ["transformer_scratch", "bigru_large", "bigru_wordpiece", "bigru_minilm_emb",
               "bigru_minilm_emb_frozen", "bow"]
MINILM_VOCAB = 30522


def model_of(preset: str, *overrides: str):
    cfg = compose_train([f"model={preset}", *overrides])
    vocab = MINILM_VOCAB if cfg.data.tokenizer == "pretrained" else 500
    return build_model(cfg, type("Data", (), {"vocab_size": vocab, "pad_id": 0})())


@pytest.fixture(scope="module")
def minilm() -> TransformerClassifier:
    return TransformerClassifier("bundled")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    """One multirun of every new preset on a tiny slice (one process: the imports are paid once). Four steps:
    debug=smoke's epoch of 4 batches, so each run is validated once, at its end (fewer would never be)."""
    home = tmp_path_factory.mktemp("ablation")
    run_cli("imdb_lm.train", "--multirun", f"model={','.join(NEW_PRESETS)}", *TINY, "data.max_length=32",
            "data.train_limit=64", "data.val_limit=32", "data.test_limit=32", "trainer.max_steps=4",
            "data.batch_size=8", "logger=none", "callbacks.attributions.n_reviews=1",
            "callbacks.attributions.n_steps=2", cwd=home, cache=cache_dir)
    return {load_metrics(d)["model"]["name"]: d for d in run_dirs(home)}


@pytest.mark.parametrize("preset", NEW_PRESETS)
def test_every_new_preset_trains_and_records_its_size(trained, preset):
    record = load_metrics(trained[preset])
    assert record["status"] == "completed" and record["metrics"]["test"]["acc"] is not None
    params = record["model"]["params"]
    assert 0 < params["non_embedding"] < params["total"]
    assert record["model"]["forward_flops_per_token"] > 0 and record["model"]["flops_at_length"] == 32


@pytest.mark.parametrize("preset", ["bow", "bigru_minilm_emb", "transformer_scratch"])
def test_a_trained_preset_loads_predicts_and_is_explained(trained, preset):
    """Through the family registry, as predict, evaluate and explain load every run."""
    run = load_run(trained[preset], device="cpu")
    assert run.model.family == load_metrics(trained[preset])["model"]["family"]
    ids = run.tokenizer.encode(["A wonderful film, I loved every minute of it."])[0]
    prob = predict_probs(run, TokenizedReviews([ids], [1], ["x"]), batch_size=4)[0]
    attribution = integrated_gradients(run.model, ids, run.tokenizer.pad_id, run.special_positions(ids), n_steps=8)
    assert 0.0 <= prob <= 1.0 and len(attribution.scores) == len(ids)
    assert attribution.log_odds == pytest.approx(torch.logit(torch.tensor(prob, dtype=torch.float64)).item(),
                                                 abs=0.05)  # predict may run in bf16
    if preset == "bow":  # linear in its embeddings: Integrated Gradients is exact
        assert sum(attribution.scores) == pytest.approx(attribution.log_odds - attribution.baseline_log_odds,
                                                        abs=1e-4)


def test_the_frozen_pretrained_embeddings_are_still_minilms_after_training(trained, minilm):
    words = minilm.embeddings().weight
    for preset, frozen in (("bigru_minilm_emb_frozen", True), ("bigru_minilm_emb", False)):
        state = read_checkpoint(trained[preset] / "checkpoints" / "last.ckpt")["state_dict"]
        assert torch.equal(state["embedding.weight"], words) == frozen, preset


def test_the_pretrained_embedding_rnn_starts_from_minilms_word_embeddings(minilm):
    words = minilm.embeddings().weight
    for preset in ("bigru_minilm_emb", "bigru_minilm_emb_frozen"):
        model = model_of(preset)
        assert torch.equal(model.embedding.weight, words)
        assert model.embedding.weight.requires_grad == (preset == "bigru_minilm_emb")
    torch.manual_seed(3)
    control = model_of("bigru_wordpiece")  # same tokenizer, width and shape; random table
    assert control.embedding.weight.shape == words.shape and not torch.allclose(control.embedding.weight, words)
    torch.manual_seed(3)
    treated = model_of("bigru_minilm_emb")
    assert control.count_parameters() == treated.count_parameters()
    # at one seed, everything but the embedding table starts the same as in the control
    rest = {k: v for k, v in control.state_dict().items() if not k.startswith("embedding.")}
    assert all(torch.equal(v, treated.state_dict()[k]) for k, v in rest.items())


def test_frozen_embeddings_get_no_update_and_no_weight_decay():
    model = RecurrentClassifier(MINILM_VOCAB, embedding_dim=384, hidden_size=8, pretrained="bundled",
                                pretrained_embeddings=True, freeze_embeddings=True,
                                optimizer={"_target_": "torch.optim.AdamW", "lr": 0.1, "weight_decay": 0.5})
    before = model.embedding.weight.clone()
    optimizer = model.configure_optimizers()
    for _ in range(3):
        ids, mask, lengths = padded_batch([5, 3], vocab=MINILM_VOCAB)
        torch.nn.functional.cross_entropy(model(ids, mask, lengths), torch.tensor([0, 1])).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert torch.equal(model.embedding.weight, before)
    assert model.count_parameters()["trainable"] == model.count_parameters()["total"] - before.numel()


def test_the_scratch_transformer_is_minilms_shape_randomly_initialised(minilm):
    torch.manual_seed(0)
    scratch = model_of("transformer_scratch")
    pretrained = dict(minilm.model.named_parameters())
    config = scratch.model.config
    assert dict(scratch.model.named_parameters()).keys() == pretrained.keys()
    for name, weight in scratch.model.named_parameters():
        assert weight.shape == pretrained[name].shape, name
        if name.endswith("weight") and weight.ndim == 2:  # linear and embedding matrices
            assert not torch.allclose(weight, pretrained[name]), name
            # BERT's own initialisation: normal(0, initializer_range)
            assert abs(weight.mean().item()) < 3e-3, name
            assert weight.std().item() == pytest.approx(config.initializer_range, rel=0.1), name
        elif "LayerNorm.weight" in name:
            assert torch.equal(weight, torch.ones_like(weight)), name
        elif name.endswith("bias"):
            assert torch.equal(weight, torch.zeros_like(weight)), name
    assert scratch.count_parameters() == minilm.count_parameters()


def test_bigru_large_matches_minilms_non_embedding_size(minilm):
    large, reference = model_of("bigru_large").count_parameters(), minilm.count_parameters()
    assert large["non_embedding"] == pytest.approx(reference["non_embedding"], rel=0.10)
    assert model_of("bigru").count_parameters()["non_embedding"] < reference["non_embedding"] / 10


def test_flops_per_token(minilm):
    # MiniLM by hand: 6 layers x (4 d^2 + 2 d ff) weights, attention 4 T d per layer, pooler and head per review
    layers, width, ff, length = 6, 384, 1536, 128
    by_hand = (2 * layers * (4 * width**2 + 2 * width * ff) + 4 * layers * length * width
               + (2 * width**2 + 2 * width * 2) / length)
    assert minilm.forward_flops_per_token(length) == pytest.approx(by_hand, rel=1e-6)
    gru = RecurrentClassifier(500, embedding_dim=16, hidden_size=8, bidirectional=True)
    assert gru.forward_flops_per_token(10) == 2 * 2 * (3 * 8 * 16 + 3 * 8 * 8) + 2 * 16 * 2 / 10
    bag = BagOfNgramsClassifier(500, embedding_dim=16)
    assert bag.forward_flops_per_token(10) == 2 * 16 + (16 + 2 * 16 * 2) / 10


def test_bag_of_ngrams_forward_equals_its_per_token_form():
    model = BagOfNgramsClassifier(50, embedding_dim=8, bigram_buckets=97).eval()
    ids, mask, lengths = padded_batch([6, 2, 1], vocab=50)
    pooled = model(ids, mask, lengths)
    per_token = model.forward_embedded(model.embeddings()(ids), mask, lengths)
    torch.testing.assert_close(pooled, per_token)
    # padding changes nothing; a bigram is an ordered pair
    alone = model(ids[:1, :6], mask[:1, :6], lengths[:1])
    torch.testing.assert_close(alone, pooled[:1])
    swapped = ids[:1, :6].flip(1)
    assert not torch.allclose(model(swapped, mask[:1, :6], lengths[:1]), alone)


def test_an_rnn_on_minilms_tokenizer_is_held_to_its_length_before_anything_is_written():
    with pytest.raises(UserError, match=r"data.max_length=600 .*\(512 positions\)"):
        validate_config(compose_train(["model=bigru_wordpiece", "data.max_length=600"]))
