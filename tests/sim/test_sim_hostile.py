"""Hostile answers and the hostile profile, over real HTTP: each serves what it says, streams
without holding its body, and ends when the client goes or the simulator stops."""

from __future__ import annotations

import argparse
import asyncio
import email
import hashlib
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import psutil
import pytest
from sim_testkit import MakeSim, disposition_name, new_client, read_supplier, sign_in, tree

from coupa_async.sim import SimConfig, SimFile, SimPO, Simulator
from coupa_async.sim.cli import add_sim_arguments, config_from_args, describe
from coupa_async.sim.faults import GiB, KiB, MiB
from coupa_async.sim.hostile import (
    HOSTILE_CASES,
    MARKUP_SUPPLIER,
    PRIVATE_LINKS,
)
from coupa_async.sim.pages import other_origin

DEADLINE = 10.0  # generous bound on anything that must end "promptly"
RETRY_AFTER_VALUES = (
    "1000000000",
    "inf",
    "nan",
    "-5",
    "garbage",
    "Thu, 01 Jan 2099 00:00:00 GMT",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "1e400",
)


async def _signed_in(make_sim: MakeSim, **kwargs: Any) -> tuple[Simulator, aiohttp.ClientSession]:
    sim = await make_sim(**kwargs)
    client = new_client()
    await sign_in(client, sim)
    return sim, client


def _case(sim: Simulator, recipe: str) -> SimPO:
    return next(po for po in sim.catalog.pos if po.recipe == recipe)


def _bad(po: SimPO) -> SimFile:
    return next(f for f in po.files if f.hostile is not None)


def _good(po: SimPO) -> SimFile:
    return next(f for f in po.files if f.hostile is None)


def _ok_po(sim: Simulator) -> SimPO:
    return next(po for po in sim.catalog.pos if po.page == "ok" and po.files)


async def _until(check: Callable[[], bool]) -> None:
    """Wait until `check()` holds (within DEADLINE)."""
    async with asyncio.timeout(DEADLINE):
        while not check():
            await asyncio.sleep(0.02)


async def _drain(response: aiohttp.ClientResponse, limit: int | None = None) -> tuple[int, bytes]:
    """Read and discard the body (at most about `limit` bytes): (bytes read, first 200)."""
    total = 0
    head = b""
    async for chunk in response.content.iter_chunked(256 * KiB):
        if len(head) < 200:
            head += chunk[: 200 - len(head)]
        total += len(chunk)
        if limit is not None and total >= limit:
            break
    return total, head


def _looks_like_login_form(html: str) -> bool:
    doc = tree(html)
    return (
        doc.css_first("form input[type=password]") is not None
        and doc.css_first("input[name=authenticity_token]") is not None
    )


# --- injectable faults ----------------------------------------------------------------------


async def test_login_page_fault_answers_the_form_while_the_session_stays_valid(
    make_sim: MakeSim,
) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        po = _ok_po(sim)
        sim.inject("login_page", path_contains=po.url_path, count=-1)
        for _ in range(3):  # always
            async with client.get(sim.base_url + po.url_path, allow_redirects=False) as r:
                assert r.status == 200 and r.content_type == "text/html"
                assert _looks_like_login_form(await r.text())
        other = next(p for p in sim.catalog.pos if p.page == "ok" and p is not po)
        async with client.get(sim.base_url + other.url_path, allow_redirects=False) as r:
            assert r.status == 200 and po.number not in await r.text()  # signed in still
        assert sim.stats.faults["login_page"] == 3 and sim.stats.logins == 1
        sim.clear_faults()
        async with client.get(sim.base_url + po.url_path, allow_redirects=False) as r:
            assert r.status == 200 and f"#{po.number}" in await r.text()


async def test_login_page_fault_in_sso_mode_is_the_identity_providers_form(
    make_sim: MakeSim,
) -> None:
    sim = await make_sim(pos=5, sso=True)
    po = _ok_po(sim)
    sim.inject("login_page", path_contains=po.url_path)
    async with new_client() as client, client.get(sim.base_url + po.url_path) as r:
        doc = tree(await r.text())
    assert r.status == 200 and doc.css_first("form#idp-login input[type=password]") is not None


