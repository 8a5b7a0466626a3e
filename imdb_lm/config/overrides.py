"""Command-line overrides checked before Hydra starts, so a typo costs one line, not an hour.

- `model=foo`, `optimizer=bar` (any config group): one line listing the valid choices, sweeps too.
- A single run is composed once here: unknown keys, bad values (validate.py) and offline
  checkpoints fail before Hydra creates a run folder.
- `resume=auto` on a single run becomes `ckpt_path=<last.ckpt> hydra.run.dir=<its folder>`, so the
  run continues in its own folder and Lightning's child processes (which re-read the command
  line) make the same choice.
"""

from __future__ import annotations

from pathlib import Path

from imdb_lm.config.compose import CONF_DIR, compose_train
from imdb_lm.errors import UserError

# Hydra's own flags: leave such command lines to Hydra.
HYDRA_FLAGS = ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--resolve", "--package", "-p",
               "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--shell-completion",
               "-sc", "--experimental-rerun", "--version")
MULTIRUN_FLAGS = ("--multirun", "-m")


def one_line(err: BaseException) -> str:
    """Hydra and OmegaConf errors span lines (and indented detail); keep the sentences."""
    text = str(err)
    if err.__cause__ is not None and str(err.__cause__) not in text:  # Hydra keeps the reason there
        text += "\n" + str(err.__cause__)
    lines = [line.strip().rstrip(".") for line in text.splitlines() if line.strip()]
    keep = [line for line in lines if not line.startswith(("full_key:", "object_type", "reference_type"))]
    return "; ".join(keep or lines or [type(err).__name__])


def group_options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml"))


def check_group_choices(overrides) -> None:
    for override in overrides:
        group = override.key_or_group
        if override.is_delete() or group.startswith("hydra") or not (CONF_DIR / group).is_dir():
            continue
        values = (list(override.sweep_string_iterator()) if override.is_sweep_override()
                  else [override.value()])
        values = [v for value in values for v in (value if isinstance(value, list) else [value])]  # logger=[a,b]
        for value in values:
            if isinstance(value, str) and value != "null" and not (CONF_DIR / group / f"{value}.yaml").is_file():
                raise UserError(f"{group}={value}: no such {group}; choose one of "
                                f"{', '.join(group_options(group))}")


def task_option_hint(overrides) -> str | None:
    """For a config that did not compose: an option of a task that was not chosen (`lm.*` without
    task=lm) gets this line instead of Hydra's "Key 'lm' is not in struct"."""
    chosen = {str(o.value()) for o in overrides if o.key_or_group == "task" and not o.is_sweep_override()}
    for override in overrides:
        task = override.key_or_group.split(".", 1)[0]
        if "." in override.key_or_group and task not in chosen and (CONF_DIR / "task" / f"{task}.yaml").is_file():
            return (f"{override.key_or_group} is an option of task={task}; add task={task} "
                    f"(e.g. python -m imdb_lm.train task={task} model=gru_lm {override.input_line})")
    return None


def resume_arguments(cfg) -> list[str] | None:
    """What resume=auto means for this config, as overrides: [] starts a new run, None means the
    config's latest run already finished (nothing to do)."""
    from omegaconf import OmegaConf

    from imdb_lm.runs.resume import announce, plan_resume, runs_root

    hydra_cfg = OmegaConf.to_container(cfg.hydra, resolve=False)
    plan = plan_resume(cfg, [runs_root(hydra_cfg["run"]["dir"]), runs_root(hydra_cfg["sweep"]["dir"])])
    announce(plan)
    if plan.finished is not None:
        return None
    if plan.run_dir is None:
        return []
    return [f"ckpt_path={Path(plan.ckpt_path).resolve()}", f"hydra.run.dir={plan.run_dir.resolve()}"]


def check_train_argv(argv: list[str]) -> list[str] | None:
    """Validate `python -m imdb_lm.train` arguments; return them with resume=auto made explicit,
    or None when there is nothing to run (resume=auto and the run already finished)."""
    if any(arg.split("=", 1)[0] in HYDRA_FLAGS for arg in argv):
        return argv
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from imdb_lm.config.validate import validate_config
    from imdb_lm.loggers import check_sweep as check_sweep_loggers

    args = [a for a in argv if a not in MULTIRUN_FLAGS]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException as err:
        raise UserError(f"cannot parse the overrides: {one_line(err)}") from None
    check_group_choices(parsed)
    if len(args) != len(argv) or any(o.is_sweep_override() for o in parsed):
        check_sweep_loggers(parsed, compose_train)  # before Hydra makes the sweep folder
        return argv  # a sweep: each job is checked by train.run
    try:
        cfg = compose_train([a for a in args if not a.lstrip("+~").startswith("hydra")], with_hydra=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(task_option_hint(parsed) or one_line(err)) from None
    validate_config(cfg)
    if cfg.get("resume") == "auto":
        extra = resume_arguments(cfg)
        if extra is None:
            return None
        # Explicit from here on, so Lightning's child processes do not search again.
        return [a for a in argv if a.split("=", 1)[0] != "resume"] + extra
    return argv
