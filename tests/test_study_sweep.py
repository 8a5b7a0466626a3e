"""The study's stages on a tiny grid, through the real CLI and the real sweeper: promotion of the
top-k by validation to the given full fidelity, seeds of the best promoted setting, and the curves
(every size on the same val and test reviews)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imdb_lm.runs.records import read_metrics
from tests.helpers import run_cli

TINY_STUDY = [
    "--multirun", "experiment=study", "model=rnn,gru", "optimizer=adam", "lr_scale=0.3,1,3", "data.batch_size=16",
    "data.train_limit=64", "data.val_limit=32", "data.test_limit=32", "data.max_length=32",
    "trainer.max_epochs=1", "callbacks.min_steps.steps=6", "callbacks.metrics_timing.latency_samples=3",
    "hydra.sweeper.promote.top_k=2", "hydra.sweeper.promote.overrides=['data.train_limit=128']",
    "hydra.sweeper.seeds=[1]", "hydra.sweeper.curves.sizes=[32,128]", "hydra.sweeper.curves.seeds=[42,1]",
    "~hydra.sweeper.curves.families", "+hydra.sweeper.curves.families={plain:[rnn],gated:[gru]}",
    # policy v2's budget probe, at this scale: 2 epochs against the promoted jobs' 1
    "~hydra.sweeper.budget.longer", "+hydra.sweeper.budget.longer={rnn:2,gru:2}",
]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory, cache_dir):
    cwd = tmp_path_factory.mktemp("study")
    sweep = cwd / "outputs" / "multirun" / "study"
    proc = run_cli("imdb_lm.train", *TINY_STUDY, f"hydra.sweep.dir={sweep}", "results_dirs=[outputs]",
                   cwd=cwd, cache=cache_dir)
    records = [read_metrics(p.parent) for p in sorted(sweep.rglob("metrics.json"))]
    selection = json.loads((sweep / "study_selection.json").read_text())
    return records, selection, proc


def _by(records, **where):
    return [r for r in records if all(r.get(k) == v or r["hparams"].get(k) == v for k, v in where.items())]


def _val(record):
    return record["metrics"]["best_val_acc"]


@pytest.mark.slow
def test_promotion_takes_the_top_k_by_validation_to_full_fidelity(tiny_study):
    records, selection, proc = tiny_study
    assert all(r["status"] == "completed" for r in records), proc.stdout[-3000:]
    grid, promoted = _by(records, stage="grid"), _by(records, stage="promoted")
    assert len(grid) == 6 + len(selection["extended"])
    assert len(promoted) == 4 + len(selection.get("promoted_extended", [])) + len(selection["budget_probes"])
    assert {r["splits"]["train"]["count"] for r in grid} == {64}
    assert {r["splits"]["train"]["count"] for r in promoted} == {128}  # the full fidelity given
    assert {r["data"]["train_reviews"] for r in promoted} == {128}
    assert all(r["data"]["train_nested_in_full"] for r in records)
    # 32 words cut most reviews; the share is per split, from the tokenization
    assert all(0.5 < r["data"]["truncated_share"]["train"] <= 1 for r in records)
    # every subset is drawn from the one train split, and val and test never change
    assert len({json.dumps(r["splits"]["train_full"]) for r in records}) == 1
    assert len({json.dumps([r["splits"]["val"], r["splits"]["test"]]) for r in records}) == 1
    for model in ("rnn", "gru"):
        ranked = sorted(_by(grid, model=model), key=_val, reverse=True)  # stable: ties keep grid order
        top = {r["hparams"]["lr"] for r in ranked[:2]}
        # the top-k promotions themselves: not the longer-budget probe, not a promoted edge (a rate the grid never ran)
        grid_rates = {r["config"]["lr_scale"] for r in _by(grid, model=model)}
        first = [r for r in _by(promoted, model=model)
                 if r["hparams"]["max_epochs"] == 1 and r["config"]["lr_scale"] in grid_rates]
        assert {r["hparams"]["lr"] for r in first} == top
        assert [p["grid_val"] for p in selection["groups"][model]["promoted"]] == [_val(r) for r in ranked[:2]]
    # the grid trained at least the stated steps: 64 reviews / batch 16 = 4 steps an epoch -> 2 epochs
    assert all(len(r["history"]) == 2 for r in grid)


@pytest.mark.slow
def test_the_grid_is_extended_where_a_best_rate_sits_at_its_edge(tiny_study):
    records, selection, _ = tiny_study
    grid = _by(records, stage="grid")
    expected = []
    for model in ("rnn", "gru"):
        swept = [r for r in _by(grid, model=model) if r["config"]["lr_scale"] in (0.3, 1, 3)]
        best = max(swept, key=_val)  # the first of equals, as the sweeper picks
        edge = {0.3: 0.1, 3: 10.0}.get(best["config"]["lr_scale"])
        if edge is not None:
            expected.append((model, edge))
            extended = [r for r in _by(grid, model=model) if r["config"]["lr_scale"] == edge]
            assert len(extended) == 1 and extended[0]["hparams"]["optimizer"] == best["hparams"]["optimizer"]
            assert extended[0]["hparams"]["lr"] == pytest.approx(best["hparams"]["lr"] * edge / best["config"]["lr_scale"])
    listed = [(next(o.split("=")[1] for o in job if o.startswith("model=")),
               float(next(o.split("=")[1] for o in job if o.startswith("lr_scale=")))) for job in selection["extended"]]
    assert sorted(listed) == sorted(expected)


@pytest.mark.slow
def test_the_budget_is_chosen_on_validation_too(tiny_study):
    records, selection, _ = tiny_study
    assert len(selection["budget_probes"]) == 2
    for model in ("rnn", "gru"):
        promoted = _by(records, stage="promoted", model=model)
        probes = [r for r in promoted if r["hparams"]["max_epochs"] == 2]
        before = max((r for r in promoted if r["hparams"]["max_epochs"] == 1), key=_val)
        (probe,) = probes  # the best promoted setting once more, at the longer budget, same seed
        assert (probe["hparams"]["lr"], probe["seed"]) == (before["hparams"]["lr"], before["seed"])
        assert len(probe["history"]) == 2 * len(before["history"])  # twice the epochs, validated each
        assert probe["config_key"] != before["config_key"]
        # the seeds go to whichever budget validated better (the first of equals: the shorter one)
        chosen = probe if _val(probe) > _val(before) else before
        (seed,) = _by(records, stage="seed", model=model)
        assert seed["hparams"]["max_epochs"] == chosen["hparams"]["max_epochs"]
        assert seed["hparams"]["lr"] == chosen["hparams"]["lr"]


@pytest.mark.slow
def test_the_best_promoted_setting_gets_the_seeds(tiny_study):
    records, selection, _ = tiny_study
    for model in ("rnn", "gru"):
        promoted = _by(records, stage="promoted", model=model)
        best = max(promoted, key=_val)  # the first of equals, as the sweeper picks
        seeds = _by(records, stage="seed", model=model)
        assert [r["seed"] for r in seeds] == [1]
        assert seeds[0]["hparams"]["lr"] == best["hparams"]["lr"]
        assert seeds[0]["splits"]["train"]["count"] == 128
        chosen = selection["groups"][model]["selected"]
        assert sorted(run["seed"] for run in chosen["runs"]) == ["1", "42"]


@pytest.mark.slow
def test_the_curves_train_the_selected_setting_at_each_size_on_the_same_val_and_test(tiny_study):
    records, selection, _ = tiny_study
    assert set(selection["curves"]) == {"plain", "gated"}
    for curve in selection["curves"].values():
        model = curve["group"]
        assert [run["size"] for run in curve["runs"]] == [32, 32, 128, 128]
        runs = [read_metrics(run["dir"]) for run in curve["runs"]]
        assert [r["splits"]["train"]["count"] for r in runs] == [32, 32, 128, 128]
        assert [r["stage"] for r in runs] == ["curve", "curve", "promoted", "seed"]  # the full point: no rerun
        assert len({json.dumps([r["splits"]["val"], r["splits"]["test"]]) for r in runs}) == 1
        assert len({r["hparams"]["lr"] for r in runs}) == 1  # not re-tuned per size
        # the subsets' own setting (curves.overrides) reaches their jobs, never the whole-split point
        assert [r["config"]["callbacks"]["min_steps"]["validations"] for r in runs] == [5, 5, None, None]
        assert runs[-1]["run_dir"] in {run["dir"] for run in selection["groups"][model]["selected"]["runs"]}
    # grid (and its edges), the top-k promotions, promoted edges and budget probes, seeds, subset curve points
    assert len(records) == (6 + len(selection["extended"]) + 4 + len(selection.get("promoted_extended", []))
                            + len(selection["budget_probes"]) + 2 + 4)


@pytest.mark.slow
def test_the_ood_step_evaluates_every_selected_run_once(tiny_study, cache_dir):
    records, selection, _ = tiny_study
    sweep = next(iter(selection["groups"].values()))["selected"]["runs"][0]["dir"]
    sweep = str(Path(sweep).parent)
    first = run_cli("imdb_lm.study.ood", sweep, "device=cpu", cwd=Path(sweep), cache=cache_dir)
    runs = [Path(run["dir"]) for group in selection["groups"].values() for run in group["selected"]["runs"]]
    for run in runs:
        result = json.loads((run / "evaluations" / "rotten_tomatoes.json").read_text())
        assert result["out_of_domain"] and result["fingerprint"]["count"] > 5000, first.stdout[-2000:]
    again = run_cli("imdb_lm.study.ood", sweep, cwd=Path(sweep), cache=cache_dir)
    assert again.stdout.count("already has rotten_tomatoes.json") == len(runs) == 4
    # before a move: every finished promoted and seed run, the selection's candidates, not only its choice
    finished = run_cli("imdb_lm.study.ood", sweep, "runs=finished", "device=cpu", cwd=Path(sweep), cache=cache_dir)
    candidates = [Path(r["run_dir"]) for r in records if r.get("stage") in ("promoted", "seed")
                  and r["status"] == "completed"]
    assert len(candidates) > len(runs) and finished.stdout.count("already has rotten_tomatoes.json") == len(runs)
    assert all((run / "evaluations" / "rotten_tomatoes.json").is_file() for run in candidates)


@pytest.mark.parametrize("override, message", [
    ("hydra.sweeper.curves.seeds=[]", "hydra.sweeper.curves.sizes is set: give curves.seeds"),
    ("hydra.sweeper.promote.top_k=-1", "hydra.sweeper.promote.top_k=-1 must be >= 0"),
])
def test_a_mistaken_stage_setting_stops_the_sweep_before_any_job(tmp_path, cache_dir, override, message):
    proc = run_cli("imdb_lm.train", "--multirun", "experiment=study", override, cwd=tmp_path, cache=cache_dir,
                   check=False)
    assert proc.returncode != 0 and message in proc.stderr
    assert not list(tmp_path.rglob("metrics.json"))


def test_the_ood_step_refuses_an_unknown_choice_of_runs(tmp_path, cache_dir):
    proc = run_cli("imdb_lm.study.ood", str(tmp_path), "runs=all", cwd=tmp_path, cache=cache_dir, check=False)
    assert proc.returncode != 0 and proc.stderr.strip() == "error: runs=all: choose selected or finished"
