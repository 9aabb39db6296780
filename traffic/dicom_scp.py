"""The PACS: a DICOM SCP that standard clients can echo, store to, query and retrieve from.

    python -m traffic.dicom_scp --bind IP --port 104 --data DIR [--ae-title PACS]
                                [--max-bytes 2g] [--move-dest AE=HOST:PORT ...]

Why an SCP of our own rather than only Orthanc: it runs from the testbed's venv
inside any node (namespace or container) with nothing to install, starts in a
second, and keeps its disk use bounded. It speaks real DICOM (pynetdicom), so
dcmtk's echoscu/storescu/findscu/getscu/movescu and the dicom workload's client
are judged against the same server.

Services: Verification; every Storage SOP class (CT, MR, CR/DX, US,
mammography, ...); Patient and Study Root Query/Retrieve FIND, GET and MOVE
(MOVE only to destinations given with --move-dest; an unknown one is refused
with 0xA801, as a PACS does for an unconfigured modality).

Storage: each instance is received straight to a file (pynetdicom's chunked
receive: memory stays flat whatever the instance size), renamed into
DIR/studies/<study>/<instance>.dcm and indexed (patient, study, series,
instance attributes; dicom_index.py) for C-FIND and retrieval. Disk use is capped: beyond
--max-bytes, or when the file system's free space drops under --reserve, the
least recently used studies are evicted; an instance that cannot fit even then
is refused with 0xA700 (out of resources).
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, _config, build_context, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from traffic.dicom_index import Index, Instance, attributes, response

log = logging.getLogger("pacs")

SUCCESS, PENDING = 0x0000, 0xFF00
OUT_OF_RESOURCES, CANNOT_UNDERSTAND, IDENTIFIER_MISMATCH = 0xA700, 0xC210, 0xA900
MOVE_DEST_UNKNOWN, CANCELLED = 0xA801, 0xFE00


_SAFE = re.compile(r"[^0-9A-Za-z.\-]")


def safe_name(uid: str) -> str:
    return _SAFE.sub("_", uid)[:64] or "_"


# ---------------------------------------------------------------- the server

class Pacs:
    def __init__(self, data: Path, ae_title: str, max_bytes: int, reserve: int,
                 move_dests: dict[str, tuple[str, int]]) -> None:
        self.data, self.ae_title, self.max_bytes, self.reserve = data, ae_title, max_bytes, reserve
        self.move_dests = move_dests
        self.store_dir = data / "studies"
        self.incoming = data / "incoming"
        self.index = Index()

    def prepare(self) -> None:
        """Directories; incoming/ is where received instances land first (same file system: a rename)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.incoming, ignore_errors=True)
        self.incoming.mkdir(parents=True)
        tempfile.tempdir = str(self.incoming)
        for path in sorted(self.store_dir.glob("*/*.dcm")):  # a restart keeps what was stored
            try:
                self.index.add(attributes(dcmread(path, stop_before_pixels=True)), path, path.stat().st_size)
            except Exception as exc:  # noqa: BLE001 - a broken file is skipped, not fatal
                log.warning("skipping %s: %s", path.name, exc)

    def _free(self) -> int:
        return shutil.disk_usage(self.data).free

    def _make_room(self, study: str, size: int) -> bool:
        """Evict other studies until `size` more bytes fit under the cap and above the reserve."""
        while self.index.total + size > self.max_bytes or self._free() < self.reserve:
            victim = self.index.lru(keep=study)
            if victim is None:
                return False
            files = self.index.evict(victim)
            for f in files:
                f.unlink(missing_ok=True)
            shutil.rmtree(self.store_dir / safe_name(victim), ignore_errors=True)
            log.info("evicted study %s (%d instances) to stay under the cap", victim, len(files))
        return True

    # -- handlers (each runs in the association's thread)

    def on_echo(self, event) -> int:
        return SUCCESS

    def on_store(self, event) -> int:
        src = Path(event.dataset_path)
        try:
            attrs = attributes(dcmread(src, stop_before_pixels=True))
        except Exception as exc:  # noqa: BLE001 - the peer sent something pydicom cannot read
            log.warning("C-STORE from %s: unreadable dataset: %s", event.assoc.requestor.address, exc)
            return CANNOT_UNDERSTAND
        if not (attrs["StudyInstanceUID"] and attrs["SeriesInstanceUID"] and attrs["SOPInstanceUID"]):
            return IDENTIFIER_MISMATCH
        size = src.stat().st_size
        with self.index.lock:
            if not self._make_room(attrs["StudyInstanceUID"], size):
                log.warning("refused %s: %d bytes do not fit (cap %d, free %d)", attrs["SOPInstanceUID"], size,
                            self.max_bytes, self._free())
                return OUT_OF_RESOURCES
            dest = self.store_dir / safe_name(attrs["StudyInstanceUID"]) / (safe_name(attrs["SOPInstanceUID"])
                                                                             + ".dcm")
            dest.parent.mkdir(exist_ok=True)
            os.replace(src, dest)  # pynetdicom's own clean-up of the temp file then finds nothing
            self.index.add(attrs, dest, size)
        _count(event.assoc, "stored", size)
        return SUCCESS

    def _query(self, event):
        ident = event.identifier
        level = str(ident.get("QueryRetrieveLevel", "")).upper()
        return ident, level, self.index.search(ident, level)

    def on_find(self, event):
        try:
            ident, level, groups = self._query(event)
        except Exception as exc:  # noqa: BLE001 - a malformed identifier is the peer's error
            log.warning("C-FIND: %s", exc)
            yield IDENTIFIER_MISMATCH, None
            return
        for group in groups:
            if event.is_cancelled:
                yield CANCELLED, None
                return
            yield PENDING, response(ident, level, group, self.ae_title)

    def _instances(self, event) -> list[Instance] | None:
        try:
            _ident, _level, groups = self._query(event)
        except Exception as exc:  # noqa: BLE001
            log.warning("retrieve: %s", exc)
            return None
        return [i for g in groups for i in g if i.path.exists()]

    def _send(self, event, found: list[Instance]):
        for inst in found:
            if event.is_cancelled:
                yield CANCELLED, None
                return
            try:
                ds = dcmread(inst.path)
            except OSError:  # evicted meanwhile
                ds = None
            _count(event.assoc, "sent", inst.size)
            yield PENDING, ds

    def on_get(self, event):
        found = self._instances(event)
        if found is None:
            yield IDENTIFIER_MISMATCH, None
            return
        yield len(found)
        yield from self._send(event, found)

    def on_move(self, event):
        dest = self.move_dests.get(str(event.move_destination).strip())
        if dest is None:
            log.warning("C-MOVE to unknown destination %r", event.move_destination)
            yield None, None  # pynetdicom answers 0xA801 (move destination unknown)
            return
        found = self._instances(event) or []
        # the sub-association to the destination proposes the SOP classes it will carry
        sop_classes = sorted({i.attrs["SOPClassUID"] for i in found})[:128]
        yield (*dest, {"contexts": [build_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
                                    for uid in sop_classes] or [build_context(Verification)]})
        yield len(found)
        yield from self._send(event, found)

    def on_close(self, event) -> None:
        c = getattr(event.assoc, "_pacs_counts", None)
        if c:
            log.info("association with %s:%s: %s", event.assoc.requestor.address, event.assoc.requestor.port,
                     ", ".join(f"{k} {n} instances / {b} bytes" for k, (n, b) in c.items()))


