"""Tests of the benchmark harness: it runs, and its arithmetic holds."""
