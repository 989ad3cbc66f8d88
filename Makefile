# One command set: what a person runs is what CI runs.
VENV   := .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: run test test-fast lint bench screenshot clean

$(BIN)/loanflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $@

run: $(BIN)/loanflow
	$(BIN)/loanflow serve

# The browser tests drive Debian's Chromium; the metrics tests check /metrics with promtool;
# fault 13 puts HAProxy in front of API hosts in network namespaces and cuts one off with iptables.
test: $(BIN)/loanflow lint /usr/bin/chromium /usr/bin/promtool /usr/sbin/haproxy /usr/sbin/iptables
	$(BIN)/pytest

# The fast tier: no server process, no Redis or PostgreSQL, no browser (tests/conftest.py).
test-fast: $(BIN)/loanflow
	$(BIN)/pytest -m "not slow"

/usr/bin/chromium:
	apt-get install -y chromium

/usr/bin/promtool:
	apt-get install -y prometheus

/usr/sbin/haproxy:
	apt-get install -y haproxy

/usr/sbin/iptables:
	apt-get install -y iptables

lint: $(BIN)/loanflow
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# The benchmark suite (~19 min on 2 cores): every scenario against fresh services,
# report in docs/benchmarks.md, charts and raw figures in docs/bench/.
# Options through BENCH_ARGS, e.g. make bench BENCH_ARGS='--quick --only steady --out /tmp/b'.
BENCH_ARGS ?=
bench: $(VENV)/.bench-deps /usr/bin/wrk
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# The references scenario loads every target with wrk.
/usr/bin/wrk:
	apt-get install -y wrk

$(VENV)/.bench-deps: $(BIN)/loanflow
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[bench]'
	touch $@

# The README's pictures of the dashboard: under load, the search, the review queue (the browser
# tests, saving where the README looks).
screenshot: $(BIN)/loanflow /usr/bin/chromium
	LOANFLOW_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(BIN)/pytest -n 0 -q tests/dashboard/test_page.py \
		-k "screenshot_is_saved or pictured_for_the_readme"

clean:
	rm -rf $(VENV) .loanflow
