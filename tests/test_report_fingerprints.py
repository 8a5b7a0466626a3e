"""The report compares runs on the same test reviews and the same parent train split; nested train
subsets of that parent (data-efficiency curves, low-fidelity grids) are comparable, and so are val
subsets (a low-fidelity grid validates on fewer reviews), but not two different vals of one size."""

from __future__ import annotations

import pytest

from imdb_lm.errors import UserError
from imdb_lm.report.collect import check_fingerprints


def fp(count: int, digest: str) -> dict:
    return {"count": count, "digest": digest}


VAL, TEST, PARENT = fp(2496, "v"), fp(2499, "t"), fp(20005, "p")


def record(name: str, train: dict, val=VAL, test=TEST, parent=PARENT) -> dict:
    splits = {"train": train, "val": val, "test": test}
    if parent is not None:
        splits["train_full"] = parent
    return {"run_dir": name, "splits": splits}


def test_nested_train_subsets_of_one_parent_are_compared():
    check_fingerprints([record("n500", fp(500, "a")), record("n1000", fp(1000, "b")),
                        record("all", fp(20005, "p"))])


def test_a_record_without_train_full_counts_its_train_split_as_the_parent():
    check_fingerprints([record("old-full-run", fp(20005, "p"), parent=None), record("n500", fp(500, "a"))])


@pytest.mark.parametrize("changed, split", [({"val": fp(2496, "other")}, "val"), ({"test": fp(10, "x")}, "test"),
                                            ({"parent": fp(20005, "other")}, "train_full")])
def test_runs_on_other_val_test_or_parent_splits_are_refused(changed, split):
    with pytest.raises(UserError, match=f"differ in the {split} split.*odd"):
        check_fingerprints([record("a", fp(500, "a")), record("b", fp(500, "a")),
                            record("odd", fp(500, "a"), **changed)])


def test_a_val_subset_of_the_low_fidelity_grid_is_compared_with_the_whole_val():
    check_fingerprints([record("grid-a", fp(1000, "g"), val=fp(500, "s")), record("grid-b", fp(1000, "g"), val=fp(500, "s")),
                        record("promoted", fp(20005, "p"))])
