"""The simulator's REST API: OAuth2 tokens and scopes, the rate limit, and the catalog as the API
shows it (ids, areas, URL and text attachments, the bytes of every file)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sim_testkit import N_RECIPES, MakeSim, fetch, sign_in

from coupa_async.sim import ExpectedFile, SimConfig, SimPO, SimRequisition, Simulator, Stats
from coupa_async.sim.api import (
    SCOPE_COMMENT,
    SCOPE_COMMON,
    SCOPE_PO,
    SCOPE_PR,
    RateLimiter,
    TokenStore,
)
from coupa_async.sim.app import classify
from coupa_async.sim.catalog import comment_place, header_place, line_place
from coupa_async.sim.config import DEFAULT_API_SCOPES

# Tests that are not about the rate limit lift it.
UNLIMITED: dict[str, Any] = {"api_rate_per_s": 1e6, "api_burst": 100_000}
Item = tuple[Any, ...]


@pytest.fixture(scope="module")
async def api_sim() -> AsyncIterator[Simulator]:
    """Every recipe once, the rate limit lifted; read-only."""
    async with Simulator(SimConfig(seed=7, pos=N_RECIPES, **UNLIMITED)) as sim:
        yield sim


async def _token_answer(
    client: aiohttp.ClientSession, sim: Simulator, **form: str
) -> tuple[int, dict[str, Any]]:
    data = {
        "grant_type": "client_credentials",
        "client_id": sim.config.api_client_id,
        "client_secret": sim.config.api_client_secret,
        **form,
    }
    async with client.post(f"{sim.base_url}/oauth2/token", data=data) as r:
        return r.status, await r.json()


async def _token(client: aiohttp.ClientSession, sim: Simulator, *scopes: str) -> str:
    form = {"scope": " ".join(scopes)} if scopes else {}
    status, body = await _token_answer(client, sim, **form)
    assert status == 200, body
    return str(body["access_token"])


async def _get(
    client: aiohttp.ClientSession, url: str, token: str | None, **params: str
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """(status, JSON body, response)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with client.get(url, params=params, headers=headers) as r:
        return r.status, await r.json(), r


# --- OAuth2 and scopes ---------------------------------------------------------------------------


