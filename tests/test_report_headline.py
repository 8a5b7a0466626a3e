"""The README's study headline: generated from the records, written between its marker lines, and
the committed README's block is what the committed records give."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from imdb_lm.errors import UserError
from imdb_lm.report import analyze, headline, write_report
from tests.helpers import run_cli
from tests.study_records import write_study

ROOT = Path(__file__).resolve().parents[1]
PAGE = f"# Project\n\nIntro.\n\n{headline.START}\nold table\n{headline.END}\n\n## More\n"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_study(tmp_path_factory.mktemp("headline") / "runs")


def test_the_block_names_each_familys_selected_setting_and_the_seed_level_verdict(study, tmp_path):
    page = tmp_path / "README.md"
    page.write_text(PAGE)
    write_report(analyze([study], resamples=500, seed=0), tmp_path / "report", markdown=tmp_path / "docs" / "study.md",
                 headline_page=page)
    text = page.read_text()
    assert text.startswith("# Project\n\nIntro.\n\n" + headline.START) and text.endswith(headline.END + "\n\n## More\n")
    assert "old table" not in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "family" not in line]
    assert rows == [
        "| RNN from scratch | gru: adam, lr 0.002, batch 64, 5 epochs | 3 | 75.0 ± 0.0 | 65.0 ± 0.0 (3) | 100 | 2.0 |",
        "| pretrained transformer, fine-tuned | transformer: adamw, lr 5e-05, batch 16, 5 epochs | 3 | 85.0 ± 0.0 "
        "| 80.0 ± 0.0 (3) | 1000 | 20.0 |"]
    assert ("The fine-tuned transformer is reliably more accurate than the gru trained from scratch: +10.0 points "
            "(85.0% vs 75.0%) over 3 + 3 seeds, Welch p < 0.001 (decision rules v3), 95% two-level bootstrap "
            "interval") in text
    assert "on the same 200 test reviews." in text
    assert "Fidelity: 20,000 train reviews, 5 epochs;" in text
    assert "no interleaved bench of the two yet: `make study-speed`" in text  # none in these folders
    assert "[docs/study.md](docs/study.md)" in text


def test_with_an_interleaved_bench_the_block_gives_its_speed_ratios(tmp_path):
    from tests.study_records import benched_figures, write_bench

    root = write_study(tmp_path / "runs")
    write_bench(root, {"gru": benched_figures(50.0, 2.0), "transformer": benched_figures(400.0, 15.0)})
    block = headline.markdown(analyze([root], resamples=300, seed=0), "constructed", "study.md")
    assert "the report's speed ratios come from one interleaved bench" in block
    assert ("In one interleaved bench on one machine, transformer takes 8x the training time per token "
            "and 7.5x the single-review latency of gru.") in block


def test_with_the_ablation_the_block_answers_the_course_claims_as_the_findings_do(tmp_path):
    from tests.test_report_contrasts import write_ablation

    root = write_ablation(write_study(tmp_path / "runs"))
    analysis = analyze([root], resamples=300, seed=0)
    block = headline.markdown(analysis, "constructed", "study.md")
    findings = write_report(analysis, tmp_path / "report")["markdown"].read_text()
    claims = [line for line in block.splitlines() if line.startswith("The claim that at equal parameter counts")]
    assert len(claims) == 1 and "The claim that RNNs are slower to train" in claims[0]
    prefix = "- What makes the difference: "
    said = [line.removeprefix(prefix) for line in findings.splitlines()
            if line.startswith((prefix + "The claim that", prefix + "That was measured on"))]
    assert claims[0] == " ".join(said)  # the findings' own sentences, word for word
    assert "(what makes the difference, sensitivity" in block


def test_without_the_ablation_the_block_makes_no_claim(study):
    block = headline.markdown(analyze([study], resamples=300, seed=0), "constructed", "study.md")
    assert "The claim that" not in block


def test_a_page_without_the_markers_is_refused_before_anything_is_written(study, tmp_path):
    page = tmp_path / "README.md"
    page.write_text("# Project\n")
    result = run_cli("imdb_lm.report", str(study), f"out={tmp_path / 'report'}", f"headline={page}",
                     cwd=tmp_path, cache=tmp_path / "cache", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: headline={page} has no headline block: add the line '{headline.START}' and below it "
        f"'{headline.END}' where the table goes"]
    assert page.read_text() == "# Project\n" and not (tmp_path / "report").exists()


def test_no_headline_until_both_families_have_a_selected_setting(tmp_path):
    from tests.study_records import correct_at, write_run
    write_run(tmp_path / "runs", "gru", model="gru", family="recurrent", val_acc=0.8, correct=correct_at(0.8))
    page = tmp_path / "README.md"
    page.write_text(PAGE)
    with pytest.raises(UserError, match="needs a selected setting of both families"):
        write_report(analyze([tmp_path / "runs"], resamples=200), tmp_path / "report", headline_page=page)
    assert page.read_text() == PAGE


def test_the_committed_readme_headline_is_what_the_committed_records_give(tmp_path, monkeypatch):
    if not (ROOT / "docs" / "study.md").is_file() or headline.block_of(ROOT / "README.md") is None:
        pytest.skip("no study published in docs/study yet")
    page = tmp_path / "README.md"
    page.write_text(PAGE)
    monkeypatch.chdir(ROOT)  # the documented command runs from the repo root
    analysis = analyze(["docs/study"], resamples=10_000, seed=0)
    block = headline.markdown(analysis, analysis.fidelity["full"], "docs/study.md")
    assert block == headline.block_of(ROOT / "README.md")
    # The headline's seed-level test, recomputed independently: each seed's test accuracy as its record
    # states it (not the outcome bits the report pairs), through scipy's own Welch test.
    accuracy = {family: [json.loads((Path(d) / "metrics.json").read_text())["metrics"]["test"]["acc"]
                         for d in analysis.best_family[family]["run_dirs"]] for family in ("transformer", "recurrent")}
    welch = analysis.comparison["welch"]
    reference = stats.ttest_ind(accuracy["transformer"], accuracy["recurrent"], equal_var=False)
    # The report scores every seed on the reviews all runs share (the outcome bits; 2,490 here), a record on its
    # own test reviews: the two agree to within that difference, not bit for bit.
    assert welch.p_value == pytest.approx(reference.pvalue, rel=0.25)
    assert welch.diff == pytest.approx(np.mean(accuracy["transformer"]) - np.mean(accuracy["recurrent"]), abs=2e-3)
    assert ("Welch p < 0.001" in block) == (welch.p_value < 0.001)
