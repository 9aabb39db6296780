"""A certificate authority of the run's own, and a server certificate for every node that needs one.

The paper reaches cloud desktops and EMR over SSL tunnels. Each run makes a
fresh CA (ECDSA P-256, valid for a day) in its run directory and signs one
certificate per TLS-serving node, with the node's name and address as subject
alternative names, so `curl --cacert ca.crt https://emr/` and
`openssl s_client -verify_return_error` succeed against the emulated servers
and fail against anything else. Built with `cryptography` (no hand-rolled
crypto); the directory goes when the run's directory is removed at teardown.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID = dt.timedelta(days=1)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "medalliance testbed"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(directory: Path, run_id: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The run's CA: directory/ca.crt (give it to clients) and ca.key."""
    directory.mkdir(parents=True, exist_ok=True)
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    name = _name(f"testbed run {run_id} CA")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALID)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_key(key, directory / "ca.key")
    (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def issue(directory: Path, ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], node: str, ip: str) -> Path:
    """directory/NODE.crt and NODE.key: a server certificate for `node` and `ip`, signed by the run's CA."""
    ca_key, ca_cert = ca
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(node)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALID)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(node),
                                                        x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    _write_key(key, directory / f"{node}.key")
    path = directory / f"{node}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def make_pki(directory: Path, run_id: str, servers: dict[str, str]) -> Path:
    """The CA and a certificate for each node in `servers` (name -> address); returns the directory."""
    ca = make_ca(directory, run_id)
    for node, ip in servers.items():
        issue(directory, ca, node, ip)
    return directory
