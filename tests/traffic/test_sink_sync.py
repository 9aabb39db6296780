"""The capture agent: what makes two frames the same, frames its node sends dropped in the kernel, and
`sync N` answered only once everything that arrived before it has been written.

The prober reads the captures right after its last probe; an agent behind its queue (a loaded 2-core
host) would have reported a frame that reached its node as not arrived. `sync` lets the prober wait.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import traffic.sink as sink


def test_summary_key_leaves_out_the_source_port_and_ignores_order():
    a = {"eth_dst": "02:00:00:00:00:02", "vlans": [10], "proto": 17, "sport": 40000, "dport": 2152}
    b = {"dport": 2152, "proto": 17, "sport": 40001, "vlans": [10], "eth_dst": "02:00:00:00:00:02"}
    assert sink.summary_key(a) == sink.summary_key(b)
    assert sink.summary_key(a) != sink.summary_key({**a, "vlans": [20]})
    assert sink.summary_key(a) != sink.summary_key({**a, "token": "0000beef"})
    hash(sink.summary_key(a))


# Run inside a network namespace of its own (unshare --net): its loopback is the only interface, and
# nothing it sends can leave it.
SCRIPT = textwrap.dedent("""
    import json, socket, subprocess, sys, time
    import traffic.sink as sink
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    out = {}
    # 1. the filter: a datagram over loopback is seen once (arriving), not also as the copy going out
    for name, attach in (("plain", False), ("filtered", True)):
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(sink.ETH_P_ALL))
        if attach:
            sink.ignore_outgoing(cap)
        cap.bind(("lo", 0)); cap.settimeout(0.5)
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(("127.0.0.1", 0))
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"ping", rx.getsockname())
        seen = []
        try:
            while True:
                seen.append(cap.recvfrom(2048)[1][2])
        except socket.timeout:
            pass
        out[name] = seen
    # 2. sync: every distinct frame sent before the question is written before the answer
    p = subprocess.Popen([sys.executable, "-m", "traffic.sink", "--iface", "lo", "--max-seconds", "30"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert json.loads(p.stdout.readline())["event"] == "ready"
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    N = 3000
    for i in range(N):  # a distinct summary each (the source port is left out of it, the token is not)
        tx.sendto(b"TBP-%08x" % i, rx.getsockname())
    p.stdin.write("sync 7\\n"); p.stdin.flush()
    tokens = set()
    while True:
        ev = json.loads(p.stdout.readline())
        if ev["event"] == "synced":
            out["synced"] = ev["n"]
            break
        tokens.add(ev.get("token"))
    out["tokens_before_sync"] = len(tokens - {None})
    p.communicate(timeout=30)  # its summary line: read, or it blocks on a full pipe
    print(json.dumps(out))
""")


@pytest.mark.integration
def test_outgoing_frames_are_filtered_and_sync_comes_after_every_earlier_frame():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("needs root and unshare (a network namespace of its own)")
    r = subprocess.run(["unshare", "--net", sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert sorted(out["plain"]) == [0, sink.PACKET_OUTGOING]  # both copies without the filter
    assert out["filtered"] == [0]  # PACKET_HOST only
    assert out["synced"] == 7 and out["tokens_before_sync"] == 3000
