"""The self-contained HTML page: faithfulness table and curves, then highlighted reviews.

One file, no external resources (CSS inline, plots as base64 PNG), so it opens in any browser and
can be mailed or archived next to the run. Several models on one page are shown side by side on
the same reviews.
"""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.review{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
.model{margin:.5em 0 .8em 0}.tokens{line-height:1.9}.tok{padding:1px 2px;border-radius:3px}
.ok{color:#17692b;font-weight:600}.wrong{color:#b00020;font-weight:600}.meta{color:#555;font-size:.9em}
.note{background:#f7f7f2;border-left:4px solid #bbb;padding:.5em 1em}
"""
NOTE = """<div class="note"><b>Reading this page.</b> Integrated Gradients scores each token's contribution
to the log-odds of <i>positive</i>: <span class="tok" style="background:rgba(22,150,60,.55)">green</span>
pushes toward positive, <span class="tok" style="background:rgba(215,40,40,.55)">red</span> toward negative,
stronger colour = larger share of the review's largest score. Attention rollout (transformers only,
<span class="tok" style="background:rgba(40,90,220,.5)">blue</span>) shows how much each token flows into
[CLS]; it has no sign. <b>Faithfulness</b>: delete the top 1/5/10/20/50% of a review's tokens as ranked
by an explanation and measure the drop in the predicted class's probability; AOPC is the mean drop.
An explanation is faithful to the extent its AOPC beats the same deletions in random order
(<i>gain</i> = AOPC - random AOPC). Models are compared on the same reviews; compare gains, since raw
AOPC also depends on how confident and how robust to deletion each model is.</div>"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _display(token: str) -> tuple[str, bool]:
    """Token text and whether it continues the previous word (WordPiece `##`)."""
    return (token[2:], True) if token.startswith("##") else (token, False)


def highlight(tokens: list[str], scores: list[float], signed: bool = True) -> str:
    top = max((abs(s) for s in scores), default=0.0) or 1.0
    out = []
    for token, score in zip(tokens, scores, strict=True):
        text, glued = _display(token)
        alpha = min(1.0, abs(score) / top) * 0.75
        rgb = ("22,150,60" if score >= 0 else "215,40,40") if signed else "40,90,220"
        out.append(("" if glued or not out else " ")
                   + f'<span class="tok" title="{score:+.4f}" style="background:rgba({rgb},{alpha:.2f})">'
                   f"{html.escape(text)}</span>")
    return '<div class="tokens">' + "".join(out) + "</div>"


def attention_image(tokens: list[str], maps, limit: int = 40) -> str:
    """Last layer, heads averaged, first `limit` tokens."""
    grid = maps[-1].mean(0)[:limit, :limit].numpy()
    names = tokens[:limit]
    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_title("attention, last layer, mean of heads", fontsize=9)
    return _png(fig)


def curves_image(models: list[dict]) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for m in models:
        x = [100 * f for f in m["fractions"]]
        for method, s in m["faithfulness"].items():
            ax.plot(x, s["curve"], marker="o", label=f"{m['name']}: {method}")
        ax.plot(x, next(iter(m["faithfulness"].values()))["random_curve"], ls="--", marker=".",
                label=f"{m['name']}: random")
    ax.set_xscale("log")
    ax.set_xlabel("% of tokens deleted (most important first)")
    ax.set_ylabel("drop in predicted-class probability")
    ax.legend(fontsize=7)
    ax.grid(alpha=.3)
    return _png(fig)


def render(title: str, models: list[dict], reviews: list[dict]) -> str:
    """models: name, family, test_acc, n_reviews, fractions, faithfulness{method: summary}.
    reviews: text_preview, label, hash, per_model{name: {prob_pos, tokens, ig, rollout?, attention_png?}}."""
    rows = []
    for m in models:
        for method, s in m["faithfulness"].items():
            rows.append(f"<tr><td class=l>{html.escape(m['name'])}</td><td class=l>{m['family']}</td>"
                        f"<td class=l>{method}</td><td>{m['n_reviews']}</td><td>{s['aopc']:.4f}</td>"
                        f"<td>{s['random_aopc']:.4f}</td><td><b>{s['aopc_gain']:+.4f}</b></td>"
                        f"<td>{m['completeness']:.2e}</td></tr>")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>", NOTE,
             "<h2>Faithfulness</h2><table><tr><th class=l>model</th><th class=l>family</th>"
             "<th class=l>explanation</th><th>reviews</th><th>AOPC</th><th>random AOPC</th><th>gain</th>"
             "<th>IG |delta| / |F(x)-F(b)|</th></tr>" + "".join(rows) + "</table>",
             f"<img alt='deletion curves' src='{curves_image(models)}'>", "<h2>Reviews</h2>"]
    for r in reviews:
        gold = "positive" if r["label"] == 1 else "negative"
        parts.append(f"<div class='review'><div class='meta'>true label <b>{gold}</b> - review "
                     f"{r['hash']}</div>")
        for name, e in r["per_model"].items():
            pred = int(e["prob_pos"] >= 0.5)
            verdict = "<span class=ok>correct</span>" if pred == r["label"] else "<span class=wrong>wrong</span>"
            parts.append(f"<div class='model'><div class='meta'><b>{html.escape(name)}</b>: predicts "
                         f"{'positive' if pred else 'negative'} (P(positive) = {e['prob_pos']:.3f}) {verdict}"
                         f"</div>{highlight(e['tokens'], e['ig'])}")
            if e.get("rollout") is not None:
                parts.append(f"<div class='meta'>attention rollout</div>"
                             f"{highlight(e['tokens'], e['rollout'], signed=False)}")
            if e.get("attention_png"):
                parts.append(f"<details><summary class='meta'>attention map</summary>"
                             f"<img alt='attention map' src='{e['attention_png']}'></details>")
            parts.append("</div>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
