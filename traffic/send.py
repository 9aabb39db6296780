"""Send a batch of probes from inside one node, then print what was sent (JSON).

    python -m traffic.send < job.json

The job (JSON on stdin) says what to send from this node:
  iface            the node's interface (for crafted frames)
  rounds, gap      each frame / datagram / echo is sent once per round, `gap` s apart
                   (the userspace datapath may drop the first packets of a fresh flow)
  spread           seconds over which one round's packets are paced (bursts of thousands
                   of frames from every node at once overflow userspace relays and queues)
  frames           crafted frames, hex; sent as-is on an AF_PACKET socket; [iface, hex]: a bare
                   IP packet written to that interface (a UE's session TUN)
  connects         [[dst ip, port, probe id], ...]: real TCP connects (kernel: ARP, SYN, retries)
  udp              [[dst ip, port, payload hex], ...]: real UDP datagrams
  pings            [[dst ip, ident, payload hex], ...]: ICMP echo requests via a raw IP socket
  connect_timeout  how long connects may take
  flood            {frame, rate_bps, seconds, max_count}: one frame repeated at a rate
  node_ip, node_mac, tun_routes  on a 5G UE: {dst ip: [TUN, session address]}; crafted
                   frames from node_ip (and node_mac) to such a destination leave through the session's TUN, as the
                   kernel would send them (traffic.tunroute)
Everything is bounded by count and time; the sender exits by itself.
"""
from __future__ import annotations

import errno
import json
import select
import socket
import sys
import time

from traffic.instrument import yield_cpu
from traffic.tunroute import ETH_P_IP, TunRoutes


def _connects(targets: list, timeout: float) -> tuple[dict, list]:
    """Start every connect non-blocking; returns (id -> state, open sockets)."""
    state, pending = {}, {}
    for ip, port, pid in targets:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex((ip, int(port)))
        if rc in (0, errno.EINPROGRESS):
            pending[s.fileno()] = (s, pid)
            state[pid] = "timeout"
        else:
            state[pid] = f"error {errno.errorcode.get(rc, rc)}"
            s.close()
    return state, list(pending.values())


class _Connects:
    """Pending non-blocking connects, polled while frames are sent and finished at the end.

    A connect counts as "connected" the moment the handshake completes. It must be
    looked at early: a real server on the port (a single-client iperf3, a TLS server
    waiting for a hello) may reset the idle connection later, and SO_ERROR read after
    that says ECONNRESET about a handshake that did complete.
    """

    def __init__(self, state: dict, pending: list):
        self.state = state
        self.poll = select.poll()
        self.by_fd = {s.fileno(): (s, pid) for s, pid in pending}
        self.socks = [s for s, _pid in pending]
        for fd in self.by_fd:
            self.poll.register(fd, select.POLLOUT)

    def check(self, timeout_ms: int = 0) -> None:
        for fd, _ev in self.poll.poll(timeout_ms):
            s, pid = self.by_fd.pop(fd)
            self.poll.unregister(fd)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            self.state[pid] = "connected" if err == 0 else ("refused" if err == errno.ECONNREFUSED
                                                             else f"error {errno.errorcode.get(err, err)}")

    def finish(self, deadline: float) -> None:
        while self.by_fd and time.monotonic() < deadline:
            self.check(max(1, int((deadline - time.monotonic()) * 1000)))
        for s in self.socks:
            s.close()


def flood(sock: socket.socket, frame: bytes, rate_bps: float, seconds: float, max_count: int) -> dict:
    """Send `frame` at about rate_bps for `seconds` (paced in 1 ms slots), at most max_count times."""
    per_s = rate_bps / (len(frame) * 8)
    t0 = time.monotonic()
    sent = errors = 0
    while sent < max_count:
        now = time.monotonic() - t0
        if now >= seconds:
            break
        due = min(max_count, int(per_s * now) + 1)
        while sent < due:
            try:
                sock.send(frame)
                sent += 1
            except OSError:  # ENOBUFS: the queue is full; back off a little
                errors += 1
                break
        time.sleep(0.0005)
    dur = time.monotonic() - t0
    return {"sent": sent, "bytes": sent * len(frame), "seconds": dur, "errors": errors,
            "sent_bps": sent * len(frame) * 8 / dur if dur else 0.0}


