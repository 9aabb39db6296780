"""HTTP(S) request agent for the `emr` and `iot` workloads: paced requests over one keep-alive connection.

  python -m traffic.http_client --host emr --ip 10.0.0.5 --port 443 --ca ca.crt \\
      --profile emr --rate 5 --duration 10 --mix read=50,search=30,find=10,post=10

Why one agent for both: a ward-round terminal reading the EMR and a payment
kiosk are the same client at different rates and paths; what the workloads
need from each is the same series (one latency per request) and the same
failure accounting. The server certificate is verified against the run's CA
with the target's node name (a certificate from any other CA, or plaintext,
fails every request and is reported as an error).

Profiles:
  emr      FHIR queries in the proportions of --mix (read a Patient, search a
           patient's Observations, find Patients by name, post an Observation);
           patients are taken from a Patient search done before the clock starts
  payment  POST /payments (a kiosk's small payment)
  get      GET --path (a heartbeat)
Requests are paced at --rate on one connection (HTTP/1.1 keep-alive, as a
browser or FHIR client keeps one): if a reply is late, the next request goes
as soon as it arrives (counted as `late`). A stale keep-alive connection the
server closed while idle is reopened and the request retried once, as
browsers do. Prints ONE JSON document on stdout: per-request latencies (ms,
request sent -> whole reply read), counts, and one error string per failed
request. Standard library only.
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import ssl
import sys
import time
from collections import Counter
from collections.abc import Iterator
from urllib.parse import quote

EMR_OPS = ("read", "search", "find", "post")
DEFAULT_MIX = {"read": 50.0, "search": 30.0, "find": 10.0, "post": 10.0}
FHIR_JSON = "application/fhir+json"
LOINC_HR = {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}


def parse_mix(text: str) -> dict[str, float]:
    """'read=50,search=30' -> {'read': 50.0, 'search': 30.0}; ValueError for unknown ops or bad weights."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        op, sep, w = part.partition("=")
        if not sep or op not in EMR_OPS:
            raise ValueError(f"bad mix entry {part!r} (ops: {', '.join(EMR_OPS)})")
        mix[op] = float(w)
        if mix[op] < 0:
            raise ValueError(f"negative weight for {op}")
    if not mix or sum(mix.values()) <= 0:
        raise ValueError("the mix needs a positive weight")
    return mix


def op_sequence(mix: dict[str, float]) -> Iterator[str]:
    """Ops in the mix's proportions, evenly interleaved (smooth weighted round-robin, as nginx balances):
    every window of sum(weights) steps holds each op exactly its weight's times (integer weights)."""
    ops = [(op, w) for op, w in mix.items() if w > 0]
    total = sum(w for _, w in ops)
    current = {op: 0.0 for op, _ in ops}
    while True:
        for op, w in ops:
            current[op] += w
        best = max(current, key=lambda k: current[k])
        current[best] -= total
        yield best


class Client:
    """One keep-alive HTTP(S) connection to `ip`, verifying the certificate for `host`."""

    def __init__(self, host: str, ip: str, port: int, ctx: ssl.SSLContext | None, timeout: float):
        self.host, self.ip, self.port, self.ctx, self.timeout = host, ip, port, ctx, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.used = 0  # requests answered on the current connection
        self.tls_info = ""

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        # connect to the address, verify the name: no DNS lookup inside the measured time
        sock = socket.create_connection((self.ip, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn: http.client.HTTPConnection
        if self.ctx is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        else:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ctx)
            try:
                sock = self.ctx.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
            self.tls_info = f"{sock.version()} {sock.cipher()[0]}"
        conn.sock = sock
        self.used = 0
        return conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str],
                timeout: float) -> tuple[int, bytes]:
        """(status, body); raises on connection/TLS/timeout failures (the connection is then dropped)."""
        for attempt in (0, 1):
            reused = self.conn is not None and self.used > 0
            try:
                if self.conn is None:
                    self.conn = self._connect(timeout)
                self.conn.sock.settimeout(timeout)
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection: reopen once
                raise
            except BaseException:
                self.close()
                raise
            self.used += 1
            if resp.will_close:
                self.close()
            return resp.status, data
        raise AssertionError("unreachable")


def describe(exc: BaseException) -> str:
    """A short, stable reason for a failed request."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: certificate rejected ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed by server"
    return f"{type(exc).__name__}: {exc}"[:160]


class EmrProfile:
    """FHIR traffic of a ward-round terminal: the mix's ops on patients the EMR knows."""

    def __init__(self, mix: dict[str, float], seed: int, source: str):
        self.ops = op_sequence(mix)
        self.rng = random.Random(seed)
        self.source = source
        self.patients: list[tuple[str, str]] = []  # (id, family name)

    def listing(self) -> tuple[str, str, str, bytes | None]:
        return "list", "GET", "/fhir/Patient?_count=200", None

    def learn(self, op: str, body: bytes) -> None:
        if op == "list":
            b = json.loads(body)
            self.patients = [(e["resource"]["id"], e["resource"].get("name", [{}])[0].get("family", ""))
                             for e in b.get("entry", [])]

    def next(self) -> tuple[str, str, str, bytes | None]:
        if not self.patients:
            return self.listing()  # until the patient list is known, asking for it is the request
        op = next(self.ops)
        pid, family = self.rng.choice(self.patients)
        if op == "read":
            return op, "GET", f"/fhir/Patient/{quote(pid)}", None
        if op == "search":
            return op, "GET", f"/fhir/Observation?patient={quote(pid)}&_count=50", None
        if op == "find":
            return op, "GET", f"/fhir/Patient?name={quote(family[:3])}", None
        obs = {"resourceType": "Observation", "status": "final",
               "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                         "code": "vital-signs"}]}],
               "code": {"coding": [LOINC_HR], "text": "Heart rate"}, "subject": {"reference": f"Patient/{pid}"},
               "effectiveDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "valueQuantity": {"value": self.rng.randint(55, 110), "unit": "/min",
                                 "system": "http://unitsofmeasure.org", "code": "/min"},
               "performer": [{"display": self.source}]}
        return op, "POST", "/fhir/Observation", json.dumps(obs).encode()


