"""A threaded HTTP/1.1 server with optional TLS, shared by traffic.fhir_server and traffic.web_server.

Why not http.server's ThreadingHTTPServer on a wrapped listening socket: that
does each TLS handshake inside the accept loop, so one slow client (or a
plaintext one waiting for a reply that never comes) stalls every other.
Here the handshake runs in the connection's own thread, with a timeout.
Plaintext on a TLS port fails that handshake and the connection is closed:
the service is only offered over TLS 1.2+.

Bounded for a daemon that lives as long as the testbed: at most
`max_connections` connections at once (more are closed at accept), no log
line per request (the daemon log would grow without bound), counters printed
on SIGTERM instead.
"""
from __future__ import annotations

import json
import signal
import ssl
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20  # request bodies above this are refused (413): clients here send small JSON


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """Server context: the node's certificate from the run's CA, TLS 1.2 or newer only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 tls: ssl.SSLContext | None = None, max_connections: int = 256, handshake_timeout: float = 10.0):
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.stats: Counter[str] = Counter()
        self.notes: list[str] = []  # the first few TLS failures, for the log
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        super().__init__(addr, handler)

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.count("refused_busy")
            self.shutdown_request(request)
            return
        self.count("connections")
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request, client_address) -> None:
        if self.tls is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        request.settimeout(self.handshake_timeout)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:  # plaintext, wrong version, client rejected our cert, timeout
            self.count("tls_failed")
            with self._lock:
                if len(self.notes) < 5:
                    self.notes.append(f"TLS handshake from {client_address[0]} failed: {exc}")
                    print(self.notes[-1], file=sys.stderr, flush=True)
            return
        try:
            conn.settimeout(None)
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        self.count("handler_errors")


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive (every reply carries Content-Length), and helpers for JSON."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: Nagle + delayed ACK would add 40 ms
    timeout = 120  # an idle keep-alive connection is closed after this long
    server: Server

    def version_string(self) -> str:
        return "medalliance-testbed/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # one line per request would grow the daemon's log without bound

    def send_body(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.server.count(f"status_{status}")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj: Any, ctype: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(obj, separators=(",", ":")).encode(), ctype, headers)

    def read_json(self) -> Any:
        """The request's JSON body; ValueError (with a reason fit for a 400) when it is not."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise ValueError("bad Content-Length") from None
        if length > MAX_BODY:
            self.close_connection = True
            raise OverflowError(f"body over {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"body is not JSON: {exc}") from None


def serve(server: Server, what: str) -> None:
    """Run until SIGTERM/SIGINT; then print the counters and close."""
    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"{what} listening on {host}:{port} ({'TLS' if server.tls else 'plain HTTP'})", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        print(f"stopped: {dict(server.stats)}", flush=True)
