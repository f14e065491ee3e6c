"""Fetch one attachment to disk: streamed, hashed, size-checked, never half-visible.

Files go over plain HTTP (aiohttp) with the browser context's cookies: streaming to disk keeps
memory flat whatever the size and is several times faster than passing bodies through the
Playwright driver. Click-only attachments go through the browser's own download.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from pathlib import Path
from typing import NoReturn
from urllib.parse import urljoin

import aiohttp
import anyio
from playwright.async_api import BrowserContext, Download, Frame, Locator, Page, Response
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from coupa_async.coupa.bounded import BodyLimits, BodyMeter, BodyTooLarge
from coupa_async.coupa.hosts import FetchPolicy
from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import classify, parse_html, raise_for_verdict
from coupa_async.errors import (
    CoupaAsyncError,
    HostUnreachableError,
    TransientError,
    storage_error,
)
from coupa_async.results.layout import OutputLayout
from coupa_async.results.no_links import open_new
from coupa_async.session.outage import is_network_failure

CHUNK_BYTES = 1024 * 1024
HTML_SNIFF_BYTES = 512 * 1024
HTML_EXTENSIONS = (".html", ".htm")
DEFAULT_FILE_LIMITS = BodyLimits(2 * 1024**3, setting="limits.file_max_mb")
# A body that sends nothing for this long is stalled, whatever time the whole file has left.
STALL_S = 60.0


class FileTimedOut(TransientError):
    """A file's answer did not end in time, or went silent: retried with the PO's next attempt,
    not at once (a server that stalls a body tends to stall it again)."""


class FileRefused(CoupaAsyncError):
    """This one file cannot be saved (not the PO's fault as a whole): a reason for the report.

    Never raised out of the job: it becomes a FileProblem. Not a PoJobError, so nothing that
    handles those (retries included) ever catches it by mistake.
    """


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
        params = message.get_params(header="content-disposition") or []
        # Plain parameters come first in the list; an RFC 5987 value is a (charset, lang, text)
        # tuple, so pick it when both forms are present (Message.get_filename would not).
        values = [value for key, value in params[1:] if key.lower() == "filename"]
        chosen = next((v for v in values if isinstance(v, tuple)), values[0] if values else None)
        name = collapse_rfc2231_value(chosen) if chosen is not None else None
    except (ValueError, LookupError):
        return None
    if not name or not name.strip() or "\ufffd" in name:
        return None  # absent, blank, or not decodable: the next name source applies
    return name.strip()


def cookie_header(cookies: Iterable[Mapping[str, object]]) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in cookies)


async def context_cookie_header(context: BrowserContext, url: str) -> str:
    """The Cookie header the browser would send to ``url``."""
    return cookie_header(await context.cookies([url]))


def _looks_like_html(first_bytes: bytes) -> bool:
    head = first_bytes[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks (call it in a thread for big files)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _refuse_html(body: bytes, url: str, status: int, markers: CoupaMarkers) -> NoReturn:
    """An HTML page where a file was expected: a login page means the session expired."""
    tree = parse_html(body.decode("utf-8", "replace"))
    verdict = classify(status, url, tree, markers)
    raise_for_verdict(verdict, url, f"the file at {url}")
    detail = f" ({verdict.reason})" if verdict.reason else ""
    raise FileRefused(f"the server sent an HTML page instead of the file{detail}")


CookieSource = Callable[[str], Awaitable[str]]
MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def fetch_to_temp(
    http: aiohttp.ClientSession,
    url: str,
    cookies: str | CookieSource,
    folder: Path,
    layout: OutputLayout,
    markers: CoupaMarkers,
    timeout_s: float,
    received: Callable[[int], None] | None = None,
    limits: BodyLimits = DEFAULT_FILE_LIMITS,
    stall_s: float = STALL_S,
    policy: FetchPolicy | None = None,
) -> Fetched:
    """Stream ``url`` into a temporary file in ``folder``; classify anything that is not a file.

    The caller waits for the host gate (and a request slot) right before calling. Each chunk of
    the file's body written to disk is told to ``received`` (its size), as it arrives. A body
    past ``limits`` (declared or received, decompressed) is refused; one that sends nothing for
    ``stall_s`` is a failed try. Redirects are followed here, each hop checked against
    ``policy`` and given only its own cookies (``cookies`` as a string: the first hop's only).
    """
    timeout = aiohttp.ClientTimeout(
        total=timeout_s, sock_connect=min(30.0, timeout_s), sock_read=min(stall_s, timeout_s)
    )
    fetched: Fetched | None = None
    try:
        with anyio.fail_after(timeout_s):  # the whole chain of redirects included
            async with await _follow(http, url, cookies, timeout, policy) as resp:
                fetched = await _receive(resp, url, folder, layout, markers, received, limits)
        return fetched
    except BaseException as exc:
        if fetched is not None:  # whole, but the answer's closing failed or was cancelled
            fetched.temp_path.unlink(missing_ok=True)
        if isinstance(exc, BodyTooLarge):
            raise FileRefused(str(exc)) from None
        if isinstance(exc, TimeoutError):  # before the connection errors: some are both
            raise FileTimedOut(
                f"no complete answer within {timeout_s:.0f} s, or nothing for "
                f"{min(stall_s, timeout_s):.0f} s, for {url}"
            ) from exc
        if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
            raise HostUnreachableError(f"connection lost while fetching {url}: {exc}") from exc
        raise


async def _follow(
    http: aiohttp.ClientSession,
    url: str,
    cookies: str | CookieSource,
    deadlines: aiohttp.ClientTimeout,
    policy: FetchPolicy | None,
) -> aiohttp.ClientResponse:
    """The answer at the end of ``url``'s redirects (open: the caller closes it)."""
    first = url
    for _ in range(MAX_REDIRECTS + 1):
        if policy is not None and (refusal := policy.refusal(url)) is not None:
            raise FileRefused(f"not fetched: {refusal}")
        if isinstance(cookies, str):
            cookie = cookies if url == first else ""
        else:
            cookie = await cookies(url)
        headers = {"Cookie": cookie} if cookie else {}
        resp = await http.get(url, headers=headers, timeout=deadlines, allow_redirects=False)
        location = resp.headers.get("Location")
        if resp.status not in REDIRECTS or not location:
            return resp
        resp.release()
        url = urljoin(str(resp.url), location)
    raise TransientError(f"more than {MAX_REDIRECTS} redirects from {first}, the last to {url}")


async def _receive(
    resp: aiohttp.ClientResponse,
    url: str,
    folder: Path,
    layout: OutputLayout,
    markers: CoupaMarkers,
    received: Callable[[int], None] | None,
    limits: BodyLimits,
) -> Fetched:
    """The answer's body into a temporary file, if it is a file; else what it is, raised."""
    final_url = str(resp.url)
    if resp.status in (408, 429) or resp.status >= 500:
        retry_after = resp.headers.get("Retry-After")
        raise_for_verdict(classify(resp.status, final_url, None, markers, retry_after), url)
    server_name = filename_from_disposition(resp.headers.get("Content-Disposition"))
    content_type = resp.headers.get("Content-Type", "").lower()
    if resp.status >= 400:
        body = await resp.content.read(HTML_SNIFF_BYTES)
        if "html" in content_type:
            _refuse_html(body, final_url, resp.status, markers)
        raise FileRefused(f"HTTP {resp.status}")
    meter = BodyMeter(resp, limits, "the file")
    meter.check_declared()
    first = await resp.content.read(HTML_SNIFF_BYTES)
    meter.add(len(first))
    is_html_name = bool(server_name and server_name.lower().endswith(HTML_EXTENSIONS))
    if ("text/html" in content_type or _looks_like_html(first)) and not is_html_name:
        _refuse_html(first, final_url, resp.status, markers)
    return await _stream(resp, first, folder, layout, server_name, final_url, received, meter)


async def _stream(
    resp: aiohttp.ClientResponse,
    first: bytes,
    folder: Path,
    layout: OutputLayout,
    server_name: str | None,
    final_url: str,
    received: Callable[[int], None] | None,
    meter: BodyMeter,
) -> Fetched:
    temp = layout.temp_path_for(folder / "download")
    digest = hashlib.sha256()
    size = 0
    try:
        with open_new(temp) as handle:  # never through a link planted at its name
            chunk = first
            while chunk:
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if received is not None:
                    received(len(chunk))
                chunk = await resp.content.read(CHUNK_BYTES)
                meter.add(len(chunk))
    except TimeoutError:  # an OSError too, but the server's doing, not the disk's
        temp.unlink(missing_ok=True)
        raise
    except OSError as exc:
        temp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise storage_error(f"a file into {folder}", exc) from exc
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
    received: Callable[[int], None] | None = None,
    start_timeout_s: float | None = None,
    limits: BodyLimits = DEFAULT_FILE_LIMITS,
) -> Fetched:
    """Click the n-th click-only attachment and let the browser download it.

    A download that has not started within ``start_timeout_s`` (a page's deadline: the server
    answers a click's request as it answers a page) is a failed try, not a wait for the whole
    ``timeout_s`` a large file may need.

    The browser tells nothing while it downloads: the file's size is told to ``received`` once
    it is saved and known to be a file, and checked against ``limits`` then.
    """
    target = page.locator(selector).nth(index)
    temp = layout.temp_path_for(folder / "download")
    starting_s = min(timeout_s, start_timeout_s or timeout_s)
    try:
        opened = _Opened()
        download = await _click_for_download(page, target, starting_s, opened)
        if download is None:
            await _refuse_opened_page(page, markers, timeout_s, opened)
        failure = await download.failure()
        if failure:
            raise _download_failed(failure)
        await download.save_as(temp)
        server_name = download.suggested_filename or None
        url = download.url
        await download.delete()
    except (PlaywrightTimeout, TimeoutError) as exc:
        temp.unlink(missing_ok=True)
        html = await _page_html(page)
        verdict = classify(200, page.url, parse_html(html), markers)
        raise_for_verdict(verdict, page.url, "the file")
        # Nothing refused it: a try that did not start, as a page that did not answer.
        raise TransientError(
            f"clicking the attachment started no download within {starting_s:.0f} s"
        ) from exc
    except PlaywrightError as exc:
        temp.unlink(missing_ok=True)
        raise _download_failed(str(exc).splitlines()[0]) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    try:
        fetched = await anyio.to_thread.run_sync(
            _hash_saved, temp, server_name, url, markers, limits
        )
    except BaseException:
        temp.unlink(missing_ok=True)  # also when cancelled: the thread's result is dropped
        raise
    if received is not None:
        received(fetched.size)
    return fetched


@dataclass
class _Opened:
    """The answer of a navigation a click caused instead of a download."""

    status: int = 200
    retry_after: str | None = None


async def _click_for_download(
    page: Page, target: Locator, timeout_s: float, opened: _Opened
) -> Download | None:
    """Click and wait for the download; None as soon as the click opens a page instead.

    A click-only attachment that navigates (an HTML error page, or the login page of an expired
    session) starts no download: stop waiting then rather than at the download deadline.
    """
    started: asyncio.Future[Download | None] = asyncio.get_running_loop().create_future()
    here = page.url.split("#", 1)[0]

    def on_download(download: Download) -> None:
        if not started.done():
            started.set_result(download)

    def on_response(response: Response) -> None:
        if response.request.is_navigation_request() and response.frame is page.main_frame:
            opened.status = response.status
            opened.retry_after = response.headers.get("retry-after")

    def on_navigated(frame: Frame) -> None:
        moved = frame is page.main_frame and frame.url.split("#", 1)[0] != here
        if moved and not started.done():
            started.set_result(None)

    page.on("download", on_download)
    page.on("response", on_response)
    page.on("framenavigated", on_navigated)
    try:
        # A script click reaches the element even under a floating toolbar.
        await target.evaluate("element => element.click()")
        with anyio.fail_after(timeout_s):
            return await started
    finally:
        page.remove_listener("download", on_download)
        page.remove_listener("response", on_response)
        page.remove_listener("framenavigated", on_navigated)


def _download_failed(reason: str) -> TransientError:
    message = f"the browser download failed: {reason}"
    if is_network_failure(reason):
        return HostUnreachableError(message)
    return TransientError(message)


async def _refuse_opened_page(
    page: Page, markers: CoupaMarkers, timeout_s: float, opened: _Opened
) -> NoReturn:
    """The click opened a page: a login page means the session expired, a 429 or 5xx is for
    the engine to handle, anything else refuses this file."""
    with contextlib.suppress(PlaywrightError):
        await page.wait_for_load_state("domcontentloaded", timeout=timeout_s * 1000)
    html = await _page_html(page)
    # The navigation's response event may reach us after the page did: the page itself knows
    # its status (a 429 or 5xx read as 200 would refuse the file for good).
    status = await _document_status(page) or opened.status
    verdict = classify(status, page.url, parse_html(html), markers, opened.retry_after)
    raise_for_verdict(verdict, page.url, "the file")
    detail = f" ({verdict.reason})" if verdict.reason else ""
    raise FileRefused(f"the server sent an HTML page instead of the file{detail}")


async def _document_status(page: Page) -> int:
    """The HTTP status of the page's document as the page saw it (0 when unknown)."""
    try:
        status = await page.evaluate(
            "() => (performance.getEntriesByType('navigation')[0] || {}).responseStatus || 0"
        )
    except PlaywrightError:
        return 0
    return status if isinstance(status, int) else 0


async def _page_html(page: Page) -> str:
    try:
        return await page.content()
    except PlaywrightError:
        return ""


def _hash_saved(
    temp: Path, server_name: str | None, url: str, markers: CoupaMarkers, limits: BodyLimits
) -> Fetched:
    """What the browser saved: refused if it is an HTML page or too large, else hashed."""
    size = temp.stat().st_size
    if size > limits.max_bytes:
        temp.unlink(missing_ok=True)
        raise FileRefused(
            f"the file is {size / 1024**2:,.0f} MB, more than {limits.setting} allows "
            f"({limits.max_bytes / 1024**2:,.0f} MB); raise it to keep it"
        )
    with temp.open("rb") as handle:
        first = handle.read(HTML_SNIFF_BYTES)
    if _looks_like_html(first) and not (server_name or "").lower().endswith(HTML_EXTENSIONS):
        temp.unlink(missing_ok=True)
        _refuse_html(first, url, 200, markers)
    return Fetched(temp, temp.stat().st_size, sha256_of(temp), server_name, url)


def place(fetched: Fetched, final: Path) -> None:
    """Give the file its final name in one atomic step."""
    os.replace(fetched.temp_path, final)
