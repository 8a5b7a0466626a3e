"""`python -m imdb_lm.bench`: this project's training and inference speed against the usual ways.

For each model (a `conf/model` preset, composed exactly as `python -m imdb_lm.train` composes it) it
measures, after warm-up and as the median of interleaved repeats: training samples/s and tokens/s,
inference samples/s at a large batch, single-review latency p50/p95, peak memory, and for
transformers the achieved FLOP/s. The same figures are taken in the same process for
  - recurrent:   the tutorial loop (fixed padding, pack_padded_sequence, fp32)
  - transformer: the Hugging Face Trainer with default arguments (fp32), and an fp32 eager forward
  - both:        a plain PyTorch loop over this project's batches and model
and with `baselines=all` also, to compare like with like: the baseline with only its numeric settings
tuned as ours (`rnn_tutorial_tuned`: bf16 autocast where native, flushed denormals, fused Adam;
`hf_trainer_tuned`: bf16 where native, group_by_length, our attention dropout), and for transformers
this project's path with the checkpoint's attention dropout (`lightning_attention_dropout`).
This project's inference is measured eager (as `evaluate` and the test at the end of training run
it) and compiled with frozen weights (`python -m imdb_lm.predict ... compile=true`).
The ratios are printed and written, with device, versions and config, to a JSON record.

Examples (key=value like every imdb_lm tool; the --key value spelling works too):
  python -m imdb_lm.bench                                  # the standard comparison (both families)
  python -m imdb_lm.bench models=bigru repeats=5
  python -m imdb_lm.bench baselines=all                    # also the tuned baselines and the dropout side
  python -m imdb_lm.bench models=transformer max_length=512 precision=32-true
  python -m imdb_lm.bench accuracy=true accuracy_train_limit=4000 accuracy_epochs=1
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from scipy import stats

from imdb_lm.bench.harness import PeakMemory, median_record, time_inference, time_latency
from imdb_lm.bench.ours import CompiledInferenceSide, LightningSide, transformer_flops
from imdb_lm.bench.startup import measure_startup, print_startup
from imdb_lm.bench.tokenization import cache_check, tokenizer_throughput
from imdb_lm.bench.workload import Workload, build_workload
from imdb_lm.config.options import Option, parse
from imdb_lm.errors import UserError
from imdb_lm.memory import keep_freed_memory
from imdb_lm.report.statistics import EQUIVALENT, bootstrap_difference, equivalence_tost, mcnemar
from imdb_lm.runs.environment import env_record

# Family defaults: the training slice one repeat of every side passes over, and the inference sample.
DEFAULTS = {"recurrent": {"train_limit": 1280, "infer_limit": 512},
            "bag_of_ngrams": {"train_limit": 1280, "infer_limit": 512},
            "transformer": {"train_limit": 192, "infer_limit": 256}}
# The bag-of-n-grams floor has no usual-way baseline here: only its plain loop and its own figures.
TARGETS = {"recurrent": {"train_vs_baseline": 10.0}, "bag_of_ngrams": {}, "transformer": {"train_vs_baseline": 2.0,
                                                                        "inference_vs_baseline": 3.0}}
LIGHTNING_OVERHEAD_LIMIT = 0.05
# `baselines=` groups: the usual way (tutorial loop / HF Trainer with defaults), a plain loop over our
# batches, the usual way with only its numeric settings tuned (like with like), and (transformers) this
# project's path with the checkpoint's attention dropout (the dropout choice's share of the ratio).
SIDE_GROUPS = ("baseline", "plain_loop", "tuned", "attention_dropout")
STANDARD_SIDES = ("baseline", "plain_loop")
EQUIVALENCE_ALPHA = 0.05


OPTIONS = [
    Option("models", "bigru,transformer", "conf/model presets, comma-separated"),
    Option("max_length", None, "data.max_length (default: the model recipe's)", int),
    Option("batch_size", None, "training batch size (default: the recipe's)", int),
    Option("infer_batch_size", None, "inference batch (default: 2 x batch size)", int),
    Option("precision", None, "trainer.precision of this project's path (default: the recipe's)", str),
    Option("device", "auto", "auto | cpu | cuda"),
    Option("train_limit", None, "reviews in the training slice every side passes over per repeat", int),
    Option("warmup", 2, "untimed warm-up steps per side"),
    Option("repeats", 5, "interleaved repeats; medians are reported"),
    Option("infer_limit", None, "test reviews in the inference sample", int),
    Option("latency_samples", 20, "single reviews timed for latency"),
    Option("baselines", "standard", "sides besides this project's: standard (= baseline,plain_loop), all "
                                    "(= every side), or a subset of: " + ",".join(SIDE_GROUPS)),
    Option("compiled_inference", "on", "on | off: also time inference through torch.compile with frozen "
                                       "weights (predict compile=true); ~5-25 s to compile per model"),
    Option("across_models", False, "measure the models against each other instead of against baselines: every "
                                   "model's own path interleaved on the same reviews, at one max_length, "
                                   "batch_size and precision (give all three); the study's speed.json"),
    Option("accuracy", False, "also train this project's path and the baseline from scratch on the same "
                              "slice and compare test accuracy"),
    Option("accuracy_train_limit", 4000, "training reviews of the accuracy comparison"),
    Option("accuracy_epochs", 1, "epochs of the accuracy comparison"),
    Option("accuracy_seeds", 1, "train each side this many times (seeds seed, seed+1, ...)"),
    Option("accuracy_margin", 0.5, "equivalence margin in accuracy points (TOST over the seed differences)",
           float),
    Option("tokenization_reviews", 5000, "reviews for tokenizer throughput (0 skips it and the cache check)"),
    Option("set", [], "any train-config override, e.g. set=data.num_workers=2 (repeatable)", list, repeat=True),
    Option("threads", None, "torch CPU threads (default: torch's choice)", int),
    Option("seed", 0, "seed of the slices, initialisations and shuffles"),
    Option("startup", 3, "whole-process start-up timings (train --help, config/data/checkpoint errors, "
                         "predict one review) repeated this many times; 0 skips them"),
    Option("output", None, "JSON record path (default: outputs/bench/<time>.json)", str),
]


def parse_args(argv: list[str] | None = None):
    args = parse(sys.argv[1:] if argv is None else argv, OPTIONS, __doc__.split("\n\n")[0])
    if args.device not in ("auto", "cpu", "cuda"):
        raise UserError(f"device={args.device}: choose auto, cpu or cuda")
    if args.compiled_inference not in ("on", "off"):
        raise UserError(f"compiled_inference={args.compiled_inference}: choose on or off")
    for name in ("max_length", "batch_size", "infer_batch_size", "train_limit", "infer_limit", "threads"):
        value = args[name]
        if value is not None and value <= 0:
            raise UserError(f"{name}={value} must be a positive integer")
    if args.startup < 0:
        raise UserError(f"startup={args.startup} must be 0 (skip) or a positive number of repeats")
    for name in ("repeats", "latency_samples", "accuracy_train_limit", "accuracy_epochs", "accuracy_seeds"):
        if args[name] <= 0:
            raise UserError(f"{name}={args[name]} must be a positive integer")
    if args.warmup < 0 or args.tokenization_reviews < 0:
        raise UserError("warmup and tokenization_reviews must be >= 0")
    if not args.accuracy_margin > 0:
        raise UserError(f"accuracy_margin={args.accuracy_margin} must be > 0 (accuracy points)")
    wanted_sides(args.baselines)  # fails early on an unknown name
    if args.across_models and not (args.max_length and args.batch_size and args.precision):
        raise UserError("across_models=true compares models at an equal budget: give max_length, batch_size and "
                        "precision (the study's: max_length=128 batch_size=16 precision=32-true)")
    return args


def wanted_sides(baselines: str) -> set[str]:
    names = {n.strip() for n in str(baselines).split(",") if n.strip()}
    wanted = set()
    for name in names:
        if name == "all":
            wanted |= set(SIDE_GROUPS)
        elif name == "standard":
            wanted |= set(STANDARD_SIDES)
        elif name in SIDE_GROUPS:
            wanted.add(name)
        else:
            raise UserError(f"baselines={baselines}: unknown {name}; use standard, all or a subset of "
                            + ",".join(SIDE_GROUPS))
    return wanted


def overrides(args) -> list[str]:
    out = list(args.set)
    if args.max_length:
        out.append(f"data.max_length={args.max_length}")
    if args.batch_size:
        out.append(f"data.batch_size={args.batch_size}")
    if args.precision:
        out.append(f"trainer.precision={args.precision}")
    if args.device == "cpu":
        out.append("trainer.accelerator=cpu")
    return out


def baseline_side(work: Workload, flops):
    if work.family not in ("recurrent", "transformer"):
        return None
    if work.family == "recurrent":
        from imdb_lm.bench.baselines.rnn_tutorial import RnnTutorialSide
        return RnnTutorialSide(work)
    from imdb_lm.bench.baselines.hf_trainer import HFTrainerSide
    return HFTrainerSide(work, flops)


def tuned_baseline_side(work: Workload, flops):
    """The baseline with only its numeric settings tuned as ours are (training only)."""
    if work.family not in ("recurrent", "transformer"):
        return None
    if work.family == "recurrent":
        from imdb_lm.bench.baselines.rnn_tutorial import RnnTutorialTunedSide
        return RnnTutorialTunedSide(work)
    from imdb_lm.bench.baselines.hf_trainer import HFTrainerTunedSide
    return HFTrainerTunedSide(work, flops)


def attention_dropout_side(work: Workload, flops):
    """This project's path with the checkpoint's attention dropout (`model.attention_dropout=null`), or
    None where it does not apply (recurrent models, or ours already keeps the checkpoint's)."""
    if work.family != "transformer" or work.cfg.model.get("attention_dropout") is None:
        return None
    from imdb_lm.bench.ours import LightningAttentionDropoutSide
    return LightningAttentionDropoutSide(work, flops)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def rotated(sides: list, repeat: int) -> list:
    """Repeats interleave the sides (A B C, B C A, C A B, ...): load on a shared machine hits every
    side alike, and no side always runs first or right after a particular other one."""
    shift = repeat % len(sides)
    return sides[shift:] + sides[:shift]


def measure_training(sides: list, args, device: torch.device) -> dict[str, dict]:
    for side in sides:
        torch.set_flush_denormal(side.flush_denormals)
        side.warmup(max(1, args.warmup))
    runs: dict[str, list[dict]] = {side.name: [] for side in sides}
    for repeat in range(args.repeats):
        for side in rotated(sides, repeat):
            torch.set_flush_denormal(side.flush_denormals)
            with PeakMemory(device) as memory:
                record = side.train_repeat(repeat)
            runs[side.name].append({**record, "peak_memory_mb": memory.peak_mb})
            log(f"train {side.name} repeat {repeat + 1}: {record['samples_per_s']:.1f} samples/s")
    return {name: median_record(records) for name, records in runs.items()}


def measure_inference(sides: list, args, work: Workload) -> dict[str, dict]:
    reviews = [work.split("test")[i][0] for i in work.latency_indices]
    runs: dict[str, list[dict]] = {side.name: [] for side in sides}
    for side in sides:
        side.prepare_inference()
        time_inference(side.forward_batch, side.inference_batches()[:2], work.device)  # warm-up
    for repeat in range(args.repeats):
        for side in rotated(sides, repeat):
            torch.set_flush_denormal(side.flush_denormals)
            with PeakMemory(work.device) as memory:
                record = time_inference(side.forward_batch, side.inference_batches(), work.device)
            runs[side.name].append({**record, "peak_memory_mb": memory.peak_mb})
            log(f"inference {side.name} repeat {repeat + 1}: {record['samples_per_s']:.1f} samples/s")
    out = {name: median_record(records) for name, records in runs.items()}
    for side in sides:
        torch.set_flush_denormal(side.flush_denormals)
        out[side.name].update(time_latency(side.forward_one, reviews, work.device))
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def bench_model(model: str, args) -> dict:
    log(f"{model}: preparing data and models")
    probe = build_workload(model, overrides(args), args.device, 1, 1, 1, None, args.seed)
    defaults = DEFAULTS[probe.family]
    work = build_workload(model, overrides(args), args.device, args.train_limit or defaults["train_limit"],
                          args.infer_limit or defaults["infer_limit"], args.latency_samples,
                          args.infer_batch_size, args.seed)
    ours = LightningSide(work)
    flops = transformer_flops(work, ours.model) if work.family == "transformer" else None
    ours.flops = flops
    wanted = wanted_sides(args.baselines)
    sides = [ours]
    if "plain_loop" in wanted:
        from imdb_lm.bench.baselines.plain_loop import PlainLoopSide
        sides.append(PlainLoopSide(work, flops))
    baseline = baseline_side(work, flops) if "baseline" in wanted else None
    if baseline:
        sides.append(baseline)
    tuned = tuned_baseline_side(work, flops) if "tuned" in wanted else None
    if tuned:
        sides.append(tuned)
    dropout = attention_dropout_side(work, flops) if "attention_dropout" in wanted else None
    if dropout:
        sides.append(dropout)
    elif "attention_dropout" in wanted:
        log(f"{model}: no attention-dropout side (a recurrent model, or model.attention_dropout is already null)")
    log(f"{model}: training throughput ({args.repeats} interleaved repeats)")
    train = measure_training(sides, args, work.device)
    log(f"{model}: inference throughput and latency")
    compiled = CompiledInferenceSide(ours) if args.compiled_inference == "on" else None
    infer = measure_inference([ours] + ([compiled] if compiled else []) + ([baseline] if baseline else []),
                              args, work)
    result = {
        "family": work.family,
        "config": {"max_length": work.max_length, "batch_size": work.batch_size,
                   "infer_batch_size": work.infer_batch_size, "precision": work.precision,
                   "train_slice": len(work.train_indices),
                   "infer_sample": len(work.infer_indices), "model": OmegaConf.to_container(work.cfg.model),
                   "data": OmegaConf.to_container(work.cfg.data), "optimizer": OmegaConf.to_container(work.cfg.optimizer)},
        "sides": {side.name: {"description": side.description, "flush_denormals": side.flush_denormals,
                              "precision": getattr(side, "precision", None),
                              "train": train[side.name], "inference": infer.get(side.name)} for side in sides},
        "flops_per_step_model": ({"per_sequence": flops.constant, "per_token": flops.linear,
                                  "per_token_squared": flops.quadratic,
                                  "counted_by": "torch.utils.flop_counter.FlopCounterMode, forward+backward"}
                                 if flops else None),
    }
    if compiled:
        result["sides"][compiled.name] = {"description": compiled.description, "flush_denormals": True,
                                          "train": None, "inference": {**infer[compiled.name],
                                          "first_pass_seconds": compiled.first_pass_seconds}}
    result["ratios"] = ratios(result, baseline, tuned, dropout)
    if args.accuracy and baseline:
        result["accuracy"] = accuracy_parity([ours, baseline], work, args)
    return result


def train_ratio(sides: dict, a: str, b: str) -> float | None:
    return ratio(sides[a]["train"]["samples_per_s"], sides[b]["train"]["samples_per_s"])


def ratios(result: dict, baseline, tuned=None, dropout=None) -> dict:
    """Ratios of the sides' medians. Besides the headline ratios against the baseline: ours against the
    tuned baseline (the engineering share, same numerics) and the tuned baseline against the plain one
    (the numeric settings' share); ours against ours with the checkpoint's attention dropout (the
    dropout choice's share), and that side against the baseline (same dropouts on both sides)."""
    sides, out = result["sides"], {}
    ours_train = sides["lightning"]["train"]["samples_per_s"]
    if baseline:
        base = sides[baseline.name]
        out["train_samples_per_s_vs_baseline"] = ratio(ours_train, base["train"]["samples_per_s"])
        out["inference_samples_per_s_vs_baseline"] = ratio(sides["lightning"]["inference"]["samples_per_s"],
                                                           base["inference"]["samples_per_s"])
        out["latency_p50_speedup_vs_baseline"] = ratio(base["inference"]["latency_ms_p50"],
                                                       sides["lightning"]["inference"]["latency_ms_p50"])
        if "lightning_compiled" in sides:
            compiled = sides["lightning_compiled"]["inference"]
            out["compiled_inference_samples_per_s_vs_baseline"] = ratio(compiled["samples_per_s"],
                                                                        base["inference"]["samples_per_s"])
            out["compiled_latency_p50_speedup_vs_baseline"] = ratio(base["inference"]["latency_ms_p50"],
                                                                    compiled["latency_ms_p50"])
    if tuned:
        out["train_samples_per_s_vs_tuned_baseline"] = train_ratio(sides, "lightning", tuned.name)
        if baseline:
            out["tuned_baseline_vs_baseline"] = train_ratio(sides, tuned.name, baseline.name)
    if dropout:
        out["attention_dropout_0_gain"] = train_ratio(sides, "lightning", dropout.name)
        if baseline:
            out["lightning_attention_dropout_vs_baseline"] = train_ratio(sides, dropout.name, baseline.name)
    if "plain_loop" in sides:
        out["lightning_vs_plain_loop"] = ratio(ours_train, sides["plain_loop"]["train"]["samples_per_s"])
    # The inference target is met by this project's fastest batch inference (compiled where measured).
    measured = {"train_vs_baseline": out.get("train_samples_per_s_vs_baseline"),
                "inference_vs_baseline": max(filter(None, (out.get("inference_samples_per_s_vs_baseline"),
                                             out.get("compiled_inference_samples_per_s_vs_baseline"))),
                                             default=None)}
    targets = {}
    for key, target in TARGETS[result["family"]].items():
        targets[key] = {"target": target, "measured": measured[key],
                        "met": measured[key] is not None and measured[key] >= target}
    if "lightning_vs_plain_loop" in out:
        targets["lightning_within_5pct_of_plain_loop"] = {
            "target": 1 - LIGHTNING_OVERHEAD_LIMIT, "measured": out["lightning_vs_plain_loop"],
            "met": out["lightning_vs_plain_loop"] >= 1 - LIGHTNING_OVERHEAD_LIMIT}
    out["targets"] = targets
    return out


def accuracy_parity(sides: list, work: Workload, args) -> dict:
    """Both sides trained from scratch on one training slice, once per seed, each tested on the whole
    test split. Across seeds: the mean difference and a t interval of the seed-paired differences
    (training variance). For the first seed alone: a bootstrap CI over reviews and McNemar's test
    (test-review sampling only; they say nothing about another seed)."""
    rng = random.Random(args.seed + 1)
    train = work.split("train")
    part = train.subset(rng.sample(range(len(train)), min(args.accuracy_train_limit, len(train))))
    seeds = [args.seed + k for k in range(args.accuracy_seeds)]
    out = {"train_reviews": len(part), "epochs": args.accuracy_epochs, "seeds": seeds,
           "test_reviews": len(work.split("test"))}
    correct = {side.name: [] for side in sides}
    for seed in seeds:
        for side in sides:
            torch.set_flush_denormal(side.flush_denormals)
            start = time.perf_counter()
            correct[side.name].append(side.train_and_test(part, args.accuracy_epochs, seed))
            seconds = time.perf_counter() - start
            log(f"accuracy {side.name} seed {seed}: {correct[side.name][-1].mean():.4f} ({seconds:.0f} s)")
    for side in sides:
        per_seed = [float(c.mean()) for c in correct[side.name]]
        out[side.name] = {"test_acc": float(np.mean(per_seed)), "test_acc_per_seed": per_seed}
    ours, base = (correct[s.name] for s in sides)
    differences = [100 * (a.mean() - b.mean()) for a, b in zip(ours, base, strict=True)]
    out["difference_points"] = float(np.mean(differences))
    out["across_seeds"] = {"differences_points": [float(d) for d in differences], "ci95_points": None}
    if len(seeds) > 1:
        half = stats.t.ppf(0.975, len(seeds) - 1) * np.std(differences, ddof=1) / np.sqrt(len(seeds))
        out["across_seeds"]["ci95_points"] = [out["difference_points"] - half, out["difference_points"] + half]
    out["across_seeds"]["equivalence"] = equivalence_record(differences, args.accuracy_margin)
    out["verdict"] = out["across_seeds"]["equivalence"]["verdict"]
    first, test = bootstrap_difference(ours[0], base[0], seed=args.seed), mcnemar(ours[0], base[0])
    out["first_seed_test_sampling"] = {
        "seed": seeds[0], "difference_points": 100 * first.diff, "ci95_points": [100 * first.low, 100 * first.high],
        "mcnemar": {"only_ours_correct": test.only_a, "only_baseline_correct": test.only_b,
                    "p_value": test.p_value, "method": test.method}}
    return out


def equivalence_record(differences: list[float], margin: float) -> dict:
    """TOST over the seed-paired differences (points): "equivalent within +-margin points" only when
    both one-sided t tests reject at 5% (the 90% t interval lies inside the margin)."""
    tost = equivalence_tost(differences, margin, EQUIVALENCE_ALPHA)
    verdict = f"equivalent within \u00b1{margin:g} points" if tost.verdict == EQUIVALENT else tost.verdict
    return {"test": "TOST: two one-sided t tests over the seed differences", "margin_points": margin,
            "alpha": EQUIVALENCE_ALPHA, "seeds": tost.n, "p_value": tost.p_value,
            "p_value_lower": tost.p_lower, "p_value_upper": tost.p_upper,
            "ci90_points": None if tost.low is None else [tost.low, tost.high], "verdict": verdict}


def print_across(across: dict) -> None:
    first = next(iter(across.values()))["config"]
    print(f"\n== models against each other ({first['precision']}, max_length {first['max_length']}, batch "
          f"{first['batch_size']}, the same {first['train_slice']} training reviews) ==")
    print(f"{'model':<26}{'non-emb params':>15}{'train tok/s':>12}{'s / 1M tok':>11}{'infer samp/s':>13}"
          f"{'p50 ms':>8}")
    for model, m in across.items():
        t, i = m["train"], m["inference"]
        print(f"{model:<26}{m['params']['non_embedding']:>15,}{t.get('tokens_per_s', float('nan')):>12.0f}"
              f"{m['train_seconds_per_million_tokens'] or float('nan'):>11.1f}{i['samples_per_s']:>13.1f}"
              f"{i['latency_ms_p50']:>8.1f}")


def print_summary(record: dict) -> None:
    if "across_models" in record:
        print_across(record["across_models"])
    for model, result in record["models"].items():
        print(f"\n== {model} ({result['config']['precision']}, max_length {result['config']['max_length']}, "
              f"batch {result['config']['batch_size']}) ==")
        print(f"{'side':<28}{'train samp/s':>13}{'tokens/s':>10}{'pad %':>7}{'infer samp/s':>13}"
              f"{'p50 ms':>8}{'p95 ms':>8}{'peak MB':>9}{'TFLOP/s':>9}")
        nan = float("nan")
        for name, side in result["sides"].items():
            t, i = side["train"] or {}, side["inference"] or {}
            peak = t.get("peak_memory_mb") or i.get("peak_memory_mb") or nan
            pad = nan if t.get("padding_fraction") is None else t["padding_fraction"]
            print(f"{name:<28}{t.get('samples_per_s', nan):>13.1f}{t.get('tokens_per_s', nan):>10.0f}"
                  f"{100 * pad:>7.1f}"
                  f"{i.get('samples_per_s', nan):>13.1f}{i.get('latency_ms_p50', nan):>8.1f}"
                  f"{i.get('latency_ms_p95', nan):>8.1f}{peak:>9.0f}{(t.get('flops_per_s') or nan) / 1e12:>9.3f}")
        for key, value in result["ratios"].items():
            if key != "targets" and value is not None:
                print(f"  {key}: {value:.2f}x")
        if "train_samples_per_s_vs_baseline" in result["ratios"] and \
                "train_samples_per_s_vs_tuned_baseline" not in result["ratios"]:
            print("  (against the baseline's defaults; baselines=all also measures it tuned, like with like)")
        for key, t in result["ratios"]["targets"].items():
            print(f"  target {key}: {t['measured'] or float('nan'):.2f} vs {t['target']} -> "
                  f"{'met' if t['met'] else 'not measured' if t['measured'] is None else 'NOT met'}")
        if "accuracy" in result:
            acc = result["accuracy"]
            sides = ", ".join(f"{k} {v['test_acc']:.4f}" for k, v in acc.items()
                              if isinstance(v, dict) and "test_acc" in v)
            seeds, first = acc["across_seeds"], acc["first_seed_test_sampling"]
            spread = (f" (95% CI over {len(acc['seeds'])} seeds {seeds['ci95_points'][0]:+.2f} to "
                      f"{seeds['ci95_points'][1]:+.2f})" if seeds["ci95_points"] else " (one seed: add "
                      "--accuracy-seeds for training variance)")
            print(f"  accuracy ({acc['train_reviews']} train reviews, {acc['epochs']} epoch(s), mean of "
                  f"{len(acc['seeds'])} seed(s)): {sides}; difference {acc['difference_points']:+.2f} points"
                  f"{spread}; seed {first['seed']}, test sampling only: 95% CI {first['ci95_points'][0]:+.2f} "
                  f"to {first['ci95_points'][1]:+.2f}, McNemar p={first['mcnemar']['p_value']:.3g}")
            eq = seeds["equivalence"]
            p = "needs 2+ seeds" if eq["p_value"] is None else f"p={eq['p_value']:.3g}"
            print(f"  accuracy parity over seeds: {acc['verdict']} (TOST, margin \u00b1{eq['margin_points']:g} "
                  f"points, {p})")
    tok = record.get("tokenization")
    if tok:
        t = tok["throughput"]
        print(f"\ntokenization: word {t['word_reviews_per_s']:.0f} reviews/s, pretrained "
              f"{t['pretrained_reviews_per_s']:.0f} reviews/s; cache: first hit {tok['cache']['first_cache_hit']}, "
              f"second hit {tok['cache']['second_cache_hit']} ({tok['cache']['second_setup_seconds']:.2f}s)")


def write_record(record: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, path)  # never a half-written record
    return path


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    keep_freed_memory()  # as every training run does; the same process, so every side alike
    if args.threads:
        torch.set_num_threads(args.threads)
    started = datetime.now(timezone.utc)
    load_start = os.getloadavg()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise UserError("--models is empty; name at least one conf/model preset, e.g. --models bigru")
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    env = env_record(device)  # at the start: the code that runs is the revision checked out now
    if args.across_models:
        from imdb_lm.bench.across import bench_across
        results = {}
        across = bench_across(models, args, overrides(args), measure_training, log)
    else:
        results = {m: bench_model(m, args) for m in models}
    record = {"created_at": started.isoformat(timespec="seconds"),
              "command": "python -m imdb_lm.bench " + " ".join(sys.argv[1:] if argv is None else argv),
              "seconds": (datetime.now(timezone.utc) - started).total_seconds(),
              "load_average_1min": {"start": load_start[0], "end": os.getloadavg()[0]},
              "cpu_count": os.cpu_count(), "options": OmegaConf.to_container(args), "models": results}
    record["env"] = env
    if args.across_models:
        record["across_models"] = across
    if args.tokenization_reviews:
        log("tokenization throughput and cache")
        work = build_workload(models[0], overrides(args), args.device, 1, 1, 1, None, args.seed)
        texts = work.split("train").texts
        sample = random.Random(args.seed).sample(texts, min(args.tokenization_reviews, len(texts)))
        data_kwargs = {k: v for k, v in OmegaConf.to_container(work.cfg.data).items() if k != "_target_"}
        record["tokenization"] = {"throughput": tokenizer_throughput(sample, work.max_length),
                                  "cache": cache_check(data_kwargs)}
    torch.set_flush_denormal(True)
    if args.startup:
        log("start-up timings (whole processes)")
        with tempfile.TemporaryDirectory() as scratch:
            record["startup"] = measure_startup(args.startup, Path(scratch), Path.cwd())
    out = Path(args.output or f"outputs/bench/{started.strftime('%Y-%m-%d_%H-%M-%S')}.json")
    write_record(record, out)
    print_summary(record)
    if "startup" in record:
        print_startup(record["startup"])
    print(f"\nrecord: {out}")
    return out


if __name__ == "__main__":
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
