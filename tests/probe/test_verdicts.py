"""The prober's verdicts (testbed/probe/run.py), fed hand-built captures and sender reports.

No network and no root: each function gets exactly what the capture agents and
senders would report, and the expected verdict is written out by hand.
"""
from __future__ import annotations

import pytest

from testbed.probe.attacks import Attack, Hosts
from testbed.probe.matrix import Probe
from testbed.probe.run import (_attack_result, _delivery_control, _merge_sent, _flood_result, _matrix_result, _row_state,
                               twin_id)

H = Hosts(ip={"doc": "10.0.0.1", "kiosk": "10.0.0.2", "emr": "10.0.0.10", "pacs": "10.0.0.11"},
          mac={"doc": "02:00:00:00:00:01", "kiosk": "02:00:00:00:00:02", "emr": "02:00:00:00:00:0a",
               "pacs": "02:00:00:00:00:0b"})
TCP, UDP, ICMP = 6, 17, 1


def probe(src: str, dst: str, proto: str = "tcp", port: int = 443, expect: str = "pass", *,
          id: str = "0000002a", category: str | None = None) -> Probe:
    category = category or ("icmp" if proto == "icmp" else "service")
    return Probe(id, category, src, dst, proto, 0 if proto == "icmp" else port,
                 "ping" if proto == "icmp" else "emr", expect,
                 "granted by clinical" if expect == "pass" else "kiosk is in kiosk; no grant")


# --- delivery control ------------------------------------------------------------------


def _pass_rows(n: int) -> list[Probe]:
    return [probe("doc", "emr", id=f"{i:08x}") for i in range(n)]


def test_delivery_control_passes_when_every_twin_arrived():
    rows = _pass_rows(3) + [probe("kiosk", "pacs", port=104, expect="fail", id="000000ff")]
    tokens = {twin_id(r.id): {"emr"} for r in rows[:3]}
    c = _delivery_control(rows, tokens, 1.5)
    assert (c.kind, c.name, c.status) == ("isolation", "delivery control", "pass")
    assert c.metrics["arrived"] == 3 and c.metrics["lost"] == 0 and c.metrics["ratio"] == 1.0
    assert c.metrics["verdict"] == "pass" and c.seconds == 1.5


def test_delivery_control_at_exactly_99_percent_passes():
    rows = _pass_rows(100)
    tokens = {twin_id(r.id): {"emr"} for r in rows[1:]}
    c = _delivery_control(rows, tokens, 0.0)
    assert c.status == "pass" and c.metrics["ratio"] == 0.99 and c.metrics["lost"] == 1


def test_delivery_control_below_99_percent_fails_as_unreliable():
    rows = _pass_rows(100)
    tokens = {twin_id(r.id): {"emr"} for r in rows[2:]}
    c = _delivery_control(rows, tokens, 0.0)
    assert c.status == "fail" and c.failed
    assert c.metrics["verdict"] == "UNRELIABLE" and c.metrics["ratio"] == 0.98
    assert c.metrics["arrived"] == 98 and c.metrics["lost"] == 2
    assert c.metrics["lost_examples"] == [rows[0].name, rows[1].name]
    assert "98/100" in c.detail and "prove nothing" in c.detail
    assert c.metrics["lost_by_source"] == {"doc": "2 of 100"}


def test_delivery_control_after_a_resend_says_so_and_still_fails_a_source_that_loses_again():
    rows = _pass_rows(50) + [probe("ue-3", "emr", id=f"{i:08x}") for i in range(100, 104)]
    first = _delivery_control(rows, {twin_id(r.id): {"emr"} for r in rows[:50]}, 0.0)
    assert first.failed
    whole = _delivery_control(rows, {twin_id(r.id): {"emr"} for r in rows}, 0.0, resent=first.metrics)
    assert whole.status == "pass" and "ue-3 sent all their probes again" in whole.detail
    assert whole.metrics["first_round"] == {"arrived": 50, "lost": 4, "lost_by_source": {"ue-3": "4 of 4"}}
    again = _delivery_control(rows, {twin_id(r.id): {"emr"} for r in rows[:50]}, 0.0, resent=first.metrics)
    assert again.failed and "ue-3 4 of 4" in again.detail


