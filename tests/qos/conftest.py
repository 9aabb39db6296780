"""QoS tests: the unit tests need nothing; the integration test asks for `network` (tests/conftest.py)."""
