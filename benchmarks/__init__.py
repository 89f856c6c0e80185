"""Benchmarks: the serving path against the naive path and the floor, measured in one run."""
