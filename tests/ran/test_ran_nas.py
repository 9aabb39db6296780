"""5G NAS encodings: what we encode decodes to the same fields, and known-good captures decode as expected."""
from __future__ import annotations

from binascii import unhexlify
from ipaddress import IPv4Address

import pytest

from testbed.ran import core, nas
from testbed.ran.plan import RanPlan, Snssai

# Known-good 5G NAS PDUs from pycrate's own test suite (pycrate-org/pycrate, test/test_mobile.py, nas_5g_pdu).
PYCRATE_REG_REQUEST = "7e004179000d0100f1100000000022222222222e02e0e0"
PYCRATE_REG_REJECT = "7e004407"
PYCRATE_REG_ACCEPT = "7e0042010177000bf2030246010041c0e000105407200302460000641505040aabcdef2101005e016516012c"
PYCRATE_SESSION_REQUEST = "2e0501c1ffff91a1"
PYCRATE_SESSION_ACCEPT = "2e0501c211000901000631310101ff0506060001060001290501ac115f012506056461746131"
PYCRATE_UL_TRANSPORT = "7e00670100072e0602c1000091120681220401000001250706766973696f6e"
PYCRATE_DL_TRANSPORT = ("7e0100000000067e006801002d2e0602c2110009ff000631310101ff050603f42403f4242905010b000033220401"
                        "000001250706766973696f6e1206")


def test_known_good_registration_messages_decode():
    assert nas.decode(unhexlify(PYCRATE_REG_REQUEST)) == nas.RegistrationRequest("imsi-001012222222222", ())
    assert nas.decode(unhexlify(PYCRATE_REG_REJECT)) == nas.RegistrationReject(nas.MmCause.SERVICES_NOT_ALLOWED)
    accept = nas.decode(unhexlify(PYCRATE_REG_ACCEPT))
    assert accept == nas.RegistrationAccept("302640", 1, 1, 1, 0xC0E00010, (100,), (Snssai(10, "abcdef"),))


def test_known_good_session_messages_decode():
    assert nas.decode(unhexlify(PYCRATE_SESSION_REQUEST)) == nas.SessionRequest(5, 1)
    acc = nas.decode(unhexlify(PYCRATE_SESSION_ACCEPT))
    assert (acc.psi, acc.pti, acc.address, acc.qfi, acc.dnn, acc.ambr_mbps) == (
        5, 1, IPv4Address("172.17.95.1"), 5, "data1", (1, 1))
    assert nas.decode(unhexlify(PYCRATE_UL_TRANSPORT)) == nas.SessionRequest(6, 2, Snssai(1, "000001"), "vision")


def test_an_integrity_protected_message_is_not_mistaken_for_plain_nas():
    """The emulation speaks plain NAS; a protected message decodes to its outer envelope, not a session."""
    assert isinstance(nas.decode(unhexlify(PYCRATE_DL_TRANSPORT)), nas.Unparsed)


def test_our_registration_request_is_what_pycrates_sample_looks_like():
    """Same SUPI, no requested NSSAI: byte for byte the sample (initial registration, follow-on request,
    null-scheme SUCI, 5G-EA0..2 and 5G-IA0..2)."""
    ours = nas.registration_request("imsi-001012222222222", [], mnc_len=2)
    assert ours == unhexlify(PYCRATE_REG_REQUEST)


@pytest.mark.parametrize("nssai", [(), (Snssai(1, "000001"),), (Snssai(1, "000001"), Snssai(3))])
def test_registration_request_round_trip(nssai):
    msg = nas.registration_request("imsi-460000000000042", nssai)
    assert nas.decode(msg) == nas.RegistrationRequest("imsi-460000000000042", tuple(nssai))


def test_three_digit_mnc_round_trip():
    msg = nas.registration_request("imsi-310410000000001", [Snssai(2, "00000a")], mnc_len=3)
    assert nas.decode(msg).supi == "imsi-310410000000001"


def test_registration_accept_and_reject_round_trip():
    acc = nas.registration_accept("46000", [1, 2, 3], [Snssai(1, "000001")], 0x1234, [Snssai(3)], 2, 1, 0)
    assert nas.decode(acc) == nas.RegistrationAccept("46000", 2, 1, 0, 0x1234, (1, 2, 3), (Snssai(1, "000001"),),
                                                     (Snssai(3),))
    rej = nas.registration_reject(nas.MmCause.NO_NETWORK_SLICES_AVAILABLE, [Snssai(2, "000003")])
    assert nas.decode(rej) == nas.RegistrationReject(62, (Snssai(2, "000003"),))
    assert nas.registration_reject(7) == unhexlify(PYCRATE_REG_REJECT)


