"""Every option of every config group composes and instantiates."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import open_dict

from imdb_lm.config.compose import compose_train
from imdb_lm.errors import UserError
from imdb_lm.models.build import build_model
from imdb_lm.training import flat_hparams

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def composed(tmp_path: Path, *overrides: str):
    cfg = compose_train(list(overrides), with_hydra=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "run")
        cfg.hydra.runtime.cwd = str(tmp_path)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def fake_datamodule(cfg=None):
    """The vocabulary a model is sized to: MiniLM's for presets on its tokenizer (their embeddings
    may be copied from it), a small word vocabulary otherwise."""
    pretrained = cfg is not None and cfg.model.recipe.tokenizer == "pretrained"
    return SimpleNamespace(vocab_size=30522 if pretrained else 500, pad_id=0)


RECURRENT = ["rnn", "lstm", "gru", "bilstm", "bigru"]
HUB_PRESETS = ["bert_base", "bert_small", "distilbert", "electra_small", "albert_base"]
ABLATION = ["bow", "bigru_wordpiece", "bigru_minilm_emb", "bigru_minilm_emb_frozen", "bigru_large",
            "transformer_scratch"]
LANGUAGE_MODELS = ["gru_lm", "lstm_lm", "mingru_lm", "transformer_lm"]  # task=lm


def test_every_group_has_the_designed_options():
    assert set(options("model")) == set(RECURRENT + HUB_PRESETS + ABLATION + LANGUAGE_MODELS + ["transformer"])
    assert set(options("task")) == {"classifier", "lm"}
    assert set(options("optimizer")) == {"sgd", "adam", "adamw", "rmsprop"}
    assert {"auto", "none", "linear_warmup", "cosine"} <= set(options("scheduler"))


@pytest.mark.parametrize("model", RECURRENT + ["transformer"] + ABLATION)
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_model_and_optimizer_instantiate(tmp_path, model, optimizer):
    cfg = composed(tmp_path, f"model={model}", f"optimizer={optimizer}")
    datamodule = instantiate(cfg.data)
    assert datamodule.tokenizer_kind == ("word" if model in RECURRENT + ["bow"] else "pretrained")
    module = build_model(cfg, fake_datamodule(cfg))
    # schedulers are sized from the trainer's step count
    module._trainer = SimpleNamespace(estimated_stepping_batches=100)
    configured = module.configure_optimizers()
    opt = configured["optimizer"] if isinstance(configured, dict) else configured
    assert type(opt).__name__.lower() == optimizer
    lr = opt.param_groups[0]["lr"]
    expected = cfg.model.recipe.lr[optimizer]
    if isinstance(configured, dict):  # warmup starts below the peak rate
        assert 0 < lr < expected
    else:
        assert lr == pytest.approx(expected)
    # no weight decay on biases and norms
    no_decay = opt.param_groups[1]
    assert no_decay["weight_decay"] == 0.0 and all(p.ndim < 2 for p in no_decay["params"])
    assert flat_hparams(cfg)["optimizer"] == optimizer


@pytest.mark.parametrize("model", LANGUAGE_MODELS)
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_language_models_and_optimizers_instantiate(tmp_path, model, optimizer):
    from imdb_lm.lm.task import LanguageModelTask

    cfg = composed(tmp_path, "task=lm", f"model={model}", "model.size=tiny", f"optimizer={optimizer}")
    task = LanguageModelTask()
    datamodule = task.datamodule(cfg)
    assert datamodule.tokenizer_kind == "pretrained" and datamodule.max_length == 256
    module = task.model(cfg, SimpleNamespace(vocab_size=30522, pad_id=0))
    module._trainer = SimpleNamespace(estimated_stepping_batches=100)
    opt = module.configure_optimizers()["optimizer"]  # every LM preset warms up, then decays (cosine)
    assert type(opt).__name__.lower() == optimizer
    assert 0 < opt.param_groups[0]["lr"] < cfg.model.recipe.lr[optimizer]
    assert flat_hparams(cfg)["family"] == cfg.model.family and task.hparams(cfg)["lm.conditional"] is False


@pytest.mark.parametrize("scheduler", ["auto", "none", "linear_warmup", "cosine"])
def test_schedulers_follow_the_real_step_count(tmp_path, scheduler):
    cfg = composed(tmp_path, "model=gru", f"scheduler={scheduler}")
    module = build_model(cfg, fake_datamodule())
    module._trainer = SimpleNamespace(estimated_stepping_batches=50)
    configured = module.configure_optimizers()
    if cfg.scheduler.name == "none":
        assert isinstance(configured, torch.optim.Optimizer)
        return
    opt, sched = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    peak = cfg.optimizer.lr
    rates = []
    for _ in range(50):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(rates) == pytest.approx(peak, rel=0.15)
    assert rates[-1] < 0.1 * peak  # decays to ~0 at the last real step


@pytest.mark.parametrize("preset", HUB_PRESETS)
def test_hub_presets_compose_and_fail_fast_offline(tmp_path, preset, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = composed(tmp_path, f"model={preset}")
    assert "/" in cfg.model.pretrained
    with pytest.raises(UserError, match="model=transformer"):
        build_model(cfg, fake_datamodule())


@pytest.mark.parametrize("trainer", [pytest.param(t, marks=pytest.mark.gpu) if t == "gpu" else t
                                     for t in options("trainer")])
def test_trainer_callbacks_logger_instantiate(tmp_path, trainer):
    cfg = composed(tmp_path, f"trainer={trainer}")
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    loggers = [instantiate(c) for c in cfg.logger.values()]
    assert any(type(c).__name__ == "MetricsTimingCallback" for c in callbacks)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("GPU trainer config composes; instantiating it needs a GPU")
    if "ddp" in trainer and not torch.cuda.is_available() and cfg.trainer.accelerator != "cpu":
        pytest.skip("GPU DDP config composes; instantiating it needs GPUs")
    trainer_obj = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    assert trainer_obj.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("group", ["data", "logger", "paths", "callbacks", "debug", "experiment", "task"])
def test_remaining_groups_compose(tmp_path, group):
    for option in options(group):
        cfg = composed(tmp_path, f"{group}={option}")
        assert cfg.data.cache_dir and cfg.paths.run_dir