@pytest.mark.parametrize("value", RETRY_AFTER_VALUES)
async def test_retry_after_is_sent_raw_and_starts_no_penalty(make_sim: MakeSim, value: str) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        po = _ok_po(sim)
        path = po.files[0].url_path.split("?")[0]
        sim.inject("retry_after", path_contains=path, count=1, value=value)
        async with client.get(sim.base_url + path, allow_redirects=False) as r:
            assert r.status == 429
            assert r.headers.getall("Retry-After") == [value]
        # Nothing else is held back: the page, and the same path once the fault is used up.
        async with client.get(sim.base_url + po.url_path, allow_redirects=False) as r:
            assert r.status == 200
        async with client.get(sim.base_url + path, allow_redirects=False) as r:
            assert r.status == 200 and len(await r.read()) == po.files[0].size
        stats = sim.stats.snapshot()
    assert stats["retry_after"] == {path: {"answered": 1, "reached": 2}}
    assert stats["rate_limited"] == 0  # not the global penalty's 429
    assert stats["requests_by_host"][f"127.0.0.1:{sim.port}"] == stats["total"]


async def test_injections_can_last_and_are_checked(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=10)
    async with client:
        path = _ok_po(sim).url_path
        async with client.post(
            sim.base_url + "/__sim/inject",
            json={"fault": "retry_after", "path_contains": path, "count": None, "value": "7"},
        ) as r:
            assert r.status == 200
        for _ in range(4):
            async with client.get(sim.base_url + path) as r:
                assert r.status == 429 and r.headers["Retry-After"] == "7"
        assert sim.stats.retry_after_answered[path] == 4
        async with client.post(
            sim.base_url + "/__sim/inject", json={"fault": "big_body", "sizes": 3}
        ) as r:
            assert r.status == 400 and "sizes" in (await r.json())["error"]
    with pytest.raises(ValueError, match="value"):
        sim.inject("retry_after")
    with pytest.raises(ValueError, match="declare"):
        sim.inject("big_body", size=None, declare_length=True)
    with pytest.raises(ValueError, match="exceed"):
        sim.inject("stall", after_bytes=10, size=10)
    with pytest.raises(ValueError, match="count"):
        sim.inject("login_page", count=0)


@pytest.mark.parametrize("declare", [True, False])
async def test_big_body_sends_exactly_its_size(make_sim: MakeSim, declare: bool) -> None:
    sim, client = await _signed_in(make_sim, pos=5)
    size = 3 * MiB + 17
    path = _ok_po(sim).files[0].url_path
    sim.inject(
        "big_body", path_contains=path, size=size, declare_length=declare, filename="a b.pdf"
    )
    async with client, client.get(sim.base_url + path) as r:
        assert r.status == 200 and r.content_type == "application/pdf"
        assert r.content_length == (size if declare else None)
        assert (r.headers.get("Transfer-Encoding") == "chunked") is not declare
        assert disposition_name(r.headers["Content-Disposition"]) == "a b.pdf"
        total, head = await _drain(r)
    assert total == size and head.startswith(b"%PDF-1.4")
    await _until(lambda: sim.stats.hostile_streams_ended.get("complete") == 1)
    assert sim.stats.hostile_bytes["big_body"] == size
    assert sim.stats.hostile_streams_open == 0


async def test_big_html_body_starts_like_a_po_page(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=5)
    po = _ok_po(sim)
    sim.inject("big_body", path_contains=po.url_path, size=MiB, content_type="text/html")
    async with client, client.get(sim.base_url + po.url_path) as r:
        assert r.content_type == "text/html"
        total, head = await _drain(r)
    assert total == MiB
    start = f"<!DOCTYPE html><html><head><title>Purchase Order #{po.number}</title>"
    assert head.decode().startswith(start)


async def test_endless_body_goes_on_until_the_client_leaves(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=5)
    path = _ok_po(sim).files[0].url_path
    sim.inject("big_body", path_contains=path, size=None)
    async with client, client.get(sim.base_url + path) as r:
        assert r.content_length is None and r.headers["Transfer-Encoding"] == "chunked"
        total, _ = await _drain(r, limit=40 * MiB)
        assert total >= 40 * MiB
    await _until(lambda: sim.stats.hostile_streams_open == 0)
    assert sim.stats.hostile_streams_ended == {"client_gone": 1}
    assert sim.stats.hostile_bytes["big_body"] >= 40 * MiB


