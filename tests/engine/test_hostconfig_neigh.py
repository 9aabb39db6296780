"""Large alliances get room in each node's own ARP table (a per-namespace sysctl, never the machine's)."""
from testbed.engine.hostconfig import NEIGH_DEFAULT_GC_THRESH2, neighbour_table_command


def test_small_networks_keep_the_kernel_defaults():
    assert neighbour_table_command(NEIGH_DEFAULT_GC_THRESH2 // 2) == []


def test_a_thousand_hosts_fit_below_the_eviction_threshold():
    (cmd,) = neighbour_table_command(900)
    assert "gc_thresh2=1800" in cmd and "gc_thresh3=3600" in cmd and cmd.startswith("sysctl -qw net.ipv4.neigh.")
