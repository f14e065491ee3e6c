"""The simulated tenant's data: purchase orders, requisitions, files and expected outcomes.

Everything is derived from the seed. The first 52 POs of a varied catalog are a seed-dependent
permutation of 52 fixed recipes that together cover every page, markup, trait, file-name and
outcome variant (late lists included: every shape, start and failure), so any catalog of 52 or
more POs holds each variant at least once; later POs repeat recipes chosen at random.

Attachments live in areas: the header list, order (or requisition) lines and comments; each
file and link says where in `place`. Links (`SimLink`) are URL and text attachments: no bytes,
never fetched, never part of an outcome. Some POs' internal id (their page's address) is not
their number; a "shadow" PO, not in `Catalog.pos`, may own the page at `/order_headers/{number}`.
`SimConfig.recipes` replaces this order with a given list of recipe names. The details
(supplier, file names, sizes, late-list timings) are drawn from the seed too. The `hostile`
profile holds the cases of `hostile.py` instead: files and pages that answer a hostile
`HostileAnswer` (a login form, a bomb, an endless body...) rather than their content.

E-mail files (`.msg`, `.eml`) are real messages whose size is their content's; a recipe's
`MailTraits` say what one must hold (language, attachments, a nested e-mail, a hostile
attachment name, or a malformed `.msg`), and `SimFile.email` summarizes it for tests.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, Literal, NamedTuple, TypeVar
from urllib.parse import quote

from .config import SimConfig
from .content import (
    CHUNK_SIZE,
    CONTENT_TYPES,
    MAIL_TYPES,
    FileType,
    MailSummary,
    MailTraits,
    content_sha256,
    content_size,
    iter_content,
    mail_summary,
)
from .faults import HostileAnswer

Disposition = Literal["filename", "filename_star", "both", "none"]
Markup = Literal[
    "attachment_href",  # <a href="/attachments/ID">name</a>
    "download_href",  # <a href="/file_download/ID">name</a>
    "download_attr",  # <a href="/files/ID" download="name">Download</a>
    "aria_title",  # <a href="/files/ID" aria-label="file attachment" title="name">Open</a>
    "click_nav",  # <span role="button" data-file-id=ID>: script sets location.href
    "click_anchor",  # <span role="button" data-file-id=ID>: script clicks a temporary <a download>
    "icon",  # <a href="/attachments/ID/name"><i class="icon-paperclip"></i></a>
    "click_title",  # <span role="button" title="name" data-file-id=ID>: nothing says attachment
]
ClickDl = Literal["nav", "anchor"]  # what the click script does: set location, or <a download>
CLICK_MARKUPS: tuple[Markup, ...] = ("click_nav", "click_anchor", "click_title")
LinkMarkup = Literal[
    "url_marked",  # <a class="attachment-url" data-attachment-type="url" href=URL>name</a>
    "url_download",  # <a class="attachment-link" href="https://other.host/download/..">name</a>
    "text",  # <div class="attachment-text" data-attachment-type="text">text</div>
    # hostile profile: <a class="attachment-link" href=URL download=name>name</a>, a file link
    # in all but its host (which may be private: never to be fetched)
    "url_file",
]
LINK_MARKUPS: tuple[LinkMarkup, ...] = ("url_marked", "url_download", "text")
IdMode = Literal[
    "same",  # internal id = PO number
    "not_found",  # another internal id; /order_headers/{number} is Coupa's 200 "Oops" page
    "other_po",  # another internal id; /order_headers/{number} is a shadow PO's page
]
Heading = Literal["purchase_order", "po"]  # <h1>Purchase Order #N</h1> or <h1>PO #N</h1>
TitleStyle = Literal["dash", "pipe"]  # "Purchase Order #N - Coupa" or "PO #N | Coupa"
SupplierMarkup = Literal["data_attr", "class", "info", "testid", "none", "empty_first"]
PageKind = Literal[
    "ok",
    "not_found",  # HTTP 200, h1 "Oops! We couldn't find what you wanted"
    "not_authorized",  # HTTP 200, div.flash_error "You are not authorized to access this page"
    "access_denied",  # HTTP 200, div.flash-error "Access denied"
    "not_found_pt",  # HTTP 200, "Desculpe, não encontramos o que você procurava"
    "error_explanation",  # HTTP 200, div#error_explanation and h1 "Sorry, ..."
    "http_404",  # HTTP 404, "The page you were looking for doesn't exist"
]
PAGE_KINDS: tuple[PageKind, ...] = (
    "ok",
    "not_found",
    "not_authorized",
    "access_denied",
    "not_found_pt",
    "error_explanation",
    "http_404",
)
Trait = Literal[
    "toolbar",
    "notice",
    "script_denied",
    "lazy_attachments",  # a loading marker, then a script fills the list
    "late_json",  # empty list, filled from GET <page>/attachments.json (DOM API)
    "late_fragment",  # empty list, filled from GET <page>/attachments_fragment (innerHTML)
    "late_two_parts",  # empty list, filled from attachments.json?part=1 then ?part=2
    "late_broken",  # empty list that is never filled (see LateFailure)
    "late_comments_sign",  # comments filled from <page>/comments.json, with a loading sign
    "late_comments_quiet",  # the same without any sign
    "late_more",  # header files in the HTML, more appended from attachments.json?part=more
    "heavy",  # big stylesheet, font, script bundles, images, polls, analytics, a long-poll
]
TRAITS: tuple[Trait, ...] = (
    "toolbar",
    "notice",
    "script_denied",
    "lazy_attachments",
    "late_json",
    "late_fragment",
    "late_two_parts",
    "late_broken",
    "late_comments_sign",
    "late_comments_quiet",
    "late_more",
    "heavy",
)
LATE_TRAITS: tuple[Trait, ...] = ("late_json", "late_fragment", "late_two_parts", "late_broken")
COMMENT_TRAITS: tuple[Trait, ...] = ("late_comments_sign", "late_comments_quiet")
# The traits a requisition page can have.
PR_TRAITS: frozenset[Trait] = frozenset((*LATE_TRAITS, *COMMENT_TRAITS, "heavy"))
LateStart = Literal[
    "inline",  # the inline script at the end of the body starts the fetch at once
    "domcontentloaded",  # a DOMContentLoaded listener starts it
    "load",  # the window load handler starts it after setTimeout(start_timeout_ms)
]
LATE_STARTS: tuple[LateStart, ...] = ("inline", "domcontentloaded", "load")
LateFailure = Literal[
    "http_500",  # the endpoint answers HTTP 500; the script only logs console.error
    "hang",  # the endpoint never answers (until the client goes or the simulator stops)
    "js_error",  # the script throws an uncaught TypeError before fetching anything
]
LATE_FAILURES: tuple[LateFailure, ...] = ("http_500", "hang", "js_error")
LATE_DELAY_RANGE_MS = (200, 2000)  # server-side wait of each late data request
LATE_START_TIMEOUT_RANGE_MS = (0, 100)  # start "load": setTimeout before the fetch
LATE_JSON = "attachments.json"
LATE_FRAGMENT = "attachments_fragment"
COMMENTS_JSON = "comments.json"
MORE_QUERY = "part=more"
EXTRA_DELAY_RANGE_MS = (300, 900)  # server-side wait of comments.json and ?part=more
MARKUPS: tuple[Markup, ...] = (
    "attachment_href",
    "download_href",
    "download_attr",
    "aria_title",
    "click_nav",
    "click_anchor",
    "icon",
    "click_title",
)
SUPPLIER_MARKUPS: tuple[SupplierMarkup, ...] = (
    "data_attr",
    "class",
    "info",
    "testid",
    "none",
    "empty_first",
)
DISPOSITIONS: tuple[Disposition, ...] = ("filename", "filename_star", "both", "none")
RequisitionKind = Literal["ok", "empty", "error"]
RequisitionLink = Literal["number", "requisition", "purchase_requisition", "requisicao"]
REQUISITION_LINKS: tuple[RequisitionLink, ...] = (
    "number",
    "requisition",
    "purchase_requisition",
    "requisicao",
)
Outcome = Literal[
    "COMPLETED", "PARTIAL", "FAILED", "NO_ATTACHMENTS", "PO_NOT_FOUND", "PR_NOT_ACCESSIBLE"
]
Source = Literal["PO", "PR"]

FILE_PATHS: tuple[str, ...] = ("/attachments/", "/file_download/", "/files/")
FIRST_FILE_ID = 700_001
FIRST_LINK_ID = 900_001
FIRST_COMMENT_ID = 510_001
INTERNAL_ID_RANGE = (40_000_000, 59_999_999)  # internal ids that are not PO numbers
SHADOW_NUMBER_RANGE = (90_000_000, 99_999_999)  # numbers of shadow POs
FIRST_PR_NUMBER = 3_141_001
BIG_FILE_RANGE = (20 * 1024 * 1024, 30 * 1024 * 1024)


class ExpectedFile(NamedTuple):
    """A file a correct downloader saves for a PO."""

    sha256: str
    size: int
    source: Source
    name: str


@dataclass(eq=False)
class SimFile:
    """One attachment as served and as linked from its page."""

    id: int
    type: FileType
    size: int
    name: str  # the server's own name, sent in Content-Disposition unless disposition is none
    label: str  # the name shown in the page markup
    markup: Markup
    disposition: Disposition
    source: Source = "PO"
    absolute: bool = False  # the page links the absolute URL
    duplicate_link: bool = False  # linked a second time (absolute, download attribute)
    serves_html: bool = False  # the URL answers an HTML error page with HTTP 200 instead
    seed: int = 0
    mail: MailTraits | None = None  # an e-mail file's traits (None: drawn entirely)
    place: str = "header"  # "header", "line 2", "comment by A at D" ("requisition ..." on PRs)
    dl: ClickDl = "nav"  # click_title: what its click does
    hostile: HostileAnswer | None = None  # what the URL answers instead (hostile profile)
    other_host: bool = False  # linked absolute under another name of the simulator, no sign-in

    @property
    def delivered(self) -> bool:
        """Whether a correct downloader ends up with the file's bytes."""
        return not self.serves_html and (self.hostile is None or self.hostile.ends)

    @property
    def url_path(self) -> str:
        """Path the page links to (click-only markups: the URL their script opens)."""
        if self.markup == "click_title":
            return f"/file_download/{self.id}" + ("?dl=1" if self.dl == "nav" else "")
        if self.markup == "attachment_href":
            return f"/attachments/{self.id}"
        if self.markup == "icon":
            return f"/attachments/{self.id}/{quote(self.label)}"
        if self.markup == "download_href" or self.markup == "click_anchor":
            return f"/file_download/{self.id}"
        if self.markup == "click_nav":
            return f"/file_download/{self.id}?dl=1"
        return f"/files/{self.id}"

    @property
    def has_href(self) -> bool:
        """False for click-only elements, which have no URL in the markup."""
        return self.markup not in CLICK_MARKUPS

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.type]

    @property
    def ascii_name(self) -> str:
        """The `filename=` fallback used next to `filename*` (disposition "both")."""
        folded = unicodedata.normalize("NFKD", self.name).encode("ascii", "ignore").decode()
        return "".join("_" if (c in '"\\' or ord(c) < 32 or ord(c) == 127) else c for c in folded)

    @property
    def content_disposition(self) -> str | None:
        """The Content-Disposition header value, or None when the server sends none."""
        star = "filename*=UTF-8''" + quote(self.name, safe="")
        if self.disposition == "filename":
            return f'attachment; filename="{self.name}"'
        if self.disposition == "filename_star":
            return f"attachment; {star}"
        if self.disposition == "both":
            return f'attachment; filename="{self.ascii_name}"; {star}'
        return None

    @property
    def markup_names(self) -> tuple[str | None, str | None, str | None, str | None]:
        """(download attribute, title, aria-label, link text) as the page shows them."""
        label = self.label
        if self.markup in ("attachment_href", "download_href"):
            return None, None, None, label
        if self.markup == "download_attr":
            return label, None, None, "Download"
        if self.markup == "aria_title":
            return None, label, "file attachment", "Open"
        if self.markup in ("click_nav", "click_anchor"):
            return None, None, f"file attachment: {label}", label
        if self.markup == "click_title":
            return None, label, None, label
        return None, None, None, None  # icon: nothing but the URL

    @property
    def expected_name(self) -> str:
        """The raw name per the reference's order: filename*, filename, download attribute,
        title, aria-label, link text, last URL path segment."""
        if self.disposition != "none":
            return self.name
        for candidate in self.markup_names:
            if candidate and candidate.strip():
                return candidate
        return self.label  # the icon markup's last URL path segment, unquoted

    @property
    def is_pdf(self) -> bool:
        """Whether the page shows this attachment as a PDF (decides the PR fallback)."""
        return self.expected_name.lower().endswith(".pdf")

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the file's bytes (computed on first use, then cached)."""
        return content_sha256(self.seed, self.id, self.type, self.size, mail=self.mail)

    @property
    def is_email(self) -> bool:
        """An `.msg` or `.eml` file (malformed or not)."""
        return self.type in MAIL_TYPES

    @cached_property
    def email(self) -> MailSummary | None:
        """What the e-mail holds (subject, sender, body start, attachments by SHA-256);
        None for other files."""
        if not self.is_email:
            return None
        return mail_summary(self.seed, self.id, self.type, self.mail)

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The file's bytes in pieces."""
        return iter_content(self.seed, self.id, self.type, self.size, chunk_size, self.mail)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "size": self.size,
            "sha256": self.sha256,
            "name": self.name,
            "label": self.label,
            "expected_name": self.expected_name,
            "markup": self.markup,
            "disposition": self.disposition,
            "content_disposition": self.content_disposition,
            "content_type": self.content_type,
            "url_path": self.url_path,
            "absolute": self.absolute,
            "duplicate_link": self.duplicate_link,
            "serves_html": self.serves_html,
            "source": self.source,
            "email": self.email.to_dict() if self.email else None,
            "place": self.place,
            "click_dl": self.dl if self.markup == "click_title" else None,
            "hostile": self.hostile.to_dict() if self.hostile else None,
            "other_host": self.other_host,
        }


