"""experiment=study trains every family under one policy (issue 13): what the report compares is the
family, not its recipe."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from imdb_lm.config.compose import compose_train

MODELS = ["rnn", "lstm", "gru", "bilstm", "bigru", "transformer"]


def policy(model: str) -> dict:
    cfg = compose_train(["experiment=study", f"model={model}"], with_hydra=True)
    sweeper = cfg.hydra.sweeper
    return {
        "scheduler": OmegaConf.to_container(cfg.scheduler, resolve=True),
        "truncation": cfg.data.truncation, "max_length": cfg.data.max_length,
        "clipping": (cfg.trainer.gradient_clip_val, cfg.trainer.gradient_clip_algorithm),
        "precision": cfg.trainer.precision, "min_steps": cfg.callbacks.min_steps.steps,
        "fidelity": (cfg.data.train_limit, cfg.data.val_limit, cfg.data.test_limit),
        "batch_sizes": sweeper.params["data.batch_size"], "lr_scales": sweeper.params.lr_scale,
        "optimizers": sweeper.params.optimizer, "narrow": OmegaConf.to_container(sweeper.narrow),
    }


def test_every_family_gets_the_same_policy():
    policies = {model: policy(model) for model in MODELS}
    assert all(p == policies["bigru"] for p in policies.values()), policies
    study = policies["transformer"]
    assert study["scheduler"]["name"] == "linear_warmup" and study["truncation"] == "head_tail"
    assert study["precision"] == "32-true" and study["clipping"][0] == 1.0
    assert study["batch_sizes"] == "16,64" and study["lr_scales"] == "0.3,1,3"
    assert study["narrow"] == {}, "every family runs the whole grid"


@pytest.mark.parametrize("model", MODELS)
def test_each_recipe_batch_is_on_the_batch_size_axis(model):
    recipe = compose_train([f"model={model}"]).model.recipe.batch_size
    assert str(recipe) in policy(model)["batch_sizes"].split(",")


def test_the_study_has_every_stage_and_counts_committed_records_as_done():
    cfg = compose_train(["experiment=study"], with_hydra=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper.params.model.split(",") == MODELS
    assert sweeper.promote.top_k >= 3
    assert set(sweeper.promote.overrides) == {"data.train_limit=null", "data.val_limit=null"}
    assert len(sweeper.seeds) >= 4  # with the promoted seed: >= 5 seeds (seed-level tests need them)
    # policy v2: each model's budget chosen on validation too, and edge rates at the promoted stage
    assert sweeper.budget.key == "trainer.max_epochs" and sweeper.extend.promoted
    assert {m: sweeper.budget.longer[m] for m in MODELS} == {**{m: 8 for m in MODELS if m != "transformer"},
                                                            "transformer": 3}
    assert list(sweeper.curves.sizes) == [500, 1000, 2000, 5000, 10000, None]
    assert len(sweeper.curves.seeds) >= 3
    assert sorted(g for groups in sweeper.curves.families.values() for g in groups) == sorted(MODELS)
    assert cfg.skip_completed and "docs/study" in cfg.results_dirs
