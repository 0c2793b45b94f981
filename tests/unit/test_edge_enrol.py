"""`vitalbridge edge enroll` on the gateway's side: the cloud address, the cloud's answers and refusals, the
files kept (0600 in a 0700 folder) and the gateway config written or edited in place."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.config import load_config
from edge.config_edit import new_config_text
from edge.enrol import (
    EnrolAnswer,
    EnrolmentFailed,
    check_cloud_url,
    enrol,
    fetch_enrolment,
    store_enrolment,
)
from vitalbridge.cli import main

CODE = "ABCD-EFGH-JK"
ANSWER = {"gateway": "gw-home", "patients": ["p1", "p2"], "broker_url": "mqtts://broker.example.org:8883",
          "ca_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
          "credentials": {"username": "gw-home", "password": "s3cret pass"}}


def _cloud(status: int, body: Any, seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(answer)


def _refusal(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": "from the cloud"}}


@pytest.mark.parametrize(("url", "plain"), [("https://cloud.example.org/", False), ("http://127.0.0.1:8000", True),
                                            ("http://localhost:8000", True), ("http://[::1]:8000", True)])
def test_https_or_plain_http_on_this_machine(url: str, plain: bool) -> None:
    assert check_cloud_url(url) == (url.rstrip("/"), plain)


@pytest.mark.parametrize("url", ["http://cloud.example.org", "http://192.168.1.10:8000", "ftp://x",
                                 "cloud.example.org"])
def test_other_cloud_addresses_are_refused(url: str) -> None:
    with pytest.raises(EnrolmentFailed) as caught:
        check_cloud_url(url)
    assert caught.value.code == "insecure"


def test_the_code_is_sent_in_its_normal_form_and_the_answer_read() -> None:
    seen: list[httpx.Request] = []
    answer = fetch_enrolment("https://cloud.example.org", "abcd efgh jk", transport=_cloud(200, ANSWER, seen))
    assert (answer.gateway, answer.patients, answer.credentials and answer.credentials.username) == (
        "gw-home", ["p1", "p2"], "gw-home")
    assert str(seen[0].url) == "https://cloud.example.org/api/v1/enrol"
    assert json.loads(seen[0].content) == {"code": "ABCDEFGHJK"}


@pytest.mark.parametrize(("status", "code", "words"), [
    (404, "wrong_code", "does not know this enrolment code"), (409, "used_code", "used already"),
    (410, "expired_code", "expired"), (403, "gateway_revoked", "revoked"), (429, "throttled", "too many wrong codes"),
])
def test_each_refusal_has_its_plain_message(status: int, code: str, words: str) -> None:
    with pytest.raises(EnrolmentFailed) as caught:
        fetch_enrolment("https://cloud.example.org", CODE, transport=_cloud(status, _refusal(code)))
    assert (caught.value.code == code and words in str(caught.value) and "care team" in str(caught.value)) or \
        code == "throttled"


def test_a_mistyped_code_is_refused_without_asking_the_cloud() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(EnrolmentFailed, match="never contain O or 0") as caught:
        fetch_enrolment("https://cloud.example.org", "ABCD-EFGH-J0", transport=_cloud(200, ANSWER, seen))
    assert caught.value.code == "bad_code" and seen == []


@pytest.mark.parametrize("body", [{"gateway": "x"}, [], "html", {**ANSWER, "broker_url": "http://nope"},
                                  {**ANSWER, "gateway": "../etc"}])
def test_an_answer_the_gateway_cannot_use_is_refused(body: Any) -> None:
    with pytest.raises(EnrolmentFailed) as caught:
        fetch_enrolment("https://cloud.example.org", CODE, transport=_cloud(200, body))
    assert caught.value.code == "bad_answer"


def test_an_unreachable_cloud_is_said_so() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(EnrolmentFailed, match="cannot reach the cloud") as caught:
        fetch_enrolment("https://cloud.example.org", CODE, transport=httpx.MockTransport(refuse))
    assert caught.value.code == "unreachable"


# -- a real TLS server with a certificate of its own CA ----------------------------------------------


def _certificate(tmp_path: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    server = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloud")]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
              .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture
def tls_cloud(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca, cert, key = _certificate(tmp_path)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps(ANSWER).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca
    finally:
        server.shutdown()
        server.server_close()


def test_a_cloud_certificate_of_an_unknown_ca_is_not_trusted_unless_its_ca_is_given(
        tls_cloud: tuple[str, Path]) -> None:
    url, ca = tls_cloud
    with pytest.raises(EnrolmentFailed, match=r"certificate is not trusted.*--ca-file") as caught:
        fetch_enrolment(url, CODE, timeout_s=10)
    assert caught.value.code == "untrusted"
    assert fetch_enrolment(url, CODE, ca_file=ca, timeout_s=10).gateway == "gw-home"


# -- what is kept -------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_config_is_written_and_the_login_kept_for_the_user_alone(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "gateway.yaml"
    template = new_config_text(gateway="enrolling", mqtt_url="mqtt://localhost", spool=str(tmp_path / "spool.db"),
                               timezone="Europe/Berlin")
    done = store_enrolment(EnrolAnswer.model_validate(ANSWER), config, new_config=template)
    assert done.created_config and done.patients == ("p1", "p2")
    folder = tmp_path / "etc" / "credentials"
    assert _mode(folder) == 0o700
    assert done.password_file == folder / "broker-password" and done.ca_file == folder / "broker-ca.pem"
    assert _mode(done.password_file) == _mode(done.ca_file) == 0o600
    loaded = load_config(config)
    assert (loaded.gateway, loaded.mqtt_url, loaded.timezone) == ("gw-home", ANSWER["broker_url"], "Europe/Berlin")
    assert (loaded.broker_password(), loaded.mqtt_ca_file) == ("s3cret pass", str(done.ca_file))
    assert "s3cret" not in config.read_text() and "s3cret" not in repr(loaded)
    assert "# This gateway's name" in config.read_text()  # the commented template, filled in


EXISTING = """\
# my gateway, set up by hand
gateway: old-name   # renamed by the care team
mqtt_url: mqtt://user:pw@old.example.org:1883

