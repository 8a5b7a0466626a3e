"""`make gpu-check`: the project's GPU checks on a bare GPU machine that reaches no package index.

Two steps. `python -m imdb_lm.gpu_check.prepare` (here, on CPU) builds one folder, `.gpu_check/`:
the pure-Python wheels the GPU image lacks, a bf16 copy of the bundled MiniLM, the IMDB rows of
the bundled data, compressed, within the size that can be carried to such a machine. On the GPU
machine, `make gpu-check` installs those wheels offline, runs the GPU tests, short trainings of both
families in bf16-mixed and 16-mixed, a short benchmark and the fused-kernel/cuDNN GRU comparison,
and writes the figures as a markdown section that `python -m imdb_lm.gpu_check.merge` puts into
docs/benchmarks.md.

Nothing here may import the project's third-party dependencies at module level where the GPU
machine runs it before they are installed (only `merge` and `prepare` do so freely).
"""
