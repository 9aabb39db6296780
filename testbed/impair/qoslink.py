"""The Mininet interface class of a rate-limited link end: priority queues on switch ports (qos.py).

Its own module because it subclasses Mininet's TCIntf: only the building
process imports it (lazily, from `htb_wiring`), so relay processes and
`import testbed.impair` never pay for Mininet.
"""
from __future__ import annotations

import subprocess
from typing import Any

from mininet.link import TCIntf
from mininet.node import Switch

from testbed.impair.base import ImpairError
from testbed.impair.qos import tc_batch


class QosIntf(TCIntf):
    """A link end shaped to the link's rate. On a switch with `qos` on: the DSCP priority queues;
    otherwise (a host's end, or `qos: false`): Mininet's single HTB class."""

    def config(self, bw: float | None = None, qos: bool = False, queue_mtu: int = 1500,
               **params: Any) -> Any:
        if not (qos and bw and isinstance(self.node, Switch)):
            return super().config(bw=bw, **params)
        result = super().config(**params)  # Mininet's generic part; without a rate it shapes nothing
        argv = ["tc", "-batch", "-"]
        if self.node.inNamespace:  # switch ports live in the root namespace; just in case one does not
            argv = ["mnexec", "-a", str(self.node.pid), *argv]
        script = "\n".join(tc_batch(self.name, round(bw * 1e6), queue_mtu)) + "\n"
        r = subprocess.run(argv, input=script, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise ImpairError(f"priority queues on {self.name}: {r.stderr.strip()} (the kernel needs HTB and "
                              "the u32 classifier; `qos: false` on the link gives a plain rate limit)")
        return result
