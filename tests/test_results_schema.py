"""The versioned run record: version 2 may say `pruned`; records of version 1 are still read."""

from __future__ import annotations

import json

import pytest

from imdb_lm.runs.records import SCHEMA_VERSION, read_metrics, write_metrics

RECORD = {"status": "completed", "model": {"name": "gru"}, "hparams": {"lr": 0.001}, "splits": {},
          "metrics": {"best_val_acc": 0.8}, "timing": {}, "env": {}}


def test_a_pruned_record_is_written_as_version_2(tmp_path):
    write_metrics(tmp_path, {**RECORD, "status": "pruned", "error": "pruned by MedianPruner at validation 0"})
    record = read_metrics(tmp_path)
    assert SCHEMA_VERSION == 2 and record["schema_version"] == 2 and record["status"] == "pruned"


def test_a_version_1_record_is_still_read(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"schema_version": 1, **RECORD}))
    record = read_metrics(tmp_path)
    assert record["schema_version"] == 1 and record["metrics"]["best_val_acc"] == 0.8
    assert record["run_dir"] == str(tmp_path)


@pytest.mark.parametrize("version", [None, 0, 3])
def test_other_versions_are_refused(tmp_path, version):
    (tmp_path / "metrics.json").write_text(json.dumps({"schema_version": version, **RECORD}))
    with pytest.raises(ValueError, match=f"schema_version {version} is not one of"):
        read_metrics(tmp_path)


def test_an_unknown_status_is_refused(tmp_path):
    with pytest.raises(ValueError, match="status must be one of"):
        write_metrics(tmp_path, {**RECORD, "status": "skipped"})
    assert not (tmp_path / "metrics.json").exists()
