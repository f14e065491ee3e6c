"""Requests to Coupa's API: the bearer token, the run's rate limiter, bounded tries.

Every request waits for the limiter, carries the token (only to the tenant's own origin), and
is tried again: once with a new token after a 401, after the pause a 429 asks for (the limiter
holds every caller meanwhile), and a few times after a 5xx, a timeout or a dropped connection.
A 403 or 404 is the object's answer, raised as ApiRefusalError. JSON bodies are read within
``limits.page_max_mb``; each try has ``timeouts.navigation_s`` once the limiter let it go.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import anyio

from coupa_async.api.limiter import RateLimiter
from coupa_async.api.token import TokenSource
from coupa_async.coupa.bounded import BodyLimits, BodyTooLarge, read_bounded
from coupa_async.coupa.pages import retry_after_seconds
from coupa_async.errors import (
    ApiAnswerError,
    ApiRefusalError,
    AuthenticationError,
    HostUnreachableError,
    PageTooLargeError,
    RateLimitedError,
    TransientError,
)
from coupa_async.log import get_logger, public_text

log = get_logger(__name__)

RATE_LIMIT_TRIES = 8  # answers of 429 in a row before a request gives up
TRANSIENT_TRIES = 3  # 5xx, timeouts, dropped connections
BACKOFF_S = 0.5
MAX_REDIRECTS = 5
ERROR_BODY_BYTES = 64 * 1024
Params = Mapping[str, str]


class ApiTransport:
    """The one way requests reach the API during a run."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        tokens: TokenSource,
        limiter: RateLimiter,
        *,
        timeout_s: float = 30.0,
        limits: BodyLimits | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.limits = limits or BodyLimits(20 * 1024 * 1024)
        self.requests = 0
        self._origin = _origin(self.base_url)

    def url(self, path: str) -> str:
        return urljoin(f"{self.base_url}/", path.lstrip("/"))

    async def get_json(self, path: str, params: Params | None = None) -> Any:
        """The JSON of a GET (``path`` relative to the tenant, or a whole address)."""
        url = self.url(path)
        for attempt in range(1, TRANSIENT_TRIES + 1):
            try:
                async with self._open(url, params, _timeout(self.timeout_s)) as resp:
                    with anyio.fail_after(self.timeout_s):
                        body = await read_bounded(resp, self.limits, f"the API's answer at {url}")
                break
            except BodyTooLarge as exc:
                raise PageTooLargeError(str(exc)) from None
            except TimeoutError as exc:
                failure: TransientError = TransientError(
                    f"no whole answer from {url} within {self.timeout_s:.0f} s"
                )
                failure.__cause__ = exc
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                failure = HostUnreachableError(f"connection lost reading {url}: {exc}")
            await _backoff(attempt, failure)
        try:
            return json.loads(body)
        except ValueError:
            raise ApiAnswerError(f"the API's answer at {url} is not JSON") from None

    @contextlib.asynccontextmanager
    async def stream(
        self, url: str, deadlines: aiohttp.ClientTimeout
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """An open 2xx answer to a GET of ``url`` (a download), for the caller to read within
        ``deadlines``."""
        async with self._open(self.url(url), None, deadlines) as resp:
            yield resp

    @contextlib.asynccontextmanager
    async def _open(
        self,
        url: str,
        params: Params | None,
        deadlines: aiohttp.ClientTimeout,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The answer to a GET of ``url`` once it is 2xx; every other answer handled here.

        Waiting for the limiter has no deadline (its pauses are bounded); each try's answer
        must begin within ``timeout_s``."""
        renewed = False
        limited = transient = 0
        while True:
            await self.limiter.acquire()
            token = await self.tokens.token()
            self.requests += 1
            try:
                with anyio.fail_after(self.timeout_s):
                    resp = await self._get(url, params, token, deadlines)
            except TimeoutError as exc:
                transient += 1
                failure: TransientError = TransientError(f"no answer from {url}")
                failure.__cause__ = exc
                await _backoff(transient, failure)
                continue
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                transient += 1
                await _backoff(transient, HostUnreachableError(f"cannot reach {url}: {exc}"))
                continue
            status = resp.status
            if 200 <= status < 300:
                try:
                    yield resp
                finally:
                    resp.release()
                return
            detail = await _error_of(resp)
            if status == 401:
                if renewed:
                    raise AuthenticationError(
                        f"Coupa's API refused a token it had just issued ({detail or 'HTTP 401'})"
                        ": check that the API client is active, then run again."
                    )
                renewed = True
                await self.tokens.renewed(token)
            elif status == 429:
                limited += 1
                asked = retry_after_seconds(resp.headers.get("Retry-After"))
                paused = self.limiter.pause(asked)
                log.info("api_rate_limited", url=url, retry_after_s=asked, paused_s=paused)
                if limited >= RATE_LIMIT_TRIES:
                    raise RateLimitedError(
                        f"Coupa's API kept answering 429 for {url}", paused, url=url
                    )
            elif status in (403, 404):
                raise _refusal(status, detail, resp, url)
            elif status == 408 or status >= 500:
                transient += 1
                await _backoff(transient, TransientError(f"{url} answered HTTP {status}"))
            else:
                raise ApiAnswerError(f"{url} answered HTTP {status}: {detail or 'no detail'}")

    async def _get(
        self, url: str, params: Params | None, token: str, deadlines: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """A GET following redirects here: the token goes to the tenant's origin only."""
        for _ in range(MAX_REDIRECTS + 1):
            own = _origin(url) == self._origin
            headers = {"Accept": "application/json"}
            if own:
                headers["Authorization"] = f"Bearer {token}"
            resp = await self.http.get(
                url, params=params, headers=headers, timeout=deadlines, allow_redirects=False
            )
            location = resp.headers.get("Location")
            if resp.status not in (301, 302, 303, 307, 308) or not location:
                return resp
            resp.release()
            url, params = urljoin(str(resp.url), location), None
        raise TransientError(f"more than {MAX_REDIRECTS} redirects from {url}")


def _timeout(total_s: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total_s, sock_connect=min(30.0, total_s))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


async def _backoff(attempt: int, failure: TransientError) -> None:
    """Raise ``failure`` once its tries are used up, else wait a little longer each time."""
    if attempt >= TRANSIENT_TRIES:
        raise failure
    log.debug("api_retry", attempt=attempt, reason=public_text(str(failure)))
    await anyio.sleep(BACKOFF_S * attempt)


async def _error_of(resp: aiohttp.ClientResponse) -> str:
    """The ``error: description`` of an error answer ("" when it has none), read and closed."""
    try:
        body = await resp.content.read(ERROR_BODY_BYTES)
    except (aiohttp.ClientError, TimeoutError):
        body = b""
    finally:
        resp.release()
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts = [str(data[key]) for key in ("error", "error_description") if data.get(key)]
    return public_text(": ".join(parts))[:300]


def _refusal(status: int, detail: str, resp: aiohttp.ClientResponse, url: str) -> ApiRefusalError:
    scope = None
    challenge = resp.headers.get("WWW-Authenticate", "")
    if "insufficient_scope" in detail or "insufficient_scope" in challenge:
        marker = 'scope="'
        if marker in challenge:
            scope = challenge.split(marker, 1)[1].split('"', 1)[0] or None
    what = "not found" if status == 404 else "not allowed"
    path = urlsplit(url).path
    return ApiRefusalError(
        f"{path}: {what} (HTTP {status}: {detail or 'no detail'})", status, scope
    )
