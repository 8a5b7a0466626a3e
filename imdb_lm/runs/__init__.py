"""Run bookkeeping: everything about a run folder and what is written in it.

folders.py      run-file names, unique folder names, the lock, no empty leftovers
key.py          the run-identity policy: which settings make two runs the same experiment
records.py      metrics.json and predictions.csv: the one record builder, writer and reader
environment.py  device, library versions, git revision of a run
resume.py       which run to continue and whether a checkpoint fits it
jobs.py         multirun bookkeeping: reuse finished jobs, record failed ones
checkpoint.py   the one safe checkpoint loader, and rebuilding a trained run from its folder
"""
