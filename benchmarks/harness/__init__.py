"""The benchmark harness (`python -m benchmarks`): scenarios, services, report, charts.

The throwaway Redis and PostgreSQL it runs production mode on are the tests'
(tests/throwaway/), started with the bench's own sizes.
"""