def test_a_resent_rows_connect_counts_if_either_round_connected():
    first = {"connects": {"a": "connected", "b": "timeout", "c": "refused"}, "frames_sent": 3}
    again = {"connects": {"a": "timeout", "b": "connected", "d": "timeout"}, "frames_sent": 5}
    merged = _merge_sent(first, again)
    assert merged["connects"] == {"a": "connected", "b": "connected", "c": "refused", "d": "timeout"}
    assert merged["frames_sent"] == 5


def test_a_first_round_crash_is_over_once_the_resend_ran_but_a_second_crash_stands():
    crashed = {"error": "OSError: [Errno 19] No such device", "frames_sent": 0}
    merged = _merge_sent(crashed, {"frames_sent": 40})
    assert "error" not in merged and merged["first_round_error"].endswith("No such device")
    assert _merge_sent(crashed, {"error": "sender timed out after 60s"})["error"] == "sender timed out after 60s"


def test_delivery_control_names_the_sources_whose_frames_were_lost():
    """A single UE losing all its frames (it re-registered meanwhile) reads differently from a loaded host."""
    rows = _pass_rows(50) + [probe("ue-3", "emr", id=f"{i:08x}") for i in range(100, 104)]
    tokens = {twin_id(r.id): {"emr"} for r in rows[:50]}
    c = _delivery_control(rows, tokens, 0.0)
    assert c.status == "fail" and c.metrics["lost_by_source"] == {"ue-3": "4 of 4"}


def test_delivery_control_counts_a_twin_seen_elsewhere_or_by_row_token_as_lost():
    rows = _pass_rows(2)
    tokens = {twin_id(rows[0].id): {"pacs"},  # arrived, but not at the row's target
              rows[1].id: {"emr"}}  # the row's own token, not its twin's
    c = _delivery_control(rows, tokens, 0.0)
    assert c.status == "fail" and c.metrics["arrived"] == 0 and c.metrics["ratio"] == 0.0


def test_delivery_control_with_no_granted_flow_has_nothing_to_lose():
    c = _delivery_control([probe("kiosk", "pacs", port=104, expect="fail")], {}, 0.0)
    assert c.status == "pass" and c.metrics["ratio"] == 1.0 and c.metrics["arrived"] == 0


def test_twin_tokens_never_collide_with_row_ids():
    assert twin_id("0000002a") == "t000002a"
    assert twin_id("0000002a") != "0000002a" and not all(ch in "0123456789abcdef" for ch in twin_id("0000002a"))


# --- row state ---------------------------------------------------------------------------


def flows_at(host: str, key: tuple, tokens: set) -> dict:
    return {host: {key: set(tokens)}}


SYN_DOC_EMR = ("10.0.0.1", "10.0.0.10", TCP, 443)


def test_tcp_row_passes_when_syn_captured_and_handshake_completed():
    r = probe("doc", "emr")
    flows = flows_at("emr", SYN_DOC_EMR, {None})  # a kernel SYN carries no token
    sent = {"doc": {"connects": {r.id: "connected"}}}
    assert _row_state(r, H, flows, sent) == (True, True, "connect connected")


@pytest.mark.parametrize("status", ["timeout", "refused"])
def test_tcp_row_with_syn_captured_but_handshake_not_completed_is_not_ok(status):
    r = probe("doc", "emr")
    sent = {"doc": {"connects": {r.id: status}}}
    arrived, ok, note = _row_state(r, H, flows_at("emr", SYN_DOC_EMR, {None}), sent)
    assert (arrived, ok) == (True, False)
    assert note == f"SYN captured at emr but the handshake did not complete ({status})"


def test_tcp_row_the_sender_never_attempted_is_not_ok():
    r = probe("doc", "emr")
    arrived, ok, note = _row_state(r, H, flows_at("emr", SYN_DOC_EMR, {None}), {})
    assert (arrived, ok) == (True, False) and "not attempted" in note


