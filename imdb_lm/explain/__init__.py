"""Explanations for both model families, computed and scored the same way.

attributions.py  Integrated Gradients on the word-embedding layer (captum), attention rollout
faithfulness.py  deletion curves / AOPC against a random-token baseline
page.py          the self-contained HTML page
tensorboard.py   attributions for a few fixed test reviews, logged at the end of training
__main__.py      `python -m imdb_lm.explain ckpt=...`
"""
