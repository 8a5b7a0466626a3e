"""`imdb_lm.explain` through the real CLI: a BiGRU and the bundled MiniLM explained on the same
test reviews, plus the attributions the trainer logs to TensorBoard."""

from __future__ import annotations

import json

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import run_cli
from tests.trained_runs import trained_run


def test_explain_two_families_on_the_same_reviews(cache_dir, tmp_path):
    rnn, transformer = trained_run(cache_dir, "bigru"), trained_run(cache_dir, "transformer")
    page = tmp_path / "page.html"
    proc = run_cli("imdb_lm.explain", f"ckpt=[{rnn},{transformer}]", "n=3", "show=2", "scan=16", "n_steps=16",
                   "random_repeats=2", f"out={page}", cwd=tmp_path, cache=cache_dir)
    assert "integrated_gradients" in proc.stdout and "attention_rollout" in proc.stdout
    rnn_rec = json.loads((rnn / "explain.json").read_text())
    tf_rec = json.loads((transformer / "explain.json").read_text())
    assert rnn_rec["reviews"] == tf_rec["reviews"] and len(rnn_rec["reviews"]) == 3
    assert set(rnn_rec["faithfulness"]) == {"integrated_gradients"}
    assert set(tf_rec["faithfulness"]) == {"integrated_gradients", "attention_rollout"}
    for rec in (rnn_rec, tf_rec):
        assert rec["completeness"] < 0.05  # sum of IG scores ~ F(x) - F(baseline)
        for scores in rec["faithfulness"].values():
            assert len(scores["curve"]) == 5 and scores["aopc_gain"] == scores["aopc"] - scores["random_aopc"]
        assert [r["hash"] for r in rec["per_review"]] == rec["reviews"]
    html = page.read_text()
    assert "bigru" in html and "transformer" in html and "attention rollout" in html
    assert html.count("class='review'") >= 3 and "data:image/png;base64," in html
    assert "src='http" not in html and 'src="http' not in html  # self-contained
    assert (rnn / "explain.html").is_file() and (transformer / "explain.html").is_file()


def test_training_logs_attributions_to_tensorboard(cache_dir):
    run = trained_run(cache_dir, "bigru")
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"tensors": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"attributions/review_0", "attributions/review_3"} <= set(tags["images"])
    text = [t for t in tags["tensors"] if t.startswith("attributions/review_0")]
    assert text
    body = events.Tensors(text[0])[0].tensor_proto.string_val[0].decode()
    assert "P(positive)" in body and "**" in body
