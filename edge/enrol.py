"""``vitalbridge edge enroll``: trade a one-time enrolment code for this gateway's identity and broker login.

The cloud is asked over HTTPS (its certificate checked against the system's CAs, or a CA file given);
plain HTTP only to a loopback address, for trying things out on one machine. What comes back is kept in
files the gateway's user alone may read (the folder 0700, each file 0600) and named in the gateway config,
which is written or edited in place (comments and everything else kept). Every failure is an
:class:`EnrolmentFailed` with one plain line for the person at the keyboard.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.config import ConfigError
from edge.config_edit import set_broker, write_atomically
from vitals.endpoints import parse_mqtt_url
from vitals.enrolment import CodeFormatError, normalise_code
from vitals.samples import IDENTIFIER_PATTERN

__all__ = [
    "CA_FILE",
    "PASSWORD_FILE",
    "EnrolAnswer",
    "EnrolmentFailed",
    "Enrolled",
    "check_cloud_url",
    "check_writable",
    "enrol",
    "explain_refusal",
    "fetch_enrolment",
    "store_enrolment",
]

PASSWORD_FILE = "broker-password"
CA_FILE = "broker-ca.pem"

_MESSAGES = {
    "wrong_code": "the cloud does not know this enrolment code. Check it for typing mistakes; if it is right, "
                  "ask your care team for a new one",
    "used_code": "this enrolment code has been used already (each code works once). Ask your care team for a "
                 "new one",
    "expired_code": "this enrolment code has expired. Ask your care team for a new one",
    "gateway_revoked": "your care team has switched this gateway off (revoked). Ask them what to do",
    "throttled": "too many wrong codes were tried from this network. Wait a while, then try again",
}


class EnrolmentFailed(Exception):
    """Enrolment did not happen; the message is one plain line. ``code`` names the case (``wrong_code``,
    ``used_code``, ``expired_code``, ``gateway_revoked``, ``throttled``, ``unreachable``, ``untrusted``,
    ``insecure``, ``bad_code``, ``bad_answer``, ``cannot_write``, ``refused``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Login(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: Annotated[str, Field(min_length=1, max_length=256)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class EnrolAnswer(BaseModel):
    """The cloud's answer to a good code (``POST /api/v1/enrol``)."""

    model_config = ConfigDict(extra="ignore")

    gateway: Annotated[str, Field(pattern=f"^{IDENTIFIER_PATTERN.pattern}$")]
    patients: list[Annotated[str, Field(pattern=f"^{IDENTIFIER_PATTERN.pattern}$")]]
    broker_url: str
    ca_pem: Annotated[str, Field(max_length=65_536)] | None = None
    credentials: _Login | None = None


@dataclass(frozen=True)
class Enrolled:
    """What enrolment did: the gateway, its patients, the broker, and the files written."""

    gateway: str
    patients: tuple[str, ...]
    broker_url: str
    config_path: Path
    password_file: Path | None
    ca_file: Path | None
    created_config: bool


def check_cloud_url(url: str) -> tuple[str, bool]:
    """The cloud's base URL without a trailing slash, and whether it is plain HTTP to a loopback address
    (allowed, with a warning); :class:`EnrolmentFailed` (``insecure``) for anything else that is not HTTPS."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EnrolmentFailed("insecure", f"the cloud address must look like https://cloud.example.org, not {url!r}")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise EnrolmentFailed("insecure", "the cloud must be reached over https:// (the code and the gateway's "
                                  "password would travel in the clear); plain http:// is only for this machine")
        return url.strip().rstrip("/"), True
    return url.strip().rstrip("/"), False


def explain_refusal(status: int, body: Any) -> EnrolmentFailed:
    """The plain message for the cloud's refusal ``status`` with the JSON ``body`` (the API's error model)."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str) and code in _MESSAGES:
        return EnrolmentFailed(code, _MESSAGES[code])
    message = error.get("message") if isinstance(error, dict) else None
    detail = f": {str(message)[:200]}" if isinstance(message, str) and message else ""
    return EnrolmentFailed("refused", f"the cloud refused the enrolment (HTTP {status}){detail}")


def _untrusted(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if isinstance(seen, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def fetch_enrolment(cloud_url: str, code: str, *, ca_file: Path | None = None, timeout_s: float = 30.0,
                    transport: httpx.BaseTransport | None = None) -> EnrolAnswer:
    """Ask the cloud at ``cloud_url`` for the enrolment of ``code``; :class:`EnrolmentFailed` for every way
    that fails (the code's format is checked first, without asking)."""
    try:
        normal = normalise_code(code)
    except CodeFormatError as exc:
        raise EnrolmentFailed("bad_code", str(exc)) from None
    base, _plain = check_cloud_url(cloud_url)
    try:
        # The system's CAs (not a bundled list), or the one file the care team gave.
        verify = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise EnrolmentFailed("untrusted", f"cannot use the CA file {ca_file}: {exc}") from None
    try:
        with httpx.Client(verify=verify, timeout=timeout_s, transport=transport) as client:
            response = client.post(f"{base}/api/v1/enrol", json={"code": normal})
    except httpx.HTTPError as exc:
        if _untrusted(exc):
            raise EnrolmentFailed("untrusted", f"the cloud's certificate is not trusted ({base}); if your care "
                                  "team gave you a CA file, add --ca-file FILE") from None
        raise EnrolmentFailed("unreachable", f"cannot reach the cloud at {base} ({type(exc).__name__}); check "
                              "the address and this machine's internet connection") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        raise explain_refusal(response.status_code, body)
    try:
        answer = EnrolAnswer.model_validate(body)
        parse_mqtt_url(answer.broker_url)
    except (ValidationError, ValueError):
        raise EnrolmentFailed("bad_answer", f"the cloud at {base} gave an answer this gateway cannot use; is it a "
                              "VitalBridge cloud of the same version?") from None
    return answer


def _write_private(path: Path, text: str, owner: tuple[int, int] | None) -> None:
    write_atomically(path, text, mode=0o600)
    os.chmod(path, 0o600)  # also when it replaced an older file of wider mode
    if owner is not None:
        os.chown(path, *owner)


def _folder(config_path: Path, credentials_dir: Path | None) -> Path:
    return credentials_dir if credentials_dir is not None else config_path.absolute().parent / "credentials"


def check_writable(config_path: Path, credentials_dir: Path | None = None) -> None:
    """:class:`EnrolmentFailed` (``cannot_write``) when the config or the credentials could not be written:
    checked before the code is spent, so that a missing ``sudo`` does not waste it."""
    for target in (config_path.absolute(), _folder(config_path, credentials_dir) / PASSWORD_FILE):
        # Files are replaced by a rename: it is their folder (or the nearest one that exists) that must be writable.
        folder = next((p for p in target.parents if p.exists()), Path("/"))
        if not os.access(folder, os.W_OK):
            raise EnrolmentFailed("cannot_write", f"cannot write {target}: permission denied; run it with sudo")


def store_enrolment(answer: EnrolAnswer, config_path: Path, *, credentials_dir: Path | None = None,
                    owner: tuple[int, int] | None = None, new_config: str | None = None) -> Enrolled:
    """Keep ``answer``: the password and CA in ``credentials_dir`` (default: ``credentials`` beside the
    config; 0700, files 0600, given to ``owner`` (uid, gid) when set) and the gateway config updated (or, when
    there is none, ``new_config`` written with the gateway and broker filled in).
    :class:`EnrolmentFailed` (``cannot_write``) when a file cannot be written."""
    folder = _folder(config_path, credentials_dir)
    password_file = folder / PASSWORD_FILE if answer.credentials is not None else None
    ca_file = folder / CA_FILE if answer.ca_pem is not None else None
    try:
        if password_file is not None or ca_file is not None:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(folder, 0o700)
            if owner is not None:
                os.chown(folder, *owner)
        if password_file is not None and answer.credentials is not None:
            _write_private(password_file, answer.credentials.password + "\n", owner)
        if ca_file is not None and answer.ca_pem is not None:
            _write_private(ca_file, answer.ca_pem if answer.ca_pem.endswith("\n") else answer.ca_pem + "\n", owner)
        created = not config_path.exists()
        if created and new_config is None:
            raise EnrolmentFailed("cannot_write", f"{config_path}: no such file (gateway config)")
        set_broker(config_path, gateway=answer.gateway, mqtt_url=answer.broker_url,
                   username=answer.credentials.username if answer.credentials is not None else None,
                   password_file=str(password_file) if password_file is not None else None,
                   ca_file=str(ca_file) if ca_file is not None else None, base_text=new_config if created else None)
        if owner is not None:
            os.chown(config_path, *owner)
    except ConfigError as exc:
        raise EnrolmentFailed("cannot_write", str(exc)) from None
    except OSError as exc:
        hint = "; run it with sudo" if isinstance(exc, PermissionError) else ""
        raise EnrolmentFailed("cannot_write", f"cannot write {exc.filename or folder}: "
                              f"{exc.strerror or exc}{hint}") from None
    return Enrolled(answer.gateway, tuple(answer.patients), answer.broker_url, config_path, password_file, ca_file,
                    created)


def enrol(code: str, cloud_url: str, config_path: Path, *, ca_file: Path | None = None,
          credentials_dir: Path | None = None, owner: tuple[int, int] | None = None,
          new_config: str | None = None, transport: httpx.BaseTransport | None = None) -> Enrolled:
    """Fetch the enrolment of ``code`` from ``cloud_url`` and keep it (:func:`check_writable`,
    :func:`fetch_enrolment`, then :func:`store_enrolment`)."""
    check_writable(config_path, credentials_dir)
    answer = fetch_enrolment(cloud_url, code, ca_file=ca_file, transport=transport)
    return store_enrolment(answer, config_path, credentials_dir=credentials_dir, owner=owner, new_config=new_config)
