"""A file attachment's bytes from the API: streamed, hashed, bounded, never half-visible.

Into a hidden temporary name beside the destination, renamed into place once whole (as the
browser path saves files), or only hashed when no destination is given (the audit). An HTML
page where a file was expected is refused, as the browser path refuses it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import aiohttp
import anyio

from coupa_async.api.transport import ApiTransport
from coupa_async.coupa.bounded import BodyLimits, BodyMeter, BodyTooLarge
from coupa_async.coupa.download import (
    CHUNK_BYTES,
    HTML_EXTENSIONS,
    STALL_S,
    FileRefused,
    FileTimedOut,
    filename_from_disposition,
)
from coupa_async.errors import HostUnreachableError, TransientError, storage_error
from coupa_async.results.layout import PARTIAL_SUFFIX, hidden_temp_name
from coupa_async.results.no_links import open_new

HTML_SIGNS = (b"<!doctype html", b"<html", b"<head", b"<body")


@dataclass(frozen=True, slots=True)
class Received:
    """A file received: where it is now (None: hashed only), its size and SHA-256, and what
    the server said of it."""

    path: Path | None
    size: int
    sha256: str
    content_type: str
    server_name: str | None


async def receive(
    transport: ApiTransport,
    url: str,
    dest: Path | None,
    *,
    timeout_s: float,
    limits: BodyLimits,
    html_name: str = "",
    stall_s: float = STALL_S,
) -> Received:
    """GET ``url`` through ``transport`` into ``dest`` (or nowhere) within ``timeout_s``."""
    timeout = aiohttp.ClientTimeout(
        total=timeout_s, sock_connect=min(30.0, timeout_s), sock_read=min(stall_s, timeout_s)
    )
    temp = dest.with_name(hidden_temp_name(dest.name, PARTIAL_SUFFIX)) if dest else None
    try:
        async with transport.stream(url, timeout) as resp:
            with anyio.fail_after(timeout_s):
                got = await _body(resp, temp, limits, html_name)
    except BaseException as exc:
        if temp is not None:
            temp.unlink(missing_ok=True)
        if isinstance(exc, BodyTooLarge):
            raise FileRefused(str(exc)) from None
        if isinstance(exc, TimeoutError):
            raise FileTimedOut(
                f"no complete answer within {timeout_s:.0f} s, or nothing for "
                f"{min(stall_s, timeout_s):.0f} s, for {url}"
            ) from exc
        if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
            raise HostUnreachableError(f"connection lost while fetching {url}: {exc}") from exc
        raise
    if temp is not None and dest is not None:
        os.replace(temp, dest)
        got = Received(dest, got.size, got.sha256, got.content_type, got.server_name)
    return got


async def _body(
    resp: aiohttp.ClientResponse, temp: Path | None, limits: BodyLimits, html_name: str
) -> Received:
    content_type = resp.headers.get("Content-Type", "")
    server_name = filename_from_disposition(resp.headers.get("Content-Disposition"))
    meter = BodyMeter(resp, limits, "the file")
    meter.check_declared()
    digest = hashlib.sha256()
    size = 0
    with _sink(temp) as sink:
        first = True
        while chunk := await resp.content.read(CHUNK_BYTES):
            meter.add(len(chunk))
            if first:
                first = False
                _refuse_html(content_type, chunk, server_name or html_name)
            digest.update(chunk)
            size += len(chunk)
            if sink is not None:
                _write(sink, chunk, temp)
        if first:
            _refuse_html(content_type, b"", server_name or html_name)
    expected = resp.content_length
    if expected is not None and size != expected:
        raise TransientError(f"received {size} of {expected} bytes from {resp.url}")
    return Received(temp, size, digest.hexdigest(), content_type, server_name)


@contextlib.contextmanager
def _sink(temp: Path | None) -> Iterator[BinaryIO | None]:
    if temp is None:
        yield None
        return
    try:
        handle = open_new(temp)  # never through a link planted at its name
    except OSError as exc:
        raise _write_error(exc, temp) from exc
    with handle:
        yield handle


def _write(handle: BinaryIO, chunk: bytes, temp: Path | None) -> None:
    try:
        handle.write(chunk)
    except OSError as exc:
        raise _write_error(exc, temp) from exc


def _write_error(exc: OSError, temp: Path | None) -> Exception:
    folder = temp.parent if temp is not None else Path(".")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return storage_error(f"a file into {folder}", exc)
    return FileRefused(f"cannot write {folder}: {exc.strerror}")


def _refuse_html(content_type: str, first: bytes, name: str) -> None:
    """An HTML page where a file was expected: not the file (unless it is an HTML file)."""
    if name.lower().endswith(HTML_EXTENSIONS):
        return
    head = first[:512].lstrip().lower()
    if "text/html" in content_type.lower() or head.startswith(HTML_SIGNS):
        raise FileRefused("the API sent an HTML page instead of the file")
