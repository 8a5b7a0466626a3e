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

from imdb_lm.errors import UserError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
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


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="train"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def resume_arguments(cfg) -> list[str] | None:
    """What resume=auto means for this config, as overrides: [] starts a new run, None means the
    config's latest run already finished (nothing to do)."""
    from omegaconf import OmegaConf

    from imdb_lm.config_key import config_key
    from imdb_lm.resume import latest_run, runs_root

    hydra_cfg = OmegaConf.to_container(cfg.hydra, resolve=False)
    roots = [runs_root(hydra_cfg["run"]["dir"]), runs_root(hydra_cfg["sweep"]["dir"])]
    previous = latest_run(roots, config_key(cfg))
    if previous is not None and previous.finished:
        print(f"resume=auto: the latest run of this config, {previous.run_dir.resolve()}, already "
              f"finished ({previous.status}); nothing to resume")
        return None
    if previous is None or not previous.resumable:
        print("resume=auto: no interrupted run of this config; starting a new one")
        return []
    run_dir, checkpoint = previous.run_dir.resolve(), previous.checkpoint.resolve()
    print(f"resume=auto: continuing {run_dir} from {checkpoint}")
    return [f"ckpt_path={checkpoint}", f"hydra.run.dir={run_dir}"]


def check_train_argv(argv: list[str]) -> list[str] | None:
    """Validate `python -m imdb_lm.train` arguments; return them with resume=auto made explicit,
    or None when there is nothing to run (resume=auto and the run already finished)."""
    if any(arg.split("=", 1)[0] in HYDRA_FLAGS for arg in argv):
        return argv
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from imdb_lm.loggers import check_sweep as check_sweep_loggers
    from imdb_lm.validate import validate_config

    args = [a for a in argv if a not in MULTIRUN_FLAGS]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException as err:
        raise UserError(f"cannot parse the overrides: {one_line(err)}") from None
    check_group_choices(parsed)
    if len(args) != len(argv) or any(o.is_sweep_override() for o in parsed):
        check_sweep_loggers(parsed, _compose)  # before Hydra makes the sweep folder
        return argv  # a sweep: each job is checked by train.run
    try:
        cfg = _compose([a for a in args if not a.lstrip("+~").startswith("hydra")])
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(one_line(err)) from None
    validate_config(cfg)
    if cfg.get("resume") == "auto":
        extra = resume_arguments(cfg)
        if extra is None:
            return None
        # Explicit from here on, so Lightning's child processes do not search again.
        return [a for a in argv if a.split("=", 1)[0] != "resume"] + extra
    return argv
