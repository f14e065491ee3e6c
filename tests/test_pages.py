"""Page classification and discovery on HTML, without a browser."""

from __future__ import annotations

import math
import re

import pytest

from coupa_async.coupa.discover import read_page
from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import (
    PageKind,
    classify,
    parse_html,
    raise_for_verdict,
    retry_after_seconds,
)
from coupa_async.errors import (
    HostUnreachableError,
    RateLimitedError,
    SessionExpiredError,
    TransientError,
)

MARKERS = CoupaMarkers()
PO_URL = "https://acme.coupahost.com/order_headers/15262984"

ORDINARY = """<html><body><div class="notice">Your PO was updated</div>
<script>var message = "Access denied";</script>
<span data-supplier-name>Acme &amp; Co</span>
<a href="/attachments/1">invoice.pdf</a></body></html>"""


@pytest.mark.parametrize(
    ("status", "url", "html", "kind"),
    [
        (200, PO_URL, ORDINARY, PageKind.ORDINARY),
        (200, PO_URL, "<h1>Oops! We couldn't find what you wanted</h1>", PageKind.NOT_FOUND),
        (200, PO_URL, "<h1>Sorry, something is missing</h1>", PageKind.NOT_FOUND),
        (
            200,
            PO_URL,
            "<div class='flash_error'>You are not authorized</div>",
            PageKind.NOT_AUTHORISED,
        ),
        (200, PO_URL, "<div class='flash-error'>Access denied</div>", PageKind.NOT_AUTHORISED),
        (200, PO_URL, "<p>Desculpe, não encontramos o que você procurava</p>", PageKind.NOT_FOUND),
        (200, PO_URL, "<div id='error_explanation'>2 errors</div>", PageKind.NOT_FOUND),
        (200, PO_URL, "<p>ACCESS DENIED</p>", PageKind.NOT_AUTHORISED),
        (404, PO_URL, "<p>The page you were looking for doesn't exist</p>", PageKind.NOT_FOUND),
        (403, PO_URL, "<p>nope</p>", PageKind.NOT_AUTHORISED),
        (500, PO_URL, "", PageKind.TRANSIENT),
        (503, PO_URL, "", PageKind.HOST_DOWN),
        (429, PO_URL, "", PageKind.RATE_LIMITED),
        (200, "https://acme.coupahost.com/sessions/new?return_to=%2F", "<p>x</p>", PageKind.LOGIN),
        (200, "https://acme.okta.com/app/sso/saml", "<p>x</p>", PageKind.LOGIN),
        (200, "https://login.microsoftonline.com/abc/oauth2", "<p>x</p>", PageKind.LOGIN),
        (
            200,
            PO_URL,
            "<form action='/x'><input name=u><input type=password name=p></form>",
            PageKind.LOGIN,
        ),
    ],
)
def test_classify(status: int, url: str, html: str, kind: PageKind) -> None:
    assert classify(status, url, parse_html(html), MARKERS).kind is kind


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412475) == 5
    assert retry_after_seconds("soon") == 30
    verdict = classify(429, PO_URL, None, MARKERS, retry_after="3")
    assert verdict.retry_after_s == 3


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1000000000", 1e9),
        ("inf", math.inf),
        ("1e400", math.inf),
        ("-inf", 0.0),
        ("-5", 0.0),
        ("nan", 30.0),
        ("garbage", 30.0),
        ("9" * 5000, float("9" * 100)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 253402300799.0 - 1.5e9),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("", 30.0),
    ],
)
def test_any_retry_after_gives_seconds_and_never_raises(header: str, seconds: float) -> None:
    """What a host sends is parsed safely; the pause is capped by the host's gate."""
    assert retry_after_seconds(header, now=1.5e9) == pytest.approx(seconds)


def test_discovery_reads_supplier_attachments_and_requisition() -> None:
    html = """<html><body>
    <span data-supplier-name>  </span>
    <div class="supplier-info"><span>Müller &amp; Söhne</span></div>
    <div title="Attachments">
      <a href="/attachments/1">invoice.pdf</a>
      <a href="https://acme.coupahost.com/attachments/1" download="invoice.pdf">again</a>
      <a href="/file_download/2?x=1#top">Report</a>
      <a href="/files/3" download="order.msg">Download</a>
      <a href="/files/4" aria-label="file attachment" title="scan.pdf">Open</a>
      <a href="/help">Help</a>
      <span role="button" aria-label="file attachment: quote.docx">quote.docx</span>
    </div>
    <a href="/requisition_headers/77">Requisition</a>
    </body></html>"""
    facts = read_page(html, PO_URL, MARKERS)
    assert facts.supplier == "Müller & Söhne"
    urls = [ref.url for ref in facts.attachments]
    assert urls == [
        "https://acme.coupahost.com/attachments/1",
        "https://acme.coupahost.com/file_download/2?x=1",
        "https://acme.coupahost.com/files/3",
        "https://acme.coupahost.com/files/4",
        None,
    ]
    hints = [ref.name_hint for ref in facts.attachments]
    assert hints == [
        "invoice.pdf",
        "Report",
        "order.msg",
        "scan.pdf",
        "file attachment: quote.docx",
    ]
    assert facts.has_click_only
    assert facts.requisition_url == "https://acme.coupahost.com/requisition_headers/77"
    assert not facts.filled_by_script


def test_requisition_found_by_link_text_and_script_fill_signs() -> None:
    html = """<body><a href="/pr/9">Purchase Requisition</a>
    <div id="attachments" data-loading="true">Loading attachments…</div></body>"""
    facts = read_page(html, PO_URL, MARKERS)
    assert facts.requisition_url == "https://acme.coupahost.com/pr/9"
    assert facts.filled_by_script and facts.attachments == () and facts.supplier is None


@pytest.mark.parametrize(
    ("status", "url", "error", "message"),
    [
        (200, "https://acme.coupahost.com/sessions/new", SessionExpiredError, "instead of"),
        (429, PO_URL, RateLimitedError, f"HTTP 429 for {PO_URL}"),
        (503, PO_URL, HostUnreachableError, f"HTTP 503 for {PO_URL}"),
        (500, PO_URL, TransientError, f"HTTP 500 for {PO_URL}"),
    ],
)
def test_one_verdict_one_exception(
    status: int, url: str, error: type[Exception], message: str
) -> None:
    verdict = classify(status, url, parse_html("<p>x</p>"), MARKERS, retry_after="4")
    with pytest.raises(error, match=re.escape(message)) as raised:
        raise_for_verdict(verdict, url)
    if isinstance(raised.value, RateLimitedError):
        assert raised.value.retry_after_s == 4
    assert type(raised.value) is error  # not a subclass standing in for another kind


def test_a_login_page_names_what_was_expected_and_other_pages_pass() -> None:
    login = classify(
        200,
        PO_URL,
        parse_html(ORDINARY.replace("<a", "<form><input type=password></form><a")),
        MARKERS,
    )
    with pytest.raises(SessionExpiredError, match=r"instead of the file$"):
        raise_for_verdict(login, PO_URL, "the file")
    for html in (ORDINARY, "<h1>Oops! We couldn't find what you wanted</h1>"):
        raise_for_verdict(classify(200, PO_URL, parse_html(html), MARKERS), PO_URL)
