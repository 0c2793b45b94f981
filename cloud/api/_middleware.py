"""What wraps every request: the audit row(s) of each API call, and the secure response headers."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.audit import AuditEvent, AuditLog
from cloud.auth.policy import AuditNote

__all__ = ["SecureHeaders", "install_audit", "outcome_of"]

log = logging.getLogger(__name__)

_NO_PATIENT: list[str | None] = [None]
_UNAUDITED = frozenset({"/api/v1/health", "/fhir/metadata"})
_AUDITED_PREFIXES = ("/api/v1/", "/fhir/")
_STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_DOCS_CSP = "frame-ancestors 'none'"  # the interactive docs page loads scripts and styles of its own
# The web app: its own scripts and styles only (no inline script, so an injected one cannot run), API calls
# to the same origin, chart images drawn in the page.
_WEB_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def outcome_of(status: int) -> str:
    """``allowed`` (below 400), ``denied`` (401, 403, 404, 429) or ``failed``."""
    if status < 400:
        return "allowed"
    return "denied" if status in (401, 403, 404, 429) else "failed"


def install_audit(app: FastAPI, audit: AuditLog, clock: Callable[[], dt.datetime]) -> None:
    """Write one audit row per patient a call under ``/api/v1/`` or ``/fhir/`` touched (one row when it touched none),
    refusals included. If the row cannot be written, the caller gets 503 instead of the data."""

    @app.middleware("http")
    async def audit_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if not path.startswith(_AUDITED_PREFIXES) or path in _UNAUDITED:
            return await call_next(request)
        try:
            response = await call_next(request)
            status = response.status_code
        except Exception:
            await _record(audit, request, 500, clock)
            raise
        if not await _record(audit, request, status, clock):
            message = "the audit trail cannot be written"
            if path.startswith("/fhir/"):
                return JSONResponse({"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "transient", "diagnostics": message}]},
                    status_code=503, media_type="application/fhir+json")
            return JSONResponse({"error": {"code": "unavailable", "message": message}}, status_code=503)
        return response


async def _record(audit: AuditLog, request: Request, status: int, clock: Callable[[], dt.datetime]) -> bool:
    note: AuditNote = getattr(request.state, "audit", None) or AuditNote()
    at = clock()
    client = request.client.host if request.client is not None else "-"
    target = f"{request.method} {request.url.path}"
    action = note.action or "http"
    events = [AuditEvent(at=at, action=action, target=target, client=client, status=status,
                         outcome=outcome_of(status), actor=note.actor, role=note.role, patient=patient)
              for patient in (note.patients or _NO_PATIENT)]
    try:
        await asyncio.to_thread(audit.append, events)
    except Exception as exc:
        log.error("cannot write the audit trail (%s); answering 503", type(exc).__name__)
        return False
    return True


class SecureHeaders:
    """Adds the security headers to every HTTP response: ``nosniff``, no framing, no referrer, a CSP for a
    JSON API, ``no-store`` on the API's answers, and HSTS when ``hsts`` (the API is reached over TLS)."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Content-Security-Policy"] = (_DOCS_CSP if path.startswith("/api/docs")
                                                      else _WEB_CSP if path.startswith("/web/") else _STRICT_CSP)
                if path.startswith(("/api/v1/", "/fhir/")):
                    headers["Cache-Control"] = "no-store"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
            await send(message)

        await self.app(scope, receive, send_with_headers)
