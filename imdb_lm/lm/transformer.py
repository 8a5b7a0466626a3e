"""The causal transformer language model: transformers' GPT-NeoX body built from a config, with the
library's own random initialisation (normal(0, 0.02) weights) and KV cache.

Pre-LN blocks in sequence (use_parallel_residual=false: x + attn(LN(x)), then x + MLP(LN(x))),
rotary position embeddings over every head dimension, so no position table limits generation
(max_position_embeddings=2048 only sizes the rotary cache), and the tied output layer of output.py
instead of the library's untied head.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from imdb_lm.errors import UserError
from imdb_lm.lm.base import LanguageModel
from imdb_lm.models.transformer import CPU_ATTENTION_FLOPS


class TransformerLM(LanguageModel):
    family = "transformer_lm"

    def __init__(self, vocab_size: int, pad_id: int = 0, embedding_dim: int = 128, num_layers: int = 2,
                 num_heads: int = 4, mlp_ratio: int = 4, dropout: float = 0.1, max_positions: int = 2048,
                 attn_implementation: str = "sdpa", output: str = "full", loss_chunk: int = 2048,
                 optimizer: dict | None = None, scheduler: dict | None = None):
        super().__init__(output, loss_chunk, optimizer, scheduler)
        if embedding_dim % num_heads:
            raise UserError(f"model.embedding_dim={embedding_dim} must be a multiple of model.num_heads={num_heads}")
        self.save_hyperparameters(logger=False)
        from transformers import GPTNeoXConfig, GPTNeoXModel

        config = GPTNeoXConfig(
            vocab_size=vocab_size, hidden_size=embedding_dim, num_hidden_layers=num_layers,
            num_attention_heads=num_heads, intermediate_size=mlp_ratio * embedding_dim,
            max_position_embeddings=max_positions, use_parallel_residual=False,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0},
            hidden_dropout=dropout, attention_dropout=0.0, pad_token_id=pad_id, tie_word_embeddings=False)
        config._attn_implementation = attn_implementation
        self.model = GPTNeoXModel(config)
        self._build_output()

    def embeddings(self) -> torch.nn.Module:
        return self.model.embed_in

    def body(self, input_ids: torch.Tensor, state=None, keep_state: bool = False):
        # No attention mask: right padding never reaches a real position under the causal mask.
        out = self.model(input_ids=input_ids, cache=state, use_cache=keep_state)
        return out.last_hidden_state, out.cache

    def body_flops_per_token(self, length: int) -> float:
        """Counted by torch's FlopCounterMode over one forward of a `length`-token sequence: every
        matrix product, attention's score and mixing products included."""
        ids = torch.full((1, length), 1000, device=self.device)
        training = self.model.training
        try:
            self.model.eval()  # no dropout draws: counting never shifts a run's random stream
            with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS) as counter, torch.no_grad():
                self.model(input_ids=ids, use_cache=False)
        finally:
            self.model.train(training)
        return counter.get_total_flops() / length