@dataclass(frozen=True)
class SimLink:
    """A URL or text attachment: no bytes, never fetched, shown in one of the page's areas."""

    id: int
    markup: LinkMarkup
    value: str  # the URL, or the text
    name: str  # the link text (a text attachment: its text)
    place: str
    source: Source = "PO"

    @property
    def kind(self) -> Literal["url", "text"]:
        return "text" if self.markup == "text" else "url"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "markup": self.markup,
            "name": self.name,
            "value": self.value,
            "place": self.place,
            "source": self.source,
        }


@dataclass(frozen=True)
class SimComment:
    """One comment of a page's comments area."""

    id: int
    author: str
    datetime: str  # the <time datetime> value, e.g. "2024-03-01T10:22"
    shown: str  # the date as shown, e.g. "03/01/24 10:22 AM"
    body: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "author": self.author,
            "datetime": self.datetime,
            "shown": self.shown,
            "body": self.body,
        }


def place_prefix(source: Source) -> str:
    """What starts a place on a requisition page ("" on a PO page)."""
    return "requisition " if source == "PR" else ""


def header_place(source: Source) -> str:
    return place_prefix(source) + "header"


def line_place(source: Source, line: int) -> str:
    return f"{place_prefix(source)}line {line}"


def comment_place(source: Source, comment: SimComment) -> str:
    return f"{place_prefix(source)}comment by {comment.author} at {comment.shown}"


@dataclass(frozen=True)
class CommentsFill:
    """How a page's comments arrive by script after load (the `late_comments_*` traits): the
    `#comments` container is empty (with a loading sign when `sign`), then filled from
    `<page>/comments.json`, which waits `delay_ms` on the server."""

    sign: bool
    delay_ms: int

    @property
    def trait(self) -> Trait:
        return "late_comments_sign" if self.sign else "late_comments_quiet"

    def data_path(self, page_path: str) -> str:
        return f"{page_path}/{COMMENTS_JSON}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "trait": self.trait,
            "sign": self.sign,
            "delay_ms": self.delay_ms,
            "endpoint": COMMENTS_JSON,
        }


