"""SDN controller apps (Ryu app API; run on os-ken, or on Ryu where installed)."""
