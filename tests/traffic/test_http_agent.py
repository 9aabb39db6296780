"""The request agent's mix and profiles (traffic.http_client), and its contract with the servers."""
from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from traffic import fhir_data, http_client
from traffic.http_client import EmrProfile, PaymentProfile, op_sequence, parse_mix
from traffic.web_server import object_size, payment_problem


def test_parse_mix():
    assert parse_mix("read=50, search=30,post=20") == {"read": 50.0, "search": 30.0, "post": 20.0}
    for bad in ("read", "write=3", "read=-1", "read=0,post=0", "", "read=x"):
        with pytest.raises(ValueError):
            parse_mix(bad)


def test_op_sequence_keeps_exact_proportions_in_every_window():
    mix = {"read": 5, "search": 3, "find": 1, "post": 1}
    seq = list(itertools.islice(op_sequence(mix), 100))
    for i in range(0, 100, 10):  # each window of sum(weights) steps is one full round
        assert Counter(seq[i:i + 10]) == Counter(mix)
    # evenly interleaved, not in blocks: a weight of 5 in 10 never runs 3 in a row
    assert max(len(list(g)) for k, g in itertools.groupby(seq) if k == "read") <= 2


def test_op_sequence_non_integer_and_zero_weights():
    seq = list(itertools.islice(op_sequence({"read": 0.7, "post": 0.3, "find": 0.0}), 1000))
    c = Counter(seq)
    assert "find" not in c
    assert c["read"] == 700 and c["post"] == 300


def test_emr_profile_lists_patients_first_then_follows_the_mix():
    store = fhir_data.Store(patients=30, seed=3)
    prof = EmrProfile({"read": 2, "search": 1, "find": 1, "post": 1}, seed=7, source="ward-term-01")
    op, method, path, body = prof.next()
    assert (op, method) == ("list", "GET") and path.startswith("/fhir/Patient?")  # nothing known yet
    page, total = store.search("Patient", {"_count": ["200"]})
    prof.learn("list", json.dumps(fhir_data.bundle("https://emr/fhir", "Patient", "", page, total)).encode())
    assert len(prof.patients) == 30
    got = [prof.next() for _ in range(50)]
    assert Counter(op for op, *_ in got) == {"read": 20, "search": 10, "find": 10, "post": 10}
    ids = set(store.res["Patient"])
    for op, method, path, body in got:
        if op == "read":
            assert method == "GET" and path.split("/")[-1] in ids
        elif op == "search":
            assert method == "GET" and path.startswith("/fhir/Observation?patient=")
        elif op == "find":
            assert method == "GET" and path.startswith("/fhir/Patient?name=")
        else:  # what the agent posts, the EMR accepts
            assert method == "POST" and path == "/fhir/Observation"
            created = store.create(json.loads(body))
            assert created["subject"]["reference"].split("/")[1] in ids


def test_emr_profile_is_reproducible_for_a_seed():
    def run(seed):
        prof = EmrProfile(dict(http_client.DEFAULT_MIX), seed=seed, source="t")
        prof.patients = [(str(i), "Wang") for i in range(1, 51)]
        return [path for _op, _m, path, _b in (prof.next() for _ in range(40))]
    assert run(1) == run(1) and run(1) != run(2)


def test_payment_profile_bodies_are_valid_payments():
    prof = PaymentProfile(seed=1, source="kiosk-01")
    for _ in range(20):
        op, method, path, body = prof.next()
        req = json.loads(body)
        assert (op, method, path) == ("payment", "POST", "/payments")
        assert payment_problem(req) is None and req["kiosk"] == "kiosk-01"
    assert payment_problem({"amount": 0}) and payment_problem({"amount": True}) and payment_problem([])
    assert payment_problem({"amount": 5, "currency": "USD"})


def test_cache_object_sizes():
    assert object_size("1048576") == 1 << 20
    assert object_size("64k") == 64 << 10 and object_size("4M") == 4 << 20 and object_size("1GiB") == 1 << 30
    assert object_size("ct-study") == 3 << 30
    assert object_size("17G") is None  # over the cap
    assert object_size("../etc") is None and object_size("4X") is None
