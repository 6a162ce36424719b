# `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-under-load install loadtest bench bench-cascade clean screenshots

$(STAMP): pyproject.toml setup.py sfu/_fanout.c sfu/_srtp_out.c sfu/_fanout.h sfu/_fanout_build.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/vcs serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

# The suite while spinning processes keep both cores busy (tests/under_load.py): tests wait for
# events, not for time. HOGS spinning processes; deadlines scaled by SLOWDOWN; PYTEST_ARGS to narrow.
HOGS ?= 2
SLOWDOWN ?= 3
PYTEST_ARGS ?=
test-under-load: $(STAMP)
	$(BIN)/python -m tests.under_load --hogs $(HOGS) --slowdown $(SLOWDOWN) -- $(PYTEST_ARGS)

# The node after and before (each joined by SUBSCRIBERS at once, measured at that count and half),
# then aiortc's packet relay; docs/fanout.md has the figures of this machine.
BENCH_SUBSCRIBERS ?= 1000
bench: $(STAMP)
	$(BIN)/vcs bench sfu --subscribers $(BENCH_SUBSCRIBERS) --seconds 20

# An origin, one relay and 200 subscribers of several provinces on it (docs/deployment.md has runs
# up to 300 on this 2-core machine); RELAYS and SUBSCRIBERS to change it.
RELAYS ?= 1
SUBSCRIBERS ?= 200
bench-cascade: $(STAMP)
	$(BIN)/vcs bench cascade --relays $(RELAYS) --subscribers $(SUBSCRIBERS) --seconds 20

# Load tests, headless, against the deployment `make run` serves (data in ./var or $VCS_DATA_DIR);
# reports in $(REPORTS). LOADTEST_ARGS="--serve" uses a private deployment instead (then the
# reconnect storm runs too), "--profile smoke" a short run. Rotates every endpoint secret: test
# deployments only. See docs/loadtests.md.
LOADTEST_URL ?= http://$(HOST):$(PORT)
REPORTS ?= reports
LOADTEST_ARGS ?=
loadtest: $(STAMP)
	$(BIN)/python -m loadtests --url $(LOADTEST_URL) --reports $(REPORTS) $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

screenshots: $(STAMP)
	VCS_SCREENSHOTS=1 $(BIN)/python -m pytest tests/web/browser -q
