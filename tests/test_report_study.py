"""The report over a constructed study (tests/study_records.py): the seed-level verdict, selection on
validation in every table, full-fidelity stability, out-of-domain accuracy and data efficiency."""

from __future__ import annotations

import json

import pytest

from imdb_lm.report import analyze, write_report
from imdb_lm.report.findings import all_findings
from tests.study_records import benched_figures, correct_at, write_bench, write_run, write_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = write_study(tmp_path_factory.mktemp("study") / "runs")
    analysis = analyze([root], resamples=1000, seed=0)
    out = tmp_path_factory.mktemp("study_report")
    paths = write_report(analysis, out)
    return analysis, paths["markdown"].read_text(), out


def _row(text: str, prefix: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(prefix))
    return [c.strip() for c in line.strip("|").split("|")]


def test_ablations_and_curve_points_are_never_the_rnn_or_the_transformer(study):
    analysis, text, _ = study
    assert sorted(analysis.leaderboard["model"]) == ["gru", "transformer"]  # bigru_large's 99% val is an ablation
    rnn, trf = analysis.best_family["recurrent"], analysis.best_family["transformer"]
    assert (rnn["optimizer"], rnn["batch_size"], rnn["train_reviews"], rnn["seeds"]) == ("adam", 64, 20000, 3)
    assert (trf["optimizer"], trf["lr_scale"], trf["seeds"]) == ("adamw", 1.0, 3)  # not the lr x3 ablation
    cells = _row(text, "| transformer | transformer | adamw |")
    assert cells[5:9] == ["20,000", "5", "3", "90.0"] and cells[9] == "85.0 ± 0.0"


def test_verdict_pairs_every_seed_and_says_reliably_only_when_the_interval_excludes_zero(study):
    analysis, text, _ = study
    diff = analysis.comparison["difference"]
    assert (diff.seeds_a, diff.seeds_b, diff.n) == (3, 3, 200)
    assert diff.diff == pytest.approx(0.10)
    assert 0 < diff.low < 0.10 < diff.high
    assert [(a, b) for a, b, _ in analysis.comparison["mcnemar"]] == [(1, 1), (2, 2), (42, 42)]
    assert all(m.only_a == 20 and m.only_b == 0 for _, _, m in analysis.comparison["mcnemar"])
    verdict = next(line for line in text.splitlines() if line.startswith("- Verdict: Accuracy"))
    assert "reliably" in verdict and "3 seeds of the transformer and 3 seeds of the RNN on 200 test reviews" in verdict
    assert "3 of 3 seed pairs favour the transformer, 0 the RNN" in text


def test_seeds_that_disagree_are_not_called_reliable(tmp_path):
    """One transformer seed beats the RNN, the other loses to it: no reliable difference."""
    for seed, trf in ((1, 0.85), (2, 0.65)):
        write_run(tmp_path, f"trf-{seed}", model="transformer", family="transformer", optimizer="adamw",
                  batch_size=16, seed=seed, val_acc=0.8, correct=correct_at(trf))
        write_run(tmp_path, f"gru-{seed}", model="gru", family="recurrent", seed=seed, val_acc=0.7,
                  correct=correct_at(0.75))
    analysis = analyze([tmp_path], resamples=2000, seed=0)
    tests = {a: m for a, _, m in analysis.comparison["mcnemar"]}
    assert tests[1].p_value < 0.05 and tests[1].only_a > tests[1].only_b  # seed 1 favours the transformer
    assert tests[2].p_value < 0.05 and tests[2].only_b > tests[2].only_a  # seed 2 favours the RNN
    diff = analysis.comparison["difference"]
    assert diff.low < 0 < diff.high and not diff.reliable
    text = write_report(analysis, tmp_path / "report")["markdown"].read_text()
    verdict = next(line for line in text.splitlines() if line.startswith("- Verdict: The accuracy difference"))
    assert ("is not settled: neither a difference nor equivalence (2 seeds of the transformer and 2 seeds of the RNN"
            in verdict)
    findings = text.split("## Findings", 1)[1].split("\n## ", 1)[0]
    assert "reliabl" not in findings
    assert _row(text, "| transformer | gru | 2 | 2 |")[-1] == "not settled"
    assert "1 of 2 seed pairs favour the transformer, 1 the RNN" in text


