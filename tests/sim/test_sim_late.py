"""Late attachment lists over HTTP: the empty page, its data endpoints, delays and failures."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from sim_testkit import (
    FILE_URL,
    LATE_RECIPES,
    STOP_DEADLINE_S,
    MakeSim,
    fetch,
    find_attachments,
    get_timed,
    json_to_html,
    late_markup,
    new_client,
    sign_in,
    tree,
)

from coupa_async.sim import Faults, SimPO, Simulator
from coupa_async.sim.app import classify
from coupa_async.sim.catalog import LateFill, SimFile, late_part
from coupa_async.sim.pages import attachment_html

Page = tuple[str, tuple[SimFile, ...], LateFill]  # (page path, files, late list)


def _late_pages(sim: Simulator) -> list[Page]:
    """Every late-filled page of the catalog, PO and PR."""
    pages: list[Page] = []
    for po in sim.catalog.pos:
        if po.late is not None:
            pages.append((po.url_path, po.files, po.late))
        pr = po.requisition
        if pr is not None and pr.late is not None:
            pages.append((pr.url_path, pr.files, pr.late))
    return pages


def _by_recipe(sim: Simulator, recipe: str) -> SimPO:
    return next(po for po in sim.catalog.pos if po.recipe == recipe)


def _failing(sim: Simulator, failure: str) -> Page:
    """The PO page whose list fails this way."""
    return next(p for p in _late_pages(sim) if p[2].failure == failure and "order" in p[0])


async def _late_sim(make_sim: MakeSim, **kwargs: object) -> Simulator:
    """Every late recipe once: three late_broken PO pages, so each failure on a PO page."""
    return await make_sim(seed=5, pos=len(LATE_RECIPES), recipes=LATE_RECIPES, **kwargs)


def _file_id(item: dict) -> int:
    match = FILE_URL.search(item["attrs"]["href"])
    assert match, item
    return int(match.group(1))


def _static(files: tuple[SimFile, ...], origin: str) -> str:
    return "".join(attachment_html(f, origin) for f in files)


async def test_late_pages_are_empty_with_no_loading_sign(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await _late_sim(make_sim)
    await sign_in(client, sim)
    pages = _late_pages(sim)
    assert {late.failure for _, _, late in pages} == {None, "http_500", "hang", "js_error"}
    for path, files, late in pages:
        status, _, html = await fetch(client, sim.base_url + path)
        assert status == 200
        doc = tree(html)
        box = doc.css_first("#attachments")
        assert box is not None and box.html == '<div id="attachments"></div>', path
        assert "Loading" not in html and "aria-busy" not in html and "data-loading" not in html
        assert find_attachments(html, sim.base_url + path) == []
        scripts = [s.text() for s in doc.css("script")]
        assert not any("</" in text for text in scripts)  # nothing closes a script early
        script = next(text for text in scripts if "loadAttachments" in text)
        assert f'var src = "{late.data_path(path)}";' in script
        starts = {
            "inline": "\nloadAttachments();\n",
            "domcontentloaded": "addEventListener('DOMContentLoaded', loadAttachments)",
            "load": f"setTimeout(loadAttachments, {late.start_timeout_ms});",
        }
        assert starts[late.start] in script
        assert ("?part=2" in script) == (late.trait == "late_two_parts")
        assert ("attachments-source" in script) == (late.failure == "js_error")
        assert ("box.innerHTML" in script) == (late.trait == "late_fragment")
        # Click-only files arriving later still download: the delegated handler is there.
        assert ("data-file-id" in html) == any(not f.has_href for f in files)


async def test_late_data_matches_the_static_markup_after_the_delay(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await _late_sim(make_sim)
    await sign_in(client, sim)
    origin = sim.base_url
    pages = [p for p in _late_pages(sim) if not p[2].broken]
    results = await asyncio.gather(*(late_markup(client, origin, p, late) for p, _, late in pages))
    shapes = set()
    for (path, files, late), (markup, answers) in zip(pages, results, strict=True):
        shapes.add(late.trait)
        assert [a.status for a in answers] == [200] * len(answers), path
        found = find_attachments(markup, origin + path)
        assert [f.file_id for f in found] == [f.id for f in files], path
        if late.trait == "late_fragment":
            (answer,) = answers
            assert answer.content_type == "text/html"
            assert answer.body == "\n".join(attachment_html(f, origin) for f in files)
            assert answer.seconds >= late.delay_ms / 1000
            continue
        assert {a.content_type for a in answers} == {"application/json"}
        assert markup == _static(files, origin)  # the same elements as a static page
        if late.trait == "late_two_parts":
            first, second = answers
            k = max(1, len(files) // 2)
            assert json_to_html(json.loads(first.body)) == _static(files[:k], origin)
            assert json_to_html(json.loads(second.body)) == _static(files[k:], origin)
            assert first.seconds >= late.delay_ms / 1000
            assert second.seconds >= late.part2_delay_ms / 1000
        else:
            assert answers[0].seconds >= late.delay_ms / 1000
    assert shapes == {"late_json", "late_fragment", "late_two_parts"}


async def test_json_describes_elements_generically(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(seed=5, pos=1, recipes=("late_json_links",))
    await sign_in(client, sim)
    po = sim.catalog.pos[0]
    assert po.late is not None
    answer = await get_timed(client, sim.base_url + po.late.data_path(po.url_path))
    items = json.loads(answer.body)
    by_markup = {f.markup: item for f, item in zip(po.files, items, strict=True)}
    pdf = po.files[0]
    assert by_markup["attachment_href"] == {
        "tag": "a",
        "attrs": {"class": "attachment-link", "href": sim.base_url + pdf.url_path},
        "text": pdf.label,
    }
    nav = next(f for f in po.files if f.markup == "click_nav")
    assert by_markup["click_nav"]["tag"] == "span"
    assert by_markup["click_nav"]["attrs"]["data-file-id"] == str(nav.id)
    assert by_markup["click_nav"]["attrs"]["role"] == "button"
    assert "href" not in by_markup["click_nav"]["attrs"]
    titled = by_markup["aria_title"]
    assert titled["attrs"]["title"] == 'Budget </script> & "Q3" <v2>.xlsx'  # raw in JSON
    assert titled["children"] == [{"tag": "i", "attrs": {"class": "icon-paperclip"}}, " Open"]
    assert by_markup["icon"]["children"] == [{"tag": "i", "attrs": {"class": "icon-paperclip"}}]


async def test_empty_late_list(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    sim = await make_sim(seed=5, pos=1, recipes=("late_json_empty",))
    await sign_in(client, sim)
    po = sim.catalog.pos[0]
    assert po.late is not None and po.expected_outcome == "NO_ATTACHMENTS"
    answer = await get_timed(client, sim.base_url + po.late.data_path(po.url_path))
    assert (answer.status, json.loads(answer.body)) == (200, [])
    assert answer.seconds >= po.late.delay_ms / 1000


async def test_two_parts_whole_list_and_parts(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(seed=5, pos=1, recipes=("late_two_parts_links",))
    await sign_in(client, sim)
    po = sim.catalog.pos[0]
    assert po.late is not None
    url = sim.base_url + po.late.data_path(po.url_path)
    whole, one, two = await asyncio.gather(
        get_timed(client, url),
        get_timed(client, url + "?part=1"),
        get_timed(client, url + "?part=2"),
    )
    ids = [[_file_id(item) for item in json.loads(a.body)] for a in (whole, one, two)]
    assert ids[0] == [f.id for f in po.files]
    assert ids[1] == [f.id for f in late_part(po.files, 1)] and len(ids[1]) >= 1
    assert ids[1] + ids[2] == ids[0] and ids[2]


async def test_broken_lists_fail_with_500(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    sim = await _late_sim(make_sim)
    await sign_in(client, sim)
    for failure in ("http_500", "js_error"):  # js_error pages never ask; if asked, 500
        path, files, late = _failing(sim, failure)
        assert files == ()
        answer = await get_timed(client, sim.base_url + late.data_path(path))
        assert answer.status == 500 and answer.content_type == "application/json"
        assert answer.seconds >= late.delay_ms / 1000


async def test_hanging_list_ends_when_the_client_goes(make_sim: MakeSim) -> None:
    sim = await _late_sim(make_sim)
    path, _, late = _failing(sim, "hang")
    async with new_client() as client:
        await sign_in(client, sim)
        timeout = aiohttp.ClientTimeout(total=late.delay_ms / 1000 + 0.5)
        with pytest.raises(asyncio.TimeoutError):
            await client.get(sim.base_url + late.data_path(path), timeout=timeout)
        assert sim.stats.requests["page_data"] == 1
    for _ in range(100):  # the handler is cancelled once the connection is gone
        if sim.stats.in_flight == 0:
            break
        await asyncio.sleep(0.02)
    assert sim.stats.in_flight == 0


async def test_hanging_list_ends_when_the_simulator_stops(make_sim: MakeSim) -> None:
    sim = await _late_sim(make_sim)
    path, _, late = _failing(sim, "hang")
    async with new_client() as client:
        await sign_in(client, sim)
        request = asyncio.create_task(fetch(client, sim.base_url + late.data_path(path)))
        for _ in range(100):
            if sim.stats.in_flight == 1:
                break
            await asyncio.sleep(0.02)
        assert sim.stats.in_flight == 1
        await asyncio.sleep(0.1)
        assert not request.done()
        async with asyncio.timeout(STOP_DEADLINE_S):  # released, the list never ends itself
            await sim.stop()
        try:
            status, _, _ = await asyncio.wait_for(request, 5)
            assert status == 503
        except aiohttp.ClientError:
            pass  # the connection closed first


async def test_data_needs_a_session_and_a_late_page(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(
        seed=5,
        pos=5,
        recipes=(
            "late_json_links",
            "late_fragment_links",
            "late_two_parts_links",
            "plain_links",
            "error_oops",
        ),
    )
    json_po, fragment_po, parts_po, plain_po, error_po = sim.catalog.pos
    data = json_po.url_path + "/attachments.json"
    status, location, _ = await fetch(client, sim.base_url + data)
    assert status == 302 and location == f"/sessions/new?return_to={data}"
    status, location, _ = await fetch(client, sim.base_url + data + "?part=1")
    assert status == 302 and location.startswith("/sessions/new?return_to=")
    await sign_in(client, sim)
    for path in (
        json_po.url_path + "/attachments_fragment",  # not this page's endpoint
        json_po.url_path + "/attachments.json?part=1",  # parts only on two-part lists
        fragment_po.url_path + "/attachments.json",
        parts_po.url_path + "/attachments.json?part=3",
        parts_po.url_path + "/attachments.json?part=x",
        plain_po.url_path + "/attachments.json",  # a static list has no data endpoint
        error_po.url_path + "/attachments.json",
        "/order_headers/99999999/attachments.json",
        "/requisition_headers/1/attachments.json",
    ):
        status, _, _ = await fetch(client, sim.base_url + path)
        assert status == 404, path
    assert sim.stats.requests["page_data"] == 11 and sim.stats.requests["po_page"] == 0


def test_classify_data_requests() -> None:
    assert classify("/order_headers/15262984/attachments.json") == "page_data"
    assert classify("/order_headers/15262984/attachments_fragment") == "page_data"
    assert classify("/requisition_headers/3141001/attachments.json") == "page_data"
    assert classify("/order_headers/15262984") == "po_page"
    assert classify("/requisition_headers/3141001") == "pr_page"
    assert classify("/attachments/700001") == "file"


async def test_latency_and_faults_apply_to_data_requests(make_sim: MakeSim) -> None:
    sim = await make_sim(seed=5, pos=1, recipes=("late_json_empty",))
    po = sim.catalog.pos[0]
    assert po.late is not None
    url = sim.base_url + po.late.data_path(po.url_path)
    async with new_client() as client:
        await sign_in(client, sim)
        sim.config.faults = Faults(latency_ms=300)  # default kinds include page_data
        answer = await get_timed(client, url)
        assert answer.status == 200
        assert answer.seconds >= 0.3 + po.late.delay_ms / 1000
        sim.config.faults = Faults(error_rate=1.0, kinds=("page_data",))
        assert (await fetch(client, url))[0] in (500, 503)
        assert (await fetch(client, sim.base_url + po.url_path))[0] == 200
        sim.config.faults = Faults()
        sim.inject("503", path_contains="/attachments.json")
        assert (await fetch(client, url))[0] == 503
        stats = sim.stats.snapshot()
    assert stats["requests"]["page_data"] == 3 and stats["requests"]["po_page"] == 1
    assert sum(stats["faults"].values()) == 2 and stats["in_flight"] == 0
