"""The markdown section `make gpu-check` writes (gpu_check.md), from its JSON record."""

from __future__ import annotations


def _num(value, fmt: str = ".1f") -> str:
    return "–" if value is None else format(value, fmt)


def _train_table(steps: list[dict]) -> list[str]:
    lines = ["| model | precision | status | test acc | train samples/s | fit s | test samples/s | "
             "latency p50 ms | peak GPU MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for s in steps:
        if s["kind"] != "train":
            continue
        m = s.get("metrics", {})
        lines.append(f"| {s['model']} | {s['precision']} | {s['status']} | {_num(m.get('test_acc'), '.4f')} | "
                     f"{_num(m.get('train_samples_per_s'))} | {_num(m.get('fit_seconds'))} | "
                     f"{_num(m.get('test_samples_per_s'))} | {_num(m.get('latency_ms_p50'), '.2f')} | "
                     f"{_num(m.get('cuda_peak_mb'), '.0f')} |")
    return lines


def _bench_table(steps: list[dict]) -> list[str]:
    lines = ["| model | side | train samples/s | inference samples/s | latency p50 / p95 ms |",
             "|---|---|---|---|---|"]
    for s in steps:
        if s["kind"] != "bench":
            continue
        if "bench" not in s:
            lines.append(f"| {s['model']} | {s['status']} | – | – | – |")
            continue
        for name, side in s["bench"]["sides"].items():
            t, i = side.get("train") or {}, side.get("inference") or {}
            lines.append(f"| {s['model']} ({s['bench']['config']['precision']}) | {name} | "
                         f"{_num(t.get('samples_per_s'))} | {_num(i.get('samples_per_s'))} | "
                         f"{_num(i.get('latency_ms_p50'), '.2f')} / {_num(i.get('latency_ms_p95'), '.2f')} |")
    return lines


def render(record: dict) -> str:
    steps = record["steps"]
    tests = next((s for s in steps if s["kind"] == "tests"), {})
    counts = tests.get("tests")
    parity = record["gru_parity"]
    out = [f"## GPU check: {record['device']}", "",
           f"`make gpu-check` at git revision {record.get('revision') or 'unknown'}: torch {record['torch']}, "
           f"CUDA {record['cuda']}, native bf16: {record['bf16_supported']}; all steps within a "
           f"{record['budget_s']} s budget ({sum(s.get('seconds', 0) for s in steps):.0f} s used).", ""]
    if counts:
        out.append(f"- GPU tests (`pytest -m gpu`): {counts['passed']} passed, {counts['failures']} failed, "
                   f"{counts['errors']} errors, {counts['skipped']} skipped ({tests['status']}, {tests['seconds']} s).")
    else:
        out.append(f"- GPU tests (`pytest -m gpu`): {tests.get('status', 'not run')}.")
    if "error" in parity:
        out.append(f"- fused CPU GRU kernel vs cuDNN: {parity['error']}")
    else:
        kernel = "fused CPU kernel" if parity["fused_kernel"] else "nn.GRU on CPU (the fused kernel did not build)"
        out.append(f"- {kernel} vs cuDNN GRU, same default-BiGRU weights, fp32 without TF32, "
                   f"{parity['batch']} padded reviews up to {parity['max_length']} tokens: largest logit difference "
                   f"{parity['max_abs_logit_diff']:.2e}, largest gradient difference "
                   f"{parity['max_rel_grad_diff']:.2e} of that gradient's largest entry.")
    outside = record.get("install", {}).get("outside_requirements")
    if outside:
        out.append(f"- image versions outside the project's requirements: {'; '.join(outside)}.")
    out += ["", f"Training (`trainer=gpu`, {' '.join(record['train_scale'])}; the recipes' other settings):", "",
            *_train_table(steps), "",
            f"Benchmark (`python -m imdb_lm.bench --device cuda {' '.join(record['bench_scale'])}`, one "
            "repeat: indicative only):", "", *_bench_table(steps), ""]
    return "\n".join(out)