async def test_a_200_mb_body_streams_without_memory_growing(make_sim: MakeSim) -> None:
    """Server and client share this process: neither may hold the body."""
    sim, client = await _signed_in(make_sim, pos=5)
    path = _ok_po(sim).files[0].url_path
    size = 200 * MiB
    sim.inject("big_body", path_contains=path, size=size)
    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    total = 0
    async with client, client.get(sim.base_url + path) as r:
        async for chunk in r.content.iter_chunked(256 * KiB):
            total += len(chunk)
            if total % (8 * MiB) < 256 * KiB:
                peak = max(peak, process.memory_info().rss)
    peak = max(peak, process.memory_info().rss)
    assert total == size
    assert peak - before < 100 * MiB, f"RSS grew by {(peak - before) / MiB:.0f} MiB"


@pytest.mark.parametrize("content_type", ["application/pdf", "text/html"])
async def test_gzip_bomb_is_small_on_the_wire_and_huge_decompressed(
    make_sim: MakeSim, content_type: str
) -> None:
    sim, client = await _signed_in(make_sim, pos=5)
    po = _ok_po(sim)
    size = 64 * MiB
    sim.inject(
        "gzip_bomb", path_contains=po.url_path, count=2, size=size, content_type=content_type
    )
    async with client:
        async with client.get(sim.base_url + po.url_path, auto_decompress=False) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            wire = await r.read()
        assert len(wire) == r.content_length and len(wire) < size // 500
        inflate = zlib.decompressobj(31)
        out = 0
        head = b""
        for i in range(0, len(wire), 16 * KiB):
            piece = inflate.decompress(wire[i : i + 16 * KiB])
            head = head or piece[:100]
            out += len(piece)
        assert inflate.eof and out == size
        if content_type == "text/html":
            assert head.startswith(b"<!DOCTYPE html><html><head><title>Purchase Order #")
        else:
            assert head.startswith(b"%PDF-1.4")
        async with client.get(sim.base_url + po.url_path) as r:  # a client that inflates
            total, _ = await _drain(r)
        assert total == size
    assert sim.stats.hostile_bytes["gzip_bomb"] == 2 * len(wire)


async def test_stall_sends_its_first_bytes_then_nothing(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=5)
    path = _ok_po(sim).files[0].url_path
    after = 100 * KiB
    sim.inject("stall", path_contains=path, after_bytes=after, size=MiB)
    async with client, client.get(sim.base_url + path) as r:
        assert r.content_length == MiB
        async with asyncio.timeout(DEADLINE):
            first = await r.content.readexactly(after)
        assert first.startswith(b"%PDF-1.4")
        with pytest.raises(TimeoutError):  # the server has nothing more to send
            async with asyncio.timeout(0.3):
                await r.content.read(1)
        assert sim.stats.hostile_streams_open == 1
    await _until(lambda: sim.stats.hostile_streams_open == 0)
    assert sim.stats.hostile_bytes["stall"] == after
    assert sim.stats.hostile_streams_ended == {"client_gone": 1}


async def test_declared_size_declares_it_then_sends_for_real(make_sim: MakeSim) -> None:
    sim, client = await _signed_in(make_sim, pos=5)
    path = _ok_po(sim).files[0].url_path
    sim.inject("declared_size", path_contains=path)
    async with client, client.get(sim.base_url + path) as r:
        assert r.content_length == 3 * GiB
        total, head = await _drain(r, limit=8 * MiB)
    assert total >= 8 * MiB and head.startswith(b"%PDF-1.4")
    await _until(lambda: sim.stats.hostile_streams_open == 0)


