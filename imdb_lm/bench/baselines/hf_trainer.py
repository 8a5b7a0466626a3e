"""Baseline 2: the Hugging Face `Trainer` with its default `TrainingArguments`.

What the Hugging Face fine-tuning guide writes: the checkpoint loaded with
`AutoModelForSequenceClassification` (its default attention), the tokenized reviews in a
`datasets.Dataset`, the tokenizer passed to `Trainer` so it pads each random batch with
`DataCollatorWithPadding`, fp32. Only these arguments are set: the batch size (the same as this
project's, instead of the default 8), the number of steps/epochs, and no checkpoint saving or
progress bar (neither belongs in a timing). Same token ids and max length as this project.
Inference baseline: the same model, fp32, eager (not compiled), batches in data order padded by
the same collator.
"""

from __future__ import annotations

import dataclasses
import tempfile

import datasets
import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from imdb_lm.bench.harness import StepFlops, StepWindow, correct_over
from imdb_lm.bench.workload import Workload
from imdb_lm.config.resolvers import bf16_native
from imdb_lm.data.batching import TokenizedReviews
from imdb_lm.models.pretrained import resolve_checkpoint
from imdb_lm.models.transformer import ATTENTION_DROPOUT_KEYS


class _CountingCollator(DataCollatorWithPadding):
    """The default collator, also noting each batch's real and padded token counts."""

    def __init__(self, tokenizer):
        super().__init__(tokenizer)
        self.shapes: list[tuple[int, int, int]] = []

    def __call__(self, features):
        batch = super().__call__(features)
        size, length = batch["input_ids"].shape
        self.shapes.append((size, int(batch["attention_mask"].sum()), length))
        return batch


class _StepClock(TrainerCallback):
    def __init__(self, window: StepWindow, collator: _CountingCollator, flops: StepFlops | None):
        self.window, self.collator, self.flops = window, collator, flops

    def on_train_begin(self, args, state, control, **kwargs):
        self.collator.shapes.clear()

    def on_step_end(self, args, state, control, **kwargs):
        # batches are collated in step order (the loader may already hold the next one)
        size, tokens, length = self.collator.shapes[self.window.steps]
        self.window.step_done(size, tokens, size * length, self.flops(size, length) if self.flops else 0.0)


def as_hf_dataset(data: TokenizedReviews) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"input_ids": [x.tolist() for x in data.input_ids], "label": data.labels})


