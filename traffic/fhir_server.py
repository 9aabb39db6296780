"""The EMR: FHIR R4 REST over HTTPS (`python -m traffic.fhir_server --bind IP --port 443 --cert C --key K`).

Why an emulator and not a real FHIR server (HAPI, etc.): none is packaged for
Debian, and a JVM per EMR node would not fit a 2-core machine running the
whole alliance. This speaks the part of FHIR R4's RESTful API that ward-round
terminals and doctors' tablets use, so real clients (curl, any FHIR client)
work against it:

  GET  /fhir/metadata                  CapabilityStatement (exactly the interactions below)
  GET  /fhir/{type}/{id}               read (Patient, Encounter, Observation, DiagnosticReport)
  GET  /fhir/{type}/{id}/_history/1    vread (every resource has the one version)
  GET  /fhir/{type}?param=value...     search: a searchset Bundle (e.g. Patient?name=wang,
                                       Patient?birthdate=ge1980, Patient?name:exact=Wang,
                                       Observation?patient=12&code=8867-4, _count, _summary=count)
  POST /fhir/{type}/_search            the same search, parameters form-encoded in the body
  POST /fhir/Observation               create: 201 with Location; the only type that can be created
  OPTIONS any of these                 200 with Allow; other methods 405 (with Allow) or 501

JSON only: a request asking for XML (Accept, _format) gets 406, a body that is
not application/fhir+json or application/json 415. Replies are
application/fhir+json; errors are OperationOutcomes, also for HTTP-level errors
and for a bug (500, logged). URLs in replies (Location, Bundle links and
fullUrls) are built from --node and the port, never from the request's Host
header. Records come from traffic.fhir_data (deterministic for a seed). TLS
1.2+ with the node's certificate from the run's CA; without --cert/--key it
serves plain HTTP (local debugging only: the service catalogue always passes
them).
"""
from __future__ import annotations

import argparse
import functools
import sys
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from traffic import fhir_data
from traffic.httpd import Handler, Server, serve, tls_context

FHIR_JSON = "application/fhir+json; charset=utf-8"
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")  # the last: DSTU2's name
FORM = "application/x-www-form-urlencoded"
# HTTP status -> OperationOutcome issue type, for the errors the HTTP layer answers
ISSUE = {400: "invalid", 404: "not-found", 405: "not-supported", 406: "not-supported", 408: "timeout",
         411: "invalid", 413: "too-costly", 414: "too-long", 415: "not-supported", 431: "too-long",
         500: "exception", 501: "not-supported", 505: "not-supported"}


def base_url(node: str, port: int, tls: bool) -> str:
    """The FHIR base this server names itself by (its node name, the port unless the scheme's default)."""
    scheme, default = ("https", 443) if tls else ("http", 80)
    host = f"[{node}]" if ":" in node else node
    return f"{scheme}://{host}{'' if port == default else f':{port}'}/fhir"


@functools.lru_cache(maxsize=256)
def accepts_json(accept: str) -> bool:
    """Whether an Accept header admits JSON: some media range with q > 0 matching a FHIR JSON type."""
    for item in accept.split(","):
        mtype, *params = (p.strip() for p in item.split(";"))
        mtype = mtype.lower()
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > 0 and (mtype in JSON_TYPES or mtype in ("*/*", "application/*")):
            return True
    return not accept.strip()  # an empty Accept says nothing


def format_is_json(fmt: str) -> bool:
    """_format: json, or a JSON MIME type (a + left unescaped in the URL arrives as a space)."""
    f = fmt.split(";", 1)[0].strip().lower().replace(" ", "+")
    return f == "json" or f in JSON_TYPES


def content_type_problem(ctype: str | None, wanted: tuple[str, ...]) -> str | None:
    """Why a request body's Content-Type is not one of `wanted` in UTF-8 (None: it is)."""
    if not ctype:
        return f"Content-Type is missing (send {wanted[0]})"
    mtype, *params = (p.strip() for p in ctype.split(";"))
    if mtype.lower() not in wanted:
        return f"Content-Type {mtype} is not supported here (send {' or '.join(wanted[:2])})"
    for p in params:
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset" and v.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return f"Content-Type charset {v.strip()} is not supported (UTF-8 only)"
    return None


