"""Running the built-in 5G programs inside a RanLab's namespaces, and measuring what they do.

Kept apart from the lab's construction (ranlab.py): starting a program in a
node, waiting on its status file, stopping it, and running commands, Python or
iperf3 inside a node are what the tests and benchmarks call over and over,
whatever the lab looks like. The programs write a status file (--status), so
readiness is read from it rather than waited for with sleeps.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run(*cmd: str, timeout: float = 15.0, check: bool = True, input: str | None = None,
        env: dict[str, str] | None = None):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=check, input=input,
                          env=env)


class LabPrograms:
    """The programs part of RanLab (its base): needs `ns(role)`, `workdir`, `procs` and `logs`."""

    workdir: Path
    procs: dict[str, subprocess.Popen]
    logs: dict[str, Any]

    def ns(self, role: str) -> str:
        raise NotImplementedError

    PROGRAM = {"upf": "upf", "core": "amf", "gnb": "gnb", "ue": "ue", "rogue": "ue"}

    def start(self, role: str) -> subprocess.Popen:
        log = open(self.workdir / f"{role}.log", "w")
        self.logs[role] = log
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(role), sys.executable, "-m",
                              f"testbed.ran.{self.PROGRAM[role]}", "--config", str(self.workdir / f"{role}.json"),
                              "--status", str(self.status_path(role))],
                             stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
        self.procs[role] = p
        return p

    def start_all(self) -> None:
        """In the order the engine will use: each program's peers are ready before it starts."""
        ready = {"upf": lambda s: True, "core": lambda s: s["n4"]["upfs"].get("upf-1") == "associated",
                 "gnb": lambda s: s["n2"]["state"] == "ready", "ue": lambda s: True, "rogue": lambda s: True}
        for role in ("upf", "core", "gnb", "ue", "rogue"):
            self.start(role)
            self.wait_status(role, ready[role], timeout=30)

    def status_path(self, role: str) -> Path:
        return self.workdir / f"{role}-status.json"

    def status(self, role: str) -> dict[str, Any]:
        try:
            return json.loads(self.status_path(role).read_text())
        except (OSError, ValueError):
            return {}

    def wait_status(self, role: str, pred: Callable[[dict], bool], timeout: float = 20.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.status(role)
            if st and pred(st):
                return st
            p = self.procs.get(role)
            if p is not None and p.poll() is not None:
                raise RuntimeError(f"{role} exited with {p.returncode}: {self.log_text(role)[-2000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{role}: condition not met in {timeout} s; status {json.dumps(self.status(role))[:1500]}"
                           f"\nlog: {self.log_text(role)[-1500:]}")

    def log_text(self, role: str) -> str:
        try:
            return (self.workdir / f"{role}.log").read_text()
        except OSError:
            return ""

    def stop(self, role: str, timeout: float = 10.0) -> int | None:
        p = self.procs.get(role)
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log = self.logs.pop(role, None)
        if log:
            log.close()
        return p.returncode

    def exec(self, role: str, *cmd: str, timeout: float = 30.0, check: bool = False,
             input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.ns(role), *cmd, timeout=timeout, check=check, input=input, env=env)

    def python(self, role: str, code: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run Python code inside a node (the repository importable), e.g. to send crafted packets."""
        return self.exec(role, sys.executable, "-c", code, timeout=timeout, check=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))

    def iperf(self, dst: str, seconds: int = 3, reverse: bool = False, bind: str | None = None) -> dict[str, Any]:
        """iperf3 TCP from the UE to a server address: bits/s received and retransmits (iperf3 -J)."""
        port = str(20000 + secrets.randbelow(20000))
        server = subprocess.Popen(["ip", "netns", "exec", self.ns("server"), "iperf3", "-s", "-1", "-B", dst,
                                   "-p", port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):  # wait (bounded) for it to listen
                if self.exec("server", "ss", "-ltnH", f"sport = :{port}").stdout.strip():
                    break
                time.sleep(0.05)
            cmd = ["iperf3", "-c", dst, "-p", port, "-t", str(seconds), "-J"] + (["-R"] if reverse else [])
            r = self.exec("ue", *cmd, *(["-B", bind] if bind else []), timeout=seconds + 30)
            data = json.loads(r.stdout or "{}")
            if "end" not in data:
                raise RuntimeError(f"iperf3 failed: {data.get('error', r.stderr[-300:])}")
            return {"bps": float(data["end"]["sum_received"]["bits_per_second"]),
                    "retransmits": data["end"]["sum_sent"].get("retransmits")}
        finally:
            server.kill()
            server.wait()

    def rss_kib(self, role: str) -> int:
        """Resident memory of a program (the Python process `ip netns exec` became)."""
        for line in Path(f"/proc/{self.procs[role].pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0
