"""Checks that need a CUDA GPU (`pytest -m gpu`, run by `make gpu-check`); skipped elsewhere."""

from __future__ import annotations

import os

import lightning as L
import pytest
import torch

from imdb_lm.gpu_check.gru_parity import compare
from tests.test_fp16_clipping import CLIP, LR, RecordingClassifier, StepRecorder, batches

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_fused_cpu_gru_kernel_matches_cudnn():
    """Same weights, same padded batch: the CPU fast path and cuDNN compute the same model."""
    result = compare()
    assert result["fused_kernel"], "the fused CPU GRU kernel did not build on this machine"
    assert result["max_abs_logit_diff"] < 1e-4
    assert result["max_rel_grad_diff"] < 1e-3


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_fused_sgd_steps_apply_clipped_unscaled_gradients_on_cuda(precision):
    """`trainer.precision=16-mixed` as users type it on a GPU (CUDA gradient scaler, fused optimizer):
    every step that the scaler does not skip moves the weights by lr x the clipped gradient."""
    if precision == "bf16-mixed" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no native bf16")
    L.seed_everything(0, verbose=False)
    model = RecordingClassifier(vocab_size=40, embedding_dim=16, hidden_size=16, dropout=0.0, embedding_dropout=0.0,
                                optimizer={"_target_": "torch.optim.SGD", "lr": LR, "momentum": 0.0, "fused": True})
    model.grad_norms = []
    recorder = StepRecorder()
    trainer = L.Trainer(accelerator="gpu", devices=1, precision=precision, max_epochs=1, gradient_clip_val=CLIP,
                        callbacks=[recorder], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(list(batches()), batch_size=None))
    taken = [s for s in recorder.step_norms if s > 0]  # fp16: the scaler may skip an overflowing first step
    assert len(taken) >= 3
    assert taken == pytest.approx([LR * CLIP] * len(taken), rel=1e-2)


def test_transformer_trains_a_step_in_bf16_and_fp16_on_cuda():
    """The bundled MiniLM's forward and backward under both autocast dtypes give finite values."""
    from imdb_lm.models.transformer import TransformerClassifier

    # make gpu-check points this at its bf16 copy: the GPU machine lacks the bundled model's package
    model = TransformerClassifier(os.environ.get("IMDB_LM_GPU_CHECK_PRETRAINED", "bundled")).cuda()
    ids = torch.randint(1000, 20000, (4, 64), device="cuda")
    mask = torch.ones_like(ids)
    for dtype in (torch.bfloat16, torch.float16):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype):
            logits = model(ids, mask, None)
        logits.float().sum().backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert torch.isfinite(logits).all() and grads and all(torch.isfinite(g).all() for g in grads)
