"""The API's access token: OAuth2 client credentials, cached, renewed once for all callers.

``POST {base_url}/oauth2/token`` with ``grant_type=client_credentials``, the client's id and
secret and the scopes asked for (space-separated). A token is renewed before it expires (when
less than a tenth of its life, at most five minutes, is left) and when the API answers 401; a
renewal is single-flight: callers that need one meanwhile share it. The secret and every token
are known secrets of the log: they never reach a log line or a message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio

from coupa_async.coupa.bounded import BodyLimits, BodyTooLarge, read_bounded
from coupa_async.errors import ApiAccessError, HostUnreachableError, TransientError
from coupa_async.log import add_known_secret, get_logger

log = get_logger(__name__)

TOKEN_PATH = "/oauth2/token"
RENEW_SHARE = 0.1  # renewed when less than this share of its life is left…
RENEW_MAX_S = 300.0  # …or less than five minutes, whichever is less
TOKEN_MAX_BYTES = 64 * 1024
CREDENTIAL_SETTINGS = (
    "api.client_id and api.client_secret (COUPA_API__CLIENT_ID and COUPA_API__CLIENT_SECRET)"
)

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Grant:
    """One access token: its value, the scopes granted, and when to renew it (clock seconds)."""

    token: str
    scopes: frozenset[str]
    renew_at: float
    expires_at: float


class TokenSource:
    """The client's token for every request of a run."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        client_id: str,
        client_secret: str,
        scopes: Sequence[str],
        *,
        timeout_s: float = 15.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._http = http
        self.url = f"{base_url.rstrip('/')}{TOKEN_PATH}"
        self._client_id = client_id
        self._secret = client_secret
        self.scopes = tuple(scopes)
        self._timeout_s = timeout_s
        self._clock = clock
        self._grant: Grant | None = None
        self._renewal = asyncio.Lock()
        self.issued = 0
        add_known_secret(client_secret, any_length=True)

    @property
    def granted(self) -> frozenset[str]:
        """The scopes of the current token (empty before the first)."""
        return self._grant.scopes if self._grant is not None else frozenset()

    async def token(self) -> str:
        """A token good for a while yet: the cached one, or a new one."""
        grant = self._grant
        if grant is not None and self._clock() < grant.renew_at:
            return grant.token
        return await self._renew(stale=grant.token if grant is not None else None)

    async def renewed(self, stale: str) -> str:
        """A token other than ``stale``, which the API refused (401): one renewal for all."""
        return await self._renew(stale=stale)

    async def _renew(self, stale: str | None) -> str:
        async with self._renewal:
            grant = self._grant
            # Another caller renewed it while this one waited: share that token.
            if grant is not None and grant.token != stale and self._clock() < grant.renew_at:
                return grant.token
            self._grant = grant = await self._request()
            return grant.token

    async def _request(self) -> Grant:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret,
            "scope": " ".join(self.scopes),
        }
        started = self._clock()
        try:
            with anyio.fail_after(self._timeout_s):
                async with self._http.post(self.url, data=form, allow_redirects=False) as resp:
                    body = await read_bounded(resp, BodyLimits(TOKEN_MAX_BYTES), "the token answer")
                    status = resp.status
        except TimeoutError as exc:
            raise HostUnreachableError(
                f"no answer from {self.url} within {self._timeout_s:.0f} s"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise HostUnreachableError(f"cannot reach {self.url}: {exc}") from exc
        except BodyTooLarge as exc:
            raise TransientError(f"{self.url}: {exc}") from None
        answer = _json_object(body)
        if status != 200:
            raise self._refusal(status, answer)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise TransientError(f"{self.url} answered without an access_token")
        add_known_secret(token)
        lifetime = _seconds(answer.get("expires_in"))
        scope = answer.get("scope")
        # No scope in the answer: OAuth2 says the scopes asked for were granted.
        scopes = frozenset(scope.split() if isinstance(scope, str) else self.scopes)
        self.issued += 1
        log.debug("api_token", lifetime_s=lifetime, scopes=sorted(scopes))
        return Grant(
            token,
            scopes,
            renew_at=started + lifetime - min(RENEW_MAX_S, lifetime * RENEW_SHARE),
            expires_at=started + lifetime,
        )

    def _refusal(self, status: int, answer: dict[str, Any]) -> Exception:
        error = str(answer.get("error") or "")
        if status == 401 or error == "invalid_client":
            return ApiAccessError(
                f"Coupa refused the API client ({error or f'HTTP {status}'}): check "
                f"{CREDENTIAL_SETTINGS} against the OAuth2 client your Coupa administrator "
                "created."
            )
        if error == "invalid_scope":
            return ApiAccessError(
                f"The API client is allowed none of the scopes asked for ({' '.join(self.scopes)})"
                ": ask your Coupa administrator to add them to the client, or set api.scopes."
            )
        if status == 404:
            return ApiAccessError(
                f"No OAuth2 token endpoint answers at {self.url} (HTTP 404): is base_url the "
                "tenant's address, and is the REST API enabled there?"
            )
        if status in (408, 429) or status >= 500:
            return TransientError(f"{self.url} answered HTTP {status}")
        return ApiAccessError(
            f"Coupa's token endpoint {self.url} refused the request (HTTP {status}"
            + (f", {error}" if error else "")
            + f"): check {CREDENTIAL_SETTINGS} and api.scopes."
        )


def missing_scopes(granted: frozenset[str], needed: Sequence[str]) -> ApiAccessError | None:
    """The sentence for scopes in ``needed`` that ``granted`` lacks, None when none is."""
    lacking = [scope for scope in needed if scope not in granted]
    if not lacking:
        return None
    if len(lacking) == 1:
        what, pronoun = f"the scope {lacking[0]}", "it"
    else:
        what, pronoun = f"the scopes {', '.join(lacking[:-1])} and {lacking[-1]}", "them"
    return ApiAccessError(
        f"The API client lacks {what}: ask your Coupa administrator to add {pronoun} to the "
        "client, or set api.scopes."
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _seconds(value: object) -> float:
    """``expires_in`` as seconds; a missing or odd one counts as a short life (a minute)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return float(value)
    return 60.0