async def test_token_grants_requested_and_allowed_scopes(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(pos=3, api_scopes=f"{SCOPE_PO} {SCOPE_COMMON}")
    status, body = await _token_answer(client, sim)
    assert status == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 86_400
    assert body["scope"] == f"{SCOPE_PO} {SCOPE_COMMON}" and body["access_token"]
    status, body = await _token_answer(client, sim, scope=" ".join(DEFAULT_API_SCOPES))
    assert (status, body["scope"]) == (200, f"{SCOPE_PO} {SCOPE_COMMON}")  # the rest granted
    status, body = await _token_answer(client, sim, scope=SCOPE_PR)
    assert (status, body["error"]) == (400, "invalid_scope")

    status, body = await _token_answer(client, sim, client_secret="wrong")
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = await _token_answer(client, sim, client_id="someone-else")
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = await _token_answer(client, sim, grant_type="password")
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    status, body = await _token_answer(client, sim, grant_type="")
    assert (status, body["error"]) == (400, "invalid_request")

    basic = f"{sim.config.api_client_id}:{sim.config.api_client_secret}"
    headers = {"Authorization": "Basic " + base64.b64encode(basic.encode()).decode()}
    form = {"grant_type": "client_credentials", "scope": SCOPE_PO}
    async with client.post(f"{sim.base_url}/oauth2/token", data=form, headers=headers) as r:
        assert (r.status, (await r.json())["scope"]) == (200, SCOPE_PO)
        assert r.headers["Cache-Control"] == "no-store"
    api = sim.stats.snapshot()["api"]
    assert (api["tokens_issued"], api["tokens_refused"], api["served"]) == (3, 2, 0)


async def test_bearer_token_needed_and_tokens_expire(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(pos=3)
    url = f"{sim.base_url}/api/purchase_orders"
    status, body, r = await _get(client, url, None)
    assert (status, body["error"]) == (401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    status, body, _ = await _get(client, url, "not-a-token")
    assert (status, body["error"]) == (401, "invalid_token")
    status, _, _ = await _get(client, f"{sim.base_url}/api/no_such_thing", None)
    assert status == 401

    token = await _token(client, sim)
    assert (await _get(client, url, token))[0] == 200
    assert (await _get(client, f"{sim.base_url}/api/no_such_thing", token))[0] == 404
    async with client.post(f"{sim.base_url}/__sim/expire_tokens") as r:
        assert await r.json() == {"expired": 1}
    status, body, _ = await _get(client, url, token)
    assert (status, body["error"]) == (401, "invalid_token") and "expired" in body[
        "error_description"
    ]
    assert (await _get(client, url, await _token(client, sim)))[0] == 200

    sim.config.api_token_ttl_seconds = 0.3  # read when a token is issued
    token = await _token(client, sim)
    assert (await _get(client, url, token))[0] == 200
    await asyncio.sleep(0.4)
    assert (await _get(client, url, token))[0] == 401
    assert sim.stats.api_served == 4  # with a live token (the catch-all's 404 too); no 401


async def test_each_endpoint_needs_its_scope(
    api_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = api_sim
    po = next(p for p in sim.catalog.pos if p.recipe == "pr_lines_comments")
    assert po.requisition is not None
    pr_file = po.requisition.files[0]
    base = sim.base_url
    endpoints: list[tuple[str, str, dict[str, str]]] = [
        (SCOPE_PO, "/api/purchase_orders", {"po-number": po.number}),
        (SCOPE_PO, f"/api/purchase_orders/{po.internal_id}", {}),
        (SCOPE_PO, f"/api/purchase_orders/{po.internal_id}/attachments", {}),
        (SCOPE_PR, f"/api/requisitions/{po.requisition.number}", {}),
        (SCOPE_PR, f"/api/requisitions/{po.requisition.number}/attachments", {}),
        (
            SCOPE_COMMENT,
            "/api/comments",
            {"commentable_type": "RequisitionHeader", "commentable_id": po.requisition.number},
        ),
        (SCOPE_COMMON, f"/api/attachments/{pr_file.id}/file", {}),
    ]
    tokens = {scope: await _token(client, sim, scope) for scope in DEFAULT_API_SCOPES}
    for needed, path, params in endpoints:
        for scope, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}
            async with client.get(base + path, params=params, headers=headers) as r:
                if scope == needed:
                    assert r.status == 200, path
                    await r.read()
                    continue
                body = await r.json()
                assert (r.status, body["error"], body["scope"]) == (
                    403,
                    "insufficient_scope",
                    needed,
                ), path
                assert needed in body["error_description"]
                assert needed in r.headers["WWW-Authenticate"]


# --- purchase orders by number -------------------------------------------------------------------


async def test_lookup_by_number_in_batches_and_pages(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(seed=3, pos=130, **UNLIMITED)
    token = await _token(client, sim)
    url = f"{sim.base_url}/api/purchase_orders"
    shown = {po.number for po in sim.catalog.pos if po.page == "ok"}
    assert 0 < len(shown) < 130
    numbers = [po.number for po in sim.catalog.pos]

    found: list[str] = []
    for start in range(0, len(numbers), 50):
        batch = numbers[start : start + 50]
        key = "po_number[in]" if start % 100 == 0 else "po-number[in]"
        status, body, _ = await _get(client, url, token, **{key: ",".join(batch)})
        assert status == 200
        assert [o["po-number"] for o in body] == [n for n in batch if n in shown]
        found += [o["po-number"] for o in body]
    assert set(found) == shown

    batch = ",".join(numbers[:60])
    pages = []
    for offset in (0, 50, 100):
        params = {"po_number[in]": batch, "offset": str(offset)}
        status, body, _ = await _get(client, url, token, **params)
        assert status == 200 and len(body) <= 50
        pages.append([o["po-number"] for o in body])
    assert pages[2] == [] and [*pages[0], *pages[1]] == [n for n in numbers[:60] if n in shown]
    status, body, _ = await _get(client, url, token, **{"po_number[in]": batch, "limit": "500"})
    assert len(body) == 50
    status, body, _ = await _get(
        client, url, token, **{"po_number[in]": batch, "limit": "7", "offset": "7"}
    )
    assert [o["po-number"] for o in body] == pages[0][7:14]

    everything: list[str] = []  # no filter: every PO the API knows, shadow POs too
    while True:
        _, body, _ = await _get(client, url, token, offset=str(len(everything)))
        everything += [o["po-number"] for o in body]
        if len(body) < 50:
            break
    assert everything == [
        po.number for po in (*sim.catalog.pos, *sim.catalog.shadow_pos) if po.page == "ok"
    ]

    one = next(po for po in sim.catalog.pos if po.page == "ok")
    for key in ("po-number", "po_number"):
        _, body, _ = await _get(client, url, token, **{key: one.number})
        assert [o["po-number"] for o in body] == [one.number]
    for bad in ({"limit": "0"}, {"limit": "x"}, {"offset": "-1"}):
        status, body, _ = await _get(client, url, token, **bad)
        assert (status, body["error"]) == (400, "invalid_request")


async def test_limited_objects_are_lighter(
    api_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = api_sim
    token = await _token(client, sim)
    po = next(p for p in sim.catalog.pos if p.recipe == "pr_files_po_not_pdf")
    assert po.requisition is not None
    headers = {"Authorization": f"Bearer {token}"}
    sizes = {}
    for form in ("limited", "full", "fields"):
        params = {"po-number": po.number}
        if form == "limited":
            params["return_object"] = "limited"
        elif form == "fields":
            params["fields"] = '["id","po-number"]'  # accepted; the whole object comes back
        async with client.get(
            f"{sim.base_url}/api/purchase_orders", params=params, headers=headers
        ) as r:
            raw = await r.read()
            body = (await r.json())[0]
        sizes[form] = len(raw)
        if form == "limited":
            assert body == {
                "id": int(po.internal_id),
                "po-number": po.number,
                "supplier": {"name": po.supplier},
                "requisition-header": {
                    "id": int(po.requisition.number),
                    "requisition-number": po.requisition.number,
                },
            }
        else:
            assert {"attachments", "order-lines", "supplier", "requisition-header"} <= set(body)
            assert len(body) > 40 and len(body["order-lines"][0]) > 30
    assert sizes["full"] == sizes["fields"] > 10 * sizes["limited"]


async def test_internal_ids_are_not_numbers(
    api_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = api_sim
    token = await _token(client, sim)
    base = sim.base_url
    by_recipe = {po.recipe: po for po in sim.catalog.pos}
    for recipe in ("id_not_found", "id_other_po"):
        po = by_recipe[recipe]
        assert po.internal_id != po.number
        _, body, _ = await _get(
            client, f"{base}/api/purchase_orders", token, **{"po-number": po.number}
        )
        assert [(o["id"], o["po-number"]) for o in body] == [(int(po.internal_id), po.number)]
        status, body, _ = await _get(client, f"{base}/api/purchase_orders/{po.internal_id}", token)
        assert (status, body["po-number"]) == (200, po.number)
        status, body, _ = await _get(client, f"{base}/api/purchase_orders/{po.number}", token)
        if recipe == "id_not_found":
            assert status == 404
        else:  # the number is another PO's id: the shadow PO answers
            shadow = next(s for s in sim.catalog.shadow_pos if s.shadow_of == po.number)
            assert (status, body["id"], body["po-number"]) == (200, int(po.number), shadow.number)
            _, listed, _ = await _get(
                client, f"{base}/api/purchase_orders", token, **{"po-number": shadow.number}
            )
            assert [o["id"] for o in listed] == [int(po.number)]


# --- every recipe: the API's attachments are the pages' -------------------------------------------


def _api_items(
    attachments: list[dict[str, Any]], place: str, source: str, files: dict[int, dict[str, Any]]
) -> list[Item]:
    """(kind, place, id, name or value, size, content type) of each attachment of one area;
    file attachments are also noted in `files` by id."""
    items: list[Item] = []
    for a in attachments:
        kind = a["type"]
        assert a["intent"] in ("Internal", "Supplier")
        if kind == "AttachmentFile":
            assert a["url"] is None and a["text"] is None
            files[a["id"]] = {**a, "place": place, "source": source}
            items.append(
                (
                    "file",
                    place,
                    a["id"],
                    a["file-file-name"],
                    a["file-file-size"],
                    a["file-content-type"],
                )
            )
        else:
            assert kind in ("AttachmentUrl", "AttachmentText") and a["file-url"] is None
            value = a["url"] if kind == "AttachmentUrl" else a["text"]
            other = a["text"] if kind == "AttachmentUrl" else a["url"]
            assert other is None
            items.append(
                (kind.removeprefix("Attachment").lower(), place, a["id"], value, None, None)
            )
    return items


def _catalog_items(page: SimPO | SimRequisition) -> list[Item]:
    items: list[Item] = [
        ("file", f.place, f.id, f.expected_name, f.size, f.content_type) for f in page.files
    ]
    items += [(k.kind, k.place, k.id, k.value, None, None) for k in page.links]
    return sorted(items, key=repr)


async def _page_items(
    client: aiohttp.ClientSession,
    base: str,
    token: str,
    page: SimPO | SimRequisition,
    body: dict[str, Any],
    files: dict[int, dict[str, Any]],
) -> list[Item]:
    """Every attachment the API shows of one PO or requisition, by area."""
    source = page.source_kind
    lines_key = "order-lines" if source == "PO" else "requisition-lines"
    items = _api_items(body["attachments"], header_place(source), source, files)
    for line in body[lines_key]:
        items += _api_items(
            line["attachments"], line_place(source, line["line-num"]), source, files
        )
    commentable = (
        ("OrderHeader", page.internal_id)
        if isinstance(page, SimPO)
        else ("RequisitionHeader", page.number)
    )
    status, comments, _ = await _get(
        client,
        f"{base}/api/comments",
        token,
        **{"commentable_type": commentable[0], "commentable_id": commentable[1]},
    )
    assert status == 200
    by_id = {c.id: c for c in page.comments}
    assert [c["id"] for c in comments] == list(by_id)
    for c in comments:
        comment = by_id[c["id"]]
        assert (c["comments"], c["created-by"]["fullname"]) == (comment.body, comment.author)
        place = comment_place(source, comment)
        items += _api_items(c["attachments"], place, source, files)
    return sorted(items, key=repr)


async def _download(
    client: aiohttp.ClientSession, url: str, token: str
) -> tuple[int, str, str, int, str | None]:
    """(status, content type, sha256, size, Content-Length)."""
    digest = hashlib.sha256()
    size = 0
    async with client.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
        async for chunk in r.content.iter_chunked(256 * 1024):
            digest.update(chunk)
            size += len(chunk)
        return (
            r.status,
            r.headers["Content-Type"],
            digest.hexdigest(),
            size,
            r.headers.get("Content-Length"),
        )


async def test_every_recipe_shows_the_pages_attachments(
    api_sim: Simulator, client: aiohttp.ClientSession
) -> None:
    sim = api_sim
    base = sim.base_url
    token = await _token(client, sim)
    pos = sim.catalog.pos
    listed: dict[str, dict[str, Any]] = {}
    for start in range(0, len(pos), 50):
        batch = ",".join(po.number for po in pos[start : start + 50])
        status, body, _ = await _get(
            client, f"{base}/api/purchase_orders", token, **{"po_number[in]": batch}
        )
        assert status == 200
        listed |= {o["po-number"]: o for o in body}
    seen: Counter[str] = Counter()
    for po in pos:
        if po.page != "ok":
            assert po.number not in listed, po.recipe
            status, _, _ = await _get(client, f"{base}/api/purchase_orders/{po.internal_id}", token)
            assert status == 404
            continue
        body = listed[po.number]
        assert body["id"] == int(po.internal_id)
        assert (body["supplier"] or {}).get("name") == po.supplier
        files: dict[int, dict[str, Any]] = {}
        items = await _page_items(client, base, token, po, body, files)
        assert items == _catalog_items(po), po.recipe
        pr = po.requisition
        if pr is None:
            assert body["requisition-header"] is None
        else:
            assert body["requisition-header"] == {
                "id": int(pr.number),
                "requisition-number": pr.number,
            }
            status, pr_body, _ = await _get(client, f"{base}/api/requisitions/{pr.number}", token)
            if pr.kind == "error":
                assert (status, pr_body["error"]) == (403, "forbidden"), po.recipe
                status, _, _ = await _get(
                    client,
                    f"{base}/api/comments",
                    token,
                    **{"commentable_type": "RequisitionHeader", "commentable_id": pr.number},
                )
                assert status == 403
            else:
                assert status == 200
                pr_items = await _page_items(client, base, token, pr, pr_body, files)
                assert pr_items == _catalog_items(pr), po.recipe
                items += pr_items
        seen.update(f"{kind} {place.split()[0]}" for kind, place, *_ in items)
        seen.update(
            f"{kind} in a {place.split()[1]}"
            for kind, place, *_ in items
            if place.startswith("requisition ")
        )

        saved: list[ExpectedFile] = []
        for file_id, a in files.items():
            f = sim.catalog.file(file_id)
            assert a["file-url"] == f"{base}/api/attachments/{file_id}/file"
            status, content_type, sha, size, length = await _download(client, a["file-url"], token)
            assert status == 200
            if f.serves_html:  # as its page's file route answers
                assert content_type.startswith("text/html") and sha != f.sha256
                continue
            assert (content_type, sha, size, length) == (
                f.content_type,
                f.sha256,
                f.size,
                str(f.size),
            )
            counts = a["source"] == "PO" or (po.uses_requisition and pr is not None)
            if counts:
                saved.append(ExpectedFile(sha, size, a["source"], a["file-file-name"]))
        if not po.unreadable:  # what a correct downloader saves, had it read the pages
            assert sorted(saved) == sorted(po.expected_files), po.recipe
            links = [
                i
                for i in items
                if i[0] != "file" and (not i[1].startswith("requisition ") or po.uses_requisition)
            ]
            assert len(links) == po.expected_links, po.recipe
    for variant in (
        "file header",
        "file line",
        "file comment",
        "url header",
        "text header",
        "text line",
        "file in a line",
        "file in a comment",
        "text in a line",
        "url requisition",
    ):
        assert seen[variant] > 0, variant


# --- the rate limit ------------------------------------------------------------------------------


def test_rate_limiter_counts_windows_and_ignored_retry_after() -> None:
    now = [100.0]
    stats = Stats()
    limiter = RateLimiter(SimConfig(pos=1), stats, clock=lambda: now[0])
    assert [limiter.admit("c") for _ in range(20)] == [None] * 20  # the burst
    assert limiter.admit("c") == 1  # 0.04 s to the next token: Retry-After is whole seconds
    assert limiter.admit("other") is None  # buckets are per client
    now[0] += 0.1
    assert limiter.admit("c") == 1  # in flight when the 429 was given
    now[0] += 0.4
    assert limiter.admit("c") == 1  # past the grace: it ignored Retry-After
    assert (
        stats.api_rate_limited,
        stats.api_requests_in_flight_at_429,
        stats.api_requests_during_retry_after,
    ) == (3, 1, 1)
    now[0] += 0.5  # the Retry-After is over and the bucket full again
    assert [limiter.admit("c") for _ in range(20)] == [None] * 20
    assert limiter.admit("c") == 1
    assert stats.api_peak_per_second == 21  # the first burst and "other" are a second old
    now[0] += 1.0
    served = 0
    for _ in range(300):  # 100 a second for 3 s: a burst of 20 and 25 a second at most
        now[0] += 0.01
        served += limiter.admit("c") is None
    assert 25 < stats.api_peak_per_second <= 25 + 20
    assert 20 + 25 * 2 <= served <= 20 + 25 * 3
    assert stats.api_served == 20 + 1 + 20 + served


async def test_a_burst_meets_the_limit_and_retry_after(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(pos=3, api_retry_after_grace_ms=900)
    config = sim.config
    token = await _token(client, sim)
    url = f"{sim.base_url}/api/purchase_orders"
    number = sim.catalog.pos[0].number

    async def one() -> tuple[int, str | None]:
        status, _, r = await _get(client, url, token, **{"po-number": number})
        return status, r.headers.get("Retry-After")

    refused_total = 0
    for _ in range(2):
        started = time.monotonic()
        answers = await asyncio.gather(*(one() for _ in range(40)))
        refill = math.ceil((time.monotonic() - started) * config.api_rate_per_s)
        served = sum(1 for status, _ in answers if status == 200)
        refused = [retry for status, retry in answers if status == 429]
        assert served + len(refused) == 40
        assert config.api_burst <= served <= config.api_burst + refill  # tokens come back
        assert refused and all(r is not None and r.isdigit() and int(r) >= 1 for r in refused)
        refused_total += len(refused)
        await asyncio.sleep(max(int(r or 0) for r in refused))  # honour Retry-After
    assert (await one())[0] == 200
    api = sim.stats.snapshot()["api"]
    assert api["rate_limited"] == refused_total
    assert api["served"] == sim.stats.statuses[200] - 1  # all but the token's
    assert api["peak_per_second"] <= math.ceil(config.api_rate_per_s) + config.api_burst
    assert api["requests_during_retry_after"] == 0  # the refused ones were all in flight


async def test_requests_that_ignore_retry_after_are_counted(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    sim = await make_sim(pos=3, api_rate_per_s=0.5, api_burst=1)
    token = await _token(client, sim)
    url = f"{sim.base_url}/api/purchase_orders"
    assert (await _get(client, url, token))[0] == 200
    status, _, r = await _get(client, url, token)
    assert (status, r.headers["Retry-After"]) == (429, "2")
    await asyncio.sleep(0.5)  # past the grace, inside the Retry-After
    status, body, _ = await _get(client, url, token)
    assert (status, body["error"]) == (429, "rate_limited")
    api = sim.stats.snapshot()["api"]
    assert (api["served"], api["rate_limited"], api["requests_during_retry_after"]) == (1, 2, 1)


# --- POs outside the scopes, POs the API does not know ------------------------------------------


async def test_forbidden_and_hidden_pos(make_sim: MakeSim, client: aiohttp.ClientSession) -> None:
    recipes = ("line_and_comment_files", "plain_links", "url_and_text")
    sim = await make_sim(seed=5, pos=3, recipes=recipes, **UNLIMITED)
    forbidden, hidden, other = sim.catalog.pos
    sim.config.api_forbidden_pos = (forbidden.number,)
    sim.config.api_hidden_pos = (hidden.number,)
    token = await _token(client, sim)
    base = sim.base_url
    lists = f"{base}/api/purchase_orders"

    status, body, _ = await _get(client, lists, token, **{"po-number": forbidden.number})
    assert (status, body["error"]) == (403, "forbidden")
    assert forbidden.number in body["error_description"]
    status, body, _ = await _get(client, lists, token, **{"po_number[in]": forbidden.number})
    assert status == 403
    both = ",".join((forbidden.number, hidden.number, other.number))
    _, body, _ = await _get(client, lists, token, **{"po_number[in]": both})
    assert [o["po-number"] for o in body] == [other.number]
    _, body, _ = await _get(client, lists, token)
    assert [o["po-number"] for o in body] == [other.number]
    status, body, _ = await _get(client, lists, token, **{"po-number": hidden.number})
    assert (status, body) == (200, [])

    for po, expected in ((forbidden, 403), (hidden, 404), (other, 200)):
        paths = [
            f"/api/purchase_orders/{po.internal_id}",
            f"/api/purchase_orders/{po.internal_id}/attachments",
            f"/api/comments?commentable_type=OrderHeader&commentable_id={po.internal_id}",
            f"/api/attachments/{po.files[0].id}/file",
        ]
        for path in paths:
            headers = {"Authorization": f"Bearer {token}"}
            async with client.get(base + path, headers=headers) as r:
                await r.read()
                assert r.status == expected, (po.recipe, path)

    await sign_in(client, sim)  # the pages of both are fine
    for po in (forbidden, hidden):
        status, _, page = await fetch(client, base + po.url_path)
        assert status == 200 and po.heading_text in page
    sim.config.api_forbidden_pos = ()  # read on every request
    _, body, _ = await _get(client, lists, token, **{"po-number": forbidden.number})
    assert [o["po-number"] for o in body] == [forbidden.number]


# --- the middleware: faults and outages reach the API --------------------------------------------


async def test_faults_and_outages_reach_the_api(
    make_sim: MakeSim, client: aiohttp.ClientSession
) -> None:
    assert classify("/api/purchase_orders") == classify("/oauth2/token") == "api"
    sim = await make_sim(pos=3, recipes=("plain_links",), **UNLIMITED)
    token = await _token(client, sim)
    f = next(f for f in sim.catalog.files if not f.serves_html)
    lists = f"{sim.base_url}/api/purchase_orders"
    headers = {"Authorization": f"Bearer {token}"}

    sim.inject("503", "/api/purchase_orders")
    async with client.get(lists, headers=headers) as r:
        assert r.status == 503
    assert (await _get(client, lists, token))[0] == 200
    sim.inject("html_instead_of_file", f"/api/attachments/{f.id}/")
    async with client.get(f"{sim.base_url}/api/attachments/{f.id}/file", headers=headers) as r:
        assert r.status == 200 and r.content_type == "text/html"
        await r.read()
    status, _, _, size, _ = await _download(
        client, f"{sim.base_url}/api/attachments/{f.id}/file", token
    )
    assert (status, size) == (200, f.size)

    await sim.outage("maintenance")
    async with client.get(lists, headers=headers) as r:
        assert r.status == 503
    async with client.post(f"{sim.base_url}/oauth2/token", data={}) as r:
        assert r.status == 503
    await sim.end_outage()
    assert (await _get(client, lists, token))[0] == 200
    assert sim.stats.requests["api"] == 8  # the token request and seven more


def test_token_store_expires_tokens() -> None:
    now = [0.0]
    store = TokenStore(clock=lambda: now[0])
    token = store.issue("c", ["a"], ttl=10)
    grant = store.find(token)
    assert grant is not None and store.alive(grant) and grant.scopes == {"a"}
    now[0] = 10.0
    assert not store.alive(grant) and store.expire_all() == 0
    fresh = store.issue("c", ["a"], ttl=10)
    assert store.expire_all() == 1
    again = store.find(fresh)
    assert again is not None and not store.alive(again) and store.find("nope") is None


def test_config_checks_the_api_fields() -> None:
    config = SimConfig(pos=1, api_scopes="a b", api_forbidden_pos=(15262984,))  # type: ignore[arg-type]
    assert config.api_scopes == ("a", "b") and config.api_forbidden_pos == ("15262984",)
    for bad in (
        {"api_rate_per_s": 0},
        {"api_burst": 0},
        {"api_token_ttl_seconds": 0},
        {"api_client_secret": ""},
        {"api_scopes": ("a b",)},
    ):
        with pytest.raises(ValueError):
            SimConfig(pos=1, **bad)
