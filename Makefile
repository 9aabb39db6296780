# The two commands a new user needs: `make run` and `make test`. Both set up the
# machine first (idempotent), so they work on a fresh Debian/Ubuntu box as root.
VENV ?= .venv
TESTBED = $(VENV)/bin/testbed
PYTEST = $(VENV)/bin/python -m pytest
TOPOLOGY ?= topologies/xiangtan-alliance.yaml

.PHONY: setup venv run test test-long unit integration bench schema clean

setup:
	@VENV=$(VENV) bash scripts/setup.sh

# Only the Python venv (no root): what the unit tests need.
venv:
	@VENV=$(VENV) bash scripts/venv.sh

run: setup
	$(TESTBED) run $(TOPOLOGY)

# Everything: fast unit tests, then integration tests that build real networks.
test: setup
	$(PYTEST) -q tests

# The long robustness tests (tests/robustness, marked `long`; `make test` runs only their short versions):
# 20 SIGKILLs at random moments then clean, a 20-round soak, 1,000 slice grant/revoke operations under load.
# About 11 minutes here. NET_LOCK: a lock file shared with other users of this machine's network, taken per
# network built (empty: no locking).
NET_LOCK ?=
test-long: setup
	TESTBED_NET_LOCK=$(NET_LOCK) $(PYTEST) -q -s --long -m long tests/robustness

# Fast unit tests: no root, no network, only the venv.
unit: venv
	$(PYTEST) -q -m "not integration and not docker" tests

integration: setup
	$(PYTEST) -q -m "integration or docker" tests

bench: setup
	$(VENV)/bin/python bench/run.py

schema: setup
	$(TESTBED) schema -o schemas/topology.schema.json

clean: setup
	$(TESTBED) clean
