"""One PO through Coupa's REST API (``process_po_api``) against the simulator's catalog: the
browser path's outcomes, files, folders and manifest rows; what the API cannot serve; a rerun
that downloads nothing; a requisition outside the client's scopes. No browser."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from coupa_async.api import ApiAttachment, ApiClient, Received
from coupa_async.api.po_steps import ApiCannotServe, ApiJobEnv, process_po_api
from coupa_async.coupa.numbers import parse_po_number
from coupa_async.coupa.po_steps import PoTask
from coupa_async.emails.options import is_email
from coupa_async.emails.service import EmailConverter
from coupa_async.errors import TransientError
from coupa_async.results.layout import OutputLayout, safe_file_name, unique_name
from coupa_async.results.result import PoResult
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, Simulator
from coupa_async.sim.api import SCOPE_COMMENT, SCOPE_PO
from coupa_async.sim.catalog import RECIPES, SimFile, SimPO

from .runkit import check_against_catalog, make_settings

UNLIMITED: dict[str, Any] = {"api_rate_per_s": 1e6, "api_burst": 100_000}
SCOPE_FILES = "core.common.read"
Outcome = PoResult | ApiCannotServe


def api_settings(sim: Simulator, out: Path, tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "base_url": sim.base_url,
        "api.client_id": sim.config.api_client_id,
        "api.client_secret": sim.config.api_client_secret,
        "api.requests_per_s": 1_000,  # the simulator's limit is lifted: so is ours
        "api.burst": 1_000,
        "out": str(out),
    }
    values.update(overrides)
    return make_settings(tmp, **values)


@pytest.fixture(scope="module")
async def varied() -> AsyncIterator[Simulator]:
    """Every recipe once, the rate limit lifted."""
    async with Simulator(SimConfig(seed=11, pos=len(RECIPES), **UNLIMITED)) as sim:
        yield sim


def task_of(po: SimPO, known: Sequence[Any] = ()) -> PoTask:
    return PoTask(parse_po_number(f"PO{po.number}"), known_files=tuple(known))


async def run_all(
    sim: Simulator,
    settings: Settings,
    pos: Sequence[SimPO],
    known: dict[str, PoResult] | None = None,
    wrap: Callable[[ApiClient], None] | None = None,
) -> tuple[dict[str, Outcome], int]:
    """Every PO through the API, side by side, its numbers prefetched; the results by number and
    the API requests sent."""
    async with ApiClient.open(settings) as api:
        if wrap is not None:
            wrap(api)
        env = ApiJobEnv(settings, api, OutputLayout(Path(settings.out)))
        prefetching = env.prefetch(po.number for po in pos)
        assert prefetching is not None
        await prefetching
        lists = api.transport.requests

        async def one(po: SimPO) -> Outcome:
            prior = known.get(po.number) if known else None
            files = prior.files if isinstance(prior, PoResult) else ()
            return await process_po_api(env, task_of(po, files))

        outcomes = await asyncio.gather(*(one(po) for po in pos))
        assert env.pending == 0
        # Resolved 50 numbers a request (numbers a batch leaves out are asked alone).
        unknown = sum(1 for po in pos if not isinstance(_found(outcomes, pos, po), PoResult))
        assert lists <= -(-len(pos) // 50) + unknown
        return {po.number: got for po, got in zip(pos, outcomes, strict=True)}, (
            api.transport.requests
        )


def _found(outcomes: Sequence[Outcome], pos: Sequence[SimPO], po: SimPO) -> Outcome:
    return outcomes[list(pos).index(po)]


# ----- what the API should give, read from the catalog ------------------------------------


def _status(files: Sequence[SimFile]) -> str:
    saved = sum(1 for f in files if f.delivered)
    if saved == len(files):
        return "COMPLETED"
    return "PARTIAL" if saved else "FAILED"


def api_expected(po: SimPO) -> tuple[str, list[SimFile], bool]:
    """(outcome, files saved, requisition read) by the browser path's rule over the whole
    lists: what the browser gives when its pages arrive; what the API gives always."""
    files = list(po.files)
    pr = po.requisition
    if any(f.is_pdf for f in files) or pr is None:
        outcome = _status(files) if files else "NO_ATTACHMENTS"
        return outcome, [f for f in files if f.delivered], False
    if pr.kind == "error":
        return "PR_NOT_ACCESSIBLE", [f for f in files if f.delivered], True
    every = [*files, *pr.files]
    return (_status(every) if every else "NO_ATTACHMENTS"), [f for f in every if f.delivered], True


def _area_order(po: SimPO, files: Sequence[SimFile]) -> list[SimFile]:
    """Files in the order the page shows them: header, lines by number, then comments (the
    PO's page, then its requisition's)."""

    def key(f: SimFile) -> tuple[int, int, int]:
        page = po if f.source == "PO" else po.requisition
        assert page is not None
        where = f.place.removeprefix("requisition ")
        if where.startswith("line "):
            area = (1, int(where.split()[1]))
        elif where.startswith("comment by "):
            shown = [f"comment by {c.author} at {c.shown}" for c in page.comments]
            area = (2, shown.index(where))
        else:
            area = (0, 0)
        return (0 if f.source == "PO" else 1, *area)

    return sorted(files, key=key)


def expected_names(po: SimPO, files: Sequence[SimFile]) -> list[str]:
    """The names the browser path gives files filed in page order."""
    taken: set[str] = set()
    names = []
    for f in _area_order(po, files):
        name = unique_name(safe_file_name(f.expected_name), taken)
        taken.add(name.lower())
        names.append(name)
    return names


def api_place(po: SimPO, place: str, source: str) -> str:
    """A catalog place as the API writes it: a comment by author and ISO time (the page shows a
    local date)."""
    page = po if source == "PO" else po.requisition
    assert page is not None
    prefix = "requisition " if source == "PR" else ""
    rest = place.removeprefix(prefix)
    for c in page.comments:
        if rest == f"comment by {c.author} at {c.shown}":
            return f"{prefix}comment by {c.author} at {c.datetime}:00+00:00"
    return place


def check_served(sim: Simulator, po: SimPO, got: PoResult) -> None:
    """Outcome, files (bytes and names), folder, addresses and manifest rows of one PO."""
    outcome, files, uses_pr = api_expected(po)
    assert got.outcome.value == outcome, (po.recipe, got.message)
    assert got.mode == "api"
    assert got.po_url == f"{sim.base_url}/order_headers/{po.internal_id}", po.recipe
    pr = po.requisition
    if uses_pr and pr is not None:
        assert got.pr_url == f"{sim.base_url}/requisition_headers/{pr.number}", po.recipe
    else:
        assert got.pr_url == "", po.recipe
    assert sorted(f.sha256 for f in got.files) == sorted(f.sha256 for f in files), po.recipe
    assert [f.name for f in got.files] == expected_names(po, files), po.recipe
    assert got.folder is not None and got.folder.name == f"PO{po.number}_{outcome}"
    assert got.folder.parent.name == OutputLayout(Path(".")).po_dir_parts(po.supplier)[0]
    assert sorted(p.name for p in got.folder.iterdir()) == sorted(f.name for f in got.files)
    for saved in got.files:
        assert saved.path == got.folder / saved.name and saved.path.stat().st_size == saved.size
        assert saved.url == f"{sim.base_url}/api/attachments/{sim_id(saved.url)}/file"
    # The manifest's rows: every file (saved or not) and every URL and text, by page.
    pages = [("PO", po)] + (
        [("PR", pr)] if uses_pr and pr is not None and pr.kind != "error" else []
    )
    rows = sorted(
        (a.source, a.kind, a.place, a.value if a.kind != "file" else "", a.sha256)
        for a in got.attachments
    )
    wanted = []
    for source, page in pages:
        assert page is not None
        wanted += [
            (source, "file", api_place(po, f.place, source), "", f.sha256 if f.delivered else "")
            for f in page.files
        ]
        wanted += [
            (source, k.kind, api_place(po, k.place, source), k.value, "") for k in page.links
        ]
    assert rows == sorted(wanted), po.recipe
    assert got.links_and_texts == sum(len(page.links) for _, page in pages if page is not None)


def sim_id(url: str) -> int:
    return int(url.rstrip("/").split("/")[-2])


async def converted(settings: Settings, results: Sequence[PoResult]) -> list[PoResult]:
    """The results after the job's follow-up (``PoJob.follow_up``): saved e-mails converted,
    whichever path saved them."""
    converter = EmailConverter(settings.convert.emails, processes=2)

    async def follow_up(result: PoResult) -> PoResult:
        names = [saved.name for saved in result.files]
        emails = [saved for saved in result.files if is_email(saved.name)]
        outcomes = await asyncio.gather(*(converter.convert(e.path, names) for e in emails))
        errors = [outcome.error for outcome in outcomes if outcome.error is not None]
        return replace(result, conversion_errors=errors)

    try:
        return list(await asyncio.gather(*map(follow_up, results)))
    finally:
        await converter.aclose()


# ----- the tests ------------------------------------------------------------------------------


async def test_every_recipe_through_the_api_gives_the_browser_paths_result(
    varied: Simulator, tmp_path: Path
) -> None:
    sim = varied
    pos = sim.catalog.pos
    settings = api_settings(sim, tmp_path / "out", tmp_path)
    got, requests = await run_all(sim, settings, pos)

    served: list[PoResult] = []
    late = 0
    for po in pos:
        result = got[po.number]
        if po.page != "ok":  # unknown to the API: only the browser may say PO_NOT_FOUND
            assert isinstance(result, ApiCannotServe), po.recipe
            assert result.po_number == f"PO{po.number}" and "PO_NOT_FOUND" in result.reason
            continue
        assert isinstance(result, PoResult), (po.recipe, result)
        check_served(sim, po, result)
        if po.late_failed:
            # The page's list never arrives in a browser (FAILED after its retries); the API
            # serves the PO whole, by the same rule.
            late += 1
            assert po.expected_outcome == "FAILED"
            assert result.files or result.outcome.value in ("NO_ATTACHMENTS", "FAILED")
            continue
        assert api_expected(po)[0] == po.expected_outcome, po.recipe
        served.append(result)
    assert late > 0 and len(served) > 30
    assert {r.outcome.value for r in served} >= {
        "COMPLETED",
        "PARTIAL",
        "FAILED",
        "NO_ATTACHMENTS",
        "PR_NOT_ACCESSIBLE",
    }
    assert any(r.links_and_texts for r in served) and any(r.pr_url for r in served)
    # Saved e-mails are converted by the job's follow-up, whichever path saved them: shown by
    # the rerun test; here check_served has checked their POs' files and folders.
    plain = [r for r in served if not any(is_email(f.name) for f in r.files)]
    assert len(plain) < len(served)
    check_against_catalog(sim, plain, tmp_path / "out")
    assert requests > len(pos)


async def test_a_rerun_into_the_same_folder_downloads_nothing_again(
    varied: Simulator, tmp_path: Path
) -> None:
    sim = varied
    with_files = [po for po in sim.catalog.pos if po.page == "ok" and po.saved_files]
    twins = [po for po in with_files if po.recipe in ("duplicate_names", "hostile_names_a")]
    pos = [*with_files[:12], *twins]
    settings = api_settings(sim, tmp_path / "out", tmp_path)
    downloads: list[int] = []

    def count(api: ApiClient) -> None:
        real = api.download

        async def counted(attachment: ApiAttachment, dest: Path) -> Received:
            downloads.append(attachment.id)
            return await real(attachment, dest)

        api.download = counted  # type: ignore[method-assign]

    first, _ = await run_all(sim, settings, pos, wrap=count)
    assert len(downloads) >= sum(len(po.saved_files) for po in pos)
    results = {n: r for n, r in first.items() if isinstance(r, PoResult)}
    assert len(results) == len(pos)
    inodes = {f.path: os.stat(f.path).st_ino for r in results.values() for f in r.files}
    assert len(twins) == 2 and any(" (2)." in path.name for path in inodes)
    downloads.clear()

    again, _ = await run_all(sim, settings, pos, known=dict(results), wrap=count)
    # Files that could not be saved (an HTML page instead) are asked again; nothing saved is.
    refused = [f.id for po in pos for f in po.files if not f.delivered]
    assert sorted(downloads) == sorted(i for i in refused if _listed(sim, pos, i))
    for number, result in again.items():
        assert isinstance(result, PoResult)
        before = results[number]
        assert result.outcome == before.outcome and result.folder == before.folder
        assert [(f.name, f.sha256, f.url) for f in result.files] == [
            (f.name, f.sha256, f.url) for f in before.files
        ]
        for f in result.files:
            assert os.stat(f.path).st_ino == inodes[f.path]
    rerun = [r for r in again.values() if isinstance(r, PoResult)]
    check_against_catalog(sim, await converted(settings, rerun), tmp_path / "out")

    # A run by the browser recorded its files by their pages' addresses, which the API does
    # not know: they are taken by name and declared size (and checked by SHA-256) instead.
    by_page = {
        number: replace(
            result,
            files=[
                replace(f, url=f"{sim.base_url}{sim.catalog.file(sim_id(f.url)).url_path}")
                for f in result.files
            ],
        )
        for number, result in results.items()
    }
    downloads.clear()
    third, _ = await run_all(sim, settings, pos, known=by_page, wrap=count)
    assert sorted(downloads) == sorted(i for i in refused if _listed(sim, pos, i))
    for number, result in third.items():
        assert isinstance(result, PoResult)
        before = results[number]
        # Keyed on the API's addresses from now on.
        assert [(f.name, f.sha256, f.url) for f in result.files] == [
            (f.name, f.sha256, f.url) for f in before.files
        ]
        assert all(os.stat(f.path).st_ino == inodes[f.path] for f in result.files)


def _listed(sim: Simulator, pos: Sequence[SimPO], file_id: int) -> bool:
    """Whether the job reads the page that lists this file (the PO's, or a PR it reads)."""
    for po in pos:
        _, _, uses_pr = api_expected(po)
        if any(f.id == file_id for f in po.files):
            return True
        pr = po.requisition if uses_pr else None
        if pr is not None and pr.kind != "error" and any(f.id == file_id for f in pr.files):
            return True
    return False


async def test_forbidden_and_hidden_pos_go_to_the_browser_with_nothing_filed(
    tmp_path: Path,
) -> None:
    recipes = ("pr_lines_comments", "plain_links", "url_and_text")
    async with Simulator(SimConfig(seed=5, pos=3, recipes=recipes, **UNLIMITED)) as sim:
        forbidden, hidden, other = sim.catalog.pos
        sim.config.api_forbidden_pos = (forbidden.number,)
        sim.config.api_hidden_pos = (hidden.number,)
        settings = api_settings(sim, tmp_path / "out", tmp_path)
        got, _ = await run_all(sim, settings, sim.catalog.pos)
    refused = got[forbidden.number]
    assert isinstance(refused, ApiCannotServe) and "will not show" in refused.reason
    unknown = got[hidden.number]
    assert isinstance(unknown, ApiCannotServe) and "knows no PO" in unknown.reason
    served = got[other.number]
    assert isinstance(served, PoResult) and served.outcome.value == other.expected_outcome
    folders = [p.name for p in (tmp_path / "out").rglob("PO*") if p.is_dir()]
    assert folders == [f"PO{other.number}_{other.expected_outcome}"]


async def test_a_requisition_out_of_scope_sends_only_the_pos_whose_rule_reads_it(
    varied: Simulator, tmp_path: Path
) -> None:
    sim = varied
    pos = [po for po in sim.catalog.pos if po.page == "ok"]
    scopes = [SCOPE_PO, SCOPE_COMMENT, SCOPE_FILES]
    settings = api_settings(sim, tmp_path / "out", tmp_path, **{"api.scopes": scopes})
    got, _ = await run_all(sim, settings, pos)
    sent = kept = 0
    for po in pos:
        result = got[po.number]
        _, _, uses_pr = api_expected(po)
        if uses_pr:
            assert isinstance(result, ApiCannotServe), po.recipe
            assert "requisition" in result.reason and "core.requisition.read" in result.reason
            sent += 1
            # Known before any file was fetched: no folder was made for it.
            assert not list((tmp_path / "out").rglob(f"PO{po.number}_*"))
            assert not list((tmp_path / "out").rglob(f"PO{po.number}__WORK"))
        else:
            assert isinstance(result, PoResult), (po.recipe, result)
            check_served(sim, po, result)
            kept += 1
    assert sent > 3 and kept > 10


async def test_prefetch_resolves_fifty_a_request_once(
    varied: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("coupa_async.api.transport.BACKOFF_S", 0.01)
    sim = varied
    numbers = [po.number for po in sim.catalog.pos if po.page == "ok"]
    settings = api_settings(sim, tmp_path / "out", tmp_path)
    async with ApiClient.open(settings) as api:
        env = ApiJobEnv(settings, api, OutputLayout(tmp_path / "out"))
        first = env.prefetch(numbers)
        again = env.prefetch(numbers[:10])  # already under way: nothing more is asked
        assert first is not None and again is None
        await first
        assert api.transport.requests == -(-len(numbers) // 50)
        assert env.pending == len(numbers)
        po = await env.lookup("000" + numbers[0])
        assert po is not None and api.transport.requests == -(-len(numbers) // 50)
        assert env.pending == len(numbers) - 1
        # Used once: a second lookup (a retry) asks again, alone.
        assert await env.lookup(numbers[0]) == po
        assert api.transport.requests == -(-len(numbers) // 50) + 1
        # A run that ends stops the lookups still under way.
        late = env.prefetch(["999999991", "999999992"])
        await env.aclose()
        assert late is not None and late.done()

        # A batch that fails (the client's own tries used up) is not an error of its POs:
        # each is asked alone when its turn comes.
        env = ApiJobEnv(settings, api, OutputLayout(tmp_path / "out"))
        sim.inject("503", "/api/purchase_orders", count=3)
        try:
            failing = env.prefetch(numbers[:5])
            assert failing is not None
            await failing
        finally:
            sim.clear_faults()
        assert env.pending == 0
        before = api.transport.requests
        again_po = await env.lookup(numbers[0])
        assert again_po == po and api.transport.requests == before + 1


async def test_hostile_pages_are_served_whole_and_hostile_files_refused_as_the_browser_does(
    tmp_path: Path,
) -> None:
    config = SimConfig(profile="hostile", **UNLIMITED)
    async with Simulator(config) as sim:
        bounds = {
            "timeouts.download_s": 3,
            "limits.file_max_mb": 5,
            "limits.retry_after_max_s": 1,
        }
        settings = api_settings(sim, tmp_path / "out", tmp_path, **bounds)
        pos = sim.catalog.pos
        got, _ = await run_all(sim, settings, pos)
        served: list[PoResult] = []
        for po in pos:
            result = got[po.number]
            assert isinstance(result, PoResult), (po.recipe, result)
            check_served(sim, po, result)
            if po.page_refused:
                # The page never answers itself in a browser (FAILED after its retries); the
                # API lists the PO and its file as any other.
                assert po.expected_outcome == "FAILED", po.recipe
                assert result.outcome.value == "COMPLETED" and len(result.files) == 1
                continue
            assert result.outcome.value == po.expected_outcome, (po.recipe, result.message)
            if not any(is_email(f.name) for f in result.files):
                served.append(result)
        assert {po.recipe for po in pos if po.page_refused} == {
            "hostile_login_on_page",
            "hostile_huge_page",
            "hostile_gzip_page",
        }
        check_against_catalog(sim, served, tmp_path / "out")
        # The private addresses are URL attachments: recorded, never asked for.
        private = next(po for po in pos if po.recipe == "hostile_private_links")
        result = got[private.number]
        assert isinstance(result, PoResult) and result.links_and_texts == 3
        by_host = sim.stats.snapshot()["requests_by_host"]
        assert not [host for host in by_host if host.startswith(("169.254", "10.", "192.168"))]


async def test_a_file_or_requisition_that_keeps_failing_is_retried_then_settles_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("coupa_async.api.transport.BACKOFF_S", 0.01)  # the client's own tries
    recipes = ("many_files", "pr_files_no_po_files")
    async with Simulator(SimConfig(seed=5, pos=2, recipes=recipes, **UNLIMITED)) as sim:
        many, via_pr = sim.catalog.pos
        assert via_pr.requisition is not None and not via_pr.files
        third = many.files[2]
        sim.inject("503", f"/api/attachments/{third.id}/file", count=-1)
        sim.inject("503", f"/api/requisitions/{via_pr.requisition.number}", count=-1)
        settings = api_settings(sim, tmp_path / "out", tmp_path)
        out = tmp_path / "out"
        async with ApiClient.open(settings) as api:
            env = ApiJobEnv(settings, api, OutputLayout(out))
            # Not the last attempt: raised for the engine to retry; what came before the
            # failing file is filed, in the work folder, under the names it keeps.
            with pytest.raises(TransientError, match="503"):
                await process_po_api(env, task_of(many), final_attempt=False)
            (work,) = out.rglob(f"PO{many.number}__WORK")
            kept = sorted(p.name for p in work.iterdir())
            assert kept == sorted(safe_file_name(f.expected_name) for f in many.files[:2])
            with pytest.raises(TransientError, match="503"):
                await process_po_api(env, task_of(via_pr), final_attempt=False)
            assert not list(out.rglob(f"PO{via_pr.number}_*"))

            # The last attempt settles with what it has.
            result = await process_po_api(env, task_of(many), final_attempt=True, attempt=2)
            assert isinstance(result, PoResult) and result.outcome.value == "PARTIAL"
            assert result.attempts == 2 and result.folder is not None
            assert [p.name for p in result.problems] == [third.expected_name]
            assert "503" in result.problems[0].reason and third.expected_name in result.message
            assert [f.name for f in result.files] == expected_names(
                many, [f for f in many.files if f is not third]
            )
            pr_result = await process_po_api(env, task_of(via_pr), final_attempt=True)
            assert isinstance(pr_result, PoResult) and pr_result.outcome.value == "FAILED"
            assert "could not be read" in pr_result.message and pr_result.pr_url
        assert not list(out.rglob("*__WORK")) and not list(out.rglob(".*.part"))
