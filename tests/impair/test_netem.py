"""Netem backend: argument mapping (no root) and, where the kernel has netem, a live check."""
import gzip
import re
import subprocess
from pathlib import Path

import pytest

from testbed.impair import Impairment, ImpairError, NetemLink, Port, netem_available, select_backend
from testbed.impair.netem import netem_args


def test_noop_maps_to_plain_limit():
    assert netem_args(Impairment()) == ["limit", "1000"]


def test_full_mapping():
    imp = Impairment(delay_ms=20, jitter_ms=2, jitter_dist="normal", loss_pct=1, duplicate_pct=0.5,
                     reorder_pct=25, reorder_gap=5, rate_bps=50_000_000, limit=500)
    assert netem_args(imp) == ["limit", "500", "delay", "20ms", "2ms", "distribution", "normal",
                               "loss", "random", "1%", "duplicate", "0.5%", "reorder", "25%", "gap", "5",
                               "rate", "50000000bit"]


def test_uniform_jitter_has_no_table_and_gilbert_uses_gemodel():
    args = netem_args(Impairment(delay_ms=1, jitter_ms=0.25, jitter_dist="uniform", loss_pct=10,
                                 loss_model="gilbert", loss_burst=4))
    assert args[:5] == ["limit", "1000", "delay", "1ms", "250us"]
    assert "distribution" not in args
    i = args.index("gemodel")
    assert args[i + 1:i + 5] == ["2.77778%", "25%", "100%", "0%"]


def test_jitter_without_a_rate_gets_one_so_netem_keeps_order():
    # netem reorders jittered packets unless it has a rate (then each leaves after the one before it)
    assert netem_args(Impairment(delay_ms=4, jitter_ms=1))[-2:] == ["rate", "100gbit"]
    assert "rate" not in netem_args(Impairment(delay_ms=4))  # constant delay keeps order by itself
    assert netem_args(Impairment(delay_ms=4, jitter_ms=1, rate_bps=300_000_000))[-2:] == ["rate", "300000000bit"]


def test_down_is_total_loss():
    assert netem_args(Impairment(delay_ms=5, up=False))[-3:] == ["loss", "random", "100%"]


def test_port_prefixes():
    assert Port("eth0").ns_prefix() == []
    assert Port("eth0", netns="x").ns_prefix() == ["ip", "netns", "exec", "x"]
    assert Port("eth0", pid=42).ns_prefix() == ["nsenter", "-t", "42", "-n"]


def test_select_backend_explains_itself():
    backend = select_backend("userspace")
    assert backend.name == "userspace" and backend.reason
    with pytest.raises(ValueError, match="backend"):
        select_backend("magic")


def _kernel_config_netem() -> bool | None:
    """CONFIG_NET_SCH_NETEM from the running kernel's config: True (built in), False (not
    set), None (no config to read, or a module whose presence the config cannot tell)."""
    for path in (Path("/proc/config.gz"), Path(f"/boot/config-{Path('/proc/sys/kernel/osrelease').read_text().strip()}")):
        try:
            text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
        except OSError:
            continue
        if re.search(r"^CONFIG_NET_SCH_NETEM=y$", text, re.M):
            return True
        if re.search(r"^# CONFIG_NET_SCH_NETEM is not set$", text, re.M) or "CONFIG_NET_SCH_NETEM" not in text:
            return False
        return None  # =m: loadable, maybe
    return None


def kernel_has_netem() -> bool:
    """Independent of the code under test: try netem on the loopback device of a
    throwaway namespace (every namespace has `lo`, so no veth/dummy driver is needed),
    and agree with the kernel config where there is one."""
    r = subprocess.run(["unshare", "-n", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0 and "unknown" not in r.stderr.lower():
        pytest.fail(f"cannot tell whether the kernel has netem: {r.stderr.strip()}")
    works = r.returncode == 0
    config = _kernel_config_netem()
    if config is not None:
        assert works == config, f"tc says netem {'works' if works else 'is unknown'}, kernel config says {config}"
    return works


@pytest.mark.integration
def test_auto_follows_the_kernel():
    has = kernel_has_netem()
    assert netem_available() is has
    backend = select_backend("auto")
    assert backend.name == ("netem" if has else "userspace"), backend.reason
    if has:
        assert select_backend("netem").name == "netem"
    else:
        with pytest.raises(ImpairError, match="sch_netem"):
            select_backend("netem")


@pytest.mark.integration
def test_netem_applies_and_changes_live(netpair):
    if not kernel_has_netem():
        pytest.skip("kernel has no sch_netem (userspace relay is used instead)")
    # direct shaping on the root-ns ends; they are not joined here, so check the qdisc only
    link = NetemLink.create(Port(netpair.if_a), Port(netpair.if_b), Impairment(delay_ms=10), Impairment(loss_pct=1))
    try:
        show = subprocess.run(["tc", "qdisc", "show", "dev", netpair.if_b], capture_output=True, text=True)
        assert "netem" in show.stdout and "delay 10ms" in show.stdout
        link.set("a_to_b", Impairment(delay_ms=30))
        show = subprocess.run(["tc", "qdisc", "show", "dev", netpair.if_b], capture_output=True, text=True)
        assert "delay 30ms" in show.stdout
        assert set(link.stats()) == {"a_to_b", "b_to_a"}
    finally:
        link.stop()