async def test_stopping_ends_open_streams_promptly() -> None:
    sim = Simulator(SimConfig(pos=5))
    await sim.start()
    try:
        path = _ok_po(sim).files[0].url_path
        sim.inject("big_body", path_contains=path, size=None)  # read
        sim.inject("big_body", path_contains=path, size=None)  # never read: the server blocks
        sim.inject("stall", path_contains=path)
        async with new_client() as client:
            await sign_in(client, sim)
            responses = [await client.get(sim.base_url + path) for _ in range(3)]
            reading = asyncio.create_task(_drain(responses[0]))
            await _until(lambda: sim.stats.hostile_bytes.get("big_body", 0) > 8 * MiB)
            await _until(lambda: sim.stats.hostile_streams_open == 3)
            async with asyncio.timeout(DEADLINE):
                await sim.stop()
            assert sim.stats.hostile_streams_open == 0
            assert sim.stats.hostile_streams_ended == {"stopped": 3}
            with pytest.raises(aiohttp.ClientError):
                async with asyncio.timeout(DEADLINE):
                    await reading
            for response in responses:
                response.release()
    finally:
        await sim.stop()


# --- the hostile profile --------------------------------------------------------------------


@pytest.fixture
async def hostile_sim() -> AsyncIterator[Simulator]:
    """The hostile profile, its big cases small."""
    config = SimConfig(
        profile="hostile",
        hostile_page_size=4 * MiB,
        hostile_bomb_size=32 * MiB,
        hostile_stall_after=50 * KiB,
        hostile_retry_times=2,
    )
    async with Simulator(config) as sim:
        yield sim


EXPECTED = {
    "hostile_markup_names": "COMPLETED",
    "hostile_name_clash": "COMPLETED",
    "hostile_name_clash_folder": "COMPLETED",
    "hostile_login_on_file": "PARTIAL",
    "hostile_login_on_page": "FAILED",
    "hostile_other_host_429": "COMPLETED",
    "hostile_huge_page": "FAILED",
    "hostile_gzip_page": "FAILED",
    "hostile_huge_file": "PARTIAL",
    "hostile_gzip_file": "PARTIAL",
    "hostile_endless_file": "PARTIAL",
    "hostile_stalled_file": "PARTIAL",
    "hostile_private_links": "COMPLETED",
}


def test_hostile_profile_holds_every_case_in_order() -> None:
    catalog = Simulator(SimConfig(profile="hostile")).catalog
    assert [po.recipe for po in catalog.pos] == list(HOSTILE_CASES) == list(EXPECTED)
    assert [int(po.number) for po in catalog.pos] == list(range(15262984, 15262984 + 13))
    assert {po.recipe: po.expected_outcome for po in catalog.pos} == EXPECTED
    for po in catalog.pos:
        delivered = [f for f in po.files if f.delivered] if not po.page_refused else []
        assert [f.sha256 for f in delivered] == [e.sha256 for e in po.expected_files]
        assert po.expected_links == (3 if po.recipe == "hostile_private_links" else 0)
    some = SimConfig(profile="hostile", recipes=("hostile_stalled_file", "hostile_huge_page"))
    assert [po.recipe for po in Simulator(some).catalog.pos] == list(some.recipes or ())
    with pytest.raises(ValueError, match=r"unknown recipe.*'plain_links'.*known hostile recipes"):
        SimConfig(profile="hostile", recipes=("plain_links",))
    with pytest.raises(ValueError, match="hostile_bomb_size"):
        SimConfig(profile="hostile", hostile_bomb_size=0)


def test_cli_runs_the_hostile_profile() -> None:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    args = parser.parse_args(
        ["--profile", "hostile", "--hostile-page-size", "endless", "--hostile-retry-after", "nan"]
    )
    config = config_from_args(args)
    assert config.profile == "hostile" and config.hostile_page_size is None
    assert config.hostile_retry_after == "nan"
    page = _case(Simulator(config), "hostile_huge_page")
    assert page.hostile is not None and page.hostile.kwargs["size"] is None


async def test_hostile_catalog_json_and_description(hostile_sim: Simulator) -> None:
    async with new_client() as client, client.get(hostile_sim.base_url + "/__sim/catalog") as r:
        catalog = await r.json()
    pos = {po["recipe"]: po for po in catalog["pos"]}
    assert pos["hostile_login_on_page"]["hostile"]["fault"] == "login_page"
    other = next(f for f in pos["hostile_other_host_429"]["files"] if f["other_host"])
    assert other["hostile"] == {
        "fault": "retry_after",
        "params": {"value": "1000000000"},
        "times": 2,
    }
    text = describe(hostile_sim)
    assert "PARTIAL 5" in text
    assert f"PO{pos['hostile_login_on_page']['number']}  hostile_login_on_page" in text


