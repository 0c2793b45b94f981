"""HTTP hardening: secure headers, HSTS only over TLS, CORS off unless origins are listed, the API serving
TLS itself, the settings that choose all this, and one error model everywhere."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI

from cloud.api import create_app
from cloud.service import CloudConfig, ConfigError, http_server_options
from cloud.store import Store
from cloud.timeseries import InfluxV1Client
from tests.auth_helpers import clinician, security_for
from vitalbridge.stack import free_port


def _app(store: Store, *, hsts: bool = False, cors: Sequence[str] = ()) -> FastAPI:
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    return create_app(store, influx, security=security_for(store), hsts=hsts, cors_origins=cors)


async def _get(app: FastAPI, path: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
        return await client.request(str(kwargs.pop("method", "GET")), path, **kwargs)  # type: ignore[arg-type]


async def test_secure_headers_on_every_response(store: Store) -> None:
    app = _app(store)
    for path in ("/health", "/api/v1/alerts", "/api/v1/nothing-here"):
        response = await _get(app, path)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in response.headers
    assert (await _get(app, "/api/v1/alerts")).headers["Cache-Control"] == "no-store"
    docs = await _get(app, "/api/docs")
    assert docs.headers["Content-Security-Policy"] == "frame-ancestors 'none'"  # the docs page runs scripts
    hsts = await _get(_app(store, hsts=True), "/health")
    assert hsts.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


async def test_cors_is_off_unless_origins_are_listed(store: Store) -> None:
    preflight = {"Origin": "https://dash.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}
    closed = await _get(_app(store), "/api/v1/alerts", method="OPTIONS", headers=preflight)
    assert "Access-Control-Allow-Origin" not in closed.headers
    app = _app(store, cors=["https://dash.example"])
    opened = await _get(app, "/api/v1/alerts", method="OPTIONS", headers=preflight)
    assert opened.headers["Access-Control-Allow-Origin"] == "https://dash.example"
    other = await _get(app, "/api/v1/alerts", method="OPTIONS", headers={**preflight, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_every_error_has_the_one_model(store: Store) -> None:
    app = _app(store)
    for method, path, status in (("GET", "/api/v1/alerts", 401), ("GET", "/nowhere", 404),
                                 ("DELETE", "/api/v1/alerts", 405), ("POST", "/api/v1/auth/token", 422),
                                 ("POST", "/api/v1/auth/refresh", 422)):
        response = await _get(app, path, method=method)
        assert response.status_code == status
        assert set(response.json()) == {"error"} and set(response.json()["error"]) == {"code", "message"}


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "api.crt", directory / "api.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_the_api_serves_tls_itself(store: Store, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    config = CloudConfig(http_port=free_port(), tls_cert=str(cert), tls_key=str(key))
    assert config.serves_tls
    security = security_for(store)
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    app = create_app(store, influx, security=security, hsts=True)
    server = uvicorn.Server(uvicorn.Config(app, **http_server_options(config)))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        assert server.started
        context = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=context) as client:
            response = await client.get(f"https://localhost:{config.http_port}/api/v1/alerts",
                                        headers=clinician(security, ["p1"]))
            assert response.status_code == 200
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        async with httpx.AsyncClient() as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://localhost:{config.http_port}/health")
    finally:
        server.should_exit = True
        await task
        await influx.aclose()


def test_server_options_follow_the_settings() -> None:
    plain = http_server_options(CloudConfig())
    assert plain["proxy_headers"] is False and "ssl_certfile" not in plain
    proxied = http_server_options(CloudConfig(forwarded_allow_ips="10.0.0.5"))
    assert (proxied["proxy_headers"], proxied["forwarded_allow_ips"]) == (True, "10.0.0.5")


@pytest.mark.parametrize(("environ", "named"), [
    ({"VB_AUTH_SECRET": "too short"}, "VB_AUTH_SECRET"),
    ({"VB_REGISTRY": "maybe"}, "VB_REGISTRY"),
    ({"VB_TLS_CERT": "/x.crt"}, "tls_cert and tls_key go together"),
    ({"VB_AUDIT_DAYS": "0"}, "VB_AUDIT_DAYS"),
])
def test_bad_security_settings_are_one_line(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        CloudConfig.from_env(environ)
    assert "too short" not in str(caught.value)  # a secret is never echoed


def test_secret_file_and_origins(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k" * 40 + "\n")
    config = CloudConfig.from_env({"VB_AUTH_SECRET_FILE": str(tmp_path / "key"),
                                   "VB_CORS_ORIGINS": "https://a.example, https://b.example"})
    assert config.token_secret() == b"k" * 40
    assert config.cors_origins == ["https://a.example", "https://b.example"]
    assert config.registry == "enforce"
    (tmp_path / "short").write_text("k")
    with pytest.raises(ConfigError, match="fewer than 32 bytes"):
        CloudConfig(auth_secret_file=str(tmp_path / "short")).token_secret()
    with pytest.raises(ConfigError, match="cannot read"):
        CloudConfig(auth_secret_file=str(tmp_path / "missing")).token_secret()
    assert "s" * 32 not in repr(CloudConfig(auth_secret="s" * 32))
