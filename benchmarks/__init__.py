"""loanflow's benchmarks, kept beside the package and out of the wheel.

    harness/     the scenarios, the services they start, the report (`python -m benchmarks`)
    tests/       the harness's own tests (part of `make test`)
    naive/       the naive baseline: FastAPI + pydantic, for comparison only
    references/  the lean speed references of issue #18
    roundrobin/  the wrk script the round-robin posts loanflow's and the baseline's load with
"""
