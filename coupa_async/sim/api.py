"""Coupa's REST API over the simulator's catalog: OAuth2 client credentials, scopes, a rate
limit, purchase orders, requisitions, comments and attachment downloads.

It shows the same tenant as the pages: a PO's attachments here are the files and links its
pages show, area by area (header, lines, comments; the requisition's likewise), and a download
streams the bytes the page's file route streams. JSON keys are hyphenated, as Coupa's are.

- `POST /oauth2/token`: `grant_type=client_credentials`, `client_id`, `client_secret` (form
  fields, or HTTP Basic), `scope` (space-separated; absent: every allowed scope). It grants the
  requested scopes the client is allowed (none of them: 400 `invalid_scope`); `expires_in` is
  whole seconds, rounded down, at least 1.
- `GET /api/purchase_orders`: filters `po-number`/`po_number` and their `[in]` forms
  (comma-separated; answered in the order given; none: every PO in catalog order, shadow POs
  last); `limit` (at most 50, larger is cut to 50), `offset`; `return_object=limited` (id,
  po-number, supplier name, requisition-header); `fields=[...]` is accepted and the full object
  returned (`/{id}` takes `return_object` too).
- `GET /api/purchase_orders/{id}` and `.../{id}/attachments` (header attachments);
  `GET /api/requisitions/{id}` and `.../{id}/attachments`;
  `GET /api/comments?commentable_type=OrderHeader|RequisitionHeader&commentable_id={id}`;
  `GET /api/attachments/{id}/file`: the download address given as `file-url`.
- Every `/api/*` request needs `Authorization: Bearer <token>` (else 401), passes the client's
  token bucket (else 429 with Retry-After), then the endpoint's scope (else 403
  `insufficient_scope` naming it): purchase orders `core.purchase_order.read`, requisitions
  `core.requisition.read`, comments `core.comment.read`, downloads `core.common.read`.

Decisions:

- A PO is unknown to the API (404, left out of lists) when its page is an error page of any
  kind, or its number is in `api_hidden_pos`. A PO in `api_forbidden_pos` answers 403 on its
  own endpoints (by id, its attachments, its comments, its files' downloads) and is left out of
  lists, except that a list query naming exactly one number, a forbidden one, answers 403: a
  client that misses numbers in a batch asks for each alone and so tells "not there" (200, [])
  from "not allowed" (403). Its requisition is an object of its own and stays readable.
- A requisition whose page is an error page (`kind` "error", "not authorized") answers 403.
- Nothing of page rendering reaches the API: a PO whose page list never arrives (late_broken)
  or whose page answers a hostile answer is served whole here.
- PO ids are the internal ids (they differ from numbers for the id modes `not_found` and
  `other_po`; `/api/purchase_orders/{number}` of an `other_po` PO is the shadow PO whose id that
  number is). Requisition ids are their numbers, as their page addresses are.
- A PO whose page shows no supplier has `"supplier": null`. `file-file-name` is the name a
  correct downloader gives the file from its page (`SimFile.expected_name`).
- A download answers as the page's file route does: the same bytes and headers, an HTML page
  for a file that serves HTML, the same hostile answers (counted apart from the page route's).
- The rate limit counts requests with a valid token, by client id; the token endpoint and
  401s are not counted. A request that comes while a Retry-After given runs gets 429 too.
- The middleware treats `/api/*` and `/oauth2/*` as the request kind `api` (with the polls of
  heavy pages): outages answer them as they answer pages, injected faults reach them by path,
  random faults when `Faults.kinds` holds "api". Full objects carry a few dozen ordinary
  fields (prices, accounts, codes) so that `return_object=limited` is visibly lighter.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from .catalog import (
    Catalog,
    SimComment,
    SimFile,
    SimLink,
    SimPO,
    SimRequisition,
    comment_place,
    header_place,
    line_place,
)
from .config import SimConfig
from .stats import Stats

TOKEN_PATH = "/oauth2/token"
API_PREFIXES = ("/api/", "/oauth2/")
SCOPE_PO = "core.purchase_order.read"
SCOPE_PR = "core.requisition.read"
SCOPE_COMMENT = "core.comment.read"
SCOPE_COMMON = "core.common.read"
PAGE_LIMIT = 50
COMMENTABLE_TYPES = ("OrderHeader", "RequisitionHeader")
_MAX_TOKENS = 10_000
_MAX_CACHED = 100_000
_REALM = 'Bearer realm="Coupa"'

ServeFile = Callable[[web.Request, SimFile, str, str], Awaitable[web.StreamResponse]]
Clock = Callable[[], float]
Page = SimPO | SimRequisition


@dataclass(frozen=True, slots=True)
class Grant:
    """What one access token allows, and until when (monotonic seconds)."""

    client_id: str
    scopes: frozenset[str]
    expires: float


class TokenStore:
    """Access tokens; expired ones are kept (to say "expired") until many pile up."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._grants: dict[str, Grant] = {}

    def issue(self, client_id: str, scopes: Iterable[str], ttl: float) -> str:
        now = self._clock()
        if len(self._grants) >= _MAX_TOKENS:
            self._grants = {t: g for t, g in self._grants.items() if g.expires > now}
        token = secrets.token_urlsafe(32)
        self._grants[token] = Grant(client_id, frozenset(scopes), now + ttl)
        return token

    def find(self, token: str) -> Grant | None:
        """The token's grant, expired or not; None for a token never issued."""
        return self._grants.get(token)

    def alive(self, grant: Grant) -> bool:
        return self._clock() < grant.expires

    def expire_all(self) -> int:
        """End every live token now; returns how many there were."""
        now = self._clock()
        live = [t for t, g in self._grants.items() if g.expires > now]
        for token in live:
            self._grants[token] = dataclasses.replace(self._grants[token], expires=now)
        return len(live)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    penalty_started: float = -math.inf
    penalty_until: float = -math.inf


