"""The HTTP(S) servers on the loopback interface, with real clients (curl, openssl s_client) and the agent.

No root and no network: each server runs as its own process on 127.0.0.1 with
a certificate for `localhost` from a CA made by the testbed's own PKI code
(and a second, unrelated CA for the must-fail cases).
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.engine import pki

from tests.traffic.loopback import start, stop

CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed (scripts/setup.sh installs it)")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    pki.make_pki(d, "t0a1", {"localhost": "127.0.0.1"})
    pki.make_ca(d / "other", "t0b2")  # another CA: its ca.crt must not verify our servers
    return d


@pytest.fixture(scope="module")
def emr(certs):
    proc, port = start("traffic.fhir_server", "--node", "localhost", "--cert", str(certs / "localhost.crt"),
                        "--key", str(certs / "localhost.key"))
    yield port
    log = stop(proc)
    assert "BEGIN" not in log and "PRIVATE" not in log  # no key material in the daemon log


@pytest.fixture(scope="module")
def payments(certs):
    proc, port = start("traffic.web_server", "--payments", "--node", "pay-1", "--cert",
                        str(certs / "localhost.crt"), "--key", str(certs / "localhost.key"))
    yield port
    stop(proc)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CURL, "-sS", "--max-time", "10", *args], capture_output=True, text=True, timeout=20)


def agent(port: int, *args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "traffic.http_client", "--host", "localhost", "--ip", "127.0.0.1",
                        "--port", str(port), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@needs_curl
def test_curl_reads_searches_and_posts_fhir(emr, certs):
    ca = str(certs / "ca.crt")
    r = curl("--cacert", ca, "-w", "\n%{http_code} %{content_type}", f"https://localhost:{emr}/fhir/Patient/1")
    body, _, meta = r.stdout.rpartition("\n")
    assert r.returncode == 0, r.stderr
    assert meta.startswith("200 application/fhir+json")
    patient = json.loads(body)
    assert patient["resourceType"] == "Patient" and patient["id"] == "1"

    family = patient["name"][0]["family"]
    b = json.loads(curl("--cacert", ca, f"https://localhost:{emr}/fhir/Patient?name={family.lower()}").stdout)
    assert b["resourceType"] == "Bundle" and b["type"] == "searchset" and b["total"] >= 1
    assert "1" in {e["resource"]["id"] for e in b["entry"]}

    b = json.loads(curl("--cacert", ca, f"https://localhost:{emr}/fhir/Observation?patient=1&_count=200").stdout)
    assert b["total"] == len(b["entry"]) > 0
    assert all(e["resource"]["subject"]["reference"] == "Patient/1" for e in b["entry"])

    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "Heart rate"},
           "subject": {"reference": "Patient/1"}, "valueQuantity": {"value": 71, "unit": "/min"}}
    r = curl("--cacert", ca, "-i", "-H", "Content-Type: application/fhir+json", "--data", json.dumps(obs),
             f"https://localhost:{emr}/fhir/Observation")
    head, _, body = r.stdout.partition("\n\n")  # text mode: \r\n read as \n
    assert head.startswith("HTTP/1.1 201"), r.stdout
    created = json.loads(body)
    assert f"/fhir/Observation/{created['id']}/_history/1" in head
    again = json.loads(curl("--cacert", ca, f"https://localhost:{emr}/fhir/Observation/{created['id']}").stdout)
    assert again["valueQuantity"]["value"] == 71

    cs = json.loads(curl("--cacert", ca, f"https://localhost:{emr}/fhir/metadata").stdout)
    assert cs["resourceType"] == "CapabilityStatement"
    r = curl("--cacert", ca, "-w", "%{http_code}", "-o", "/dev/null", f"https://localhost:{emr}/fhir/Patient/99999")
    assert r.stdout == "404"
    r = curl("--cacert", ca, "-w", "%{http_code}", "-o", "/dev/null", "-H", "Content-Type: application/fhir+json",
             "--data", "{not json", f"https://localhost:{emr}/fhir/Observation")
    assert r.stdout == "400"
    r = curl("--cacert", ca, "-w", "%{http_code}", "-o", "/dev/null", "--data", json.dumps(obs),
             f"https://localhost:{emr}/fhir/Observation")  # curl's default type, form-urlencoded: not FHIR
    assert r.stdout == "415"


@needs_curl
def test_plaintext_and_foreign_ca_are_refused(emr, payments, certs):
    for port, path in ((emr, "/fhir/metadata"), (payments, "/health")):
        r = curl(f"http://localhost:{port}{path}")
        assert r.returncode != 0 and not r.stdout, (r.returncode, r.stdout)  # plaintext gets no HTTP reply
        r = curl("--cacert", str(certs / "other" / "ca.crt"), f"https://localhost:{port}{path}")
        assert r.returncode == 60, r.stderr  # curl: peer certificate cannot be authenticated
    # TLS 1.1 and older are not offered
    r = curl("--cacert", str(certs / "ca.crt"), "--tls-max", "1.1", f"https://localhost:{emr}/fhir/metadata")
    assert r.returncode != 0


@needs_openssl
def test_openssl_s_client_verifies_the_chain(emr, certs):
    r = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{emr}", "-servername", "localhost",
                        "-verify_hostname", "localhost", "-CAfile", str(certs / "ca.crt"), "-verify_return_error",
                        "-brief"], input="", capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "Verification: OK" in r.stderr and "TLSv1.3" in r.stderr
    r = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{emr}", "-CAfile",
                        str(certs / "other" / "ca.crt"), "-verify_return_error", "-brief"],
                       input="", capture_output=True, text=True, timeout=20)
    assert r.returncode != 0


def test_agent_runs_the_emr_mix_and_rejects_a_foreign_ca(emr, certs):
    got = agent(emr, "--ca", str(certs / "ca.crt"), "--profile", "emr", "--rate", "40", "--duration", "2",
                "--mix", "read=4,search=3,find=1,post=2")
    assert got["errors"] == [] and got["sent"] == got["received"] == 80
    assert got["ops"] == {"read": 32, "search": 24, "find": 8, "post": 16}
    assert got["status"] == {"200": 64, "201": 16}
    assert len(got["latency_ms"]) == 80 and got["tls"].startswith("TLSv1.3")
    lat = sorted(got["latency_ms"])
    print(f"loopback EMR mix: p50 {lat[39]:.2f} ms, p95 {lat[75]:.2f} ms")

    bad = agent(emr, "--ca", str(certs / "other" / "ca.crt"), "--profile", "emr", "--rate", "10", "--duration", "1")
    assert bad["received"] == 0 and bad["sent"] == len(bad["errors"]) == 10
    assert all("certificate rejected" in e for e in bad["errors"]), bad["errors"][:2]
    plain = agent(emr, "--profile", "get", "--path", "/fhir/metadata", "--rate", "10", "--duration", "0.5")
    assert plain["received"] == 0 and len(plain["errors"]) == plain["sent"] == 5


def test_agent_pays_at_a_kiosk(payments, certs):
    got = agent(payments, "--ca", str(certs / "ca.crt"), "--profile", "payment", "--rate", "20", "--duration", "1",
                "--source", "kiosk-01")
    assert got["errors"] == [] and got["sent"] == got["received"] == 20 and got["status"] == {"201": 20}
    r = curl("--cacert", str(certs / "ca.crt"), f"https://localhost:{payments}/payments/pay-1-00000020")
    receipt = json.loads(r.stdout)
    assert receipt["status"] == "approved" and receipt["kiosk"] == "kiosk-01"


def test_agent_counts_http_errors_and_timeouts(certs):
    proc, port = start("traffic.web_server", "--cache")
    try:
        got = agent(port, "--profile", "get", "--path", "/objects/nope", "--rate", "10", "--duration", "0.5")
        assert got["received"] == 0 and got["status"] == {"404": 5} and got["errors"][0].endswith("HTTP 404")
    finally:
        stop(proc)
    # a server that accepts and never answers: each request times out, and the run stays bounded in time
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        t0 = time.monotonic()
        got = agent(silent.getsockname()[1], "--profile", "get", "--rate", "4", "--duration", "1", "--timeout", "0.5")
        assert time.monotonic() - t0 < 10
        assert got["received"] == 0 and got["sent"] == len(got["errors"]) == 4
        assert any("timeout" in e for e in got["errors"])


@needs_curl
def test_cache_serves_exact_sizes_fast(certs):
    proc, port = start("traffic.web_server", "--cache", "--node", "mec-1")
    try:
        for name, size in (("1000", 1000), ("64k", 65536), ("ct-slice", 512 << 10), ("mammo-study", 160 << 20)):
            r = curl("-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
                     f"http://127.0.0.1:{port}/objects/{name}")
            code, got, secs = r.stdout.split()
            assert (code, int(got)) == ("200", size)
            if name == "mammo-study":
                print(f"loopback cache: 160 MiB in {float(secs):.3f} s "
                      f"({size * 8 / float(secs) / 1e9:.1f} Gbit/s)")
                assert float(secs) < 5
        r = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/objects/../../etc/passwd")
        assert r.stdout == "404"
        r = curl("-sI", f"http://127.0.0.1:{port}/objects/ct-study")
        assert "Content-Length: 3221225472" in r.stdout
    finally:
        out = stop(proc)
    assert "bytes_sent" in out


@needs_curl
def test_oa_pages():
    proc, port = start("traffic.web_server", "--node", "oa")
    try:
        for path in ("/", "/notices", "/meetings", "/forms/leave", "/directory"):
            r = curl("-w", "\n%{http_code} %{content_type}", f"http://127.0.0.1:{port}{path}")
            body, _, meta = r.stdout.rpartition("\n")
            assert meta == "200 text/html; charset=utf-8" and body.startswith("<!doctype html>")
        r = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/admin")
        assert r.stdout == "404"
    finally:
        stop(proc)
