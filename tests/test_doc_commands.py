"""Every shell command the documentation shows is checked against the code it names.

Sources: README.md and docs/*.md (fenced code blocks, indented example lines, inline
`python -m imdb_lm...` and `make ...` in backticks), comments in conf/**/*.yaml (`# python -m ...`
and `# make ...` lines, continued with a trailing backslash) and the docstrings of imdb_lm/**/*.py
(example lines and inline commands).

Checks, by the command's program:
- `python -m imdb_lm.train ...`: Hydra's own argument parser (so its flags must come before the
  overrides), then the overrides are parsed by Hydra's override parser, config-group choices are
  checked, and the config is composed from conf/ as `--cfg job` would (in-process, one composition
  per value of each swept key; one real `--cfg job` subprocess below).
- `python -m imdb_lm.{predict,evaluate,explain,report,bench} ...`: parsed with
  imdb_lm/config/options.py `parse` and the tool's own OPTIONS (read from its source, so the check
  needs no torch), so an unknown or mistyped option fails.
- `make TARGET [VAR=value ...]`: TARGET must be a Makefile target and VAR one of its variables; the
  targets that run an imdb_lm tool are expanded with the Makefile's recipe and checked as above.
- Other programs must be on ALLOWED_PROGRAMS, with the reason they are not checked here.

Placeholders are substituted before checking (`substitute`): `<anything>` and `...` as a value
become a plain word, a bare `...` argument ("more arguments") is dropped, an optional part in
brackets (`[n=20]`) is taken as given, and the capital placeholders N, DIR, FILE and PATH as a
value become an example of the right type (PLACEHOLDER_VALUES).
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from imdb_lm.config.options import Option, parse
from imdb_lm.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {"predict": "imdb_lm/predict.py", "evaluate": "imdb_lm/evaluate.py",
         "explain": "imdb_lm/explain/__main__.py", "report": "imdb_lm/report/__main__.py",
         "report.publish": "imdb_lm/report/publish.py",
         "bench": "imdb_lm/bench/__main__.py", "gpu_check.prepare": "imdb_lm/gpu_check/prepare.py",
         "gpu_check.run": "imdb_lm/gpu_check/run.py", "gpu_check.merge": "imdb_lm/gpu_check/merge.py",
         "study.ood": "imdb_lm/study/ood.py", "generate": "imdb_lm/generate.py"}
# Programs this test does not run or parse, and why.
ALLOWED_PROGRAMS = {
    "tensorboard": "TensorBoard's own CLI (installed with the package); only --logdir is shown",
    "srun": "SLURM launcher: its own flags are the cluster's; the command it starts is checked",
    "sbatch": "SLURM submission: cluster-specific",
    "mlflow": "MLflow's own UI server",
    "optuna-dashboard": "Optuna's own dashboard server",
    "pip": "the package installer",
    "git": "version control",
    "nvidia-smi": "NVIDIA's GPU status tool",
    "/usr/bin/time": "GNU time, used to time a whole command (the command it times is checked)",
}
# Programs that run another command given after their own flags: that command is checked too.
WRAPPERS = ("srun", "/usr/bin/time")
# Commands that are usage synopses (alternatives, optional parts), not runnable lines.
ALLOWED_COMMANDS = {
    "python -m imdb_lm.predict ckpt=<run folder|.ckpt> text=\"...\" | input=<file>":
        "usage synopsis: text=... or input=... (alternatives)",
    "python -m imdb_lm.train [overrides]": "usage synopsis: [overrides] stands for any overrides",
}
PLACEHOLDER_VALUES = {"N": "20", "DIR": "out_dir", "FILE": "file.txt", "PATH": "path"}


@dataclass(frozen=True)
class Command:
    text: str
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


# ---- extraction ---------------------------------------------------------------------------------
COMMAND_START = re.compile(r"^(?:[A-Z_]+=\S+\s+)*(?:\.venv/bin/)?(?:python -m imdb_lm|make\s|srun\s|sbatch\s|"
                           r"tensorboard\s|mlflow\s|optuna-dashboard|pip\s|git\s|nvidia-smi|/usr/bin/time\s)")
INLINE = re.compile(r"`((?:\.venv/bin/)?python -m imdb_lm[^`]*|make [a-z][^`]*)`")


def _joined(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join backslash-continued lines; keep the first line's number."""
    out, pending, start = [], "", 0
    for number, line in lines:
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _inline(text: str, where: str) -> list[Command]:
    flat = re.sub(r"\s*\n\s*", " ", text)  # an inline command may wrap across lines
    return [Command(m.group(1).strip(), where) for m in INLINE.finditer(flat)]


