"""The thin `key=value` command line shared by predict, evaluate and explain.

Training is a Hydra app with a config tree; these tools only need a handful of options, so each
declares its defaults as a dict and this module parses `key=value` (dotted keys allowed, e.g.
`data.source=csv`) plus `--flag value` pairs, and turns a `UserError` into one `error:` line and
exit status 2, like `imdb_lm.train`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imdb_lm.errors import UserError


def parse(argv: list[str], defaults: dict[str, Any], usage: str,
          flags: dict[str, str] | None = None) -> DictConfig:
    """`flags` maps `--name` to the config key it sets (e.g. {"--format": "format"})."""
    flags = flags or {}
    dotlist: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            print(usage)
            sys.exit(0)
        if arg.startswith("--"):
            name, _, value = arg.partition("=")
            if name not in flags:
                raise UserError(f"unknown flag {name}; known: {', '.join(sorted(flags)) or 'none'} (see --help)")
            if not value:
                if not args:
                    raise UserError(f"{name} needs a value, e.g. {name} jsonl")
                value = args.pop(0)
            dotlist.append(f"{flags[name]}={value}")
            continue
        if "=" not in arg:
            raise UserError(f"argument {arg!r} is not key=value (e.g. ckpt=outputs/runs/<run>); see --help")
        dotlist.append(arg)
    cfg = OmegaConf.create(defaults)
    known = set(_keys(defaults))
    for item in dotlist:
        key = item.split("=", 1)[0]
        if key not in known and not any(key.startswith(k + ".") for k in _open_sections(defaults)):
            raise UserError(f"unknown option {key!r}; known: {', '.join(sorted(known))}")
    try:
        return OmegaConf.merge(cfg, OmegaConf.from_dotlist(dotlist))
    except Exception as err:  # noqa: BLE001 - a malformed value; say which
        raise UserError(f"cannot parse the arguments ({str(err).splitlines()[0]})") from None


def _keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys += _keys(value, prefix + key + ".")
    return keys


def _open_sections(tree: dict) -> list[str]:
    """Sections whose keys pass through unchecked (`data.*` overrides go to the data module)."""
    return [key for key, value in tree.items() if isinstance(value, dict) and not value]


def run_main(main: Callable[[DictConfig], Any], argv: list[str], defaults: dict, usage: str,
             flags: dict[str, str] | None = None) -> None:
    try:
        main(parse(argv, defaults, usage, flags))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
