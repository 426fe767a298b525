"""Connection deadlines: a client that sends nothing, or a request a few bytes at a time, is cut off;
a request that arrived whole is answered however long the application takes."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mmnewsrec.serving.connections import DeadlineProtocol


class QuickDeadlines(DeadlineProtocol):
    idle_seconds = 0.5
    request_seconds = 1.0


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    if request.query_params.get("sleep"):
        await asyncio.sleep(float(request.query_params["sleep"]))
    return JSONResponse({"bytes": len(body)})


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    app = Starlette(routes=[Route("/", echo, methods=["GET", "POST"])])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=QuickDeadlines, log_level="warning", timeout_keep_alive=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    yield listener.getsockname()
    server.should_exit = True
    thread.join(timeout=10)


def read_until_closed(sock: socket.socket, limit: float = 5.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started, chunks = time.monotonic(), []
    sock.settimeout(limit)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks), time.monotonic() - started
        chunks.append(chunk)


def read_response(sock: socket.socket) -> bytes:
    """One whole response (headers, then content-length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_that_sends_nothing_is_closed(address) -> None:
    with socket.create_connection(address) as sock:
        data, took = read_until_closed(sock)
    assert data == b"" and took < 2.0


@pytest.mark.parametrize(
    "partial",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n",  # headers that stop halfway
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",  # a body that does
    ],
    ids=["headers", "body"],
)
def test_a_request_that_stops_halfway_gets_408_and_is_closed(address, partial: bytes) -> None:
    with socket.create_connection(address) as sock:
        sock.sendall(partial)
        data, took = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 ") and b'"error"' in data and 0.8 < took < 3.0


def test_a_slow_trickle_cannot_extend_the_deadline(address) -> None:
    """A byte every 0.3 s restarts no timer: the request has a second from its first byte."""
    with socket.create_connection(address) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        answer = b""
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1234567890\r\n":
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.3)
            if time.monotonic() - started > 1.5:
                break
        answer, _ = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - started < 4.0


def test_whole_requests_are_answered_however_long_the_app_takes_and_connections_are_reused(address) -> None:
    request = b"POST /?sleep=1.5 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    with socket.create_connection(address) as sock:
        sock.settimeout(5)
        sock.sendall(request)
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 200 ") and first.endswith(b'{"bytes":5}')
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection, kept alive
        second = read_response(sock)
        assert second.startswith(b"HTTP/1.1 200 ")
        data, took = read_until_closed(sock)  # then idle: uvicorn's keep-alive timeout closes it
    assert data == b"" and took < 3.0


@pytest.mark.parametrize("sleep", [0, 1.5], ids=["quick-app", "slow-app"])
def test_a_pipelined_request_that_stops_halfway_gets_408_too(address, sleep: float) -> None:
    """A whole request and the start of the next in one packet: the first is answered, the second
    has its second from its first byte like any request (not the keep-alive timeout, not forever)."""
    first = f"GET /?sleep={sleep} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with socket.create_connection(address) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        sock.sendall(first + b"GET / HTTP/1.1\r\nHost: x\r\nX-Stalled:")
        data, _ = read_until_closed(sock)  # the first answer, then (maybe in the same segment) a 408
    took = time.monotonic() - started
    answer, _, rest = data.partition(b"HTTP/1.1 408 ")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1 ") == 1 and b'"error"' in rest, data
    assert took < max(sleep, 1.0) + 1.5
