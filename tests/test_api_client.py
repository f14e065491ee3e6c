"""The REST API client against the simulator's API: the rate limiter, the token, the sentences
of a refused client, POs by number, every recipe's attachments and bytes."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from coupa_async.api import ApiAttachment, ApiClient, NotAllowed, RateLimiter, TokenSource
from coupa_async.api.limiter import bucket_size
from coupa_async.coupa.download import FileRefused
from coupa_async.errors import ApiAccessError, ApiRefusalError, ExitCode
from coupa_async.log import public_text
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, Simulator
from coupa_async.sim.api import SCOPE_COMMENT, SCOPE_PO, SCOPE_PR
from coupa_async.sim.catalog import RECIPES, SimPO, SimRequisition

from .runkit import make_settings

# Tests that are not about the rate limit lift the simulator's.
UNLIMITED: dict[str, Any] = {"api_rate_per_s": 1e6, "api_burst": 100_000}
Item = tuple[Any, ...]


def api_settings(sim: Simulator, tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "base_url": sim.base_url,
        "api.client_id": sim.config.api_client_id,
        "api.client_secret": sim.config.api_client_secret,
        "out": str(tmp / "out"),
    }
    values.update(overrides)
    return make_settings(tmp, **values)


@pytest.fixture
async def started() -> AsyncIterator[list[Simulator]]:
    """Simulators a test starts itself (``await start(...)``), all stopped after it."""
    sims: list[Simulator] = []
    yield sims
    for sim in sims:
        await sim.stop()


async def start(sims: list[Simulator], **config: Any) -> Simulator:
    sim = Simulator(SimConfig(**config))
    await sim.start()
    sims.append(sim)
    return sim


@pytest.fixture(scope="module")
async def varied() -> AsyncIterator[Simulator]:
    """Every recipe once, the rate limit lifted; read-only."""
    async with Simulator(SimConfig(seed=7, pos=len(RECIPES), **UNLIMITED)) as sim:
        yield sim


# ----- the rate limiter, on a fake clock ----------------------------------------------------


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


def busiest_second(times: list[float]) -> int:
    """The most of ``times`` inside any window of one second."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0 - 1e-9:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_the_limiter_lets_a_burst_out_then_spaces_requests_at_the_rate() -> None:
    fake = FakeTime()
    limiter = RateLimiter(25, 20, clock=fake.clock, sleep=fake.sleep)
    assert limiter.capacity == bucket_size(20) == 18  # a margin below the server's burst
    sent: list[float] = []

    async def caller() -> None:
        for _ in range(10):
            await limiter.acquire()
            sent.append(fake.now)

    start = fake.now
    await asyncio.gather(*(caller() for _ in range(30)))
    assert len(sent) == 300 and limiter.granted == 300
    assert sent[:18] == [start] * 18  # the burst at once
    gaps = [b - a for a, b in itertools.pairwise(sent[18:])]
    assert all(math.isclose(gap, 1 / 25, rel_tol=1e-6) for gap in gaps)
    assert busiest_second(sent) <= 25 + 20
    assert math.isclose(sent[-1] - start, (300 - 18) / 25, rel_tol=1e-6)
    assert [bucket_size(b) for b in (1, 2, 10, 20, 100)] == [1, 1, 9, 18, 90]


async def test_a_pause_holds_every_caller_and_is_capped() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, 5, max_pause_s=30, clock=fake.clock, sleep=fake.sleep)
    for _ in range(limiter.capacity):
        await limiter.acquire()
    assert limiter.pause(2.0) == 2.0
    paused_at = fake.now
    sent: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        sent.append(fake.now)

    await asyncio.gather(*(caller() for _ in range(5)))
    # Nobody before the pause ends; after it the bucket refills from empty, at the rate.
    assert min(sent) >= paused_at + 2.0
    assert math.isclose(max(sent) - min(sent), 4 / 10, rel_tol=1e-6)

    with capture_logs() as logs:
        assert limiter.pause(3600) == 30  # limits.retry_after_max_s
        assert limiter.pause(math.inf) == 30
        assert limiter.pause(-1) == 0 and limiter.pause(math.nan) == 0
    capped = [e for e in logs if e["event"] == "api_retry_after_capped"]
    assert len(capped) == 1 and "limits.retry_after_max_s" in capped[0]["detail"]
    assert capped[0]["log_level"] == "warning"
    before = fake.now
    await limiter.acquire()
    assert fake.now >= before + 30
    with pytest.raises(ValueError):
        RateLimiter(0, 5)


