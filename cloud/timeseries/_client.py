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

__all__ = ["InfluxError", "InfluxRejected", "InfluxUnavailable", "InfluxV1Client"]

log = logging.getLogger(__name__)

_WRITE_CHUNK_LINES = 5000
_WRITES_AT_ONCE = 3


class InfluxError(RuntimeError):
    """InfluxDB refused a request or could not be reached; the message carries its answer."""


class InfluxUnavailable(InfluxError):
    """InfluxDB could not be reached, timed out or answered 5xx: the same request may succeed later."""


class InfluxRejected(InfluxError):
    """InfluxDB refused the request itself (4xx, e.g. a partial write beyond the retention policy).

    Sending it again will not help. ``status`` is the HTTP status.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _quote_identifier(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class InfluxV1Client:
    """Async client bound to one database (``db``) of one server (``url``).

    ``token`` is sent as ``Authorization: Token ...`` (InfluxDB 2.x/3); ``username``/``password`` as
    HTTP basic authentication (InfluxDB 1.x users), never in the URL where logs and proxies would keep them.
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
        auth = httpx.BasicAuth(username, password or "") if username and not token else None
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, auth=auth, timeout=timeout_s, transport=transport
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

    async def write_lines(self, lines: Sequence[str], *, retries: int = 3,
                          chunk_lines: int = _WRITE_CHUNK_LINES) -> None:
        """Write line protocol lines (ns precision) in requests of ``chunk_lines``.

        Transient failures are retried ``retries`` times, then raise :class:`InfluxUnavailable`;
        a refusal raises :class:`InfluxRejected` at once.
        """
        bodies = ["\n".join(lines[start:start + chunk_lines]).encode() for start in range(0, len(lines), chunk_lines)]
        if len(bodies) == 1:
            await self._write_chunk(bodies[0], retries)
            return
        # A few requests at once keep InfluxDB's cores busy while this process builds the next ones.
        gate = asyncio.Semaphore(_WRITES_AT_ONCE)

        async def write(body: bytes) -> None:
            async with gate:
                await self._write_chunk(body, retries)

        results = await asyncio.gather(*(write(body) for body in bodies), return_exceptions=True)
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            # A refusal says something about the data; report it before an outage, which only says "later".
            raise min(errors, key=lambda error: not isinstance(error, InfluxRejected))

    async def _write_chunk(self, body: bytes, retries: int) -> None:
        params = {"db": self.db, "precision": "ns"}
        delay = 0.2
        for attempt in range(retries + 1):
            error: InfluxError
            try:
                response = await self._http.post("/write", params=params, content=body)
            except httpx.HTTPError as exc:
                error = InfluxUnavailable(f"cannot reach InfluxDB at {self.url}: {_reason(exc)}")
            else:
                if response.status_code == 204:
                    return
                message = f"InfluxDB write failed ({response.status_code}): {response.text[:500].strip()}"
                if response.status_code < 500:
                    raise InfluxRejected(message, response.status_code)  # retrying will not help
                error = InfluxUnavailable(message)
            if attempt == retries:
                raise error
            log.warning("%s; retrying in %.1f s", error, delay)
            await asyncio.sleep(delay)
            delay *= 2

    async def _post_query(self, statement: str) -> list[dict[str, Any]]:
        params = {"q": statement, "db": self.db}
        try:
            response = await self._http.post("/query", params=params)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"cannot reach InfluxDB at {self.url}: {_reason(exc)}") from None
        return self._results(response, statement)

    async def query(self, statement: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read-only InfluxQL statement; returns the ``series`` of the first result.

        ``params`` are bound server-side (``$name`` placeholders), never pasted into the statement.
        """
        query_params: dict[str, Any] = {"q": statement, "db": self.db, "epoch": "ns"}
        if params:
            query_params["params"] = json.dumps(params)
        try:
            response = await self._http.get("/query", params=query_params)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"cannot reach InfluxDB at {self.url}: {_reason(exc)}") from None
        return self._results(response, statement)

    @staticmethod
    def _results(response: httpx.Response, statement: str) -> list[dict[str, Any]]:
        if response.status_code != 200:
            message = f"InfluxDB query failed ({response.status_code}): {response.text[:500].strip()}"
            if response.status_code >= 500:
                raise InfluxUnavailable(message)
            raise InfluxRejected(message, response.status_code)
        payload = response.json()
        results: Iterable[dict[str, Any]] = payload.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxRejected(f"InfluxDB rejected {statement[:200]!r}: {result['error']}", response.status_code)
            series: list[dict[str, Any]] = result.get("series", [])
            return series
        return []


def _reason(exc: httpx.HTTPError) -> str:
    # Some httpx errors (timeouts, a refused connection) carry an empty message: name the kind then.
    text = str(exc).strip()
    return text or type(exc).__name__
