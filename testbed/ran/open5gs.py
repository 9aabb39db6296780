"""Open5GS configuration and subscribers for the UERANSIM backend, from the same RanPlan.

Key names and nesting follow Open5GS's own samples (configs/open5gs/amf.yaml.in,
smf.yaml.in, upf.yaml.in in open5gs/open5gs) and its subscriber tool
(misc/db/open5gs-dbctl). The core node runs the AMF, the SMF and the rest of the
5GC (NRF, SCP, AUSF, UDM, UDR, PCF, NSSF, BSF) in one container: their SBI stays
on the loopback addresses of Open5GS's defaults (127.0.0.x), and only NGAP (AMF,
SCTP 38412) and PFCP (SMF <-> UPF, UDP 8805) use the core's network address.

Mapping the plan onto Open5GS's limits (each a ConfigError when it cannot hold):
- IP pools are per DNN (smf.yaml `session[].dnn`): two slices sharing a DNN with
  different pools cannot be expressed;
- the SMF picks a UPF by DNN *or* by cell *or* by TAC (any criterion matches,
  src/smf/context.c compare_ue_info), and with `no_pfcp_rr_select` an unmatched
  session goes to the first UPF listed. So the central UPF is listed first with
  no criterion, and each other UPF with the cells of its gNBs when it serves
  every session there, else with its DNNs when it serves every session of them.
  A MEC UPF bound to some slices at some sites only (both restricted) fits
  neither: such a plan needs per-site TACs and one SMF per UPF, not generated yet.
"""
from __future__ import annotations

from testbed.errors import TestbedError
from testbed.ran.plan import RanPlan, Session, Snssai, Subscriber

AMF_SBI = "127.0.0.5"
SMF_SBI = "127.0.0.4"
SCP_URI = "http://127.0.0.200:7777"
SBI_PORT = 7777
NO_SD = "ffffff"  # TS 23.003: SD FFFFFF means "no SD"; Open5GS reads it the same way
IPV4 = 1  # subscriber session type (Open5GS: 1 IPv4, 2 IPv6, 3 IPv4v6)


class ConfigError(TestbedError):
    """The plan cannot be expressed in the backend's configuration."""

    exit_code = 2


def _plmn_id(plan: RanPlan) -> dict:
    return {"mcc": plan.mcc, "mnc": plan.mnc}


def _s_nssai(s: Snssai) -> dict:
    return {"sst": s.sst} if s.sd is None else {"sst": s.sst, "sd": s.sd}


def amf_config(plan: RanPlan) -> dict:
    core = plan.core
    return {
        "logger": {"file": {"path": "/var/log/open5gs/amf.log"}},
        "amf": {
            "sbi": {"server": [{"address": AMF_SBI, "port": SBI_PORT}], "client": {"scp": [{"uri": SCP_URI}]}},
            "ngap": {"server": [{"address": str(core.address)}]},
            "guami": [{"plmn_id": _plmn_id(plan),
                       "amf_id": {"region": core.amf_region, "set": core.amf_set, "pointer": core.amf_pointer}}],
            "tai": [{"plmn_id": _plmn_id(plan), "tac": sorted({g.tac for g in plan.gnbs})}],
            "plmn_support": [{"plmn_id": _plmn_id(plan), "s_nssai": [_s_nssai(s.snssai) for s in plan.slices]}],
            "security": {"integrity_order": ["NIA2", "NIA1", "NIA0"], "ciphering_order": ["NEA0", "NEA1", "NEA2"]},
            "network_name": {"full": "Medical alliance", "short": "MedAlliance"},
            "amf_name": f"{core.name}-amf",
            "time": {"t3512": {"value": 540}},
        },
    }


def _dnn_pools(plan: RanPlan, sessions: list[Session] | None = None) -> list[dict]:
    """smf/upf `session:` entries, one per DNN; a DNN shared by pools of several slices cannot be expressed."""
    keys = {(s.slice, s.dnn) for s in sessions} if sessions is not None else None
    by_dnn: dict[str, list] = {}
    for p in plan.pools:
        if keys is None or (p.slice, p.dnn) in keys:
            by_dnn.setdefault(p.dnn, []).append(p)
    out = []
    for dnn, pools in by_dnn.items():
        if len(pools) > 1:
            raise ConfigError(f"Open5GS keeps one IP pool per DNN, but DNN {dnn!r} is used by slices "
                              f"{', '.join(p.slice for p in pools)}: give each slice its own DNN")
        out.append({"subnet": str(pools[0].network), "gateway": str(pools[0].gateway), "dnn": dnn})
    return out


