"""The config key: one stable id of what a training config computes, shared by `resume=auto`
(which run to continue), `skip_completed` (which finished job to reuse) and the report (which
records are the same job).

It hashes the resolved config without the keys that only say where a run is stored or how this
bookkeeping behaves. Values that refer to a location (`${paths.…}`, `${hydra:…}`) are dropped
before resolving, so moving the outputs or the cache does not change the key, while every setting
that changes the result (model, data limits, lengths, optimizer, seed, …) does. Training writes the
key into `config_key.txt` and `metrics.json`, so finished runs are matched by reading, not re-hashing.
"""

from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

# Where and how a run is stored or scheduled, not what it trains.
NOT_IN_KEY = ("paths", "hydra", "resume", "ckpt_path", "skip_completed", "results_dirs", "optuna_trial")
LOCATION_REFS = ("${paths.", "${hydra:")


def _drop_locations(node):
    if isinstance(node, dict):
        return {k: _drop_locations(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_drop_locations(v) for v in node]
    if isinstance(node, str) and any(ref in node for ref in LOCATION_REFS):
        return None
    return node


def config_key(cfg: DictConfig) -> str:
    """A stable id of what a config trains: the resolved config without locations and bookkeeping."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    raw = _drop_locations({k: v for k, v in raw.items() if k not in NOT_IN_KEY})
    resolved = OmegaConf.to_container(OmegaConf.create(raw), resolve=True)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:20]
