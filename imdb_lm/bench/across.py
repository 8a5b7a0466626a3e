"""Models against each other in one interleaved bench: time per training token at an equal budget.

The per-model bench interleaves this project's path with its baselines, one model at a time. Whether
one model trains or answers faster than another (is an RNN slower to train per token than a
transformer of the same size?) needs the models themselves interleaved (A B C, B C A, ...) on the same
reviews, at the same length, batch size and precision, in one process: load on a shared machine then
hits every model alike, and the ratios are of medians taken in one run. Run records made on different
machines or under load cannot give that. The study's report reads these figures (`speed.json`).
"""

from __future__ import annotations

from imdb_lm.bench.harness import median_record, time_inference, time_latency
from imdb_lm.bench.ours import LightningSide
from imdb_lm.bench.workload import build_workload

# Every model passes over the same reviews: a budget large enough to cover every bucket length, small
# enough that a from-scratch transformer at fp32 on a 2-core CPU takes seconds per repeat.
TRAIN_REVIEWS, INFER_REVIEWS = 256, 256


def _side(model: str, work) -> LightningSide:
    side = LightningSide(work)
    side.name = model  # one side per model: the names the report looks up
    return side


def bench_across(models: list[str], args, overrides: list[str], measure_training, log) -> dict:
    """This project's path of every model, interleaved; per model the medians, and the config they share."""
    sides = []
    for model in models:
        log(f"{model}: preparing data and model")
        work = build_workload(model, overrides, args.device, args.train_limit or TRAIN_REVIEWS,
                              args.infer_limit or INFER_REVIEWS, args.latency_samples, args.infer_batch_size,
                              args.seed)
        sides.append(_side(model, work))
    log(f"training throughput, every model interleaved ({args.repeats} repeats)")
    train = measure_training(sides, args, sides[0].work.device)
    log("inference throughput and latency, every model interleaved")
    infer = _inference(sides, args.repeats, log)
    out = {}
    for side in sides:
        work, t = side.work, train[side.name]
        out[side.name] = {
            "family": work.family, "params": side.model.count_parameters(),
            "config": {"max_length": work.max_length, "batch_size": work.batch_size, "precision": work.precision,
                       "train_slice": len(work.train_indices), "infer_sample": len(work.infer_indices)},
            "train": t, "inference": infer[side.name],
            # the budget is equal in reviews; tokens differ with the tokenizer, so time is per real token
            "train_seconds_per_million_tokens": 1e6 / t["tokens_per_s"] if t.get("tokens_per_s") else None,
        }
    return out


def _inference(sides: list[LightningSide], repeats: int, log) -> dict[str, dict]:
    runs: dict[str, list[dict]] = {side.name: [] for side in sides}
    for side in sides:
        side.prepare_inference()
        time_inference(side.forward_batch, side.inference_batches()[:2], side.work.device)  # warm-up
    for repeat in range(repeats):
        shift = repeat % len(sides)
        for side in sides[shift:] + sides[:shift]:
            record = time_inference(side.forward_batch, side.inference_batches(), side.work.device)
            runs[side.name].append(record)
            log(f"inference {side.name} repeat {repeat + 1}: {record['samples_per_s']:.1f} samples/s")
    out = {name: median_record(records) for name, records in runs.items()}
    for side in sides:  # each model's own tokenization of the same reviews
        reviews = [side.work.split("test")[i][0] for i in side.work.latency_indices]
        out[side.name].update(time_latency(side.forward_one, reviews, side.work.device))
    return out
