"""Hydra sweeper on Optuna's ask/tell interface (Optuna >= 4): `hydra/sweeper=optuna`.

Each job is one trial: the sweeper asks Optuna for parameters, launches the jobs through the
configured launcher (local, submitit...), and tells Optuna each job's return value. With a
persistent storage (SQLite/any SQLAlchemy URL, or a journal file for several workers), jobs also
report validation accuracy to their trial as they train, so a pruner can stop the poor ones
(imdb_lm/callbacks/optuna_pruning.py), and several sweeps started with the same study_name share one study.
"""
