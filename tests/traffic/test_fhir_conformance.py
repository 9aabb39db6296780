"""The EMR against a tester's curl/openssl findings: every request gets a reply, HTTP/1.1 framing is right
(chunked bodies, unread bodies), and what FHIR R4 asks of a JSON-only server that reads, searches and creates.

Most tests run the server in this process on 127.0.0.1 over plain HTTP (no root, no network, fast) and
talk to it over raw sockets, so pipelining and closed connections are visible; a few run it as its own
process over TLS with a certificate from the testbed's PKI and use curl, as the tester did.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from testbed.engine import pki
from traffic import fhir_data, fhir_server, httpd, web_server

from tests.traffic.loopback import start, stop

CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed (scripts/setup.sh installs it)")
FJ = "application/fhir+json"


# -- a tiny raw HTTP/1.1 client: send bytes, read replies one by one, see whether the server closed ---------
class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def issue(self) -> dict:
        """The OperationOutcome's first issue."""
        oo = self.json()
        assert oo["resourceType"] == "OperationOutcome", oo
        return oo["issue"][0]

    def said(self) -> str:
        """Everything the OperationOutcome's issues say (diagnostics and expressions)."""
        self.issue()
        return " ".join(i["diagnostics"] + " " + " ".join(i.get("expression", [])) for i in self.json()["issue"])

    def __repr__(self) -> str:
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


class Conn:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.sock.makefile("rb")

    def send(self, raw: bytes) -> "Conn":
        self.sock.sendall(raw)
        return self

    def reply(self, head: bool = False) -> Reply:
        line = self.f.readline()
        assert line, "the server closed the connection without a reply"
        status = int(line.split()[1])
        headers: dict[str, str] = {}
        while (h := self.f.readline()) not in (b"\r\n", b"\n", b""):
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        n = 0 if head else int(headers.get("content-length", "0"))
        return Reply(status, headers, self.f.read(n))

    def closed(self) -> bool:
        """Whether the server closed the connection (nothing more to read)."""
        try:
            return self.f.read(1) == b""
        except TimeoutError:
            return False

    def close(self) -> None:
        self.f.close()
        self.sock.close()


