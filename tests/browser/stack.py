"""Moved to ``bench.stack`` (the browser benchmarks run the same stack); kept as an alias until
every importer uses the new place."""

from bench.stack import Stack

__all__ = ["Stack"]
