"""Run reports: one data structure, written as JSON, JUnit XML and HTML."""
