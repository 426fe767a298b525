"""HTTP connections with deadlines: a client that connects and sends nothing, or sends a request a
few bytes at a time, cannot hold a connection (and the server's memory) open for as long as it likes.

uvicorn closes a keep-alive connection that stays idle after a response, but not one that never
sends a request, nor one whose headers or body stop halfway (a request pipelined behind another
included). :class:`DeadlineProtocol` adds both.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a fresh connection may wait before the first byte of a request.
IDLE_SECONDS = 5.0
#: Seconds a request may take to arrive whole (headers and body), from its first byte.
REQUEST_SECONDS = 20.0


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with two deadlines: :data:`IDLE_SECONDS` from connecting to a
    request's first byte, and :data:`REQUEST_SECONDS` from its first byte to its last. A request
    past its deadline gets 408 ``{"error": ...}`` and the connection is closed; an idle connection is
    closed. Once a request has arrived whole, the application takes as long as it takes."""

    idle_seconds = IDLE_SECONDS
    request_seconds = REQUEST_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._pipelined_since: float | None = None  # when the next request's first bytes came in
        self._arm(self.idle_seconds, self._idle)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # IDLE: some of the next request's headers (or none); SEND_BODY: headers, part of the body.
        arriving = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
        if arriving and (self._deadline is None or self._waiting_for_first_byte):
            self._arm(self.request_seconds, self._too_slow)
        elif not arriving:
            self._disarm()
            if self._buffered() and self._pipelined_since is None:  # the next request began in this packet
                self._pipelined_since = self.loop.time()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive timeout; reads what was pipelined
        self._disarm()
        since, self._pipelined_since = self._pipelined_since, None
        if since is not None and not self.transport.is_closing() and self._buffered():
            # A pipelined request that has not arrived whole (one that has is being answered): its
            # deadline runs from its first byte, like any request's.
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
                self._arm(max(0.0, self.request_seconds - (self.loop.time() - since)), self._too_slow)

    def _buffered(self) -> bool:
        """Whether bytes of a request are received but not yet read as a whole request."""
        data, _ = self.conn.trailing_data
        return bool(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # ------------------------------------------------------------------------------ deadlines
    def _arm(self, seconds: float, then) -> None:
        self._disarm()
        self._waiting_for_first_byte = then == self._idle
        self._deadline = self.loop.call_later(seconds, then)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
        self._deadline = None
        self._waiting_for_first_byte = False

    def _idle(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started or self.cycle.response_complete:
            body = json.dumps(
                {"error": f"the request did not arrive whole within {self.request_seconds:g} s of its first byte"}
            ).encode()
            head = (
                "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            ).encode()
            self.transport.write(head + body)
        if self.cycle is not None:
            self.cycle.disconnected = True  # the application's receive() now sees the client gone
            self.cycle.message_event.set()
        self.transport.close()