@dataclass(frozen=True)
class MoreFill:
    """Header files appended by script after load (the `late_more` trait): the last `count`
    header files are not in the HTML; `<page>/attachments.json?part=more` answers them after
    `delay_ms`. No loading sign."""

    count: int
    delay_ms: int

    def data_path(self, page_path: str) -> str:
        return f"{page_path}/{LATE_JSON}?{MORE_QUERY}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "trait": "late_more",
            "count": self.count,
            "delay_ms": self.delay_ms,
            "endpoint": f"{LATE_JSON}?{MORE_QUERY}",
        }


class _Areas:
    """Mixin: a page's files and links by area (header, lines, comments)."""

    files: tuple[SimFile, ...]
    links: tuple[SimLink, ...]
    comments: tuple[SimComment, ...]
    comments_fill: CommentsFill | None
    more: MoreFill | None
    late: LateFill | None
    source_kind: Source

    @property
    def header_files(self) -> tuple[SimFile, ...]:
        place = header_place(self.source_kind)
        return tuple(f for f in self.files if f.place == place)

    @property
    def html_header_files(self) -> tuple[SimFile, ...]:
        """The header files in the page's HTML (late_more: without the appended ones)."""
        files = self.header_files
        return files[: len(files) - self.more.count] if self.more else files

    @property
    def more_files(self) -> tuple[SimFile, ...]:
        """The header files a script appends (late_more)."""
        files = self.header_files
        return files[len(files) - self.more.count :] if self.more else ()

    @property
    def line_count(self) -> int:
        """Lines referenced by files or links (the page may show more)."""
        items: tuple[SimFile | SimLink, ...] = (*self.files, *self.links)
        lines = [
            int(item.place.rsplit(" ", 1)[1])
            for item in items
            if item.place.startswith(place_prefix(self.source_kind) + "line ")
        ]
        return max(lines, default=0)

    def in_area(self, place: str) -> tuple[tuple[SimFile, ...], tuple[SimLink, ...]]:
        """(files, links) shown at this place."""
        return (
            tuple(f for f in self.files if f.place == place),
            tuple(k for k in self.links if k.place == place),
        )

    @property
    def html_files(self) -> tuple[SimFile, ...]:
        """Files in the page's HTML as served, in page order (not those a script brings)."""
        later = {f.id for f in self.more_files}
        if self.late is not None:
            later |= {f.id for f in self.header_files}
        if self.comments_fill is not None:
            later |= {f.id for f in self.files if " comment by " in f" {f.place}"}
        return tuple(f for f in self.files if f.id not in later)


@dataclass(frozen=True)
class LateFill:
    """How a page's attachment list arrives by script after load (the `late_*` traits).

    The container is empty at first, with no loading marker. The data request waits
    `delay_ms` on the server (`late_two_parts`: `?part=1` waits `delay_ms`, `?part=2` waits
    `part2_delay_ms`).
    """

    trait: Trait
    start: LateStart
    delay_ms: int
    part2_delay_ms: int = 0
    start_timeout_ms: int = 0
    failure: LateFailure | None = None  # late_broken only

    @property
    def broken(self) -> bool:
        """The list never arrives."""
        return self.failure is not None

    @property
    def endpoint(self) -> str:
        """Last path segment of the data URL under the page's path."""
        return LATE_FRAGMENT if self.trait == "late_fragment" else LATE_JSON

    @property
    def fill_ms(self) -> int:
        """Least time after the script starts before the list is complete (server delays)."""
        return self.start_timeout_ms + self.delay_ms + self.part2_delay_ms

    def data_path(self, page_path: str) -> str:
        return f"{page_path}/{self.endpoint}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "trait": self.trait,
            "start": self.start,
            "delay_ms": self.delay_ms,
            "part2_delay_ms": self.part2_delay_ms,
            "start_timeout_ms": self.start_timeout_ms,
            "failure": self.failure,
            "endpoint": self.endpoint,
        }


def late_part(files: Sequence[SimFile], part: int | None) -> tuple[SimFile, ...]:
    """The files of one part of a `late_two_parts` list (None: the whole list). Part 1 is the
    first half, at least one file; part 2 the rest."""
    if part is None:
        return tuple(files)
    split = max(1, len(files) // 2)
    return tuple(files[:split] if part == 1 else files[split:])


@dataclass(eq=False)
class SimRequisition(_Areas):
    """A requisition (PR) page linked from a PO."""

    number: str
    kind: RequisitionKind
    link: RequisitionLink  # text of the link on the PO page
    absolute: bool  # the PO page links the absolute URL
    files: tuple[SimFile, ...] = ()
    traits: frozenset[Trait] = frozenset()  # PR_TRAITS only
    late: LateFill | None = None  # set when a late_* trait is
    links: tuple[SimLink, ...] = ()
    comments: tuple[SimComment, ...] = ()
    comments_fill: CommentsFill | None = None  # set when a late_comments_* trait is
    more: MoreFill | None = None  # never on a requisition today
    source_kind: Source = "PR"

    @property
    def url_path(self) -> str:
        return f"/requisition_headers/{self.number}"

    @property
    def broken(self) -> bool:
        """The page's attachment list never arrives (late_broken)."""
        return self.late is not None and self.late.broken

    @property
    def link_text(self) -> str:
        return {
            "number": f"Requisition #{self.number}",
            "requisition": "Requisition",
            "purchase_requisition": "Purchase Requisition",
            "requisicao": "Requisição",
        }[self.link]

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "link": self.link,
            "link_text": self.link_text,
            "absolute": self.absolute,
            "url_path": self.url_path,
            "traits": sorted(self.traits),
            "late": self.late.to_dict() if self.late else None,
            "files": [f.to_dict() for f in self.files],
            "links": [k.to_dict() for k in self.links],
            "comments": [c.to_dict() for c in self.comments],
            "late_comments": self.comments_fill.to_dict() if self.comments_fill else None,
        }


