"""Fixtures shared by the whole suite (helpers live in tests/helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import worker_threads


def pytest_configure(config):
    threads = worker_threads()
    if threads:  # this worker's own torch work (the in-process tests) shares the cores too
        import torch

        torch.set_num_threads(threads)


def session_root(tmp_path_factory) -> Path:
    """The folder every test worker of this session shares (pytest-xdist gives each worker its own
    temporary folder below it), so that shared artefacts are made once, not once per worker."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One tokenization cache for the whole session, workers included (its builds are file-locked),
    so each tiny config is tokenized once."""
    cache = session_root(tmp_path_factory) / "cache"
    cache.mkdir(exist_ok=True)
    return cache