# ----- the token ----------------------------------------------------------------------------


async def test_one_token_for_twenty_callers_renewed_once_after_expiry(
    started: list[Simulator], tmp_path: Path
) -> None:
    sim = await start(started, pos=3, **UNLIMITED)
    settings = api_settings(sim, tmp_path)
    async with ApiClient.open(settings) as api:
        tokens = await asyncio.gather(*(api.tokens.token() for _ in range(20)))
        assert len(set(tokens)) == 1 and sim.stats.api_tokens_issued == 1
        numbers = [po.number for po in sim.catalog.pos]
        assert all(await api.find_pos(numbers[:1]))

        async with (
            aiohttp.ClientSession() as client,
            client.post(f"{sim.base_url}/__sim/expire_tokens") as r,
        ):
            assert await r.json() == {"expired": 1}
        # Twenty requests meet a 401 at once: one renewal between them, and all answered.
        found = await asyncio.gather(*(api.find_pos([n]) for n in numbers * 7))
        assert all(all(f.values()) for f in found)
        assert sim.stats.api_tokens_issued == 2 and api.tokens.issued == 2
        assert sim.stats.statuses.get(401, 0) >= 1
        # The secret and the tokens never reach a log line.
        secret = sim.config.api_client_secret
        assert secret not in public_text(f"client_secret={secret} token {tokens[0]}")
        assert tokens[0] not in public_text(f"Authorization: Bearer {tokens[0]}")


async def test_a_token_is_renewed_before_it_expires(
    started: list[Simulator], tmp_path: Path
) -> None:
    sim = await start(started, pos=2, api_token_ttl_seconds=600, **UNLIMITED)
    settings = api_settings(sim, tmp_path)
    fake = FakeTime()
    async with aiohttp.ClientSession() as http:
        api = ApiClient(
            settings,
            http,
            tokens=TokenSource(
                http,
                sim.base_url,
                sim.config.api_client_id,
                sim.config.api_client_secret,
                settings.api.scopes,
                clock=fake.clock,
            ),
        )
        first = await api.tokens.token()
        fake.now += 539  # 61 s of 600 left: more than a tenth
        assert await api.tokens.token() == first
        fake.now += 2  # less than a tenth left: renewed before the server would refuse it
        second = await api.tokens.token()
        assert second != first and sim.stats.api_tokens_issued == 2
        assert (await api.find_pos([sim.catalog.pos[0].number]))[sim.catalog.pos[0].number]
        assert sim.stats.statuses.get(401, 0) == 0


async def test_a_refused_client_and_a_missing_scope_are_one_sentence_each(
    started: list[Simulator], tmp_path: Path
) -> None:
    sim = await start(started, pos=2, api_scopes=f"{SCOPE_PO} {SCOPE_PR}", **UNLIMITED)
    wrong = api_settings(sim, tmp_path, **{"api.client_secret": "not-the-secret"})
    async with ApiClient.open(wrong) as api:
        with pytest.raises(ApiAccessError) as refused:
            await api.check_access()
    text = str(refused.value)
    assert refused.value.exit_code == ExitCode.USAGE and "\n" not in text
    assert text.startswith("Coupa refused the API client (invalid_client)")
    assert "api.client_id and api.client_secret" in text and "not-the-secret" not in text

    async with ApiClient.open(api_settings(sim, tmp_path)) as api:
        with pytest.raises(ApiAccessError) as lacking:
            await api.check_access()
    assert str(lacking.value) == (
        "The API client lacks the scopes core.comment.read and core.common.read: ask your Coupa "
        "administrator to add them to the client, or set api.scopes."
    )
    one = api_settings(sim, tmp_path, **{"api.scopes": [SCOPE_PO, SCOPE_PR, SCOPE_COMMENT]})
    async with ApiClient.open(one) as api:
        with pytest.raises(ApiAccessError) as lacking:
            await api.check_access()
    assert str(lacking.value) == (
        f"The API client lacks the scope {SCOPE_COMMENT}: ask your Coupa administrator to add it "
        "to the client, or set api.scopes."
    )
    # Asked only for what it has: access is fine, and a comment is refused for its scope.
    fine = api_settings(sim, tmp_path, **{"api.scopes": [SCOPE_PO, SCOPE_PR]})
    async with ApiClient.open(fine) as api:
        await api.check_access()
        po = (await api.find_pos([sim.catalog.pos[0].number]))[sim.catalog.pos[0].number]
        assert po is not None and not isinstance(po, NotAllowed)
        with pytest.raises(ApiRefusalError) as refused_scope:
            await api.po_attachments(po)
        assert (refused_scope.value.status, refused_scope.value.scope) == (403, SCOPE_COMMENT)

    nothing = api_settings(sim, tmp_path, **{"api.scopes": [SCOPE_COMMENT]})
    async with ApiClient.open(nothing) as api:
        with pytest.raises(ApiAccessError, match="allowed none of the scopes asked for"):
            await api.check_access()


