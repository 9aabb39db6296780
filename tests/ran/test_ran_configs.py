"""UERANSIM / Open5GS configurations checked against the keys and structure the projects document.

The expected key sets are copied from the upstream samples and parsers read for this:
- aligungr/UERANSIM @ 2a3ef81f: config/open5gs-gnb.yaml, config/open5gs-ue.yaml, and the required keys
  from src/gnb.cpp and src/ue.cpp (ReadConfigYaml: GetString/GetInt32/GetSequence/AssertHasField);
- open5gs/open5gs @ 8f25f3be: configs/open5gs/amf.yaml.in, smf.yaml.in, upf.yaml.in (with their commented
  options: smf `pfcp.client.upf[]` tac/dnn/e_cell_id/nr_cell_id, `session[]` dnn/range/dev), lib/app/ogs-config.c
  (`global.parameter.no_pfcp_rr_select`), and misc/db/open5gs-dbctl (the subscriber document).
"""
from __future__ import annotations

import json

import pytest
from ruamel.yaml import YAML

from testbed.ran import configs, open5gs
from testbed.ran.plan import RanPlan, ran_plan
from testbed.ran.upfs import UpfBinding
from tests.ran.conftest import mec_topology

UERANSIM_GNB_SAMPLE_KEYS = {"mcc", "mnc", "nci", "idLength", "tac", "linkIp", "ngapIp", "gtpIp", "gtpAdvertiseIp",
                            "amfConfigs", "slices", "ignoreStreamIds", "cellAccessType"}
UERANSIM_GNB_REQUIRED = {"mcc", "mnc", "nci", "idLength", "tac", "linkIp", "ngapIp", "gtpIp", "ignoreStreamIds",
                         "amfConfigs", "slices"}
UERANSIM_UE_SAMPLE_KEYS = {"supi", "mcc", "mnc", "protectionScheme", "homeNetworkPublicKey", "homeNetworkPublicKeyId",
                           "routingIndicator", "key", "op", "opType", "amf", "imei", "imeiSv", "tunNetmask",
                           "useNamespace", "nsNamePrefix", "gnbSearchList", "uacAic", "uacAcc", "sessions",
                           "configured-nssai", "default-nssai", "integrity", "ciphering", "integrityMaxRate"}
UERANSIM_UE_REQUIRED = {"mcc", "mnc", "gnbSearchList", "key", "op", "amf", "opType", "integrity", "ciphering",
                        "integrityMaxRate", "uacAic", "uacAcc"}
OPEN5GS_AMF_KEYS = {"sbi", "ngap", "metrics", "guami", "tai", "plmn_support", "security", "network_name", "amf_name",
                    "time", "access_control", "relative_capacity"}
OPEN5GS_SMF_KEYS = {"sbi", "pfcp", "gtpc", "gtpu", "metrics", "session", "dns", "mtu", "freeDiameter", "info",
                    "security_indication"}
OPEN5GS_UPF_KEYS = {"pfcp", "gtpu", "session", "metrics"}
OPEN5GS_UPF_SELECTION_KEYS = {"address", "tac", "dnn", "e_cell_id", "nr_cell_id"}
OPEN5GS_SESSION_KEYS = {"subnet", "gateway", "dnn", "range", "dev"}
DBCTL_SUBSCRIBER_KEYS = {"schema_version", "imsi", "msisdn", "imeisv", "mme_host", "mm_realm", "purge_flag", "slice",
                         "security", "ambr", "access_restriction_data", "network_access_mode", "subscriber_status",
                         "operator_determined_barring", "subscribed_rau_tau_timer"}


def _hex(value: str, digits: int) -> bool:
    return len(value) == digits and all(c in "0123456789abcdefABCDEF" for c in value)


def _check_slice(s: dict) -> None:
    assert set(s) <= {"sst", "sd"} and 0 <= s["sst"] <= 0xFF
    assert "sd" not in s or (isinstance(s["sd"], int) and 0 <= s["sd"] <= 0xFFFFFF)


@pytest.mark.parametrize("which", ["reference_plan", "minimal_plan"])
def test_gnb_configs_have_uneransims_keys_and_types(which, request):
    plan: RanPlan = request.getfixturevalue(which)
    for g in plan.gnbs:
        cfg = configs.gnb_config(plan, g.name)
        assert UERANSIM_GNB_REQUIRED <= set(cfg) <= UERANSIM_GNB_SAMPLE_KEYS
        assert isinstance(cfg["mcc"], str) and len(cfg["mcc"]) == 3 and 2 <= len(cfg["mnc"]) <= 3
        assert cfg["nci"].startswith("0x") and int(cfg["nci"], 16) < 2**36
        assert 22 <= cfg["idLength"] <= 32 and 0 <= cfg["tac"] <= 0xFFFFFF
        assert cfg["linkIp"] == cfg["ngapIp"] == cfg["gtpIp"] == str(g.address)
        assert cfg["amfConfigs"] == [{"address": str(plan.core.address), "port": 38412}]
        for s in cfg["slices"]:
            _check_slice(s)
        assert len(cfg["slices"]) == len(plan.slices)


