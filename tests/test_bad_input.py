"""Every bad input ends in one line naming the option or file and the fix, a non-zero exit, and
nothing written: no run folder, no cache entry."""

from __future__ import annotations

import pytest

from imdb_lm.config.overrides import check_train_argv
from imdb_lm.errors import UserError
from tests.helpers import TINY, run_cli, run_dirs
from tests.reliability_args import TINY_GRU


def assert_refused(proc, *expected: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for text in expected:
        assert text in errors[0], errors[0]


def assert_nothing_written(cwd, cache) -> None:
    runs = cwd / "outputs"
    assert not runs.exists() or not [p for p in runs.rglob("*") if p.is_file()], list(runs.rglob("*"))
    if cache.exists():  # lock files may stay; no cache entry, complete or not
        assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def refuse(tmp_path, *args: str, cache=None):
    cache = cache or tmp_path / "cache"
    proc = run_cli("imdb_lm.train", *TINY, *args, cwd=tmp_path, cache=cache, check=False, timeout=300)
    return proc, cache


# Through the real CLI: one line on stderr, exit code 2, no folder, no cache.
@pytest.mark.parametrize(("args", "expected"), [
    (["model=foo"], ["model=foo", "choose one of", "bigru", "transformer"]),
    (["--multirun", "optimizer=adam,bar"], ["optimizer=bar", "adam, adamw, rmsprop, sgd"]),
    (["optimizer.lr=0"], ["optimizer.lr=0", "positive"]),
    (["compile=yes"], ["compile=yes", "true or false"]),
    (["data.batch_size=0"], ["data.batch_size=0", "positive integer"]),
])
def test_cli_refuses_bad_option_in_one_line_before_writing(tmp_path, args, expected):
    proc, cache = refuse(tmp_path, *args)
    assert_refused(proc, *expected)
    assert proc.returncode == 2
    assert_nothing_written(tmp_path, cache)


# The same check the CLI runs before Hydra starts (check_train_argv), called directly: no process
# start-up per case. It raises the UserError that the CLI prints as its one line.
@pytest.mark.parametrize(("args", "expected"), [
    (["optimizer=bar"], ["optimizer=bar", "adam, adamw, rmsprop, sgd"]),
    (["optimizer.lr=-0.001"], ["optimizer.lr=-0.001", "positive"]),
    (["data.batch_size=-8"], ["data.batch_size=-8", "positive integer"]),
    (["data.max_length=4"], ["data.max_length=4", "too small"]),
    (["model=transformer", "data.max_length=1024"], ["data.max_length=1024", "data.max_length<=512"]),
    (["data.source=csv", "data.path=missing.csv"], ["data.path=missing.csv", "no such file"]),
    (["data.source=aclimdb"], ["data.source=aclimdb needs data.path"]),
    (["model=bert_base"], ["model.pretrained=google-bert/bert-base-uncased", "unreachable", "model=transformer"]),
    (["optimizer.lrr=0.1"], ["optimizer.lrr", "+optimizer.lrr=0.1"]),
    (["data.max_length=[1"], ["cannot parse the overrides"]),
    (["resume=yes"], ["resume=yes", "resume=auto"]),
    (["ckpt_path=missing.ckpt"], ["ckpt_path=missing.ckpt", "no such file"]),
])
def test_bad_option_is_refused_before_hydra_starts(tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("IMDB_LM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError) as err:
        check_train_argv([*TINY, *args])
    message = str(err.value)
    assert "\n" not in message
    for text in expected:
        assert text in message, message
    assert_nothing_written(tmp_path, tmp_path / "cache")


CSV_CASES = {
    "no_columns": (b"review,sentiment\ngreat film,1\n", ["missing column(s)", "data.text_column"]),
    "bad_label": (b"text,label\ngreat film,1\nawful film,maybe\n", ["row 3", "'maybe'", "0/1 or neg/pos"]),
    "empty_review": (b"text,label\ngreat film,pos\n\"  \",neg\n", ["row 3", "empty review"]),
    "undecodable": (b"text,label\ngreat film,1\nbad \xff\xfe bytes,0\n", ["line 3", "not valid UTF-8"]),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_bad_csv_is_refused_without_a_cache_entry(tmp_path, case):
    content, expected = CSV_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(content)
    proc, cache = refuse(tmp_path, "data.source=csv", f"data.path={path}")
    assert_refused(proc, str(path), *expected)
    assert_nothing_written(tmp_path, cache)


@pytest.fixture(scope="module")
def gru_checkpoint(tmp_path_factory, cache_dir):
    cwd = tmp_path_factory.mktemp("gru")
    run_cli("imdb_lm.train", *TINY_GRU, "trainer.max_epochs=1", cwd=cwd, cache=cache_dir)
    (run_dir,) = run_dirs(cwd)
    return run_dir / "checkpoints" / "last.ckpt"


TRANSFORMER = [*TINY, "model=transformer", "logger=none", "callbacks.lr_monitor=null"]


@pytest.mark.parametrize(("args", "expected"), [
    (TRANSFORMER, ["is a recurrent model (gru)", "transformer model", "use model=gru"]),
    ([*TINY_GRU, "data.vocab_size=500"], ["different vocabulary"]),
    ([*TINY_GRU, "data.val_limit=64"], ["split fingerprint mismatch (val)"]),
    ([*TINY_GRU, "model.hidden_size=32"], ["weights do not fit", "model.*"]),
], ids=["family", "vocabulary", "split", "architecture"])
def test_checkpoint_that_does_not_fit_is_refused(tmp_path, cache_dir, gru_checkpoint, args, expected):
    proc = run_cli("imdb_lm.train", *args, "trainer.max_epochs=1", f"ckpt_path={gru_checkpoint}",
                   cwd=tmp_path, cache=cache_dir, check=False, timeout=300)
    assert_refused(proc, f"ckpt_path={gru_checkpoint}", *expected)
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("*.json"))
    assert not list((tmp_path / "outputs").rglob("*.ckpt"))
    assert not list(cache_dir.glob(".tmp-*"))
