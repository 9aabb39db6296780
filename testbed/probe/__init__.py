"""Isolation probing: the policy's full should-pass / must-fail matrix and attack probes,
tested with real packets and decided by captures at the targets."""
