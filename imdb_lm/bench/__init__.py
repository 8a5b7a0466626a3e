"""`python -m imdb_lm.bench`: this project's training and inference paths against the usual ways.

harness.py times things (medians, interleaving, memory, FLOPs), workload.py builds the shared data
and model from the train config, ours.py measures this project's path, baselines/ holds what a user
would otherwise write, tokenization.py measures tokenizer throughput and the cache, and __main__.py
runs them side by side and writes the JSON record.
"""
