"""init-pki: a CA and a broker certificate that verify, with the right names; private files 0600; a re-run
keeps the CA. The dynamic-security values: ACLs per gateway, the plugin's password hash."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from cloud.broker import PkiError, gateway_acls, ingest_acls, init_pki, parse_subject_name, read_credentials
from cloud.broker._dynsec import add_gateway_commands, client_entry, revoke_gateway_commands

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_the_broker_certificate_is_signed_by_the_ca_with_every_name(tmp_path: Path) -> None:
    result = init_pki(tmp_path / "pki", ["broker.example.org", "10.0.0.5", "::1"], now=NOW)
    assert result.created_ca
    ca = _certs(result.files.ca_cert)[0]
    leaf, chained_ca = _certs(result.files.broker_cert)
    assert chained_ca == ca
    leaf.verify_directly_issued_by(ca)  # raises if the signature or issuer does not match
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "broker.example.org"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                         ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("::1")]
    assert leaf.not_valid_before_utc < NOW < leaf.not_valid_after_utc < ca.not_valid_after_utc
    assert result.names == ("127.0.0.1", "localhost", "broker.example.org", "10.0.0.5", "::1")


def test_the_chain_verifies_with_openssl(tmp_path: Path) -> None:
    files = init_pki(tmp_path, now=dt.datetime.now(dt.UTC)).files
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(_certs(files.broker_cert)[0].public_bytes(serialization.Encoding.PEM))
    completed = subprocess.run(["openssl", "verify", "-CAfile", str(files.ca_cert), "-purpose", "sslserver",
                                str(leaf)], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_private_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    files = init_pki(tmp_path / "pki", now=NOW).files
    for path in (files.ca_key, files.broker_key, files.admin, files.ingest, files.dynsec):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(files.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(files.ca_cert.stat().st_mode) == 0o644
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)


def test_a_second_run_keeps_the_ca_and_the_accounts_and_adds_names(tmp_path: Path) -> None:
    first = init_pki(tmp_path, now=NOW)
    ca_before, ingest_before = first.files.ca_cert.read_bytes(), read_credentials(first.files.ingest)
    dynsec_before = first.files.dynsec.read_bytes()
    second = init_pki(tmp_path, ["broker.example.org"], now=NOW + dt.timedelta(days=1))
    assert not second.created_ca
    assert second.files.ca_cert.read_bytes() == ca_before
    assert read_credentials(second.files.ingest) == ingest_before
    assert second.files.dynsec.read_bytes() == dynsec_before  # the broker's own state is never overwritten
    leaf = _certs(second.files.broker_cert)[0]
    leaf.verify_directly_issued_by(_certs(second.files.ca_cert)[0])
    assert "broker.example.org" in leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def test_the_broker_state_holds_the_admin_and_the_ingest(tmp_path: Path) -> None:
    files = init_pki(tmp_path, now=NOW).files
    state = json.loads(files.dynsec.read_text())
    users = {client["username"]: client for client in state["clients"]}
    admin, ingest = read_credentials(files.admin), read_credentials(files.ingest)
    assert set(users) == {admin[0], ingest[0]}
    assert all(client["password"] != password for client, password in ((users[admin[0]], admin[1]),
                                                                      (users[ingest[0]], ingest[1])))
    assert state["defaultACLAccess"] == {"publishClientSend": False, "publishClientReceive": False,
                                         "subscribe": False, "unsubscribe": False}


def test_a_lone_ca_key_is_a_clear_error(tmp_path: Path) -> None:
    files = init_pki(tmp_path, now=NOW).files
    files.ca_cert.unlink()
    with pytest.raises(PkiError, match=r"ca\.pem is missing"):
        init_pki(tmp_path, now=NOW)


def test_a_damaged_ca_is_a_clear_error(tmp_path: Path) -> None:
    files = init_pki(tmp_path, now=NOW).files
    files.ca_key.write_text("not a key")
    with pytest.raises(PkiError, match="cannot be read"):
        init_pki(tmp_path, now=NOW)


def test_a_directory_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    with pytest.raises(PkiError, match="cannot use"):
        init_pki(tmp_path / "taken", now=NOW)


@pytest.mark.parametrize("name", ["", "bad name", "-lead.example", "a..b", "x" * 64 + ".org", "under_score.org"])
def test_a_bad_name_is_refused(name: str) -> None:
    with pytest.raises(PkiError, match="neither an IP address nor a host name"):
        parse_subject_name(name)


_LABELS = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")


@given(st.lists(_LABELS, min_size=1, max_size=5))
def test_any_host_name_parses_to_itself(labels: list[str]) -> None:
    host = ".".join(labels)
    assert parse_subject_name(host.upper()) == x509.DNSName(host)


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_any_ip_address_parses_to_an_ip_name(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert parse_subject_name(str(address)) == x509.IPAddress(address)


@given(st.text(max_size=80))
def test_any_text_is_a_name_or_a_pki_error(text: str) -> None:
    try:
        name = parse_subject_name(text)
    except PkiError:
        return
    assert isinstance(name, x509.DNSName | x509.IPAddress)


def test_a_gateway_may_publish_only_its_own_topics_and_read_only_its_commands() -> None:
    acls = gateway_acls("home-7")
    sends = {acl["topic"] for acl in acls if acl["acltype"] == "publishClientSend"}
    assert sends == {"vb/v1/home-7/data", "vb/v1/home-7/senml", "vb/v1/home-7/status", "vb/v1/home-7/events"}
    reads = {acl["topic"] for acl in acls if acl["acltype"] in ("subscribePattern", "publishClientReceive")}
    assert reads == {"vb/v1/home-7/cmd/#"}
    assert all(acl["allow"] for acl in acls)
    with pytest.raises(ValueError, match="not a valid identifier"):
        gateway_acls("+")
    with pytest.raises(ValueError, match="not a valid identifier"):
        gateway_acls("a/#")


def test_the_ingest_reads_every_gateway_and_writes_only_commands() -> None:
    acls = ingest_acls()
    sends = {acl["topic"] for acl in acls if acl["acltype"] == "publishClientSend"}
    assert sends == {"vb/v1/+/cmd/#", "vb/v1/_ingest/#"}


def test_account_commands_name_the_gateway_and_its_role() -> None:
    create_role, create_client = add_gateway_commands("home-7", "pw")
    assert create_role["rolename"] == "gateway-home-7" and create_client["roles"] == [{"rolename": "gateway-home-7"}]
    assert create_client["username"] == "home-7" and create_client["password"] == "pw"
    assert [command["command"] for command in revoke_gateway_commands("home-7")] == ["deleteClient", "deleteRole"]


def test_the_password_hash_is_the_plugins() -> None:
    # The plugin's own `mosquitto_ctrl dynsec init` wrote this entry for the password "secretpw".
    entry = client_entry("admin", "secretpw", bytes.fromhex("0035291cf0c4324166449c5d"), [], "",
                         iterations=101)
    assert entry["password"] == ("KC9sY4N/qxTBLIHIrZ5EA4VksT3N7J/44j3DuEuUClXBX4y1row4J/PtKVYmjrAxrrb+ThXS6l7Fq76wMA"
                                 "/Stg==")


def test_the_command_writes_the_directory_and_says_what_it_did(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "vitalbridge.cli", "cloud", "init-pki", str(tmp_path / "pki"), "--name", "mq.local"]
    first = subprocess.run(run, capture_output=True, text=True, check=False, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "made a new CA" in first.stdout and "mq.local" in first.stdout
    second = subprocess.run(run, capture_output=True, text=True, check=False, timeout=60)
    assert second.returncode == 0 and "kept the existing CA" in second.stdout
    bad = subprocess.run([*run, "--name", "no such name"], capture_output=True, text=True, check=False, timeout=60)
    assert bad.returncode == 2
    assert "neither an IP address nor a host name" in bad.stderr and "Traceback" not in bad.stderr