def test_row_not_captured_at_the_target():
    r = probe("doc", "emr")
    sent = {"doc": {"connects": {r.id: "connected"}}}  # the sender's word does not count
    assert _row_state(r, H, {}, sent) == (False, False, "")
    # captured somewhere else, or the same flow to another port
    assert _row_state(r, H, flows_at("pacs", SYN_DOC_EMR, {None}), sent) == (False, False, "")
    assert _row_state(r, H, flows_at("emr", ("10.0.0.1", "10.0.0.10", TCP, 444), {None}), sent) == (False, False, "")


def test_icmp_row_needs_the_echo_reply_back_at_the_source():
    r = probe("doc", "emr", "icmp")
    request = ("10.0.0.1", "10.0.0.10", ICMP, 8)
    reply = ("10.0.0.10", "10.0.0.1", ICMP, 0)
    flows = {"emr": {request: {r.id}}, "doc": {reply: {r.id}}}
    assert _row_state(r, H, flows, {}) == (True, True, "echo reply captured at source")
    # echo reply missing
    arrived, ok, note = _row_state(r, H, {"emr": {request: {r.id}}}, {})
    assert (arrived, ok) == (True, False)
    assert note == "echo request captured at emr but no echo reply reached doc"
    # a reply of another probe does not count
    flows = {"emr": {request: {r.id}}, "doc": {reply: {"0000002b"}}}
    assert _row_state(r, H, flows, {})[:2] == (True, False)


def test_icmp_row_is_keyed_by_echo_request_type():
    r = probe("doc", "emr", "icmp")
    # an echo reply (type 0) from doc to emr is not the request this row sent
    assert _row_state(r, H, flows_at("emr", ("10.0.0.1", "10.0.0.10", ICMP, 0), {r.id}), {}) == (False, False, "")


def test_udp_row_passes_on_capture_alone():
    r = probe("doc", "emr", "udp", 443)
    flows = flows_at("emr", ("10.0.0.1", "10.0.0.10", UDP, 443), {r.id})
    assert _row_state(r, H, flows, {}) == (True, True, "")


def test_must_fail_row_arrives_with_its_token_or_without_any():
    r = probe("kiosk", "pacs", port=104, expect="fail", id="000000ff")
    key = ("10.0.0.2", "10.0.0.11", TCP, 104)
    assert _row_state(r, H, flows_at("pacs", key, {"000000ff"}), {}) == (True, True, "")
    assert _row_state(r, H, flows_at("pacs", key, {None}), {}) == (True, True, "")
    # a frame of the same 5-tuple that carries another probe's token is not this row's
    assert _row_state(r, H, flows_at("pacs", key, {"00000100"}), {}) == (False, False, "")


# --- matrix result -----------------------------------------------------------------------


def test_should_pass_row_that_arrived_passes():
    r = probe("doc", "emr")
    c = _matrix_result(r, True, True, "connect connected", 1, 2.0)
    assert (c.kind, c.status, c.metrics["verdict"]) == ("isolation", "pass", "pass")
    assert c.name == "doc -> emr emr (tcp/443) (expect pass)"
    assert c.detail == "arrived at emr (granted by clinical); connect connected"
    assert c.metrics["captured_at"] == ["emr"] and c.metrics["id"] == r.id
    assert c.metrics["sent"] == f"kernel TCP connect, token {r.id}"


def test_should_pass_row_not_captured_is_a_false_block():
    r = probe("doc", "emr")
    c = _matrix_result(r, False, False, "", 2, 2.0)
    assert c.status == "fail" and c.metrics["verdict"] == "FALSE BLOCK"
    assert c.detail == "FALSE BLOCK: not captured at emr after 2 tries (granted by clinical)"
    assert c.metrics["captured_at"] == []


