"""What the API says of a PO, a requisition and their attachments, read from its JSON.

Coupa's keys are hyphenated (``po-number``, ``file-file-name``). An attachment is a file
(``AttachmentFile``: a name, a size, a download address), a URL (``AttachmentUrl``) or a text
(``AttachmentText``). Its ``where`` is the page area the browser path calls its place:
``header``, ``line 2``, ``comment by Jane Doe at 2024-03-01T10:22:00+00:00``; ``place`` adds
``requisition`` before it for a requisition's, as the manifest does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coupa_async.errors import ApiAnswerError
from coupa_async.results.result import AttachmentKind, Source

KINDS: dict[str, AttachmentKind] = {
    "AttachmentFile": "file",
    "AttachmentUrl": "url",
    "AttachmentText": "text",
}
ATTACHMENT_FIELDS = (
    "id",
    "type",
    "intent",
    "file-file-name",
    "file-content-type",
    "file-file-size",
    "file-url",
    "url",
    "text",
)


@dataclass(frozen=True, slots=True)
class ApiAttachment:
    """One attachment as the API lists it."""

    id: int
    kind: AttachmentKind
    name: str  # a file's name; a URL's address; a text's text
    size: int | None  # a file's size as the API declares it
    content_type: str | None
    file_url: str | None  # where a file's bytes are downloaded (with the bearer token)
    url: str | None
    text: str | None
    where: str  # header, line N, comment by … at …
    source: Source  # the PO's, or its requisition's
    intent: str | None = None

    @property
    def place(self) -> str:
        """The manifest's LOCATION: ``where``, after ``requisition`` for a requisition's."""
        return self.where if self.source == "PO" else f"requisition {self.where}"

    @property
    def value(self) -> str:
        """The manifest's VALUE: the URL or the text; a file's download address."""
        if self.kind == "url":
            return self.url or ""
        if self.kind == "text":
            return self.text or ""
        return self.file_url or ""


@dataclass(frozen=True, slots=True)
class RequisitionRef:
    """The requisition a PO was ordered from."""

    id: int
    number: str


@dataclass(frozen=True, slots=True)
class ApiPo:
    """A PO as the API lists it: ``attachments`` are its header's and lines' (comments are
    asked for apart)."""

    id: int
    number: str
    supplier: str | None
    requisition: RequisitionRef | None
    attachments: tuple[ApiAttachment, ...]


@dataclass(frozen=True, slots=True)
class ApiRequisition:
    """A requisition: ``attachments`` are its header's and lines' (comments apart)."""

    id: int
    number: str
    attachments: tuple[ApiAttachment, ...]


@dataclass(frozen=True, slots=True)
class NotAllowed:
    """A PO the API knows but will not show this client (403)."""

    number: str
    reason: str


def normal_number(number: str) -> str:
    """A PO number as the API and the pages compare them: digits without leading zeros."""
    return number.strip().lstrip("0") or "0"


def parse_po(obj: object) -> ApiPo:
    """A PO object (full, ``fields=`` or ``return_object=limited``)."""
    data = _mapping(obj, "a purchase order")
    supplier = data.get("supplier")
    name = supplier.get("name") if isinstance(supplier, Mapping) else None
    return ApiPo(
        id=_int(data.get("id"), "a purchase order's id"),
        number=str(data.get("po-number") or ""),
        supplier=name if isinstance(name, str) and name.strip() else None,
        requisition=_requisition_ref(data.get("requisition-header")),
        attachments=(
            *parse_attachments(data.get("attachments"), "header", "PO"),
            *_line_attachments(data.get("order-lines"), "PO"),
        ),
    )


def parse_requisition(obj: object) -> ApiRequisition:
    data = _mapping(obj, "a requisition")
    pr_id = _int(data.get("id"), "a requisition's id")
    return ApiRequisition(
        id=pr_id,
        number=str(data.get("requisition-number") or pr_id),
        attachments=(
            *parse_attachments(data.get("attachments"), "header", "PR"),
            *_line_attachments(data.get("requisition-lines"), "PR"),
        ),
    )


def parse_comment(obj: object, source: Source) -> list[ApiAttachment]:
    """The attachments of one comment, placed as the page shows them: by author and time."""
    data = _mapping(obj, "a comment")
    author = data.get("created-by")
    name = author.get("fullname") or author.get("login") if isinstance(author, Mapping) else None
    where = f"comment by {name or 'someone'} at {data.get('created-at') or 'an unknown time'}"
    return parse_attachments(data.get("attachments"), where, source)


def parse_attachments(items: object, where: str, source: Source) -> list[ApiAttachment]:
    """The attachments of one area; unknown types are left out (nothing to save or record)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise ApiAnswerError(f"the API listed attachments as {type(items).__name__}, not a list")
    found = []
    for item in items:
        data = _mapping(item, "an attachment")
        kind = KINDS.get(str(data.get("type")))
        if kind is None:
            continue
        file_name = _text(data.get("file-file-name"))
        url, text = _text(data.get("url")), _text(data.get("text"))
        name = file_name if kind == "file" else url if kind == "url" else text
        size = data.get("file-file-size")
        found.append(
            ApiAttachment(
                id=_int(data.get("id"), "an attachment's id"),
                kind=kind,
                name=name or "",
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                content_type=_text(data.get("file-content-type")),
                file_url=_text(data.get("file-url")),
                url=url,
                text=text,
                where=where,
                source=source,
                intent=_text(data.get("intent")),
            )
        )
    return found


def _line_attachments(lines: object, source: Source) -> list[ApiAttachment]:
    if lines is None:
        return []
    if not isinstance(lines, list):
        raise ApiAnswerError(f"the API listed lines as {type(lines).__name__}, not a list")
    found: list[ApiAttachment] = []
    for index, line in enumerate(lines, start=1):
        data = _mapping(line, "an order line")
        number = data.get("line-num")
        where = f"line {number if isinstance(number, int | str) and number != '' else index}"
        found += parse_attachments(data.get("attachments"), where, source)
    return found


def _requisition_ref(obj: object) -> RequisitionRef | None:
    if not isinstance(obj, Mapping) or obj.get("id") is None:
        return None
    pr_id = _int(obj.get("id"), "a requisition's id")
    return RequisitionRef(pr_id, str(obj.get("requisition-number") or pr_id))


def _mapping(obj: object, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ApiAnswerError(f"the API answered {type(obj).__name__} where {what} was expected")
    return obj


def _int(value: object, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ApiAnswerError(f"the API answered {value!r} as {what}")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None
