"""The EMR: FHIR-style REST over HTTPS (`python -m traffic.fhir_server --bind IP --port 443 --cert C --key K`).

Why an emulator and not a real FHIR server (HAPI, etc.): none is packaged for
Debian, and a JVM per EMR node would not fit a 2-core machine running the
whole alliance. This speaks the part of FHIR R4's RESTful API that ward-round
terminals and doctors' tablets use, so real clients (curl, any FHIR client)
work against it:

  GET  /fhir/metadata                  CapabilityStatement
  GET  /fhir/{type}/{id}               read (Patient, Encounter, Observation, DiagnosticReport)
  GET  /fhir/{type}?param=value...     search: a searchset Bundle (e.g. Patient?name=wang,
                                       Observation?patient=12&code=8867-4, _count, _summary=count)
  POST /fhir/Observation               create: 201 with Location

Replies are application/fhir+json; errors are OperationOutcomes. Records come
from traffic.fhir_data (deterministic for a seed). TLS 1.2+ with the node's
certificate from the run's CA; without --cert/--key it serves plain HTTP
(local debugging only: the service catalogue always passes them).
"""
from __future__ import annotations

import argparse
import sys
from urllib.parse import parse_qs, urlsplit

from traffic import fhir_data
from traffic.httpd import Handler, Server, serve, tls_context

FHIR_JSON = "application/fhir+json; charset=utf-8"


class FhirHandler(Handler):
    server: "FhirServer"

    def base(self) -> str:
        host = self.headers.get("Host") or self.server.node
        return f"{'https' if self.server.tls else 'http'}://{host}/fhir"

    def reply(self, status: int, obj, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, obj, FHIR_JSON, headers)

    def fail(self, status: int, code: str, text: str) -> None:
        self.reply(status, fhir_data.outcome("error", code, text))

    def route(self) -> tuple[list[str], str] | None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        if not parts or parts[0] != "fhir":
            self.fail(404, "not-found", f"no such endpoint {url.path} (the FHIR base is /fhir)")
            return None
        return parts[1:], url.query

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        got = self.route()
        if got is None:
            return
        parts, query = got
        store = self.server.store
        if parts == ["metadata"]:
            self.reply(200, fhir_data.capability_statement(self.base()))
        elif len(parts) == 1:
            try:
                entries, total = store.search(parts[0], parse_qs(query, keep_blank_values=False))
            except LookupError as exc:
                self.fail(404, "not-supported", str(exc))
            except ValueError as exc:
                self.fail(400, "invalid", str(exc))
            else:
                self.reply(200, fhir_data.bundle(self.base(), parts[0], query, entries, total))
        elif len(parts) == 2:
            if parts[0] not in fhir_data.SEARCH:
                self.fail(404, "not-supported", f"unknown resource type {parts[0]}")
                return
            r = store.read(parts[0], parts[1])
            if r is None:
                self.fail(404, "not-found", f"{parts[0]}/{parts[1]} is not known")
            else:
                self.reply(200, r, {"ETag": f'W/"{r["meta"]["versionId"]}"'})
        else:
            self.fail(404, "not-found", f"no such endpoint {self.path}")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        got = self.route()
        if got is None:
            return
        parts, _query = got
        if len(parts) != 1 or parts[0] not in fhir_data.CREATABLE:
            self.fail(405, "not-supported", f"POST is supported on {', '.join(sorted(fhir_data.CREATABLE))} only")
            return
        try:
            body = self.read_json()
            r = self.server.store.create(body)
        except OverflowError as exc:
            self.fail(413, "too-costly", str(exc))
        except ValueError as exc:
            self.fail(400 if "JSON" in str(exc) else 422, "invalid", str(exc))
        else:
            loc = f"{self.base()}/{r['resourceType']}/{r['id']}/_history/1"
            self.reply(201, r, {"Location": loc, "ETag": 'W/"1"'})

    def do_PUT(self) -> None:  # noqa: N802
        self.fail(405, "not-supported", "this EMR offers read, search and create (POST) only")

    do_DELETE = do_PATCH = do_PUT


class FhirServer(Server):
    def __init__(self, addr, store: fhir_data.Store, node: str, **kw):
        self.store = store
        self.node = node
        super().__init__(addr, FhirHandler, **kw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--cert", help="server certificate (PEM); with --key: serve HTTPS only")
    ap.add_argument("--key")
    ap.add_argument("--node", default="emr", help="host name used in URLs when a request has no Host header")
    ap.add_argument("--patients", type=int, default=300, help=f"generated patients (1..{fhir_data.MAX_PATIENTS})")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-posted", type=int, default=10000, help="posted observations kept (oldest dropped)")
    ap.add_argument("--max-connections", type=int, default=256)
    a = ap.parse_args(argv)
    if bool(a.cert) != bool(a.key):
        ap.error("--cert and --key go together")
    store = fhir_data.Store(a.patients, a.seed, a.max_posted)
    tls = tls_context(a.cert, a.key) if a.cert else None
    server = FhirServer((a.bind, a.port), store, a.node, tls=tls, max_connections=a.max_connections)
    print(f"records: {store.counts()}", flush=True)
    serve(server, "FHIR EMR")
    return 0


if __name__ == "__main__":
    sys.exit(main())
