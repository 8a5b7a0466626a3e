"""`python -m imdb_lm.gpu_check.run bundle=.gpu_check out=outputs/gpu_check`, on a GPU machine after
`install.py`: the GPU tests, short trainings of both families in bf16-mixed and 16-mixed, a short
benchmark and the fused-kernel/cuDNN GRU comparison, within a time budget. Writes gpu_check.md (the
section for docs/benchmarks.md), gpu_check.json, gpu_check.log and the benchmark records to --out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from imdb_lm.config.options import Option, run_main
from imdb_lm.gpu_check.copies import DATA_FILE, unpack_imdb_rows

ROOT = Path(__file__).resolve().parents[2]
BUDGET_S = 480  # the whole check, install excluded: 8 minutes on one GPU
# Short, stated scale: slices of the frozen splits, one epoch.
TRAIN_SCALE = ["data.train_limit=2000", "data.val_limit=500", "data.test_limit=1000", "trainer.max_epochs=1"]
BENCH_SCALE = ["--repeats", "1", "--train-limit", "512", "--infer-limit", "256", "--latency-samples", "10",
               "--tokenization-reviews", "0", "--compiled-inference", "off",
               "--startup", "0"]
# The test files holding `gpu`-marked tests: collecting the whole suite would import the notebook
# tests' packages, which the GPU machine lacks (a test checks this list against the marker).
GPU_TEST_FILES = ("tests/test_gpu.py", "tests/test_configs.py")
MODELS = ("bigru", "transformer")
PRECISIONS = ("bf16-mixed", "16-mixed")


@dataclass
class Step:
    name: str
    kind: str  # tests | train | bench
    argv: list[str]
    cwd: Path
    timeout: int
    meta: dict = field(default_factory=dict)


def data_overrides(bundle: Path, work: Path, model: str) -> list[str]:
    local = ["data.source=csv", f"data.path={work / 'imdb.csv'}"]
    return local + ([f"model.pretrained={bundle / 'model'}"] if model == "transformer" else [])


def plan_steps(bundle: Path, work: Path, out: Path, python: str = sys.executable) -> list[Step]:
    """The commands, in order. `work` holds what they write besides `out` (unpacked data, caches, runs)."""
    bundle, work, out = bundle.resolve(), work.resolve(), out.resolve()
    steps = [Step("gpu tests", "tests", [python, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                                         f"--junitxml={work / 'gpu_tests.xml'}", *GPU_TEST_FILES], ROOT, 150)]
    for model in MODELS:
        for precision in PRECISIONS:
            name = f"train {model} {precision}"
            argv = [python, "-m", "imdb_lm.train", "trainer=gpu", f"model={model}",
                    f"trainer.precision={precision}", *data_overrides(bundle, work, model), *TRAIN_SCALE,
                    "trainer.enable_progress_bar=false", "logger=none"]
            steps.append(Step(name, "train", argv, work / "runs" / f"{model}-{precision}", 120,
                              {"model": model, "precision": precision}))
    for model in MODELS:
        sets = [a for o in data_overrides(bundle, work, model) for a in ("--set", o)]
        record = out / f"bench_{model}.json"
        argv = [python, "-m", "imdb_lm.bench", "--device", "cuda", "--models", model, *BENCH_SCALE, *sets,
                "--output", str(record)]
        steps.append(Step(f"bench {model}", "bench", argv, work / "runs", 150, {"model": model, "record": record}))
    return steps


def env(bundle: Path, work: Path) -> dict[str, str]:
    return {**os.environ, "IMDB_LM_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT),
            "TORCH_EXTENSIONS_DIR": str(work / "torch_extensions"),
            "IMDB_LM_GPU_CHECK_PRETRAINED": str(bundle / "model")}  # read by tests/test_gpu.py


def execute(step: Step, seconds: float, environ: dict[str, str], log) -> dict:
    step.cwd.mkdir(parents=True, exist_ok=True)
    log.write(f"\n===== {step.name}: {' '.join(step.argv)}\n")
    log.flush()
    started = time.monotonic()
    try:
        proc = subprocess.run(step.argv, cwd=step.cwd, env=environ, stdout=log, stderr=subprocess.STDOUT,
                              timeout=max(1, seconds))
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        status = f"timed out after {seconds:.0f} s"
    return {"name": step.name, "kind": step.kind, "status": status,
            "seconds": round(time.monotonic() - started, 1), **{k: str(v) for k, v in step.meta.items()}}


def collect(step: Step, result: dict, work: Path) -> dict:
    """The figures a finished step left behind."""
    if step.kind == "tests" and (work / "gpu_tests.xml").is_file():
        suite = ET.parse(work / "gpu_tests.xml").getroot()
        suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        result["tests"] = {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"]
                           - counts["skipped"]}
    elif step.kind == "train":
        found = sorted(step.cwd.rglob("metrics.json"), key=lambda p: p.stat().st_mtime)
        if found:
            record = json.loads(found[-1].read_text())
            result["metrics"] = {"test_acc": record["metrics"]["test"]["acc"], **record["timing"],
                                 "precision": record["hparams"]["precision"]}
    elif step.kind == "bench" and Path(step.meta["record"]).is_file():
        record = json.loads(Path(step.meta["record"]).read_text())
        result["bench"] = record["models"][step.meta["model"]]
    return result


def device_info() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"device": None}
    return {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
            "bf16_supported": torch.cuda.is_bf16_supported()}


def gru_parity() -> dict:
    try:
        from imdb_lm.gpu_check.gru_parity import compare

        return compare()
    except Exception as err:  # noqa: BLE001 - reported in the section, the other figures still stand
        return {"error": f"{type(err).__name__}: {err}"}


def run_steps(bundle: Path, work: Path, out: Path, budget: float) -> tuple[list[dict], dict]:
    deadline = time.monotonic() + budget
    environ = env(bundle, work)
    unpack_imdb_rows(bundle / "data" / DATA_FILE, work / "imdb.csv")
    os.environ["TORCH_EXTENSIONS_DIR"] = environ["TORCH_EXTENSIONS_DIR"]  # the kernel's build, as the steps'
    results = []
    with (out / "gpu_check.log").open("w") as log:
        started = time.monotonic()
        parity = gru_parity()
        parity["seconds"] = round(time.monotonic() - started, 1)
        for step in plan_steps(bundle, work, out):
            left = deadline - time.monotonic()
            if left < 10:
                results.append({"name": step.name, "kind": step.kind, "status": "skipped: budget spent"})
                continue
            results.append(collect(step, execute(step, min(step.timeout, left), environ, log), work))
    return results, parity


def main(argv: list[str] | None = None) -> None:
    run_main(_run, sys.argv[1:] if argv is None else argv, OPTIONS, __doc__)


OPTIONS = [
    Option("bundle", ".gpu_check", "the folder built by `make gpu-check-prepare`"),
    Option("out", "outputs/gpu_check", "where gpu_check.md and the records go"),
    Option("budget", BUDGET_S, "seconds for all steps together"),
]


def _run(args) -> None:
    from imdb_lm.gpu_check.report import render

    bundle, out = Path(args.bundle).resolve(), Path(args.out).resolve()
    if not (bundle / "data" / DATA_FILE).is_file():
        sys.exit(f"error: {bundle / 'data' / DATA_FILE}: not found; build the folder with `make gpu-check-prepare`")
    info = device_info()
    if info["device"] is None:
        sys.exit("error: no CUDA device is visible to torch; run `make gpu-check` on a GPU machine")
    out.mkdir(parents=True, exist_ok=True)
    # Scratch space outside the folder, which must stay small enough to carry again.
    work = Path(tempfile.mkdtemp(prefix="imdb_lm_gpu_check_"))
    try:
        results, parity = run_steps(bundle, work, out, args.budget)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    install = json.loads((bundle / "install.json").read_text()) if (bundle / "install.json").is_file() else {}
    record = {**info, "budget_s": args.budget, "train_scale": TRAIN_SCALE, "bench_scale": BENCH_SCALE,
              "gru_parity": parity, "steps": results, "install": install,
              "revision": json.loads((bundle / "manifest.json").read_text()).get("revision")}
    (out / "gpu_check.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    (out / "gpu_check.md").write_text(render(record))
    failed = [r["name"] for r in results if r["status"] != "ok"]
    print(f"{out / 'gpu_check.md'}: {len(results) - len(failed)}/{len(results)} steps ok"
          + (f"; not ok: {', '.join(failed)}" if failed else ""))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
