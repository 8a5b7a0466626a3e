"""TransformerClassifier: any Hugging Face encoder checkpoint with a sequence-classification head.

`initialization: random` keeps the checkpoint's architecture (its config.json) and tokenizer but
starts from the architecture's own random initialisation (transformers' `_init_weights`, e.g.
normal(0, initializer_range) weights for BERT): the pretraining contrast of the ablation.
"""

from __future__ import annotations

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoConfig, AutoModelForSequenceClassification

from imdb_lm.errors import UserError
from imdb_lm.models.classifier import SequenceClassifier
from imdb_lm.models.dropout import use_fast_dropout
from imdb_lm.models.pretrained import resolve_checkpoint

# The config attribute of the attention-probability dropout, by architecture family.
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")
INITIALIZATIONS = (None, "pretrained", "random")


def _cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query, key, value)


# SDPA's fused CPU kernel has no FLOP formula in torch (its math path decomposes into counted
# products); the eager attention code would count, but which code runs is the checkpoint's and the
# transformers version's choice, so the fused kernel gets the formula of the other SDPA kernels.
CPU_ATTENTION_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}


class TransformerClassifier(SequenceClassifier):
    family = "transformer"

    def __init__(self, pretrained: str = "bundled", attn_implementation: str = "sdpa",
                 classifier_dropout: float | None = None, attention_dropout: float | None = None,
                 gradient_checkpointing: bool = False, initialization: str | None = None,
                 optimizer: dict | None = None, scheduler: dict | None = None,
                 vocab_size: int | None = None, pad_id: int | None = None):
        super().__init__(optimizer, scheduler)
        if initialization not in INITIALIZATIONS:
            raise UserError(f"model.initialization={initialization!r} is unknown; choose pretrained (the "
                            "checkpoint's weights) or random (its architecture, randomly initialised)")
        self.save_hyperparameters(logger=False)
        ckpt = resolve_checkpoint(pretrained)
        config = AutoConfig.from_pretrained(ckpt.source, num_labels=2, **ckpt.kwargs())
        if classifier_dropout is not None:
            config.classifier_dropout = classifier_dropout
        if attention_dropout is not None:
            if not 0.0 <= float(attention_dropout) < 1.0:
                raise UserError(f"model.attention_dropout={attention_dropout} must be in [0, 1) or null")
            for key in ATTENTION_DROPOUT_KEYS:
                if hasattr(config, key):
                    setattr(config, key, float(attention_dropout))
        if initialization == "random":
            def load(**kwargs):
                return AutoModelForSequenceClassification.from_config(config, **kwargs)
        else:
            def load(**kwargs):
                return AutoModelForSequenceClassification.from_pretrained(ckpt.source, config=config,
                                                                          **ckpt.kwargs(), **kwargs)
        try:
            self.model = load(attn_implementation=attn_implementation)
        except (ValueError, ImportError):  # an architecture without SDPA support: use its default
            self.model = load()
        # from_pretrained returns the model in eval mode, and Lightning keeps each module's mode:
        # without this, fine-tuning would silently run with dropout off.
        self.model.train()
        use_fast_dropout(self.model)
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()

    def embeddings(self) -> torch.nn.Module:
        return self.model.get_input_embeddings()

    def embedding_block(self) -> torch.nn.Module:
        """Word, position and token-type embeddings (and their LayerNorm, for BERT-style models)."""
        block = getattr(self.model.base_model, "embeddings", None)
        return block if isinstance(block, torch.nn.Module) else self.embeddings()

    def forward_flops_per_token(self, length: int) -> float:
        """Counted by torch's FlopCounterMode over one forward of a `length`-token review: every matrix
        product, attention's score and mixing products included (4 x length x width per token and
        layer); the pooler and head run once per review. Shared layers (ALBERT) are counted each time
        they run."""
        hf, training = self.model, self.model.training
        ids = torch.full((1, length), (hf.config.pad_token_id or 0) + 1, device=self.device)
        try:
            hf.eval()  # dropout off: no random draws, so counting never shifts a run's random stream
            with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS) as counter, torch.no_grad():
                hf(input_ids=ids, attention_mask=torch.ones_like(ids))
        finally:
            hf.train(training)
        return counter.get_total_flops() / length

    def forward_embedded(self, embedded: torch.Tensor, attention_mask: torch.Tensor,
                         lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits from word embeddings (position/type embeddings are still added inside)."""
        return self.model(inputs_embeds=embedded, attention_mask=attention_mask).logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