def nodelay(event) -> None:
    """TCP_NODELAY, as dcmtk sets by default: a DIMSE message is a command PDU then a data PDU, and
    Nagle's algorithm against the peer's delayed ACK would add ~40 ms to every C-FIND round trip."""
    sock = getattr(event.assoc.dul.socket, "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _count(assoc, what: str, size: int) -> None:
    c = assoc.__dict__.setdefault("_pacs_counts", {})
    n, b = c.get(what, (0, 0))
    c[what] = (n + 1, b + size)


def build_ae(pacs: Pacs, max_pdu: int) -> AE:
    ae = AE(ae_title=pacs.ae_title)
    ae.maximum_pdu_size = max_pdu
    # Port scanners and the isolation prober open TCP connections and never send an A-ASSOCIATE-RQ;
    # each holds an association slot until the ARTIM timer (network_timeout) fires. A short timer and
    # room for many slots keep a scan from locking real modalities out ("association rejected").
    ae.maximum_associations = 128
    ae.network_timeout = 15
    ae.acse_timeout = 15
    ae.dimse_timeout = 120
    ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
    # A modality or workstation names this PACS as the called AE: another title is refused with reason
    # "called AE title not recognised" (PS3.8 9.3.4), as a real PACS does
    ae.require_called_aet = True
    for cx in AllStoragePresentationContexts:
        # a requestor proposing both roles on one association (it stores, and retrieves with C-GET, where it
        # is the Storage SCP) gets both: accepting only the SCP role left it unable to store
        ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
    for model in (PatientRootQueryRetrieveInformationModelFind, PatientRootQueryRetrieveInformationModelGet,
                  PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelFind,
                  StudyRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelMove):
        ae.add_supported_context(model)
    return ae


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


def parse_dest(text: str) -> tuple[str, tuple[str, int]]:
    ae, _, addr = text.partition("=")
    host, _, port = addr.rpartition(":")
    if not (ae and host and port.isdigit()):
        raise argparse.ArgumentTypeError(f"expected AE=HOST:PORT, got {text!r}")
    return ae.strip(), (host, int(port))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=104)
    ap.add_argument("--data", type=Path, required=True, help="where instances are stored")
    ap.add_argument("--ae-title", default="PACS")
    ap.add_argument("--max-bytes", type=parse_size, default=parse_size("2g"), help="cap on stored bytes")
    ap.add_argument("--reserve", type=parse_size, default=parse_size("256m"),
                    help="free space to leave on the data file system")
    ap.add_argument("--max-pdu", type=int, default=262144, help="largest PDU accepted (bytes)")
    ap.add_argument("--move-dest", type=parse_dest, action="append", default=[], metavar="AE=HOST:PORT")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # its INFO is one line per DIMSE message

    _config.STORE_RECV_CHUNKED_DATASET = True  # instances go to disk as they arrive, not into memory
    pacs = Pacs(args.data, args.ae_title, args.max_bytes, args.reserve, dict(args.move_dest))
    pacs.prepare()
    handlers = [(evt.EVT_C_ECHO, pacs.on_echo), (evt.EVT_C_STORE, pacs.on_store), (evt.EVT_C_FIND, pacs.on_find),
                (evt.EVT_C_GET, pacs.on_get), (evt.EVT_C_MOVE, pacs.on_move), (evt.EVT_RELEASED, pacs.on_close),
                (evt.EVT_ABORTED, pacs.on_close), (evt.EVT_CONN_OPEN, nodelay)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = build_ae(pacs, args.max_pdu).start_server((args.bind, args.port), block=False, evt_handlers=handlers)
    log.info("%s listening on %s:%d (%d instances held, cap %d bytes)", args.ae_title, args.bind, args.port,
             sum(len(s.instances) for s in pacs.index.studies.values()), args.max_bytes)
    stop.wait()
    server.shutdown()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
