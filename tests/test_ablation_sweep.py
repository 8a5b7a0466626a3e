"""experiment=ablation through the real CLI and the study's sweeper on a tiny slice: every job is
labelled stage=ablation (never the study's grid or seeds), each preset's rate is chosen on validation
among three (the references run at the study's selected setting), and the seeds follow the choice."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from imdb_lm.config.compose import compose_train
from imdb_lm.runs.records import read_metrics
from tests.helpers import TINY, run_cli

TINY_ABLATION = ["data.train_limit=64", "data.val_limit=32", "data.test_limit=32", "data.max_length=32",
                 "data.batch_size=8", "trainer.max_steps=4", "trainer.val_check_interval=2",
                 "trainer.limit_train_batches=1.0", "callbacks.metrics_timing.latency_samples=2"]


PRESETS = ["bow", "bigru_wordpiece", "bigru_minilm_emb", "bigru_minilm_emb_frozen", "bigru_large", "transformer_scratch"]


def test_every_preset_chooses_its_rate_on_validation_and_the_references_run_the_studys_setting():
    cfg = compose_train(["experiment=ablation"], with_hydra=True)
    sweeper = cfg.hydra.sweeper
    narrow = OmegaConf.to_container(sweeper.narrow)
    models = sweeper.params.model.split(",")
    assert sweeper.label == "ablation" and list(sweeper.seeds) == [2, 3, 4, 5] and cfg.seed == 1  # 5 seeds: seed-level tests
    assert set(narrow) == set(models) == {*PRESETS, "bigru", "transformer"}
    assert sweeper.params.lr_scale == "0.3,1,3"
    # no contrast sets a preset whose rate was chosen against one run at its recipe rate
    assert all(narrow[preset] == {"optimizer": ["adamw"]} for preset in PRESETS)  # every lr_scale of the grid
    # the study's selected settings (promotion, then the best full-fidelity validation)
    assert narrow["bigru"] == {"optimizer": ["adam"], "lr_scale": [3]}
    assert narrow["transformer"] == {"optimizer": ["adam"], "lr_scale": [3]}
    # the study's edge rule (a best rate at x0.3 (x3) is tried at x0.1 (x10) too), carried one step further
    study = compose_train(["experiment=study"], with_hydra=True).hydra.sweeper
    assert sweeper.extend.key == study.extend.key == "lr_scale"
    assert list(sweeper.extend.below) == [*study.extend.below, 0.03] == [0.1, 0.03]
    assert list(sweeper.extend.above) == [*study.extend.above, 30] == [10, 30]


def job_number(metrics_path):
    return int(metrics_path.parent.name.split("_")[0])


def expected_extension(first: list[dict], extension: list[dict]) -> list[float]:
    """The edge rule replayed on the runs' own validation scores: while the best rate so far (the first
    of equals, in the order the jobs ran) is the lowest (highest) one run, the next of x0.1, x0.03
    (x10, x30) runs."""
    ran, out = list(first), []
    below, above = [0.1, 0.03], [10, 30]
    while True:
        scales = [r["config"]["lr_scale"] for r in ran]
        best = max(ran, key=lambda r: r["metrics"]["best_val_acc"])["config"]["lr_scale"]
        nxt = ([v for v in below if v < min(scales)][:1] if best == min(scales) else
               [v for v in above if v > max(scales)][:1] if best == max(scales) else [])
        if not nxt:
            return out
        out.append(nxt[0])
        ran.append(next(r for r in extension if r["config"]["lr_scale"] == nxt[0]))


@pytest.mark.slow
def test_the_ablation_sweep_labels_every_job_and_seeds_the_validated_rate(tmp_path, cache_dir):
    sweep = tmp_path / "outputs" / "multirun" / "ablation"
    run_cli("imdb_lm.train", "--multirun", "experiment=ablation", "model=bow,transformer_scratch",
            "hydra.sweeper.seeds=[2]", *TINY, *TINY_ABLATION, f"hydra.sweep.dir={sweep}", "results_dirs=[outputs]",
            cwd=tmp_path, cache=cache_dir)
    # in the order the jobs ran (their folders are numbered), which decides between equal val scores
    records = [read_metrics(p.parent) for p in sorted(sweep.rglob("metrics.json"), key=job_number)]
    selection = json.loads((sweep / "study_selection.json").read_text())
    extended = selection["extended"]  # a preset's rate at x0.1 (x10), then x0.03 (x30), while its best is at an edge
    assert len(records) == 2 * (3 + 1) + len(extended) and all(r["status"] == "completed" for r in records)
    assert {r["stage"] for r in records} == {"ablation"} and {r["config"]["tag"] for r in records} == {"ablation"}
    recipe_lr = {"bow": 1e-2, "transformer_scratch": 5e-4}
    for preset, lr in recipe_lr.items():
        runs = [r for r in records if r["model"]["name"] == preset]
        probe = [r for r in runs if r["seed"] == 1]
        first = [r for r in probe if r["config"]["lr_scale"] in (0.3, 1, 3)]
        assert sorted(r["config"]["lr_scale"] for r in first) == [0.3, 1, 3]
        assert sorted(r["hparams"]["lr"] for r in first) == pytest.approx([0.3 * lr, lr, 3 * lr])
        extension = [r for r in probe if r not in first]
        assert [r["config"]["lr_scale"] for r in extension] == expected_extension(first, extension)
        best = max(probe, key=lambda r: r["metrics"]["best_val_acc"])  # the first of equals, as the sweeper picks
        assert [r["hparams"]["lr"] for r in runs if r["seed"] == 2] == [best["hparams"]["lr"]]
        assert selection["groups"][preset]["selected"]["val"] == best["metrics"]["best_val_acc"]
