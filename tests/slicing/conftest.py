"""Slicing tests: unit tests need nothing; network tests ask for `network` (tests/conftest.py)."""
