"""Gradient clipping under every precision with the fused optimizers of the configs.

Lightning's fp16 plugin refuses to clip for fused optimizers (they unscale inside their own step);
the module unscales through the gradient scaler first and clips itself. These runs use Lightning's
real fp16 plugin with a CPU gradient scaler (`trainer.precision=16-mixed` alone becomes bf16 on a
CPU), and check that each step moves the weights by exactly what the clipped, unscaled gradients say.
"""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from imdb_lm.models.classifier import unscale_for_clipping
from imdb_lm.models.recurrent import RecurrentClassifier
from tests.helpers import TINY, load_metrics, run_cli, run_dirs

CLIP = 1e-3  # far below these gradients' norm, so every step is clipped to exactly this norm
LR = 0.5
FP16_INIT_SCALE = 2.0**10  # small enough that the first steps do not overflow; 1024x off if left scaled


def batches(n: int = 4, batch: int = 8, length: int = 12, vocab: int = 40):
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        lengths = torch.randint(3, length + 1, (batch,), generator=g)
        mask = torch.arange(length)[None, :] < lengths[:, None]
        ids = torch.randint(1, vocab, (batch, length), generator=g) * mask
        yield {"input_ids": ids, "attention_mask": mask.long(), "lengths": lengths,
               "labels": torch.randint(0, 2, (batch,), generator=g), "index": torch.arange(batch) + i * batch}


class RecordingClassifier(RecurrentClassifier):
    """Records the gradients as clipping leaves them, which is what the optimizer step consumes."""

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        grads = [p.grad.norm() for p in self.parameters() if p.grad is not None]
        self.grad_norms.append(float(torch.linalg.vector_norm(torch.stack(grads))))


class StepRecorder(L.Callback):
    """How far each training step moved the weights."""

    def __init__(self):
        self.step_norms, self._before = [], None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._before = [p.detach().clone() for p in pl_module.parameters()]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        moved = [(p.detach() - b).norm() for p, b in zip(pl_module.parameters(), self._before, strict=True)]
        self.step_norms.append(float(torch.linalg.vector_norm(torch.stack(moved))))


def fit(precision: str, optimizer: dict, clip: float = CLIP) -> tuple[list[float], list[float]]:
    """(gradient norms the optimizer consumed, norms of the weight changes), one per step."""
    L.seed_everything(0, verbose=False)
    model = RecordingClassifier(vocab_size=40, embedding_dim=16, hidden_size=16, dropout=0.0,
                                embedding_dropout=0.0, optimizer=optimizer)
    model.grad_norms = []
    if precision == "16-mixed":  # Lightning turns precision="16-mixed" into bf16 on a CPU; its plugin does not
        scaler = torch.amp.GradScaler("cpu", init_scale=FP16_INIT_SCALE)
        kwargs = {"plugins": [MixedPrecision("16-mixed", "cpu", scaler=scaler)]}
    else:
        kwargs = {"precision": precision}
    recorder = StepRecorder()
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, gradient_clip_val=clip, callbacks=[recorder],
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, **kwargs)
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(list(batches()), batch_size=None))
    return model.grad_norms, recorder.step_norms


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
def test_each_step_applies_the_clipped_unscaled_gradients(precision, fused):
    """SGD without momentum moves the weights by lr x gradient: with every step clipped, by lr x CLIP.
    Left scaled (fp16), it would be 1024x too large before the step and 1024x too small after it."""
    grad_norms, step_norms = fit(precision, {"_target_": "torch.optim.SGD", "lr": LR, "momentum": 0.0,
                                             "fused": fused})
    assert grad_norms == pytest.approx([CLIP] * 4, rel=1e-3)
    assert step_norms == pytest.approx([LR * CLIP] * 4, rel=1e-2)


@pytest.mark.parametrize("target", ["torch.optim.Adam", "torch.optim.AdamW"])
def test_fused_adam_trains_under_fp16_with_clipping(target):
    """The configs' fused Adam/AdamW with clipping under fp16 (Lightning alone raises here): gradients
    reach the step clipped and unscaled, and the weights move."""
    grad_norms, step_norms = fit("16-mixed", {"_target_": target, "lr": 1e-3, "fused": True}, clip=1.0)
    assert len(grad_norms) == len(step_norms) == 4
    assert all(0 < g <= 1.0 + 1e-4 for g in grad_norms)
    assert all(s > 0 for s in step_norms)


def test_unscaling_is_left_to_the_plugin_for_unfused_optimizers():
    """Only optimizers the plugin leaves scaled are unscaled here (a second unscale_ would raise)."""
    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.full((3,), 8.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    scaler.scale(torch.ones(()))  # as a training step's loss is scaled first
    fused = torch.optim.SGD([param], lr=0.1, fused=True)
    assert not unscale_for_clipping(fused, None)
    assert not unscale_for_clipping(torch.optim.SGD([param], lr=0.1, foreach=True), scaler)
    assert not unscale_for_clipping(fused, torch.amp.GradScaler("cpu", enabled=False))
    assert param.grad.tolist() == [8.0] * 3
    assert unscale_for_clipping(fused, scaler)
    assert param.grad.tolist() == [2.0] * 3


def test_training_cli_runs_fp16_with_the_configs_fused_adam(tmp_path, cache_dir):
    """The real CLI with Lightning's fp16 plugin and the default recipe (fused Adam, clipping 1.0): it
    trains under that plugin and its gradient scaler, most steps are taken, and the weights move."""
    plugin = "{_target_:lightning.pytorch.plugins.precision.MixedPrecision,precision:16-mixed,device:cpu}"
    probe = f"{{_target_:tests.fp16_probe.Fp16Probe,out:'{tmp_path / 'probe.json'}'}}"
    run_cli("imdb_lm.train", *TINY, "trainer.precision=null", f"+trainer.plugins=[{plugin}]",
            f"+callbacks.fp16_probe={probe}", cwd=tmp_path, cache=cache_dir)
    record = load_metrics(run_dirs(tmp_path)[0])
    assert record["status"] == "completed"
    assert record["hparams"]["gradient_clip_val"] == 1.0 and record["config"]["optimizer"]["fused"] is True
    seen = json.loads((tmp_path / "probe.json").read_text())
    assert (seen["plugin"], seen["precision"], seen["scaler"]) == ("MixedPrecision", "16-mixed", "GradScaler")
    assert seen["steps"] == 4 and seen["skipped_steps"] < seen["steps"]
    assert seen["max_weight_change"] > 0
