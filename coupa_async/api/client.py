"""``ApiClient``: what the tool asks Coupa's REST API, over one HTTP session and one limiter.

- ``check_access``: the first contact: a token, the scopes it grants, one cheap request.
- ``find_pos``: PO numbers to POs, 50 a request; a number a batch leaves out is asked alone,
  which tells "not there" (an empty list) from "not allowed" (403).
- ``po_attachments`` / ``requisition_attachments``: header, lines and comments.
- ``download`` (to a file) and ``digest`` (hashed, not kept): a file attachment's bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import anyio

from coupa_async.api.files import Received, receive
from coupa_async.api.limiter import RateLimiter
from coupa_async.api.models import (
    ATTACHMENT_FIELDS,
    ApiAttachment,
    ApiPo,
    ApiRequisition,
    NotAllowed,
    RequisitionRef,
    normal_number,
    parse_comment,
    parse_po,
    parse_requisition,
)
from coupa_async.api.token import TokenSource, missing_scopes
from coupa_async.api.transport import ApiTransport
from coupa_async.coupa.bounded import BodyLimits
from coupa_async.errors import (
    ApiAccessError,
    ApiAnswerError,
    ApiRefusalError,
    TransientError,
    missing_api_client,
)
from coupa_async.results.result import Source
from coupa_async.session.contact import unreachable_from_http
from coupa_async.session.network import open_http
from coupa_async.settings import Settings

BATCH = 50  # numbers per lookup, and objects per page: the API's page size
Lookup = ApiPo | NotAllowed | None


def _po_fields() -> str:
    """``fields=``: only what the tool reads (a full PO can be a megabyte of JSON)."""
    attachment = "[" + ",".join(f'"{name}"' for name in ATTACHMENT_FIELDS) + "]"
    return (
        '["id","po-number",{"supplier":["name"]},'
        '{"requisition-header":["id","requisition-number"]},'
        f'{{"attachments":{attachment}}},'
        f'{{"order-lines":["line-num",{{"attachments":{attachment}}}]}}]'
    )


PO_FIELDS = _po_fields()


class ApiClient:
    """Coupa's REST API for one run: its token, its limiter, its HTTP session."""

    def __init__(
        self,
        settings: Settings,
        http: aiohttp.ClientSession,
        *,
        limiter: RateLimiter | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        api = settings.api
        if not settings.base_url or not api.configured:
            raise missing_api_client("use the browser (run without the API)")
        assert api.client_id is not None and api.client_secret is not None
        self.settings = settings
        self.scopes = tuple(api.scopes)
        self.limiter = limiter or RateLimiter(
            api.requests_per_s, api.burst, max_pause_s=settings.limits.retry_after_max_s
        )
        self.tokens = tokens or TokenSource(
            http,
            settings.base_url,
            api.client_id,
            api.client_secret.get_secret_value(),
            self.scopes,
            timeout_s=settings.network.contact_timeout_s,
        )
        limits = settings.limits
        self.transport = ApiTransport(
            http,
            settings.base_url,
            self.tokens,
            self.limiter,
            timeout_s=settings.timeouts.navigation_s,
            limits=BodyLimits(limits.page_max_bytes, limits.compression_ratio_max),
        )
        self.file_limits = BodyLimits(
            limits.file_max_bytes, limits.compression_ratio_max, "limits.file_max_mb"
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[ApiClient]:
        """A client over its own HTTP session (the run's proxy and trust), closed on the way
        out."""
        if not settings.base_url or not settings.api.configured:
            raise missing_api_client("use the browser (run without the API)")
        http = await open_http(settings)
        try:
            yield cls(settings, http)
        finally:
            await http.close()

    # ----- first contact ------------------------------------------------------------------

    async def check_access(self, needed: Sequence[str] | None = None) -> None:
        """A token, every scope of ``needed`` (default: ``api.scopes``) granted, and one cheap
        request answered. Raises ApiAccessError (exit 2) naming what is wrong, and
        TenantUnreachableError when the API cannot be reached."""
        url = self.tokens.url
        try:
            await self.tokens.token()
            lacking = missing_scopes(self.tokens.granted, list(needed or self.scopes))
            if lacking is not None:
                raise lacking
            await self.transport.get_json(
                "/api/purchase_orders", {"limit": "1", "return_object": "limited"}
            )
        except ApiRefusalError as exc:
            if exc.scope:
                lacking = missing_scopes(frozenset(), [exc.scope])
                assert lacking is not None
                raise lacking from None
            raise ApiAccessError(
                f"Coupa's API refused the first request ({exc}): check the API client's rights."
            ) from None
        except TransientError as exc:
            cause = exc.__cause__ or exc
            timeout_s = self.settings.network.contact_timeout_s
            raise unreachable_from_http(cause, url, timeout_s=timeout_s) from None

    # ----- purchase orders ----------------------------------------------------------------

    async def find_pos(self, numbers: Iterable[str]) -> dict[str, Lookup]:
        """Each number's PO; None where the API knows no such PO; NotAllowed where it will not
        show it (403). Keys are the numbers as given."""
        wanted = {number: normal_number(number) for number in numbers}
        unique = list(dict.fromkeys(wanted.values()))
        found: dict[str, Lookup] = {}
        batches = [unique[i : i + BATCH] for i in range(0, len(unique), BATCH)]
        async with anyio.create_task_group() as group:
            for batch in batches:
                group.start_soon(self._find_batch, batch, found)
        return {given: found.get(number) for given, number in wanted.items()}

    async def _find_batch(self, batch: list[str], found: dict[str, Lookup]) -> None:
        seen: dict[str, ApiPo] = {}
        offset = 0
        while True:
            page = await self._po_page({"po_number[in]": ",".join(batch), "offset": str(offset)})
            for po in page:
                seen.setdefault(normal_number(po.number), po)
            offset += len(page)
            if len(page) < BATCH or all(number in seen for number in batch):
                break
        found.update(seen)
        missing = [number for number in batch if number not in seen]
        async with anyio.create_task_group() as group:
            for number in missing:
                group.start_soon(self._find_alone, number, found)

    async def _find_alone(self, number: str, found: dict[str, Lookup]) -> None:
        try:
            page = await self._po_page({"po-number": number})
        except ApiRefusalError as exc:
            if exc.status == 403 and not exc.scope:
                found[number] = NotAllowed(number, str(exc))
                return
            if exc.status == 404:
                found[number] = None
                return
            raise
        match = [po for po in page if normal_number(po.number) == number]
        found[number] = match[0] if match else None

    async def _po_page(self, params: dict[str, str]) -> list[ApiPo]:
        body = await self.transport.get_json(
            "/api/purchase_orders", {**params, "fields": PO_FIELDS}
        )
        return [parse_po(item) for item in _list(body, "purchase orders")]

    async def po_attachments(self, po: ApiPo) -> list[ApiAttachment]:
        """The PO's attachments: header, lines, then comments."""
        return [*po.attachments, *await self._comments("OrderHeader", po.id, "PO")]

    # ----- requisitions -------------------------------------------------------------------

    async def requisition(self, ref: RequisitionRef | int) -> ApiRequisition:
        """A requisition with its header's and lines' attachments (ApiRefusalError: 403/404)."""
        pr_id = ref.id if isinstance(ref, RequisitionRef) else ref
        return parse_requisition(await self.transport.get_json(f"/api/requisitions/{pr_id}"))

    async def requisition_attachments(self, ref: RequisitionRef | int) -> list[ApiAttachment]:
        """The requisition's attachments: header, lines, then comments."""
        pr = await self.requisition(ref)
        return [*pr.attachments, *await self._comments("RequisitionHeader", pr.id, "PR")]

    async def _comments(self, kind: str, object_id: int, source: Source) -> list[ApiAttachment]:
        found: list[ApiAttachment] = []
        offset = 0
        while True:
            params = {"commentable_type": kind, "commentable_id": str(object_id)}
            if offset:
                params["offset"] = str(offset)
            page = _list(await self.transport.get_json("/api/comments", params), "comments")
            for comment in page:
                found += parse_comment(comment, source)
            offset += len(page)
            if len(page) < BATCH:
                return found

    # ----- files --------------------------------------------------------------------------

    async def download(self, attachment: ApiAttachment, dest: Path) -> Received:
        """Stream a file attachment to ``dest`` (a temporary name beside it, then renamed);
        its size and SHA-256. FileRefused for what is not the file (an HTML page, too large);
        FileTimedOut past ``timeouts.download_s``."""
        return await self._receive(attachment, dest)

    async def digest(self, attachment: ApiAttachment) -> Received:
        """A file attachment's size and SHA-256, its bytes not kept."""
        return await self._receive(attachment, None)

    async def _receive(self, attachment: ApiAttachment, dest: Path | None) -> Received:
        if attachment.kind != "file" or not attachment.file_url:
            raise ApiAnswerError(f"attachment {attachment.id} has no file to download")
        return await receive(
            self.transport,
            attachment.file_url,
            dest,
            timeout_s=self.settings.timeouts.download_s,
            limits=self.file_limits,
            html_name=attachment.name,
        )


def _list(body: Any, what: str) -> list[Any]:
    if not isinstance(body, list):
        raise ApiAnswerError(f"the API answered {type(body).__name__} where {what} were expected")
    return body