@pytest.mark.parametrize("which", ["reference_plan", "minimal_plan"])
def test_ue_configs_have_ueransims_keys_and_types(which, request):
    plan: RanPlan = request.getfixturevalue(which)
    for sub in plan.subscribers:
        cfg = configs.ue_config(plan, sub.name)
        assert UERANSIM_UE_REQUIRED <= set(cfg) <= UERANSIM_UE_SAMPLE_KEYS
        assert cfg["supi"] == sub.supi and cfg["mcc"] + cfg["mnc"] == plan.plmn
        assert _hex(cfg["key"], 32) and _hex(cfg["op"], 32) and _hex(cfg["amf"], 4) and cfg["opType"] == "OPC"
        assert cfg["gnbSearchList"] == [str(plan.gnb(sub.gnb).address)]
        assert set(cfg["integrity"]) == {"IA1", "IA2", "IA3"} and set(cfg["ciphering"]) == {"EA1", "EA2", "EA3"}
        assert set(cfg["integrityMaxRate"]) == {"uplink", "downlink"}
        assert set(cfg["uacAic"]) == {"mps", "mcs"}
        assert set(cfg["uacAcc"]) == {"normalClass", "class11", "class12", "class13", "class14", "class15"}
        assert [(x["type"], x["apn"]) for x in cfg["sessions"]] == [("IPv4", s.dnn) for s in sub.sessions]
        for x in cfg["sessions"]:
            assert set(x) == {"type", "apn", "slice"}
            _check_slice(x["slice"])
        for s in cfg["configured-nssai"] + cfg["default-nssai"]:
            _check_slice(s)


def test_rendered_yaml_reads_back_the_same_without_anchors(central_plan):
    files = configs.file_set(central_plan)
    yaml = YAML(typ="safe")
    sub = central_plan.subscribers[0]
    text = files[f"ueransim/ue/{sub.name}.yaml"]
    assert "&" not in text and "*" not in text
    assert yaml.load(text) == configs.ue_config(central_plan, sub.name)
    assert "mcc: '460'" in text and "mnc: '00'" in text  # strings, as UERANSIM's length checks need
    gnb = central_plan.gnbs[0]
    assert yaml.load(files[f"ueransim/gnb/{gnb.name}.yaml"])["nci"] == f"0x{gnb.nci:09x}"
    assert len([f for f in files if f.startswith("ueransim/ue/")]) == len(central_plan.subscribers)


def test_amf_config_structure(central_plan):
    cfg = open5gs.amf_config(central_plan)["amf"]
    assert {"sbi", "ngap", "guami", "tai", "plmn_support"} <= set(cfg) <= OPEN5GS_AMF_KEYS
    plmn = {"mcc": "460", "mnc": "00"}
    assert cfg["ngap"] == {"server": [{"address": str(central_plan.core.address)}]}
    assert cfg["guami"][0]["plmn_id"] == plmn and set(cfg["guami"][0]["amf_id"]) >= {"region", "set"}
    assert cfg["tai"] == [{"plmn_id": plmn, "tac": [central_plan.gnbs[0].tac]}]
    (support,) = cfg["plmn_support"]
    assert support["plmn_id"] == plmn
    assert support["s_nssai"] == [{"sst": s.snssai.sst, "sd": s.snssai.sd} for s in central_plan.slices]


def test_smf_and_upf_configs_structure(central_plan):
    smf = open5gs.smf_config(central_plan)["smf"]
    assert {"sbi", "pfcp", "session"} <= set(smf) <= OPEN5GS_SMF_KEYS
    assert smf["pfcp"]["client"]["upf"] == [{"address": str(central_plan.upf("upf-01").address)}]
    assert [(x["dnn"], x["subnet"], x["gateway"]) for x in smf["session"]] == [
        (p.dnn, str(p.network), str(p.gateway)) for p in central_plan.pools]
    assert all(set(x) <= OPEN5GS_SESSION_KEYS for x in smf["session"])
    upf = open5gs.upf_config(central_plan, "upf-01")["upf"]
    assert set(upf) <= OPEN5GS_UPF_KEYS
    address = str(central_plan.upf("upf-01").address)
    assert upf["pfcp"]["server"] == upf["gtpu"]["server"] == [{"address": address}]
    assert upf["session"] == smf["session"]


