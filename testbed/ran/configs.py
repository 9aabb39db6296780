"""UERANSIM configurations of the plan, and the whole UERANSIM + Open5GS file set.

Key names, value types and required keys follow UERANSIM's samples and parsers
(aligungr/UERANSIM: config/open5gs-gnb.yaml, config/open5gs-ue.yaml, and
src/gnb.cpp / src/ue.cpp ReadConfigYaml): mcc and mnc are strings (their length
tells a 2- from a 3-digit MNC), nci a 36-bit number written as '0x...', sd an
integer, key/op 32 hex digits; nr-ue refuses to start without integrity,
ciphering, integrityMaxRate, uacAic and uacAcc. The UE's sessions are listed in
the plan's order, so UERANSIM's uesimtun0, uesimtun1... match Session.tun.
Open5GS's side is in testbed.ran.open5gs.
"""
from __future__ import annotations

import io
import json

from ruamel.yaml import YAML

from testbed.ran import open5gs
from testbed.ran.open5gs import ConfigError
from testbed.ran.plan import GNB_ID_LENGTH, RanPlan, Snssai

NGAP_PORT = 38412  # NGAP over SCTP, TS 38.412
ALGORITHMS = ("1", "2", "3")

__all__ = ["ConfigError", "gnb_config", "ue_config", "render", "file_set"]


def _slice(s: Snssai) -> dict:
    return {"sst": s.sst} if s.sd is None else {"sst": s.sst, "sd": s.sd_int}


def gnb_config(plan: RanPlan, gnb_name: str) -> dict:
    """nr-gnb: one cell, its N2/N3/radio-link addresses, the core's AMF, every slice of the PLMN.

    Every slice is advertised, not only its UEs' ones, so that a request for an
    unsubscribed slice reaches the core and is refused there, where it is logged.
    """
    g = plan.gnb(gnb_name)
    return {
        "mcc": plan.mcc,
        "mnc": plan.mnc,
        "nci": f"0x{g.nci:09x}",
        "idLength": GNB_ID_LENGTH,
        "tac": g.tac,
        "linkIp": str(g.address),
        "ngapIp": str(g.address),
        "gtpIp": str(g.address),
        "amfConfigs": [{"address": str(plan.core.address), "port": NGAP_PORT}],
        "slices": [_slice(s.snssai) for s in plan.slices],
        "ignoreStreamIds": True,
    }


def ue_config(plan: RanPlan, ue_name: str) -> dict:
    """nr-ue: its SUPI and credentials, its gNB, one IPv4 session per planned session, its slices."""
    sub = plan.subscriber(ue_name)
    nssai = [_slice(s) for s in sub.nssai]
    return {
        "supi": sub.supi,
        "mcc": plan.mcc,
        "mnc": plan.mnc,
        "protectionScheme": 0,  # null scheme: the SUCI carries the MSIN in clear (the core has no HN key)
        "routingIndicator": "0000",
        "key": sub.key,
        "op": sub.opc,
        "opType": "OPC",
        "amf": sub.amf,
        "gnbSearchList": [str(plan.gnb(g).address) for g in sub.cells],
        "uacAic": {"mps": False, "mcs": False},
        "uacAcc": {"normalClass": 0, "class11": False, "class12": False, "class13": False, "class14": False,
                   "class15": False},
        "sessions": [{"type": "IPv4", "apn": s.dnn, "slice": _slice(s.snssai)} for s in sub.sessions],
        "configured-nssai": nssai,
        "default-nssai": [dict(s) for s in nssai[:1]],
        "integrity": {f"IA{a}": True for a in ALGORITHMS},
        "ciphering": {f"EA{a}": True for a in ALGORITHMS},
        "integrityMaxRate": {"uplink": "full", "downlink": "full"},
    }


def render(doc: dict) -> str:
    """YAML text as both projects read it (block style; strings that look like numbers stay quoted)."""
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.representer.ignore_aliases = lambda _data: True  # no &anchors: plain values, as the samples write them
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def file_set(plan: RanPlan) -> dict[str, str]:
    """Every file of the backend, by relative path: what the engine mounts into each container.

    ueransim/gnb/<gnb>.yaml, ueransim/ue/<ue>.yaml, open5gs/amf.yaml, open5gs/smf.yaml,
    open5gs/upf/<upf>.yaml, open5gs/subscribers.json (documents for the subscribers
    collection) and open5gs/subscribers.sh (the same as open5gs-dbctl commands).
    Raises ConfigError when Open5GS cannot express the plan.
    """
    files: dict[str, str] = {}
    for g in plan.gnbs:
        files[f"ueransim/gnb/{g.name}.yaml"] = render(gnb_config(plan, g.name))
    for sub in plan.subscribers:
        files[f"ueransim/ue/{sub.name}.yaml"] = render(ue_config(plan, sub.name))
    files["open5gs/amf.yaml"] = render(open5gs.amf_config(plan))
    files["open5gs/smf.yaml"] = render(open5gs.smf_config(plan))
    for u in plan.upfs:
        files[f"open5gs/upf/{u.name}.yaml"] = render(open5gs.upf_config(plan, u.name))
    docs = [open5gs.subscriber_document(plan, s) for s in plan.subscribers]
    files["open5gs/subscribers.json"] = json.dumps(docs, indent=1) + "\n"
    lines = ["#!/bin/sh", "# Provision the subscribers of the plan (addresses then come from the DNN pools).", "set -e"]
    lines += [" ".join(argv) for argv in open5gs.dbctl_commands(plan)]
    files["open5gs/subscribers.sh"] = "\n".join(lines) + "\n"
    return files
