"""task=lm for imdb_lm/training.py (the interface is imdb_lm/tasks.py's ClassifierTask)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from imdb_lm.models.build import model_arguments

# model.family of the *_lm presets -> its class
LM_CLASSES = {
    "recurrent_lm": "imdb_lm.lm.recurrent:RecurrentLM",
    "transformer_lm": "imdb_lm.lm.transformer:TransformerLM",
}
NOT_ARGUMENTS = ("size", "pretrained")  # preset keys that pick values, not constructor arguments


def lm_class(family: str):
    from importlib import import_module

    module, name = LM_CLASSES[family].split(":")
    return getattr(import_module(module), name)


def build_lm(cfg: DictConfig, vocab_size: int, pad_id: int):
    """The language model a training config describes (its output layer from lm.*)."""
    arguments = {k: v for k, v in model_arguments(cfg.model).items() if k not in NOT_ARGUMENTS}
    return lm_class(str(cfg.model.family))(
        **arguments, output=str(cfg.lm.output), loss_chunk=int(cfg.lm.loss_chunk),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True), vocab_size=vocab_size, pad_id=pad_id)


class LanguageModelTask:
    name = "lm"

    @property
    def metrics_callback(self) -> type:
        from imdb_lm.lm.metrics import LMMetricsCallback

        return LMMetricsCallback

    def datamodule(self, cfg: DictConfig):
        from imdb_lm.lm.data import LMDataModule

        data = {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if k != "_target_"}
        return LMDataModule(**data, conditional=bool(cfg.lm.conditional), unknown_share=float(cfg.lm.unknown_share))

    def model(self, cfg: DictConfig, datamodule):
        model = build_lm(cfg, datamodule.vocab_size, datamodule.pad_id)
        if cfg.get("compile"):
            model.compile(dynamic=True)
        return model

    def hparams(self, cfg: DictConfig) -> dict:
        return {"task": self.name, **{f"lm.{k}": v for k, v in OmegaConf.to_container(cfg.lm, resolve=True).items()}}

    def metrics(self, timing, test: dict) -> dict:
        best = timing.best_val
        return {"val": dict(best), "best_val_loss": best.get("loss"), "best_val_ppl": best.get("ppl"),
                "best_epoch": best.get("epoch"), "test": test}

    def score(self, timing) -> float | None:
        """What `run` returns (a sweeper's objective): the best validation loss per token (minimise it)."""
        return timing.best_val.get("loss")

    def write_outputs(self, run_dir: Path, datamodule, timing) -> None:
        """Nothing beside metrics.json yet: the test's numbers are in its `metrics.test`."""

    def final_metrics(self, record: dict) -> dict:
        metrics, timing = record["metrics"], record["timing"]
        return {"hp/val_ppl": metrics["best_val_ppl"] or 0.0, "hp/test_ppl": metrics["test"].get("ppl", 0.0),
                "hp/fit_seconds": timing["fit_seconds"] or 0.0,
                "hp/train_tokens_per_s": timing["train_tokens_per_s"] or 0.0}

    def summary(self, record: dict) -> str:
        test, timing = record["metrics"]["test"], record["timing"]
        nan = float("nan")
        return (f"test perplexity: {test.get('ppl', nan):.1f}  bits per character: {test.get('bpc', nan):.3f}  "
                f"best val perplexity: {record['metrics']['best_val_ppl'] or nan:.1f}  "
                f"train: {timing['train_tokens_per_s'] or nan:.0f} tokens/s  fit: {timing['fit_seconds']:.0f}s")
