"""Lightning callbacks a training run attaches (conf/callbacks/default.yaml lists them).

metrics.py    accuracy/F1/AUROC, timing, throughput, latency: what metrics.json records
stability.py  gradient norms, loss spikes, early stop with status `diverged`
interrupt.py  Ctrl+C / SIGTERM: save a resumable checkpoint, then stop
examples.py   confusion matrix and the most confidently wrong test reviews, in TensorBoard
memory.py     hand free heap pages back at epoch ends
"""
