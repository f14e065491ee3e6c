"""Plain HTTP to Coupa with a browser context's cookies: page reads and file fetches of one PO.

Going over aiohttp rather than through the Playwright driver costs a fraction of the CPU per
request. Every request holds one slot of the run's limiter while it is in flight, and waits for
the host gate right before it is sent, so nothing leaves during a 429 pause or a renewal of the
session, and the host never has more than the run's limit of these requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp
from playwright.async_api import BrowserContext

from coupa_async.coupa.bounded import BodyLimits, BodyTooLarge, read_bounded
from coupa_async.coupa.download import context_cookie_header
from coupa_async.errors import HostUnreachableError, PageTooLargeError, TransientError
from coupa_async.session.gate import HostGate

MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
DEFAULT_PAGE_LIMITS = BodyLimits(20 * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class PageAnswer:
    """What a page request ended with, after redirects: the reader classifies it."""

    status: int
    url: str
    html: str
    retry_after: str | None


class ReceivedBytes:
    """Bytes of file bodies received over one run, counted as they arrive: it only grows.

    One per run, shared by every PO's CoupaHttp; one event loop, so no lock.
    """

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0

    def add(self, count: int) -> None:
        """Count ``count`` more bytes received."""
        self.total += count


def cookie_scope(url: str) -> str:
    """Cookies are scoped by host and path prefix: URLs in one folder share them."""
    return url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[0]


class CoupaHttp:
    """Plain HTTP to Coupa for one PO: the context's cookies, the host gate, the run's limiter.

    Without a limiter the PO sends one request at a time. Cookie headers are looked up in the
    context once per scope and kept for the PO (a PO that meets an expired session is retried
    with a new one). The bytes of file bodies received are counted in ``received`` (the run's
    count when given).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        context: BrowserContext,
        *,
        gate: HostGate | None = None,
        limiter: asyncio.Semaphore | None = None,
        received: ReceivedBytes | None = None,
        page_limits: BodyLimits = DEFAULT_PAGE_LIMITS,
    ) -> None:
        self.session = session
        self.page_limits = page_limits
        self.context = context
        self.gate = gate
        self.limiter = limiter if limiter is not None else asyncio.Semaphore(1)
        self.received = received if received is not None else ReceivedBytes()
        self._cookies: dict[str, str] = {}
        self._cookie_lookup = asyncio.Lock()

    async def cookie_header(self, url: str) -> str:
        """The Cookie header the browser would send to ``url`` (raises Playwright's errors)."""
        scope = cookie_scope(url)
        async with self._cookie_lookup:  # sibling fetches of one scope share one lookup
            if scope not in self._cookies:
                self._cookies[scope] = await context_cookie_header(self.context, url)
        return self._cookies[scope]

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the run's request slots (taken in the order asked for)."""
        async with self.limiter:
            yield

    async def may_send(self, *gates: HostGate | None) -> None:
        """Return once the host may be contacted: call it right before sending, in a slot, so a
        pause begun meanwhile still counts."""
        waiting = {id(gate): gate for gate in (self.gate, *gates) if gate is not None}
        while not all(gate.is_open for gate in waiting.values()):
            for gate in waiting.values():
                await gate.wait()

    async def get_page(
        self, url: str, timeout_s: float, *, gate: HostGate | None = None
    ) -> PageAnswer:
        """GET a page's HTML in a slot, following redirects as the browser would (each hop with
        the context's cookies for its own URL), each hop within ``timeout_s``; a page past
        ``page_limits`` raises PageTooLargeError, counted as it arrives, never held whole."""
        timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(30.0, timeout_s))
        try:
            async with self.slot():
                return await self._follow(url, timeout, gate)
        except BodyTooLarge as exc:
            raise PageTooLargeError(f"{exc}: {url}") from None
        except TimeoutError as exc:
            raise HostUnreachableError(f"no answer within {timeout_s:.0f} s: {url}") from exc
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise HostUnreachableError(f"cannot fetch {url}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise TransientError(f"cannot fetch {url}: {exc}") from exc

    async def _follow(
        self, url: str, limits: aiohttp.ClientTimeout, gate: HostGate | None
    ) -> PageAnswer:
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"Accept": HTML_ACCEPT}
            cookies = await self.cookie_header(url)
            if cookies:
                headers["Cookie"] = cookies
            await self.may_send(gate)
            async with self.session.get(
                url, headers=headers, timeout=limits, allow_redirects=False
            ) as resp:
                location = resp.headers.get("Location")
                if resp.status in REDIRECTS and location:
                    url = urljoin(str(resp.url), location)
                    continue
                body = await read_bounded(resp, self.page_limits, "the page")
                retry_after = resp.headers.get("Retry-After")
                return PageAnswer(
                    resp.status, str(resp.url), _decode(body, resp.charset), retry_after
                )
        raise TransientError(f"more than {MAX_REDIRECTS} redirects, the last to {url}")


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", "replace")
