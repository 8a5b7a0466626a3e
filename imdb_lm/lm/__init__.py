"""Language models of the review texts (`task=lm`): every family, its data, metrics and generation.

  options.py     lm.* options and the task's config checks (no heavy imports: the CLI runs them first)
  data.py        the corpus: the train split's reviews, [CLS] or a label token + first wordpieces
  output.py      the output layer (full softmax tied to the input embedding, chunked loss)
  base.py        LanguageModel: the shared LightningModule (loss per token, steps, state for generation)
  recurrent.py   GRU / LSTM / minGRU language models; mingru.py: the minGRU layer (Feng et al. 2024)
  transformer.py the causal pre-LN transformer (transformers' GPT-NeoX body, random weights)
  metrics.py     perplexity, bits per character, by-position perplexity, tokens/s -> metrics.json
  task.py        what imdb_lm/training.py calls for task=lm (imdb_lm/tasks.py)
  generation.py  sampling with transformers' logits processors, for every family (python -m imdb_lm.generate)
"""