class _Wire:
    """One raw socket per interface a crafted frame leaves by: the node's own, or a session's TUN."""

    def __init__(self, iface: str, routes: TunRoutes):
        self.iface = iface
        self.routes = routes
        self.socks: dict[str, socket.socket] = {}

    def prepare(self, frame: bytes, iface: str | None = None) -> tuple[socket.socket, bytes]:
        """(the socket to send it on, the bytes to send): routed once, sent every round. With `iface`
        (a TUN), `frame` is a bare IP packet that leaves by it as it is."""
        tun, data = (iface, frame) if iface else self.routes.route(frame)
        iface = tun or self.iface
        sock = self.socks.get(iface)
        if sock is None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            try:
                sock.bind((iface, ETH_P_IP if tun else 0))
            except OSError as exc:
                sock.close()
                raise OSError(exc.errno, f"{iface}: {exc.strerror}") from None
            self.socks[iface] = sock
        return sock, data


def _prepared(wire: _Wire, frames: list, out: dict) -> list[tuple[socket.socket, bytes]]:
    """Each frame with the socket it leaves by. A frame whose interface is gone (a UE's TUN while the UE
    registers again) is left out and named in `out['errors']`; the others still go (one missing TUN used
    to end the whole sender, and with it every other frame of the node)."""
    ready = []
    for f in frames:
        via, data = (None, f) if isinstance(f, str) else (f[0], f[1])
        try:
            ready.append(wire.prepare(bytes.fromhex(data), via))
        except OSError as exc:
            out["frames_skipped"] = out.get("frames_skipped", 0) + 1
            why = f"frame: {exc.strerror or exc}"
            if why not in out["errors"]:
                out["errors"].append(why)
    return ready


def run(job: dict) -> dict:
    out: dict = {"frames_sent": 0, "udp_sent": 0, "pings_sent": 0, "errors": []}
    wire = _Wire(job["iface"], TunRoutes(job.get("node_ip"), job.get("tun_routes"), job.get("node_mac"))) \
        if job.get("frames") or job.get("flood") else None
    frames = _prepared(wire, job.get("frames", []), out) if wire else []
    udp = [(ip, int(p), bytes.fromhex(pl)) for ip, p, pl in job.get("udp", [])]
    pings = [(ip, int(i), bytes.fromhex(pl)) for ip, i, pl in job.get("pings", [])]
    usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if udp else None
    isock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) if pings else None
    timeout = float(job.get("connect_timeout", 3.0))
    state, pending = _connects(job.get("connects", []), timeout)
    connects = _Connects(state, pending)
    deadline = time.monotonic() + timeout
    settle = time.monotonic() + 0.2  # most handshakes complete within this: catch them before any reset
    while connects.by_fd and time.monotonic() < settle:
        connects.check(20)
    from traffic.packets import icmp_echo

    n_round = len(frames) + len(udp) + len(pings)
    pause = float(job.get("spread", 0.0)) / n_round if n_round else 0.0
    for rnd in range(int(job.get("rounds", 2))):
        if rnd:
            time.sleep(float(job.get("gap", 0.25)))
        # (counter, what to name in an error, send): one list so every kind is paced alike
        sends = [("frames_sent", "frame", lambda f=f: f[0].send(f[1])) for f in frames]
        sends += [("udp_sent", f"udp {ip}:{port}", lambda ip=ip, port=port, pl=pl: usock.sendto(pl, (ip, port)))
                  for ip, port, pl in udp]
        sends += [("pings_sent", f"ping {ip}", lambda ip=ip, i=i, pl=pl, r=rnd: isock.sendto(icmp_echo(i, r + 1, pl), (ip, 0)))
                  for ip, i, pl in pings]
        for n, (counter, what, send) in enumerate(sends):
            if pause:
                time.sleep(pause)
            if n % 8 == 0 and connects.by_fd:
                connects.check()
            try:
                send()
                out[counter] += 1
            except OSError as exc:
                out["errors"].append(f"{what}: {exc}")
    connects.finish(deadline)
    out["connects"] = state
    if job.get("flood"):
        fl = job["flood"]
        sock, data = wire.prepare(bytes.fromhex(fl["frame"]))
        out["flood"] = flood(sock, data, float(fl["rate_bps"]), float(fl["seconds"]), int(fl["max_count"]))
    out["errors"] = out["errors"][:20]
    return out


def main() -> int:
    yield_cpu()
    job = json.loads(sys.stdin.read())
    print(json.dumps(run(job)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