class PaymentProfile:
    def __init__(self, seed: int, source: str):
        self.rng = random.Random(seed)
        self.source = source

    def listing(self):
        return "health", "GET", "/health", None

    def learn(self, op, body):
        pass

    def next(self):
        body = {"kiosk": self.source, "amount": round(self.rng.uniform(5, 500), 2), "currency": "CNY",
                "method": self.rng.choice(["card", "wechat", "alipay", "insurance"]),
                "patient": f"XCH{self.rng.randrange(100000, 100300):07d}"}
        return "payment", "POST", "/payments", json.dumps(body).encode()


class GetProfile:
    def __init__(self, path: str):
        self.path = path

    def listing(self):
        return "get", "GET", self.path, None

    def learn(self, op, body):
        pass

    def next(self):
        return self.listing()


def run(client: Client, profile, rate: float, duration: float, timeout: float) -> dict:
    """Warm up (not counted), then `rate` requests/s for `duration` s; the raw samples."""
    out: dict = {"latency_ms": [], "sent": 0, "received": 0, "errors": [], "ops": Counter(), "status": Counter(),
                 "late": 0}
    headers = {"Accept": FHIR_JSON if isinstance(profile, EmrProfile) else "application/json",
               "User-Agent": "medalliance-http-client/1"}
    # warm-up: the first connection's handshake and the patient list (as ping's warm-up, not measured)
    # (up to 3 tries within one request timeout in all: a broken target is reported by the measured requests)
    t_w = time.perf_counter()
    op, method, path, body = profile.listing()
    for _ in range(3):
        left = timeout - (time.perf_counter() - t_w)
        if left <= 0.05:
            break
        try:
            status, data = client.request(method, path, body, headers, left)
        except Exception as exc:
            out["warmup_error"] = describe(exc)
            time.sleep(min(0.2, max(0.0, left - 0.05)))
            continue
        if not 200 <= status < 300:
            out["warmup_error"] = f"HTTP {status}"
            continue
        try:
            profile.learn(op, data)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            out["warmup_error"] = f"bad reply body ({exc})"
            continue
        out["warmup_ms"] = round((time.perf_counter() - t_w) * 1000, 3)
        out.pop("warmup_error", None)
        break
    start = time.monotonic()
    planned = max(1, int(duration * rate))
    deadline = start + duration + timeout  # slow replies cannot stretch the run beyond this
    for i in range(planned):
        due = start + i / rate
        now = time.monotonic()
        if now >= deadline:  # what could not even be sent failed too
            out["sent"] += planned - i
            out["errors"] += [f"{duration:.2f}s: not sent, earlier replies ran past the duration"] * (planned - i)
            break
        if now < due:
            time.sleep(due - now)
        elif now - due > 1.0 / rate:
            out["late"] += 1
        op, method, path, body = profile.next()
        hdrs = dict(headers, **({"Content-Type": FHIR_JSON if op == "post" else "application/json"} if body else {}))
        out["sent"] += 1
        out["ops"][op] += 1
        t0 = time.perf_counter()
        at = f"{time.monotonic() - start:.2f}s {op}"  # when the request went: errors say which one failed
        try:
            status, data = client.request(method, path, body, hdrs, max(0.1, min(timeout, deadline - time.monotonic())))
        except Exception as exc:
            out["errors"].append(f"{at}: {describe(exc)}")
            continue
        ms = (time.perf_counter() - t0) * 1000
        out["status"][str(status)] += 1
        if 200 <= status < 300:
            out["received"] += 1
            out["latency_ms"].append(round(ms, 3))
            try:
                profile.learn(op, data)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                out["errors"].append(f"{at}: bad reply body ({exc})")
                out["received"] -= 1
                out["latency_ms"].pop()
        else:
            out["errors"].append(f"{at}: HTTP {status}")
    out["seconds"] = round(time.monotonic() - start, 3)
    out["tls"] = client.tls_info
    client.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", required=True, help="the target's name (TLS server name and Host header)")
    ap.add_argument("--ip", help="connect to this address (default: resolve --host)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", help="CA certificate to verify the server against: HTTPS (without: plain HTTP)")
    ap.add_argument("--profile", choices=("emr", "payment", "get"), default="get")
    ap.add_argument("--path", default="/health", help="what the get profile requests")
    ap.add_argument("--mix", default=",".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items()))
    ap.add_argument("--rate", type=float, default=1.0, help="requests per second (0.01..1000)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds (<= 3600)")
    ap.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--source", default=socket.gethostname(), help="this terminal's name (in posted data)")
    a = ap.parse_args(argv)
    if not 0.01 <= a.rate <= 1000 or not 0 < a.duration <= 3600 or not 0 < a.timeout <= 60:
        ap.error("rate must be 0.01..1000/s, duration 0..3600 s, timeout 0..60 s")
    try:
        mix = parse_mix(a.mix)
    except ValueError as exc:
        ap.error(str(exc))
    ctx = None
    if a.ca:
        ctx = ssl.create_default_context(cafile=a.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    profile = {"emr": lambda: EmrProfile(mix, a.seed, a.source), "payment": lambda: PaymentProfile(a.seed, a.source),
               "get": lambda: GetProfile(a.path)}[a.profile]()
    client = Client(a.host, a.ip or a.host, a.port, ctx, a.timeout)
    json.dump(run(client, profile, a.rate, a.duration, a.timeout), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
