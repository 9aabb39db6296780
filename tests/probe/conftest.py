"""Probe tests: the unit tests need nothing; the integration ones ask for `network`."""