def test_should_pass_row_whose_handshake_failed_is_a_false_block_though_captured():
    r = probe("doc", "emr")
    note = "SYN captured at emr but the handshake did not complete (timeout)"
    c = _matrix_result(r, True, False, note, 2, 2.0)
    assert c.status == "fail" and c.metrics["verdict"] == "FALSE BLOCK"
    assert note in c.detail and c.metrics["captured_at"] == ["emr"]


def test_must_fail_row_captured_is_a_leak():
    r = probe("kiosk", "pacs", port=104, expect="fail")
    c = _matrix_result(r, True, True, "", 1, 2.0)
    assert c.status == "fail" and c.metrics["verdict"] == "LEAK"
    assert c.detail.startswith("LEAK: captured at pacs")
    assert c.metrics["sent"] == f"crafted tcp frame, token {r.id}"


def test_must_fail_row_not_captured_passes():
    r = probe("kiosk", "pacs", port=104, expect="fail")
    c = _matrix_result(r, False, False, "", 1, 2.0)
    assert c.status == "pass" and c.metrics["verdict"] == "pass"
    assert c.detail.startswith("blocked, not captured at pacs")


def test_forbidden_port_rows_are_reported_as_an_attack():
    r = probe("doc", "emr", port=22, expect="fail", category="port")
    assert _matrix_result(r, False, False, "", 1, 0.0).kind == "attack:forbidden-port"
    c = _matrix_result(r, True, True, "", 1, 0.0)
    assert (c.kind, c.status, c.metrics["verdict"]) == ("attack:forbidden-port", "fail", "LEAK")


# --- attacks -----------------------------------------------------------------------------


def attack(forbidden_at: list[str], kind: str = "spoof-ip") -> Attack:
    return Attack(id="x0000001", kind=kind, name=f"{kind}: kiosk as doc -> pacs", src="kiosk",
                  frames=[b"\0" * 60], forbidden_at=forbidden_at, sent="5 crafted frames")


def test_attack_captured_at_a_forbidden_host_is_a_leak():
    a = attack(["pacs", "emr"])
    c = _attack_result(a, {"x0000001": {"pacs", "doc"}}, {}, {}, 1.0)
    assert (c.kind, c.status) == ("attack:spoof-ip", "fail")
    assert c.detail == "LEAK: captured at pacs" and c.metrics["verdict"] == "LEAK"
    assert c.metrics["captured_at"] == ["doc", "pacs"] and c.metrics["watched"] == 2


def test_attack_seen_only_where_it_may_arrive_is_blocked():
    a = attack(["pacs"])
    c = _attack_result(a, {"x0000001": {"doc"}, "x0000002": {"pacs"}}, {}, {}, 1.0)
    assert c.status == "pass" and c.metrics["verdict"] == "blocked"
    assert c.detail == "blocked: not captured at any of 1 watched host(s)"


def test_attack_whose_sender_failed_is_a_failure_not_a_pass():
    c = _attack_result(attack(["pacs"]), {}, {"kiosk": {"error": "no such interface"}}, {}, 1.0)
    assert c.status == "fail" and c.detail == "sender failed: no such interface"


def test_attack_leak_lists_five_hosts_then_counts_the_rest():
    hosts = [f"h{i}" for i in range(8)]
    c = _attack_result(attack(hosts, "broadcast"), {"x0000001": set(hosts)}, {}, {}, 1.0)
    assert c.status == "fail" and c.detail == "LEAK: captured at h0, h1, h2, h3, h4 (+3 more)"


def test_arp_poisoning_is_reported_with_the_victims_cache():
    a = attack(["emr"], "arp-poison")
    c = _attack_result(a, {"x0000001": {"emr"}}, {}, {"x0000001": True}, 1.0)
    assert c.status == "fail" and c.detail.endswith("; the victim's ARP cache was poisoned")
    assert c.metrics["neighbour_entry_poisoned"] is True
    c = _attack_result(a, {}, {}, {"x0000001": False}, 1.0)
    assert c.status == "pass" and c.metrics["neighbour_entry_poisoned"] is False
    assert "neighbour_entry_poisoned" not in _attack_result(a, {}, {}, {}, 1.0).metrics