@dataclass(eq=False)
class SimPO(_Areas):
    """One purchase order: how its page looks and what a correct downloader ends with.

    A shadow PO (`shadow_of` set) is not in `Catalog.pos`: its internal id is another PO's
    number, so it owns the page at that PO's `/order_headers/{number}`.
    """

    number: str
    index: int
    recipe: str
    page: PageKind
    supplier: str | None  # the name on the page; None when the page shows none
    supplier_markup: SupplierMarkup
    traits: frozenset[Trait] = frozenset()
    files: tuple[SimFile, ...] = ()
    requisition: SimRequisition | None = None
    lazy_delay_ms: int = 0  # lazy_attachments: delay before the script inserts the links
    late: LateFill | None = None  # set when a late_* trait is
    internal_id: str = ""  # the page's id; "" means the number
    id_mode: IdMode = "same"
    heading: Heading = "purchase_order"
    title_style: TitleStyle = "dash"
    links: tuple[SimLink, ...] = ()
    comments: tuple[SimComment, ...] = ()
    comments_fill: CommentsFill | None = None  # set when a late_comments_* trait is
    more: MoreFill | None = None  # set when the late_more trait is
    shadow_of: str | None = None  # a shadow PO: the number of the PO whose address it has
    hostile: HostileAnswer | None = None  # what the page answers instead (hostile profile)
    source_kind: Source = "PO"
    expected_outcome: Outcome = field(init=False)
    uses_requisition: bool = field(init=False)  # a correct downloader opens the PR page

    def __post_init__(self) -> None:
        if not self.internal_id:
            self.internal_id = self.number
        self.expected_outcome, self.uses_requisition = _expected(self)

    @property
    def url_path(self) -> str:
        return f"/order_headers/{self.internal_id}"

    @property
    def heading_text(self) -> str:
        prefix = "Purchase Order" if self.heading == "purchase_order" else "PO"
        return f"{prefix} #{self.number}"

    @property
    def title(self) -> str:
        if self.title_style == "dash":
            return f"Purchase Order #{self.number} - Coupa"
        return f"PO #{self.number} | Coupa"

    @property
    def page_refused(self) -> bool:
        """The page never answers itself (a hostile answer every time): nothing can be read,
        the PO ends FAILED."""
        return self.hostile is not None and not self.hostile.ends

    @property
    def unreadable(self) -> bool:
        """No attachment of this PO can be known: an error page, a list that never arrives,
        a page that never answers."""
        return self.is_error_page or self.late_failed or self.page_refused

    @property
    def expected_links(self) -> int:
        """URL and text attachments on the pages a correct downloader reads."""
        if self.unreadable:
            return 0
        count = len(self.links)
        pr = self.requisition
        if self.uses_requisition and pr is not None and pr.kind == "ok":
            count += len(pr.links)
        return count

    @property
    def is_error_page(self) -> bool:
        return self.page != "ok"

    @property
    def late_failed(self) -> bool:
        """A list a correct downloader needs never arrives (the PO's, or the PR's when the
        fallback is taken): the PO ends FAILED with nothing saved."""
        if self.is_error_page:
            return False
        if self.late is not None and self.late.broken:
            return True
        pr = self.requisition
        return self.uses_requisition and pr is not None and pr.broken

    @property
    def expected_supplier(self) -> str | None:
        """The supplier a downloader reads from the page; None when the page has none."""
        return None if self.is_error_page or self.page_refused else self.supplier

    @property
    def expected_found(self) -> int:
        """Attachments found on the pages a correct downloader visits (distinct URLs)."""
        if self.unreadable:
            return 0
        found = len(self.files)
        if self.uses_requisition and self.requisition and self.requisition.kind == "ok":
            found += len(self.requisition.files)
        return found

    @property
    def saved_files(self) -> tuple[SimFile, ...]:
        """The files a correct downloader saves, PO files first."""
        if self.unreadable:
            return ()
        saved = [f for f in self.files if f.delivered]
        pr = self.requisition
        if self.uses_requisition and pr is not None and pr.kind == "ok":
            saved += [f for f in pr.files if f.delivered]
        return tuple(saved)

    @property
    def expected_files(self) -> list[ExpectedFile]:
        """(sha256, size, source, raw name) of every file a correct downloader saves."""
        return [ExpectedFile(f.sha256, f.size, f.source, f.expected_name) for f in self.saved_files]

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "internal_id": self.internal_id,
            "expected_internal_id": self.internal_id,
            "id_mode": self.id_mode,
            "shadow_of": self.shadow_of,
            "heading": self.heading_text,
            "title": self.title,
            "url_path": self.url_path,
            "recipe": self.recipe,
            "page": self.page,
            "supplier": self.supplier,
            "supplier_markup": self.supplier_markup,
            "traits": sorted(self.traits),
            "lazy_delay_ms": self.lazy_delay_ms,
            "late": self.late.to_dict() if self.late else None,
            "late_failed": self.late_failed,
            "hostile": self.hostile.to_dict() if self.hostile else None,
            "files": [f.to_dict() for f in self.files],
            "links": [k.to_dict() for k in self.links],
            "comments": [c.to_dict() for c in self.comments],
            "late_comments": self.comments_fill.to_dict() if self.comments_fill else None,
            "late_more": self.more.to_dict() if self.more else None,
            "expected_links": self.expected_links,
            "requisition": self.requisition.to_dict() if self.requisition else None,
            "expected_outcome": self.expected_outcome,
            "expected_supplier": self.expected_supplier,
            "expected_found": self.expected_found,
            "uses_requisition": self.uses_requisition,
            "expected_files": [f._asdict() for f in self.expected_files],
        }


def _saved_status(files: Sequence[SimFile]) -> Outcome:
    saved = sum(1 for f in files if f.delivered)
    if saved == len(files):
        return "COMPLETED"
    return "PARTIAL" if saved else "FAILED"


def _expected(po: SimPO) -> tuple[Outcome, bool]:
    """The outcome per the reference, and whether the requisition is visited."""
    if po.page != "ok":
        return "PO_NOT_FOUND", False
    if po.page_refused:
        return "FAILED", False  # the page never answers itself: retries, then FAILED
    if po.late is not None and po.late.broken:
        return "FAILED", False  # the downloader cannot know the list: retries, then FAILED
    files = po.files
    if files and any(f.is_pdf for f in files):
        return _saved_status(files), False
    pr = po.requisition
    if pr is None:
        return ("NO_ATTACHMENTS" if not files else _saved_status(files)), False
    if pr.kind == "error":
        return "PR_NOT_ACCESSIBLE", True
    if pr.broken:
        return "FAILED", True
    if not pr.files:
        return ("NO_ATTACHMENTS" if not files else _saved_status(files)), True
    return _saved_status([*files, *pr.files]), True