def markdown_commands(path: Path) -> list[Command]:
    rel = path.relative_to(ROOT).as_posix()
    lines = path.read_text().splitlines()
    found, block, in_fence, prose = [], [], False, []
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            if in_fence:
                found += [Command(text.strip(), f"{rel}:{n}") for n, text in _joined(block)
                          if COMMAND_START.match(text.strip())]
                block = []
            in_fence = not in_fence
            continue
        if in_fence:
            block.append((number, line))
        elif line.startswith("    ") and COMMAND_START.match(line.strip()):
            found.append(Command(line.strip(), f"{rel}:{number}"))
        else:
            prose.append((number, line))
    # inline commands, paragraph by paragraph (a backticked command may wrap)
    paragraph: list[tuple[int, str]] = []
    for number, line in [*prose, (len(lines) + 1, "")]:
        if line.strip():
            paragraph.append((number, line))
            continue
        if paragraph:
            found += _inline("\n".join(t for _, t in paragraph), f"{rel}:{paragraph[0][0]}")
        paragraph = []
    return found


def yaml_commands(path: Path) -> list[Command]:
    rel = path.relative_to(ROOT).as_posix()
    found, comments = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append((number, stripped.lstrip("#").strip()))
    for number, text in _joined(comments):
        if COMMAND_START.match(text):
            found.append(Command(text, f"{rel}:{number}"))
        else:
            found += _inline(text, f"{rel}:{number}")
    return found


def docstring_commands(path: Path) -> list[Command]:
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        doc = ast.get_docstring(node, clean=False)
        if not doc:
            continue
        first = node.body[0].lineno
        lines = [(first + i, line) for i, line in enumerate(doc.splitlines())]
        for number, text in _joined(lines):
            if text.startswith((" ", "\t")) and COMMAND_START.match(text.strip()):
                found.append(Command(text.strip(), f"{rel}:{number}"))
        found += _inline(doc, f"{rel}:{first}")
    return found


def all_commands() -> list[Command]:
    found = markdown_commands(ROOT / "README.md")
    for path in sorted((ROOT / "docs").glob("*.md")):
        found += markdown_commands(path)
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        found += yaml_commands(path)
    for path in sorted((ROOT / "imdb_lm").rglob("*.py")):
        found += docstring_commands(path)
    return found


# ---- checking -----------------------------------------------------------------------------------
def substitute(text: str) -> str:
    text = re.sub(r"<[^<>]*>", "PLACEHOLDER", text)
    text = re.sub(r"=\.\.\.(?=\s|$)", "=PLACEHOLDER", text)
    text = re.sub(r"(?<=\s)\.\.\.(?=\s|$)", "", text)
    text = re.sub(r"(?<=\s)\[([^\[\]\s]+)\](?=\s|$)", r"\1", text)  # an optional part: [n=20]
    return re.sub(r"=(N|DIR|FILE|PATH)(?=\s|$)", lambda m: "=" + PLACEHOLDER_VALUES[m.group(1)], text)


def _constants(tree: ast.Module) -> dict:
    """The module's literal constants (a default or a list of choices taken from one: numbers, strings,
    tuples of them), for evaluating OPTIONS."""
    found = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            continue
        for target in node.targets:
            if isinstance(target, ast.Name):
                found[target.id] = value
    return found


@cache
def tool_options(tool: str) -> list[Option]:
    """The tool's OPTIONS list, evaluated from its source (no import: no torch)."""
    tree = ast.parse((ROOT / TOOLS[tool]).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "OPTIONS" for t in node.targets):
            names = {"Option": Option, "int": int, "float": float, "str": str, "bool": bool, "list": list,
                     **_constants(tree)}
            return eval(compile(ast.Expression(node.value), TOOLS[tool], "eval"), names)  # noqa: S307
    raise AssertionError(f"{TOOLS[tool]} has no OPTIONS list")


@cache
def makefile() -> tuple[set[str], set[str], dict[str, list[str]]]:
    """(targets, variables, recipe lines per target) of the Makefile."""
    targets, variables, recipes, current = set(), set(), {}, None
    numbered = enumerate((ROOT / "Makefile").read_text().splitlines())
    for _, line in _joined(list(numbered)):  # a recipe line continued with backslashes is one command
        if m := re.match(r"^([A-Z_]+)\s*[?:]?=", line):
            variables.add(m.group(1))
        elif m := re.match(r"^([a-z][\w-]*):", line):
            current = m.group(1)
            targets.add(current)
            recipes[current] = []
        elif line.startswith("\t") and current:
            recipes[current].append(line.strip())
    return targets, variables, recipes


