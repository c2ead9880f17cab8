"""Benchmarks: ``python -m bench <name>`` prints one ratio line against a same-run baseline."""
