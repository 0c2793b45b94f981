"""``/api/v1/auth/*`` (OAuth2 password flow, refresh, logout, who am I) and ``/api/v1/users`` (admins)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from cloud.auth import ERROR_RESPONSES, ApiError, AuthError, LoginFailed, Role, Throttled, User
from cloud.auth.policy import Permission, Principal, SecurityContext, audit_note, require

__all__ = ["auth_router"]

log = logging.getLogger(__name__)


class TokenResponse(BaseModel):
    """An access token (a JWT, short-lived) and a refresh token (opaque, single use)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str


class RefreshRequest(BaseModel):
    """A refresh token to spend (refresh) or revoke (logout)."""

    refresh_token: str = Field(min_length=1, max_length=256)


class PatientRelation(BaseModel):
    """A patient the user stands in relation to."""

    patient: str
    relation: Literal["care", "family"]


class MeResponse(BaseModel):
    """The signed-in user."""

    username: str
    role: Role
    patients: list[PatientRelation]


class UserOut(BaseModel):
    """A user as admins see it."""

    username: str
    role: Role
    disabled: bool


class UserIn(BaseModel):
    """A user to create."""

    username: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Field(min_length=1, max_length=1024)


def _user_out(user: User) -> UserOut:
    return UserOut(username=user.username, role=user.role, disabled=user.disabled)


def _context(request: Request) -> SecurityContext:
    context: SecurityContext = request.app.state.security
    return context


async def _tokens(context: SecurityContext, user: User, refresh: str | None = None) -> TokenResponse:
    now = context.clock()
    if refresh is None:
        refresh = await asyncio.to_thread(context.identity.issue_refresh, user, now=now)
    access = context.signer.issue(user_id=user.id, username=user.username, role=user.role.value,
                                  version=user.token_version, now=now)
    return TokenResponse(access_token=access, expires_in=int(context.signer.ttl.total_seconds()),
                         refresh_token=refresh)


_LOGIN_RESPONSES: dict[int | str, dict[str, Any]] = {401: ERROR_RESPONSES[401], 422: ERROR_RESPONSES[422],
                    429: {"model": ERROR_RESPONSES[401]["model"], "description": "Too many failed logins"}}

auth_router = APIRouter()


@auth_router.post("/api/v1/auth/token", response_model=TokenResponse, responses=_LOGIN_RESPONSES)
async def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenResponse:
    """OAuth2 password flow: user name and password (form fields) in, tokens out.

    Throttled per user and per client address after repeated failures (429 with ``Retry-After``).
    """
    context = _context(request)
    note = audit_note(request)
    note.action = "auth.login"
    client = request.client.host if request.client is not None else "-"
    try:
        user = await asyncio.to_thread(context.identity.authenticate, form.username, form.password,
                                       client=client, now=context.clock())
    except Throttled as exc:
        log.warning("login throttled from %s", client)
        raise ApiError(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    except LoginFailed:
        known = await asyncio.to_thread(context.identity.user_by_name, form.username)
        if known is not None:  # never record an unknown name: it may be a password typed in the wrong box
            note.actor, note.role = known.username, known.role.value
        log.warning("login failed for %s from %s", known.username if known else "an unknown user name", client)
        raise ApiError(401, "wrong user name or password", code="login_failed") from None
    log.info("login: %s (%s) from %s", user.username, user.role.value, client)
    note.actor, note.role = user.username, user.role.value
    return await _tokens(context, user)


@auth_router.post("/api/v1/auth/refresh", response_model=TokenResponse, responses=_LOGIN_RESPONSES)
async def refresh(request: Request, body: RefreshRequest) -> TokenResponse:
    """Spend a refresh token for a new access token and a new refresh token (the old one stops working)."""
    context = _context(request)
    audit_note(request).action = "auth.refresh"
    try:
        user, token = await asyncio.to_thread(context.identity.rotate_refresh, body.refresh_token,
                                              now=context.clock())
    except LoginFailed as exc:
        log.warning("refresh refused: %s", exc)  # the reason, never the token
        raise ApiError(401, "the refresh token is invalid, expired or already used", code="login_failed") from None
    note = audit_note(request)
    note.actor, note.role = user.username, user.role.value
    return await _tokens(context, user, token)


@auth_router.post("/api/v1/auth/logout", status_code=204, responses={422: ERROR_RESPONSES[422]})
async def logout(request: Request, body: RefreshRequest) -> Response:
    """Revoke a refresh token and every token rotated from the same login."""
    audit_note(request).action = "auth.logout"
    await asyncio.to_thread(_context(request).identity.revoke_refresh, body.refresh_token)
    return Response(status_code=204)


@auth_router.get("/api/v1/auth/me", response_model=MeResponse, responses=ERROR_RESPONSES)
async def me(principal: Annotated[Principal, Depends(require(Permission.READ_SELF))]) -> MeResponse:
    """Who the token belongs to, and the patients they stand in relation to."""
    return MeResponse(username=principal.username, role=principal.role, patients=[
        PatientRelation(patient=patient, relation=relation.value)
        for patient, relation in sorted(principal.relations.items())])


@auth_router.get("/api/v1/users", response_model=list[UserOut], responses=ERROR_RESPONSES)
async def list_users(request: Request,
                     _principal: Annotated[Principal, Depends(require(Permission.MANAGE_USERS))]) -> list[UserOut]:
    """Every user (admins)."""
    return [_user_out(user) for user in await asyncio.to_thread(_context(request).identity.users)]


@auth_router.post("/api/v1/users", response_model=UserOut, status_code=201,
                  responses={**ERROR_RESPONSES, 409: ERROR_RESPONSES[404] | {"description": "Name taken"}})
async def create_user(request: Request, body: UserIn,
                      _principal: Annotated[Principal, Depends(require(Permission.MANAGE_USERS))]) -> UserOut:
    """Create a user (admins). Passwords are at least 10 characters."""
    context = _context(request)
    try:
        user = await asyncio.to_thread(context.identity.add_user, body.username, body.role, body.password,
                                       now=context.clock())
    except AuthError as exc:
        raise ApiError(409 if "already exists" in str(exc) else 422, str(exc)) from None
    return _user_out(user)


async def _set_disabled(request: Request, username: str, disabled: bool) -> UserOut:
    try:
        user = await asyncio.to_thread(_context(request).identity.set_disabled, username, disabled)
    except AuthError as exc:
        raise ApiError(404, str(exc)) from None
    return _user_out(user)


@auth_router.post("/api/v1/users/{username}/disable", response_model=UserOut, responses=ERROR_RESPONSES)
async def disable_user(request: Request, username: str,
                       _principal: Annotated[Principal, Depends(require(Permission.MANAGE_USERS))]) -> UserOut:
    """Disable a user: their tokens stop working at once (admins)."""
    return await _set_disabled(request, username, True)


@auth_router.post("/api/v1/users/{username}/enable", response_model=UserOut, responses=ERROR_RESPONSES)
async def enable_user(request: Request, username: str,
                      _principal: Annotated[Principal, Depends(require(Permission.MANAGE_USERS))]) -> UserOut:
    """Enable a disabled user (admins)."""
    return await _set_disabled(request, username, False)
