"""The language-model task's options (`lm.*`, conf/task/lm.yaml) and its config checks, without
importing torch: the train CLI runs them before Hydra starts."""

from __future__ import annotations

from imdb_lm.errors import UserError

LM_FAMILIES = ("recurrent_lm", "transformer_lm")  # model.family of the *_lm presets
OUTPUTS = ("full",)  # lm.output: the output layers of imdb_lm/lm/output.py
LABELS = ("negative", "positive")  # as the classifier's labels 0 and 1
UNKNOWN = "unknown"
# Label tokens: MiniLM's vocabulary keeps unused slots; these three never occur in review text.
LABEL_TOKENS = {"negative": "[unused0]", "positive": "[unused1]", UNKNOWN: "[unused2]"}


def check_task(task: str, family: str, model_name: str, data: dict, lm: dict | None, size: str | None = None,
               sizes: list[str] | tuple = ()) -> None:
    """One line for a model preset that does not fit the task, and for bad lm.* and model.size values."""
    is_lm = family in LM_FAMILIES
    if task == "classifier" and is_lm:
        raise UserError(f"model={model_name} is a language model; train it with task=lm "
                        f"(python -m imdb_lm.train task=lm model={model_name})")
    if task != "lm":
        return
    if not is_lm:
        raise UserError(f"task=lm needs a language-model preset, not model={model_name}; choose one of "
                        "gru_lm, lstm_lm, mingru_lm, transformer_lm")
    if size not in sizes:
        raise UserError(f"model.size={size} is unknown for model={model_name}; choose one of {', '.join(sizes)}")
    if data.get("tokenizer") != "pretrained" or data.get("truncation") != "head":
        raise UserError("task=lm reads each review's first wordpieces of MiniLM's tokenizer; keep "
                        "data.tokenizer=pretrained and data.truncation=head")
    lm = lm or {}
    if not isinstance(lm.get("conditional"), bool):
        raise UserError(f"lm.conditional={lm.get('conditional')} must be true or false")
    share = lm.get("unknown_share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise UserError(f"lm.unknown_share={share} must be a number in [0, 1]")
    if lm.get("output") not in OUTPUTS:
        raise UserError(f"lm.output={lm.get('output')} is unknown; choose one of {', '.join(OUTPUTS)}")
    chunk = lm.get("loss_chunk")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
        raise UserError(f"lm.loss_chunk={chunk} must be a positive integer")