# ----- the rate limit on the wire -----------------------------------------------------------


async def test_sixty_lookups_at_once_stay_within_the_budget_and_honour_retry_after(
    started: list[Simulator], tmp_path: Path
) -> None:
    sim = await start(started, seed=5, pos=60)
    config = sim.config
    numbers = [po.number for po in sim.catalog.pos]
    budget = math.ceil(config.api_rate_per_s) + config.api_burst
    async with ApiClient.open(api_settings(sim, tmp_path)) as api:
        await api.check_access()
        found = await asyncio.gather(*(api.find_pos([n]) for n in numbers))
    assert [next(iter(f)) for f in found] == numbers
    api_stats = sim.stats.snapshot()["api"]
    assert api_stats["served"] >= 61
    assert api_stats["peak_per_second"] <= budget
    assert api_stats["requests_during_retry_after"] == 0

    # A client that believes it may send four times as fast meets 429s: it pauses every
    # caller for the Retry-After, and no request comes while one runs.
    sim.reset_stats()
    greedy = api_settings(sim, tmp_path, **{"api.requests_per_s": 100, "api.burst": 60})
    async with ApiClient.open(greedy) as api:
        found = await asyncio.gather(*(api.find_pos([n]) for n in numbers))
        assert api.limiter.pauses >= 1
    assert [next(iter(f)) for f in found] == numbers
    api_stats = sim.stats.snapshot()["api"]
    assert api_stats["rate_limited"] > 0
    assert api_stats["requests_during_retry_after"] == 0
    assert api_stats["peak_per_second"] <= budget


# ----- POs by number ------------------------------------------------------------------------


async def test_numbers_are_resolved_fifty_at_a_time_and_ids_are_not_numbers(
    started: list[Simulator], tmp_path: Path
) -> None:
    recipes = ("plain_links", "id_not_found", "id_other_po", "error_http_404", "no_attachments")
    sim = await start(started, seed=3, pos=120, recipes=recipes, **UNLIMITED)
    pos = sim.catalog.pos
    unknown = ["999999991", "999999992"]
    numbers = [po.number for po in pos] + unknown
    async with ApiClient.open(api_settings(sim, tmp_path)) as api:
        found = await api.find_pos(["000" + numbers[0], *numbers])
        requests = api.transport.requests
    shown = [po for po in pos if po.page == "ok"]
    hidden = [po for po in pos if po.page != "ok"]
    assert hidden and len(shown) > 50
    # ceil(n / 50) lists, then each number a list left out asked alone.
    assert requests == math.ceil(len(numbers) / 50) + len(hidden) + len(unknown)
    for po in shown:
        got = found[po.number]
        assert got is not None and not isinstance(got, NotAllowed)
        assert (got.id, got.number, got.supplier) == (int(po.internal_id), po.number, po.supplier)
    assert any(int(po.internal_id) != int(po.number) for po in shown)
    assert all(found[po.number] is None for po in hidden)
    assert found[unknown[0]] is None and found["000" + numbers[0]] == found[numbers[0]]


async def test_forbidden_and_hidden_pos(started: list[Simulator], tmp_path: Path) -> None:
    recipes = ("pr_lines_comments", "plain_links", "url_and_text")
    sim = await start(started, seed=5, pos=3, recipes=recipes, **UNLIMITED)
    forbidden, hidden, other = sim.catalog.pos
    sim.config.api_forbidden_pos = (forbidden.number,)
    sim.config.api_hidden_pos = (hidden.number,)
    async with ApiClient.open(api_settings(sim, tmp_path)) as api:
        found = await api.find_pos([forbidden.number, hidden.number, other.number])
        assert isinstance(found[forbidden.number], NotAllowed)
        assert forbidden.number in found[forbidden.number].reason  # type: ignore[union-attr]
        assert found[hidden.number] is None
        assert found[other.number] is not None
        # The forbidden PO's requisition is an object of its own: still readable.
        assert forbidden.requisition is not None
        pr_items = await api.requisition_attachments(int(forbidden.requisition.number))
        assert sorted(_items(pr_items)) == _catalog_items(forbidden.requisition)
        with pytest.raises(ApiRefusalError) as refused:
            await api.requisition_attachments(999_999)
        assert refused.value.status == 404


