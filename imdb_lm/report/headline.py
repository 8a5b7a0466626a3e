"""The study's headline: a short table of each family's selected setting and the seed-level verdict,
for a README. It is generated, not typed, so it cannot drift from the published records:
`python -m imdb_lm.report docs/study ... headline=README.md` rewrites the block between the two
marker lines below in that file, and a test compares the README's block with the records.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from imdb_lm.atomic import write_text
from imdb_lm.errors import UserError
from imdb_lm.report import contrasts, rules, speed
from imdb_lm.report.analysis import Analysis

START = "<!-- study headline: generated from docs/study by python -m imdb_lm.report (headline=README.md) -->"
END = "<!-- end of study headline -->"
LABELS = {"recurrent": "RNN from scratch", "transformer": "pretrained transformer, fine-tuned"}


def _pm(mean, std) -> str:
    if mean is None or pd.isna(mean):
        return "-"
    return f"{mean * 100:.1f}" + (f" ± {std * 100:.1f}" if std is not None and not pd.isna(std) else "")


def table(analysis: Analysis) -> pd.DataFrame:
    """One row per family: its selected setting (chosen on validation) over every seed."""
    rows = []
    for family in ("recurrent", "transformer"):
        r = analysis.best_family.get(family)
        if r is None:
            continue
        ood = (f"{_pm(r['ood_acc'], r['ood_acc_std'])} ({int(r['ood_seeds'])})" if r.get("ood_seeds") else "-")
        rows.append({
            "family": LABELS[family], "selected model and setting":
                f"{r['model']}: {r['optimizer']}, lr {r['lr']:.2g}, batch {int(r['batch_size'])}, "
                f"{int(r['epochs_given'])} epoch{'s' if int(r['epochs_given']) != 1 else ''}",
            "seeds": int(r["seeds"]), "test acc % (mean ± sd)": _pm(r["test_acc"], r["test_acc_std"]),
            "out-of-domain acc % (seeds)": ood,
            "train time (s)": f"{r['fit_seconds']:.0f}", "latency ms (1 review, p50)": f"{r['latency_ms_p50']:.1f}"})
    return pd.DataFrame(rows)


def verdict(analysis: Analysis) -> str | None:
    """The accuracy difference with its seed-level interval and the seeds behind it."""
    if analysis.comparison is None:
        return None
    d, welch = analysis.comparison["difference"], analysis.comparison["welch"]
    trf, rnn = analysis.best_family["transformer"]["model"], analysis.best_family["recurrent"]["model"]
    result = rules.outcome(welch.p_value, welch.p_equivalent)
    more = "more" if welch.diff > 0 else "less"
    margin = f"{rules.ACCURACY_MARGIN * 100:.1f} point"
    relation = {rules.DIFFERENT: f"is reliably {more} accurate than",
                rules.SMALL: f"is reliably {more} accurate, by less than {margin}, than",
                rules.EQUIVALENT: f"is as accurate, within {margin}, as",
                rules.NOT_SETTLED: f"is neither reliably different from nor within {margin} of"}[result]
    text = (f"The fine-tuned {trf} {relation} the {rnn} trained from scratch: {welch.diff * 100:+.1f} points "
            f"({d.acc_a * 100:.1f}% vs {d.acc_b * 100:.1f}%) over {welch.seeds_a} + {welch.seeds_b} seeds, Welch "
            f"p {_p(welch.p_value)} (decision rules v{rules.RULES_VERSION}), {d.confidence:.0%} two-level bootstrap "
            f"interval {d.low * 100:+.1f} to {d.high * 100:+.1f}, on the same {d.n:,} test reviews.")
    benched = speed.ratios(analysis.speed, trf, rnn)
    if benched:
        text += (f" In one interleaved bench on one machine, {trf} takes {contrasts.times(benched['time / token'])} the "
                 f"training time per token and {contrasts.times(benched['latency'])} the single-review latency of {rnn}.")
    return text


def markdown(analysis: Analysis, fidelity: str, link: str) -> str | None:
    """The block for a README, `link` the full report relative to that README; None until both
    families have a selected setting."""
    frame = table(analysis)
    if len(frame) < 2:
        return None
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    sentence = verdict(analysis)
    return "\n".join([
        START, "", *lines, "",
        f"Fidelity: {fidelity}; settings chosen on validation, test read once per run; train time and "
        "latency from the runs' own records (machines and load differ between runs"
        + ("; the report's speed ratios come from one interleaved bench" if analysis.speed else
           "; no interleaved bench of the two yet: `make study-speed`")
        + f"). {sentence or ''}".rstrip(), "", *course_claims(analysis),
        f"Everything else (what makes the difference, sensitivity, data-efficiency curves, stability, "
        f"interpretability, what it cost): [{link}]({link}).", "", END])


def course_claims(analysis: Analysis) -> list[str]:
    """The ablation's answer to the two course claims (comparable accuracy at equal size; RNNs slower to
    train), as the report's findings state them, once both models of their contrast have runs."""
    if analysis.contrasts.empty or "architecture at matched size" not in set(analysis.contrasts["contrast"]):
        return []
    return [" ".join(contrasts.claims(analysis.contrasts, contrasts.budget(analysis.runs))), ""]


def relative_link(target: Path, page: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(page).resolve().parent)).as_posix()


def check_page(page: str | Path) -> str:
    """The text of `page`, refused with a one-line error unless it holds the two marker lines."""
    page = Path(page)
    try:
        text = page.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"headline={page}: cannot read it ({err.strerror}); name an existing markdown file") from None
    if START not in text or END not in text or text.index(START) > text.index(END):
        raise UserError(f"headline={page} has no headline block: add the line '{START}' and below it "
                        f"'{END}' where the table goes")
    return text


def write_into(page: str | Path, block: str) -> None:
    """Replace the headline block of `page` (its marker lines included)."""
    text = check_page(page)
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    write_text(page, before + block + after)


def block_of(page: str | Path) -> str | None:
    """The headline block a page holds now (markers included), or None."""
    text = Path(page).read_text(encoding="utf-8")
    if START not in text or END not in text:
        return None
    return START + text.split(START, 1)[1].split(END, 1)[0] + END


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"
