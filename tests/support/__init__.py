"""Helpers shared by the test suites and the benchmarks (fake servers, builders)."""