def upf_selection(plan: RanPlan) -> list[dict]:
    """smf.yaml `pfcp.client.upf`: the central UPF first (the fallback), then each other UPF with exact criteria."""
    sessions = plan.sessions
    central = next((u for u in plan.upfs if u.role == "central"), plan.upfs[0])
    out: list[dict] = [{"address": str(central.address)}]
    for upf in plan.upfs:
        if upf is central:
            continue
        mine = [s for s in sessions if s.upf == upf.name]
        gnbs = {s.gnb for s in mine}
        dnns = {s.dnn for s in mine}
        if not mine:
            continue
        if all(s.upf == upf.name for s in sessions if s.gnb in gnbs):
            out.append({"address": str(upf.address),
                        "nr_cell_id": [f"{plan.gnb(g).nci:09x}" for g in sorted(gnbs)]})
        elif all(s.upf == upf.name for s in sessions if s.dnn in dnns):
            out.append({"address": str(upf.address), "dnn": sorted(dnns)})
        else:
            raise ConfigError(
                f"Open5GS selects a UPF by DNN or by cell, not by both: UPF {upf.name!r} serves slice(s) "
                f"{', '.join(sorted({s.slice for s in mine}))} only at some sites. Bind it to whole sites "
                "(every slice there) or to whole slices (every site), or use the built-in RAN backend")
    return out


def smf_config(plan: RanPlan) -> dict:
    smf: dict = {
        "sbi": {"server": [{"address": SMF_SBI, "port": SBI_PORT}], "client": {"scp": [{"uri": SCP_URI}]}},
        "pfcp": {"server": [{"address": str(plan.core.address)}], "client": {"upf": upf_selection(plan)}},
        "gtpc": {"server": [{"address": SMF_SBI}]},
        "gtpu": {"server": [{"address": SMF_SBI}]},
        "session": _dnn_pools(plan),
        "mtu": 1400,
    }
    out: dict = {"logger": {"file": {"path": "/var/log/open5gs/smf.log"}}}
    if len(smf["pfcp"]["client"]["upf"]) > 1:  # unmatched sessions go to the first UPF, not round robin
        out["global"] = {"parameter": {"no_pfcp_rr_select": True}}
    out["smf"] = smf
    return out


def upf_config(plan: RanPlan, upf_name: str) -> dict:
    upf = plan.upf(upf_name)
    mine = [s for s in plan.sessions if s.upf == upf.name]
    return {
        "logger": {"file": {"path": "/var/log/open5gs/upf.log"}},
        "upf": {
            "pfcp": {"server": [{"address": str(upf.address)}]},
            "gtpu": {"server": [{"address": str(upf.address)}]},
            "session": _dnn_pools(plan, mine),
        },
    }


def _ambr(mbps: int) -> dict:
    unit_mbps = 2  # Open5GS bitrate units: 0 bps, 1 Kbps, 2 Mbps, 3 Gbps, 4 Tbps
    return {"downlink": {"value": mbps, "unit": unit_mbps}, "uplink": {"value": mbps, "unit": unit_mbps}}


def subscriber_document(plan: RanPlan, sub: Subscriber) -> dict:
    """The `subscribers` collection document, shaped like open5gs-dbctl's, with the plan's static addresses."""
    slices: dict[Snssai, dict] = {}
    for s in sub.sessions:
        entry = slices.setdefault(s.snssai, {"sst": s.snssai.sst, "sd": s.snssai.sd or NO_SD,
                                             "default_indicator": not slices, "session": []})
        info = plan.slice(s.slice)
        entry["session"].append({
            "name": s.dnn, "type": IPV4,
            "qos": {"index": s.fiveqi,
                    "arp": {"priority_level": 8, "pre_emption_capability": 1, "pre_emption_vulnerability": 2}},
            "ambr": _ambr(info.ambr_mbps), "ue": {"ipv4": str(s.address)}, "pcc_rule": []})
    return {
        "schema_version": 1, "imsi": sub.imsi, "msisdn": [], "imeisv": [], "mme_host": [], "mm_realm": [],
        "purge_flag": [], "slice": list(slices.values()),
        "security": {"k": sub.key, "op": None, "opc": sub.opc, "amf": sub.amf},
        "ambr": _ambr(1000), "access_restriction_data": 32, "network_access_mode": 0, "subscriber_status": 0,
        "operator_determined_barring": 0, "subscribed_rau_tau_timer": 12,
    }


def dbctl_commands(plan: RanPlan) -> list[list[str]]:
    """open5gs-dbctl argv lists provisioning every subscriber and its slices (addresses then come from the pools)."""
    out = []
    for sub in plan.subscribers:
        first = True
        for s in sub.sessions:
            sd = s.snssai.sd or NO_SD
            if first:
                out.append(["open5gs-dbctl", "add_ue_with_slice", sub.imsi, sub.key, sub.opc, s.dnn,
                            str(s.snssai.sst), sd])
                first = False
            else:
                out.append(["open5gs-dbctl", "update_slice", sub.imsi, s.dnn, str(s.snssai.sst), sd])
        if first:  # no session: still a subscriber (it registers, then has nothing to establish)
            out.append(["open5gs-dbctl", "add", sub.imsi, sub.key, sub.opc])
    return out
