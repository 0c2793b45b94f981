"""The web app's HTTP surface: page shells, their scripts and styles, third-party assets from the npm
packages built by ``make setup``, the message catalogues, and the API docs page with local assets.

The pages are shells: they carry no patient data. Their scripts fetch everything from the JSON API with
the signed-in user's bearer token, so every read goes through the same policy as any other API call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cloud.web._i18n import LANGUAGES, Catalogue, load_catalogues, negotiate_language

__all__ = ["LANGUAGE_COOKIE", "VENDOR_PACKAGES", "default_modules_dir", "install_web"]

_HERE = Path(__file__).parent
LANGUAGE_COOKIE = "vb_lang"
VENDOR_PACKAGES = frozenset({"uplot", "swagger-ui-dist"})
"""npm packages whose files the browser may load (from ``web/node_modules``); nothing else there is served."""
_ASSET_CHECK = ("uplot/dist/uPlot.esm.js", "swagger-ui-dist/swagger-ui-bundle.js")
_BUILD_HINT = "The web app's browser packages are not built: run `make setup` (or `npm ci` in web/) and restart."
_PATIENT = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
_ALERT = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


def default_modules_dir() -> Path:
    """Where the npm packages are: ``$VITALBRIDGE_WEB_MODULES``, else ``web/node_modules`` of the source tree."""
    configured = os.environ.get("VITALBRIDGE_WEB_MODULES")
    return Path(configured) if configured else _HERE.parents[1] / "web" / "node_modules"


class _Pages:
    """Renders the page shells in the request's language."""

    def __init__(self, catalogues: Mapping[str, Catalogue], modules: Path) -> None:
        self.catalogues = catalogues
        self.modules = modules
        self.environments: dict[str, Environment] = {}
        for language, catalogue in catalogues.items():
            environment = Environment(loader=FileSystemLoader(_HERE / "templates"), extensions=["jinja2.ext.i18n"],
                                      autoescape=select_autoescape(default=True), auto_reload=False)
            environment.install_gettext_callables(  # type: ignore[attr-defined]
                catalogue.gettext, catalogue.ngettext, newstyle=True)
            self.environments[language] = environment

    def assets_ready(self) -> bool:
        return all((self.modules / path).is_file() for path in _ASSET_CHECK)

    def render(self, request: Request, template: str, page: str, **data: Any) -> HTMLResponse:
        language = negotiate_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
        body = self.environments[language].get_template(template).render(
            lang=language, languages=LANGUAGES, page=page, data=data, assets_ready=self.assets_ready(),
            build_hint=_BUILD_HINT)
        return HTMLResponse(body, headers={"Cache-Control": "no-cache", "Content-Language": language,
                                           "Vary": "Cookie, Accept-Language"})


def install_web(app: FastAPI, *, modules_dir: Path | None = None) -> None:
    """Add the web app (``/`` and ``/web/...``) and the local API docs (``/api/docs``) to ``app``.

    ``modules_dir``: the npm packages (``web/node_modules``); when they are missing the app still starts,
    and the pages and the docs say how to build them.
    """
    modules = modules_dir or default_modules_dir()
    pages = _Pages(load_catalogues(_HERE / "locale"), modules)
    app.mount("/web/static", StaticFiles(directory=_HERE / "static"), name="web-static")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/web/", status_code=307)

    @app.get("/web/vendor/{package}/{path:path}", include_in_schema=False)
    async def vendor(package: str, path: str) -> Response:
        if package not in VENDOR_PACKAGES:
            return Response("not found", status_code=404, media_type="text/plain")
        base = (modules / package).resolve()
        target = (base / path).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            return Response(f"not found. {_BUILD_HINT}", status_code=404, media_type="text/plain")
        return FileResponse(target, headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/web/i18n/{language}.json", include_in_schema=False)
    async def catalogue(language: str) -> JSONResponse:
        found = pages.catalogues.get(language)
        if found is None:
            return JSONResponse({"error": {"code": "not_found", "message": f"no language {language[:20]!r}"}},
                                status_code=404)
        return JSONResponse(dict(found.messages), headers={"Cache-Control": "no-cache"})

    @app.get("/web/", include_in_schema=False)
    @app.get("/web/login", include_in_schema=False)
    async def login(request: Request) -> HTMLResponse:
        return pages.render(request, "login.html", "login")

    @app.get("/web/worklist", include_in_schema=False)
    async def worklist(request: Request) -> HTMLResponse:
        return pages.render(request, "worklist.html", "worklist")

    @app.get("/web/patients/{patient}", include_in_schema=False)
    async def patient_page(request: Request, patient: _PATIENT) -> HTMLResponse:
        return pages.render(request, "patient.html", "patient", patient=patient)

    @app.get("/web/patients/{patient}/summary", include_in_schema=False)
    async def summary_page(request: Request, patient: _PATIENT) -> HTMLResponse:
        return pages.render(request, "summary.html", "summary", patient=patient)

    @app.get("/web/patients/{patient}/settings", include_in_schema=False)
    async def settings_page(request: Request, patient: _PATIENT) -> HTMLResponse:
        return pages.render(request, "settings.html", "settings", patient=patient)

    @app.get("/web/alerts", include_in_schema=False)
    async def inbox(request: Request) -> HTMLResponse:
        return pages.render(request, "alerts.html", "alerts")

    @app.get("/web/alerts/{alert_id}", include_in_schema=False)
    async def alert_page(request: Request, alert_id: _ALERT) -> HTMLResponse:
        return pages.render(request, "alert.html", "alert", alert=alert_id)

    @app.get("/web/family", include_in_schema=False)
    async def family(request: Request) -> HTMLResponse:
        return pages.render(request, "family.html", "family")

    @app.get("/web/preferences", include_in_schema=False)
    async def preferences(request: Request) -> HTMLResponse:
        return pages.render(request, "preferences.html", "preferences")

    title = app.title
    openapi_url = app.openapi_url or "/api/openapi.json"

    @app.get("/api/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not pages.assets_ready():
            return HTMLResponse(f"<!doctype html><title>{title} API</title><p>{_BUILD_HINT}</p>"
                                f'<p>The API description is at <a href="{openapi_url}">{openapi_url}</a>.</p>')
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} API",
            oauth2_redirect_url="/api/docs/oauth2-redirect",
            swagger_js_url="/web/vendor/swagger-ui-dist/swagger-ui-bundle.js",
            swagger_css_url="/web/vendor/swagger-ui-dist/swagger-ui.css",
            swagger_favicon_url="/web/vendor/swagger-ui-dist/favicon-32x32.png",
        )

    @app.get("/api/docs/oauth2-redirect", include_in_schema=False)
    async def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