def check_train(args: list[str]) -> list[list[str]]:
    """Check a train command line; return the override lists that were composed."""
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from imdb_lm.config.compose import CONF_DIR
    from imdb_lm.config.overrides import check_group_choices, one_line

    if any(a in ("--help", "-h", "--hydra-help") for a in args):
        return []
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            parsed_args = get_args_parser().parse_args(args)
    except SystemExit:
        raise UserError(f"Hydra rejects the arguments (its flags go before the overrides): "
                        f"{stderr.getvalue().strip().splitlines()[-1]}") from None
    overrides = parsed_args.overrides
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise UserError(f"cannot parse the overrides: {one_line(err)}") from None
    check_group_choices(parsed)
    # One composition with every swept key at its first value, and one per other value of a swept
    # config group (model=lstm,transformer: each model's options differ).
    sweeps = {i: list(o.sweep_string_iterator()) for i, o in enumerate(parsed) if o.is_sweep_override()}
    base = [f"{o.get_key_element()}={sweeps[i][0]}" if i in sweeps else overrides[i] for i, o in enumerate(parsed)]
    variants = [base]
    for i, values in sweeps.items():
        if not (CONF_DIR / parsed[i].key_or_group).is_dir():
            continue
        for value in values[1:]:
            variant = list(base)
            variant[i] = f"{parsed[i].get_key_element()}={value}"
            variants.append(variant)
    for variant in variants:
        composed(tuple(variant))
    return variants


@cache
def composed(overrides: tuple[str, ...]) -> None:
    from imdb_lm.config.compose import compose_train

    try:
        compose_train(list(overrides), with_hydra=True)
    except Exception as err:  # noqa: BLE001 - any composition error is the finding
        raise UserError(f"does not compose ({' '.join(overrides)}): {str(err).splitlines()[0]}") from None


def check_tool(tool: str, args: list[str]) -> None:
    options = tool_options(tool)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            parse(args, options, tool)
        except SystemExit as done:  # --help
            if done.code not in (0, None):
                raise UserError(f"{tool}: exit {done.code}") from None


def check_make(args: list[str]) -> None:
    targets, variables, recipes = makefile()
    names = [a for a in args if "=" not in a]
    given = dict(a.split("=", 1) for a in args if "=" in a)
    if not names:
        raise UserError("make without a target")
    for name in names:
        if name not in targets:
            raise UserError(f"make {name}: no such Makefile target ({', '.join(sorted(targets))})")
    for var in given:
        if var not in variables:
            raise UserError(f"make {var}=...: not a Makefile variable ({', '.join(sorted(variables))})")
    values = {"PY": "python", "PYTHON": "python", "SWEEP": "compare_quick", "RUNS": "outputs/multirun/SWEEP", "EXPLAIN": "20",
              "ARGS": ""} | given
    for name in names:
        for recipe in recipes[name]:
            if "-m imdb_lm." in recipe:
                line = re.sub(r"\$\((\w+)\)", lambda m: values.get(m.group(1), m.group(0)), recipe)
                check(Command(line, f"make {name}"))


def check(command: Command) -> None:
    """Raise UserError (naming the command) if the command would not be accepted."""
    text = command.text
    if text in ALLOWED_COMMANDS:
        return
    try:
        args = shlex.split(substitute(text), comments=True)
    except ValueError as err:
        raise UserError(f"{command}: cannot split it as a shell line ({err})") from None
    while args and re.match(r"^[A-Z_][A-Z0-9_]*=", args[0]):  # VAR=value prefixes
        args.pop(0)
    if not args:
        return
    program = args[0].removeprefix(".venv/bin/")  # the project's venv: the same programs
    try:
        if program in WRAPPERS:
            rest = args[1:]
            while rest and rest[0].startswith("-"):
                rest.pop(0)
            if rest:
                check(Command(shlex.join(rest), command.where))
            return
        if program in ALLOWED_PROGRAMS:
            return
        if program == "make":
            check_make(args[1:])
            return
        if program.endswith("python") and args[1:2] == ["-m"] and len(args) > 2:
            module = args[2]
            if module == "imdb_lm.train":
                check_train(args[3:])
                return
            tool = module.removeprefix("imdb_lm.")
            if tool in TOOLS:
                check_tool(tool, args[3:])
                return
        raise UserError(f"{program}: not a checked tool; check it or add it to ALLOWED_PROGRAMS with a reason")
    except UserError as err:
        raise UserError(f"{command}: {err}") from None


