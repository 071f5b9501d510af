"""Benchmarks for the pure clearing core (issue 3). Run them all with ``benchmarks/run``."""
