"""`make gpu-check`'s CPU side: the folder it carries (dependency plan, bf16 checkpoint, data copy,
size limit), the commands it runs on the GPU machine, its install guard and its report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from imdb_lm.bench.__main__ import overrides as bench_overrides
from imdb_lm.bench.__main__ import parse_args as bench_args
from imdb_lm.bench.workload import compose_config
from imdb_lm.config.overrides import check_train_argv
from imdb_lm.data.sources import load_source
from imdb_lm.errors import UserError
from imdb_lm.gpu_check import deps, prepare, run
from imdb_lm.gpu_check.copies import DATA_FILE, unpack_imdb_rows
from imdb_lm.gpu_check.merge import merge
from imdb_lm.gpu_check.report import render
from imdb_lm.models.pretrained import bundled_path
from imdb_lm.models.transformer import TransformerClassifier
from tests.helpers import ROOT, cli_env


@pytest.fixture(scope="module")
def plan() -> deps.Plan:
    return deps.plan()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, plan) -> Path:
    """The folder as `prepare` builds it, less the wheels (downloading them needs the index: slow test)."""
    folder = tmp_path_factory.mktemp("bundle") / ".gpu_check"
    original = prepare.download_wheels
    prepare.download_wheels = lambda pins, dest: []
    try:
        prepare.prepare(folder)
    finally:
        prepare.download_wheels = original
    return folder


def test_carried_wheels_are_the_pure_python_packages_the_image_lacks(plan):
    image = deps.closure(list(deps.IMAGE_HAS))
    assert {"hydra-core", "omegaconf", "antlr4-python3-runtime", "datasets", "captum", "pytest"} <= set(plan.carried)
    assert not set(plan.carried) & (set(image) | set(deps.REPLACED))
    assert {"torch", "lightning", "transformers", "filelock", "safetensors"} <= set(image)
    needed = deps.closure([r.split("<")[0].split(">")[0].split("=")[0] for r in plan.requirements])
    assert all(deps.is_pure(needed[n]) for n in plan.carried)
    assert plan.from_image and not any(deps.is_pure(needed[n]) for n in plan.from_image)
    assert set(plan.carried) | set(plan.from_image) == set(needed) - set(image)
    assert not any(r.startswith(deps.REPLACED) for r in plan.requirements)


def test_folder_holds_a_bf16_checkpoint_and_the_imdb_rows_within_the_limit(bundle, plan):
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["from_image"] == plan.from_image and manifest["data_rows"] == 25000
    assert (bundle / "requirements.txt").read_text().splitlines() == [f"{n}=={v}" for n, v in sorted(plan.carried.items())]
    fp32 = Path(bundled_path()) / "model.safetensors"
    weights = load_file(bundle / "model" / "model.safetensors")
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.bfloat16}
    assert (bundle / "model" / "model.safetensors").stat().st_size < 0.51 * fp32.stat().st_size
    # the real wheels add about 3 MiB (slow test); the checkpoint and the data leave room for them
    assert manifest["total_bytes"] + 4 * 2**20 <= manifest["limit_bytes"] == 64 * 2**20
    assert not list(bundle.parent.glob(".gpu_check.*"))  # no staging folder left behind


def test_bf16_checkpoint_loads_in_fp32_and_gives_nearly_the_fp32_logits(bundle):
    ids = torch.randint(1000, 20000, (4, 48), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    outputs = []
    for pretrained in ("bundled", str(bundle / "model")):
        torch.manual_seed(0)  # the same classification head
        model = TransformerClassifier(pretrained).eval()
        assert {p.dtype for p in model.parameters()} == {torch.float32}  # fp32 master weights
        with torch.no_grad():
            outputs.append((model(ids, mask, None), model.model.bert(input_ids=ids, attention_mask=mask)[0]))
    (logits32, hidden32), (logits16, hidden16) = outputs
    assert torch.allclose(logits16, logits32, atol=2e-3) and not torch.equal(hidden16, hidden32)
    assert torch.nn.functional.cosine_similarity(hidden16.flatten(1), hidden32.flatten(1)).min() > 0.999


def test_data_copy_gives_the_bundled_source_rows_in_order(bundle, tmp_path):
    csv_path = unpack_imdb_rows(bundle / "data" / DATA_FILE, tmp_path / "imdb.csv")
    copy, bundled = load_source("csv", str(csv_path))["train"], load_source("bundled")["train"]
    assert copy["text"] == bundled["text"] and copy["label"] == bundled["label"]


def test_over_the_limit_is_one_clear_error_and_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "download_wheels", lambda pins, dest: [])
    out = tmp_path / ".gpu_check"
    with pytest.raises(UserError, match=r"\.gpu_check.*over the 40 MiB.*model/model\.safetensors 43\.3 MiB"):
        prepare.prepare(out, limit_mib=40)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="--also fsspec: give NAME==VERSION"):
        prepare.prepare(out, also=["fsspec"])


def test_gpu_commands_compose(bundle, tmp_path):
    """Every training command passes the training CLI's own checks, with the requested precision and
    the folder's data and checkpoint; the benchmark commands parse and compose."""
    (tmp_path / "imdb.csv").touch()  # unpacked into the scratch folder on the GPU machine
    steps = run.plan_steps(bundle, tmp_path, tmp_path / "out")
    assert [s.kind for s in steps] == ["tests"] + ["train"] * 4 + ["bench"] * 2
    trained = set()
    for step in steps[1:5]:
        args = step.argv[3:]
        assert step.argv[1:3] == ["-m", "imdb_lm.train"] and check_train_argv(args) == args
        cfg = run_cfg(args)
        assert cfg.trainer.precision == step.meta["precision"] and cfg.trainer.accelerator == "gpu"
        assert cfg.data.source == "csv" and cfg.data.path == str(tmp_path.resolve() / "imdb.csv")
        assert cfg.data.train_limit == 2000 and cfg.trainer.max_epochs == 1
        if cfg.model.family == "transformer":
            assert cfg.model.pretrained == str(bundle.resolve() / "model") == cfg.data.pretrained
        trained.add((cfg.model.name, str(cfg.trainer.precision)))
    assert trained == {(m, p) for m in run.MODELS for p in run.PRECISIONS}
    for step in steps[5:]:
        args = bench_args(step.argv[3:])
        assert args.device == "cuda" and args.repeats == 1
        cfg = compose_config(args.models, bench_overrides(args))
        assert cfg.data.path == str(tmp_path.resolve() / "imdb.csv")


