"""PO and PR pages over HTTP: every markup variant, error pages, and agreement with the catalog."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import urljoin

import aiohttp
import pytest
from sim_testkit import (
    FILE_URL,
    N_RECIPES,
    MakeSim,
    fetch,
    find_attachments,
    html_file_ids,
    lazy_fragment,
    read_supplier,
    sign_in,
    tree,
    url_name,
    visible_text,
)

from coupa_async.sim import Simulator

ERROR_TEXTS = (
    "Oops! We couldn't find what you wanted",
    "You are not authorized",
    "Access denied",
    "The page you were looking for doesn't exist",
    "Desculpe, não encontramos o que você procurava",
)
ERROR_SELECTORS = ("div.flash_error", "div.flash-error", "div#error_explanation")


def is_error_page(html: str) -> bool:
    """The reference's signs of an error page (visible text only: scripts are a trap)."""
    doc = tree(html)
    text = visible_text(doc)
    if any(t.lower() in text.lower() for t in ERROR_TEXTS):
        return True
    if any(doc.css_first(s) is not None for s in ERROR_SELECTORS):
        return True
    return any(("Oops" in h.text() or "Sorry" in h.text()) for h in doc.css("h1"))


async def _pages(sim: Simulator, client: aiohttp.ClientSession) -> dict[str, tuple[int, str]]:
    await sign_in(client, sim)
    pages = {}
    for po in sim.catalog.pos:
        status, _, html = await fetch(client, sim.base_url + po.url_path)
        pages[po.number] = (status, html)
    return pages


