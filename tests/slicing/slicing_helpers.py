"""The integration helpers (leftovers, cli, MINIMAL, the state_dir fixture) of
tests/integration/conftest.py, loaded by path: that directory is not ours to edit,
and a conftest cannot be imported by name reliably when several exist."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_testbed_integration_helpers", _path)
integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(integration)

state_dir = integration.state_dir
leftovers = integration.leftovers
cli = integration.cli
MINIMAL = integration.MINIMAL