def test_tables_by_batch_size_and_optimizer_show_the_validation_selected_setting(study):
    analysis, text, _ = study
    at16 = analysis.batch_size[(analysis.batch_size["model"] == "gru") & (analysis.batch_size["batch_size"] == 16)]
    assert at16["optimizer"].tolist() == ["adam"] and at16["test_acc"].tolist() == [pytest.approx(0.70)]  # not sgd's 78
    assert _row(text, "| gru | 16 | adam, lr 0.002, batch 16 |")[3:5] == ["80.0", "70.0"]
    assert _row(text, "| gru | sgd | sgd, lr 0.1, batch 16 |")[3:5] == ["70.0", "78.0"]  # sgd's best val: batch 16
    assert "Fidelity: 1,000 train reviews, 2 epochs. Per batch size" in text
    assert "78.0" not in _row(text, "| gru | 16 |")
    assert [line for line in text.splitlines() if line.startswith("### ") and "test accuracy %" in line] == [
        "### gru: test accuracy %"]  # the transformer has no grid runs: no sensitivity table


def test_failure_rates_come_from_full_fidelity_seeds_only(study):
    analysis, text, _ = study
    recurrent = analysis.stability_family.set_index("family").loc["recurrent"]
    assert (recurrent["runs"], recurrent["failed"]) == (3, 0)  # the grid's failed sgd/64 run does not count
    assert "At full fidelity (20,000 train reviews, 5 epochs): 0% of recurrent runs (0/3)" in text


def test_out_of_domain_column_and_sentence(study):
    _, text, _ = study
    assert "ood acc %" in text
    assert _row(text, "| gru | recurrent | adam |")[12] == "65.0 ± 0.0 (3)"
    assert ("On 100 out-of-domain reviews (rotten_tomatoes), the selected transformer (transformer) scores 80.0% "
            "over 3 seeds, 5.0 points below its IMDB test accuracy; the selected RNN (gru) scores 65.0% over 3 "
            "seeds, 10.0 points below") in text


def test_out_of_domain_is_paired_per_review_across_families(study):
    """Every seed of each selected setting on the same out-of-domain rows, as the test verdict pairs them."""
    analysis, text, _ = study
    diff = analysis.ood_comparison["difference"]
    assert (diff.seeds_a, diff.seeds_b, diff.n) == (3, 3, 100)
    assert diff.diff == pytest.approx(0.80 - 0.65) and 0 < diff.low < 0.15 < diff.high
    assert ("Paired on the same 100 out-of-domain reviews (3 seeds of the transformer, 3 seeds of the RNN), "
            "transformer minus RNN is +15.0 points") in text
    assert "the transformer is reliably more accurate out of domain." in text


def test_out_of_domain_results_on_different_rows_are_not_paired(tmp_path):
    for seed in (1, 2):
        write_run(tmp_path, f"trf-{seed}", model="transformer", family="transformer", optimizer="adamw",
                  batch_size=16, seed=seed, val_acc=0.8, correct=correct_at(0.85), ood_acc=0.8)
        write_run(tmp_path, f"gru-{seed}", model="gru", family="recurrent", seed=seed, val_acc=0.7,
                  correct=correct_at(0.75), ood_acc=0.7)
    for predictions in tmp_path.glob("gru-*/evaluations/rotten_tomatoes.predictions.csv"):
        predictions.write_text(predictions.read_text().replace("rt0", "xx0"))  # other rows than the transformer's
    analysis = analyze([tmp_path], resamples=500, seed=0)
    assert analysis.comparison is not None and analysis.ood_comparison is None
    assert any("not paired per review" in s for s in all_findings(analysis)["Out of domain"])