class Catalog:
    """All POs, requisitions and files of one simulated tenant."""

    def __init__(
        self,
        pos: Sequence[SimPO],
        *,
        seed: int,
        profile: str,
        shadows: Sequence[SimPO] = (),
    ) -> None:
        self.seed = seed
        self.profile = profile
        self.pos: list[SimPO] = list(pos)
        self.shadow_pos: list[SimPO] = list(shadows)
        self._pos = {po.number: po for po in self.pos}
        self._pages = {po.internal_id: po for po in (*self.pos, *self.shadow_pos)}
        self._prs: dict[str, SimRequisition] = {}
        self._files: dict[int, SimFile] = {}
        for po in (*self.pos, *self.shadow_pos):
            for f in po.files:
                self._files[f.id] = f
            if po.requisition is not None:
                self._prs[po.requisition.number] = po.requisition
                for f in po.requisition.files:
                    self._files[f.id] = f

    @classmethod
    def build(cls, config: SimConfig) -> Catalog:
        """The catalog for a configuration (cheap: no file bytes are generated)."""
        return _Builder(config).build()

    def po(self, number: str | int) -> SimPO:
        """The PO with this number (digits). Raises KeyError when there is none."""
        return self._pos[str(number)]

    def requisition(self, number: str | int) -> SimRequisition:
        """The requisition with this number. Raises KeyError when there is none."""
        return self._prs[str(number)]

    def file(self, file_id: int | str) -> SimFile:
        """The file with this id. Raises KeyError when there is none."""
        return self._files[int(file_id)]

    @property
    def requisitions(self) -> list[SimRequisition]:
        return list(self._prs.values())

    @property
    def files(self) -> list[SimFile]:
        return list(self._files.values())

    def find_po(self, number: str) -> SimPO | None:
        """The PO (of `pos`) with this number."""
        return self._pos.get(number)

    def find_page(self, internal_id: str) -> SimPO | None:
        """The PO (shadow POs included) whose page is `/order_headers/{internal_id}`."""
        return self._pages.get(internal_id)

    def search(self, keyword: str) -> list[SimPO]:
        """POs and shadow POs that exist (no error page) whose number contains `keyword`,
        in list order (the catalog's, then the shadows)."""
        return [
            po for po in (*self.pos, *self.shadow_pos) if po.page == "ok" and keyword in po.number
        ]

    def find_requisition(self, number: str) -> SimRequisition | None:
        return self._prs.get(number)

    def find_file(self, file_id: int) -> SimFile | None:
        return self._files.get(file_id)

    def summary(self) -> dict[str, Any]:
        """Counts for a person: POs by outcome, files, total bytes."""
        outcomes: dict[str, int] = {}
        for po in self.pos:
            outcomes[po.expected_outcome] = outcomes.get(po.expected_outcome, 0) + 1
        return {
            "seed": self.seed,
            "profile": self.profile,
            "pos": len(self.pos),
            "first_po": self.pos[0].number if self.pos else None,
            "last_po": self.pos[-1].number if self.pos else None,
            "requisitions": len(self._prs),
            "files": len(self._files),
            "bytes": sum(f.size for f in self._files.values()),
            "outcomes": dict(sorted(outcomes.items())),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (computes every file's SHA-256 on first call)."""
        return {
            "seed": self.seed,
            "profile": self.profile,
            "summary": self.summary(),
            "pos": [po.to_dict() for po in self.pos],
            "shadow_pos": [po.to_dict() for po in self.shadow_pos],
        }

    def to_json(self) -> str:
        """`to_dict()` as JSON text; the same seed and settings give the same text."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, indent=1)


# ---------------------------------------------------------------------------------------------
# Generation


@dataclass(frozen=True)
class _FileSpec:
    type: FileType
    markup: Markup = "attachment_href"
    disposition: Disposition = "filename"
    name: str | None = None  # server name; drawn at random when None
    label: str | None = None  # markup name; the server name when None
    serves_html: bool = False
    duplicate_link: bool = False
    big: bool = False
    size: int | None = None
    absolute: bool | None = None  # drawn at random when None
    mail: MailTraits | None = None  # e-mail files: what the e-mail must hold
    area: str = "header"  # "header", "line N" or "comment N" (the page's N-th comment)
    dl: ClickDl = "nav"  # click_title: what its click does
    hostile: HostileAnswer | None = None  # what the URL answers instead of the file
    other_host: bool = False  # linked under another host name of the simulator


@dataclass(frozen=True)
class _LinkSpec:
    markup: LinkMarkup
    area: str = "header"  # as _FileSpec.area
    value: str | None = None  # the URL (or text); drawn when None
    name: str | None = None  # the link text; drawn when None


@dataclass(frozen=True)
class _PRSpec:
    kind: RequisitionKind
    link: RequisitionLink
    absolute: bool = False
    files: tuple[_FileSpec, ...] = ()
    traits: tuple[Trait, ...] = ()
    links: tuple[_LinkSpec, ...] = ()
    comments: int = 0  # at least this many comments (more when an area names one)

    def __post_init__(self) -> None:
        if not set(self.traits) <= PR_TRAITS:
            raise ValueError(f"requisition pages take only {sorted(PR_TRAITS)}")
        if self.traits and self.kind == "error":
            raise ValueError("an error page has no attachment list")
        _check_late(self.traits, self.files)
        _check_areas(self.traits, self.files, self.links, self.comments)


@dataclass(frozen=True)
class _Recipe:
    name: str
    page: PageKind = "ok"
    supplier_markup: SupplierMarkup = "data_attr"
    supplier: str | None = None  # drawn at random when None
    traits: tuple[Trait, ...] = ()
    files: tuple[_FileSpec, ...] = ()
    pr: _PRSpec | None = None
    id_mode: IdMode = "same"
    links: tuple[_LinkSpec, ...] = ()
    comments: int = 0  # at least this many comments (more when an area names one)
    more_files: tuple[_FileSpec, ...] = ()  # late_more: 1..len of these are appended
    hostile: HostileAnswer | None = None  # what the PO's page answers instead (hostile)

    def __post_init__(self) -> None:
        _check_late(self.traits, self.files)
        _check_areas(self.traits, self.files, self.links, self.comments)
        if ("late_more" in self.traits) != bool(self.more_files):
            raise ValueError("late_more and more_files go together")
        if self.more_files and any(f.area != "header" for f in self.more_files):
            raise ValueError("appended files are header files")

    @property
    def repeatable(self) -> bool:
        """Whether later POs may repeat this recipe (big files stay unique)."""
        return not any(f.big for f in self.files)


def _comment_count(files: Sequence[_FileSpec], links: Sequence[_LinkSpec], comments: int) -> int:
    """Comments a page has: at least `comments`, and every one an area names."""
    specs: tuple[_FileSpec | _LinkSpec, ...] = (*files, *links)
    named = [int(x.area.split()[1]) for x in specs if x.area.startswith("comment ")]
    return max([comments, *named])


def _check_areas(
    traits: Sequence[Trait],
    files: Sequence[_FileSpec],
    links: Sequence[_LinkSpec],
    comments: int,
) -> None:
    """Areas are "header", "line N" or "comment N"; late comments need a comment; a late
    list's page has nothing but header files (its script owns the container)."""
    specs: tuple[_FileSpec | _LinkSpec, ...] = (*files, *links)
    for x in specs:
        kind, _, n = x.area.partition(" ")
        if not (x.area == "header" or (kind in ("line", "comment") and n.isdigit() and int(n))):
            raise ValueError(f"unknown area {x.area!r}")
    late_comments = [t for t in traits if t in COMMENT_TRAITS]
    if len(late_comments) > 1:
        raise ValueError("one way of filling comments per page")
    if late_comments and not _comment_count(files, links, comments):
        raise ValueError("late comments need a comment")
    late = [t for t in traits if t in LATE_TRAITS or t in ("lazy_attachments", "late_more")]
    if late and links:
        raise ValueError("a late or lazy list's page has no links")
    if len(late) > 1:
        raise ValueError(f"one late or lazy trait per page, got {list(traits)}")


def _check_late(traits: Sequence[Trait], files: Sequence[_FileSpec]) -> None:
    """At most one way of filling the list late; two parts need two files; a broken list
    has no files (they could never be found)."""
    late = [t for t in traits if t in LATE_TRAITS]
    if len(late) > 1 or (late and "lazy_attachments" in traits):
        raise ValueError(f"one late or lazy trait per page, got {list(traits)}")
    if "late_two_parts" in late and len(files) < 2:
        raise ValueError("late_two_parts needs at least 2 files")
    if "late_broken" in late and files:
        raise ValueError("a late_broken list has no files")


F = _FileSpec
L = _LinkSpec
M = MailTraits
T = TypeVar("T")
LONG_NAME = ("Quarterly maintenance agreement and service level annex " * 6)[:296] + ".pdf"

RECIPES: tuple[_Recipe, ...] = (
    # Error pages.
    _Recipe("error_oops", page="not_found"),
    _Recipe("error_not_authorized", page="not_authorized"),
    _Recipe("error_access_denied", page="access_denied"),
    _Recipe("error_portuguese", page="not_found_pt"),
    _Recipe("error_explanation", page="error_explanation"),
    _Recipe("error_http_404", page="http_404"),
    # Ordinary pages, one markup family each.
    _Recipe(
        "plain_links",
        supplier_markup="data_attr",
        files=(F("pdf", "attachment_href"), F("docx", "download_href", "none")),
    ),
    _Recipe(
        "download_attr_and_title",
        supplier_markup="class",
        traits=("toolbar",),
        files=(
            F("pdf", "download_attr", "none"),
            F("xlsx", "aria_title", "filename_star", name="Relatório final.xlsx"),
        ),
    ),
    _Recipe(
        "click_nav",
        supplier_markup="info",
        traits=("notice",),
        files=(
            F("pdf", "click_nav", "filename"),
            F("msg", "attachment_href", "both", mail=M(language="en", attachments=2, body="both")),
        ),
    ),
    _Recipe(
        "click_anchor",
        supplier_markup="testid",
        traits=("script_denied",),
        files=(
            F("pdf", "click_anchor", "filename_star", name="Relatório final.pdf"),
            F("txt", "attachment_href", "filename", name="note.txt", size=7),
        ),
    ),
    _Recipe(
        "lazy_no_supplier",
        supplier_markup="none",
        traits=("lazy_attachments",),
        files=(F("pdf", "attachment_href"), F("pdf", "download_href", "both")),
    ),
    _Recipe(
        "duplicate_link",
        supplier_markup="empty_first",
        files=(
            F("pdf", "attachment_href", "both", duplicate_link=True),
            F("docx", "download_href"),
        ),
    ),
    _Recipe(
        "duplicate_names",
        supplier_markup="data_attr",
        supplier="Müller & Söhne GmbH",
        files=(
            F("pdf", "attachment_href", "filename", name="invoice.pdf"),
            F("pdf", "download_href", "filename", name="invoice.pdf"),
        ),
    ),
    _Recipe(
        "hostile_names_a",
        supplier_markup="class",
        supplier="A/B Trading: Ltd",
        files=(
            F("pdf", "attachment_href", "filename", name="../../x.pdf"),
            F("pdf", "download_href", "filename_star", name="C:\\x.pdf"),
            F("pdf", "download_attr", "none", name="CON.pdf"),
        ),
    ),
    _Recipe(
        "hostile_names_b",
        supplier_markup="info",
        files=(
            F("pdf", "attachment_href", "filename", name=LONG_NAME),
            F("pdf", "download_href", "filename_star", name="Scan\x07\tpage 1.pdf", label="Scan"),
            F("pdf", "aria_title", "filename_star", name='Quote <draft>: "v2" | ok? *&.pdf'),
        ),
    ),
    _Recipe(
        "big_file",
        supplier_markup="testid",
        files=(F("pdf", "attachment_href", "filename", big=True), F("docx", "icon", "none")),
    ),
    _Recipe(
        "partial_html_instead",
        supplier_markup="data_attr",
        files=(F("pdf", "attachment_href"), F("docx", "download_href", serves_html=True)),
    ),
    _Recipe(
        "failed_html_instead",
        supplier_markup="class",
        files=(
            F("pdf", "attachment_href", serves_html=True),
            F("pdf", "download_href", "none", serves_html=True),
        ),
    ),
    _Recipe("no_attachments", supplier_markup="info"),
    _Recipe(
        "pr_empty_no_files",
        supplier_markup="testid",
        pr=_PRSpec("empty", "number"),
    ),
    _Recipe(
        "pr_files_no_po_files",
        supplier_markup="none",
        pr=_PRSpec(
            "ok",
            "requisition",
            files=(
                F("pdf", "attachment_href"),
                F("msg", "download_href", "filename_star", mail=M(nested=True, body="html")),
            ),
        ),
    ),
    _Recipe(
        "pr_files_po_not_pdf",
        supplier_markup="empty_first",
        files=(F("docx", "attachment_href"),),
        pr=_PRSpec(
            "ok",
            "purchase_requisition",
            absolute=True,
            files=(F("pdf", "download_attr", "none"), F("xlsx", "aria_title", "both")),
        ),
    ),
    _Recipe(
        "pr_error_no_files",
        supplier_markup="data_attr",
        pr=_PRSpec("error", "requisicao"),
    ),
    _Recipe(
        "pr_error_po_not_pdf",
        supplier_markup="class",
        files=(F("xlsx", "download_href"),),
        pr=_PRSpec("error", "number", absolute=True),
    ),
    _Recipe(
        "pr_empty_po_not_pdf",
        supplier_markup="info",
        files=(F("txt", "attachment_href"),),
        pr=_PRSpec("empty", "requisition"),
    ),
    _Recipe(
        "pdf_with_pr_link",
        supplier_markup="testid",
        files=(F("pdf", "attachment_href"),),
        pr=_PRSpec("ok", "number", files=(F("pdf", "attachment_href"),)),
    ),
    _Recipe(
        "not_pdf_no_pr",
        supplier_markup="none",
        files=(
            F("msg", "attachment_href", "both", mail=M(language="zh", attachments=1, body="plain")),
            F("xlsx", "download_href"),
        ),
    ),
    _Recipe(
        "all_traits",
        supplier_markup="empty_first",
        traits=("toolbar", "lazy_attachments", "notice"),
        files=(
            F("pdf", "click_nav", "both"),
            F("pdf", "download_attr", "none"),
            F("docx", "click_anchor", "filename"),
        ),
    ),
    _Recipe(
        "toolbar_titles",
        supplier_markup="data_attr",
        traits=("toolbar", "script_denied"),
        files=(F("pdf", "aria_title", "none"), F("pdf", "aria_title", "filename_star")),
    ),
    _Recipe(
        "many_files",
        supplier_markup="class",
        files=(
            F("pdf", "attachment_href"),
            F("pdf", "download_href", "filename_star"),
            F("docx", "download_attr", "none"),
            F("xlsx", "attachment_href", "both"),
            F(
                "eml",
                "download_href",
                mail=M(
                    language="pt",
                    attachments=2,
                    nested=True,
                    body="both",
                    hostile_name="../../escape.txt",
                ),
            ),
            F("txt", "icon", "none"),
        ),
    ),
    # Attachment lists filled by script after load, with no loading marker.
    _Recipe(
        "late_json_links",
        supplier_markup="data_attr",
        traits=("late_json", "toolbar"),
        files=(
            F("pdf", "attachment_href", "filename", absolute=True),
            F("docx", "click_nav", "both"),
            F("xlsx", "aria_title", "none", name='Budget </script> & "Q3" <v2>.xlsx'),
            F("txt", "icon", "none"),
        ),
    ),
    _Recipe(
        "late_fragment_links",
        supplier_markup="class",
        traits=("late_fragment", "notice"),
        files=(
            F("pdf", "download_attr", "none"),
            F(
                "msg",
                "click_anchor",
                "filename_star",
                mail=M(language="de", attachments=1, body="html", hostile_name="..\\..\\evil.bat"),
            ),
            F("pdf", "download_href", "filename", absolute=True),
        ),
    ),
    _Recipe(
        "late_two_parts_links",
        supplier_markup="info",
        traits=("late_two_parts",),
        files=(
            F("pdf", "attachment_href"),
            F("docx", "download_href", "filename_star"),
            F("pdf", "download_attr", "none"),
        ),
    ),
    _Recipe("late_json_empty", supplier_markup="testid", traits=("late_json",)),
    _Recipe("late_broken_a", supplier_markup="empty_first", traits=("late_broken",)),
    _Recipe("late_broken_b", supplier_markup="none", traits=("late_broken", "toolbar")),
    _Recipe("late_broken_c", supplier_markup="testid", traits=("late_broken", "notice")),
    _Recipe(  # the PO's own list arrives late and empty: then the fallback
        "pr_late_json_no_po_files",
        supplier_markup="data_attr",
        traits=("late_json",),
        pr=_PRSpec(
            "ok",
            "requisition",
            traits=("late_json",),
            files=(
                F("pdf", "click_anchor", "filename"),
                F("xlsx", "aria_title", "both"),
                F("txt", "icon", "none"),
            ),
        ),
    ),
    _Recipe(
        "pr_late_two_parts_po_not_pdf",
        supplier_markup="class",
        files=(F("docx", "attachment_href"),),
        pr=_PRSpec(
            "ok",
            "number",
            absolute=True,
            traits=("late_two_parts",),
            files=(
                F("pdf", "attachment_href", absolute=True),
                F("msg", "download_attr", "none", mail=M(malformed=True)),
                F("pdf", "click_nav", "filename_star"),
            ),
        ),
    ),
    _Recipe(
        "pr_late_broken_no_po_files",
        supplier_markup="info",
        pr=_PRSpec("ok", "purchase_requisition", traits=("late_broken",)),
    ),
    # The PO's page is not at /order_headers/{number}: a search by number finds it.
    _Recipe(
        "id_not_found",
        supplier_markup="data_attr",
        id_mode="not_found",
        files=(F("pdf", "attachment_href"),),
    ),
    _Recipe(
        "id_other_po",
        supplier_markup="class",
        id_mode="other_po",
        files=(F("pdf", "download_href"), F("docx", "attachment_href", "both")),
    ),
    _Recipe(
        "click_title_spans",
        supplier_markup="info",
        files=(
            F("pdf", "click_title", "filename", dl="nav"),
            F("docx", "click_title", "filename_star", dl="anchor"),
            F("xlsx", "click_title", "both", dl="nav"),
        ),
    ),
    # Attachments beyond the header list: lines and comments.
    _Recipe(
        "line_and_comment_files",
        supplier_markup="testid",
        comments=2,
        files=(
            F("pdf", "attachment_href"),
            F("docx", "download_href", area="line 1"),
            F("xlsx", "attachment_href", "filename_star", area="comment 1"),
        ),
        links=(L("text", area="line 2"),),
    ),
    _Recipe(
        "late_comments_sign",
        supplier_markup="empty_first",
        traits=("late_comments_sign",),
        comments=2,
        files=(F("docx", "attachment_href"), F("pdf", "download_href", area="comment 2")),
    ),
    _Recipe(
        "late_comments_quiet",
        supplier_markup="data_attr",
        traits=("late_comments_quiet",),
        files=(
            F("pdf", "download_attr", "none"),
            F("docx", "click_title", "filename", dl="anchor", area="comment 1"),
        ),
    ),
    _Recipe(
        "late_more_links",
        supplier_markup="class",
        traits=("late_more",),
        files=(F("pdf", "attachment_href"), F("txt", "download_href", "filename_star")),
        more_files=(F("pdf", "download_href", "both"), F("xlsx", "aria_title", "none")),
    ),
    _Recipe(
        "url_and_text",
        supplier_markup="info",
        files=(F("pdf", "attachment_href"),),
        links=(L("url_marked"), L("url_download"), L("text")),
    ),
    # Heavy pages: big assets, polls, a refused analytics host, a long-poll.
    _Recipe("heavy_no_attachments", supplier_markup="testid", traits=("heavy",)),
    _Recipe(
        "heavy_pr_fallback",
        supplier_markup="data_attr",
        traits=("heavy", "toolbar"),
        files=(F("docx", "attachment_href"),),
        pr=_PRSpec("ok", "number", traits=("heavy",), files=(F("pdf", "download_href"),)),
    ),
    _Recipe(
        "heavy_files",
        supplier_markup="class",
        traits=("heavy",),
        files=(F("pdf", "attachment_href"), F("msg", "download_href", "filename_star")),
    ),
    _Recipe(
        "pr_lines_comments",
        supplier_markup="info",
        files=(F("xlsx", "attachment_href"),),
        pr=_PRSpec(
            "ok",
            "requisition",
            traits=("late_comments_quiet",),
            files=(
                F("pdf", "attachment_href"),
                F("docx", "download_href", "filename_star", area="line 1"),
                F("pdf", "click_title", "filename", dl="nav", area="comment 1"),
            ),
            links=(L("url_marked"), L("text", area="line 1")),
        ),
    ),
)
RECIPES_BY_NAME = {r.name: r for r in RECIPES}

SUPPLIERS: tuple[str, ...] = (
    "Acme Industrial Supply",
    "Müller & Söhne GmbH",
    "A/B Trading: Ltd",
    "Société Générale d'Équipement",
    "Northwind Traders",
    "Café Paulista Ltda.",
    "O'Brien & Sons",
    "Global Parts Co.",
    "São João Logística S.A.",
    "Nordic Steel AB",
    "Zürich Precision AG",
    "Kowalski i Synowie Sp. z o.o.",
    "Blue Ocean Shipping Inc.",
    "Østergaard Consulting ApS",
    "Initech LLC",
)

AUTHORS: tuple[str, ...] = (
    "Ana Souza",
    "Jürgen Weiß",
    "Priya Raman",
    "Tom O'Neill",
    "Marie Dubois",
    "Kenji Sato",
)
COMMENT_BODIES: tuple[str, ...] = (
    "Supplier sent the signed quote, attached.",
    "Updated delivery schedule below.",
    "Please review before approval.",
    "Segue a proposta revisada.",
    "Lieferschein anbei.",
)
URL_NAMES: tuple[str, ...] = ("Supplier specification", "Product datasheet", "Terms online")
DOWNLOAD_URL_NAMES: tuple[str, ...] = ("Specification.pdf", "Drawing rev B.pdf", "Datasheet")
TEXTS: tuple[str, ...] = (
    "Deliver to dock 4, Mon-Fri 8:00-16:00.",
    "Payment terms agreed: net 45 <per contract>.",
    "Entrega parcial autorizada & confirmada.",
)

_NAME_STEMS: dict[str, tuple[str, ...]] = {
    "pdf": ("Purchase Order", "Quote", "Invoice", "Scan_0001", "Proposta comercial", "Angebot"),
    "msg": ("RE Order confirmation", "FW: Delivery date", "Approval"),
    "eml": ("RE Quote", "Approval request", "Delivery confirmation"),
    "docx": ("Delivery note", "Statement of work", "Contrato de serviço"),
    "xlsx": ("Price list", "Cotização 2024", "Bill of materials"),
    "txt": ("notes", "readme", "shipping"),
}


class _Cycle(Generic[T]):
    """Values drawn in shuffled rounds: any `len(values)` draws in a row from the start of a
    round hold each value once, so a few pages cover every value."""

    def __init__(self, rng: random.Random, values: Sequence[T]) -> None:
        self._rng = rng
        self._values = list(values)
        self._round: list[T] = []

    def next(self) -> T:
        if not self._round:
            self._round = list(self._values)
            self._rng.shuffle(self._round)
        return self._round.pop()


class _Builder:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.seed = config.seed
        self.rng = random.Random(f"coupa-sim-catalog:{config.seed}:{config.profile}")
        # Late-list draws have their own generator: they leave the other draws as they were.
        self.late_rng = random.Random(f"coupa-sim-late:{config.seed}:{config.profile}")
        # PO and PR pages each cycle through the starts and failures: a few pages of either
        # show them all (three late_broken PO recipes: every failure on a PO page).
        self.late_starts = {s: _Cycle(self.late_rng, LATE_STARTS) for s in ("PO", "PR")}
        self.late_failures = {s: _Cycle(self.late_rng, LATE_FAILURES) for s in ("PO", "PR")}
        # Ids, headings, areas and links have theirs too.
        self.extra_rng = random.Random(f"coupa-sim-extra:{config.seed}:{config.profile}")
        self.next_file_id = FIRST_FILE_ID
        self.next_link_id = FIRST_LINK_ID
        self.next_comment_id = FIRST_COMMENT_ID
        self.taken_ids = {self._number(i) for i in range(config.pos)}
        self.shadows: list[SimPO] = []

    def build(self) -> Catalog:
        c = self.config
        if c.profile == "uniform":
            pos = [self._uniform_po(i) for i in range(c.pos)]
        elif c.profile == "hostile":
            pos = [self._po(i, recipe) for i, recipe in enumerate(self._hostile_recipes())]
        else:
            pos = [self._po(i, recipe) for i, recipe in enumerate(self._recipes())]
        return Catalog(pos, seed=c.seed, profile=c.profile, shadows=self.shadows)

    def _recipes(self) -> list[_Recipe]:
        """The recipe of each PO: the configured names cycled, else a shuffle of all recipes
        followed by random repeatable ones."""
        c = self.config
        if c.recipes is not None:
            named = [RECIPES_BY_NAME[name] for name in c.recipes]
            return [named[i % len(named)] for i in range(c.pos)]
        order = list(RECIPES)
        self.rng.shuffle(order)
        repeatable = [r for r in RECIPES if r.repeatable]
        return [order[i] if i < len(order) else self.rng.choice(repeatable) for i in range(c.pos)]

    def _hostile_recipes(self) -> list[_Recipe]:
        """The hostile cases, all in their documented order, or those `recipes` names."""
        from .hostile import hostile_recipes  # it builds on this module

        cases = hostile_recipes(self.config)
        names = self.config.recipes if self.config.recipes is not None else tuple(cases)
        return [cases[name] for name in names]

    def _number(self, index: int) -> str:
        return str(self.config.first_po_number + index)

    def _uniform_po(self, index: int) -> SimPO:
        c = self.config
        files = []
        for k in range(c.uniform_files):
            name = f"document_{k + 1}.pdf"
            files.append(
                SimFile(
                    id=self._file_id(),
                    type="pdf",
                    size=c.uniform_file_size,
                    name=name,
                    label=name,
                    markup="attachment_href",
                    disposition="filename",
                    seed=self.seed,
                )
            )
        return SimPO(
            number=self._number(index),
            index=index,
            recipe="uniform",
            page="ok",
            supplier=SUPPLIERS[index % len(SUPPLIERS)],
            supplier_markup="data_attr",
            files=tuple(files),
        )

    def _po(self, index: int, recipe: _Recipe) -> SimPO:
        rng = self.rng
        ok = recipe.page == "ok"
        supplier: str | None = None
        if ok and recipe.supplier_markup != "none":
            supplier = recipe.supplier or rng.choice(SUPPLIERS)
        comments = self._comments(_comment_count(recipe.files, recipe.links, recipe.comments))
        more_specs = recipe.more_files
        if more_specs:
            more_specs = more_specs[: self.extra_rng.randint(1, len(more_specs))]
        files = tuple(self._file(spec, "PO", comments) for spec in (*recipe.files, *more_specs))
        files = _area_order(files, "PO")
        pr = self._requisition(index, recipe.pr) if recipe.pr is not None else None
        traits = frozenset(recipe.traits)
        late = self._late(recipe.traits, "PO") if ok else None
        number = self._number(index)
        internal_id = number if recipe.id_mode == "same" else self._free_id(*INTERNAL_ID_RANGE)
        if recipe.id_mode == "other_po":
            self.shadows.append(self._shadow(number))
        return SimPO(
            number=number,
            index=index,
            recipe=recipe.name,
            page=recipe.page,
            supplier=supplier,
            supplier_markup=recipe.supplier_markup if ok else "none",
            traits=traits,
            files=files,
            requisition=pr,
            lazy_delay_ms=rng.randint(100, 400) if "lazy_attachments" in traits else 0,
            late=late,
            internal_id=internal_id,
            id_mode=recipe.id_mode,
            heading=self.extra_rng.choice(("purchase_order", "po")),
            title_style=self.extra_rng.choice(("dash", "pipe")),
            links=self._links(recipe.links, "PO", comments),
            comments=comments,
            comments_fill=self._comments_fill(recipe.traits),
            more=MoreFill(len(more_specs), self._extra_delay()) if more_specs else None,
            hostile=recipe.hostile,
        )

    def _requisition(self, index: int, spec: _PRSpec) -> SimRequisition:
        comments = self._comments(_comment_count(spec.files, spec.links, spec.comments))
        files = tuple(self._file(f, "PR", comments) for f in spec.files)
        return SimRequisition(
            number=str(FIRST_PR_NUMBER + index),
            kind=spec.kind,
            link=spec.link,
            absolute=spec.absolute,
            files=_area_order(files, "PR"),
            traits=frozenset(spec.traits),
            late=self._late(spec.traits, "PR"),
            links=self._links(spec.links, "PR", comments),
            comments=comments,
            comments_fill=self._comments_fill(spec.traits),
        )

    def _free_id(self, low: int, high: int) -> str:
        """An 8-digit number no PO, shadow PO or internal id has yet."""
        while True:
            candidate = str(self.extra_rng.randint(low, high))
            if candidate not in self.taken_ids:
                self.taken_ids.add(candidate)
                return candidate

    def _shadow(self, number: str) -> SimPO:
        """Another PO, not in the input lists, whose page is at `/order_headers/{number}`."""
        rng = self.extra_rng
        specs = (F("pdf", "attachment_href"), F("docx", "download_href", "filename_star"))
        return SimPO(
            number=self._free_id(*SHADOW_NUMBER_RANGE),
            index=-1,
            recipe="shadow",
            page="ok",
            supplier=rng.choice(SUPPLIERS),
            supplier_markup="data_attr",
            files=tuple(self._file(spec, "PO", ()) for spec in specs),
            internal_id=number,
            heading=rng.choice(("purchase_order", "po")),
            title_style=rng.choice(("dash", "pipe")),
            shadow_of=number,
        )

    def _extra_delay(self) -> int:
        return self.extra_rng.randint(*EXTRA_DELAY_RANGE_MS)

    def _comments_fill(self, traits: Sequence[Trait]) -> CommentsFill | None:
        trait = next((t for t in traits if t in COMMENT_TRAITS), None)
        if trait is None:
            return None
        return CommentsFill(sign=trait == "late_comments_sign", delay_ms=self._extra_delay())

    def _comments(self, count: int) -> tuple[SimComment, ...]:
        """`count` comments by distinct authors, oldest first."""
        rng = self.extra_rng
        authors = rng.sample(AUTHORS, count)
        day = rng.randint(1, 20)
        comments = []
        for k, author in enumerate(authors):
            month, hour, minute = 1 + (day + k) % 12, rng.randint(7, 18), rng.randint(0, 59)
            shown_hour = hour % 12 or 12
            comments.append(
                SimComment(
                    id=self.next_comment_id,
                    author=author,
                    datetime=f"2024-{month:02d}-{day + k:02d}T{hour:02d}:{minute:02d}",
                    shown=(
                        f"{month:02d}/{day + k:02d}/24 {shown_hour}:{minute:02d} "
                        f"{'AM' if hour < 12 else 'PM'}"
                    ),
                    body=rng.choice(COMMENT_BODIES),
                )
            )
            self.next_comment_id += 1
        return tuple(comments)

    def _links(
        self, specs: Sequence[_LinkSpec], source: Source, comments: Sequence[SimComment]
    ) -> tuple[SimLink, ...]:
        rng = self.extra_rng
        links = []
        for spec in specs:
            link_id = self.next_link_id
            self.next_link_id += 1
            if spec.markup == "url_marked":
                value = f"https://docs.supplier.example/specs/{link_id}"
                name = rng.choice(URL_NAMES)
            elif spec.markup in ("url_download", "url_file"):
                value = f"https://files.partner.example/download/{link_id}/spec.pdf"
                name = rng.choice(DOWNLOAD_URL_NAMES)
            else:
                value = name = rng.choice(TEXTS)
            value = spec.value if spec.value is not None else value
            name = spec.name if spec.name is not None else name
            place = _place(spec.area, source, comments)
            links.append(SimLink(link_id, spec.markup, value, name, place, source))
        return tuple(links)

    def _late(self, traits: Sequence[Trait], source: Source) -> LateFill | None:
        """Draw how a page's late list arrives (None: the page has no late_* trait)."""
        trait = next((t for t in traits if t in LATE_TRAITS), None)
        if trait is None:
            return None
        rng = self.late_rng
        start = self.late_starts[source].next()
        return LateFill(
            trait=trait,
            start=start,
            delay_ms=rng.randint(*LATE_DELAY_RANGE_MS),
            part2_delay_ms=rng.randint(*LATE_DELAY_RANGE_MS) if trait == "late_two_parts" else 0,
            start_timeout_ms=rng.randint(*LATE_START_TIMEOUT_RANGE_MS) if start == "load" else 0,
            failure=self.late_failures[source].next() if trait == "late_broken" else None,
        )

    def _file_id(self) -> int:
        file_id = self.next_file_id
        self.next_file_id += 1
        return file_id

    def _file(
        self, spec: _FileSpec, source: Source, comments: Sequence[SimComment] = ()
    ) -> SimFile:
        rng = self.rng
        name = spec.name or self._random_name(spec.type, spec.markup)
        if spec.size is not None:
            size = spec.size
        elif spec.big:
            size = rng.randint(*BIG_FILE_RANGE)
        else:
            size = self._random_size(spec.type)
        absolute = spec.absolute if spec.absolute is not None else rng.random() < 0.25
        file_id = self._file_id()
        mail = (spec.mail or MailTraits()) if spec.type in MAIL_TYPES else None
        # An e-mail's size is its content's; the size drawn above still moves the generator,
        # so the files after it are drawn as before.
        size = content_size(self.seed, file_id, spec.type, mail) or size
        return SimFile(
            id=file_id,
            type=spec.type,
            size=size,
            name=name,
            label=spec.label or name,
            markup=spec.markup,
            disposition=spec.disposition,
            source=source,
            absolute=absolute and spec.markup not in CLICK_MARKUPS,
            duplicate_link=spec.duplicate_link,
            serves_html=spec.serves_html,
            seed=self.seed,
            mail=mail,
            place=_place(spec.area, source, comments),
            dl=spec.dl,
            hostile=spec.hostile,
            other_host=spec.other_host,
        )

    def _random_name(self, file_type: str, markup: Markup) -> str:
        rng = self.rng
        stem = rng.choice(_NAME_STEMS[file_type])
        if markup == "icon":  # the name travels in the URL path: keep it URL-safe
            return f"{stem.replace(' ', '_').replace(':', '')}_{rng.randint(1, 999)}.{file_type}"
        if rng.random() < 0.5:
            stem = f"{stem} {rng.randint(1000, 99999)}"
        return f"{stem}.{file_type}"

    def _random_size(self, file_type: str) -> int:
        rng = self.rng
        if file_type == "txt":
            return rng.randint(5, 4000)
        low = 1024 if file_type == "pdf" else 200
        # Log-uniform between ~1 KB and ~3 MB: mostly small files, a few larger ones.
        return max(low, int(10 ** rng.uniform(3.0, 6.5)))


def _place(area: str, source: Source, comments: Sequence[SimComment]) -> str:
    """The place text of a spec's area ("comment N": the page's N-th comment)."""
    if area == "header":
        return header_place(source)
    kind, n = area.split()
    if kind == "line":
        return line_place(source, int(n))
    return comment_place(source, comments[int(n) - 1])


def _area_order(files: Sequence[SimFile], source: Source) -> tuple[SimFile, ...]:
    """Files in page order: header, then lines by number, then comments (stable)."""
    prefix = place_prefix(source)

    def rank(f: SimFile) -> tuple[int, int]:
        rest = f.place.removeprefix(prefix)
        if rest == "header":
            return 0, 0
        if rest.startswith("line "):
            return 1, int(rest.split()[1])
        return 2, 0

    return tuple(sorted(files, key=rank))
