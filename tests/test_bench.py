"""`python -m imdb_lm.bench` end to end on a tiny slice of the real bundled data, both families."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch
from scipy import stats

from imdb_lm.bench.harness import correct_over
from imdb_lm.report.statistics import equivalence_tost
from tests.helpers import mcnemar_reference, run_cli

TINY_BENCH = ["--set", "data.train_limit=300", "--set", "data.val_limit=50", "--set", "data.test_limit=100",
              "--max-length", "32", "--train-limit", "32", "--warmup", "1", "--repeats", "2",
              "--infer-limit", "32", "--latency-samples", "3", "--tokenization-reviews", "100", "--threads", "1",
              "--startup", "0"]
BASELINE = {"bigru": "rnn_tutorial", "transformer": "hf_trainer"}
TUNED = {"bigru": "rnn_tutorial_tuned", "transformer": "hf_trainer_tuned"}
TRAIN_ONLY = {"plain_loop", "rnn_tutorial_tuned", "hf_trainer_tuned", "lightning_attention_dropout"}
SIDE_FIGURES = ("samples_per_s", "tokens_per_s", "padded_tokens_per_s", "peak_memory_mb", "seconds")


def test_bench_writes_a_complete_record(tmp_path, cache_dir):
    out = tmp_path / "bench.json"
    # every side, the tuned baselines and the attention-dropout side included, in this one invocation
    proc = run_cli("imdb_lm.bench", "--models", "bigru,transformer", *TINY_BENCH, "--baselines", "all",
                   "--output", str(out), cwd=tmp_path, cache=cache_dir)
    record = json.loads(out.read_text())
    assert "train_samples_per_s_vs_baseline" in proc.stdout and "record:" in proc.stdout
    for name in ("rnn_tutorial_tuned", "hf_trainer_tuned", "lightning_attention_dropout",
                 "train_samples_per_s_vs_tuned_baseline", "tuned_baseline_vs_baseline", "attention_dropout_0_gain",
                 "lightning_attention_dropout_vs_baseline"):
        assert name in proc.stdout
    assert record["env"]["versions"]["torch"] and record["env"]["device"] and record["env"]["cpu_capability"]
    assert record["env"]["bf16_native"] in (True, False)
    assert set(record["models"]) == {"bigru", "transformer"}
    expected_sides = {"bigru": {"lightning", "lightning_compiled", "plain_loop", "rnn_tutorial", "rnn_tutorial_tuned"},
                      "transformer": {"lightning", "lightning_compiled", "plain_loop", "hf_trainer", "hf_trainer_tuned",
                                      "lightning_attention_dropout"}}
    for model, result in record["models"].items():
        assert set(result["sides"]) == expected_sides[model]
        assert result["config"]["max_length"] == 32 and result["config"]["train_slice"] == 32
        compiled = result["sides"].pop("lightning_compiled")  # inference only
        assert compiled["train"] is None and compiled["inference"]["first_pass_seconds"] > 0
        assert compiled["inference"]["samples_per_s"] > 0 and compiled["inference"]["samples"] == 32
        assert 0 < compiled["inference"]["latency_ms_p50"] <= compiled["inference"]["latency_ms_p95"]
        for name, side in result["sides"].items():
            train = side["train"]
            assert train["repeats"] == 2 and len(train["samples_per_s_all"]) == 2
            assert all(train[k] > 0 for k in SIDE_FIGURES), (model, name, train)
            assert train["tokens_per_s"] <= train["padded_tokens_per_s"]
            if name in TRAIN_ONLY:
                assert side["inference"] is None
            else:
                infer = side["inference"]
                assert infer["samples_per_s"] > 0 and infer["samples"] == 32
                assert 0 < infer["latency_ms_p50"] <= infer["latency_ms_p95"] and infer["latency_reviews"] == 3
        ratios, sides = result["ratios"], result["sides"]
        ours, base = sides["lightning"], sides[BASELINE[model]]
        # every figure is the median of the repeats, and every ratio is made of those medians
        for side in sides.values():
            assert side["train"]["samples_per_s"] == pytest.approx(statistics.median(side["train"]["samples_per_s_all"]))
        assert ratios["train_samples_per_s_vs_baseline"] == pytest.approx(
            ours["train"]["samples_per_s"] / base["train"]["samples_per_s"])
        assert ratios["inference_samples_per_s_vs_baseline"] == pytest.approx(
            ours["inference"]["samples_per_s"] / base["inference"]["samples_per_s"])
        assert ratios["compiled_inference_samples_per_s_vs_baseline"] == pytest.approx(
            compiled["inference"]["samples_per_s"] / base["inference"]["samples_per_s"])
        assert ratios["lightning_vs_plain_loop"] == pytest.approx(
            ours["train"]["samples_per_s"] / sides["plain_loop"]["train"]["samples_per_s"])
        # the tuned baseline: only the numeric settings of ours (bf16 where ours has it and it is native)
        tuned = sides[TUNED[model]]
        bf16 = record["env"]["bf16_native"] and "bf16" in result["config"]["precision"]
        assert tuned["precision"] == ("bf16-mixed" if bf16 else "32-true")
        assert base["precision"] == "32-true" and ours["precision"] == result["config"]["precision"]
        assert ratios["train_samples_per_s_vs_tuned_baseline"] == pytest.approx(
            ours["train"]["samples_per_s"] / tuned["train"]["samples_per_s"])
        assert ratios["tuned_baseline_vs_baseline"] == pytest.approx(
            tuned["train"]["samples_per_s"] / base["train"]["samples_per_s"])
        # ours against the tuned and the plain baseline, and the tuned against the plain: one product
        assert ratios["train_samples_per_s_vs_baseline"] == pytest.approx(
            ratios["train_samples_per_s_vs_tuned_baseline"] * ratios["tuned_baseline_vs_baseline"])
        if model == "transformer":
            dropout = sides["lightning_attention_dropout"]
            assert dropout["precision"] == ours["precision"] and dropout["flush_denormals"] is True
            assert ratios["attention_dropout_0_gain"] == pytest.approx(
                ours["train"]["samples_per_s"] / dropout["train"]["samples_per_s"])
            assert ratios["lightning_attention_dropout_vs_baseline"] == pytest.approx(
                dropout["train"]["samples_per_s"] / base["train"]["samples_per_s"])
            assert "group_by_length" in tuned["description"] and "attention dropout 0 " in tuned["description"]
            assert tuned["flush_denormals"] is False  # the Trainer does not flush them
        else:
            assert "attention_dropout_0_gain" not in ratios  # no attention in a GRU
            assert tuned["flush_denormals"] is True and "fused Adam" in tuned["description"]
        if model == "transformer":  # the inference target counts this project's faster inference path
            assert ratios["targets"]["inference_vs_baseline"]["measured"] == max(
                ratios["inference_samples_per_s_vs_baseline"], ratios["compiled_inference_samples_per_s_vs_baseline"])
        for name, t in ratios["targets"].items():
            assert t["met"] == (t["measured"] is not None and t["measured"] >= t["target"]), name
    # the tutorial pads every review to max_length; this project's buckets never pad more
    rnn = record["models"]["bigru"]["sides"]
    assert rnn["lightning"]["train"]["padding_fraction"] <= rnn["rnn_tutorial"]["train"]["padding_fraction"]
    # transformers report achieved FLOP/s, counted by torch's FlopCounterMode
    for side in record["models"]["transformer"]["sides"].values():
        assert side["train"]["flops_per_s"] > 1e6
    tok = record["tokenization"]
    assert tok["throughput"]["word_reviews_per_s"] > 0 and tok["throughput"]["pretrained_reviews_per_s"] > 0
    assert tok["cache"]["first_cache_hit"] is False and tok["cache"]["second_cache_hit"] is True


def test_across_models_interleaves_the_models_on_one_budget(tmp_path, cache_dir):
    out = tmp_path / "speed.json"
    proc = run_cli("imdb_lm.bench", "across_models=true", "models=bigru,bow,transformer", *TINY_BENCH,
                   "batch_size=16", "precision=32-true", "tokenization_reviews=0", "output=" + str(out),
                   cwd=tmp_path, cache=cache_dir)
    record = json.loads(out.read_text())
    across = record["across_models"]
    assert list(across) == ["bigru", "bow", "transformer"] and record["models"] == {}
    assert {json.dumps(m["config"], sort_keys=True) for m in across.values()} == {json.dumps(
        {"max_length": 32, "batch_size": 16, "precision": "32-true", "train_slice": 32, "infer_sample": 32},
        sort_keys=True)}
    for model, m in across.items():
        assert m["train"]["repeats"] == 2 and m["train"]["tokens_per_s"] > 0
        assert m["train_seconds_per_million_tokens"] == pytest.approx(1e6 / m["train"]["tokens_per_s"])
        assert m["inference"]["samples"] == 32 and m["inference"]["latency_reviews"] == 3
        assert m["params"]["non_embedding"] < m["params"]["total"], model
    # interleaved: every repeat of one model sits between repeats of the others in the log
    order = [line.split()[3] for line in proc.stdout.splitlines() if "] train " in line and " repeat " in line]
    assert order == ["bigru", "bow", "transformer", "bow", "transformer", "bigru"]
    assert "models against each other (32-true, max_length 32, batch 16" in proc.stdout
    bad = run_cli("imdb_lm.bench", "across_models=true", "models=bigru", cwd=tmp_path, cache=cache_dir, check=False)
    assert bad.returncode == 2 and "give max_length, batch_size and precision" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_bench_bad_option_is_one_line_error(tmp_path, cache_dir):
    proc = run_cli("imdb_lm.bench", "--models", "nosuchmodel", "--tokenization-reviews", "0",
                   cwd=tmp_path, cache=cache_dir, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --model nosuchmodel")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs" / "bench").exists()


def test_accuracy_parity_over_seeds_and_paired_over_the_whole_test_split(tmp_path, cache_dir):
    out = tmp_path / "bench.json"
    proc = run_cli("imdb_lm.bench", "--models", "bigru", *TINY_BENCH, "--tokenization-reviews", "0",
                   "--baselines", "baseline", "--accuracy", "--accuracy-train-limit", "64",
                   "--accuracy-epochs", "1", "--accuracy-seeds", "2", "--output", str(out),
                   cwd=tmp_path, cache=cache_dir)
    acc = json.loads(out.read_text())["models"]["bigru"]["accuracy"]
    assert acc["train_reviews"] == 64 and acc["test_reviews"] == 100 and acc["seeds"] == [0, 1]
    ours, base = acc["lightning"], acc["rnn_tutorial"]
    for side in (ours, base):
        assert len(side["test_acc_per_seed"]) == 2 and all(0 <= a <= 1 for a in side["test_acc_per_seed"])
        assert side["test_acc"] == pytest.approx(sum(side["test_acc_per_seed"]) / 2)
    differences = [100 * (a - b) for a, b in zip(ours["test_acc_per_seed"], base["test_acc_per_seed"], strict=True)]
    assert acc["across_seeds"]["differences_points"] == pytest.approx(differences)
    assert acc["difference_points"] == pytest.approx(sum(differences) / 2)
    low, high = acc["across_seeds"]["ci95_points"]
    assert low <= acc["difference_points"] <= high
    first = acc["first_seed_test_sampling"]
    assert first["seed"] == 0 and first["difference_points"] == pytest.approx(differences[0])
    assert first["ci95_points"][0] <= first["difference_points"] <= first["ci95_points"][1]
    # 100 test reviews: each review one side alone gets right moves the difference by one point
    assert first["mcnemar"]["only_ours_correct"] - first["mcnemar"]["only_baseline_correct"] == round(differences[0])
    exact, tolerance = mcnemar_reference(first["mcnemar"]["only_ours_correct"], first["mcnemar"]["only_baseline_correct"])
    assert first["mcnemar"]["p_value"] == pytest.approx(exact, abs=tolerance)
    assert "95% CI over 2 seeds" in proc.stdout and "McNemar p=" in proc.stdout
    # the verdict over seeds is TOST's, with the margin of the option (0.5 points by default)
    eq, tost = acc["across_seeds"]["equivalence"], equivalence_tost(differences, 0.5)
    assert eq["margin_points"] == 0.5 and eq["seeds"] == 2
    assert eq["p_value"] == pytest.approx(tost.p_value) and eq["ci90_points"] == pytest.approx([tost.low, tost.high])
    expected = "equivalent within \u00b10.5 points" if tost.verdict == "equivalent" else tost.verdict
    assert acc["verdict"] == eq["verdict"] == expected
    assert f"accuracy parity over seeds: {expected} (TOST" in proc.stdout


def test_correct_over_puts_sorted_batches_back_in_data_order():
    labels = torch.tensor([0, 1, 1, 0, 1])
    predicted = torch.tensor([0, 0, 1, 1, 1])  # right, wrong, right, wrong, right

    def forward(batch):
        return torch.nn.functional.one_hot(predicted[batch["rows"]], 2).float()

    sorted_batches = [{"rows": torch.tensor([3, 1]), "index": torch.tensor([3, 1]), "labels": labels[[3, 1]]},
                      {"rows": torch.tensor([4, 0, 2]), "index": torch.tensor([4, 0, 2]), "labels": labels[[4, 0, 2]]}]
    in_order = [{"rows": torch.tensor([0, 1, 2]), "labels": labels[:3]},
                {"rows": torch.tensor([3, 4]), "labels": labels[3:]}]
    expected = [True, False, True, False, True]
    assert correct_over(forward, sorted_batches).tolist() == expected
    assert correct_over(forward, in_order).tolist() == expected


def test_tutorial_loop_trains_with_the_run_configs_schedule(cache_dir, monkeypatch):
    """Accuracy parity compares paths, not recipes: the tutorial loop follows conf/scheduler step by
    step, as this project's Lightning module does (here linear warmup, then decay to zero)."""
    from imdb_lm.bench.baselines.rnn_tutorial import RnnTutorialSide
    from imdb_lm.bench.workload import build_workload

    monkeypatch.setenv("IMDB_LM_CACHE", str(cache_dir))
    overrides = ["data.train_limit=300", "data.val_limit=50", "data.test_limit=100", "data.max_length=32",
                 "data.batch_size=16", "scheduler=linear_warmup", "scheduler.warmup_ratio=0.25"]
    work = build_workload("bigru", overrides, "cpu", 80, 16, 2, None)
    side = RnnTutorialSide(work)
    side.train_and_test(work.train_slice(), 2, seed=0)
    steps = 2 * 5  # 80 reviews in batches of 16, two epochs
    assert side.scheduler.last_epoch == steps
    assert side.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    # warmup int(0.25 x 10) = 2 steps up to the full rate, then linear decay to zero over the other 8
    expected = [1 / 3, 2 / 3] + [1 - k / 8 for k in range(8)]
    (factor,) = side.scheduler.lr_lambdas
    assert [factor(s) for s in range(steps)] == pytest.approx(expected)


