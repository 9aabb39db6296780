"""Small HTTP(S) services of the alliance, one program with a mode each.

  python -m traffic.web_server --bind IP --port 8080 --cache            MEC imaging cache
  python -m traffic.web_server --bind IP --port 8443 --payments --cert C --key K   payment back end
  python -m traffic.web_server --bind IP --port 80                       OA intranet (default)

Why emulators: what matters to the network is each service's traffic shape,
not its business logic. The cache answers `GET /objects/{size}` (bytes, or
with a k/M/G suffix) or a named object (`/objects/ct-study`, see OBJECTS)
with exactly that many bytes, streamed from one reusable buffer: a
transfer test measures the network, not the server's disk or memory. The
payment back end takes `POST /payments` (JSON) and answers a receipt, with
`GET /health` for kiosks' heartbeats. OA serves a few intranet HTML pages.
With --cert/--key every mode serves TLS 1.2+ only (plaintext refused).
"""
from __future__ import annotations

import argparse
import datetime as dt
import html
import re
import sys
import threading
from collections import OrderedDict
from urllib.parse import urlsplit

from traffic.httpd import Handler, RequestError, Server, serve, tls_context

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
# Named imaging objects (sizes from DOMAIN.md's references: a mammography study ~160 MB, a CT study ~3 GB)
OBJECTS = {"ct-slice": 512 * KIB, "xray": 8 * MIB, "ultrasound-clip": 24 * MIB, "mammo-study": 160 * MIB,
           "ct-study": 3 * GIB}