async def test_markup_names_are_served_raw(hostile_sim: Simulator) -> None:
    po = _case(hostile_sim, "hostile_markup_names")
    async with new_client() as client:
        await sign_in(client, hostile_sim)
        async with client.get(hostile_sim.base_url + po.url_path) as r:
            doc = tree(await r.text())
        assert read_supplier(doc) == MARKUP_SUPPLIER
        names = []
        for f in po.files:
            async with client.get(hostile_sim.base_url + f.url_path) as r:
                body = await r.read()
                assert r.status == 200 and hashlib.sha256(body).hexdigest() == f.sha256
                names.append(disposition_name(r.headers.get("Content-Disposition")))
    raw = [f.name for f in po.files]
    assert names == [*raw[:3], None]  # the last one's name is in the markup only
    assert any("\x1b" in name for name in raw) and "\x07" in raw[3] and "\u202e" in raw[3]
    download = doc.css_first(f'a[href="{po.files[3].url_path}"]')
    assert download is not None and download.attributes["download"] == raw[3]
    assert [e.name for e in po.expected_files] == raw


async def test_name_clash_files_are_distinct(hostile_sim: Simulator) -> None:
    clash = _case(hostile_sim, "hostile_name_clash")
    folder = _case(hostile_sim, "hostile_name_clash_folder")
    assert [f.name for f in clash.files] == [
        "note.eml",
        "note.eml.pdf",
        "note.pdf",
        "note.eml (e-mail).pdf",
        "note.eml (e-mail 9).pdf",
    ]
    assert [f.name for f in folder.files] == ["note.eml", "note.eml_attachments"]
    async with new_client() as client:
        await sign_in(client, hostile_sim)
        bodies = {}
        for f in (*clash.files, *folder.files):
            async with client.get(hostile_sim.base_url + f.url_path) as r:
                bodies[f.id] = (r.content_type, await r.read())
    assert len({body for _, body in bodies.values()}) == len(bodies)
    for po in (clash, folder):
        content_type, eml = bodies[po.files[0].id]
        message = email.message_from_bytes(eml)
        assert content_type == "message/rfc822" and message["Subject"]
        assert po.files[0].email is not None and po.files[0].email.attachments
    assert bodies[folder.files[1].id][0] == "text/plain"


async def test_login_on_file_and_page_answer_the_form_always(hostile_sim: Simulator) -> None:
    on_file = _case(hostile_sim, "hostile_login_on_file")
    on_page = _case(hostile_sim, "hostile_login_on_page")
    async with new_client() as client:
        await sign_in(client, hostile_sim)
        for url_path in (_bad(on_file).url_path, on_page.url_path) * 2:
            async with client.get(hostile_sim.base_url + url_path, allow_redirects=False) as r:
                assert r.status == 200 and _looks_like_login_form(await r.text())
        good = _good(on_file)
        async with client.get(hostile_sim.base_url + good.url_path) as r:  # still signed in
            assert hashlib.sha256(await r.read()).hexdigest() == good.sha256
    assert hostile_sim.stats.faults["login_page"] == 4 and hostile_sim.stats.logins == 1
    assert on_page.page_refused and on_page.expected_supplier is None