# ---- tests --------------------------------------------------------------------------------------
def test_every_documented_command_is_accepted():
    commands = all_commands()
    sources = {c.where.split(":")[0] for c in commands}
    assert "README.md" in sources and "docs/comparing.md" in sources
    assert any(s.startswith("conf/") for s in sources) and any(s.startswith("imdb_lm/") for s in sources)
    failures = []
    for command in commands:
        try:
            check(command)
        except UserError as err:
            failures.append(str(err))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("text", [
    "python -m imdb_lm.train experiment=compare_quick --multirun hydra/launcher=submitit_local",  # flag after overrides
    "python -m imdb_lm.train model=nosuchmodel",
    "python -m imdb_lm.train optimizer.lrr=0.1",
    "python -m imdb_lm.predict ckpt=outputs/runs/x --format jsonl --colour red",
    "python -m imdb_lm.report outputs/multirun/x --explain N",
    "python -m imdb_lm.bench --models bigru --set compile=true --iterations 3",
    "python -m imdb_lm.nosuchtool x=1",
    "make nosuchtarget",
    "make train NOSUCHVAR=1",
    "make sweep ARGS=\"model=nosuchmodel\"",
    "curl http://example.org",
])
def test_checker_rejects_broken_commands(text):
    with pytest.raises(UserError):
        check(Command(text, "test"))


@pytest.mark.parametrize("text", [
    "python -m imdb_lm.train --multirun experiment=compare_quick hydra/launcher=submitit_local",
    ".venv/bin/python -m imdb_lm.train model=gru trainer.max_epochs=12 ckpt_path=outputs/runs/<run>/checkpoints/last.ckpt",
    "python -m imdb_lm.predict ckpt=outputs/runs/<run> input=reviews.txt format=jsonl",
    "python -m imdb_lm.predict ckpt=outputs/runs/<run> input=reviews.txt --format jsonl",
    "python -m imdb_lm.report outputs/multirun/<sweep> explain=N",
    "python -m imdb_lm.bench models=bigru set=compile=true repeats=3",
    "make sweep SWEEP=compare ARGS=\"model=gru,transformer optimizer=adamw\"",
    "srun python -m imdb_lm.train trainer=ddp trainer.devices=4 trainer.num_nodes=2",
])
def test_checker_accepts_good_commands(text):
    check(Command(text, "test"))


def test_extraction_finds_each_kind(tmp_path, monkeypatch):
    doc = tmp_path / "docs" / "x.md"
    doc.parent.mkdir()
    doc.write_text("Run `python -m imdb_lm.report a\nexplain=3` or:\n\n```bash\nmake train ARGS=\"model=gru \\\n"
                   "    optimizer=sgd\"   # a comment\n# not a command\n```\n\n    make test\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    texts = [c.text for c in markdown_commands(doc)]
    assert texts == ['make train ARGS="model=gru      optimizer=sgd"   # a comment', "make test",
                     "python -m imdb_lm.report a explain=3"]
    conf = tmp_path / "conf" / "x.yaml"
    conf.parent.mkdir()
    conf.write_text("# Example:\n#   python -m imdb_lm.train --multirun model=gru \\\n#       optimizer=sgd\nseed: 1\n")
    assert [c.text for c in yaml_commands(conf)] == ["python -m imdb_lm.train --multirun model=gru  optimizer=sgd"]


def test_tool_options_read_from_source_match_the_module():
    from imdb_lm.explain.__main__ import OPTIONS  # a light module; the others import torch

    assert tool_options("explain") == OPTIONS


def test_real_cli_composes_a_documented_command_and_rejects_the_broken_form(tmp_path):
    # `--cfg job` and `--multirun` are exclusive in Hydra: compose one job of the documented sweep.
    good = [sys.executable, "-m", "imdb_lm.train", "--cfg", "job", "experiment=compare_quick",
            "hydra/launcher=submitit_local", "model=gru"]
    done = subprocess.run(good, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "train_limit: 1200" in done.stdout and "name: gru" in done.stdout
    # Hydra's flag after an override: its argument parser refuses the line before anything runs.
    broken = [sys.executable, "-m", "imdb_lm.train", "experiment=compare_quick", "--multirun",
              "hydra/launcher=submitit_local"]
    done = subprocess.run(broken, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "unrecognized arguments" in done.stderr
    assert not (tmp_path / "outputs").exists()


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_relative_links_of_the_docs_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
