"""Slice policy: who may reach which service, compiled from the topology's slices."""
