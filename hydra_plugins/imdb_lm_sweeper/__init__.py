"""Hydra sweeper plugin of imdb_lm (Hydra finds plugins only under the `hydra_plugins` package)."""