def run_cfg(args):
    from imdb_lm.config.compose import compose_train as _compose

    return _compose(args)


def test_gpu_test_files_hold_every_gpu_marked_test():
    """The GPU step runs only these files (collecting the whole suite would import packages the GPU
    machine lacks); a `gpu` test anywhere else would be missed. Their `-m gpu` selection is real."""
    marker = re.compile(r"pytest\.mark\.gpu\b")
    marked = {f"tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py") if marker.search(p.read_text())}
    assert marked == set(run.GPU_TEST_FILES)
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "gpu", *run.GPU_TEST_FILES],
                          cwd=ROOT, env=cli_env(ROOT), capture_output=True, text=True)
    collected = [line for line in proc.stdout.splitlines() if "::" in line]
    assert len(collected) == 5 and {c.split("::")[0] for c in collected} == marked


def test_install_refuses_an_image_without_the_compiled_packages(tmp_path):
    script = ROOT / "imdb_lm" / "gpu_check" / "install.py"
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode != 0 and "manifest.json: not found" in proc.stderr and "make gpu-check-prepare" in proc.stderr
    (tmp_path / "manifest.json").write_text(json.dumps({"from_image": ["torch", "no-such-compiled-pkg"]}))
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    assert "lacks the compiled package(s) no-such-compiled-pkg," in proc.stderr and "--also" in proc.stderr


def record(device: str, acc: float) -> dict:
    train = [{"name": f"train {m} {p}", "kind": "train", "model": m, "precision": p, "status": "ok", "seconds": 30,
              "metrics": {"test_acc": acc, "train_samples_per_s": 1234.5, "fit_seconds": 12.0,
                          "test_samples_per_s": 5000.0, "latency_ms_p50": 1.5, "cuda_peak_mb": 900.0}}
             for m in run.MODELS for p in run.PRECISIONS]
    return {"device": device, "torch": "2.11.0", "cuda": "13.0", "bf16_supported": True, "budget_s": 480,
            "revision": "abc1234", "train_scale": run.TRAIN_SCALE, "bench_scale": run.BENCH_SCALE,
            "gru_parity": {"fused_kernel": True, "batch": 16, "max_length": 120, "max_abs_logit_diff": 3e-7,
                           "max_rel_grad_diff": 2e-6, "seconds": 3.0},
            "steps": [{"name": "gpu tests", "kind": "tests", "status": "ok", "seconds": 40.0,
                       "tests": {"tests": 5, "failures": 0, "errors": 0, "skipped": 0, "passed": 5}},
                      *train, {"name": "bench bigru", "kind": "bench", "model": "bigru",
                               "status": "timed out after 90 s", "seconds": 90}],
            "install": {"outside_requirements": ["lightning 2.7.0 (project asks <2.7,>=2.4)"]}}


