"""Verification: judge an unlearned model against retraining, with intervals and slices.

:mod:`.metrics` defines the reported numbers once; :mod:`.verdict` judges; :mod:`.analysis`
adds bootstrap intervals, difficulty thirds and patient groups; :mod:`.report` is the document.
"""
