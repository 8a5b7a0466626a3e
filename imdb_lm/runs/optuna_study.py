"""How the Optuna sweeper and its training jobs share a study: where it lives, and how a job says
it was pruned (the trial's user attribute PRUNED_AT, set by imdb_lm/callbacks/optuna_pruning.py).

The storage is one string that the sweeper, its jobs and `optuna-dashboard` all read:

- null: in memory, inside the sweeper process (its jobs cannot report to it, so nothing is pruned);
- a SQLAlchemy URL (`sqlite:///outputs/optuna.db`, `postgresql://user@host/db`): Optuna's RDB storage;
- any other string is a file path: Optuna's journal file storage, an append-only log with file
  locks, safe for several workers on a shared filesystem. `optuna-dashboard` reads the same two
  forms, so the string written to `optimization_results.yaml` opens the study as it is.

Relative paths are made absolute once, in the sweeper, so jobs started elsewhere (submitit) reach
the same study. Optuna is imported only when a storage is opened.
"""

from __future__ import annotations

import re
from pathlib import Path

from imdb_lm.errors import UserError

# The trial's user attribute that says the job stopped on the pruner's word (its value: the validation).
PRUNED_AT = "pruned_at_validation"
SQLITE_PREFIX = "sqlite:///"
SQLITE_HEADER = b"SQLite format 3\x00"
_URL = re.compile(r"^[A-Za-z][\w+.-]*://")
_SCHEME_WITHOUT_SLASHES = re.compile(r"^[A-Za-z][\w+.-]+:(?!//)")  # sqlite:x.db; a drive letter is one char


def resolve(storage: str | None, option: str = "hydra.sweeper.storage") -> str | None:
    """The storage with relative file paths made absolute; a malformed string raises UserError."""
    if storage is None or str(storage).strip() == "":
        return None
    storage = str(storage).strip()
    if _URL.match(storage):
        if storage.startswith(SQLITE_PREFIX):
            path = storage[len(SQLITE_PREFIX):]
            if path and path != ":memory:" and not path.startswith("/"):
                return SQLITE_PREFIX + str(Path(path).resolve())
        return storage
    if _SCHEME_WITHOUT_SLASHES.match(storage):
        raise UserError(f"{option}={storage}: not a storage URL; write sqlite:///path/to/study.db (three "
                        f"slashes) for SQLite, or a plain file path for a journal file")
    path = Path(storage).expanduser().resolve()
    if path.is_dir():
        raise UserError(f"{option}={storage} is a folder; give a journal file such as {storage}/optuna.journal")
    if path.is_file() and path.read_bytes()[:len(SQLITE_HEADER)] == SQLITE_HEADER:
        raise UserError(f"{option}={storage} is a SQLite database; write {SQLITE_PREFIX}{path}")
    return str(path)


def is_journal(storage: str | None) -> bool:
    return storage is not None and not _URL.match(storage)


def open_storage(storage: str | None):
    """An Optuna storage object (or None: in memory) for a string `resolve` returned."""
    if storage is None:
        return None
    if not is_journal(storage):
        return storage  # Optuna builds its RDBStorage from the URL
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(storage))