def test_report_section_merges_into_the_doc_once_per_device():
    section = render(record("NVIDIA H200", 0.8123))
    assert section.startswith("## GPU check: NVIDIA H200\n")
    assert "5 passed, 0 failed" in section and "3.00e-07" in section and "lightning 2.7.0" in section
    assert "| transformer | 16-mixed | ok | 0.8123 | 1234.5 | 12.0 | 5000.0 | 1.50 | 900 |" in section
    assert "| bigru | timed out after 90 s |" in section
    doc = "# Benchmarks\n\nintro\n"
    once = merge(section, doc)
    again = merge(render(record("NVIDIA H200", 0.9001)), once)
    assert again.count("## GPU check: NVIDIA H200") == 1 and "0.9001" in again and "0.8123" not in again
    assert again.startswith(doc)
    other = merge(render(record("Tesla T4", 0.8)), again)
    assert other.count("## GPU check:") == 2 and other.startswith(again.rstrip("\n"))
    with pytest.raises(UserError, match="gpu_check.md: no '## GPU check: <device>' heading"):
        merge("# something else\n", doc, "gpu_check.md")


def package_index_unreachable() -> str | None:
    """Why pip cannot reach its package index, asked with pip's own settings (index, mirrors, proxy);
    None when it can. The suite runs offline by design: what needs the index skips there, saying why."""
    command = [sys.executable, "-m", "pip", "index", "versions", "packaging", "--retries", "0", "--timeout", "10",
               "--disable-pip-version-check"]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "the package index is unreachable (pip index versions packaging: no answer in 120 s)"
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"the package index is unreachable (pip index versions packaging: {last})"


@pytest.mark.slow
def test_prepare_downloads_wheels_for_python_3_12_within_the_limit(tmp_path, plan):
    """The whole preparation, as `make gpu-check-prepare` runs it (needs the package index: skipped,
    with the reason, where it is unreachable)."""
    from packaging.utils import canonicalize_name, parse_wheel_filename

    unreachable = package_index_unreachable()
    if unreachable:
        pytest.skip(unreachable)
    out = tmp_path / ".gpu_check"
    proc = subprocess.run([sys.executable, "-m", "imdb_lm.gpu_check.prepare", "--out", str(out)], cwd=ROOT,
                          env=cli_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    wheels = {canonicalize_name(parse_wheel_filename(w)[0]): parse_wheel_filename(w) for w in manifest["wheels"]}
    assert set(wheels) == set(plan.carried)
    for name, (_, version, _, tags) in wheels.items():
        assert str(version) == plan.carried[name]
        assert any(t.interpreter in ("py3", "py312", "cp312") and t.abi == "none" and t.platform == "any"
                   for t in tags), (name, tags)
    assert manifest["total_bytes"] <= manifest["limit_bytes"]
    assert f"{manifest['total_bytes'] / 2**20:.1f} MiB with the checkout (limit 64 MiB)" in proc.stdout


@pytest.mark.slow
def test_steps_run_and_report_with_the_cpu_in_place_of_the_gpu(bundle, tmp_path):
    """The run step's plumbing on CPU: the GPU tests step (all skipped here) and a BiGRU training step,
    switched to `trainer=cpu` at smoke scale, run, and their figures reach the section."""
    from imdb_lm.gpu_check.copies import unpack_imdb_rows

    work, out = tmp_path / "work", tmp_path / "out"
    out.mkdir()
    unpack_imdb_rows(bundle / "data" / DATA_FILE, work / "imdb.csv")
    steps = run.plan_steps(bundle, work, out)
    tests, train = steps[0], next(s for s in steps if s.meta.get("model") == "bigru")
    train.argv = [a.replace("trainer=gpu", "trainer=cpu") for a in train.argv] + ["debug=smoke"]
    results = []
    with (out / "gpu_check.log").open("w") as log:
        for step in (tests, train):
            results.append(run.collect(step, run.execute(step, 600, run.env(bundle, work), log), work))
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert results[0]["tests"] == {"tests": 5, "failures": 0, "errors": 0, "skipped": 5, "passed": 0}
    assert 0 <= results[1]["metrics"]["test_acc"] <= 1 and results[1]["metrics"]["train_samples_per_s"] > 0
    record = {"device": "cpu", "torch": torch.__version__, "cuda": None, "bf16_supported": False, "budget_s": 480,
              "train_scale": run.TRAIN_SCALE, "bench_scale": run.BENCH_SCALE, "steps": results,
              "gru_parity": {"error": "no CUDA"}}
    section = render(record)
    assert "0 passed, 0 failed, 0 errors, 5 skipped" in section
    assert f"| bigru | {train.meta['precision']} | ok | {results[1]['metrics']['test_acc']:.4f} |" in section