def cauchy_cdf(t: float) -> float:
    """The t distribution with one degree of freedom (two seeds) is Cauchy: closed-form p-values."""
    return 0.5 + math.atan(t) / math.pi


@pytest.mark.parametrize(("differences", "p_value", "verdict"), [
    # mean 0.01, standard error 0.01: t = (0.01 - 0.5) / 0.01 = -49 and (0.01 + 0.5) / 0.01 = 51
    ([0.0, 0.02], max(cauchy_cdf(-49), 1 - cauchy_cdf(51)), "equivalent"),
    # mean 0.4, standard error 0.1: the upper test has t = -1, p = 0.25; the 90% interval straddles +0.5
    ([0.3, 0.5], 0.25, "inconclusive"),
    # mean 1.55, standard error 0.05: the 90% interval (1.55 -+ 6.314 x 0.05) lies above +0.5
    ([1.5, 1.6], cauchy_cdf((1.55 - 0.5) / 0.05), "not equivalent"),
    ([-1.6, -1.5], cauchy_cdf((1.55 - 0.5) / 0.05), "not equivalent"),
    # the published three-seed BiGRU parity (ours - tutorial per seed): mean -0.01, 95% t interval -1.83..+1.80
    ([0.64, 0.12, -0.80], None, "inconclusive"),
    # five seeds tightly around zero
    ([0.1, 0.0, -0.1, 0.05, -0.05], None, "equivalent"),
])
def test_tost_equivalence_over_seed_differences(differences, p_value, verdict):
    tost = equivalence_tost(differences, margin=0.5)
    assert tost.verdict == verdict
    if p_value is not None:
        assert tost.p_value == pytest.approx(p_value, rel=1e-6)
    # each one-sided test is scipy's one-sample t test against its side of the margin
    lower = stats.ttest_1samp(differences, -0.5, alternative="greater").pvalue
    upper = stats.ttest_1samp(differences, 0.5, alternative="less").pvalue
    assert (tost.p_lower, tost.p_upper) == pytest.approx((lower, upper), rel=1e-9)
    assert tost.p_value == pytest.approx(max(lower, upper), rel=1e-9)
    low, high = stats.t.interval(0.90, len(differences) - 1, loc=statistics.mean(differences),
                                 scale=stats.sem(differences))
    assert (tost.low, tost.high) == pytest.approx((low, high), rel=1e-9)
    # TOST at 5% agrees with the 90% t interval lying inside the margin
    assert (tost.verdict == "equivalent") == (tost.low > -0.5 and tost.high < 0.5)
    if tost.verdict == "not equivalent":
        assert tost.low > 0.5 or tost.high < -0.5


def test_tost_needs_two_seeds_and_handles_no_spread():
    one = equivalence_tost([0.1], margin=0.5)
    assert one.verdict == "inconclusive" and one.p_value is None
    assert equivalence_tost([0.2, 0.2, 0.2], margin=0.5).verdict == "equivalent"
    assert equivalence_tost([0.7, 0.7], margin=0.5).verdict == "not equivalent"


def test_bench_sides_option():
    from imdb_lm.bench.__main__ import parse_args, wanted_sides
    from imdb_lm.errors import UserError

    assert wanted_sides("standard") == {"baseline", "plain_loop"}
    assert wanted_sides("all") == {"baseline", "plain_loop", "tuned", "attention_dropout"}
    assert wanted_sides("baseline,tuned") == {"baseline", "tuned"}
    assert parse_args([]).baselines == "standard"  # the default run keeps its sides (and its length)
    with pytest.raises(UserError, match="unknown nosuch"):
        parse_args(["baselines=baseline,nosuch"])
