"""Benchmarks of the library itself (speed and memory), as opposed to task accuracy."""