def test_data_efficiency_table_figure_and_sentence(study):
    analysis, text, out = study
    table = analysis.efficiency
    assert table.groupby("family")["train_reviews"].apply(list).to_dict() == {
        "recurrent": [500, 2000, 20000], "transformer": [500, 2000, 20000]}
    row = table[(table["family"] == "recurrent") & (table["train_reviews"] == 500)].iloc[0]
    assert row["seeds"] == 3 and row["test_acc"] == pytest.approx(0.71)
    # t interval over seeds 0.70, 0.71, 0.72: mean +- t(0.975, 2) * 0.01 / sqrt(3)
    assert row["high"] - row["test_acc"] == pytest.approx(4.302653 * 0.01 / 3 ** 0.5, rel=1e-4)
    assert (out / "figures" / "efficiency.png").stat().st_size > 5000
    assert ("The curves cross between 500 and 2,000 training reviews: the RNN leads at 500 (-10.0 points, "
            "transformer minus RNN) and the gap is +8.0 at 2,000; at 20,000 it is +10.0 (3 seeds per point).") in text


def test_every_table_and_figure_states_its_fidelity(study):
    _, text, _ = study
    for heading in ("## Leaderboard", "## Seed-level comparison", "## Sensitivity to optimizer",
                    "## Sensitivity to batch size", "## Accuracy against training time", "## Learning curves",
                    "## Stability"):
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        assert "Fidelity: " in section, heading
    assert "train reviews" in text.split("## Data efficiency", 1)[1].split("\n## ", 1)[0]


def test_without_stages_the_curve_is_the_selected_setting_at_each_train_limit(tmp_path):
    """Plain sweeps record no stage: the curve is the selected setting's runs that differ only in
    data.train_limit; the leaderboard and stability read each model's largest training set."""
    for seed in (1, 2):
        for size, rnn, trf in ((500, 0.70, 0.60), (2000, 0.74, 0.80), (20000, 0.78, 0.88)):
            write_run(tmp_path, f"gru-{size}-{seed}", model="gru", family="recurrent", seed=seed, train_reviews=size,
                      val_acc=rnn, correct=correct_at(rnn, seed), fit_seconds=size / 100)
            write_run(tmp_path, f"trf-{size}-{seed}", model="transformer", family="transformer", optimizer="adamw",
                      batch_size=16, seed=seed, train_reviews=size, val_acc=trf, correct=correct_at(trf, seed),
                      fit_seconds=size / 10)
    analysis = analyze([tmp_path], resamples=500)
    assert set(analysis.leaderboard["train_reviews"]) == {20000}
    assert analysis.comparison["difference"].diff == pytest.approx(0.10)
    table = analysis.efficiency
    assert table[table["family"] == "transformer"]["test_acc"].tolist() == pytest.approx([0.60, 0.80, 0.88])
    assert table["seeds"].tolist() == [2] * 6
    stability = analysis.stability_family.set_index("family")
    assert stability.loc["recurrent", "runs"] == 2  # the 20,000-review runs only
    text = write_report(analysis, tmp_path / "report")["markdown"].read_text()
    assert ("The curves cross between 500 and 2,000 training reviews: the RNN leads at 500 (-10.0 points, "
            "transformer minus RNN) and the gap is +6.0 at 2,000; at 20,000 it is +10.0 (2 seeds per point).") in text