def test_session_messages_round_trip():
    sm = nas.session_request(2, 7)
    assert nas.decode(sm) == nas.SessionRequest(2, 7)
    assert nas.decode(nas.ul_nas_transport(sm, 2, Snssai(1, "000002"), "imaging")) == nas.SessionRequest(
        2, 7, Snssai(1, "000002"), "imaging")
    acc = nas.session_accept(2, 7, IPv4Address("10.45.16.2"), 1, 82, Snssai(2, "000003"), "ward-rounds", (20, 20))
    expected = nas.SessionAccept(2, 7, IPv4Address("10.45.16.2"), 1, 82, Snssai(2, "000003"), "ward-rounds", (20, 20))
    assert nas.decode(acc) == expected
    assert nas.decode(nas.dl_nas_transport(acc, 2)) == expected
    rej = nas.dl_nas_transport(nas.session_reject(2, 7, nas.SmCause.SERVICE_OPTION_NOT_SUBSCRIBED), 2, 91)
    assert nas.decode(rej) == nas.SessionReject(2, 7, 33, 91)


def test_garbage_is_refused():
    with pytest.raises(nas.NasError):
        nas.decode(b"\x00\x01")
    with pytest.raises(nas.NasError):
        nas.registration_request("imsi-123", [])


# ------------------------------------------------------------------ the core's answers

def test_a_subscriber_registers_with_its_slices(reference_plan: RanPlan):
    sub = reference_plan.subscriber("dr-tablet-01")
    v = core.register(reference_plan, nas.registration_request(sub.supi, sub.nssai))
    assert v.accepted and v.cause is None
    acc = nas.decode(v.response)
    assert isinstance(acc, nas.RegistrationAccept)
    assert acc.allowed == sub.nssai and acc.rejected == () and acc.plmn == "46000"
    assert acc.tmsi == core.tmsi_of(reference_plan, sub)


def test_an_unknown_supi_is_rejected_with_cause_7(reference_plan):
    v = core.register(reference_plan, nas.registration_request("imsi-460009999999999", [Snssai(1, "000001")]))
    assert not v.accepted and v.cause == 7
    assert nas.decode(v.response) == nas.RegistrationReject(7)
    assert "unknown SUPI" in v.reason


def test_only_unsubscribed_slices_is_rejected_with_cause_62(reference_plan):
    kiosk = reference_plan.subscriber("kiosk-01")
    clinical = reference_plan.slice("clinical-desktop").snssai
    v = core.register(reference_plan, nas.registration_request(kiosk.supi, [clinical]))
    assert not v.accepted and v.cause == 62
    assert nas.decode(v.response) == nas.RegistrationReject(62, (clinical,))


def test_mixed_request_is_accepted_with_the_rest_rejected(reference_plan):
    kiosk = reference_plan.subscriber("kiosk-01")
    clinical = reference_plan.slice("clinical-desktop").snssai
    v = core.register(reference_plan, nas.registration_request(kiosk.supi, [*kiosk.nssai, clinical]))
    acc = nas.decode(v.response)
    assert v.accepted and acc.allowed == kiosk.nssai and acc.rejected == (clinical,)


def test_a_session_on_a_subscribed_slice_gets_its_planned_address(reference_plan):
    sub = reference_plan.subscriber("dr-tablet-01")
    planned = sub.sessions[1]
    request = nas.ul_nas_transport(nas.session_request(planned.psi, 1), planned.psi, planned.snssai, planned.dnn)
    v = core.establish(reference_plan, sub.supi, request)
    assert v.accepted and v.session == planned
    acc = nas.decode(v.response)
    assert (acc.address, acc.qfi, acc.fiveqi, acc.snssai, acc.dnn) == (
        planned.address, planned.qfi, planned.fiveqi, planned.snssai, planned.dnn)
    rate = reference_plan.slice(planned.slice).ambr_mbps  # the slice's rate, in Mbit/s
    assert acc.ambr_mbps == (rate, rate)


def test_a_session_on_an_unsubscribed_slice_is_rejected_with_cause_33(reference_plan):
    kiosk = reference_plan.subscriber("kiosk-01")
    imaging = reference_plan.slice("imaging").snssai
    request = nas.ul_nas_transport(nas.session_request(2, 4), 2, imaging, "imaging")
    v = core.establish(reference_plan, kiosk.supi, request)
    assert not v.accepted and v.cause == nas.SmCause.SERVICE_OPTION_NOT_SUBSCRIBED
    assert nas.decode(v.response) == nas.SessionReject(2, 4, 33)
    assert "not subscribed" in v.reason


def test_a_session_with_an_unknown_dnn_is_rejected_with_cause_70(reference_plan):
    sub = reference_plan.subscriber("dr-tablet-01")
    s = sub.sessions[0]
    v = core.establish(reference_plan, sub.supi, nas.ul_nas_transport(nas.session_request(1, 1), 1, s.snssai, "internet"))
    assert not v.accepted and v.cause == nas.SmCause.MISSING_OR_UNKNOWN_DNN_IN_SLICE
    assert nas.decode(v.response).cause == 70


def test_a_session_without_snssai_or_dnn_gets_the_default_slice(reference_plan):
    sub = reference_plan.subscriber("nurse-cart-01")
    v = core.establish(reference_plan, sub.supi, nas.ul_nas_transport(nas.session_request(1, 1), 1))
    assert v.accepted and v.session == sub.sessions[0]