@pytest.mark.parametrize("seed", [1, 7, 2024])
async def test_first_po_pages_show_every_variant(
    seed: int, make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(seed=seed, pos=N_RECIPES)
    pages = await _pages(sim, client)
    seen: Counter[str] = Counter()
    for po in sim.catalog.pos:
        status, html = pages[po.number]
        doc = tree(html)
        if po.page == "http_404":
            assert status == 404
        else:
            assert status == 200
        assert is_error_page(html) == (po.page != "ok"), po.recipe
        if po.page != "ok":
            seen["error:" + po.page] += 1
            continue
        if (
            doc.css_first("span[data-supplier-name]")
            and doc.css_first("span[data-supplier-name]").text().strip()
        ):
            seen["supplier:data_attr"] += 1
        if doc.css_first("[class*='supplier-name']"):
            seen["supplier:class"] += 1
        if doc.css_first(".supplier-info span"):
            seen["supplier:info"] += 1
        if doc.css_first("[data-testid*='supplier'] span"):
            seen["supplier:testid"] += 1
        first = doc.css_first("span[data-supplier-name]")
        if first is not None and not first.text().strip() and read_supplier(doc):
            seen["supplier:empty_first"] += 1
        if read_supplier(doc) is None:
            seen["supplier:none"] += 1
        assert read_supplier(doc) == po.expected_supplier

        toolbar = doc.css_first(
            "div.page_buttons_right.orderHeaderShowFloatingSection.floatingSectionOnTop"
        )
        if toolbar is not None:
            assert "position:fixed" in toolbar.attributes["style"]
            seen["trait:toolbar"] += 1
        if doc.css_first("div.notice"):
            seen["trait:notice"] += 1
        scripts = " ".join(s.text() for s in doc.css("script"))
        if "denied" in scripts:
            assert "denied" not in visible_text(doc).lower()
            seen["trait:script_denied"] += 1
        box = doc.css_first("#attachments")
        assert box is not None
        if "data-loading" in box.attributes:
            assert "Loading attachments" in box.text() and not box.css("a")
            seen["trait:lazy"] += 1
        if po.late is not None:  # empty, no loading sign; a script names the data URL
            assert box.html == '<div id="attachments"></div>'
            assert f'var src = "{po.late.data_path(po.url_path)}";' in scripts
            seen[f"trait:{po.late.trait}"] += 1
            seen[f"late_start:{po.late.start}"] += 1

        found = find_attachments(html, sim.base_url + po.url_path)
        for item in found:
            node = tree(item.node_html).css_first("a, span")
            assert node is not None
            attrs = node.attributes
            href = attrs.get("href")
            if href and "attachment" in href:
                seen["markup:href_attachment"] += 1
            elif href and "download" in href:
                seen["markup:href_download"] += 1
            if href and href.startswith("http://"):
                seen["markup:absolute"] += 1
            if "download" in attrs and "attachment" not in href and "download" not in href:
                seen["markup:download_attr"] += 1
            if attrs.get("aria-label") == "file attachment" and attrs.get("title"):
                seen["markup:aria_title"] += 1
            if href is None and "aria-label" not in attrs:  # titled with the file name only
                assert attrs["role"] == "button" and attrs["title"] == node.text().strip()
                seen["markup:click_title"] += 1
            elif href is None:
                assert attrs["role"] == "button" and "attachment" in attrs["aria-label"]
                seen["markup:click_" + attrs["data-dl"]] += 1
        anchors = doc.css("a[href]") + tree(lazy_fragment(html) or "<p></p>").css("a[href]")
        page_url = sim.base_url + po.url_path
        file_urls = [
            urljoin(page_url, a.attributes["href"] or "")
            for a in anchors
            if FILE_URL.search(a.attributes["href"] or "")
        ]
        if len(set(file_urls)) < len(file_urls):
            seen["markup:duplicate"] += 1

        pr_link = next(
            (a for a in doc.css("a[href]") if "/requisition_headers/" in a.attributes["href"]),
            None,
        )
        assert (pr_link is not None) == (po.requisition is not None)
        if pr_link is not None:
            seen["pr_text:" + pr_link.text()] += 1
            if pr_link.attributes["href"].startswith("http"):
                seen["pr:absolute"] += 1

    expected = {
        *(f"error:{k}" for k in ("not_found", "not_authorized", "access_denied")),
        *(f"error:{k}" for k in ("not_found_pt", "error_explanation", "http_404")),
        *(f"supplier:{k}" for k in ("data_attr", "class", "info", "testid", "none")),
        "supplier:empty_first",
        *(f"trait:{k}" for k in ("toolbar", "notice", "script_denied", "lazy")),
        *(f"trait:late_{k}" for k in ("json", "fragment", "two_parts", "broken")),
        *(f"late_start:{k}" for k in ("inline", "domcontentloaded", "load")),
        *(f"markup:{k}" for k in ("href_attachment", "href_download", "download_attr")),
        *(f"markup:{k}" for k in ("aria_title", "click_nav", "click_anchor", "duplicate")),
        "markup:click_title",
        "markup:absolute",
        "pr_text:Requisition",
        "pr_text:Purchase Requisition",
        "pr_text:Requisição",
        "pr:absolute",
    }
    assert expected <= set(seen), expected - set(seen)
    assert any(k.startswith("pr_text:Requisition #") for k in seen)


async def test_attachments_on_pages_match_the_catalog(
    shared_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    """A reader following the reference finds exactly the catalog's files, with its names
    (late lists: none in the page itself; test_sim_late reads their data)."""
    sim = shared_sim
    await sign_in(client, sim)
    for po in sim.catalog.pos:
        if po.page != "ok":
            continue
        status, _, html = await fetch(client, sim.base_url + po.url_path)
        assert status == 200
        found = find_attachments(html, sim.base_url + po.url_path)
        if po.late is not None:
            assert found == [] and tree(html).css_first("#attachments > *") is None
            continue
        assert [f.file_id for f in found] == html_file_ids(po), po.recipe
        for item, f in zip(found, po.html_files, strict=True):
            if f.disposition == "none":  # then the markup or the URL names the file
                name = item.markup_name or url_name(item.url or "")
                assert name == f.expected_name
            if item.url is not None:
                assert item.url == sim.base_url + f.url_path


async def test_requisition_pages(shared_sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim = shared_sim
    await sign_in(client, sim)
    kinds = set()
    for pr in sim.catalog.requisitions:
        url = sim.base_url + pr.url_path
        status, _, html = await fetch(client, url)
        assert status == 200
        kinds.add(pr.kind)
        assert is_error_page(html) == (pr.kind == "error")
        if pr.kind == "error":
            assert tree(html).css_first("div.flash_error") is not None
            continue
        found = find_attachments(html, url)
        if pr.late is not None:
            assert found == [] and tree(html).css_first("#attachments > *") is None
            kinds.add(pr.late.trait)
            continue
        assert [f.file_id for f in found] == html_file_ids(pr)
        if pr.kind == "empty":
            assert "No attachments" in html
    assert kinds == {"ok", "empty", "error", "late_json", "late_two_parts", "late_broken"}


async def test_unknown_numbers_are_http_404(
    shared_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = shared_sim
    await sign_in(client, sim)
    for path in (
        "/order_headers/99999999",
        "/order_headers/abc",
        "/requisition_headers/1",
        "/attachments/1",
        "/no/such/page",
    ):
        status, _, html = await fetch(client, sim.base_url + path)
        assert status == 404, path
        assert "The page you were looking for doesn't exist" in html


async def test_po_list_and_home(shared_sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim = shared_sim
    status, location, _ = await fetch(client, sim.base_url + "/order_headers")
    assert status == 302 and location.startswith("/sessions/new")
    await sign_in(client, sim)
    status, _, html = await fetch(client, sim.base_url + "/order_headers")
    assert status == 200
    hrefs = [a.attributes["href"] for a in tree(html).css("table a[href]")]
    listed = [po for po in (*sim.catalog.pos, *sim.catalog.shadow_pos) if po.page == "ok"]
    assert hrefs == [po.url_path for po in listed[:25]]  # the first page
    assert tree(html).css_first("a.next_page[rel=next]") is not None
    status, _, html = await fetch(client, sim.base_url + "/")
    assert status == 200 and "Welcome" in html


async def test_catalog_endpoint(shared_sim: Simulator, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{shared_sim.base_url}/__sim/catalog") as r:
        assert r.status == 200
        data = await r.json()
    assert data == json.loads(shared_sim.catalog.to_json())
    po = data["pos"][0]
    assert {"number", "expected_outcome", "expected_supplier", "expected_files"} <= set(po)
