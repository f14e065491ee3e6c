"""Internal ids, the PO search, attachment areas (lines, comments), URL and text attachments,
and comments or files that scripts bring after load."""

from __future__ import annotations

import json
from urllib.parse import quote, urlsplit

import aiohttp
import pytest
from selectolax.lexbor import LexborNode as Node
from sim_testkit import (
    FILE_URL,
    N_RECIPES,
    MakeSim,
    fetch,
    get_timed,
    json_to_html,
    lazy_fragment,
    sign_in,
    tree,
)

from coupa_async.sim import Catalog, SimConfig, SimPO, Simulator
from coupa_async.sim.catalog import RECIPES, SimRequisition, comment_place, line_place
from coupa_async.sim.pages import comments_json

NEW_RECIPES = (
    "id_not_found",
    "id_other_po",
    "click_title_spans",
    "line_and_comment_files",
    "late_comments_sign",
    "late_comments_quiet",
    "late_more_links",
    "url_and_text",
    "heavy_no_attachments",
    "heavy_pr_fallback",
    "heavy_files",
    "pr_lines_comments",
)
# recipe: (outcome, files found, links found, requisition visited)
EXPECTED = {
    "id_not_found": ("COMPLETED", 1, 0, False),
    "id_other_po": ("COMPLETED", 2, 0, False),
    "click_title_spans": ("COMPLETED", 3, 0, False),
    "line_and_comment_files": ("COMPLETED", 3, 1, False),
    "late_comments_sign": ("COMPLETED", 2, 0, False),
    "late_comments_quiet": ("COMPLETED", 2, 0, False),
    "url_and_text": ("COMPLETED", 1, 3, False),
    "heavy_no_attachments": ("NO_ATTACHMENTS", 0, 0, False),
    "heavy_pr_fallback": ("COMPLETED", 2, 0, True),
    "heavy_files": ("COMPLETED", 2, 0, False),
    "pr_lines_comments": ("COMPLETED", 4, 2, True),
}
SEARCH = "/order_headers?search%5Bkeyword%5D="


def _po(catalog: Catalog, recipe: str) -> SimPO:
    return next(po for po in catalog.pos if po.recipe == recipe)


@pytest.mark.parametrize("seed", [1, 7, 2024])
def test_every_new_recipe_is_in_the_first_pos_with_its_expectations(seed: int) -> None:
    catalog = Catalog.build(SimConfig(seed=seed, pos=N_RECIPES))
    assert set(NEW_RECIPES) <= {po.recipe for po in catalog.pos} == {r.name for r in RECIPES}
    for recipe, (outcome, found, links, uses_pr) in EXPECTED.items():
        po = _po(catalog, recipe)
        assert (po.expected_outcome, po.expected_found) == (outcome, found), recipe
        assert (po.expected_links, po.uses_requisition) == (links, uses_pr), recipe
    more = _po(catalog, "late_more_links")
    assert more.more is not None and more.more.count in (1, 2)
    assert len(more.html_header_files) == 2 and len(more.files) == 2 + more.more.count
    assert more.expected_outcome == "COMPLETED" and more.expected_found == len(more.files)
    texts = [k for k in _po(catalog, "url_and_text").links]
    assert [k.markup for k in texts] == ["url_marked", "url_download", "text"]
    assert all(".example/" in k.value for k in texts if k.kind == "url")
    titled = _po(catalog, "click_title_spans").files
    assert {f.dl for f in titled} == {"nav", "anchor"} and sum(f.is_pdf for f in titled) == 1
    for f in titled:
        assert f.markup_names == (None, f.label, None, f.label) and not f.has_href
    data = json.loads(catalog.to_json())
    (shadow,) = data["shadow_pos"]
    other = _po(catalog, "id_other_po")
    assert shadow["internal_id"] == shadow["shadow_of"] == other.number != other.internal_id
    assert shadow["number"].startswith("9") and shadow["files"]
    assert not {f["sha256"] for f in shadow["files"]} & {e.sha256 for e in other.expected_files}
    for po, entry in zip(catalog.pos, data["pos"], strict=True):
        assert entry["internal_id"] == entry["expected_internal_id"] == po.internal_id
        assert entry["url_path"] == f"/order_headers/{po.internal_id}"
        assert entry["expected_links"] == po.expected_links
        assert [f["place"] for f in entry["files"]] == [f.place for f in po.files]
        assert [k["kind"] for k in entry["links"]] == [k.kind for k in po.links]
        assert (po.internal_id == po.number) == (po.id_mode == "same")


