"""Fixtures shared by the whole suite (helpers live in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One tokenization cache for the session, so each tiny config is tokenized once."""
    return tmp_path_factory.mktemp("cache")