MAX_OBJECT = 16 * GIB
CHUNK = MIB
_BUF = memoryview(bytes(range(256)) * (CHUNK // 256))
_SIZE = re.compile(r"^(\d+)([kKmMgG]?)(i?[bB])?$")


def object_size(name: str) -> int | None:
    """Bytes meant by an object name: a named object, or a size like 1048576, 64k, 4M, 1GiB (binary units)."""
    if name in OBJECTS:
        return OBJECTS[name]
    m = _SIZE.match(name)
    if not m:
        return None
    n = int(m.group(1)) * {"": 1, "k": KIB, "m": MIB, "g": GIB}[m.group(2).lower()]
    return n if n <= MAX_OBJECT else None


class WebHandler(Handler):
    server: "WebServer"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        mode = self.server.mode
        if path == "/health":
            self.send_json(200, {"status": "ok", "service": mode, "node": self.server.node})
        elif mode == "cache":
            self.cache_get(path)
        elif mode == "payments":
            self.payment_get(path)
        else:
            self.oa_get(path)

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        if self.server.mode == "payments" and urlsplit(self.path).path == "/payments":
            self.payment_post()
        else:
            self.send_json(405, {"error": f"POST not supported on {urlsplit(self.path).path}"},
                           headers={"Allow": "GET, HEAD"})

    # -- MEC imaging cache ----------------------------------------------------------------------------
    def cache_get(self, path: str) -> None:
        if path in ("/objects", "/objects/"):
            self.send_json(200, {"objects": OBJECTS, "sized": "/objects/{bytes}[k|M|G]", "max": MAX_OBJECT})
            return
        name = path.removeprefix("/objects/") if path.startswith("/objects/") else None
        size = object_size(name) if name else None
        if size is None:
            self.send_json(404, {"error": f"no object {path}; try /objects/ct-slice or /objects/4M"})
            return
        self.server.count("status_200")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.send_header("Cache-Control", "max-age=3600")
        self.end_headers()
        if self.command == "HEAD":
            return
        left = size
        while left > 0:
            n = min(left, CHUNK)
            self.wfile.write(_BUF[:n])
            left -= n
        self.server.count("bytes_sent", size)

    # -- payment back end -----------------------------------------------------------------------------
    def payment_get(self, path: str) -> None:
        rid = path.removeprefix("/payments/") if path.startswith("/payments/") else None
        receipt = self.server.receipt(rid) if rid else None
        if receipt is None:
            self.send_json(404, {"error": f"no such receipt or endpoint {path}"})
        else:
            self.send_json(200, receipt)

    def payment_post(self) -> None:
        try:
            body = self.read_json()  # Content-Length or chunked
        except RequestError as exc:  # 400 not JSON, 413 too large, 501 a transfer coding other than chunked
            self.send_json(exc.status, {"error": str(exc)})
            return
        problem = payment_problem(body)
        if problem:
            self.send_json(422, {"error": problem})
            return
        self.send_json(201, self.server.pay(body))

    # -- OA intranet ----------------------------------------------------------------------------------
    def oa_get(self, path: str) -> None:
        page = OA_PAGES.get(path.rstrip("/") or "/")
        if page is None:
            self.send_body(404, _page("Not found", f"<p>No page {html.escape(path)}.</p>"), "text/html; charset=utf-8")
        else:
            self.send_body(200, page, "text/html; charset=utf-8")


def payment_problem(body) -> str | None:
    """Why a payment request is invalid (None: it is fine)."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 < amount <= 100000:
        return "amount must be a number in (0, 100000]"
    if body.get("currency", "CNY") not in ("CNY",):
        return "currency must be CNY"
    if not isinstance(body.get("kiosk", ""), str) or not isinstance(body.get("method", ""), str):
        return "kiosk and method must be strings"
    return None


class WebServer(Server):
    def __init__(self, addr, mode: str, node: str, max_receipts: int = 10000, **kw):
        self.mode = mode
        self.node = node
        self.max_receipts = max_receipts
        self._receipts: OrderedDict[str, dict] = OrderedDict()
        self._seq = 0
        self._pay_lock = threading.Lock()
        super().__init__(addr, WebHandler, **kw)

    def pay(self, req: dict) -> dict:
        with self._pay_lock:
            self._seq += 1
            rid = f"{self.node}-{self._seq:08d}"
            receipt = {"receipt": rid, "status": "approved", "amount": round(float(req["amount"]), 2),
                       "currency": req.get("currency", "CNY"), "method": req.get("method", "card"),
                       "kiosk": req.get("kiosk", ""), "patient": req.get("patient"),
                       "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")}
            self._receipts[rid] = receipt
            while len(self._receipts) > self.max_receipts:
                self._receipts.popitem(last=False)
        return receipt

    def receipt(self, rid: str) -> dict | None:
        with self._pay_lock:
            return self._receipts.get(rid)


def _page(title: str, body: str) -> bytes:
    nav = " | ".join(f'<a href="{p}">{t}</a>' for p, t in (("/", "Home"), ("/notices", "Notices"),
                                                           ("/meetings", "Meetings"), ("/forms/leave", "Leave"),
                                                           ("/directory", "Directory")))
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title} - Alliance OA</title></head>"
            f"<body><nav>{nav}</nav><h1>{title}</h1>{body}</body></html>").encode()


OA_PAGES = {
    "/": _page("Xiangtan Central Hospital Alliance OA",
               "<p>Office automation for the alliance: notices, meetings, leave, staff directory.</p>"),
    "/notices": _page("Notices", "<ul><li>Cloud desktop maintenance window: Sunday 02:00-04:00.</li>"
                                 "<li>New 5G ward-round terminals available at the branch campus.</li>"
                                 "<li>Quarterly integrity-risk training: register by Friday.</li></ul>"),
    "/meetings": _page("Meetings", "<table><tr><th>When</th><th>What</th><th>Where</th></tr>"
                                   "<tr><td>Mon 08:00</td><td>Alliance medical quality review</td><td>Video</td></tr>"
                                   "<tr><td>Wed 14:00</td><td>Imaging MDT with county hospitals</td><td>Room 3</td>"
                                   "</tr></table>"),
    "/forms/leave": _page("Leave request", "<form method=\"post\"><label>From <input name=\"from\" type=\"date\">"
                                           "</label><label>To <input name=\"to\" type=\"date\"></label>"
                                           "<button>Submit</button></form>"),
    "/directory": _page("Staff directory", "<p>Information centre: ext. 8001. Medical affairs: ext. 8010.</p>"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=80)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--cache", dest="mode", action="store_const", const="cache", help="MEC imaging cache")
    mode.add_argument("--payments", dest="mode", action="store_const", const="payments", help="payment back end")
    ap.add_argument("--cert", help="server certificate (PEM); with --key: serve HTTPS only")
    ap.add_argument("--key")
    ap.add_argument("--node", default="web", help="this node's name (in receipts and /health)")
    ap.add_argument("--max-connections", type=int, default=256)
    a = ap.parse_args(argv)
    if bool(a.cert) != bool(a.key):
        ap.error("--cert and --key go together")
    m = a.mode or "oa"
    server = WebServer((a.bind, a.port), m, a.node, tls=tls_context(a.cert, a.key) if a.cert else None,
                       max_connections=a.max_connections)
    serve(server, {"cache": "MEC imaging cache", "payments": "payment back end", "oa": "OA intranet"}[m])
    return 0


if __name__ == "__main__":
    sys.exit(main())
