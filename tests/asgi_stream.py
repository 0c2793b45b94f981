"""Calling a streaming route (Server-Sent Events) in process: httpx's ASGI transport waits for the whole
body, which a stream never ends, so this calls the app itself, reads chunks as they come, then hangs up."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

__all__ = ["StreamCall"]


class StreamCall:
    """``async with StreamCall(app, "/api/v1/alerts/stream", headers) as call``: ``call.status``, ``call.headers``,
    ``await call.chunk()``; leaving hangs up and waits for the app to finish. ``call.response()`` after leaving
    holds the status and every chunk read or left (for an error's body)."""

    def __init__(self, app: Any, path: str, headers: Mapping[str, str] = {}, query: str = "") -> None:
        self._app = app
        self._scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": query.encode(), "client": ("127.0.0.1", 50000), "server": ("api.test", 80),
            "headers": [(b"host", b"api.test"), *((k.lower().encode(), v.encode()) for k, v in headers.items())],
        }
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._body: list[bytes] = []
        self._started = asyncio.Event()
        self._hang_up = asyncio.Event()
        self._asked = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, Any]:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._hang_up.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
            self._started.set()
        elif message["type"] == "http.response.body" and message.get("body"):
            self._body.append(message["body"])
            await self._chunks.put(message["body"])

    async def __aenter__(self) -> StreamCall:
        self._task = asyncio.create_task(self._app(self._scope, self._receive, self._send))
        started = asyncio.create_task(self._started.wait())
        await asyncio.wait({self._task, started}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if self._task.done():
            self._task.result()  # an error in the app is raised here
        assert self._started.is_set(), "the app did not answer within 60 s"
        return self

    async def chunk(self, timeout: float = 60) -> bytes:
        """The next piece of the body."""
        return await asyncio.wait_for(self._chunks.get(), timeout)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self._hang_up.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, 60)

    def response(self) -> httpx.Response:
        """The status, headers and the whole body read."""
        return httpx.Response(self.status, headers=self.headers, content=b"".join(self._body))
