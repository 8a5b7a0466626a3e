"""The model families and how a config becomes a model: the one place that knows them.

A family is a `SequenceClassifier` subclass; `model.family` in a config picks it. Training, loading
a run (imdb_lm/runs/checkpoint.py) and explaining go through this registry, so a new family is one
module plus one config plus one line below. Classes are named by path and imported on first use:
the transformer module imports `transformers`, which the recurrent path does not need.
"""

from __future__ import annotations

from importlib import import_module

from omegaconf import DictConfig, OmegaConf

from imdb_lm.errors import UserError

FAMILIES = {
    "recurrent": "imdb_lm.models.recurrent:RecurrentClassifier",
    "transformer": "imdb_lm.models.transformer:TransformerClassifier",
    "bag_of_ngrams": "imdb_lm.models.bag:BagOfNgramsClassifier",
}
# Model-config keys that describe the preset, not constructor arguments.
PRESET_KEYS = ("name", "family", "recipe")


def model_class(family: str, where: str = "model.family"):
    if family not in FAMILIES:
        raise UserError(f"{where}={family!r} is not a model family; choose one of {', '.join(FAMILIES)}")
    module, name = FAMILIES[family].split(":")
    return getattr(import_module(module), name)


def model_arguments(model_cfg: DictConfig) -> dict:
    """The constructor arguments of a model config (resolved, preset keys left out)."""
    return {k: v for k, v in OmegaConf.to_container(model_cfg, resolve=True).items()
            if k not in PRESET_KEYS and not k.startswith("_")}


def build_model(cfg: DictConfig, datamodule):
    """The LightningModule a training config describes, sized to the data module's vocabulary."""
    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
    scheduler = OmegaConf.to_container(cfg.scheduler, resolve=True)
    # Plain dicts, not instantiated objects: they are saved in checkpoints as hyperparameters.
    model = model_class(str(cfg.model.family))(**model_arguments(cfg.model), optimizer=optimizer,
                                               scheduler=scheduler, vocab_size=datamodule.vocab_size,
                                               pad_id=datamodule.pad_id)
    if cfg.get("compile"):
        # In place: the module and its state_dict keys stay the same, so checkpoints load anywhere.
        model.compile(dynamic=True)
    return model
