"""A small client for InfluxDB's v1-compatible HTTP API: ``/ping``, ``/write``, ``/query``.

InfluxDB 1.x, 2.x (with a DBRP mapping and a token) and 3 Core all serve these endpoints.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

__all__ = ["InfluxError", "InfluxV1Client"]

log = logging.getLogger(__name__)

_WRITE_CHUNK_LINES = 5000


class InfluxError(RuntimeError):
    """InfluxDB refused a request or could not be reached; the message carries its answer."""


def _quote_identifier(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxV1Client:
    """Async client bound to one database (``db``) of one server (``url``).

    ``token`` is sent as ``Authorization: Token ...`` (InfluxDB 2.x/3); ``username``/``password`` as
    v1 query parameters.
    """

    def __init__(
        self,
        url: str,
        db: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.db = db
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._auth_params: dict[str, str] = {}
        if username:
            self._auth_params = {"u": username, "p": password or ""}
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout_s, transport=transport
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> InfluxV1Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def ping(self) -> bool:
        """True when the server answers ``/ping`` with 204."""
        try:
            response = await self._http.get("/ping")
        except httpx.HTTPError:
            return False
        return response.status_code == 204

    async def create_database(self) -> None:
        """Create the database if it does not exist (a no-op on servers that manage DBRP mappings)."""
        await self._post_query(f"CREATE DATABASE {_quote_identifier(self.db)}")

    async def write_lines(self, lines: Sequence[str], *, retries: int = 3) -> None:
        """Write line protocol lines (ns precision), in chunks, retrying transient failures."""
        for start in range(0, len(lines), _WRITE_CHUNK_LINES):
            body = "\n".join(lines[start:start + _WRITE_CHUNK_LINES]).encode()
            await self._write_chunk(body, retries)

    async def _write_chunk(self, body: bytes, retries: int) -> None:
        params = {"db": self.db, "precision": "ns", **self._auth_params}
        delay = 0.2
        for attempt in range(retries + 1):
            try:
                response = await self._http.post("/write", params=params, content=body)
            except httpx.HTTPError as exc:
                error = InfluxError(f"cannot reach InfluxDB at {self.url}: {exc}")
            else:
                if response.status_code == 204:
                    return
                error = InfluxError(f"InfluxDB write failed ({response.status_code}): {response.text[:500]}")
                if response.status_code < 500:
                    raise error  # the data is wrong: retrying will not help
            if attempt == retries:
                raise error
            log.warning("%s; retrying in %.1f s", error, delay)
            await asyncio.sleep(delay)
            delay *= 2

    async def _post_query(self, statement: str) -> list[dict[str, Any]]:
        params = {"q": statement, "db": self.db, **self._auth_params}
        try:
            response = await self._http.post("/query", params=params)
        except httpx.HTTPError as exc:
            raise InfluxError(f"cannot reach InfluxDB at {self.url}: {exc}") from None
        return self._results(response, statement)

    async def query(self, statement: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read-only InfluxQL statement; returns the ``series`` of the first result.

        ``params`` are bound server-side (``$name`` placeholders), never pasted into the statement.
        """
        query_params: dict[str, Any] = {"q": statement, "db": self.db, "epoch": "ns", **self._auth_params}
        if params:
            query_params["params"] = json.dumps(params)
        try:
            response = await self._http.get("/query", params=query_params)
        except httpx.HTTPError as exc:
            raise InfluxError(f"cannot reach InfluxDB at {self.url}: {exc}") from None
        return self._results(response, statement)

    @staticmethod
    def _results(response: httpx.Response, statement: str) -> list[dict[str, Any]]:
        if response.status_code != 200:
            raise InfluxError(f"InfluxDB query failed ({response.status_code}): {response.text[:500]}")
        payload = response.json()
        results: Iterable[dict[str, Any]] = payload.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxError(f"InfluxDB rejected {statement[:200]!r}: {result['error']}")
            series: list[dict[str, Any]] = result.get("series", [])
            return series
        return []