# ----- every recipe: the pages' attachments, the pages' bytes -------------------------------


def _items(attachments: list[ApiAttachment]) -> list[Item]:
    return [
        (a.kind, a.place, a.id, a.name, a.size, a.content_type if a.kind == "file" else None)
        for a in attachments
    ]


def _catalog_items(page: SimPO | SimRequisition) -> list[Item]:
    """The catalog's attachments of a page, the API's comment places written as it writes
    them (author and ISO time, where the page shows a local date)."""
    comments = {f"{c.author} at {c.shown}": c for c in page.comments}

    def place(where: str) -> str:
        prefix = "requisition " if page.source_kind == "PR" else ""
        rest = where.removeprefix(prefix)
        if rest.startswith("comment by "):
            c = comments[rest.removeprefix("comment by ")]
            return f"{prefix}comment by {c.author} at {c.datetime}:00+00:00"
        return where

    items: list[Item] = [
        ("file", place(f.place), f.id, f.expected_name, f.size, f.content_type) for f in page.files
    ]
    items += [(k.kind, place(k.place), k.id, k.value, None, None) for k in page.links]
    return sorted(items, key=repr)


async def test_every_recipe_lists_the_catalogs_attachments_and_downloads_its_bytes(
    varied: Simulator, tmp_path: Path
) -> None:
    sim = varied
    pos = sim.catalog.pos
    downloaded = refused = 0
    async with ApiClient.open(api_settings(sim, tmp_path)) as api:
        await api.check_access()
        found = await api.find_pos([po.number for po in pos])
        for po in pos:
            got = found[po.number]
            if po.page != "ok":
                assert got is None, po.recipe
                continue
            assert got is not None and not isinstance(got, NotAllowed), po.recipe
            items = await api.po_attachments(got)
            assert sorted(_items(items), key=repr) == _catalog_items(po), po.recipe
            pr = po.requisition
            assert (got.requisition is None) == (pr is None)
            if pr is not None and got.requisition is not None:
                assert got.requisition.number == pr.number
                if pr.kind == "error":
                    with pytest.raises(ApiRefusalError) as no_pr:
                        await api.requisition_attachments(got.requisition)
                    assert no_pr.value.status == 403, po.recipe
                else:
                    pr_items = await api.requisition_attachments(got.requisition)
                    assert sorted(_items(pr_items), key=repr) == _catalog_items(pr), po.recipe
                    items += pr_items
            for attachment in items:
                if attachment.kind != "file":
                    assert attachment.file_url is None and attachment.value
                    continue
                f = sim.catalog.file(attachment.id)
                dest = tmp_path / f"{attachment.id}.bin"
                if f.serves_html:  # as the page's file route answers: refused, nothing left
                    with pytest.raises(FileRefused, match="HTML page instead of the file"):
                        await api.download(attachment, dest)
                    refused += 1
                    assert list(tmp_path.glob(f"*{attachment.id}*")) == []
                    continue
                got_file = await api.download(attachment, dest)
                assert (got_file.path, got_file.size, got_file.sha256) == (dest, f.size, f.sha256)
                assert hashlib.sha256(dest.read_bytes()).hexdigest() == f.sha256
                dest.unlink()
                downloaded += 1
        big = next(f for f in sim.catalog.files if f.size > 20 * 1024 * 1024)
        digest = await api.digest(_file_attachment(sim, big.id))
        assert (digest.path, digest.size, digest.sha256) == (None, big.size, big.sha256)
    assert downloaded > 50 and refused > 0
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["empty.config"]


def _file_attachment(sim: Simulator, file_id: int) -> ApiAttachment:
    f = sim.catalog.file(file_id)
    url = f"{sim.base_url}/api/attachments/{file_id}/file"
    return ApiAttachment(file_id, "file", f.expected_name, f.size, None, url, None, None, "", "PO")


async def test_a_file_past_the_size_limit_is_refused(varied: Simulator, tmp_path: Path) -> None:
    big = next(f for f in varied.catalog.files if f.size > 20 * 1024 * 1024 and not f.serves_html)
    settings = api_settings(varied, tmp_path, **{"limits.file_max_mb": 1})
    async with ApiClient.open(settings) as api:
        with pytest.raises(FileRefused, match=r"limits\.file_max_mb"):
            await api.download(_file_attachment(varied, big.id), tmp_path / "big.bin")
    assert not any(p.name.startswith(".big.bin") for p in tmp_path.iterdir())