class FhirHandler(Handler):
    server: "FhirServer"

    # -- replies ----------------------------------------------------------------------------------------
    def reply(self, status: int, obj, headers: dict[str, str] | None = None) -> None:
        self.send_json(status, obj, FHIR_JSON, headers)

    def fail(self, status: int, code: str, text: str, headers: dict[str, str] | None = None) -> None:
        self.reply(status, fhir_data.outcome("error", code, text), headers)

    def error_reply(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self.fail(status, ISSUE.get(status, "processing"), text, headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's errors (a malformed request line or headers): an OperationOutcome, then close."""
        self.reply_version()
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.error_reply(int(code), message or phrase)

    def no_such_method(self) -> None:
        self.fail(501, "not-supported", f"method {self.command} is not supported "
                                        f"(this EMR offers GET, HEAD, POST and OPTIONS)")

    # -- routing ----------------------------------------------------------------------------------------
    def allowed(self, parts: list[str]) -> tuple[str, ...] | None:
        """The methods an endpoint takes (None: no such endpoint)."""
        if parts == ["metadata"]:
            return ("GET", "HEAD", "OPTIONS")
        if not parts or parts[0] not in fhir_data.SEARCH:
            return None
        if len(parts) == 1:
            return ("GET", "HEAD", "POST", "OPTIONS") if parts[0] in fhir_data.CREATABLE else ("GET", "HEAD", "OPTIONS")
        if parts[1] == "_search" and len(parts) == 2:
            return ("POST", "OPTIONS")
        if len(parts) == 2 or (len(parts) == 4 and parts[2] == "_history"):
            return ("GET", "HEAD", "OPTIONS")
        return None

    def dispatch(self) -> None:
        if self.path == "*" and self.command == "OPTIONS":  # the server as a whole (RFC 9110 9.3.7)
            self.send_body(200, b"", None, {"Allow": "GET, HEAD, POST, OPTIONS"})
            return
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if not parts or parts[0] != "fhir":
            self.fail(404, "not-found", f"no such endpoint {url.path} (the FHIR base is /fhir)")
            return
        parts = parts[1:]
        allow = self.allowed(parts)
        if allow is None:
            if parts and parts[0] not in fhir_data.SEARCH and parts != ["metadata"]:
                self.fail(404, "not-supported", f"unknown resource type {parts[0]} "
                                                f"(this EMR has {', '.join(fhir_data.SEARCH)})")
            else:
                self.fail(404, "not-found", f"no such endpoint {url.path}")
            return
        if self.command == "OPTIONS":
            self.send_body(200, b"", None, {"Allow": ", ".join(allow)})
            return
        if self.command not in allow:
            only = (f"; only {', '.join(sorted(fhir_data.CREATABLE))} can be created"
                    if self.command == "POST" and len(parts) == 1 else "")
            self.fail(405, "not-supported", f"{self.command} is not supported on {url.path} "
                                            f"(allowed: {', '.join(allow)}){only}", {"Allow": ", ".join(allow)})
            return
        params = parse_qs(url.query, keep_blank_values=False)
        if not self.negotiate(params):
            return
        if self.command == "POST":
            if len(parts) == 2:
                self.search_post(parts[0], params)
            else:
                self.create(parts[0])
        elif parts == ["metadata"]:
            self.reply(200, fhir_data.capability_statement(self.server.base))
        elif len(parts) == 1:
            self.search(parts[0], params, url.query)
        else:
            self.read(parts)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = dispatch

    def negotiate(self, params: dict[str, list[str]]) -> bool:
        """JSON is all this server writes: 406 for a request that will not take it (FHIR http 3.1.0.1.7)."""
        fmt = params.get("_format")
        if fmt and not format_is_json(fmt[-1]):
            self.fail(406, "not-supported", f"_format={fmt[-1]} is not supported: this EMR speaks JSON only "
                                            f"(_format=json, application/fhir+json or application/json)")
            return False
        accept = self.headers.get("Accept")
        if not fmt and accept is not None and not accepts_json(accept):
            self.fail(406, "not-supported", f"Accept: {accept[:80]} admits no format this EMR writes: JSON only "
                                            f"(application/fhir+json or application/json)")
            return False
        return True

    # -- interactions -----------------------------------------------------------------------------------
    def read(self, parts: list[str]) -> None:
        r = self.server.store.read(parts[0], parts[1])
        if r is None:
            self.fail(404, "not-found", f"{parts[0]}/{parts[1]} is not known")
        elif len(parts) == 4 and parts[3] != r["meta"]["versionId"]:
            self.fail(404, "not-found", f"{parts[0]}/{parts[1]} has no version {parts[3]} "
                                        f"(its version is {r['meta']['versionId']})")
        else:
            self.reply(200, r, {"ETag": f'W/"{r["meta"]["versionId"]}"'})

    def search(self, rtype: str, params: dict[str, list[str]], query: str) -> None:
        try:
            entries, total = self.server.store.search(rtype, params)
        except LookupError as exc:
            self.fail(404, "not-supported", str(exc))
        except ValueError as exc:
            self.fail(400, "invalid", str(exc))
        else:
            self.reply(200, fhir_data.bundle(self.server.base, rtype, query, entries, total))

    def search_post(self, rtype: str, params: dict[str, list[str]]) -> None:
        problem = content_type_problem(self.headers.get("Content-Type"), (FORM,))
        if problem:
            self.fail(415, "not-supported", problem)
            return
        try:
            form = self.read_body().decode("utf-8")
        except UnicodeDecodeError:
            self.fail(400, "invalid", "the form is not UTF-8")
            return
        merged = dict(params)
        for k, v in parse_qs(form, keep_blank_values=False).items():
            merged[k] = merged.get(k, []) + v
        self.search(rtype, merged, urlencode(merged, doseq=True))

    def create(self, rtype: str) -> None:
        problem = content_type_problem(self.headers.get("Content-Type"), JSON_TYPES)
        if problem:
            self.fail(415, "not-supported", problem)
            return
        body = self.read_json()  # RequestError (400, 413, 501) is answered by Handler
        if isinstance(body, dict) and body.get("resourceType") != rtype and isinstance(body.get("resourceType"), str):
            self.fail(400, "invalid", f"resourceType {body['resourceType']} does not match the endpoint {rtype}")
            return
        try:
            r = self.server.store.create(body)
        except fhir_data.Invalid as exc:
            self.reply(exc.status, exc.outcome())
        else:
            loc = f"{self.server.base}/{r['resourceType']}/{r['id']}/_history/1"
            self.reply(201, r, {"Location": loc, "ETag": 'W/"1"'})


class FhirServer(Server):
    def __init__(self, addr, store: fhir_data.Store, node: str, **kw):
        self.store = store
        self.node = node
        super().__init__(addr, FhirHandler, **kw)
        self.base = base_url(node, self.server_address[1], self.tls is not None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--cert", help="server certificate (PEM); with --key: serve HTTPS only")
    ap.add_argument("--key")
    ap.add_argument("--node", default="emr", help="this server's host name, in the URLs of its replies")
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
