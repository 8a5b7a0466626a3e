"""Explain one or more trained runs on the same test reviews and score the explanations.

The faithfulness set is the first `n` test reviews in review-hash order: it depends only on the
split, so every model with the same test fingerprint is scored on exactly the same reviews. The
page also shows, per model, a few correct and misclassified reviews of both classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imdb_lm.data.batching import TokenizedReviews
from imdb_lm.data.tokenize import UNK, WordTokenizer
from imdb_lm.evaluation.inference import Reviews, predict_probs
from imdb_lm.explain import faithfulness as faith
from imdb_lm.explain.attributions import attention_maps, attention_rollout, integrated_gradients
from imdb_lm.runs.checkpoint import LoadedRun


@dataclass
class Settings:
    n: int = 20  # reviews scored for faithfulness
    show: int = 4  # of those, how many the page shows (plus correct/wrong examples below)
    per_category: int = 1  # page examples per (true class, correct|wrong) and model
    scan: int = 300  # test reviews searched for those examples
    n_steps: int = 50  # IG integration steps
    random_repeats: int = 3  # random orderings averaged for the baseline
    fractions: tuple[float, ...] = field(default=faith.FRACTIONS)
    batch_size: int = 32


def probs_fn(run: LoadedRun, batch_size: int):
    def probs(seqs: list[list[int]]) -> list[float]:
        data = TokenizedReviews(seqs, [0] * len(seqs), [""] * len(seqs))
        return predict_probs(run, data, batch_size)
    return probs


def filler_id(run: LoadedRun) -> int:
    tok = run.tokenizer
    return tok.tokenizer.token_to_id(UNK) if isinstance(tok, WordTokenizer) else tok.pad_id


def select(reviews: Reviews, runs: list[LoadedRun], s: Settings) -> tuple[list[int], list[int]]:
    """(faithfulness set, page set) as indices into `reviews`."""
    order = sorted(range(len(reviews)), key=lambda i: reviews.hashes[i])
    scored = order[: s.n]
    page = list(scored[: s.show])
    scan = order[: max(s.scan, s.n)]
    for run in runs:
        ids = run.tokenizer.encode([reviews.texts[i] for i in scan])
        probs = probs_fn(run, s.batch_size)(ids)
        for label in (1, 0):
            for correct in (True, False):
                found = [i for i, p in zip(scan, probs, strict=True)
                         if reviews.labels[i] == label and ((p >= 0.5) == bool(label)) == correct]
                page += [i for i in found if i not in page][: s.per_category]
    return scored, page


def explain_run(run: LoadedRun, reviews: Reviews, scored: list[int], page: list[int], s: Settings) -> dict:
    """Attributions for the scored and page reviews; faithfulness over the scored ones."""
    wanted = list(dict.fromkeys(scored + page))
    ids = dict(zip(wanted, run.tokenizer.encode([reviews.texts[i] for i in wanted]), strict=True))
    probs = dict(zip(wanted, probs_fn(run, s.batch_size)([ids[i] for i in wanted]), strict=True))
    pad = run.tokenizer.pad_id
    per = {}
    for i in wanted:
        special = run.special_positions(ids[i])
        ig = integrated_gradients(run.model, ids[i], pad, special, s.n_steps)
        entry = {"ids": ids[i], "special": special, "ig": ig, "prob_pos": probs[i]}
        if run.family == "transformer":
            maps = attention_maps(run.model, ids[i])
            entry["rollout"] = attention_rollout(maps)
            entry["maps"] = maps if i in page else None
        per[i] = entry
    predicted = [int(per[i]["prob_pos"] >= 0.5) for i in scored]
    reviews_ids = [per[i]["ids"] for i in scored]
    score = probs_fn(run, s.batch_size)
    filler = filler_id(run)

    def drops(rankings):
        return faith.deletion_drops(score, reviews_ids, rankings, predicted, filler, s.fractions)

    methods = {"integrated_gradients": drops([faith.rank_by_scores(per[i]["ig"].scores, per[i]["special"], c)
                                              for i, c in zip(scored, predicted, strict=True)])}
    if run.family == "transformer":
        methods["attention_rollout"] = drops([faith.rank_by_relevance(per[i]["rollout"], per[i]["special"])
                                              for i in scored])
    repeats = [drops([faith.random_ranking(len(per[i]["ids"]), per[i]["special"],
                                           int(reviews.hashes[i][:8], 16) + r) for i in scored])
               for r in range(s.random_repeats)]
    random_drops = [[sum(col) / len(col) for col in zip(*rows, strict=True)] for rows in zip(*repeats, strict=True)]
    gaps = [abs(per[i]["ig"].log_odds - per[i]["ig"].baseline_log_odds) for i in wanted]
    deltas = [abs(per[i]["ig"].delta) for i in wanted]
    record = {
        "n_reviews": len(scored), "fractions": list(s.fractions),
        "faithfulness": {m: faith.summary(d, random_drops) for m, d in methods.items()},
        "completeness": sum(deltas) / max(sum(gaps), 1e-12),
        "max_abs_delta": max(deltas),
        "per_review": [{"hash": reviews.hashes[i], "label": reviews.labels[i], "prob_pos": per[i]["prob_pos"],
                        **{f"aopc_{m}": sum(d[k]) / len(d[k]) for m, d in methods.items()},
                        "aopc_random": sum(random_drops[k]) / len(random_drops[k])}
                       for k, i in enumerate(scored)],
    }
    return {"record": record, "per": per}
