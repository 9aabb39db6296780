# The two commands a new user needs: `make run` and `make test`. Both set up the
# machine first (idempotent), so they work on a fresh Debian/Ubuntu box as root.
VENV ?= .venv
TESTBED = $(VENV)/bin/testbed
PYTEST = $(VENV)/bin/python -m pytest
TOPOLOGY ?= topologies/xiangtan-alliance.yaml

.PHONY: setup venv run test unit integration bench schema clean

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
