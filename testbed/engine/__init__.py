"""Build, run and tear down an emulated network from a validated topology."""
