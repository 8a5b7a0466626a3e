"""TransformerClassifier: any Hugging Face encoder checkpoint with a sequence-classification head."""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

from imdb_lm.errors import UserError
from imdb_lm.models.classifier import SequenceClassifier
from imdb_lm.models.dropout import use_fast_dropout
from imdb_lm.models.pretrained import resolve_checkpoint

# The config attribute of the attention-probability dropout, by architecture family.
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


class TransformerClassifier(SequenceClassifier):
    family = "transformer"

    def __init__(self, pretrained: str = "bundled", attn_implementation: str = "sdpa",
                 classifier_dropout: float | None = None, attention_dropout: float | None = None,
                 gradient_checkpointing: bool = False,
                 optimizer: dict | None = None, scheduler: dict | None = None,
                 vocab_size: int | None = None, pad_id: int | None = None):
        super().__init__(optimizer, scheduler)
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
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(
                ckpt.source, config=config, attn_implementation=attn_implementation, **ckpt.kwargs())
        except (ValueError, ImportError):  # an architecture without SDPA support: use its default
            self.model = AutoModelForSequenceClassification.from_pretrained(ckpt.source, config=config,
                                                                            **ckpt.kwargs())
        # from_pretrained returns the model in eval mode, and Lightning keeps each module's mode:
        # without this, fine-tuning would silently run with dropout off.
        self.model.train()
        use_fast_dropout(self.model)
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable()

    def embeddings(self) -> torch.nn.Module:
        return self.model.get_input_embeddings()

    def forward_embedded(self, embedded: torch.Tensor, attention_mask: torch.Tensor,
                         lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits from word embeddings (position/type embeddings are still added inside)."""
        return self.model(inputs_embeds=embedded, attention_mask=attention_mask).logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