async def test_other_host_file_answers_429_then_the_file(hostile_sim: Simulator) -> None:
    po = _case(hostile_sim, "hostile_other_host_429")
    far = next(f for f in po.files if f.other_host)
    base = hostile_sim.base_url
    other = other_origin(base)
    assert other == f"http://localhost:{hostile_sim.port}"
    async with new_client() as client:
        await sign_in(client, hostile_sim)
        async with client.get(base + po.url_path) as r:
            doc = tree(await r.text())
        hrefs = [a.attributes["href"] for a in doc.css("#attachments a")]
        assert hrefs == [po.files[0].url_path, po.files[1].url_path, other + far.url_path]
    async with new_client() as stranger:  # no session: the other host needs none
        for _ in range(2):
            async with stranger.get(other + far.url_path, allow_redirects=False) as r:
                assert r.status == 429 and r.headers["Retry-After"] == "1000000000"
        async with stranger.get(other + far.url_path, allow_redirects=False) as r:
            assert r.status == 200 and hashlib.sha256(await r.read()).hexdigest() == far.sha256
    stats = hostile_sim.stats
    assert stats.retry_after_answered == {far.url_path: 2}
    assert stats.retry_after_reached == {far.url_path: 3}
    assert stats.requests_by_host[f"localhost:{hostile_sim.port}"] == 3
    assert stats.rate_limited == 0


async def test_huge_and_bomb_pages(hostile_sim: Simulator) -> None:
    huge = _case(hostile_sim, "hostile_huge_page")
    bomb = _case(hostile_sim, "hostile_gzip_page")
    async with new_client() as client:
        await sign_in(client, hostile_sim)
        async with client.get(hostile_sim.base_url + huge.url_path) as r:
            assert r.content_type == "text/html" and r.content_length is None
            total, head = await _drain(r)
        assert total == 4 * MiB
        assert head.startswith(
            f"<!DOCTYPE html><html><head><title>Purchase Order #{huge.number}".encode()
        )
        async with client.get(hostile_sim.base_url + bomb.url_path) as r:
            assert r.headers["Content-Encoding"] == "gzip" and r.content_type == "text/html"
            wire = r.content_length
            total, head = await _drain(r)
        assert wire is not None and wire < 32 * MiB // 500 and total == 32 * MiB
        assert head.startswith(b"<!DOCTYPE html><html><head><title>Purchase Order #")


async def test_bad_files_next_to_good_ones(hostile_sim: Simulator) -> None:
    base = hostile_sim.base_url
    async with new_client() as client:
        await sign_in(client, hostile_sim)
        for recipe in ("hostile_huge_file", "hostile_gzip_file", "hostile_endless_file"):
            good = _good(_case(hostile_sim, recipe))
            async with client.get(base + good.url_path) as r:
                assert hashlib.sha256(await r.read()).hexdigest() == good.sha256
        huge = _bad(_case(hostile_sim, "hostile_huge_file"))
        async with client.get(base + huge.url_path) as r:
            assert r.content_length == 3 * GiB
            assert disposition_name(r.headers["Content-Disposition"]) == huge.name
        gzip_file = _bad(_case(hostile_sim, "hostile_gzip_file"))
        async with client.get(base + gzip_file.url_path) as r:
            assert r.headers["Content-Encoding"] == "gzip" and r.content_type == "application/pdf"
            total, head = await _drain(r)
        assert total == 32 * MiB and head.startswith(b"%PDF-1.4")
        endless = _bad(_case(hostile_sim, "hostile_endless_file"))
        async with client.get(base + endless.url_path) as r:
            total, _ = await _drain(r, limit=20 * MiB)
        assert total >= 20 * MiB
        stalled = _bad(_case(hostile_sim, "hostile_stalled_file"))
        async with client.get(base + stalled.url_path) as r:
            assert r.content_length is not None and r.content_length > 50 * KiB
            async with asyncio.timeout(DEADLINE):
                await r.content.readexactly(50 * KiB)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await r.content.read(1)
    await _until(lambda: hostile_sim.stats.hostile_streams_open == 0)


async def test_private_links_look_like_files_elsewhere(hostile_sim: Simulator) -> None:
    po = _case(hostile_sim, "hostile_private_links")
    assert [(k.value, k.name, k.kind) for k in po.links] == [
        (url, name, "url") for url, name in PRIVATE_LINKS
    ]
    async with new_client() as client:
        await sign_in(client, hostile_sim)
        async with client.get(hostile_sim.base_url + po.url_path) as r:
            doc = tree(await r.text())
    anchors = doc.css("#attachments a[download]")
    assert [(a.attributes["href"], a.attributes["download"]) for a in anchors] == list(
        PRIVATE_LINKS
    )
    assert po.expected_outcome == "COMPLETED" and len(po.expected_files) == 1
