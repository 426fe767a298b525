"""ASGI middleware of the HTTP API: body-size limit, latency histogram, the answering worker's id."""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi.responses import JSONResponse
from prometheus_client import Histogram

#: The methods the latency histogram names; any other method counts as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def error_response(status: int, message: str) -> JSONResponse:
    """The API's error body: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status)


class LimitAndTime:
    """ASGI middleware: refuses bodies over ``max_body`` bytes (413) before the app parses them, and
    times every request into the latency histogram by route template (never by raw path)."""

    def __init__(self, app: Any, max_body: int, latency: Histogram):
        self.app, self.max_body, self.latency = app, max_body, latency

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", [])
                # Which replica answered (serve --workers N): the process id, in every response.
                message["headers"] = [*message["headers"], (b"x-mmnewsrec-worker", str(os.getpid()).encode())]
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length")
        too_large = error_response(413, f"request body over {self.max_body} bytes")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await too_large(scope, receive, send_status)
        elif declared is None and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            # A chunked body: read it whole (up to the limit) before the app sees it.
            body = await self._read_body(receive)
            if body is None:
                await too_large(scope, receive, send_status)
            else:
                await self.app(scope, _replay(body, receive), send_status)
        else:
            await self.app(scope, receive, send_status)
        # Every label takes few values, whatever clients send: a route template (never the raw path),
        # a known method, a status code.
        route = getattr(scope.get("route"), "path", "other")
        method = scope["method"] if scope["method"] in METHODS else "other"
        self.latency.labels(method, route, str(status[0])).observe(time.perf_counter() - start)

    async def _read_body(self, receive: Any) -> bytes | None:
        """The whole body, or None when it is over the limit (or the client left)."""
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > self.max_body:
                return None
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    delivered = False

    async def replay() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