class RateLimiter:
    """A token bucket per client (`api_rate_per_s`, `api_burst`, read on every request).

    Past it a request gets 429 and starts a Retry-After of the whole seconds until a token is
    back (at least 1); every request of the client inside it gets 429 too, counted as in flight
    within `api_retry_after_grace_ms` of the 429 that started it, else as ignoring it."""

    def __init__(self, config: SimConfig, stats: Stats, clock: Clock = time.monotonic) -> None:
        self._config = config
        self._stats = stats
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, client_id: str) -> int | None:
        """None when the request may be served; else the Retry-After of its 429."""
        config, stats = self._config, self._stats
        now = self._clock()
        rate, burst = config.api_rate_per_s, config.api_burst
        bucket = self._buckets.get(client_id)
        if bucket is None:
            bucket = self._buckets[client_id] = _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if now < bucket.penalty_until:
            late = (now - bucket.penalty_started) * 1000 > config.api_retry_after_grace_ms
            stats.api_refused(during_retry_after=late)
            return max(1, math.ceil(bucket.penalty_until - now))
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            stats.api_request_served(now)
            return None
        wait = max(1, math.ceil((1 - bucket.tokens) / rate))
        bucket.penalty_started, bucket.penalty_until = now, now + wait
        stats.api_refused(during_retry_after=None)
        return wait


