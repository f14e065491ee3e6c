"""Hostile answers: what a broken or malicious server sends instead of a page or a file.

| fault           | answer                                                                  |
|-----------------|-------------------------------------------------------------------------|
| `login_page`    | 200, the sign-in form (the identity provider's in SSO mode); the        |
|                 | session stays valid                                                     |
| `retry_after`   | 429 with `Retry-After: <value>` exactly as given; no penalty for other  |
|                 | requests                                                                |
| `big_body`      | 200, `size` bytes (None: endless), Content-Length when `declare_length` |
|                 | (default: when sized), else chunked                                     |
| `gzip_bomb`     | 200, `Content-Encoding: gzip`, a small body expanding to `size` bytes   |
| `stall`         | 200, Content-Length `size`, the first `after_bytes`, then nothing       |
| `declared_size` | 200, Content-Length `size` (3 GiB), then the body for real              |

Bodies take `content_type` (default application/pdf; text/html makes a page that starts like
a PO page, `<title>Purchase Order #number</title>`), `filename` (a Content-Disposition) and
`number` (default: the last number in the path). A stream ends when the client goes (its
handler is cancelled, or a write fails) and when the simulator stops (`close_streams` drops the
connections), counting what it sent in the stats.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .config import SimConfig
from .faults import GiB, KiB, MiB
from .hostile_bodies import CHUNK, gzip_bomb, padded_chunks
from .outages import abort_transport
from .pages import idp_page, login_page, rate_limited_page
from .sessions import SessionStore, safe_return_to
from .stats import Stats

DEFAULT_CONTENT_TYPE = "application/pdf"
DEFAULT_BOMB_SIZE = 300 * MiB
DEFAULT_DECLARED_SIZE = 3 * GiB
DEFAULT_STALL_AFTER = 100 * KiB
STALL_DECLARED_EXTRA = 10 * MiB  # a stall's default Content-Length: after_bytes plus this
_NUMBER = re.compile(r"(\d+)(?!.*\d)")


class HostileResponder:
    """Serves the hostile faults of one simulator."""

    def __init__(
        self, config: SimConfig, sessions: SessionStore, stats: Stats, stopping: asyncio.Event
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.stats = stats
        self.stopping = stopping
        self._open: set[asyncio.BaseTransport] = set()

    async def answer(
        self, request: web.Request, fault: str, params: dict[str, Any]
    ) -> web.StreamResponse:
        """The answer of `fault` (one of `faults.HOSTILE_FAULTS`) to this request."""
        if fault == "login_page":
            return self._login_page(request)
        if fault == "retry_after":
            return self._retry_after(request, str(params["value"]))
        content_type = str(params.get("content_type") or DEFAULT_CONTENT_TYPE)
        number = str(params.get("number") or _path_number(request.path))
        filename = params.get("filename")
        chunks: Iterable[bytes]
        if fault == "gzip_bomb":
            size = int(params.get("size", DEFAULT_BOMB_SIZE))
            body = await asyncio.to_thread(gzip_bomb, size, content_type, number)
            chunks = (body[i : i + CHUNK] for i in range(0, len(body), CHUNK))
            headers = {"Content-Encoding": "gzip"}
            return await self._stream(
                request, fault, content_type, filename, len(body), chunks, headers
            )
        if fault == "stall":
            after = int(params.get("after_bytes", DEFAULT_STALL_AFTER))
            asked = params.get("size")
            declared = after + STALL_DECLARED_EXTRA if asked is None else int(asked)
            chunks = padded_chunks(content_type, number, after)
            return await self._stream(
                request, fault, content_type, filename, declared, chunks, stall=True
            )
        if fault == "declared_size":
            size = int(params.get("size", DEFAULT_DECLARED_SIZE))
            chunks = padded_chunks(content_type, number, size)
            return await self._stream(request, fault, content_type, filename, size, chunks)
        if fault == "big_body":
            wanted = params.get("size")
            declare = params.get("declare_length", wanted is not None)
            length = int(wanted) if declare and wanted is not None else None
            chunks = padded_chunks(content_type, number, wanted)
            return await self._stream(request, fault, content_type, filename, length, chunks)
        raise ValueError(f"not a hostile fault: {fault!r}")

    def close_streams(self) -> int:
        """Drop the connection of every open stream (the simulator is stopping); how many."""
        count = 0
        for transport in list(self._open):
            if not transport.is_closing():
                abort_transport(transport, reset=False)
                count += 1
        return count

    # --- short answers --------------------------------------------------------------------------

    def _login_page(self, request: web.Request) -> web.Response:
        return_to = safe_return_to(request.path_qs)
        if self.config.sso:
            text = idp_page(return_to)
        else:
            text = login_page(self.sessions.issue_csrf(), return_to)
        return web.Response(text=text, content_type="text/html", charset="utf-8")

    def _retry_after(self, request: web.Request, value: str) -> web.Response:
        self.stats.retry_after_answer(request.path)
        response = web.Response(
            text=rate_limited_page(), status=429, content_type="text/html", charset="utf-8"
        )
        response.headers["Retry-After"] = value
        return response

    # --- streams --------------------------------------------------------------------------------

    async def _stream(
        self,
        request: web.Request,
        fault: str,
        content_type: str,
        filename: str | None,
        length: int | None,
        chunks: Iterable[bytes],
        headers: dict[str, str] | None = None,
        *,
        stall: bool = False,
    ) -> web.StreamResponse:
        """Send `chunks` (then, with `stall`, nothing until the client or the simulator goes);
        Content-Length `length`, or chunked when None."""
        response = web.StreamResponse(headers={"Content-Type": content_type, **(headers or {})})
        if filename is not None:
            response.headers["Content-Disposition"] = _disposition(filename)
        if length is not None:
            response.content_length = length
        transport = request.transport
        stats = self.stats
        stats.stream_opened()
        if transport is not None:
            self._open.add(transport)
        how = "client_gone"
        try:
            await response.prepare(request)
            if request.method == "HEAD":
                chunks, stall = (), False  # the headers alone
            how = await self._pump(response, fault, chunks)
            if how == "complete" and stall:
                await self.stopping.wait()  # the client gives up first: this is cancelled
                how = "stopped"
            if how == "complete":
                await response.write_eof()
        except ConnectionResetError:
            how = "stopped" if self.stopping.is_set() else "client_gone"
        except asyncio.CancelledError:
            how = "stopped" if self.stopping.is_set() else "client_gone"
            raise
        finally:
            if transport is not None:
                self._open.discard(transport)
                if how != "complete" and not transport.is_closing():
                    transport.close()  # aiohttp then sees a closed connection and lets it go
            stats.stream_closed(how)
        return response

    async def _pump(self, response: web.StreamResponse, fault: str, chunks: Iterable[bytes]) -> str:
        """Write the chunks until done or the simulator stops: "complete" or "stopped"."""
        for chunk in chunks:
            if self.stopping.is_set():
                return "stopped"
            await response.write(chunk)
            self.stats.hostile_sent(fault, len(chunk))
        return "complete"


def _path_number(path: str) -> str:
    match = _NUMBER.search(path)
    return match.group(1) if match else "0"


def _disposition(filename: str) -> str:
    """`attachment` with an ASCII `filename` and the exact name in `filename*`."""
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
