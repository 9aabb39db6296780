"""Pure OpenFlow planning: how a run is wired (ports, names, addresses) and shortest-path forwarding."""