# --- floods ------------------------------------------------------------------------------

RATE = 10_000_000  # bit/s: the slice's meter
SECONDS = 2.0


def flood() -> Attack:
    return Attack(id="x0000009", kind="flood", name="flood: clinical beyond 10 Mbit/s", src="doc",
                  frames=[b"\0" * 1454], forbidden_at=[], sent="3x the rate", rate_bps=RATE, flood_target="emr")


def sent(mbps: float) -> dict:
    return {"flood": {"seconds": SECONDS, "sent_bps": mbps * 1e6, "sent": 5000}}


def nbytes(mbps: float) -> int:
    """Bytes that arrive in SECONDS at `mbps`."""
    return int(mbps * 1e6 * SECONDS / 8)


def test_flood_held_to_the_rate_passes():
    c = _flood_result(flood(), sent(30), nbytes(10), {}, 3.0)
    assert (c.kind, c.status, c.metrics["verdict"]) == ("attack:flood", "pass", "meter held")
    assert c.metrics["received_bps"] == 10_000_000


def test_flood_at_the_meter_tolerance_passes_and_beyond_it_leaks():
    assert _flood_result(flood(), sent(30), nbytes(12), {}, 3.0).status == "pass"  # 1.2 x the rate
    c = _flood_result(flood(), sent(30), nbytes(13), {}, 3.0)
    assert c.status == "fail" and c.metrics["verdict"] == "LEAK"
    assert c.detail.startswith("LEAK: meter does not hold")


def test_flood_arrival_is_the_larger_of_counter_and_capture():
    a = flood()
    summary = {"emr": {"frames": [{"token": "x0000009", "bytes": nbytes(20)},
                                  {"token": "x0000008", "bytes": nbytes(100)}]}}  # another flood's: ignored
    c = _flood_result(a, sent(30), nbytes(5), summary, 3.0)  # counter says 5, capture 20 Mbit/s
    assert c.status == "fail" and c.metrics["verdict"] == "LEAK" and c.metrics["received_bps"] == 20_000_000
    assert c.metrics["captured_at"] == ["emr"] and c.metrics["captured_bytes"] == nbytes(20)
    # a capture on another host does not count
    c = _flood_result(a, sent(30), nbytes(10), {"doc": summary["emr"]}, 3.0)
    assert c.status == "pass" and c.metrics["captured_at"] == []


def test_flood_the_sender_could_not_drive_hard_enough_is_skipped():
    c = _flood_result(flood(), sent(13), nbytes(13), {}, 3.0)  # 1.3 x the rate: below 1.4
    assert c.status == "skip" and c.metrics["verdict"] == "untested"
    assert "could only send 13.0 Mbit/s" in c.detail


def test_flood_that_the_path_could_not_carry_is_inconclusive():
    c = _flood_result(flood(), sent(30), nbytes(6), {}, 3.0)  # 0.6 x the rate arrived: below 0.7
    assert c.status == "skip" and c.metrics["verdict"] == "inconclusive"
    assert c.detail.startswith("inconclusive:")
    assert _flood_result(flood(), sent(30), nbytes(7.5), {}, 3.0).status == "pass"


def test_flood_not_sent_is_a_failure():
    c = _flood_result(flood(), {"error": "sender crashed"}, 0, {}, 3.0)
    assert c.status == "fail" and c.metrics["verdict"] == "error"
    assert c.detail == "flood not sent: sender crashed"
    assert _flood_result(flood(), {}, 0, {}, 3.0).detail == "flood not sent: no report"


def test_flood_rate_uses_the_duration_the_sender_reported():
    s = {"flood": {"seconds": 4.0, "sent_bps": 30e6, "sent": 10000}}
    # 12 Mbit/s worth of bytes over 2 s is 6 Mbit/s over 4 s: inconclusive, not a leak
    c = _flood_result(flood(), s, nbytes(12), {}, 3.0)
    assert c.metrics["received_bps"] == 6_000_000 and c.metrics["verdict"] == "inconclusive"
