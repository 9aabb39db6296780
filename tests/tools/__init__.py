"""Measurement tools shared by the impairment tests and the bench (not part of the testbed package).

`lab.NetPair`: a throwaway two-namespace link; `probe`: a one-way UDP probe run
on each side of it (`python -m tests.tools.probe`). Importable as `tests.tools`
from the repository root: pytest (`python -m pytest`) and `python -m
bench.impair_bench` both put it on the path; lab.py passes it on to the probe
processes it starts.
"""