def test_subscriber_documents_match_open5gs_dbctl(central_plan):
    docs = json.loads(configs.file_set(central_plan)["open5gs/subscribers.json"])
    assert len(docs) == len(central_plan.subscribers)
    for doc, sub in zip(docs, central_plan.subscribers):
        assert set(doc) == DBCTL_SUBSCRIBER_KEYS
        assert doc["imsi"] == sub.imsi and doc["security"] == {"k": sub.key, "op": None, "opc": sub.opc,
                                                               "amf": "8000"}
        sessions = [(sl["sst"], sl["sd"], x["name"], x["qos"]["index"], x["ue"]["ipv4"])
                    for sl in doc["slice"] for x in sl["session"]]
        assert sessions == [(s.snssai.sst, s.snssai.sd, s.dnn, s.fiveqi, str(s.address)) for s in sub.sessions]
        assert [sl["default_indicator"] for sl in doc["slice"]] == [True] + [False] * (len(doc["slice"]) - 1)


def test_dbctl_commands(central_plan):
    cmds = open5gs.dbctl_commands(central_plan)
    sub = central_plan.subscriber("dr-tablet-01")
    mine = [c for c in cmds if sub.imsi in c]
    first, second = sub.sessions
    assert mine == [
        ["open5gs-dbctl", "add_ue_with_slice", sub.imsi, sub.key, sub.opc, first.dnn, "1", "000001"],
        ["open5gs-dbctl", "update_slice", sub.imsi, second.dnn, "1", "000002"]]


def test_mec_bound_to_a_site_selects_by_cell():
    topo = mec_topology()
    plan = ran_plan(topo, upfs=[UpfBinding("upf-central"), UpfBinding("upf-edge", sites=("clinic-1",))])
    smf = open5gs.smf_config(plan)
    assert smf["global"] == {"parameter": {"no_pfcp_rr_select": True}}
    upfs = smf["smf"]["pfcp"]["client"]["upf"]
    assert all(set(u) <= OPEN5GS_UPF_SELECTION_KEYS for u in upfs)
    assert upfs == [{"address": str(plan.upf("upf-central").address)},
                    {"address": str(plan.upf("upf-edge").address), "nr_cell_id": [f"{plan.gnb('gnb-1').nci:09x}"]}]
    edge = open5gs.upf_config(plan, "upf-edge")["upf"]["session"]
    assert {x["dnn"] for x in edge} == {"clinical", "imaging"}


def test_mec_bound_to_a_slice_selects_by_dnn():
    plan = ran_plan(mec_topology(), upfs=[UpfBinding("upf-central"), UpfBinding("upf-edge", slices=("imaging",))])
    upfs = open5gs.smf_config(plan)["smf"]["pfcp"]["client"]["upf"]
    assert upfs[1] == {"address": str(plan.upf("upf-edge").address), "dnn": ["imaging"]}
    assert [x["dnn"] for x in open5gs.upf_config(plan, "upf-central")["upf"]["session"]] == ["clinical"]


def test_mec_bound_to_a_slice_at_a_site_is_beyond_one_open5gs_smf(mec):
    """The default MEC binding (imaging at clinic-1 only) is fine for the built-in backend, not for Open5GS."""
    plan = ran_plan(mec)
    with pytest.raises(configs.ConfigError, match="by DNN or by cell, not by both"):
        configs.file_set(plan)


def test_two_slices_on_one_dnn_cannot_have_two_open5gs_pools():
    topo = mec_topology(ran="ran:\n  ues:\n"
                            "    - {ue: ue-1, gnb: gnb-1, sessions: [{slice: clinical, dnn: hospital}]}\n"
                            "    - {ue: ue-2, gnb: gnb-2, sessions: [{slice: imaging, dnn: hospital}]}")
    plan = ran_plan(topo, upfs=[UpfBinding("upf-central")])
    assert len(plan.pools) == 2  # the built-in plan keeps one pool per slice/DNN
    with pytest.raises(configs.ConfigError, match="one IP pool per DNN"):
        open5gs.smf_config(plan)


def test_the_reference_mec_binding_is_refused_for_open5gs_with_the_reason(reference_plan):
    """The reference binds its MEC UPF to one slice at some sites; Open5GS selects by DNN or by cell."""
    with pytest.raises(open5gs.ConfigError, match="by DNN or by cell, not by both"):
        configs.file_set(reference_plan)
