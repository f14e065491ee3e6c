"""Fetch one attachment to disk: streamed, hashed, size-checked, never half-visible.

Files go over plain HTTP (aiohttp) with the browser context's cookies: streaming to disk keeps
memory flat whatever the size and is several times faster than passing bodies through the
Playwright driver. Click-only attachments go through the browser's own download.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import aiohttp
from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import PageKind, classify, parse_html
from coupa_async.errors import RateLimitedError, SessionExpiredError, TransientError
from coupa_async.layout import OutputLayout

CHUNK_BYTES = 1024 * 1024
HTML_SNIFF_BYTES = 512 * 1024
HTML_EXTENSIONS = (".html", ".htm")


class FileRefused(Exception):
    """This one file cannot be saved (not the PO's fault as a whole): a reason for the report."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A file now on disk under a temporary name, ready to be renamed into place."""

    temp_path: Path
    size: int
    sha256: str
    server_name: str | None
    final_url: str


def filename_from_disposition(header: str | None) -> str | None:
    """The file name in a Content-Disposition header; RFC 5987 ``filename*`` wins."""
    if not header:
        return None
    message = Message()
    message["content-disposition"] = header
    try:
        name = message.get_filename()
    except (ValueError, LookupError):
        return None
    return name.strip() if name and name.strip() else None


def cookie_header(cookies: list[dict]) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in cookies)


async def context_cookie_header(context: BrowserContext, url: str) -> str:
    """The Cookie header the browser would send to ``url``."""
    return cookie_header(list(await context.cookies([url])))


def _looks_like_html(first_bytes: bytes) -> bool:
    head = first_bytes[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _refuse_html(body: bytes, url: str, status: int, markers: CoupaMarkers) -> None:
    """An HTML page where a file was expected: a login page means the session expired."""
    tree = parse_html(body.decode("utf-8", "replace"))
    verdict = classify(status, url, tree, markers)
    if verdict.kind is PageKind.LOGIN:
        raise SessionExpiredError(f"a login page came back instead of the file at {url}")
    detail = f" ({verdict.reason})" if verdict.reason else ""
    raise FileRefused(f"the server sent an HTML page instead of the file{detail}")


async def fetch_to_temp(
    http: aiohttp.ClientSession,
    url: str,
    cookies: str,
    folder: Path,
    layout: OutputLayout,
    markers: CoupaMarkers,
    timeout_s: float,
) -> Fetched:
    """Stream ``url`` into a temporary file in ``folder``; classify anything that is not a file."""
    headers = {"Cookie": cookies} if cookies else {}
    timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(30.0, timeout_s))
    try:
        async with http.get(url, headers=headers, timeout=timeout, allow_redirects=True) as resp:
            final_url = str(resp.url)
            if resp.status == 429:
                verdict = classify(429, final_url, None, markers, resp.headers.get("Retry-After"))
                raise RateLimitedError(f"HTTP 429 for {url}", verdict.retry_after_s)
            if resp.status >= 500 or resp.status == 408:
                raise TransientError(f"HTTP {resp.status} for {url}")
            server_name = filename_from_disposition(resp.headers.get("Content-Disposition"))
            content_type = resp.headers.get("Content-Type", "").lower()
            first = await resp.content.read(HTML_SNIFF_BYTES) if resp.status < 400 else b""
            is_html_name = bool(server_name and server_name.lower().endswith(HTML_EXTENSIONS))
            if resp.status >= 400:
                body = await resp.content.read(HTML_SNIFF_BYTES)
                if "html" in content_type:
                    _refuse_html(body, final_url, resp.status, markers)
                raise FileRefused(f"HTTP {resp.status}")
            if ("text/html" in content_type or _looks_like_html(first)) and not is_html_name:
                _refuse_html(first, final_url, resp.status, markers)
            return await _stream(resp, first, folder, layout, server_name, final_url)
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
        raise TransientError(f"connection lost while fetching {url}: {exc}") from exc
    except TimeoutError as exc:
        raise TransientError(f"no complete answer within {timeout_s:.0f} s for {url}") from exc


async def _stream(
    resp: aiohttp.ClientResponse,
    first: bytes,
    folder: Path,
    layout: OutputLayout,
    server_name: str | None,
    final_url: str,
) -> Fetched:
    temp = layout.temp_path_for(folder / "download")
    digest = hashlib.sha256()
    size = 0
    try:
        with temp.open("wb") as handle:
            chunk = first
            while chunk:
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                chunk = await resp.content.read(CHUNK_BYTES)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise FileRefused(f"the disk is full ({exc.strerror}); free space and rerun") from exc
        raise FileRefused(f"cannot write {folder}: {exc.strerror}") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    expected = resp.content_length
    if expected is not None and size != expected:
        temp.unlink(missing_ok=True)
        raise TransientError(f"received {size} of {expected} bytes from {final_url}")
    return Fetched(temp, size, digest.hexdigest(), server_name, final_url)


async def browser_download_to_temp(
    page: Page,
    selector: str,
    index: int,
    folder: Path,
    layout: OutputLayout,
    markers: CoupaMarkers,
    timeout_s: float,
) -> Fetched:
    """Click the n-th click-only attachment and let the browser download it."""
    target = page.locator(selector).nth(index)
    temp = layout.temp_path_for(folder / "download")
    try:
        async with page.expect_download(timeout=timeout_s * 1000) as info:
            # A script click reaches the element even under a floating toolbar.
            await target.evaluate("element => element.click()")
        download = await info.value
        failure = await download.failure()
        if failure:
            raise TransientError(f"the browser download failed: {failure}")
        await download.save_as(temp)
        server_name = download.suggested_filename or None
        url = download.url
        await download.delete()
    except PlaywrightTimeout as exc:
        temp.unlink(missing_ok=True)
        html = await _page_html(page)
        verdict = classify(200, page.url, parse_html(html), markers)
        if verdict.kind is PageKind.LOGIN:
            raise SessionExpiredError("a login page came back instead of the file") from exc
        raise FileRefused("clicking the attachment started no download") from exc
    except PlaywrightError as exc:
        temp.unlink(missing_ok=True)
        raise TransientError(f"the browser download failed: {exc}") from exc
    return await asyncio.to_thread(_hash_saved, temp, server_name, url, markers)


async def _page_html(page: Page) -> str:
    try:
        return await page.content()
    except PlaywrightError:
        return ""


def _hash_saved(temp: Path, server_name: str | None, url: str, markers: CoupaMarkers) -> Fetched:
    digest = hashlib.sha256()
    size = 0
    with temp.open("rb") as handle:
        first = handle.read(HTML_SNIFF_BYTES)
        if _looks_like_html(first) and not (server_name or "").lower().endswith(HTML_EXTENSIONS):
            temp.unlink(missing_ok=True)
            _refuse_html(first, url, 200, markers)
        chunk = first
        while chunk:
            digest.update(chunk)
            size += len(chunk)
            chunk = handle.read(CHUNK_BYTES)
    return Fetched(temp, size, digest.hexdigest(), server_name, url)


def place(fetched: Fetched, final: Path) -> None:
    """Give the file its final name in one atomic step."""
    os.replace(fetched.temp_path, final)
