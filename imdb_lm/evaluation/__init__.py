"""Evaluating trained runs: batched inference and the error analysis written beside test results.

inference.py       encode reviews as a run was trained, predict probabilities, rebuild its splits
error_analysis.py  accuracy by length, calibration (reliability, ECE), confidently wrong reviews
"""
