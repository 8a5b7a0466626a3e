"""MisclassifiedExamplesCallback: at test end, TensorBoard gets a confusion matrix figure and misclassified reviews.

Numbers show how often a model errs; the reviews show *how*: the most confidently wrong test
reviews (cleaned text, as the datamodule keeps it) with their label and predicted probability.
Only TensorBoard loggers are written to; without one the callback does nothing.
"""

from __future__ import annotations

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from torchmetrics.classification import BinaryConfusionMatrix  # noqa: E402

LABELS = ("negative", "positive")


def confusion_figure(matrix: torch.Tensor):
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(matrix.numpy(), cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center",
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xticks([0, 1], LABELS)
    ax.set_yticks([0, 1], LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("test confusion matrix")
    fig.tight_layout()
    return fig


class MisclassifiedExamplesCallback(L.Callback):
    def __init__(self, misclassified: int = 5, max_chars: int = 600):
        super().__init__()
        self.misclassified, self.max_chars = misclassified, max_chars
        self._probs: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []
        self._index: list[torch.Tensor] = []

    def on_test_epoch_start(self, trainer, pl_module):
        self._probs, self._labels, self._index = [], [], []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._probs.append(outputs["logits"].float().softmax(-1)[:, 1].cpu())
        self._labels.append(outputs["labels"].cpu())
        self._index.append(outputs["index"].cpu())

    def on_test_epoch_end(self, trainer, pl_module):
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or not self._probs:
            return
        probs, labels, index = torch.cat(self._probs), torch.cat(self._labels), torch.cat(self._index)
        matrix = BinaryConfusionMatrix()(probs, labels)
        text = self._misclassified_text(trainer, probs, labels, index)
        for logger in loggers:
            fig = confusion_figure(matrix)
            logger.experiment.add_figure("test/confusion_matrix", fig, global_step=trainer.global_step)
            logger.experiment.add_text("test/misclassified", text, global_step=trainer.global_step)
            logger.experiment.flush()

    def _misclassified_text(self, trainer, probs, labels, index) -> str:
        wrong = ((probs > 0.5).long() != labels).nonzero().flatten()
        if len(wrong) == 0:
            return "No misclassified test reviews."
        # Most confidently wrong first: distance of the probability from the true label.
        confidence = (probs[wrong] - labels[wrong].float()).abs()
        chosen = wrong[confidence.argsort(descending=True)][: self.misclassified]
        datamodule = getattr(trainer, "datamodule", None)
        texts = datamodule.texts("test") if datamodule is not None and hasattr(datamodule, "texts") else None
        rows = [f"{len(wrong)} of {len(labels)} test reviews misclassified; the {len(chosen)} most confident:"]
        for i in chosen.tolist():
            review = texts[int(index[i])] if texts is not None else f"(test review #{int(index[i])})"
            if len(review) > self.max_chars:
                review = review[: self.max_chars] + " ..."
            rows.append(f"**true {LABELS[int(labels[i])]}, p(positive) = {float(probs[i]):.3f}**: {review}")
        return "\n\n".join(rows)