def test_places_name_the_area() -> None:
    catalog = Catalog.build(SimConfig(seed=3, pos=N_RECIPES))
    po = _po(catalog, "line_and_comment_files")
    first = po.comments[0]
    assert [f.place for f in po.files] == [
        "header",
        "line 1",
        f"comment by {first.author} at {first.shown}",
    ]
    assert [k.place for k in po.links] == ["line 2"]
    pr = _po(catalog, "pr_lines_comments").requisition
    assert pr is not None and pr.comments_fill is not None
    assert [f.place for f in pr.files] == [
        "requisition header",
        "requisition line 1",
        comment_place("PR", pr.comments[0]),
    ]
    assert {k.place for k in pr.links} == {"requisition header", "requisition line 1"}
    late = [_po(catalog, r).comments_fill for r in ("late_comments_sign", "late_comments_quiet")]
    assert [fill.sign for fill in late if fill] == [True, False]
    assert all(300 <= fill.delay_ms <= 900 for fill in late if fill)


# ----- over HTTP ---------------------------------------------------------------------------------


async def test_search_finds_numbers_by_substring(
    shared_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = shared_sim
    status, location, _ = await fetch(client, sim.base_url + SEARCH + "1526")
    assert status == 302 and location.startswith("/sessions/new")
    await sign_in(client, sim)
    for po in sim.catalog.pos:
        status, _, html = await fetch(client, sim.base_url + SEARCH + po.number[:7])
        assert status == 200
        doc = tree(html)
        form = doc.css_first("form#order_header_search[role=search][method=get]")
        assert form is not None and form.attributes["action"] == "/order_headers"
        box = form.css_first("input[type=search][name='search[keyword]']")
        assert box is not None and box.attributes["value"] == po.number[:7]
        rows = {a.text(): a.attributes["href"] for a in doc.css("#order_headers_table td a")}
        wanted = [p for p in sim.catalog.pos if p.page == "ok" and po.number[:7] in p.number]
        assert rows == {p.number: p.url_path for p in wanted[:25]}, po.recipe
        status, _, html = await fetch(client, sim.base_url + SEARCH + po.number)
        rows = {a.text(): a.attributes["href"] for a in tree(html).css("#order_headers_table a")}
        if po.page == "ok":
            assert rows[po.number] == po.url_path
        else:  # error-page POs do not exist
            assert rows == {} and "No results" in html
    (shadow,) = sim.catalog.shadow_pos
    _, _, html = await fetch(client, sim.base_url + SEARCH + shadow.number)
    rows = [(a.text(), a.attributes["href"]) for a in tree(html).css("#order_headers_table a")]
    assert rows == [(shadow.number, f"/order_headers/{shadow.internal_id}")]
    assert shadow.supplier and shadow.supplier in html
    _, _, html = await fetch(client, sim.base_url + SEARCH + quote("<x>"))
    assert "No results" in html and "&lt;x&gt;" in html


async def test_pages_by_internal_id_and_by_number(
    shared_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = shared_sim
    await sign_in(client, sim)
    for recipe in ("id_not_found", "id_other_po", "plain_links"):
        po = _po(sim.catalog, recipe)
        status, _, html = await fetch(client, sim.base_url + po.url_path)
        doc = tree(html)
        assert status == 200 and doc.css_first("h1").text() == po.heading_text
        assert doc.css_first("title").text() == po.title and f"#{po.number}" in po.title
        status, _, html = await fetch(client, sim.base_url + f"/order_headers/{po.number}")
        assert status == 200
        h1 = tree(html).css_first("h1").text()
        if recipe == "id_not_found":
            assert h1 == "Oops! We couldn't find what you wanted"
        elif recipe == "id_other_po":
            (shadow,) = sim.catalog.shadow_pos
            assert h1 == shadow.heading_text and shadow.number in h1 and po.number not in h1
            ids = {f.id for f in shadow.files}
            assert all(f"/{i}" in html for i in ids)
            assert not any(f"/{f.id}" in html for f in po.files)
        else:
            assert h1 == po.heading_text
    headings = {po.heading_text.split(" #")[0] for po in sim.catalog.pos if po.page == "ok"}
    titles = {po.title.split(" #")[0] for po in sim.catalog.pos if po.page == "ok"}
    assert headings == {"Purchase Order", "PO"} and titles == {"Purchase Order", "PO"}


def _area(node: Node) -> str | None:
    """The place a file or link element sits in, read off its ancestors."""
    parent = node.parent
    while parent is not None:
        attrs = parent.attributes
        if parent.tag == "tr" and "data-line-num" in attrs:
            kind = "line" if "order-line" in (attrs.get("class") or "") else "requisition line"
            return f"{kind} {attrs['data-line-num']}"
        if "comment" in (attrs.get("class") or "").split():
            author = parent.css_first(".comment-author")
            date = parent.css_first("time.comment-date")
            assert author is not None and date is not None
            return f"comment by {author.text()} at {date.text()}"
        if attrs.get("id") == "attachments":
            return "header"
        parent = parent.parent
    return None


def _areas(html: str) -> tuple[dict[int, str], dict[str, str]]:
    """(file id -> area, link value -> area) of a page or a data answer; a lazily inserted
    list counts as the header."""
    doc = tree(html)
    files: dict[int, str] = {}
    for node in doc.css("[data-file-id], a[href]"):
        raw = node.attributes.get("data-file-id") or ""
        match = FILE_URL.search(node.attributes.get("href") or "")
        if match and urlsplit(node.attributes.get("href") or "").hostname in (None, "127.0.0.1"):
            raw = match.group(1)
        if raw:
            files.setdefault(int(raw), _area(node) or "?")
    for file_id in _areas(lazy_fragment(html) or "<p></p>")[0] if "box.innerHTML" in html else ():
        files.setdefault(file_id, "header")
    links: dict[str, str] = {}
    for node in doc.css("a[href^='https://'], [data-attachment-type=text]"):
        value = node.attributes.get("href") or node.text()
        links[value or ""] = _area(node) or "?"
    return files, links


def _place(page: SimPO | SimRequisition, area: str) -> str:
    if page.source_kind == "PR" and not area.startswith("requisition "):
        return "requisition " + area
    return area


async def test_places_and_links_match_the_html(
    shared_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = shared_sim
    await sign_in(client, sim)
    pages: list[SimPO | SimRequisition] = [po for po in sim.catalog.pos if po.page == "ok"]
    pages += [pr for pr in sim.catalog.requisitions if pr.kind == "ok"]
    seen = set()
    for page in pages:
        _, _, html = await fetch(client, sim.base_url + page.url_path)
        files, links = _areas(html)
        if page.comments_fill is not None:  # the comments come later: read them as a script
            answer = await get_timed(
                client, sim.base_url + page.comments_fill.data_path(page.url_path)
            )
            assert answer.seconds >= page.comments_fill.delay_ms / 1000
            more_files, more_links = _areas(json_to_html(json.loads(answer.body)))
            files.update(more_files)
            links.update(more_links)
        want = {f.id: f.place for f in page.html_files}
        if page.comments_fill is not None:
            want |= {f.id: f.place for f in page.files if "comment by" in f.place}
        got = {i: _place(page, a) for i, a in files.items() if i in {f.id for f in page.files}}
        assert got == want, page.url_path
        assert {v: _place(page, a) for v, a in links.items()} == {
            k.value: k.place for k in page.links
        }, page.url_path
        seen |= {p.removeprefix("requisition ").split()[0] for p in want.values()}
        for line in range(1, page.line_count + 1):
            assert f'data-line-num="{line}"' in html, line_place(page.source_kind, line)
    assert {"header", "line", "comment"} <= seen


async def test_late_comments_and_more_files_answer_after_their_delay(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    recipes = ("late_comments_sign", "late_comments_quiet", "late_more_links", "plain_links")
    sim = await make_sim(seed=4, pos=4, recipes=recipes)
    await sign_in(client, sim)
    sign, quiet, more, plain = sim.catalog.pos
    origin = sim.base_url
    for po in (sign, quiet):
        assert po.comments_fill is not None
        _, _, html = await fetch(client, origin + po.url_path)
        box = tree(html).css_first("#comments")
        assert box is not None and box.css_first(".comment") is None
        assert ("aria-busy" in box.attributes) == po.comments_fill.sign
        assert (box.css_first("span.loading") is not None) == po.comments_fill.sign
        assert f'var src = "{po.comments_fill.data_path(po.url_path)}";' in html
        answer = await get_timed(client, origin + po.comments_fill.data_path(po.url_path))
        assert answer.status == 200 and answer.content_type == "application/json"
        assert json.loads(answer.body) == comments_json(po, origin)
        assert answer.seconds >= po.comments_fill.delay_ms / 1000
    assert more.more is not None
    _, _, html = await fetch(client, origin + more.url_path)
    shown = tree(html).css("#attachments > *")
    assert len(shown) == len(more.html_header_files) == 2
    answer = await get_timed(client, origin + more.more.data_path(more.url_path))
    appended, _ = _areas(json_to_html(json.loads(answer.body)))
    assert list(appended) == [f.id for f in more.more_files]
    assert answer.seconds >= more.more.delay_ms / 1000
    for path in (
        plain.url_path + "/comments.json",
        plain.url_path + "/attachments.json?part=more",
        sign.url_path + "/attachments.json?part=more",
        "/order_headers/99999999/comments.json",
    ):
        assert (await fetch(client, origin + path))[0] == 404, path