def test_rank_agreement_of_grid_and_full_fidelity_on_the_promoted_settings(tmp_path):
    # (model, optimizer, batch) -> (grid val, full-fidelity val); gru's grid best (adam/64) loses at full
    # fidelity to sgd/16, lstm's (adam/64) stays best
    known = {("gru", "adam", 16): (0.80, 0.85), ("gru", "adam", 64): (0.82, 0.86), ("gru", "sgd", 16): (0.70, 0.87),
             ("lstm", "adam", 16): (0.60, 0.70), ("lstm", "adam", 64): (0.65, 0.75),
             ("lstm", "rmsprop", 16): (0.62, 0.72)}
    for (model, opt, batch), (grid_val, full_val) in known.items():
        common = dict(model=model, family="recurrent", optimizer=opt, batch_size=batch, correct=correct_at(0.7))
        write_run(tmp_path, f"grid-{model}-{opt}-{batch}", val_acc=grid_val, stage="grid", train_reviews=1000,
                  max_epochs=10, **common)
        write_run(tmp_path, f"full-{model}-{opt}-{batch}", val_acc=full_val, stage="promoted", **common)
    write_run(tmp_path, "grid-gru-rmsprop-64", model="gru", family="recurrent", optimizer="rmsprop", val_acc=0.5,
              stage="grid", train_reviews=1000, correct=correct_at(0.5))  # not promoted: not paired
    analysis = analyze([tmp_path], resamples=200)
    agreement = analysis.rank_agreement
    # ranks grid 5,6,4,1,3,2 vs full 4,5,6,1,3,2: sum of squared rank differences 6
    assert agreement["rho"] == pytest.approx(1 - 6 * 6 / (6 * 35))
    assert (agreement["settings"], agreement["models"], agreement["top_agrees"]) == (6, 2, 1)
    assert agreement["per_model"] == {"gru": False, "lstm": True}
    text = write_report(analysis, tmp_path / "report")["markdown"].read_text()
    assert "### Does the low fidelity rank settings usefully?" in text
    assert "Spearman's rho over the 6 settings: +0.83" in text
    assert ("over the 6 promoted settings, Spearman's rho between grid and full-fidelity validation accuracy is "
            "+0.83") in text and "for 1 of 2 models" in text


def test_family_speed_ratios_come_from_the_bench_where_one_measured_both(tmp_path):
    root = write_study(tmp_path / "runs")
    write_bench(root, {"gru": benched_figures(50.0, 2.0), "transformer": benched_figures(400.0, 15.0)})
    text = write_report(analyze([root], resamples=300), tmp_path / "report")["markdown"].read_text()
    assert "From the runs' own records (median over seeds), made on cpu: constructed: the transformer" in text
    assert ("the transformer (transformer) takes 8.0x the training time per token and 7.5x the single-review "
            "latency of gru.") in text
    verdict = next(line for line in text.splitlines() if line.startswith("- Verdict: Accuracy"))
    assert "Inference time is the price: 7.5x per review. Where 15 ms per review fits" in verdict


def test_a_new_seed_gets_a_prediction_interval_and_the_command_that_trains_it(tmp_path):
    """Three full-fidelity seeds at 70/72/74%: one more seed should land in mean +- t(0.975, 2) * sd *
    sqrt(1 + 1/3); the command trains seed 3 (42, 1, 2 are taken) of that setting, and it composes."""
    from imdb_lm.config.compose import compose_train

    for seed, acc, stage in ((42, 0.70, "promoted"), (1, 0.72, "seed"), (2, 0.74, "seed")):
        write_run(tmp_path, f"gru-{seed}", model="gru", family="recurrent", seed=seed, val_acc=0.8,
                  correct=correct_at(acc), stage=stage, lr_scale=0.3)
    analysis = analyze([tmp_path], resamples=200, seed=0)
    row = analysis.seed_variance.iloc[0]
    half = 4.302653 * 0.02 * (1 + 1 / 3) ** 0.5
    assert (row["predict_low"], row["predict_high"]) == (pytest.approx(0.72 - half, abs=1e-4),
                                                         pytest.approx(0.72 + half, abs=1e-4))
    assert row["rerun"] == ("python -m imdb_lm.train experiment=study model=gru optimizer=adam lr_scale=0.3 "
                            "data.batch_size=64 data.train_limit=null data.val_limit=null seed=3")
    config = compose_train(row["rerun"].split()[3:])
    assert (config.seed, config.lr_scale, config.data.train_limit, config.trainer.precision) == (3, 0.3, None, "32-true")
    text = write_report(analysis, tmp_path / "report")["markdown"].read_text()
    assert "### Rerunning a seed" in text
    assert f"{row['rerun']}   # gru: expect {(0.72 - half) * 100:.1f} to {(0.72 + half) * 100:.1f}% test accuracy" in text
    # a setting outside the study's stages (a plain sweep) gets the interval but no study command
    other = tmp_path / "plain"
    for seed, acc in ((1, 0.70), (2, 0.74)):
        write_run(other, f"gru-{seed}", model="gru", family="recurrent", seed=seed, val_acc=0.8, correct=correct_at(acc))
    plain = analyze([other], resamples=200, seed=0).seed_variance.iloc[0]
    assert plain["rerun"] is None and plain["predict_high"] > 0.74


