"""The config front: everything that reads or checks options before a run starts.

compose.py    compose conf/train.yaml with overrides (the CLI check, the bench and tests share it)
overrides.py  `python -m imdb_lm.train` arguments checked before Hydra starts
validate.py   one clear error per bad value, before anything is written
resolvers.py  the ${imdb_lm.*:...} resolvers the configs use
options.py    the key=value command line of predict, evaluate, explain, report and bench
"""