class HFTrainerSide:
    name = "hf_trainer"
    flush_denormals = False
    precision = "32-true"
    description = "Hugging Face Trainer, default TrainingArguments (fp32, DataCollatorWithPadding)"

    def __init__(self, work: Workload, flops: StepFlops | None = None):
        self.work, self.flops = work, flops
        self.tokenizer = work.datamodule.tokenizer.hf
        self.collator = _CountingCollator(self.tokenizer)
        self.model = self._fresh_model()
        self.train = as_hf_dataset(work.train_slice())
        self._out = tempfile.TemporaryDirectory(prefix="bench-hf-")
        self._infer_batches = None

    def _fresh_model(self, seed: int | None = None):
        ckpt = resolve_checkpoint(self.work.cfg.model.pretrained)
        torch.manual_seed(self.work.seed if seed is None else seed)
        return AutoModelForSequenceClassification.from_pretrained(ckpt.source, num_labels=2, **ckpt.kwargs())

    def training_arguments(self) -> dict:
        """TrainingArguments beyond the batch size, steps and no saving/progress bar: none (defaults)."""
        return {}

    def _trainer(self, train: datasets.Dataset, callbacks: list, **steps) -> Trainer:
        args = TrainingArguments(output_dir=self._out.name, per_device_train_batch_size=self.work.batch_size,
                                 save_strategy="no", disable_tqdm=True, use_cpu=self.work.device.type == "cpu",
                                 # transformers < 5 reports to every installed tracker by default
                                 # (wandb then asks for a login): the bench times training alone
                                 report_to="none",
                                 **self.training_arguments(), **steps)
        return Trainer(model=self.model, args=args, train_dataset=train, processing_class=self.tokenizer,
                       data_collator=self.collator, callbacks=callbacks)

    def warmup(self, steps: int) -> None:
        self._trainer(self.train, [], max_steps=steps).train()

    def train_repeat(self, repeat: int) -> dict:
        """One pass over the training slice (the same reviews as every side's repeat), shuffled by the
        Trainer with seed `repeat`; its first step, where it builds its loader and optimiser, is untimed."""
        window = StepWindow(1, self.work.device)
        self._trainer(self.train, [_StepClock(window, self.collator, self.flops)], num_train_epochs=1,
                      seed=repeat).train()
        return window.record()

    def _batches(self, data: TokenizedReviews, batch_size: int) -> list[dict]:
        rows = [{"input_ids": x.tolist(), "label": y} for x, y in zip(data.input_ids, data.labels, strict=True)]
        out = []
        for start in range(0, len(rows), batch_size):
            batch = DataCollatorWithPadding(self.tokenizer)(rows[start:start + batch_size])
            out.append({"input_ids": batch["input_ids"].to(self.work.device),
                        "attention_mask": batch["attention_mask"].to(self.work.device),
                        "labels": batch["labels"].to(self.work.device), "n": len(batch["labels"])})
        return out

    def inference_batches(self) -> list[dict]:
        if self._infer_batches is None:
            self._infer_batches = self._batches(self.work.split("test").subset(self.work.infer_indices),
                                                self.work.infer_batch_size)
        return self._infer_batches

    def prepare_inference(self) -> None:
        self.model.to(self.work.device).float().eval()

    def forward_batch(self, batch: dict) -> torch.Tensor:
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def forward_one(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids).logits

    def train_and_test(self, train: TokenizedReviews, epochs: int, seed: int) -> np.ndarray:
        self.model = self._fresh_model(seed)
        # The Trainer seeds its own shuffling (TrainingArguments.seed, 42 by default): give it this seed.
        self._trainer(as_hf_dataset(train), [], num_train_epochs=epochs, seed=seed).train()
        self.prepare_inference()
        return correct_over(self.forward_batch, self._batches(self.work.split("test"), self.work.infer_batch_size))


def _group_by_length() -> dict:
    """`group_by_length=True`, spelled `train_sampling_strategy="group_by_length"` in transformers 5."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return ({"train_sampling_strategy": "group_by_length"} if "train_sampling_strategy" in names
            else {"group_by_length": True})


class HFTrainerTunedSide(HFTrainerSide):
    """The `Trainer` with the settings a user would tune, and nothing of this project's: bf16 autocast
    (`bf16=True`) where this project trains in bf16 and the hardware computes it natively,
    `group_by_length=True` (batches of similar lengths: less padding), and the same attention dropout as
    this project (`model.attention_dropout`, 0 by default, so SDPA keeps its fused kernel). Against it,
    this project's ratio is the engineering alone; against the default `Trainer`, this side shows the
    share of those settings. Training only."""

    name = "hf_trainer_tuned"

    def __init__(self, work: Workload, flops: StepFlops | None = None):
        self.bf16 = "bf16" in work.precision and bf16_native(work.device.type)
        self.precision = "bf16-mixed" if self.bf16 else "32-true"
        self.attention_dropout = work.cfg.model.get("attention_dropout")
        dropout = "the checkpoint's" if self.attention_dropout is None else f"{float(self.attention_dropout):g}"
        self.description = (f"Hugging Face Trainer tuned: bf16={self.bf16}, group_by_length, attention "
                            f"dropout {dropout} (as this project's)")
        super().__init__(work, flops)

    def training_arguments(self) -> dict:
        return {"bf16": self.bf16, **_group_by_length()}

    def _fresh_model(self, seed: int | None = None):
        ckpt = resolve_checkpoint(self.work.cfg.model.pretrained)
        config = AutoConfig.from_pretrained(ckpt.source, num_labels=2, **ckpt.kwargs())
        if self.attention_dropout is not None:
            for key in ATTENTION_DROPOUT_KEYS:
                if hasattr(config, key):
                    setattr(config, key, float(self.attention_dropout))
        torch.manual_seed(self.work.seed if seed is None else seed)
        return AutoModelForSequenceClassification.from_pretrained(ckpt.source, config=config, **ckpt.kwargs())