def test_a_study_still_in_its_grid_does_not_call_the_grid_full_fidelity(tmp_path):
    for optimizer, acc in (("adam", 0.70), ("sgd", 0.60)):
        write_run(tmp_path, f"grid-gru-{optimizer}", model="gru", family="recurrent", optimizer=optimizer,
                  val_acc=acc, correct=correct_at(acc), stage="grid", train_reviews=1000)
    analysis = analyze([tmp_path], resamples=200, seed=0)
    assert analysis.fidelity["full"] == ("1,000 train reviews, 5 epochs (the grid's: no setting has been "
                                         "promoted to full fidelity yet)")
    write_run(tmp_path, "seed-gru-adam", model="gru", family="recurrent", val_acc=0.8, correct=correct_at(0.8),
              stage="promoted")
    assert analyze([tmp_path], resamples=200, seed=0).fidelity["full"] == "20,000 train reviews, 5 epochs"


def test_fidelity_and_leaderboard_count_the_epochs_min_steps_gave(tmp_path):
    """callbacks.min_steps raises max_epochs on small subsets (1 -> 10 at 1,000 reviews, batch 64);
    records keep the config's 1 and one timing per epoch run. An early-stopped run is no fidelity."""
    for seed, acc in ((1, 0.80), (2, 0.82)):
        write_run(tmp_path, f"grid-trf-{seed}", model="transformer", family="transformer", seed=seed, val_acc=acc,
                  correct=correct_at(acc), stage="grid", train_reviews=1000, max_epochs=1, epochs_run=10)
    write_run(tmp_path, "grid-trf-diverged", model="transformer", family="transformer", optimizer="sgd",
              val_acc=0.5, status="diverged", stage="grid", train_reviews=1000, max_epochs=1, epochs_run=2)
    analysis = analyze([tmp_path], resamples=200, seed=0)
    assert analysis.fidelity["full"].startswith("1,000 train reviews, 10 epochs")
    write_report(analysis, tmp_path / "report")
    row = next(line for line in (tmp_path / "report" / "report.md").read_text().splitlines()
               if line.startswith("| transformer | transformer |"))
    assert "| 1,000 | 10 | 2 |" in row  # train reviews, epochs given, seeds
    # failure rates from the grid, while nothing is promoted, are not called full fidelity
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Stability: At the grid's fidelity (1,000 train reviews, 10 epochs" in text
    assert "(the grid's runs until a setting is promoted; then full-fidelity runs only" in text


def test_runs_from_several_machines_are_named_with_their_counts(tmp_path):
    for seed, device in ((1, "cpu: machine A"), (2, "cpu: machine A"), (3, "cpu: machine B")):
        run = write_run(tmp_path, f"gru-{seed}", model="gru", family="recurrent", seed=seed, val_acc=0.7,
                        correct=correct_at(0.7))
        record = json.loads((run / "metrics.json").read_text())
        record["env"]["device"] = device
        (run / "metrics.json").write_text(json.dumps(record))
    write_run(tmp_path, "trf", model="transformer", family="transformer", val_acc=0.8, correct=correct_at(0.8))
    analysis = analyze([tmp_path], resamples=200, seed=0)
    assert analysis.device == "3 machines: cpu: machine A (2 runs); cpu: constructed (1 run); cpu: machine B (1 run)"
    assert any(s.startswith("From the runs' own records (median over seeds), made on 3 machines")
               for s in all_findings(analysis)["Comparison"])


