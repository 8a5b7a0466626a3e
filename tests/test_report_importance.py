"""Hyperparameter importance (report/importance.py) and the parallel-coordinates figure on
constructed run records whose answer is known."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imdb_lm.report.importance import family_importance, importance, summary, table
from imdb_lm.report.parallel import parallel_coordinates

RECIPE = {"adam": 2e-3, "sgd": 0.1, "rmsprop": 1e-3}


def run(val_acc, optimizer="adam", lr_scale=1.0, batch_size=32, model="gru", family="recurrent", lr=None,
        status="completed", seed=42) -> dict:
    return {"model": model, "family": family, "optimizer": optimizer, "lr_scale": lr_scale,
            "lr": RECIPE[optimizer] * lr_scale if lr is None else lr, "batch_size": batch_size,
            "scheduler": "none", "max_length": 128, "max_epochs": 2, "train_limit": None, "status": status,
            "seed": seed, "val_acc": val_acc, "test_acc": None if val_acc is None else val_acc - 0.01}


def grid(accuracy, models=("gru", "lstm"), optimizers=("adam", "sgd", "rmsprop"), scales=(0.3, 1.0, 3.0),
         batches=(16, 32)) -> pd.DataFrame:
    return pd.DataFrame([run(accuracy(m, o, s, b), o, s, b, m)
                         for m, o, s, b in itertools.product(models, optimizers, scales, batches)])


def test_accuracy_that_depends_only_on_the_learning_rate_gives_it_all_the_importance():
    frame = grid(lambda m, o, s, b: {0.3: 0.62, 1.0: 0.81, 3.0: 0.70}[s])
    result = family_importance(frame, "recurrent")
    assert result.axes == ["model", "optimizer", "lr_scale", "batch_size"]
    assert result.complete and result.settings == result.grid == 36
    assert result.shares["lr_scale"] == pytest.approx(1.0, abs=1e-9)
    for other in ("model", "optimizer", "batch_size", "interactions and noise"):
        assert result.shares[other] == pytest.approx(0.0, abs=1e-9)
    # the actual lr is each model's recipe rate x lr_scale: not an axis of its own
    assert result.derived == {"lr": ["model", "optimizer", "lr_scale"]}
    assert result.constant == {"scheduler": "none", "max_length": 128, "max_epochs": 2}
    assert result.spread == pytest.approx(0.19)
    assert table(result).iloc[0].to_dict() == {"hyperparameter": "lr_scale", "levels": "3", "values": "0.3, 1, 3",
                                               "share of variance %": 100.0}


def test_additive_effects_get_their_share_of_the_variance():
    # optimizer effects -0.03, +0.03, 0 (variance 0.0006); batch effects -0.01, +0.01 (variance 0.0001)
    effect = {"adam": -0.03, "sgd": 0.03, "rmsprop": 0.0}
    frame = grid(lambda m, o, s, b: 0.7 + effect[o] + (0.01 if b == 32 else -0.01), scales=(1.0,))
    shares = family_importance(frame, "recurrent").shares
    assert shares["optimizer"] == pytest.approx(6 / 7)
    assert shares["batch_size"] == pytest.approx(1 / 7)
    assert shares["model"] == pytest.approx(0.0, abs=1e-9)
    assert shares["interactions and noise"] == pytest.approx(0.0, abs=1e-9)


def test_a_pure_interaction_is_no_main_effect():
    frame = grid(lambda m, o, s, b: 0.7 + 0.05 * (1 if (o == "sgd") == (b == 32) else -1), optimizers=("adam", "sgd"),
                 models=("gru",), scales=(1.0,))
    shares = family_importance(frame, "recurrent").shares
    assert shares == pytest.approx({"optimizer": 0.0, "batch_size": 0.0, "interactions and noise": 1.0}, abs=1e-9)


def test_incomplete_grid_failed_jobs_and_seeds():
    frame = grid(lambda m, o, s, b: {0.3: 0.62, 1.0: 0.81, 3.0: 0.70}[s] + (0.05 if m == "lstm" else 0.0))
    frame = frame.drop(index=[0, 7, 20, 33]).reset_index(drop=True)   # four settings never ran
    frame.loc[3, ["status", "val_acc", "test_acc"]] = ["failed", None, None]  # one crashed
    reseeds = pd.DataFrame([run(0.86 + d, "adam", 1.0, 32, "lstm", seed=s) for s, d in ((1, 0.01), (2, -0.01))])
    result = family_importance(pd.concat([frame, reseeds], ignore_index=True), "recurrent")
    assert result.runs == 31 + 2 and result.settings == 31 and result.grid == 36 and not result.complete
    # the additive truth is recovered from the settings that ran (seeds averaged first)
    lr_var = np.var([0.62, 0.81, 0.70])
    model_var = 0.025 ** 2
    assert result.shares["lr_scale"] == pytest.approx(lr_var / (lr_var + model_var), abs=1e-9)
    assert result.shares["model"] == pytest.approx(model_var / (lr_var + model_var), abs=1e-9)
    assert result.shares["interactions and noise"] == pytest.approx(0.0, abs=1e-9)
    assert "31 of the 36 settings of the full grid" in summary(result)


def test_single_valued_axes_are_constant_and_an_explicit_lr_is_an_axis():
    # optimizer.lr=... swept by hand: lr is not the recipe rate, so it is an axis; lr_scale stays 1
    frame = pd.DataFrame([run(0.6 + 0.1 * i, "adam", lr=lr) for i, lr in enumerate((1e-4, 1e-3, 1e-2))])
    result = family_importance(frame, "recurrent")
    assert result.axes == ["lr"] and result.shares["lr"] == pytest.approx(1.0)
    assert result.constant["lr_scale"] == 1.0 and result.constant["optimizer"] == "adam"
    assert result.constant["batch_size"] == 32 and "lr" not in result.derived


def test_an_axis_that_changes_only_with_another_is_not_separate():
    # adamw brings weight_decay=0.01: over an optimizer x batch grid, the two cannot be told apart
    frame = grid(lambda m, o, s, b: 0.8 if o == "adamw" else 0.7, models=("gru",), scales=(1.0,),
                 optimizers=("adam", "rmsprop"))
    adamw = frame[frame["optimizer"] == "adam"].assign(optimizer="adamw", val_acc=0.8)
    frame = pd.concat([frame, adamw], ignore_index=True)
    frame["weight_decay"] = np.where(frame["optimizer"] == "adamw", 0.01, 0.0)
    result = family_importance(frame, "recurrent")
    assert result.axes == ["optimizer", "batch_size"]
    assert result.derived["weight_decay"] == ["optimizer"]
    assert "weight_decay (changes only with optimizer)" in summary(result)
    assert result.shares["optimizer"] == pytest.approx(1.0)


@pytest.mark.parametrize(("accuracies", "note"), [
    ([0.7, 0.7, 0.7], "every setting reached the same validation accuracy"),
    ([0.6, 0.8], "only 2 settings; importance needs at least 3"),
])
def test_no_importance_without_enough_varied_settings(accuracies, note):
    frame = pd.DataFrame([run(a, "adam", scale) for a, scale in zip(accuracies, (0.3, 1.0, 3.0), strict=False)])
    result = family_importance(frame, "recurrent")
    assert result.shares == {} and result.note == note


def test_continuous_axis_of_a_search_is_binned_and_keeps_its_importance():
    # an Optuna-like search: lr_scale log-uniform, accuracy rising with log lr_scale only. Four
    # quantile bins keep 1 - 1/16 of its variance (a uniform's variance within a quarter of its
    # range is 1/16 of the whole); the rest is left to the residual.
    scales = np.geomspace(0.1, 10, 40)
    optimizers, batches = ["adam", "sgd", "rmsprop", "adam", "sgd"], [16, 32, 64]
    frame = pd.DataFrame([run(0.7 + 0.1 * np.log10(s), optimizers[i % 5], float(s), batches[i % 3])
                          for i, s in enumerate(scales)])
    result = family_importance(frame, "recurrent")
    assert result.axes == ["optimizer", "lr_scale", "batch_size"] and result.derived == {"lr": ["optimizer", "lr_scale"]}
    assert result.levels["lr_scale"] == ["0.1-0.289", "0.326-0.943", "1.06-3.07", "3.46-10"]  # 10 runs each
    assert result.shares["lr_scale"] == pytest.approx(15 / 16, abs=0.03)
    assert result.shares["optimizer"] < 0.02 and result.shares["batch_size"] < 0.02


def test_families_are_analysed_apart(tmp_path):
    rnn = grid(lambda m, o, s, b: {0.3: 0.62, 1.0: 0.81, 3.0: 0.70}[s])
    trf = pd.DataFrame([run(0.5 if o == "sgd" else 0.9, o, s, 16, "transformer", "transformer")
                        for o, s in itertools.product(RECIPE, (1.0, 3.0))])
    results = importance(pd.concat([rnn, trf], ignore_index=True))
    assert sorted(results) == ["recurrent", "transformer"]
    assert results["transformer"].axes == ["optimizer", "lr_scale"]
    assert results["transformer"].constant["model"] == "transformer"
    assert results["transformer"].shares["optimizer"] == pytest.approx(1.0)
    # the figure: one line per run through every varied axis, the actual lr and both accuracies
    path = parallel_coordinates(pd.concat([rnn, trf]), results["recurrent"], tmp_path / "parallel.png")
    with Image.open(path) as image:
        assert image.size[0] > image.size[1] > 400
