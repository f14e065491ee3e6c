"""File downloads: bytes, sizes, names, HTML-instead answers and big files streamed."""

from __future__ import annotations

import hashlib
import resource

import aiohttp
from sim_testkit import MakeSim, disposition_name, sign_in

from coupa_async.sim import SimFile, Simulator
from coupa_async.sim.content import OLE_MAGIC, ZIP_MAGIC

MAGIC = {"pdf": b"%PDF-1.4", "msg": OLE_MAGIC, "docx": ZIP_MAGIC, "xlsx": ZIP_MAGIC}


async def _download(
    client: aiohttp.ClientSession, url: str
) -> tuple[aiohttp.ClientResponse, str, int, bytes, bytes]:
    """(response, sha256, size, first bytes, last bytes), streaming the body."""
    digest = hashlib.sha256()
    size = 0
    head = tail = b""
    async with client.get(url, allow_redirects=False) as r:
        async for chunk in r.content.iter_chunked(256 * 1024):
            if size < 16:
                head = (head + chunk)[:16]
            digest.update(chunk)
            size += len(chunk)
            tail = (tail + chunk)[-16:]
    return r, digest.hexdigest(), size, head, tail


async def test_every_file_matches_the_catalog(
    shared_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = shared_sim
    await sign_in(client, sim)
    seen_dispositions = set()
    checked = 0
    for f in sim.catalog.files:
        r, sha, size, head, tail = await _download(client, sim.base_url + f.url_path)
        assert r.status == 200
        if f.serves_html:
            assert r.content_type == "text/html"
            assert sha != f.sha256
            continue
        assert (sha, size) == (f.sha256, f.size), f.name
        assert r.headers["Content-Length"] == str(f.size)
        assert r.headers["Content-Type"] == f.content_type
        if f.type in MAGIC and f.size >= 16:
            assert head.startswith(MAGIC[f.type])
        if f.type == "pdf" and f.size >= 16:
            assert tail.endswith(b"%%EOF")
        header = r.headers.get("Content-Disposition")
        seen_dispositions.add(f.disposition)
        if f.disposition == "none":
            assert header is None
        else:
            assert header is not None and header.startswith("attachment;")
            assert disposition_name(header) == f.expected_name == f.name
        checked += 1
    assert checked >= 30
    assert seen_dispositions == {"filename", "filename_star", "both", "none"}


async def test_one_id_under_all_three_paths(
    shared_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = shared_sim
    await sign_in(client, sim)
    f = next(f for f in sim.catalog.files if not f.serves_html and f.size < 1_000_000)
    for prefix in ("/attachments/", "/file_download/", "/files/"):
        for suffix in ("", "?dl=1"):
            r, sha, size, _, _ = await _download(client, f"{sim.base_url}{prefix}{f.id}{suffix}")
            assert r.status == 200 and (sha, size) == (f.sha256, f.size)
    async with client.head(f"{sim.base_url}/files/{f.id}") as r:
        assert r.status == 200 and r.headers["Content-Length"] == str(f.size)
        assert await r.read() == b""


async def test_content_disposition_forms(
    shared_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = shared_sim
    await sign_in(client, sim)
    by_name: dict[str, SimFile] = {f.name: f for f in sim.catalog.files}

    async def header(f: SimFile) -> str | None:
        async with client.get(sim.base_url + f.url_path) as r:
            await r.read()
            return r.headers.get("Content-Disposition")

    assert await header(by_name["Relatório final.pdf"]) == (
        "attachment; filename*=UTF-8''Relat%C3%B3rio%20final.pdf"
    )
    assert await header(by_name["../../x.pdf"]) == 'attachment; filename="../../x.pdf"'
    assert await header(by_name["C:\\x.pdf"]) == "attachment; filename*=UTF-8''C%3A%5Cx.pdf"
    control = next(f for f in sim.catalog.files if "\x07" in f.name)
    assert "%07%09" in (await header(control) or "")
    both = next(f for f in sim.catalog.files if f.disposition == "both")
    value = await header(both)
    assert value is not None and 'filename="' in value and "filename*=UTF-8''" in value
    assert disposition_name(value) == both.name


async def test_big_file_is_streamed(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    """A 200 MB file arrives intact while the (in-process) server's peak memory barely moves."""
    size = 200 * 1024 * 1024
    sim = await make_sim(profile="uniform", pos=1, uniform_files=1, uniform_file_size=size)
    (f,) = sim.catalog.files
    await sign_in(client, sim)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    r, sha, got, head, tail = await _download(client, sim.base_url + f.url_path)
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert r.status == 200 and got == size
    assert head.startswith(b"%PDF-1.4") and tail.endswith(b"%%EOF")
    assert sha == f.sha256
    assert (peak_after - peak_before) * 1024 < 64 * 1024 * 1024
    assert sim.stats.bytes_sent >= size


async def test_varied_big_file(shared_sim: Simulator, client: aiohttp.ClientSession) -> None:
    sim = shared_sim
    await sign_in(client, sim)
    big = max(sim.catalog.files, key=lambda f: f.size)
    assert big.size >= 20 * 1024 * 1024
    r, sha, size, _, _ = await _download(client, sim.base_url + big.url_path)
    assert r.status == 200 and (sha, size) == (big.sha256, big.size)