def test_the_cost_is_the_runs_wall_time_per_machine_kind_and_stage(tmp_path):
    avx2 = {"device": "cpu: box x2 threads", "cpu_capability": "AVX2", "bf16_native": False, "git_revision": "a" * 40}
    bf16 = {"device": "cpu: box x2 threads", "cpu_capability": "AVX512", "bf16_native": True, "git_revision": "b" * 40}
    for i, (stage, env, seconds) in enumerate([("grid", avx2, 600), ("grid", avx2, 1800), ("grid", bf16, 120),
                                               ("promoted", bf16, 900), ("seed", bf16, 300)]):
        write_run(tmp_path, f"gru-{i}", model="gru", family="recurrent", seed=i, val_acc=0.7, correct=correct_at(0.7),
                  stage=stage, train_reviews=1000 if stage == "grid" else 20000, wall_seconds=seconds, env=env)
    write_run(tmp_path, "untimed", model="gru", family="recurrent", seed=9, val_acc=0.7, correct=correct_at(0.7),
              stage="seed")
    write_report(analyze([tmp_path], resamples=200, seed=0), tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert ("The 5 timed runs took 1.03 h of wall time in all, one after another: 0.67 h on cpu: box x2 threads "
            "(AVX2, no native bf16) (2 runs); 0.37 h on cpu: box x2 threads (AVX512, native bf16) (3 runs). "
            "1 run carries no start time and is not counted.") in text
    assert _row(text, "| cpu: box x2 threads (AVX2, no native bf16) | grid |") == [
        "cpu: box x2 threads (AVX2, no native bf16)", "grid", "2", "0.67", "20.0", "30.0", "aaaaaaa"]
    stages = [_row(text, f"| cpu: box x2 threads (AVX512, native bf16) | {s} |")[1:4] for s in ("grid", "promoted", "seed")]
    assert stages == [["grid", "1", "0.03"], ["promoted", "1", "0.25"], ["seed", "1", "0.08"]]


def test_how_the_study_was_run_states_the_shared_policy_and_names_what_differs(tmp_path):
    policy = {"precision": "32-true", "gradient_clip_val": 1.0}
    write_run(tmp_path, "grid-gru", model="gru", family="recurrent", val_acc=0.7, correct=correct_at(0.7),
              stage="grid", train_reviews=1000, hparams=policy)
    write_run(tmp_path, "seed-gru", model="gru", family="recurrent", val_acc=0.8, correct=correct_at(0.8),
              stage="seed", hparams=policy)
    write_run(tmp_path, "seed-trf", model="transformer", family="transformer", val_acc=0.9, correct=correct_at(0.9),
              stage="seed", hparams={**policy, "max_length": 256})
    write_report(analyze([tmp_path], resamples=200, seed=0), tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert ("Training policy of the study's stages (grid, seed), read from the records: learning-rate schedule "
            "linear; precision 32-true; gradient norm clipped to 1; at most 5 epochs (trainer.max_epochs). Differing "
            "between families: recurrent: 128 tokens per review, transformer: 256 tokens per review.") in text
    assert ("- grid (1 run; 1,000 train reviews, 5 epochs; validated on 2,500 val reviews): every model x "
            "optimizer") in text
    assert "- seed (2 runs; 20,000 train reviews, 5 epochs; validated on 2,500 val reviews): more seeds" in text
    assert "promoted (" not in text  # no such stage ran


def test_failed_grid_cells_and_optimizers_that_agree_are_named(tmp_path):
    for optimizer, decay in (("adam", 0.0), ("adamw", 0.01)):
        for scale, acc in ((0.3, 0.60), (1.0, 0.70), (3.0, 0.65)):
            run = write_run(tmp_path, f"gru-{optimizer}-{scale}", model="gru", family="recurrent", optimizer=optimizer,
                            lr_scale=scale, val_acc=acc, correct=correct_at(acc), stage="grid", train_reviews=1000,
                            hparams={"weight_decay": decay})
            record = json.loads((run / "metrics.json").read_text())
            record["metrics"]["test"]["loss"] = 0.5 + decay  # distinct runs
            (run / "metrics.json").write_text(json.dumps(record))
    write_run(tmp_path, "gru-sgd-0.3", model="gru", family="recurrent", optimizer="sgd", lr_scale=0.3, val_acc=0.55,
              correct=correct_at(0.55), stage="grid", train_reviews=1000)
    write_run(tmp_path, "gru-sgd-1", model="gru", family="recurrent", optimizer="sgd", lr_scale=1.0, val_acc=0.5,
              status="diverged", stage="grid", train_reviews=1000)
    write_report(analyze([tmp_path], resamples=200, seed=0), tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| sgd | 55.0 | failed |  |" in text  # ran and failed vs never ran (x3)
    assert ("For gru, adam and adamw give the same test accuracy within 0.1 points (a few of the test reviews) in "
            "all 3 learning-rate cells (distinct runs: their test losses differ); weight decay 0 vs 0.01") in text
    assert "adam and sgd give" not in text and "adamw and sgd give" not in text


def test_timings_of_the_compared_runs_name_only_their_own_machine(tmp_path):
    """A study resumed on other machines: the grid ran elsewhere, both compared settings here."""
    here = {"device": "cpu: here x2 threads", "cpu_capability": "AVX512", "bf16_native": True}
    write_run(tmp_path, "grid-gru", model="gru", family="recurrent", val_acc=0.7, correct=correct_at(0.7),
              stage="grid", train_reviews=1000, env={"device": "cpu: elsewhere x2 threads"})
    write_run(tmp_path, "gru", model="gru", family="recurrent", val_acc=0.8, correct=correct_at(0.8),
              stage="seed", env=here)
    write_run(tmp_path, "trf", model="transformer", family="transformer", val_acc=0.9, correct=correct_at(0.9),
              stage="seed", env=here)
    comparison = all_findings(analyze([tmp_path], resamples=200, seed=0))["Comparison"]
    assert comparison[0].startswith("On the same 200 test reviews (distinct by review hash), the transformer")
    assert comparison[1].startswith("From the runs' own records (median over seeds), made on cpu: here x2 threads "
                                    "(AVX512, native bf16): the transformer is")


def test_the_family_is_represented_by_its_best_mean_over_seeds_not_its_grid_seed(tmp_path):
    """bilstm's grid seed has the family's best val, but bigru's three seeds average higher: the RNN
    of the verdict is bigru, the setting the sweeper chose for the curves by the same rule."""
    for seed, (bilstm_val, bigru_val) in {42: (0.90, 0.88), 1: (0.84, 0.88), 2: (0.84, 0.88)}.items():
        stage = "promoted" if seed == 42 else "seed"
        write_run(tmp_path, f"bilstm-{seed}", model="bilstm", family="recurrent", seed=seed,
                  val_acc=bilstm_val, correct=correct_at(0.80), stage=stage)
        write_run(tmp_path, f"bigru-{seed}", model="bigru", family="recurrent", seed=seed,
                  val_acc=bigru_val, correct=correct_at(0.82), stage=stage)
        write_run(tmp_path, f"trf-{seed}", model="transformer", family="transformer", optimizer="adamw",
                  seed=seed, val_acc=0.9, correct=correct_at(0.9), stage=stage)
    for model in ("bilstm", "bigru"):  # a promoted rival run once: each model is selected on seed 42 alone
        write_run(tmp_path, f"{model}-rival", model=model, family="recurrent", lr_scale=3.0, val_acc=0.80,
                  correct=correct_at(0.75), stage="promoted")
    analysis = analyze([tmp_path], resamples=200, seed=0)
    board = analysis.leaderboard.set_index("model")
    assert board.loc["bilstm", "selection_val"] == pytest.approx(0.90)  # seed 42 alone: bilstm looks best
    assert board.loc["bigru", "selection_val"] == pytest.approx(0.88)
    assert analysis.best_family["recurrent"]["model"] == "bigru"
    assert analysis.best_family["recurrent"]["family_val"] == pytest.approx(0.88)
    assert analysis.comparison["difference"].diff == pytest.approx(0.08)
