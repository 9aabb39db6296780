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
on SIGTERM instead. Every request is answered: a bug in a handler is a 500
(its traceback logged, the first MAX_LOGGED of them), never a connection
closed without a word. Request bodies are framed by Content-Length or
chunked transfer coding, as HTTP/1.1 requires of a server.
"""
from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20  # request bodies above this are refused (413): clients here send small JSON
MAX_LOGGED = 20  # handler errors logged with their traceback; later ones are only counted


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

    def log_error(self, what: str, exc: BaseException) -> None:
        """A bug met while serving: counted, and the first MAX_LOGGED logged with their traceback."""
        with self._lock:
            self.stats["handler_errors"] += 1
            n = self.stats["handler_errors"]
        if n <= MAX_LOGGED:
            tb = "".join(traceback.format_exception(exc)).rstrip()
            more = " (later ones are only counted)" if n == MAX_LOGGED else ""
            print(f"handler error {n}{more}: {what}\n{tb}", file=sys.stderr, flush=True)

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client went away
            self.count("connection_errors")
        elif exc is not None:
            self.log_error(f"connection from {client_address[0]}", exc)


class RequestError(ValueError):
    """A request the server cannot take as it is: the HTTP status to answer and why (fit for the reply)."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status


_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
MAX_LINE = 4096  # a chunk-size line or a trailer field
MAX_TRAILERS = 32


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive (every reply carries Content-Length), and helpers for JSON.

    Every request gets a reply: an exception in a handler is logged and answered 500 (`error_reply`),
    unless the reply had already started (then the connection is closed). A request body is read
    whole (Content-Length, or chunked), bounded by MAX_BODY; a body the handler did not read is read
    and dropped before the reply, so it is never taken for the next request; a body that cannot be
    framed is answered 400 (413 when too large) and the connection closed.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # streamed replies write headers and body apart: Nagle + delayed ACK: +40 ms
    timeout = 120  # an idle keep-alive connection is closed after this long
    server: Server
    # per request (reset in handle_one_request)
    _parsed = False  # the request line and headers were read: self.headers is this request's
    _body: bytes | None = None  # the request body once read
    _replied = False  # bytes of the reply were written: too late for another status
    _said_connection = False
    _out = b""  # the reply body, written with the headers in one write (one TLS record)
    _linger = False  # close gently: the client may still be sending a body we did not read

    def version_string(self) -> str:
        return "medalliance-testbed/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # one line per request would grow the daemon's log without bound

    # -- one request ----------------------------------------------------------------------------------
    def handle_one_request(self) -> None:
        """http.server's, with a reply for every request (see the class docstring)."""
        self._parsed = self._replied = self._said_connection = self._linger = False
        self._body, self._out = None, b""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline.split()) == 2:  # HTTP/0.9 (no version, no headers): not served
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(HTTPStatus.BAD_REQUEST, "a request line needs an HTTP version (HTTP/1.1)")
                return
            if not self.parse_request():
                return  # an error reply has been sent
            self._parsed = True
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.no_such_method()
            else:
                method()
            if self._body is None and self._has_body():  # replied without draining (a streamed reply)
                self.close_connection = self._linger = True
            self.wfile.flush()
        except RequestError as exc:  # a body that is not what the handler reads (read_body closes if need be)
            if not self._replied:
                self._headers_buffer = []
                self.error_reply(exc.status, str(exc))
        except OSError:  # the client went away or timed out mid-request: nobody to answer
            self.server.count("connection_errors")
            self.close_connection = True
        except Exception as exc:  # a bug: log it, answer 500, never just drop the connection
            self.close_connection = True
            self.server.log_error(f"{self.client_address[0]} {getattr(self, 'requestline', '')!r}", exc)
            if not self._replied:
                self._headers_buffer = []
                try:
                    self.error_reply(500, "internal server error (logged by the server)")
                except OSError:
                    pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's error replies (a malformed request line or headers), which close the connection;
        always with a status line (http.server sends a bare body when the request's version is unknown)."""
        self.reply_version()
        super().send_error(code, message, explain)

    def reply_version(self) -> None:
        if self.request_version in ("", "HTTP/0.9"):  # unknown or unparsable: answer as HTTP/1.0 does
            self.request_version = "HTTP/1.0"
        self.close_connection = True

    def no_such_method(self) -> None:
        """A method with no do_ handler: 501 (RFC 9110 15.6.2)."""
        self.error_reply(501, f"method {self.command} is not supported")

    def error_reply(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        """An error the server itself answers (framing, 500, 501): JSON by default, subclasses override."""
        self.send_json(status, {"error": text}, headers=headers)

    def handle_expect_100(self) -> bool:
        """No 100 Continue for a body that will be refused for its size: the client need not send it."""
        length = self.headers.get("Content-Length", "")
        if _DIGITS.fullmatch(length.strip()) and int(length) > MAX_BODY:
            return True
        # the interim reply, written as it is: the final one (and its headers) is still to come
        self.send_response_only(HTTPStatus.CONTINUE)
        self.wfile.write(b"".join(self._headers_buffer) + b"\r\n")
        self._headers_buffer = []
        return True

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.close_connection and (self._linger or (self._body is None and self._has_body())):
                self._lingering_close()

    def _lingering_close(self) -> None:
        """Stop sending, then read and drop what the client still sends for a moment: closing with unread
        data makes the kernel reset the connection, and the client could lose the reply."""
        sock = self.connection
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.2)
            deadline, got = time.monotonic() + 2.0, 0
            while time.monotonic() < deadline and got < 4 * MAX_BODY:
                data = sock.recv(65536)
                if not data:
                    break
                got += len(data)
        except (OSError, ValueError):
            pass

    # -- replies --------------------------------------------------------------------------------------
    def send_response(self, code: int, message: str | None = None) -> None:
        if self._parsed and self._body is None and not self.close_connection:
            self._drain()  # the body must be off the connection before the next request is read
        super().send_response(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection":
            self._said_connection = True
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        if self.close_connection and not self._said_connection:
            self.send_header("Connection", "close")  # the client learns the connection ends here
        super().end_headers()

    def flush_headers(self) -> None:
        buf = getattr(self, "_headers_buffer", None)
        if buf:
            if self._out:
                buf.append(self._out)
                self._out = b""
            self._replied = True
            self.wfile.write(b"".join(buf))
            self._headers_buffer = []

    def send_body(self, status: int, body: bytes, ctype: str | None, headers: dict[str, str] | None = None) -> None:
        """A whole reply (ctype None: no Content-Type, for an empty body); headers and body in one write."""
        self.server.count(f"status_{status}")
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self._out = body if self.command != "HEAD" else b""
        self.end_headers()

    def send_json(self, status: int, obj: Any, ctype: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(obj, separators=(",", ":")).encode(), ctype, headers)

    # -- request bodies -------------------------------------------------------------------------------
    def _has_body(self) -> bool:
        if not self._parsed:
            return False
        return "Transfer-Encoding" in self.headers or self.headers.get("Content-Length", "0").strip() != "0"

    def _drain(self) -> None:
        try:
            self.read_body()
        except RequestError:
            pass  # the connection is closed after this reply

    def read_body(self) -> bytes:
        """The request's body (b"" when it has none), read once: Content-Length or chunked (RFC 9112 6),
        at most MAX_BODY bytes. RequestError (400, 413, 501) when it cannot be read; the connection is then
        closed after the reply, as the next request's start is unknown."""
        if self._body is not None:
            return self._body
        try:
            self._body = self._read_body()
        except RequestError:
            self._body = b""
            self.close_connection = self._linger = True
            raise
        return self._body

    def _read_body(self) -> bytes:
        te = self.headers.get_all("Transfer-Encoding")
        cl = self.headers.get_all("Content-Length")
        if te:
            if cl:  # RFC 9112 6.3: Transfer-Encoding wins, and the connection cannot be trusted afterwards
                self.close_connection = True
            codings = [c.strip().lower() for v in te for c in v.split(",") if c.strip()]
            if not codings or codings[-1] != "chunked" or "chunked" in codings[:-1]:
                raise RequestError(400, "Transfer-Encoding must end with chunked (once): the body's end is unknown")
            if len(codings) > 1:
                raise RequestError(501, f"transfer coding {codings[0]} is not supported (only chunked)")
            return self._read_chunked()
        if not cl:
            return b""
        values = {v.strip() for h in cl for v in h.split(",")}
        if len(values) != 1 or not _DIGITS.fullmatch(length := values.pop()):
            raise RequestError(400, "bad Content-Length")
        n = int(length)
        if n > MAX_BODY:
            raise RequestError(413, f"body over {MAX_BODY} bytes")
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            raise RequestError(400, "body shorter than its Content-Length")
        return data

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line.endswith(b"\r\n"):
                raise RequestError(400, "malformed chunked body: a chunk-size line without CRLF")
            size = line[:-2].split(b";", 1)[0].strip(b" \t")
            if not _HEX.fullmatch(size):
                raise RequestError(400, f"malformed chunked body: bad chunk size {size[:20]!r}")
            n = int(size, 16)
            if n == 0:
                break
            if total + n > MAX_BODY:
                raise RequestError(413, f"body over {MAX_BODY} bytes")
            data = self.rfile.read(n)
            if len(data) < n:
                raise RequestError(400, "malformed chunked body: a chunk shorter than its size")
            if self.rfile.read(2) != b"\r\n":
                raise RequestError(400, "malformed chunked body: chunk data not followed by CRLF")
            parts.append(data)
            total += n
        for _ in range(MAX_TRAILERS):  # trailer fields, ignored, then the empty line
            line = self.rfile.readline(MAX_LINE + 1)
            if line == b"\r\n":
                return b"".join(parts)
            if not line.endswith(b"\r\n"):
                raise RequestError(400, "malformed chunked body: a trailer line without CRLF")
        raise RequestError(400, f"malformed chunked body: more than {MAX_TRAILERS} trailer fields")

    def read_json(self) -> Any:
        """The request's JSON body; RequestError (a ValueError, status 400, or 413/501 from read_body) when it
        is not JSON: not UTF-8, NaN/Infinity, nested beyond what the parser takes."""
        raw = self.read_body()
        try:
            text = raw.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise RequestError(400, "body is not JSON: not UTF-8") from None
        try:
            return json.loads(text, parse_constant=_no_constant)
        except RecursionError:
            raise RequestError(400, "body is not JSON this server reads: nested too deeply") from None
        except ValueError as exc:
            raise RequestError(400, f"body is not JSON: {exc}") from None


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
