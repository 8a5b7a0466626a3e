"""AttributionLogger: Integrated Gradients for a few fixed test reviews, into TensorBoard at the end
of testing (the tested, best checkpoint's weights are loaded then).

The reviews are the first `n_reviews` of the test split in review-hash order, so every run on the
same split shows the same reviews. Each gets a text entry (the review with its strongest tokens
marked) and a bar chart of its top tokens, under `attributions/`.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from imdb_lm.explain.attributions import integrated_gradients
from imdb_lm.runs.checkpoint import special_positions


def markdown(tokens: list[str], scores: list[float], label: int, prob: float, top: int = 12) -> str:
    strongest = set(sorted(range(len(scores)), key=lambda i: -abs(scores[i]))[:top])
    words = [f"**{t}**`{scores[i]:+.2f}`" if i in strongest else t for i, t in enumerate(tokens)]
    return (f"true label: **{'positive' if label else 'negative'}**, P(positive) = {prob:.3f}; "
            f"scores are Integrated Gradients toward *positive* (strongest {top} marked)\n\n" + " ".join(words))


def bar_chart(tokens: list[str], scores: list[float], top: int = 15):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(range(len(scores)), key=lambda i: -abs(scores[i]))[:top][::-1]
    fig, ax = plt.subplots(figsize=(5, 0.3 * len(order) + 1))
    ax.barh(range(len(order)), [scores[i] for i in order],
            color=["#16963c" if scores[i] >= 0 else "#d72828" for i in order])
    ax.set_yticks(range(len(order)), [f"{tokens[i]} @{i}" for i in order], fontsize=8)
    ax.set_xlabel("attribution toward positive")
    fig.tight_layout()
    return fig


class AttributionLogger(L.Callback):
    def __init__(self, n_reviews: int = 4, n_steps: int = 20):
        super().__init__()
        self.n_reviews, self.n_steps = n_reviews, n_steps

    def on_test_end(self, trainer, pl_module):
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        datamodule = getattr(trainer, "datamodule", None)
        if not loggers or datamodule is None or not trainer.is_global_zero or self.n_reviews <= 0:
            return
        data, tokenizer = datamodule.datasets["test"], datamodule.tokenizer
        chosen = sorted(range(len(data)), key=lambda i: data.hashes[i])[: self.n_reviews]
        for k, i in enumerate(chosen):
            ids = data.input_ids[i].tolist()
            att = integrated_gradients(pl_module, ids, tokenizer.pad_id, special_positions(tokenizer, ids),
                                       self.n_steps)
            tokens = tokenizer.tokens(ids)
            prob = float(torch.sigmoid(torch.tensor(att.log_odds)))
            for logger in loggers:
                logger.experiment.add_text(f"attributions/review_{k}",
                                           markdown(tokens, att.scores, data.labels[i], prob), trainer.global_step)
                logger.experiment.add_figure(f"attributions/review_{k}", bar_chart(tokens, att.scores),
                                             trainer.global_step)
