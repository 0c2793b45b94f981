"""Sign-in: tokens (expired, forged, other algorithms refused), refresh rotation and reuse detection,
throttling held in the database, disabled users, and no token or password ever in the logs."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import warnings
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.api import create_app
from cloud.auth import Identity, LoginFailed, Role, Throttled, ThrottlePolicy, TokenError, TokenSigner
from cloud.auth.policy import SecurityContext
from cloud.store import Store
from cloud.timeseries import InfluxV1Client
from tests.auth_helpers import FAST_HASHER, PASSWORD, SECRET, add_user, security_for

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def security(store: Store, clock: Clock) -> SecurityContext:
    context = security_for(store, clock=clock)
    add_user(context, "dr.who", Role.DOCTOR, care=["p1"])
    return context


@pytest.fixture
async def client(store: Store, security: SecurityContext, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    influx = InfluxV1Client("http://influx.test", "vb", transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    app = create_app(store, influx, clock=clock, security=security)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
        yield http
    await influx.aclose()


async def _login(client: httpx.AsyncClient, username: str = "dr.who", password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": username, "password": password})


def _me(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the password flow and tokens -------------------------------------------------------------------------


async def test_login_gives_tokens_that_open_the_api(client: httpx.AsyncClient) -> None:
    response = await _login(client)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    me = await client.get("/api/v1/auth/me", headers=_me(body["access_token"]))
    assert me.json() == {"username": "dr.who", "role": "doctor", "patients": [{"patient": "p1", "relation": "care"}]}


@pytest.mark.parametrize(("username", "password"), [("dr.who", "wrong password!"), ("nobody", PASSWORD)])
async def test_a_wrong_name_or_password_is_one_answer(client: httpx.AsyncClient, username: str,
                                                      password: str) -> None:
    response = await _login(client, username, password)
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "login_failed", "message": "wrong user name or password"}}


async def test_an_expired_token_is_refused(client: httpx.AsyncClient, clock: Clock) -> None:
    token = (await _login(client)).json()["access_token"]
    clock.now = NOW + dt.timedelta(minutes=14, seconds=59)
    assert (await client.get("/api/v1/auth/me", headers=_me(token))).status_code == 200
    clock.now = NOW + dt.timedelta(minutes=15)
    expired = await client.get("/api/v1/auth/me", headers=_me(token))
    assert expired.status_code == 401 and expired.headers["WWW-Authenticate"] == "Bearer"


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _unsigned(claims: dict[str, object], alg: str) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}."


async def test_forged_and_foreign_tokens_are_refused(client: httpx.AsyncClient, security: SecurityContext) -> None:
    token = (await _login(client)).json()["access_token"]
    claims = _claims(token)
    promoted = {**claims, "role": "admin"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns that a 32-byte key is short for HS512: that is the point
        other_algorithm = jwt.encode(claims, SECRET, algorithm="HS512")
    forged = [
        jwt.encode(promoted, b"x" * 32, algorithm="HS256"),  # another key
        other_algorithm,  # the right key, another algorithm
        _unsigned(claims, "none"),  # no signature at all
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),  # a changed signature
        jwt.encode({**claims, "aud": "someone-else"}, SECRET, algorithm="HS256"),
        jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET, algorithm="HS256"),
        "not.a.token", "",
    ]
    for bad in forged:
        response = await client.get("/api/v1/auth/me", headers=_me(bad))
        assert response.status_code == 401, bad
        assert response.json()["error"]["code"] == "unauthorized"
    assert (await client.get("/api/v1/auth/me", headers={"Authorization": "Basic Zm9vOmJhcg=="})).status_code == 401


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_any_string_is_a_token_error_or_a_token(text: str) -> None:
    signer = TokenSigner(SECRET)
    with pytest.raises(TokenError):
        signer.verify(text, now=NOW)


def test_the_signer_needs_a_long_key_and_never_shows_it() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenSigner(b"short")
    assert "t" * 32 not in repr(TokenSigner(SECRET))


async def test_a_password_change_or_disabling_voids_tokens(client: httpx.AsyncClient,
                                                           security: SecurityContext) -> None:
    tokens = (await _login(client)).json()
    security.identity.set_password("dr.who", "a brand new password")
    assert (await client.get("/api/v1/auth/me", headers=_me(tokens["access_token"]))).status_code == 401
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            ).status_code == 401
    fresh = (await _login(client, password="a brand new password")).json()
    security.identity.set_disabled("dr.who")
    assert (await client.get("/api/v1/auth/me", headers=_me(fresh["access_token"]))).status_code == 401
    assert (await _login(client, password="a brand new password")).status_code == 401


# -- refresh tokens -----------------------------------------------------------------------------------------


async def test_refresh_rotates_and_a_reused_token_revokes_the_login(client: httpx.AsyncClient) -> None:
    first = (await _login(client)).json()
    second = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert (await client.get("/api/v1/auth/me", headers=_me(rotated["access_token"]))).status_code == 200
    # The first refresh token again: someone replays it, so every token of this login is revoked.
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
            ).status_code == 401


async def test_logout_revokes_and_expired_refresh_tokens_fail(client: httpx.AsyncClient, clock: Clock) -> None:
    tokens = (await _login(client)).json()
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
            ).status_code == 204
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            ).status_code == 401
    later = (await _login(client)).json()
    clock.now = NOW + dt.timedelta(days=14)
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": later["refresh_token"]})
            ).status_code == 401


def test_refresh_tokens_are_stored_only_as_hashes(store: Store, security: SecurityContext) -> None:
    user = security.identity.user_by_name("dr.who")
    assert user is not None
    token = security.identity.issue_refresh(user, now=NOW)
    with store.engine.connect() as connection:
        dump = "\n".join(str(row) for row in connection.exec_driver_sql("SELECT * FROM refresh_tokens"))
        users = "\n".join(str(row) for row in connection.exec_driver_sql("SELECT * FROM users"))
    assert token not in dump
    assert PASSWORD not in users and "$argon2id$" in users


# -- throttling --------------------------------------------------------------------------------------------


async def test_failed_logins_lock_the_user_then_the_lock_ends(client: httpx.AsyncClient, clock: Clock) -> None:
    for _ in range(5):
        assert (await _login(client, password="wrong password!")).status_code == 401
    locked = await _login(client)  # even the right password
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "throttled"
    assert locked.headers["Retry-After"] == str(15 * 60)
    clock.now = NOW + dt.timedelta(minutes=15)
    assert (await _login(client)).status_code == 200


def test_the_throttle_holds_across_processes_and_counts_addresses(store: Store) -> None:
    policy = ThrottlePolicy(user_failures=3, address_failures=4)
    one, two = (Identity(store.engine, hasher=FAST_HASHER, throttle=policy) for _ in range(2))  # two API processes
    for name in ("a.user", "b.user", "c.user"):
        one.add_user(name, Role.NURSE, PASSWORD, now=NOW)
    for identity in (one, two, one):
        with pytest.raises(LoginFailed):
            identity.authenticate("a.user", "wrong password!", client="10.0.0.1", now=NOW)
    with pytest.raises(Throttled):
        two.authenticate("a.user", PASSWORD, client="10.0.0.2", now=NOW)  # the user is locked everywhere
    with pytest.raises(LoginFailed):
        two.authenticate("b.user", "wrong password!", client="10.0.0.1", now=NOW)  # the 4th from that address
    with pytest.raises(Throttled):
        one.authenticate("c.user", PASSWORD, client="10.0.0.1", now=NOW)  # the address is locked for anyone
    assert one.authenticate("c.user", PASSWORD, client="10.0.0.3", now=NOW).username == "c.user"


# -- nothing secret in the logs -----------------------------------------------------------------------------


async def test_no_token_or_password_reaches_the_logs(client: httpx.AsyncClient, security: SecurityContext,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="cloud")
    secrets_seen: list[str] = [PASSWORD, "wrong password!", "a password typed as a name"]
    tokens = (await _login(client)).json()
    secrets_seen += [tokens["access_token"], tokens["refresh_token"]]
    await _login(client, password="wrong password!")
    await _login(client, username="a password typed as a name")
    await client.get("/api/v1/auth/me", headers=_me(tokens["access_token"]))
    await client.get("/api/v1/auth/me", headers=_me(tokens["access_token"] + "x"))
    rotated = (await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
    secrets_seen += [rotated["access_token"], rotated["refresh_token"]]
    await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    await client.post("/api/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    await client.post("/api/v1/users", headers=_me(rotated["access_token"]),
                      json={"username": "x", "role": "admin", "password": "another secret pw"})
    secrets_seen.append("another secret pw")
    ours = [record.getMessage() for record in caplog.records if record.name.startswith("cloud.")]
    assert "login failed for dr.who from 127.0.0.1" in ours, ours  # something was logged: the scan proves a thing
    assert "login failed for an unknown user name from 127.0.0.1" in ours
    assert any(message.startswith("refresh refused") for message in ours)
    logged = "\n".join(f"{record.getMessage()} {record.args!r} {record.exc_text or ''}" for record in caplog.records)
    for secret in secrets_seen:
        assert secret not in logged
    rows = "\n".join(repr(entry) for entry in security.audit.entries())
    for secret in secrets_seen:
        assert secret not in rows
