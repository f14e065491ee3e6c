"""Discovery on HTML, without a browser: which PO a page is, where each attachment sits, and
which attachments are files, URLs or texts."""

from __future__ import annotations

import pytest

from coupa_async.coupa.discover import is_outside, read_page
from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.coupa.pages import parse_html
from coupa_async.coupa.search import exact_match

MARKERS = CoupaMarkers()
BASE = "https://acme.coupahost.com"
PO_URL = f"{BASE}/order_headers/4471"
PR_URL = f"{BASE}/requisition_headers/88"


@pytest.mark.parametrize(
    ("html", "number"),
    [
        ("<title>PO #15262984 | Coupa</title><h1>Order</h1>", "15262984"),
        ("<h1>Purchase Order #15262984</h1>", "15262984"),
        ("<h1>Purchase Order # 0015262984</h1>", "15262984"),
        ("<h1>PO No. 77</h1>", "77"),
        ("<h2>Pedido de compra Nº 123</h2>", "123"),
        ("<title>PM #4410 - Coupa</title>", "4410"),
        ("<h1>Home</h1><p>PO #99 in a paragraph is not a heading</p>", None),
    ],
)
def test_the_number_a_po_page_shows(html: str, number: str | None) -> None:
    assert read_page(html, PO_URL, MARKERS).shown_number == number


def test_a_requisition_page_is_read_for_a_requisition_number_and_the_link_for_its_own() -> None:
    pr = read_page("<h1>Requisition #3141001</h1>", PR_URL, MARKERS)
    assert pr.shown_number == "3141001"
    po = read_page(
        '<h1>PO #5</h1><a href="/requisition_headers/88">Requisition #3141001</a>', PO_URL, MARKERS
    )
    assert po.requisition_number == "3141001"
    assert po.requisition_url == PR_URL
    bare = read_page('<a href="/requisition_headers/88">Requisition</a>', PO_URL, MARKERS)
    assert bare.requisition_number is None


PAGE = """<html><head><title>PO #4471 | Coupa</title></head><body>
<div id="attachments">
  <a href="/attachments/1">contract.pdf</a>
  <a class="attachment-url" data-attachment-type="url" href="https://docs.supplier.example/s/1"
     >Spec sheet</a>
  <a class="attachment-link" href="https://files.partner.example/download/7/spec.pdf"
     >spec.pdf</a>
  <div class="attachment-text" data-attachment-type="text">Deliver to  dock 4</div>
  <span role="button" class="file-name" title="Scan 0001.pdf" data-file-id="9">Scan 0001.pdf</span>
</div>
<table class="lines"><tbody>
  <tr class="order-line" data-line-num="2"><td>2</td><td>Bolts</td>
    <td class="line-attachments"><a href="/file_download/3">drawing.dwg</a></td></tr>
  <tr class="order-line"><td>3</td><td>Nuts</td>
    <td><a href="/attachments/4" download="nuts.xlsx">Download</a></td></tr>
</tbody></table>
<div id="comments" class="comments-section">
  <div class="comment" data-comment-id="51"><span class="comment-author">Jane Doe</span>
    <time class="comment-date" datetime="2024-03-01T10:22">01/03/24 10:22 AM</time>
    <p class="comment-body">See attached</p>
    <div class="comment-attachments"><a href="/attachments/5">quote.msg</a>
      <span role="button" aria-label="file attachment: memo.docx">memo.docx</span></div>
  </div>
</div>
</body></html>"""


