"""The benchmark suite: `make bench` (or `python -m benchmarks [NAME …]`). Not part of the tests."""