def request(method: str, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None,
            host: str = "emr") -> bytes:
    if isinstance(body, str):
        body = body.encode()
    h = {"Host": host, **(headers or {})}
    if body is not None and "Transfer-Encoding" not in h:
        h.setdefault("Content-Length", str(len(body)))
    return (f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode() \
        + (body or b"")


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.fixture(scope="module")
def emr():
    srv = fhir_server.FhirServer(("127.0.0.1", 0), fhir_data.Store(300, 1), "emr-test")
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def conn(emr):
    c = Conn(emr.server_address[1])
    yield c
    c.close()


def one(emr, method: str, path: str, body=None, headers=None, host: str = "emr") -> Reply:
    c = Conn(emr.server_address[1])
    try:
        return c.send(request(method, path, body, headers, host)).reply(head=method == "HEAD")
    finally:
        c.close()


def obs(**kw) -> dict:
    o = {"resourceType": "Observation", "status": "final",
         "code": {"coding": [{"system": fhir_data.LOINC, "code": "8867-4", "display": "Heart rate"}]},
         "subject": {"reference": "Patient/1"}, "effectiveDateTime": "2021-03-01T08:30:00+08:00",
         "valueQuantity": {"value": 71, "unit": "/min", "system": fhir_data.UCUM, "code": "/min"}}
    o.update(kw)
    return {k: v for k, v in o.items() if v is not None}


def post(conn: Conn, body, ctype: str = FJ, path: str = "/fhir/Observation", **headers) -> Reply:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return conn.send(request("POST", path, raw, {"Content-Type": ctype, **headers})).reply()


def still_serves(conn: Conn) -> None:
    r = conn.send(request("GET", "/fhir/Patient/1")).reply()
    assert r.status == 200 and r.json()["id"] == "1"


# -- finding 1: a field of the wrong type got no reply at all ------------------------------------------------
@pytest.mark.parametrize("body, field", [
    ({"resourceType": "Observation", "status": ["final"]}, "status"),
    (obs(status=["final"]), "Observation.status"),
    (obs(subject={"reference": ["Patient/1"]}), "Observation.subject.reference"),
    (obs(subject="Patient/1"), "Observation.subject"),
    ({"resourceType": ["Observation"]}, "resourceType"),
    ({"resourceType": {"a": 1}}, "resourceType"),
    (obs(code="8867-4"), "Observation.code"),
    (obs(code={"coding": "8867-4"}), "Observation.code.coding"),
    (obs(code={"coding": ["8867-4"]}), "Observation.code.coding"),
    (obs(code={"coding": [{"code": 8867}]}), "Observation.code.coding[0].code"),
    (obs(category="vital-signs"), "Observation.category"),
    (obs(category=[{"coding": [{"code": ["vital-signs"]}]}]), "Observation.category[0].coding[0].code"),
    (obs(encounter="Encounter/1"), "Observation.encounter"),
    (obs(performer={"display": "x"}), "Observation.performer"),
    (obs(valueQuantity="seventy"), "Observation.valueQuantity"),
    (obs(valueQuantity={"value": "70"}), "Observation.valueQuantity.value"),
    (obs(valueQuantity={"value": True}), "Observation.valueQuantity.value"),
    (obs(valueQuantity={"value": 70, "unit": 5}), "Observation.valueQuantity.unit"),
    (obs(effectiveDateTime=12), "Observation.effectiveDateTime"),
    (obs(effectiveDateTime="yesterday"), "Observation.effectiveDateTime"),
    (obs(effectiveDateTime="2021-02-30"), "Observation.effectiveDateTime"),
    (obs(issued="2021-03-01"), "Observation.issued"),  # an instant needs a time and a zone
    (obs(valueString="x"), "value[x]"),  # two values
    (obs(note="text"), "Observation.note"),
    (obs(bogus=1), "bogus"),  # unknown elements are refused, not stored
    ({**obs(), "status": None}, "Observation.status"),  # null is not FHIR JSON
    ({**obs(), "performer": []}, "Observation.performer"),  # nor is an empty array
])
def test_a_field_of_the_wrong_type_gets_400_naming_it(conn, body, field):
    r = post(conn, body)
    assert r.status == 400, r
    issue = r.issue()
    assert issue["severity"] == "error" and issue["code"] in ("structure", "invalid", "value", "required")
    assert field in r.said(), r
    still_serves(conn)  # a bad resource costs one reply, not the connection


@pytest.mark.parametrize("raw, why", [
    ("[" * 5000 + "]" * 5000, "deep"),
    ('{"resourceType": "Observation", "valueQuantity": {"value": NaN}}', "NaN"),
    ('{"resourceType": "Observation", "valueQuantity": {"value": 1e999}}', "Observation.valueQuantity.value"),
    ("{not json", "JSON"),
    (b'{"resourceType": "Observation\xff"}', "JSON"),
])
def test_bodies_that_are_not_fhir_json_get_400(conn, raw, why):
    r = post(conn, raw)
    assert r.status == 400, r
    assert why in r.said(), r
    still_serves(conn)


def test_business_rules_are_422_and_good_posts_still_201(conn):
    r = post(conn, obs(subject={"reference": "Patient/999999"}))
    assert r.status == 422 and "Patient/999999" in r.said()
    r = post(conn, obs(resourceType="Patient"))
    assert r.status in (400, 422) and "Patient" in r.said()
    r = post(conn, obs(status="done"))
    assert r.status in (400, 422) and "Observation.status" in r.said()
    full = obs(id="mine", meta={"versionId": "7"}, text={"status": "generated", "div": "<div>HR 71</div>"},
               category=[{"coding": [{"system": fhir_data.OBS_CATEGORY, "code": "vital-signs"}]}],
               encounter={"reference": "Encounter/1"}, issued="2021-03-01T08:31:00Z",
               performer=[{"display": "ward-3"}], interpretation=[{"text": "normal"}], note=[{"text": "calm"}],
               component=[{"code": {"text": "x"}, "valueInteger": 3}],
               extension=[{"url": "http://x", "valueString": "y"}])
    r = post(conn, full)
    assert r.status == 201, r
    got = r.json()
    assert got["id"] != "mine" and got["meta"]["versionId"] == "1" and got["performer"] == [{"display": "ward-3"}]
    for v in ({"valueString": "ok"}, {"valueCodeableConcept": {"text": "pos"}}, {"valueBoolean": False},
              {"valueInteger": 3}, {"valueQuantity": {"value": 36.6, "comparator": "<"}},
              {"dataAbsentReason": {"text": "asked"}}):
        r = post(conn, {**obs(valueQuantity=None), **v})
        assert r.status == 201, (v, r)
    r = post(conn, obs(effectivePeriod={"start": "2021-03-01T08:00:00Z", "end": "2021"}, effectiveDateTime=None))
    assert r.status == 201, r
    # what was stored stays searchable: the searches that read these fields still work
    for q in ("encounter=1", "code=8867-4", "category=vital-signs", "patient=1", "status=final"):
        r = conn.send(request("GET", f"/fhir/Observation?{q}&_count=1")).reply()
        assert r.status == 200 and r.json()["total"] >= 1, (q, r)


def test_an_unexpected_error_gets_500_and_a_log_line_not_a_silent_close(emr, conn, monkeypatch, capfd):
    def boom(*a, **kw):
        raise RuntimeError("boom in search")

    monkeypatch.setattr(emr.store, "search", boom)
    r = conn.send(request("GET", "/fhir/Patient?name=wang")).reply()
    assert r.status == 500 and r.issue()["code"] == "exception"
    assert "boom" not in r.body.decode()  # the reply does not leak internals; the log has them
    err = capfd.readouterr().err
    assert "RuntimeError: boom in search" in err and "GET /fhir/Patient?name=wang" in err
    assert emr.stats["handler_errors"] >= 1 and emr.stats["status_500"] >= 1
    monkeypatch.undo()
    c2 = Conn(emr.server_address[1])
    try:
        still_serves(c2)
    finally:
        c2.close()


def test_payments_unexpected_error_is_500_json(monkeypatch):
    srv = web_server.WebServer(("127.0.0.1", 0), "payments", "pay-t")
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        monkeypatch.setattr(srv, "pay", lambda req: 1 / 0)
        c = Conn(srv.server_address[1])
        r = c.send(request("POST", "/payments", json.dumps({"amount": 5}),
                           {"Content-Type": "application/json"})).reply()
        assert r.status == 500 and "error" in r.json()
        c.close()
    finally:
        srv.shutdown()
        srv.server_close()


# -- finding 2: chunked request bodies ----------------------------------------------------------------------
def test_a_chunked_post_is_read_and_a_pipelined_get_follows(conn):
    body = json.dumps(obs()).encode()
    conn.send(request("POST", "/fhir/Observation", chunked(body[:10], body[10:]),
                      {"Content-Type": FJ, "Transfer-Encoding": "chunked"})
              + request("GET", "/fhir/metadata"))
    r = conn.reply()
    assert r.status == 201, r
    assert r.json()["valueQuantity"]["value"] == 71
    r = conn.reply()
    assert r.status == 200 and r.json()["resourceType"] == "CapabilityStatement"


def test_chunk_extensions_and_trailers_are_accepted(conn):
    body = json.dumps(obs()).encode()
    raw = b"%x;name=val\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(body), body)
    r = conn.send(request("POST", "/fhir/Observation", raw,
                          {"Content-Type": FJ, "Transfer-Encoding": "chunked"})).reply()
    assert r.status == 201, r
    still_serves(conn)


@pytest.mark.parametrize("te, raw, status", [
    ("chunked", b"zz\r\n{}\r\n0\r\n\r\n", 400),  # not a hex size
    ("chunked", b"0x2\r\n{}\r\n0\r\n\r\n", 400),
    ("chunked", b"2\r\n{}XX0\r\n\r\n", 400),  # no CRLF after the data
    ("chunked", b"%x\r\n" % (httpd.MAX_BODY + 1), 413),
    ("chunked", b"ffffffffffffffffffffffff\r\n", 413),
    ("gzip", b"{}", 400),  # RFC 9112 6.3: without chunked last, the body's end is unknown
    ("chunked, gzip", b"{}", 400),
    ("chunked, chunked", b"0\r\n\r\n", 400),  # chunked only once
    ("gzip, chunked", b"0\r\n\r\n", 501),  # framed, but a coding this server does not decode
])
def test_malformed_or_unsupported_framing_is_refused_and_the_connection_closed(conn, te, raw, status):
    r = conn.send(request("POST", "/fhir/Observation", raw, {"Content-Type": FJ, "Transfer-Encoding": te})).reply()
    assert r.status == status, r
    assert r.headers.get("connection") == "close"
    r.issue()
    assert conn.closed()


@pytest.mark.parametrize("cl", ["-1", "+2", "2, 3", "abc", " "])
def test_a_bad_content_length_is_400_and_closes(conn, cl):
    r = conn.send(request("POST", "/fhir/Observation", b"{}", {"Content-Type": FJ, "Content-Length": cl})).reply()
    assert r.status == 400 and r.headers.get("connection") == "close", r
    assert conn.closed()


def test_a_body_the_handler_did_not_read_is_not_taken_for_the_next_request(conn):
    body = b"GET /fhir/Patient/2 HTTP/1.1\r\nHost: x\r\n\r\n"  # a body that looks like a request
    conn.send(request("PUT", "/fhir/Patient/1", body, {"Content-Type": FJ}) + request("GET", "/fhir/Patient/3"))
    assert conn.reply().status == 405
    r = conn.reply()
    assert r.status == 200 and r.json()["id"] == "3"
    conn.send(request("POST", "/fhir/Patient", chunked(body), {"Content-Type": FJ, "Transfer-Encoding": "chunked"})
              + request("GET", "/fhir/Patient/4"))
    assert conn.reply().status == 405
    r = conn.reply()
    assert r.status == 200 and r.json()["id"] == "4"


def test_payments_accept_a_chunked_post():
    srv = web_server.WebServer(("127.0.0.1", 0), "payments", "pay-t")
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    c = Conn(srv.server_address[1])
    try:
        body = json.dumps({"amount": 12.5, "kiosk": "k1"}).encode()
        c.send(request("POST", "/payments", chunked(body[:4], body[4:]),
                       {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
               + request("GET", "/health"))
        r = c.reply()
        assert r.status == 201 and r.json()["amount"] == 12.5
        assert c.reply().status == 200
        r = c.send(request("POST", "/nope", b"{}")).reply()
        assert r.status == 405 and "POST" not in r.headers["allow"] and "GET" in r.headers["allow"]
    finally:
        c.close()
        srv.shutdown()
        srv.server_close()


def test_an_oversized_body_gets_413_before_it_is_sent_and_even_when_it_is(emr, conn):
    # Expect: 100-continue with a size over the bound: no 100 Continue, the 413 at once
    big = httpd.MAX_BODY + 1
    r = conn.send(request("POST", "/fhir/Observation", None, {"Content-Type": FJ, "Content-Length": str(big),
                                                               "Expect": "100-continue"})).reply()
    assert r.status == 413 and r.issue()["code"] == "too-costly" and r.headers["connection"] == "close"
    # chunked with Expect: 100-continue: the size is learnt while reading, after the 100; the 413 still comes
    c = Conn(emr.server_address[1])
    try:
        c.send(request("POST", "/fhir/Observation", None, {"Content-Type": FJ, "Transfer-Encoding": "chunked",
                                                            "Expect": "100-continue"}))
        assert c.reply().status == 100
        c.sock.sendall(b"%x\r\n" % big + b"x" * big + b"\r\n0\r\n\r\n")
        r = c.reply()
        assert r.status == 413 and r.issue()["code"] == "too-costly"
    finally:
        c.close()
    # a client that sends it all anyway still reads the 413 (the server reads and drops the rest before closing)
    c = Conn(emr.server_address[1])
    try:
        c.sock.sendall(request("POST", "/fhir/Observation", None, {"Content-Type": FJ, "Content-Length": str(4 * big)}))
        try:
            c.sock.sendall(b"x" * (4 * big))
        except OSError:
            pass
        r = c.reply()
        assert r.status == 413
    finally:
        c.close()


def test_http_0_9_and_unknown_versions_get_a_status_line(conn, emr):
    r = conn.send(b"GET /fhir/metadata\r\n").reply()
    assert r.status == 400 and r.issue()
    r = one(emr, "OPTIONS", "*")
    assert r.status == 200 and "OPTIONS" in r.headers["allow"]


def test_the_error_log_is_bounded(emr, capfd):
    before = emr.stats["handler_errors"]
    for i in range(httpd.MAX_LOGGED + 5):
        emr.log_error(f"test {i}", RuntimeError(f"e{i}"))
    err = capfd.readouterr().err
    logged = httpd.MAX_LOGGED - min(before, httpd.MAX_LOGGED)
    assert err.count("RuntimeError: e") == logged and emr.stats["handler_errors"] == before + httpd.MAX_LOGGED + 5


# -- finding 3: FHIR conformance -------------------------------------------------------------------------------
@pytest.mark.parametrize("ctype, status", [
    ("text/plain", 415), ("application/x-www-form-urlencoded", 415), ("application/fhir+xml", 415),
    ("application/fhir+json; charset=latin-1", 415),
    (None, 415),
    ("application/fhir+json", 201), ("application/json", 201), ("application/fhir+json; charset=utf-8", 201),
    ("Application/FHIR+JSON;fhirVersion=4.0", 201), ("application/json+fhir", 201),
])
def test_post_content_type(conn, ctype, status):
    raw = json.dumps(obs()).encode()
    h = {"Content-Type": ctype} if ctype else {}
    r = conn.send(request("POST", "/fhir/Observation", raw, h)).reply()
    assert r.status == status, r
    if status == 415:
        assert "Content-Type" in r.issue()["diagnostics"]
    still_serves(conn)


@pytest.mark.parametrize("path, accept, status", [
    ("/fhir/Patient/1", "application/fhir+xml", 406),
    ("/fhir/Patient/1", "application/xml", 406),
    ("/fhir/Patient/1", "application/fhir+json;q=0", 406),
    ("/fhir/Patient?_format=xml", None, 406),
    ("/fhir/Patient/1?_format=application/fhir%2Bxml", None, 406),
    ("/fhir/metadata?_format=text/xml", None, 406),
    ("/fhir/Patient/1?_format=json", None, 200),
    ("/fhir/Patient/1?_format=application/fhir%2Bjson", None, 200),
    ("/fhir/Patient/1?_format=application/json", None, 200),
    ("/fhir/Patient/1", "application/fhir+json", 200),
    ("/fhir/Patient/1", "application/json", 200),
    ("/fhir/Patient/1", "*/*", 200),
    ("/fhir/Patient/1", "application/*", 200),
    ("/fhir/Patient/1", "application/fhir+xml, application/fhir+json;q=0.5", 200),
    ("/fhir/Patient/1", "application/fhir+json; fhirVersion=4.0", 200),
    ("/fhir/Patient/1", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 200),  # a browser
])
def test_only_json_is_offered(emr, path, accept, status):
    r = one(emr, "GET", path, headers={"Accept": accept} if accept else None)
    assert r.status == status, r
    assert r.headers["content-type"].startswith("application/fhir+json")
    if status == 406:
        assert "json" in r.issue()["diagnostics"]


def test_post_with_an_xml_accept_is_406_and_nothing_is_created(emr, conn):
    before = emr.store.counts()["Observation"]
    r = post(conn, obs(), **{"Accept": "application/fhir+xml"})
    assert r.status == 406
    assert emr.store.counts()["Observation"] == before
    still_serves(conn)


@pytest.mark.parametrize("path, allow", [
    ("/fhir/Patient", {"GET", "HEAD", "OPTIONS"}),
    ("/fhir/Observation", {"GET", "HEAD", "POST", "OPTIONS"}),
    ("/fhir/Observation/1", {"GET", "HEAD", "OPTIONS"}),
    ("/fhir/metadata", {"GET", "HEAD", "OPTIONS"}),
    ("/fhir/Patient/_search", {"POST", "OPTIONS"}),
])
def test_options_says_what_is_allowed(emr, path, allow):
    r = one(emr, "OPTIONS", path)
    assert r.status == 200, r
    assert {m.strip() for m in r.headers["allow"].split(",")} == allow


@pytest.mark.parametrize("method, path, allow", [
    ("PUT", "/fhir/Patient/1", {"GET", "HEAD", "OPTIONS"}),
    ("DELETE", "/fhir/Observation/1", {"GET", "HEAD", "OPTIONS"}),
    ("PATCH", "/fhir/Patient/1", {"GET", "HEAD", "OPTIONS"}),
    ("POST", "/fhir/Patient", {"GET", "HEAD", "OPTIONS"}),
    ("POST", "/fhir/metadata", {"GET", "HEAD", "OPTIONS"}),
    ("DELETE", "/fhir/Observation", {"GET", "HEAD", "POST", "OPTIONS"}),
    ("GET", "/fhir/Observation/_search", {"POST", "OPTIONS"}),
])
def test_405_carries_allow(emr, method, path, allow):
    r = one(emr, method, path, body=b"{}", headers={"Content-Type": FJ})
    assert r.status == 405, r
    assert {m.strip() for m in r.headers["allow"].split(",")} == allow
    assert r.issue()["code"] == "not-supported"


def test_an_unknown_method_is_501_as_an_operation_outcome(emr):
    r = one(emr, "BREW", "/fhir/Patient")
    assert r.status == 501 and r.headers["content-type"].startswith("application/fhir+json")
    assert r.issue()["code"] == "not-supported"
    r = one(emr, "GET", "/other")
    assert r.status == 404 and r.issue()["code"] == "not-found"


def test_a_malformed_request_line_gets_an_operation_outcome(conn):
    r = conn.send(b"GET /fhir/metadata HTTP/9.9\r\n\r\n").reply()
    assert r.status in (400, 505) and r.issue()
    assert conn.closed()


def test_urls_come_from_the_server_not_the_host_header(emr, conn):
    base = f"http://emr-test:{emr.server_address[1]}/fhir"
    b = one(emr, "GET", "/fhir/Patient?_count=2", host="evil.example").json()
    assert b["link"][0]["url"] == f"{base}/Patient?_count=2"
    assert [e["fullUrl"] for e in b["entry"]] == [f"{base}/Patient/1", f"{base}/Patient/2"]
    cs = one(emr, "GET", "/fhir/metadata", host="evil.example").json()
    assert cs["implementation"]["url"] == base
    r = conn.send(request("POST", "/fhir/Observation", json.dumps(obs()), {"Content-Type": FJ}, host="evil.example")
                  ).reply()
    assert r.status == 201 and r.headers["location"].startswith(base + "/Observation/")
    assert "evil" not in r.body.decode()


def test_the_default_port_is_left_out_of_urls():
    assert fhir_server.base_url("emr", 443, tls=True) == "https://emr/fhir"
    assert fhir_server.base_url("emr", 8443, tls=True) == "https://emr:8443/fhir"
    assert fhir_server.base_url("emr", 80, tls=False) == "http://emr/fhir"
    assert fhir_server.base_url("fd00::5", 443, tls=True) == "https://[fd00::5]/fhir"


def test_the_location_of_a_created_resource_can_be_read(emr, conn):
    r = post(conn, obs())
    assert r.status == 201
    path = "/fhir/" + r.headers["location"].split("/fhir/", 1)[1]
    got = conn.send(request("GET", path)).reply()
    assert got.status == 200 and got.json()["id"] == r.json()["id"] and got.headers["etag"] == 'W/"1"'
    assert conn.send(request("GET", path[:-1] + "2")).reply().status == 404
    assert conn.send(request("GET", "/fhir/Patient/1/_history/1")).reply().status == 200


def _births(emr) -> list[dt.date]:
    return [dt.date.fromisoformat(p["birthDate"]) for p in emr.store.res["Patient"].values()]


@pytest.mark.parametrize("q, pred", [
    ("ge1980-01-01", lambda d: d >= dt.date(1980, 1, 1)),
    ("gt1980-01-01", lambda d: d > dt.date(1980, 1, 1)),
    ("le1980-01-01", lambda d: d <= dt.date(1980, 1, 1)),
    ("lt1980-01-01", lambda d: d < dt.date(1980, 1, 1)),
    ("sa1980-01-01", lambda d: d > dt.date(1980, 1, 1)),
    ("eb1980-01-01", lambda d: d < dt.date(1980, 1, 1)),
    ("eq1980", lambda d: d.year == 1980),
    ("1980", lambda d: d.year == 1980),
    ("ne1980", lambda d: d.year != 1980),
    ("ge1980-06", lambda d: d >= dt.date(1980, 6, 1)),
    ("gt1980-06", lambda d: d >= dt.date(1980, 7, 1)),
    ("le1980-06", lambda d: d < dt.date(1980, 7, 1)),
    ("lt1980", lambda d: d.year < 1980),
    ("ge1960,lt1940", lambda d: d.year >= 1960 or d.year < 1940),  # a comma is OR
])
def test_birthdate_search_takes_fhir_date_prefixes(emr, q, pred):
    r = one(emr, "GET", f"/fhir/Patient?birthdate={q}&_summary=count")
    assert r.status == 200, r
    expect = sum(pred(d) for d in _births(emr))
    assert 0 < expect < 300 and r.json()["total"] == expect


def test_birthdate_exact_and_two_bounds(emr):
    born = emr.store.read("Patient", "7")["birthDate"]
    b = one(emr, "GET", f"/fhir/Patient?birthdate={born}&_count=200").json()
    assert "7" in {e["resource"]["id"] for e in b["entry"]}
    assert all(e["resource"]["birthDate"] == born for e in b["entry"])
    r = one(emr, "GET", "/fhir/Patient?birthdate=ge1970&birthdate=lt1980&_summary=count").json()
    assert r["total"] == sum(1970 <= d.year < 1980 for d in _births(emr))


@pytest.mark.parametrize("q", ["ap1980", "1980-13-01", "yesterday", "xx1980", "1980-02-30", "1980-01-01T00:00"])
def test_bad_birthdate_values_are_400_and_say_what_is_taken(emr, q):
    r = one(emr, "GET", f"/fhir/Patient?birthdate={q}")
    assert r.status == 400, r
    assert "eq, ne, gt, lt, ge, le" in r.issue()["diagnostics"]


def test_string_modifiers_exact_and_contains(emr):
    pats = list(emr.store.res["Patient"].values())

    def parts(p):
        n = p["name"][0]
        return [n["family"], *n["given"], n["text"]]

    b = one(emr, "GET", "/fhir/Patient?name:exact=Wang&_summary=count").json()
    assert b["total"] == sum("Wang" in parts(p) for p in pats) > 0
    assert one(emr, "GET", "/fhir/Patient?name:exact=wang&_summary=count").json()["total"] == 0  # case matters
    b = one(emr, "GET", "/fhir/Patient?family:exact=Wang&_summary=count").json()
    assert b["total"] == sum(p["name"][0]["family"] == "Wang" for p in pats)
    b = one(emr, "GET", "/fhir/Patient?name:contains=ANG&_summary=count").json()
    assert b["total"] == sum(any("ang" in x.lower() for x in parts(p)) for p in pats) > 0
    b = one(emr, "GET", "/fhir/Patient?given:contains=in&_summary=count").json()
    assert b["total"] == sum(any("in" in g.lower() for g in p["name"][0]["given"]) for p in pats) > 0


@pytest.mark.parametrize("q", ["name:missing=true", "gender:exact=male", "name:text=x", "patient:exact=1",
                               "encounter:Patient=1", "code:text=heart"])
def test_other_modifiers_are_refused_by_name(emr, q):
    rtype = "Patient" if q.startswith(("name", "gender")) else "Observation"
    r = one(emr, "GET", f"/fhir/{rtype}?{q}")
    assert r.status == 400 and q.split("=")[0] in r.issue()["diagnostics"], r


def test_reference_type_modifiers(emr):
    n = one(emr, "GET", "/fhir/Observation?patient=1&_summary=count").json()["total"]
    assert one(emr, "GET", "/fhir/Observation?patient:Patient=1&_summary=count").json()["total"] == n > 0
    assert one(emr, "GET", "/fhir/Observation?subject:Patient=Patient/1&_summary=count").json()["total"] == n
    e = one(emr, "GET", "/fhir/Observation?encounter:Encounter=1&_summary=count").json()["total"]
    assert e == one(emr, "GET", "/fhir/Observation?encounter=Encounter/1&_summary=count").json()["total"] > 0


def test_comma_separated_values_are_or(emr):
    assert one(emr, "GET", "/fhir/Patient?gender=male,female&_summary=count").json()["total"] == 300
    n1 = one(emr, "GET", "/fhir/Observation?patient=1&_summary=count").json()["total"]
    n2 = one(emr, "GET", "/fhir/Observation?patient=2&_summary=count").json()["total"]
    b = one(emr, "GET", "/fhir/Observation?patient=1,2&_count=200").json()
    assert b["total"] == n1 + n2 and [int(e["resource"]["id"]) for e in b["entry"]] == sorted(
        int(e["resource"]["id"]) for e in b["entry"])


def test_search_by_post(emr, conn):
    r = post(conn, "name=wang&_summary=count", "application/x-www-form-urlencoded", "/fhir/Patient/_search")
    assert r.status == 200 and r.json()["type"] == "searchset"
    assert r.json()["total"] == one(emr, "GET", "/fhir/Patient?name=wang&_summary=count").json()["total"] > 0
    r = post(conn, "", "application/x-www-form-urlencoded", "/fhir/Observation/_search?patient=3&_count=1")
    assert r.status == 200 and r.json()["entry"][0]["resource"]["subject"]["reference"] == "Patient/3"
    r = post(conn, json.dumps({"name": "wang"}), FJ, "/fhir/Patient/_search")
    assert r.status == 415


def test_the_capability_statement_declares_exactly_what_is_served(emr):
    cs = one(emr, "GET", "/fhir/metadata").json()
    assert cs["format"] == ["json"]
    rest = cs["rest"][0]
    res = {r["type"]: r for r in rest["resource"]}
    assert set(res) == {"Patient", "Encounter", "Observation", "DiagnosticReport"}
    for t, r in res.items():
        codes = {i["code"] for i in r["interaction"]}
        assert codes == ({"read", "vread", "search-type", "create"} if t == "Observation"
                         else {"read", "vread", "search-type"}), (t, codes)
        # every declared search parameter works, with a plausible value
        for sp in r["searchParam"]:
            value = {"date": "ge1980", "reference": "1", "string": "wa", "token": "1"}[sp["type"]]
            got = one(emr, "GET", f"/fhir/{t}?{sp['name']}={value}&_summary=count")
            assert got.status == 200, (t, sp, got)
    pat = {p["name"]: p for p in res["Patient"]["searchParam"]}
    assert pat["birthdate"]["type"] == "date" and "ge" in pat["birthdate"]["documentation"]
    assert ":exact" in pat["name"]["documentation"] and ":contains" in pat["name"]["documentation"]
    # interactions not declared are refused
    assert one(emr, "POST", "/fhir/Patient", b"{}", {"Content-Type": FJ}).status == 405
    assert one(emr, "PUT", "/fhir/Observation/1", b"{}", {"Content-Type": FJ}).status == 405
    assert one(emr, "GET", "/fhir/Observation/1/_history").status in (404, 405)
    assert one(emr, "GET", "/fhir/Patient/1/$everything").status in (404, 405)


def test_head_has_no_body_but_the_get_headers(emr):
    r = one(emr, "HEAD", "/fhir/Patient/1")
    assert r.status == 200 and int(r.headers["content-length"]) > 0 and r.body == b""


# -- the same findings against the server as its own process, over TLS, with curl ----------------------------
@pytest.fixture(scope="module")
def tls_emr(tmp_path_factory):
    d: Path = tmp_path_factory.mktemp("pki")
    pki.make_pki(d, "t0c3", {"localhost": "127.0.0.1"})
    proc, port = start("traffic.fhir_server", "--node", "localhost", "--cert", str(d / "localhost.crt"),
                       "--key", str(d / "localhost.key"))
    yield port, str(d / "ca.crt")
    stop(proc)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CURL, "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=20)


@needs_curl
def test_curl_gets_a_reply_for_every_finding(tls_emr):
    port, ca = tls_emr
    url = f"https://localhost:{port}/fhir"

    def go(*args: str) -> tuple[str, dict]:
        r = curl("--cacert", ca, "-w", "\n%{http_code}", *args)
        assert r.returncode == 0, r.stderr  # never "Empty reply from server"
        body, _, code = r.stdout.rpartition("\n")
        return code, json.loads(body) if body else {}

    for bad in ('{"resourceType":"Observation","status":["final"]}',
                '{"resourceType":"Observation","status":"final","code":{"text":"x"},'
                '"subject":{"reference":["Patient/1"]}}',
                '{"resourceType":["Observation"]}',
                '{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":'
                '"Patient/1"},"valueQuantity":"seventy","effectiveDateTime":12}'):
        code, oo = go("-H", f"Content-Type: {FJ}", "--data", bad, f"{url}/Observation")
        assert code == "400" and oo["resourceType"] == "OperationOutcome", (bad, code, oo)
    code, _ = go("-H", "Content-Type: text/plain", "--data", json.dumps(obs()), f"{url}/Observation")
    assert code == "415"
    code, _ = go("-H", "Transfer-Encoding: chunked", "-H", f"Content-Type: {FJ}", "--data", json.dumps(obs()),
                 f"{url}/Observation")
    assert code == "201"
    assert go("-H", "Accept: application/fhir+xml", f"{url}/Patient/1")[0] == "406"
    assert go(f"{url}/Patient/1?_format=xml")[0] == "406"
    code, b = go("-H", "Host: evil.example", f"{url}/Patient?_count=1")
    assert code == "200" and b["entry"][0]["fullUrl"] == f"https://localhost:{port}/fhir/Patient/1"
    r = curl("--cacert", ca, "-i", "-X", "OPTIONS", f"{url}/Observation")
    assert r.stdout.startswith("HTTP/1.1 200") and "Allow: GET, HEAD, POST, OPTIONS" in r.stdout
    r = curl("--cacert", ca, "-i", "-X", "PUT", f"{url}/Patient/1")
    assert r.stdout.startswith("HTTP/1.1 405") and "Allow: GET, HEAD, OPTIONS" in r.stdout
    code, b = go(f"{url}/Patient?birthdate=ge1980-01-01&_summary=count")
    assert code == "200" and b["total"] > 0
    code, b = go(f"{url}/Patient?name:exact=Wang&_summary=count")
    assert code == "200" and b["total"] > 0
