"""uvicorn's httptools protocol with the request limits (``request_limits``) applied while a request is read.

Plain uvicorn reads a request's whole head before the application sees it: a 20 MB ``Authorization`` header is
read, copied and handed on (httptools builds each header value by appending, so it also costs seconds of CPU),
and a URL over ~64 KB or a malformed request gets a plain-text ``400 Invalid HTTP request received.``. Here:

- a URL is refused as soon as it passes ``max_url_bytes`` (414), one header as soon as it is complete and over
  ``max_header_bytes``, and the head as soon as more than ``max_head_bytes`` of it have arrived (431), so at
  most one read (≤ 256 KB) past the limit is ever looked at;
- a malformed request (what httptools cannot parse) gets 400;
- each of these is answered by the application itself with a request that carries only the status, the method
  and the URL cut to the limit (scope key ``REFUSED``): ``RequestLimitMiddleware`` writes the problem+json answer
  and the audit entry, so refusals look and are logged the same whichever layer found them;
- after the answer the connection is half-closed and what the client still sends is read and dropped for up to
  ``LINGER_SECONDS`` (then closed), so a client still sending its 20 MB reads the answer instead of a reset.

``dibao.serve.server`` runs uvicorn with this class (``http=``).
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from typing import Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from dibao.serve.request_limits import REFUSED, RequestLimits

LINGER_SECONDS = 2.0


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _LingeringClose:
    """The transport as the refusal's response cycle sees it: ``close`` sends the end of the answer (half-close)
    and closes for real ``seconds`` later, or when the client closes first."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self._transport, self._loop, self._seconds = transport, loop, seconds

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        if self._transport.is_closing():
            return
        if self._transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                self._transport.write_eof()
        self._loop.call_later(self._seconds, self._transport.close)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that refuses over-long URLs and headers, and malformed requests, early, through the
    application (problem+json, audited)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = RequestLimits.from_env()
        self.url = b""
        self._in_head = True
        self._head_bytes = self._header_bytes = self._header_count = 0
        self._refusing = False

    # --- parser callbacks --------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._header_bytes = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_url_bytes:
            raise _Refused(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        self._header_bytes += size
        self._header_count += 1
        if (size > self.limits.max_header_bytes or self._header_bytes > self.limits.max_headers_bytes
                or self._header_count > self.limits.max_header_count):
            raise _Refused(431)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    # --- reading -----------------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refusing:
            return  # answered already: what the client still sends is dropped
        self._unset_keepalive_if_required()
        in_head = self._in_head
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._refuse(cause.status if isinstance(cause, _Refused) else 400)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self._refuse(400)
            return
        if in_head and self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(431)

    def _refuse(self, status: int) -> None:
        """Answer ``status`` through the application, then linger and close."""
        self._refusing = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # an answer to an earlier (pipelined) request is under way: just end it
            return
        raw = bytes(self.url[:self.limits.max_url_bytes])
        raw_path, _, query = raw.partition(b"?")
        try:
            method = self.parser.get_method().decode("ascii")
        except (httptools.HttpParserError, UnicodeDecodeError, AttributeError):
            method = "GET"
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1", "server": self.server, "client": self.client, "scheme": self.scheme,
            "root_path": self.root_path, "method": method,
            "path": urllib.parse.unquote(raw_path.decode("latin-1")), "raw_path": raw_path, "query_string": query,
            "headers": [], "state": self.app_state.copy(), REFUSED: status,
        }
        transport = cast(asyncio.Transport, _LingeringClose(self.transport, self.loop, LINGER_SECONDS))
        self.cycle = RequestResponseCycle(
            scope=cast(Any, scope), transport=transport, flow=self.flow, logger=self.logger,
            access_logger=self.access_logger, access_log=self.access_log,
            default_headers=self.server_state.default_headers, message_event=asyncio.Event(),
            expect_100_continue=False, keep_alive=False, on_response=lambda: None)
        self.cycle.more_body = False
        self._start_asgi_task(self.cycle, self.app)
