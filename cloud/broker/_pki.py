"""``vitalbridge cloud init-pki``: a certificate authority, the broker's server certificate and the
cloud's broker accounts, written into one directory.

What the directory holds (private files are written 0600, the directory 0700):

==========================  ==============================================================
``ca.pem`` / ``ca.key``     the CA that signs the broker's certificate; gateways trust ``ca.pem``
``broker.pem`` / ``.key``   the broker's TLS certificate (SAN 127.0.0.1, localhost and the names given)
``broker-admin.json``       the account that manages gateway accounts through the dynamic-security plugin
``ingest.json``             the ingest's broker account
``dynamic-security.json``   the plugin's first state (admin and ingest); the broker keeps it up to date
==========================  ==============================================================

Running it again keeps the CA, the accounts and the broker's state, and issues a new broker
certificate (for new names, or before the old one expires).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud.broker._dynsec import initial_state

__all__ = [
    "ADMIN_USER",
    "INGEST_USER",
    "PkiError",
    "PkiFiles",
    "PkiResult",
    "init_pki",
    "issue_server_certificate",
    "make_ca",
    "parse_subject_name",
    "read_credentials",
]

ADMIN_USER = "vitalbridge-admin"
INGEST_USER = "vitalbridge-ingest"
_DEFAULT_NAMES = ("127.0.0.1", "localhost")
_CA_DAYS = 3650
_SERVER_DAYS = 397  # what browsers and most TLS clients accept for a leaf certificate
# RFC 1123 host names: labels of letters, digits and hyphens, not starting or ending with a hyphen.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class PkiError(Exception):
    """The PKI directory or a name given cannot be used; the message says what to do."""


@dataclass(frozen=True)
class PkiFiles:
    """Where each file of a PKI directory is."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        """The CA certificate (PEM) gateways and the cloud trust."""
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """The CA's private key."""
        return self.root / "ca.key"

    @property
    def broker_cert(self) -> Path:
        """The broker's certificate chain (PEM: its certificate, then the CA)."""
        return self.root / "broker.pem"

    @property
    def broker_key(self) -> Path:
        """The broker's private key."""
        return self.root / "broker.key"

    @property
    def admin(self) -> Path:
        """The broker admin account (JSON: username, password)."""
        return self.root / "broker-admin.json"

    @property
    def ingest(self) -> Path:
        """The ingest's broker account (JSON: username, password)."""
        return self.root / "ingest.json"

    @property
    def dynsec(self) -> Path:
        """The dynamic-security plugin's state file."""
        return self.root / "dynamic-security.json"


@dataclass(frozen=True)
class PkiResult:
    """What :func:`init_pki` did."""

    files: PkiFiles
    created_ca: bool
    names: tuple[str, ...]
    broker_expires: dt.datetime


def parse_subject_name(text: str) -> x509.GeneralName:
    """A subject alternative name from ``text``: an IPv4/IPv6 address or a DNS host name (``*.`` allowed
    as the first label). Raises :class:`PkiError` naming what is wrong."""
    name = text.strip()
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    host = name[:-1] if name.endswith(".") else name
    labels = host.split(".")
    if labels and labels[0] == "*":
        labels = labels[1:]
    if not host or len(host) > 253 or not labels or not all(_LABEL.match(label) for label in labels):
        raise PkiError(f"{text!r} is neither an IP address nor a host name (letters, digits, '-' and '.')")
    return x509.DNSName(host.lower())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "VitalBridge"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(now: dt.datetime, common_name: str = "VitalBridge CA") -> tuple[ec.EllipticCurvePrivateKey,
                                                                            x509.Certificate]:
    """A new CA key (P-256) and its self-signed certificate, valid from ``now`` for ten years."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(public).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_server_certificate(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                             names: Sequence[x509.GeneralName], now: dt.datetime,
                             days: int = _SERVER_DAYS) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new server key and its certificate, signed by the CA, for the subject alternative ``names``."""
    if not names:
        raise PkiError("a server certificate needs at least one name")
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    first = names[0].value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(str(first))).issuer_name(ca_cert.subject)
        .public_key(public).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start (never briefly world-readable), then moved into place.
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _write_public(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.chmod(0o644)
    os.replace(temporary, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def read_credentials(path: Path) -> tuple[str, str]:
    """``(username, password)`` from a credentials file written by :func:`init_pki`; :class:`PkiError` if unusable."""
    try:
        data = json.loads(path.read_text())
        username, password = data["username"], data["password"]
    except FileNotFoundError:
        raise PkiError(f"{path} does not exist; run `vitalbridge cloud init-pki {path.parent}` first") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PkiError(f"{path} is not a credentials file written by init-pki ({type(exc).__name__}: {exc})") from None
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise PkiError(f"{path} must hold a non-empty username and password")
    return username, password


def _load_ca(files: PkiFiles) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise PkiError(f"the existing CA in {files.root} cannot be read ({exc}); move ca.pem and ca.key away "
                       "to make a new CA (every gateway must then trust the new ca.pem)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise PkiError(f"{files.ca_key} is not the key of {files.ca_cert}")
    return key, cert


def _credentials(path: Path, username: str) -> tuple[str, str]:
    if path.exists():
        return read_credentials(path)
    password = secrets.token_urlsafe(24)
    _write_private(path, json.dumps({"username": username, "password": password}).encode())
    return username, password


def init_pki(directory: Path, names: Sequence[str] = (), *, now: dt.datetime) -> PkiResult:
    """Make (or complete) the PKI directory; see the module's docstring. Raises :class:`PkiError`."""
    subject_names: list[x509.GeneralName] = []
    for text in (*_DEFAULT_NAMES, *names):
        name = parse_subject_name(text)
        if name not in subject_names:
            subject_names.append(name)
    files = PkiFiles(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.chmod(0o700)
    except OSError as exc:
        raise PkiError(f"cannot use {directory} as the PKI directory: {exc.strerror or exc}") from None
    try:
        return _fill(files, subject_names, now)
    except OSError as exc:
        raise PkiError(f"cannot write into {directory}: {exc.strerror or exc} ({exc.filename or ''})") from None


def _fill(files: PkiFiles, subject_names: list[x509.GeneralName], now: dt.datetime) -> PkiResult:
    has_cert, has_key = files.ca_cert.exists(), files.ca_key.exists()
    if has_cert != has_key:
        missing = files.ca_key if has_cert else files.ca_cert
        raise PkiError(f"{missing} is missing while its pair exists; restore it, or move both away to make a new CA")
    created_ca = not has_cert
    if created_ca:
        ca_key, ca_cert = make_ca(now)
        _write_private(files.ca_key, _key_pem(ca_key))
        _write_public(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    else:
        ca_key, ca_cert = _load_ca(files)
    key, cert = issue_server_certificate(ca_key, ca_cert, subject_names, now)
    _write_private(files.broker_key, _key_pem(key))
    _write_public(files.broker_cert, cert.public_bytes(serialization.Encoding.PEM)
                  + ca_cert.public_bytes(serialization.Encoding.PEM))
    admin = _credentials(files.admin, ADMIN_USER)
    ingest = _credentials(files.ingest, INGEST_USER)
    if not files.dynsec.exists():
        state = initial_state(admin, ingest, (secrets.token_bytes(12), secrets.token_bytes(12)))
        _write_private(files.dynsec, json.dumps(state, indent=1).encode())
    return PkiResult(files, created_ca, tuple(str(name.value) for name in subject_names), cert.not_valid_after_utc)
