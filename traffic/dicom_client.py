"""Store a synthetic study to a PACS and retrieve it back, timing each step; print one JSON document.

    python -m traffic.dicom_client --host IP [--port 104] [--called-ae PACS] [--modality CT]
        [--study-size BYTES] [--instance-size BYTES] [--studies 1] [--no-retrieve] [--deadline 60]

What a radiology workflow does across the alliance: a modality (or a clinic's
gateway) C-STOREs a study to the tertiary hospital's PACS on one association,
and a reading workstation finds it (C-FIND) and pulls it (C-GET) on another.
Each transfer is timed from the association request to its release (what a
user waits for), and its throughput is its bytes over that time. C-ECHO and
C-FIND round trips are the latency samples. Every failed status (a refused
association, a C-STORE status other than success, fewer instances found or
retrieved than stored) is an error, never a silent gap.

Output (stdout): {"echo_ms": [...], "find_ms": [...], "transfers": [{"op": "store"|"get", "study", "instances",
"ok", "bytes", "ms"}], "sent", "received", "errors": [...]}. Everything stops by --deadline (seconds).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from traffic import dicom_study
from traffic.dicom_scp import nodelay

MAX_ERRORS = 20  # the JSON stays small whatever goes wrong


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.t_end = time.monotonic() + args.deadline
        self.out: dict = {"echo_ms": [], "find_ms": [], "transfers": [], "sent": 0, "received": 0, "errors": []}

    def error(self, text: str) -> None:
        errs = self.out["errors"]
        if len(errs) < MAX_ERRORS:
            errs.append(text)
        elif len(errs) == MAX_ERRORS:
            errs.append("... more errors not listed")

    def left(self) -> float:
        return self.t_end - time.monotonic()

    def ae(self, contexts: list[str]) -> AE:
        ae = AE(ae_title=self.args.calling_ae)
        ae.maximum_pdu_size = self.args.max_pdu
        t = max(1.0, min(60.0, self.left()))
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = t
        for uid in contexts:
            ae.add_requested_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        return ae

    def associate(self, ae: AE, evt_handlers: list | None = None, **kw):
        assoc = ae.associate(self.args.host, self.args.port, ae_title=self.args.called_ae,
                             evt_handlers=[(evt.EVT_CONN_OPEN, nodelay), *(evt_handlers or [])], **kw)
        if not assoc.is_established:
            why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "not established"
            self.error(f"association {why} by {self.args.host}:{self.args.port}")
            return None
        return assoc

    # -- one study: store on one association, then find and get on another

    def store(self, p: dicom_study.StudyPlan) -> bool:
        sop = p.geometry.sop_class
        ae = self.ae([Verification, sop])
        t0 = time.monotonic()
        assoc = self.associate(ae)
        if assoc is None:
            self.out["sent"] += p.count
            return False
        for _ in range(self.args.echoes):
            self.out["sent"] += 1
            te = time.monotonic()
            st = assoc.send_c_echo()
            if st and st.Status == 0:
                self.out["echo_ms"].append((time.monotonic() - te) * 1000)
                self.out["received"] += 1
            else:
                self.error(f"C-ECHO status {_status(st)}")
        t0_store = time.monotonic()
        pixels = dicom_study.pixels(p)
        header = None
        ok = sent_bytes = 0
        for n, ds in enumerate(dicom_study.instances(p, pixels), 1):
            if self.left() <= 0:
                self.error(f"deadline: stored {ok} of {p.count} instances")
                self.out["sent"] += p.count - n + 1
                assoc.abort()
                break
            if header is None:  # every instance's header encodes to the same length
                hdr = Dataset()
                hdr.update(ds)
                del hdr.PixelData
                header = len(encode(hdr, False, True)) + 12  # + the PixelData element's own header
            self.out["sent"] += 1
            st = assoc.send_c_store(ds)
            if st and st.Status in (0x0000, 0xB000, 0xB007, 0xB006):  # success, or warning (coerced)
                ok += 1
                self.out["received"] += 1
                sent_bytes += header + len(pixels)
            else:
                self.error(f"C-STORE instance {n}: status {_status(st)}")
                if not assoc.is_established:
                    self.out["sent"] += p.count - n
                    break
        if assoc.is_established:
            assoc.release()
        ms = (time.monotonic() - t0) * 1000
        self.out["transfers"].append({"op": "store", "study": p.study_uid, "instances": p.count, "ok": ok,
                                      "bytes": sent_bytes, "ms": ms, "setup_ms": (t0_store - t0) * 1000})
        return ok == p.count

    def find(self, assoc, p: dicom_study.StudyPlan) -> int | None:
        """Two study-level queries (by patient, by study UID); the PACS's instance count of the study."""
        count = None
        for keys in ({"PatientID": p.patient_id}, {"StudyInstanceUID": p.study_uid}):
            q = Dataset()
            q.QueryRetrieveLevel = "STUDY"
            q.StudyInstanceUID = keys.get("StudyInstanceUID", "")
            q.PatientID = keys.get("PatientID", "")
            q.ModalitiesInStudy = ""
            q.NumberOfStudyRelatedInstances = ""
            self.out["sent"] += 1
            t0 = time.monotonic()
            found, final = [], None
            for status, ident in assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind):
                if status and status.Status in (0xFF00, 0xFF01):
                    found.append(ident)
                else:
                    final = status
            ms = (time.monotonic() - t0) * 1000
            if final is None or final.Status != 0:
                self.error(f"C-FIND {keys}: status {_status(final)}")
                continue
            self.out["find_ms"].append(ms)
            self.out["received"] += 1
            for ident in found:
                if ident is not None and ident.get("StudyInstanceUID") == p.study_uid:
                    count = int(ident.get("NumberOfStudyRelatedInstances") or 0)
        if count is None:
            self.error(f"C-FIND: study {p.study_uid} not found")
        elif count != p.count:
            self.error(f"C-FIND: PACS holds {count} instances of the study, {p.count} stored")
        return count

    def retrieve(self, p: dicom_study.StudyPlan) -> None:
        sop = p.geometry.sop_class
        ae = self.ae([StudyRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelGet])
        ae.add_requested_context(sop, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        got = {"n": 0, "bytes": 0, "uids": set()}

        def on_store(event) -> int:
            got["n"] += 1
            got["bytes"] += event.request.DataSet.getbuffer().nbytes
            got["uids"].add(event.request.AffectedSOPInstanceUID)
            return 0x0000

        t0 = time.monotonic()
        assoc = self.associate(ae, ext_neg=[build_role(sop, scp_role=True)], evt_handlers=[(evt.EVT_C_STORE, on_store)])
        if assoc is None:
            self.out["sent"] += 2 + p.count
            return
        self.find(assoc, p)
        t_get = time.monotonic()
        q = Dataset()
        q.QueryRetrieveLevel = "STUDY"
        q.StudyInstanceUID = p.study_uid
        self.out["sent"] += p.count
        final = None
        for status, _ident in assoc.send_c_get(q, StudyRootQueryRetrieveInformationModelGet):
            if status is None or status.Status not in (0xFF00,):
                final = status
            if self.left() <= 0 and final is None:
                self.error(f"deadline: retrieved {got['n']} of {p.count} instances")
                assoc.abort()
                break
        if assoc.is_established:
            assoc.release()
        ms = (time.monotonic() - t0) * 1000
        self.out["received"] += min(got["n"], p.count)
        if final is not None and final.Status != 0:
            self.error(f"C-GET: status {_status(final)}, {got['n']} of {p.count} instances")
        elif got["n"] != p.count:
            self.error(f"C-GET: {got['n']} of {p.count} instances received")
        self.out["transfers"].append({"op": "get", "study": p.study_uid, "instances": p.count, "ok": got["n"],
                                      "bytes": got["bytes"], "ms": ms, "setup_ms": (t_get - t0) * 1000})

    def run(self) -> dict:
        a = self.args
        for i in range(a.studies):
            if self.left() <= 0:
                self.error(f"deadline: {i} of {a.studies} studies done")
                break
            p = dicom_study.plan(a.modality, a.study_size, a.instance_size, a.patient_id, tag=str(i))
            stored = self.store(p)
            if a.retrieve and stored and self.left() > 0:
                self.retrieve(p)
        return self.out


def _status(st) -> str:
    if st is None or "Status" not in st:
        return "none (no response: timeout, abort or connection lost)"
    return f"0x{st.Status:04X}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=104)
    ap.add_argument("--called-ae", default="PACS")
    ap.add_argument("--calling-ae", default="TESTBED")
    ap.add_argument("--modality", default="CT", choices=sorted(dicom_study.MODALITIES))
    ap.add_argument("--study-size", type=int, default=64 * 2**20, help="bytes of pixel data per study")
    ap.add_argument("--instance-size", type=int, default=None, help="bytes of pixel data per instance")
    ap.add_argument("--studies", type=int, default=1)
    ap.add_argument("--no-retrieve", dest="retrieve", action="store_false")
    ap.add_argument("--echoes", type=int, default=3)
    ap.add_argument("--patient-id", default="TB0001")
    ap.add_argument("--max-pdu", type=int, default=262144)
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds for everything")
    args = ap.parse_args(argv)
    out = Run(args).run()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
