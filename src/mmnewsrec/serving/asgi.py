"""ASGI middleware of the HTTP API: body-size limit, latency histogram, the answering worker's id."""

from __future__ import annotations

import hmac
import os
import time
from typing import Any

from fastapi.responses import JSONResponse
from prometheus_client import Histogram

#: The methods the latency histogram names; any other method counts as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


#: Sent with every response.
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"))


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
                # Which replica answered (serve --workers N): the process id, in every response; and
                # no response is sniffed into another type or framed by another site.
                message["headers"] = [
                    *message["headers"],
                    *SECURITY_HEADERS,
                    (b"x-mmnewsrec-worker", str(os.getpid()).encode()),
                ]
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


def _loopback_host(scope: dict[str, Any]) -> bool:
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("127.0.0.1", "localhost", "[::1]")


#: What a request without the write token gets (``WWW-Authenticate: Bearer``).
UNAUTHORISED = "this endpoint needs Authorization: Bearer TOKEN (the service's write token)"


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer token`` (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def unauthorised_response() -> JSONResponse:
    response = error_response(401, UNAUTHORISED)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


class WriteGuard:
    """ASGI middleware: a request with a body (POST, PUT, PATCH, DELETE) to anything but the open
    routes needs the write token before a byte of its body is read, so a client without the token
    cannot make the server parse megabytes (the routes check the token again).

    Without a token (``serve --demo``, writes open on 127.0.0.1) only requests addressed to the
    loopback host are served: a web page elsewhere that rebinds its own name to 127.0.0.1 (DNS
    rebinding) sends its own Host header, and gets 421.
    """

    def __init__(self, app: Any, token: str | None, open_paths: frozenset[str] = frozenset({"/rank"})):
        self.app, self.token, self.open_paths = app, token, open_paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.token is None and scope["type"] == "http" and not _loopback_host(scope):
            await error_response(421, "serve --demo answers requests for 127.0.0.1 or localhost only")(
                scope, receive, send
            )
            return
        if (
            self.token is not None
            and scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH", "DELETE")
            and scope["path"] not in self.open_paths
        ):
            authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not token_matches(authorization, self.token):
                await unauthorised_response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