class RestApi:
    """The REST API's state and handlers, over one catalog."""

    def __init__(
        self,
        config: SimConfig,
        catalog: Catalog,
        stats: Stats,
        serve_file: ServeFile,
        clock: Clock = time.monotonic,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.stats = stats
        self.tokens = TokenStore(clock)
        self.limiter = RateLimiter(config, stats, clock)
        self._serve_file = serve_file
        self._all: list[SimPO] = [*catalog.pos, *catalog.shadow_pos]
        self._by_number = {po.number: po for po in self._all}
        self._owners: dict[int, Page] = {}
        for po in self._all:
            for f in po.files:
                self._owners[f.id] = po
            if po.requisition is not None:
                for f in po.requisition.files:
                    self._owners[f.id] = po.requisition
        self._cache: dict[tuple[str, str], bytes] = {}

    def add_routes(self, r: web.UrlDispatcher) -> None:
        """The token endpoint and `/api/*` (a catch-all last: add it after other `/api/` routes)."""
        r.add_post(TOKEN_PATH, self.token)
        r.add_get("/api/purchase_orders", self.purchase_orders)
        r.add_get("/api/purchase_orders/{id}", self.purchase_order)
        r.add_get("/api/purchase_orders/{id}/attachments", self.purchase_order_attachments)
        r.add_get("/api/requisitions/{id}", self.requisition)
        r.add_get("/api/requisitions/{id}/attachments", self.requisition_attachments)
        r.add_get("/api/comments", self.comments)
        r.add_get("/api/attachments/{id}/file", self.download)
        r.add_route("*", "/api/{tail:.*}", self.unknown)

    # --- OAuth2 -------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        """Client credentials for a bearer token."""
        form = await request.post()
        client_id, secret = _field(form, "client_id"), _field(form, "client_secret")
        basic = _basic_credentials(request.headers.get("Authorization"))
        if basic is not None:
            client_id, secret = basic
        config = self.config
        if not (
            secrets.compare_digest(client_id.encode(), config.api_client_id.encode())
            and secrets.compare_digest(secret.encode(), config.api_client_secret.encode())
        ):
            self.stats.api_tokens_refused += 1
            return _error(401, "invalid_client", "Client authentication failed")
        grant_type = _field(form, "grant_type")
        if not grant_type:
            return _error(400, "invalid_request", "grant_type is missing")
        if grant_type != "client_credentials":
            return _error(
                400, "unsupported_grant_type", f"grant_type {grant_type} is not supported"
            )
        raw_scope = form.get("scope")
        allowed = config.api_scopes
        requested = _field(form, "scope").split() if raw_scope is not None else list(allowed)
        granted = list(dict.fromkeys(s for s in requested if s in allowed))
        if not granted:
            return _error(400, "invalid_scope", "none of the requested scopes is allowed")
        ttl = config.api_token_ttl_seconds
        token = self.tokens.issue(client_id, granted, ttl)
        self.stats.api_tokens_issued += 1
        body = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": max(1, int(ttl)),
            "scope": " ".join(granted),
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    def _guard(self, request: web.Request, scope: str | None) -> web.Response | None:
        """None when the request may go on: a live token, within the rate limit, with `scope`
        (None: any)."""
        header = request.headers.get("Authorization", "")
        kind, _, value = header.partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            return _unauthorized("unauthorized", "Bearer access token required")
        grant = self.tokens.find(value.strip())
        if grant is None:
            return _unauthorized("invalid_token", "The access token is invalid")
        if not self.tokens.alive(grant):
            return _unauthorized("invalid_token", "The access token expired")
        retry_after = self.limiter.admit(grant.client_id)
        if retry_after is not None:
            response = _error(429, "rate_limited", "Too many requests; retry later")
            response.headers["Retry-After"] = str(retry_after)
            return response
        if scope is not None and scope not in grant.scopes:
            response = _error(
                403, "insufficient_scope", f"The access token lacks the scope {scope}", scope
            )
            response.headers["WWW-Authenticate"] = (
                f'{_REALM}, error="insufficient_scope", scope="{scope}"'
            )
            return response
        return None

    # --- purchase orders ----------------------------------------------------------------------

    async def purchase_orders(self, request: web.Request) -> web.StreamResponse:
        refused = self._guard(request, SCOPE_PO)
        if refused is not None:
            return refused
        query = request.query
        try:
            numbers = _numbers(query)
            limit, offset = _paging(query)
        except ValueError as exc:
            return _error(400, "invalid_request", str(exc))
        if numbers is None:
            candidates = self._all
        else:
            found = (self._by_number.get(n) for n in numbers)
            candidates = [po for po in found if po is not None]
            if len(numbers) == 1 and candidates and self._po_access(candidates[0]) == 403:
                return self._po_refusal(candidates[0]) or _not_found()
        shown = [po for po in candidates if self._po_access(po) == 200]
        limited = query.get("return_object") == "limited"
        origin = _origin(request)
        items = [self._po_json(po, origin, limited) for po in shown[offset : offset + limit]]
        return _json_list(items)

    async def purchase_order(self, request: web.Request) -> web.StreamResponse:
        po = self._guard(request, SCOPE_PO) or self._po_by_id(request.match_info["id"])
        if isinstance(po, web.Response):
            return po
        limited = request.query.get("return_object") == "limited"
        return _json_body(self._po_json(po, _origin(request), limited))

    async def purchase_order_attachments(self, request: web.Request) -> web.StreamResponse:
        po = self._guard(request, SCOPE_PO) or self._po_by_id(request.match_info["id"])
        if isinstance(po, web.Response):
            return po
        return web.json_response(_area(po, header_place("PO"), _origin(request)))

    def _po_by_id(self, raw_id: str) -> SimPO | web.Response:
        """The PO whose internal id this is, or its refusal (403 or 404)."""
        po = self.catalog.find_page(raw_id) if raw_id.isdigit() else None
        if po is None:
            return _not_found()
        return self._po_refusal(po) or po

    def _po_access(self, po: SimPO) -> int:
        """404 for a PO the API does not know, 403 for one outside the client's scopes, else
        200."""
        if po.page != "ok" or po.number in self.config.api_hidden_pos:
            return 404
        return 403 if po.number in self.config.api_forbidden_pos else 200

    def _po_refusal(self, po: SimPO) -> web.Response | None:
        access = self._po_access(po)
        if access == 404:
            return _not_found()
        if access == 403:
            return _error(
                403, "forbidden", f"Purchase order {po.number} is outside the scopes of this client"
            )
        return None

    def _po_json(self, po: SimPO, origin: str, limited: bool) -> bytes:
        key = (f"po:{po.internal_id}:{'limited' if limited else 'full'}", origin)
        return self._cached(key, lambda: po_limited(po) if limited else po_full(po, origin))

    # --- requisitions -------------------------------------------------------------------------

    async def requisition(self, request: web.Request) -> web.StreamResponse:
        pr = self._guard(request, SCOPE_PR) or self._pr_by_id(request.match_info["id"])
        if isinstance(pr, web.Response):
            return pr
        origin = _origin(request)
        return _json_body(
            self._cached((f"pr:{pr.number}", origin), lambda: requisition_full(pr, origin))
        )

    async def requisition_attachments(self, request: web.Request) -> web.StreamResponse:
        pr = self._guard(request, SCOPE_PR) or self._pr_by_id(request.match_info["id"])
        if isinstance(pr, web.Response):
            return pr
        return web.json_response(_area(pr, header_place("PR"), _origin(request)))

    def _pr_by_id(self, raw_id: str) -> SimRequisition | web.Response:
        """The requisition with this id, or its refusal (403 or 404)."""
        pr = self.catalog.find_requisition(raw_id)
        if pr is None:
            return _not_found()
        return _pr_refusal(pr) or pr

    # --- comments and downloads ---------------------------------------------------------------

    async def comments(self, request: web.Request) -> web.StreamResponse:
        refused = self._guard(request, SCOPE_COMMENT)
        if refused is not None:
            return refused
        query = request.query
        kind = query.get("commentable_type", "")
        raw_id = query.get("commentable_id", "")
        if kind not in COMMENTABLE_TYPES or not raw_id:
            return _error(
                400,
                "invalid_request",
                f"commentable_type ({' or '.join(COMMENTABLE_TYPES)}) and commentable_id needed",
            )
        try:
            limit, offset = _paging(query)
        except ValueError as exc:
            return _error(400, "invalid_request", str(exc))
        page = self._po_by_id(raw_id) if kind == "OrderHeader" else self._pr_by_id(raw_id)
        if isinstance(page, web.Response):
            return page
        origin = _origin(request)
        chosen = page.comments[offset : offset + limit]
        return web.json_response([comment_json(page, c, kind, raw_id, origin) for c in chosen])

    async def download(self, request: web.Request) -> web.StreamResponse:
        refused = self._guard(request, SCOPE_COMMON)
        if refused is not None:
            return refused
        raw_id = request.match_info["id"]
        f = self.catalog.find_file(int(raw_id)) if raw_id.isdigit() else None
        owner = self._owners.get(f.id) if f is not None else None
        if f is None or owner is None:
            return _not_found()
        refusal = self._po_refusal(owner) if isinstance(owner, SimPO) else _pr_refusal(owner)
        if refusal is not None:
            return refusal
        return await self._serve_file(request, f, f"api-file:{f.id}", "api")

    async def unknown(self, request: web.Request) -> web.StreamResponse:
        """Any other `/api/*` address: 401 without a live token, else 404."""
        return self._guard(request, None) or _not_found()

    def _cached(self, key: tuple[str, str], render: Callable[[], dict[str, Any]]) -> bytes:
        body = self._cache.get(key)
        if body is None:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            body = self._cache[key] = _dumps(render())
        return body


def _pr_refusal(pr: SimRequisition) -> web.Response | None:
    """403 for a requisition whose page is an error page ("not authorized")."""
    if pr.kind == "error":
        return _error(403, "forbidden", "You are not authorized to read this requisition")
    return None


# --- JSON objects -----------------------------------------------------------------------------


def _stamp(n: int) -> str:
    """A fixed, plausible timestamp drawn from a number."""
    return f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:{n % 59:02d}+00:00"


def _intent(n: int) -> str:
    return "Supplier" if n % 3 == 0 else "Internal"


def attachment_file(f: SimFile, origin: str) -> dict[str, Any]:
    """An `AttachmentFile` whose `file-url` is its API download address."""
    return {
        "id": f.id,
        "created-at": _stamp(f.id),
        "updated-at": _stamp(f.id + 7),
        "type": "AttachmentFile",
        "intent": _intent(f.id),
        "file": f"attachment/file/{f.id}",
        "file-url": f"{origin}/api/attachments/{f.id}/file",
        "file-file-name": f.expected_name,
        "file-content-type": f.content_type,
        "file-file-size": f.size,
        "url": None,
        "text": None,
    }


def attachment_link(link: SimLink) -> dict[str, Any]:
    """An `AttachmentUrl` or `AttachmentText`: no bytes."""
    is_url = link.kind == "url"
    return {
        "id": link.id,
        "created-at": _stamp(link.id),
        "updated-at": _stamp(link.id + 7),
        "type": "AttachmentUrl" if is_url else "AttachmentText",
        "intent": _intent(link.id),
        "file": None,
        "file-url": None,
        "file-file-name": None,
        "file-content-type": None,
        "file-file-size": None,
        "url": link.value if is_url else None,
        "text": None if is_url else link.value,
    }


def _area(page: Page, place: str, origin: str) -> list[dict[str, Any]]:
    """The attachments shown at one place of a page: files, then links."""
    files, links = page.in_area(place)
    return [*(attachment_file(f, origin) for f in files), *(attachment_link(k) for k in links)]


def _person(name: str) -> dict[str, Any]:
    login = name.lower().replace(" ", ".")
    return {
        "id": 1000 + zlib.crc32(name.encode()) % 90_000,
        "login": login,
        "email": f"{login}@example.com",
        "fullname": name,
    }


def _supplier(name: str | None) -> dict[str, Any] | None:
    if name is None:
        return None
    return {"id": 10_000 + zlib.crc32(name.encode()) % 90_000, "name": name, "number": None}


_PADDING: tuple[tuple[str, str], ...] = (
    ("description", "text"),
    ("price", "money"),
    ("quantity", "number"),
    ("total", "money"),
    ("accounting-total", "money"),
    ("source-part-num", "code"),
    ("supplier-part-num", "code"),
    ("need-by-date", "date"),
    ("line-type", "text"),
    ("receipt-required", "flag"),
    ("match-type", "text"),
    ("invoiced", "money"),
    ("received", "number"),
    ("savings-pct", "number"),
    ("tax-amount", "money"),
    ("tax-code", "code"),
    ("manufacturer-name", "text"),
    ("manufacturer-part-number", "code"),
    ("service-type", "text"),
    ("transmission-status", "text"),
    ("reporting-total", "money"),
    ("minimum-order-quantity", "number"),
    ("order-increment", "number"),
    ("contract-id", "number"),
    ("catalog-item-id", "number"),
    ("item-number", "code"),
    ("delivery-method", "text"),
    ("exported", "flag"),
)


def _fields(kind: str, n: int, count: int) -> dict[str, Any]:
    """`count` ordinary fields of a real object, and a few nested ones (padding: real
    objects are heavy)."""
    out: dict[str, Any] = {}
    for k in range(count):
        name, shape = _PADDING[k % len(_PADDING)]
        if k >= len(_PADDING):
            name = f"custom-field-{k}"
        v = (n * 31 + k * 17) % 9973
        if shape == "money":
            out[name] = f"{v}.{k % 100:02d}"
        elif shape == "number":
            out[name] = v % 500
        elif shape == "date":
            out[name] = _stamp(n + k)
        elif shape == "flag":
            out[name] = v % 2 == 0
        elif shape == "code":
            out[name] = f"{kind[:3].upper()}-{v:05d}"
        else:
            out[name] = f"{kind} {name.replace('-', ' ')} {v}"
    out["account"] = {
        "id": 3000 + n % 997,
        "name": f"Operations-{n % 97}-{n % 13}",
        "code": f"{n % 97:03d}-{n % 13:02d}-{n % 7:02d}",
        "active": True,
        **{f"segment-{s}": f"{(n + s) % 97:03d}" for s in range(1, 7)},
        "account-type": {"id": 1, "name": "Default chart of accounts"},
    }
    out["currency"] = {"id": 1, "code": "USD"}
    out["uom"] = {"id": 1, "code": "EA", "name": "Each"}
    out["commodity"] = {"id": 100 + n % 50, "name": f"Commodity {n % 50}"}
    return out


def _line_count(page: Page) -> int:
    """The lines the page shows (as `pages.py` draws them)."""
    if isinstance(page, SimPO):
        return max(1 + int(page.number) % 3, page.line_count)
    return max(1 + int(page.number) % 2, page.line_count)


def _lines(page: Page, page_id: int, origin: str) -> list[dict[str, Any]]:
    lines = []
    for i in range(1, _line_count(page) + 1):
        line_id = page_id * 100 + i
        lines.append(
            {
                "id": line_id,
                "created-at": _stamp(line_id),
                "updated-at": _stamp(line_id + 7),
                "line-num": i,
                **_fields("Item", line_id, 30),
                "attachments": _area(page, line_place(page.source_kind, i), origin),
            }
        )
    return lines


def po_full(po: SimPO, origin: str) -> dict[str, Any]:
    """The whole purchase order, with its header and line attachments."""
    po_id = int(po.internal_id)
    return {
        "id": po_id,
        "created-at": _stamp(po_id),
        "updated-at": _stamp(po_id + 7),
        "po-number": po.number,
        "status": "issued",
        "version": 1,
        **_fields("Order", po_id, 40),
        "created-by": _person("Pat Buyer"),
        "updated-by": _person("Pat Buyer"),
        "supplier": _supplier(po.supplier),
        "requisition-header": _pr_ref(po.requisition),
        "attachments": _area(po, header_place("PO"), origin),
        "order-lines": _lines(po, po_id, origin),
    }


def po_limited(po: SimPO) -> dict[str, Any]:
    """`return_object=limited`: the id, number, supplier name and requisition."""
    return {
        "id": int(po.internal_id),
        "po-number": po.number,
        "supplier": None if po.supplier is None else {"name": po.supplier},
        "requisition-header": _pr_ref(po.requisition),
    }


def _pr_ref(pr: SimRequisition | None) -> dict[str, Any] | None:
    return None if pr is None else {"id": int(pr.number), "requisition-number": pr.number}


def requisition_full(pr: SimRequisition, origin: str) -> dict[str, Any]:
    """The whole requisition, with its header and line attachments."""
    pr_id = int(pr.number)
    return {
        "id": pr_id,
        "created-at": _stamp(pr_id),
        "updated-at": _stamp(pr_id + 7),
        "status": "ordered",
        **_fields("Request", pr_id, 30),
        "requested-by": _person("Robin Requester"),
        "attachments": _area(pr, header_place("PR"), origin),
        "requisition-lines": _lines(pr, pr_id, origin),
    }


def comment_json(
    page: Page, comment: SimComment, kind: str, commentable_id: str, origin: str
) -> dict[str, Any]:
    """One comment with the attachments shown with it."""
    stamp = f"{comment.datetime}:00+00:00"
    return {
        "id": comment.id,
        "created-at": stamp,
        "updated-at": stamp,
        "comments": comment.body,
        "commentable-type": kind,
        "commentable-id": int(commentable_id),
        "created-by": _person(comment.author),
        "attachments": _area(page, comment_place(page.source_kind, comment), origin),
    }


# --- requests and answers ---------------------------------------------------------------------


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _field(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client id, secret) of an HTTP Basic Authorization header; None without one."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _numbers(query: MultiMapping[str]) -> list[str] | None:
    """The PO numbers a list query names, in order, once each; None when it names none."""
    numbers: list[str] = []
    given = False
    for key in ("po-number", "po_number"):
        for value in query.getall(key, []):
            given = True
            numbers.append(value.strip())
        for value in query.getall(f"{key}[in]", []):
            given = True
            numbers += [part.strip() for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(numbers)) if given else None


def _paging(query: Mapping[str, str]) -> tuple[int, int]:
    """(limit, offset): limit 1..50 (more is cut to 50), offset >= 0. ValueError otherwise."""
    raw_limit, raw_offset = query.get("limit", str(PAGE_LIMIT)), query.get("offset", "0")
    if not raw_limit.isdigit() or int(raw_limit) < 1:
        raise ValueError(f"limit must be a whole number >= 1, got {raw_limit!r}")
    if not raw_offset.isdigit():
        raise ValueError(f"offset must be a whole number >= 0, got {raw_offset!r}")
    return min(int(raw_limit), PAGE_LIMIT), int(raw_offset)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _json_body(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def _json_list(items: list[bytes]) -> web.Response:
    return _json_body(b"[" + b",".join(items) + b"]")


def _error(status: int, error: str, description: str, scope: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": error, "error_description": description}
    if scope is not None:
        body["scope"] = scope
    return _json_body(_dumps(body), status)


def _unauthorized(error: str, description: str) -> web.Response:
    response = _error(401, error, description)
    challenge = _REALM if error == "unauthorized" else f'{_REALM}, error="{error}"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def _not_found() -> web.Response:
    return _error(404, "not_found", "No such record")
