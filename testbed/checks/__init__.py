"""Checks run against a live testbed; each returns CheckResults for the report."""
