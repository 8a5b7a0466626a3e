"""`python -m imdb_lm.train --help`: every option with its default and a line of help, at once.

Hydra's own help lists the config groups by composing every option of every group (~10 s on a
small CPU) and shows values without explanations. This one reads the same `conf/` files: the
composed defaults give each option's value, the comment beside or above its line in the YAML gives
its help. (`--hydra-help` still shows Hydra's.)
"""

from __future__ import annotations

import re

from omegaconf import OmegaConf

from imdb_lm.config.compose import CONF_DIR, compose_train

KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w.]*):(?P<value>[^#]*?)\s*(#\s*(?P<comment>.*))?$")
NOT_OPTIONS = ("hydra", "base")  # Hydra's own groups; presets' shared bases


def yaml_comments(text: str, prefix: str = "") -> dict[str, str]:
    """dotted key -> the comment on its line, else the comment block right above it."""
    comments, stack, above = {}, [], []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = KEY_LINE.match(line)
        if not match:
            above = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        key = prefix + ".".join(k for _, k in stack)
        text_ = match["comment"] or " ".join(a for a in above if a and not a.startswith("@package"))
        if text_:
            comments[key] = text_
            if match["value"].strip().startswith("{"):  # a flow mapping: its keys share the comment
                comments[key + ".*"] = text_
        above = []
    return comments


def _all_comments() -> dict[str, str]:
    comments = yaml_comments((CONF_DIR / "train.yaml").read_text())
    # A group's shared bases first: their comments describe an option for every preset.
    for path in sorted(CONF_DIR.rglob("*.yaml"), key=lambda p: ("base" not in p.parent.parts, p)):
        group = path.parent.relative_to(CONF_DIR).as_posix()
        if path.parent == CONF_DIR or group.split("/")[0] in ("hydra", "experiment", "hparams_search", "debug"):
            continue
        section = group.split("/")[0]
        source = path.read_text()
        # A `@package _global_` file (conf/task/) sets top-level keys: `task`, `lm.*`, `callbacks.*`.
        prefix = "" if "@package _global_" in source.split("\n", 1)[0] else f"{section}."
        for key, text in yaml_comments(source, prefix=prefix).items():
            comments.setdefault(key, text)
    return comments


def _flatten(node, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(node, dict) and node and not prefix.endswith(".lr"):
        items = []
        for key, value in node.items():
            items += _flatten(value, f"{prefix}{key}.")
        return items
    return [(prefix.rstrip("."), node)]


def groups() -> dict[str, list[str]]:
    found = {}
    for folder in sorted(p for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in NOT_OPTIONS):
        found[folder.name] = sorted(p.stem for p in folder.glob("*.yaml"))
    return found


def train_help(summary: str, overrides: list[str] | None = None) -> str:
    """The --help text; `overrides` (e.g. ["model=transformer"]) list that composition's options."""
    cfg = compose_train(list(overrides or []))
    raw = OmegaConf.to_container(cfg, resolve=False)
    comments = _all_comments()
    lines = [summary.strip(), "", "Config groups (group=option; the default first where there is one):"]
    listed = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "train.yaml"))["defaults"]
    defaults = {k: v for d in listed if isinstance(d, dict) for k, v in d.items()}
    for group, options in groups().items():
        default = defaults.get(group)
        ordered = ([default] if default in options else []) + [o for o in options if o != default]
        lines.append(f"  {group}: {', '.join(ordered)}")
    lines += ["", "Options (key=value; the default shown, ${...} is taken from another option):"]
    for key, value in _flatten({k: v for k, v in raw.items() if k != "hydra"}):
        if key.endswith("_target_"):
            continue
        shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        help_text = comments.get(key) or comments.get(key.rsplit(".", 1)[0] + ".*", "")
        if value == {} and not help_text:  # e.g. logger=none
            help_text = f"empty: no {key.rsplit('.', 1)[-1]} configured"
        lines.append(f"  {key}={shown}" + (f"\n      {help_text}" if help_text else ""))
    lines += ["", "Hydra's flags (--multirun, --cfg job, ...): python -m imdb_lm.train --hydra-help"]
    return "\n".join(lines)