spool: spool.db
batch_interval_s: 2

# the cuff in the kitchen
devices:
  - id: cuff-1
    patient: p1
    profile: generic.bp_cuff
    transport: ble
    address: "C4:7F:51:0A:11:22"
"""


def test_an_existing_config_is_edited_in_place(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(EXISTING)
    config.chmod(0o640)
    store_enrolment(EnrolAnswer.model_validate(ANSWER), config)
    text = config.read_text()
    for kept in ("# my gateway, set up by hand", "# renamed by the care team", "# the cuff in the kitchen",
                 'address: "C4:7F:51:0A:11:22"', "batch_interval_s: 2"):
        assert kept in text, kept
    assert "user:pw" not in text and _mode(config) == 0o640
    loaded = load_config(config)
    assert (loaded.gateway, loaded.mqtt_url) == ("gw-home", ANSWER["broker_url"])
    assert loaded.broker_password() == "s3cret pass"
    assert [d.id for d in loaded.devices] == ["cuff-1"]
    # Enrolled again into the open profile: no login, no CA; the section goes.
    store_enrolment(EnrolAnswer.model_validate({**ANSWER, "ca_pem": None, "credentials": None}), config)
    again = load_config(config)
    assert (again.mqtt_password_file, again.mqtt_ca_file) == (None, None)
    assert "mqtt_password_file" not in config.read_text()


def test_a_missing_password_file_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("gateway: g\nmqtt_url: mqtts://b:8883\nmqtt_password_file: nope\n")
    from edge.config import ConfigError

    with pytest.raises(ConfigError, match=r"mqtt_password_file: cannot read .*nope"):
        load_config(config).broker_password()


def test_the_code_is_not_spent_when_the_files_cannot_be_written(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    # As a user without sudo would find it (root, who runs these tests here, may write anywhere).
    monkeypatch.setattr("edge.enrol.os.access", lambda path, mode: Path(path) != locked)
    seen: list[httpx.Request] = []
    with pytest.raises(EnrolmentFailed, match="permission denied; run it with sudo"):
        enrol(CODE, "https://cloud.example.org", locked / "gateway.yaml", transport=_cloud(200, ANSWER, seen))
    assert seen == []


def test_the_command_says_what_is_wrong_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["edge", "enroll", "--code", "ABCD-EFGH-J1", "--cloud", "http://127.0.0.1:9",
                   "--config", str(tmp_path / "gateway.yaml")])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "never contain 1, I or L" in err and err.count("\n") == 2  # the http warning, then the refusal
    status = main(["edge", "enroll", "--code", CODE, "--cloud", "http://cloud.example.org",
                   "--config", str(tmp_path / "gateway.yaml")])
    assert status == 2 and "must be reached over https://" in capsys.readouterr().err
    status = main(["edge", "enroll", "--code", CODE, "--cloud", "http://127.0.0.1:9",
                   "--config", str(tmp_path / "gateway.yaml")])
    assert status == 2 and "cannot reach the cloud at http://127.0.0.1:9" in capsys.readouterr().err


def test_the_password_file_logs_in_as_the_gateway_unless_the_url_names_a_user(tmp_path: Path, spool: Any) -> None:
    from edge.publisher import MqttPublisher

    kept = MqttPublisher("g", "mqtt://old:pw@127.0.0.1:1883", spool, clock_s=lambda: 0.0)
    assert (kept._username, kept._password) == ("old", "pw")
    given = MqttPublisher("g", "mqtts://127.0.0.1:8883", spool, clock_s=lambda: 0.0, password="new")
    assert (given._username, given._password) == ("g", "new")
    named = MqttPublisher("g", "mqtts://other@127.0.0.1:8883", spool, clock_s=lambda: 0.0, password="new")
    assert (named._username, named._password) == ("other", "new")
