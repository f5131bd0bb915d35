"""Fake platform servers and chaos harnesses shared by the tests and the benchmarks; never
shipped."""
