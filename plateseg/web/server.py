"""Serving the app with uvicorn, closing connections that send their headers too slowly.

uvicorn times out idle keep-alive connections but waits forever for the headers of a
request that has started (a "slowloris" client holds a connection open with a byte now
and then). :func:`header_timeout_protocol` gives uvicorn's h11 protocol a deadline: from
the moment a connection opens, or a response ends, the next request's headers must be
complete within ``seconds``, or the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["header_timeout_protocol", "run"]


class _HeaderDeadline(H11Protocol):
    header_timeout: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            self.logger.warning(
                "closed a connection whose request headers took over %ss", self.header_timeout
            )
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request's headers are complete
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()  # before the base class may start a pipelined request (which disarms)
        super().on_response_complete()
        if self.transport.is_closing():
            self._disarm()


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a ``seconds`` deadline for each request's headers."""
    return type("HeaderDeadlineH11Protocol", (_HeaderDeadline,), {"header_timeout": seconds})


def run(app: Any, *, host: str, port: int, header_timeout: float) -> None:
    """Serve ``app`` (blocking), without access log, with the header deadline."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http=header_timeout_protocol(header_timeout),
    )