def test_every_attachment_is_found_with_its_place_and_kind() -> None:
    facts = read_page(PAGE, PO_URL, MARKERS)
    files = [(ref.url, ref.place, ref.name_hint) for ref in facts.attachments]
    assert files == [
        (f"{BASE}/attachments/1", "header", "contract.pdf"),
        (f"{BASE}/file_download/3", "line 2", "drawing.dwg"),
        (f"{BASE}/attachments/4", "line 3", "nuts.xlsx"),
        (f"{BASE}/attachments/5", "comment by Jane Doe at 01/03/24 10:22 AM", "quote.msg"),
        (None, "header", "Scan 0001.pdf"),
        (None, "comment by Jane Doe at 01/03/24 10:22 AM", "file attachment: memo.docx"),
    ]
    others = [(ref.kind, ref.place, ref.name_hint, ref.value) for ref in facts.others]
    assert others == [
        ("text", "header", "Deliver to dock 4", "Deliver to dock 4"),
        ("url", "header", "Spec sheet", "https://docs.supplier.example/s/1"),
        ("url", "header", "spec.pdf", "https://files.partner.example/download/7/spec.pdf"),
    ]
    assert facts.shown_number == "4471"


def test_a_configured_file_host_serves_files_and_other_hosts_are_urls() -> None:
    html = '<div id="attachments"><a href="https://files.acme-docs.com/download/7">a.pdf</a></div>'
    assert read_page(html, PO_URL, MARKERS).attachments == ()
    facts = read_page(html, PO_URL, MARKERS, file_hosts=("acme-docs.com",))
    assert [ref.url for ref in facts.attachments] == ["https://files.acme-docs.com/download/7"]
    assert facts.others == ()


@pytest.mark.parametrize(
    ("url", "outside"),
    [
        (f"{BASE}/x", False),
        ("https://ACME.coupahost.com:443/x", False),
        ("http://acme.coupahost.com/x", True),
        ("https://acme.coupahost.com:8443/x", True),
        ("https://other.coupahost.com/x", True),
        ("ftp://acme.coupahost.com/x", True),
    ],
)
def test_what_is_outside_the_tenant(url: str, outside: bool) -> None:
    assert is_outside(url, PO_URL) is outside


def test_the_search_takes_only_the_exact_number() -> None:
    html = """<table>
      <tr><td><a href="/order_headers/900">15262980</a></td></tr>
      <tr><td><a href="/order_headers/901">PO #15262984</a></td></tr>
      <tr><td><a href="/order_headers/902">152629841</a></td></tr>
    </table>"""
    found = exact_match(parse_html(html), f"{BASE}/order_headers?q=1", "15262984", MARKERS)
    assert found.url == f"{BASE}/order_headers/901"
    none = exact_match(parse_html(html), f"{BASE}/order_headers", "1526298", MARKERS)
    assert none.url is None and "found only other POs (15262980" in none.detail
    empty = exact_match(parse_html("<p>No results</p>"), BASE, "1", MARKERS)
    assert empty.url is None and empty.detail == "a search for 1 found nothing"


@pytest.mark.parametrize(
    ("html", "script"),
    [
        ('<div id="attachments"></div>', True),
        ('<div id="comments">  </div>', True),
        ('<div id="attachments"><p class="empty">No attachments</p></div>', False),
        ('<div id="comments" aria-busy="true"><span>Loading comments…</span></div>', True),
        ('<div id="attachments"><a href="/attachments/1">a.pdf</a></div>', False),
    ],
)
def test_an_empty_area_or_a_loading_sign_means_the_html_is_not_the_whole_page(
    html: str, script: bool
) -> None:
    assert read_page(html, PO_URL, MARKERS).filled_by_script is script


@pytest.mark.parametrize(
    ("script", "fills"),
    [
        ("fetch('/order_headers/4471/attachments.json?part=more').then(add);", True),
        ('var src = "\\/order_headers\\/4471\\/comments.json";', True),
        ("setInterval(function(){fetch('/api/notifications/unread_count')}, 2000);", False),
        ("window.I18N = {errors: {access_denied: 'Access denied'}};", False),
    ],
)
def test_a_script_that_asks_for_the_pages_own_data_means_the_html_is_not_whole(
    script: str, fills: bool
) -> None:
    html = (
        f'<div id="attachments"><a href="/attachments/1">a.pdf</a></div><script>{script}</script>'
    )
    assert read_page(html, PO_URL, MARKERS).filled_by_script is fills
