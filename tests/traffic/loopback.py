"""Start a traffic server as its own process on 127.0.0.1 (no root, no network) and stop it as the engine does."""
from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(module: str, *args: str, port: int | None = None) -> tuple[subprocess.Popen, int]:
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", module, "--bind", "127.0.0.1", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{module} exited: {proc.communicate()[0]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{module} did not listen within 20 s")


def stop(proc: subprocess.Popen) -> str:
    """SIGTERM: the server must exit 0 within a few seconds; its log."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"did not stop on SIGTERM:\n{out}")
    assert proc.returncode == 0, out
    return out


@contextmanager
def serving(module: str, *args: str) -> Iterator[int]:
    """A server running for the block (its port); afterwards it must stop on SIGTERM with no traceback logged."""
    proc, port = start(module, *args)
    try:
        yield port
    finally:
        log = stop(proc)
        assert "Traceback" not in log, log
