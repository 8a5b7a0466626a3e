"""The one command-line style of the tools beside training: predict, evaluate, explain, report, bench.

Training is a Hydra app (`key=value` overrides of a config tree). The tools take the same
`key=value` form over a short, declared list of options, so one habit serves every command:

    python -m imdb_lm.predict ckpt=outputs/runs/<run> text="A fine film."
    python -m imdb_lm.report outputs/multirun/<sweep> explain=20

`--key value`, `--key=value` and a bare `--flag` (true) spell the same options (dashes read as
underscores), so scripts written against the earlier flags keep working. A tool may declare one
positional option (the report's run folders). `--help` lists every option with its default and a
line of help; an unknown option is a one-line error naming the valid ones. Hand-written because
argparse has no `key=value` form and Hydra would need a config tree per tool for a handful of flags.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imdb_lm.errors import UserError


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    help: str
    kind: type | None = None  # int, float, str, bool or list; None: the default's type (any when None)
    positional: bool = False  # bare arguments are collected into this (list) option
    repeat: bool = False  # given several times, the values are collected into a list
    section: bool = False  # `name.key=value` pass through unchecked (e.g. evaluate's data.*)

    @property
    def type(self) -> type | None:
        if self.kind is not None:
            return self.kind
        return None if self.default is None else type(self.default)


def usage(summary: str, options: Sequence[Option]) -> str:
    lines = [summary.strip(), "", "Options (key=value; --key value works too):"]
    for o in options:
        shown = f"{o.name}.KEY=VALUE" if o.section else (
            f"{o.name}=..." if o.default in (None, [], "") else f"{o.name}={_show(o.default)}")
        if o.positional:
            shown = f"[{o.name.upper()} ...]"
        lines.append(f"  {shown:<26} {o.help}")
    return "\n".join(lines)


def _show(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _check_type(option: Option, value) -> None:
    kind = option.type
    if value is None or kind is None or option.section:
        return
    ok = {int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, int | float) and not isinstance(value, bool),
          bool: isinstance(value, bool), str: isinstance(value, str | int | float) and not isinstance(value, bool),
          list: isinstance(value, list | str)}.get(kind, True)
    if not ok:
        wanted = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
                  list: "a list"}.get(kind, kind.__name__)
        raise UserError(f"{option.name}={_show(value)} must be {wanted}")


def parse(argv: Sequence[str], options: Sequence[Option], summary: str) -> DictConfig:
    by_name = {o.name: o for o in options}
    positional = next((o for o in options if o.positional), None)
    given: dict[str, Any] = {}
    sections: list[str] = []
    args = list(argv)

    def unknown(name: str) -> UserError:
        valid = ", ".join(o.name for o in options if not o.positional)
        return UserError(f"unknown option {name!r}; valid options: {valid} (see --help)")

    def put(name: str, raw: str) -> None:
        if "." in name and by_name.get(name.split(".", 1)[0], Option("", None, "")).section:
            sections.append(f"{name}={raw}")
            return
        option = by_name.get(name)
        if option is None or option.positional:
            raise unknown(name)
        if option.repeat:
            given.setdefault(name, []).append(raw)
            return
        try:
            value = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={raw}"]))["v"]
        except Exception as err:  # noqa: BLE001 - a malformed value; say which
            raise UserError(f"{name}={raw}: cannot parse the value ({str(err).splitlines()[0]})") from None
        if option.type is str and value is not None and not isinstance(value, str):
            value = raw  # keep what was typed: a name that looks like a number stays a name
        _check_type(option, value)
        given[name] = value

    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            print(usage(summary, options))
            sys.exit(0)
        if arg.startswith("--"):
            name, eq, raw = arg[2:].partition("=")
            name = name.replace("-", "_")
            option = by_name.get(name)
            if option is None:
                raise unknown(arg)
            if not eq:
                if option.type is bool and (not args or args[0].lower() not in ("true", "false")):
                    raw = "true"  # a bare --flag
                elif not args:
                    raise UserError(f"{arg} needs a value (see --help)")
                else:
                    raw = args.pop(0)
            put(name, raw)
        elif "=" in arg and not arg.startswith(("/", ".")):
            name, _, raw = arg.partition("=")
            put(name, raw)
        elif positional is not None:
            given.setdefault(positional.name, []).append(arg)
        else:
            raise UserError(f"argument {arg!r} is not key=value (see --help)")
    values = {o.name: given.get(o.name, {} if o.section else o.default) for o in options}
    cfg = OmegaConf.create(values)
    if sections:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(sections))
    return cfg


def run_main(main: Callable[[DictConfig], Any], argv: Sequence[str], options: Sequence[Option],
             summary: str) -> Any:
    """Parse, run, and turn a UserError into one `error:` line and exit status 2."""
    try:
        return main(parse(argv, options, summary))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
