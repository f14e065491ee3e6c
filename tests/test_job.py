"""The PO job against the real simulator in a real Chromium: outcomes, files, names, modes, reruns,
and what it does when Coupa misbehaves (expired sessions, HTML instead of files, resets, 429, 5xx).

Tests of the catalog's own variants use the read-only session simulator; tests that inject faults
or expire sessions use a module simulator of their own with the same catalog.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, Page
from pydantic import SecretStr

import coupa_async.coupa.po_steps as job_module
from coupa_async.coupa.download import filename_from_disposition
from coupa_async.coupa.numbers import parse_po_number
from coupa_async.coupa.po_steps import JobEnv, OpenPage, PoTask, process_po
from coupa_async.coupa.reader import Mode, PageReader
from coupa_async.errors import RateLimitedError, SessionExpiredError, TransientError
from coupa_async.results.layout import (
    FILE_NAME_MAX_CHARS,
    FINAL_OUTCOMES,
    PARTIAL_SUFFIX,
    WORK_SUFFIX,
    safe_file_name,
    safe_folder_part,
    unique_name,
)
from coupa_async.results.result import PoResult
from coupa_async.session.gate import HostGate
from coupa_async.settings import Settings
from coupa_async.signin.form import sign_in
from coupa_async.signin.probe import session_is_valid
from coupa_async.sim import SimConfig, SimFile, SimPO, Simulator
from coupa_async.sim.catalog import (
    LATE_FAILURES,
    LONG_NAME,
    MARKUPS,
    PAGE_KINDS,
    RECIPES,
    SUPPLIER_MARKUPS,
    TRAITS,
    Catalog,
)

from .jobkit import PARALLEL, Worker, is_late, open_worker, task_for

pytestmark = pytest.mark.browser

# The catalog of the session simulator in tests/conftest.py (checked in `catalog_po`).
SESSION_SIM = SimConfig(seed=11, pos=len(RECIPES))
RESERVED_STEMS = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{d}{n}" for d in ("COM", "LPT") for n in range(1, 10)}
)


# ---------------------------------------------------------------------------------------------
# Helpers


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def po_total_bytes(po: SimPO) -> int:
    files = list(po.files) + list(po.requisition.files if po.requisition else ())
    return sum(f.size for f in files)


def smallest(pos: Iterable[SimPO]) -> SimPO:
    """The PO with the fewest bytes (first in catalog order on a tie)."""
    return min(pos, key=po_total_bytes)


def by_recipe(catalog: Catalog, recipe: str) -> SimPO:
    return smallest(po for po in catalog.pos if po.recipe == recipe)


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def assert_no_html_file(root: Path) -> None:
    """No saved file is an HTML page (a login or error page saved as a file)."""
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                head = handle.read(512).lstrip().lower()
            assert not head.startswith((b"<!doctype", b"<html")), path


def assert_clean_tree(out: Path) -> None:
    """No work folder, no temporary file, no parked old folder, one folder per PO."""
    labels: Counter[tuple[Path, str]] = Counter()
    for path in out.rglob("*"):
        assert not path.name.endswith(WORK_SUFFIX), f"work folder left: {path}"
        assert not path.name.endswith(PARTIAL_SUFFIX), f"temporary file left: {path}"
        assert not path.name.endswith(".old"), f"old folder left: {path}"
        if path.is_dir() and path.name[:2] in ("PO", "PM") and "_" in path.name:
            labels[(path.parent, path.name.split("_", 1)[0])] += 1
    assert all(count == 1 for count in labels.values()), labels


def assert_files_on_disk(result: PoResult) -> None:
    """Exactly the saved files are in the final folder, each with its size and hash."""
    assert result.folder is not None and result.folder.is_dir()
    on_disk = sorted(p.name for p in result.folder.iterdir())
    assert on_disk == sorted(f.name for f in result.files)
    for saved in result.files:
        assert saved.path == result.folder / saved.name
        assert saved.path.stat().st_size == saved.size
        assert sha256_of(saved.path) == saved.sha256


def assert_names(result: PoResult, po: SimPO) -> None:
    """Names are the catalog's raw names made safe; same-named files get `` (2)``, `` (3)``."""
    by_sha = {f.sha256: f.name for f in result.files}
    groups: dict[str, tuple[str, list[str]]] = {}  # case-folded safe name -> (name, hashes)
    for expected in po.expected_files:
        base = safe_file_name(expected.name)
        groups.setdefault(base.casefold(), (base, []))[1].append(expected.sha256)
    for base, shas in groups.values():
        if len(shas) == 1:
            assert by_sha[shas[0]] == base
            continue
        taken: set[str] = set()
        wanted = set()
        for _ in shas:
            name = unique_name(base, taken)
            taken.add(name)
            wanted.add(name)
        assert {by_sha[sha] for sha in shas} == wanted


def assert_matches_catalog(result: PoResult, po: SimPO, out: Path) -> None:
    assert result.outcome.value == po.expected_outcome, result.message
    assert result.supplier == (po.expected_supplier or "Unknown")
    assert result.found == po.expected_found, result.message
    assert result.downloaded == len(po.expected_files)
    assert Counter((f.sha256, f.size, f.source) for f in result.files) == Counter(
        (e.sha256, e.size, e.source) for e in po.expected_files
    )
    folder = out / safe_folder_part(result.supplier) / f"PO{po.number}_{po.expected_outcome}"
    assert result.folder == folder
    assert_files_on_disk(result)
    assert_names(result, po)
    assert_clean_tree(out)


# ---------------------------------------------------------------------------------------------
# Variants of the catalog, chosen at collection time


def late_failure(po: SimPO) -> tuple[str, str] | None:
    """Whose list never arrives (the PO's or its requisition's) and how; None: it arrives."""
    if po.late is not None and po.late.failure is not None:
        return "po", po.late.failure
    pr = po.requisition
    if po.late_failed and pr is not None and pr.late is not None and pr.late.failure is not None:
        return "requisition", pr.late.failure
    return None


def _readable_first(pos: Iterable[SimPO]) -> SimPO:
    """The smallest PO whose lists arrive, else the smallest (a list that never arrives shows
    nothing of the PO's other variants, so it stands for those only it has)."""
    return min(pos, key=lambda po: (po.late_failed, po_total_bytes(po)))


def _variants(catalog: Catalog) -> dict[str, SimPO]:
    """One PO per page, markup, trait, requisition, outcome and never-arriving list variant (the
    smallest one, one whose lists arrive where there is one)."""
    tags: dict[str, list[SimPO]] = {}
    for po in catalog.pos:
        found = {f"page={po.page}", f"outcome={po.expected_outcome}"}
        failure = late_failure(po)
        if failure is not None:
            found |= {f"late_failed={failure[0]}", f"late_failure={failure[1]}"}
        if not po.is_error_page:
            found.add(f"supplier={po.supplier_markup}")
            found |= {f"trait={trait}" for trait in po.traits}
            pr = po.requisition
            found.add(f"requisition={pr.kind if pr else 'none'}")
            if pr is not None:
                found.add(f"requisition_link={pr.link}")
            files = list(po.files) + list(pr.files if pr and po.uses_requisition else ())
            for f in files:
                found |= {f"markup={f.markup}", f"disposition={f.disposition}"}
                if f.serves_html:
                    found.add("file=serves_html")
                if f.duplicate_link:
                    found.add("file=duplicate_link")
                if f.absolute:
                    found.add("file=absolute_url")
                found.add(f"file_source={f.source}")
        for tag in found:
            tags.setdefault(tag, []).append(po)
    return {tag: _readable_first(pos) for tag, pos in sorted(tags.items())}


VARIANTS = _variants(Catalog.build(SESSION_SIM))


def test_the_variants_cover_every_kind() -> None:
    """The chosen POs cover every page, markup, trait, requisition kind and outcome, and every
    way a list never arrives, on the PO's page and on the requisition's; a variant that PO
    pages whose lists arrive show is shown by one of them."""
    wanted = (
        {f"page={kind}" for kind in PAGE_KINDS}
        | {f"markup={markup}" for markup in MARKUPS}
        | {f"supplier={markup}" for markup in SUPPLIER_MARKUPS}
        | {f"trait={trait}" for trait in TRAITS}
        | {f"requisition={kind}" for kind in ("ok", "empty", "error", "none")}
        | {f"outcome={outcome}" for outcome in FINAL_OUTCOMES}
        | {"file_source=PO", "file_source=PR", "file=serves_html", "file=duplicate_link"}
        | {f"late_failure={failure}" for failure in LATE_FAILURES}
        | {"late_failed=po", "late_failed=requisition"}
    )
    assert wanted <= set(VARIANTS)
    unread = {tag for tag, po in VARIANTS.items() if po.late_failed}
    assert unread == {"trait=late_broken"} | {t for t in VARIANTS if t.startswith("late_fail")}


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
async def worker(browser: Browser, sim: Simulator, sim_settings: Settings) -> AsyncIterator[Worker]:
    opened = await open_worker(browser, sim_settings, sim)
    yield opened
    await opened.context.close()


@pytest.fixture
def catalog_po(sim: Simulator) -> Callable[[SimPO], SimPO]:
    """The session simulator's own PO for one chosen at collection time (same catalog)."""

    def lookup(chosen: SimPO) -> SimPO:
        po = sim.catalog.po(chosen.number)
        assert po.recipe == chosen.recipe, "the session simulator's catalog changed"
        return po

    return lookup


# ---------------------------------------------------------------------------------------------
# 1. Every variant against the catalog


class VariantReads:
    """One reading of each chosen PO per process, in a folder of its own: a PO chosen for
    several variants is the same job on the same page, and each of its variants' tests checks
    that one reading in full. Its tests share an ``xdist_group``, for ``--dist loadgroup`` to
    run them in one process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[str, PoResult | TransientError] = {}

    async def read(
        self, po: SimPO, worker: Worker, http: aiohttp.ClientSession
    ) -> tuple[PoResult | TransientError, Path]:
        out = self.root / po.number
        if po.number not in self.done:
            try:
                self.done[po.number] = await process_po(worker.env(out, http), task_for(po))
            except TransientError as error:
                self.done[po.number] = error
        return self.done[po.number], out


@pytest.fixture(scope="module")
def variant_reads(tmp_path_factory: pytest.TempPathFactory) -> VariantReads:
    return VariantReads(tmp_path_factory.mktemp("variants"))


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(
            v,
            id=f"{v}-{VARIANTS[v].number}",
            marks=pytest.mark.xdist_group(f"variant-{VARIANTS[v].number}"),
        )
        for v in VARIANTS
    ],
)
async def test_variant_matches_the_catalog(
    variant: str,
    worker: Worker,
    catalog_po: Callable[[SimPO], SimPO],
    http: aiohttp.ClientSession,
    variant_reads: VariantReads,
) -> None:
    po = catalog_po(VARIANTS[variant])
    done, out = await variant_reads.read(po, worker, http)
    if po.late_failed and po.late is not None:
        # The PO's own list never arrives: never settled, raised for the engine to retry, on the
        # final attempt too (the engine then reports FAILED with this reason).
        assert isinstance(done, TransientError), done
        assert re.search(r"settle|loading failed", str(done)), done
        assert not list(out.rglob("PO*")), "nothing is filed for a page never read"
        return
    assert isinstance(done, PoResult), done
    result = done
    assert_matches_catalog(result, po, out)
    assert result.po_url == f"{worker.settings.base_url}/order_headers/{po.number}"
    if po.uses_requisition:
        assert po.requisition is not None
        assert result.pr_url.endswith(po.requisition.url_path)
    if po.late_failed:  # the requisition's list never arrived: said so, on the final attempt
        assert "could not be read" in result.message and not result.files
    elif po.expected_outcome in ("PARTIAL", "FAILED"):
        assert result.problems and result.message
        assert all("HTML page" in problem.reason for problem in result.problems)
    else:
        assert not result.problems


async def test_missing_supplier_uses_the_hint_and_levels_nest_folders(
    worker: Worker, sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    no_supplier = smallest(
        po
        for po in sim.catalog.pos
        if po.supplier_markup == "none" and po.expected_outcome == "COMPLETED"
    )
    env = worker.env(tmp_path, http)
    hinted = await process_po(env, task_for(no_supplier, supplier_hint="Hint: Co/Ltd"))
    assert hinted.supplier == "Hint: Co/Ltd"
    assert hinted.folder == tmp_path / "Hint_Co_Ltd" / f"PO{no_supplier.number}_COMPLETED"

    named = by_recipe(sim.catalog, "plain_links")
    nested = await process_po(env, task_for(named, levels=("EMEA / North", "", "Plant 7")))
    assert nested.supplier == named.expected_supplier  # the page's supplier is still reported
    assert nested.folder == tmp_path / "EMEA_North" / "Plant_7" / f"PO{named.number}_COMPLETED"
    for result in (hinted, nested):
        assert_files_on_disk(result)
    assert_clean_tree(tmp_path)


async def test_pm_numbers_open_the_same_page_and_keep_their_prefix(
    worker: Worker, sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    po = by_recipe(sim.catalog, "plain_links")
    result = await process_po(worker.env(tmp_path, http), PoTask(parse_po_number(f"pm{po.number}")))
    assert result.po_number == f"PM{po.number}"
    assert result.po_url.endswith(po.url_path)
    assert result.folder is not None and result.folder.name == f"PM{po.number}_COMPLETED"
    assert sorted(f.sha256 for f in result.files) == sorted(e.sha256 for e in po.expected_files)


# ---------------------------------------------------------------------------------------------
# 2. Hostile and duplicate names


@pytest.mark.parametrize("recipe", ["hostile_names_a", "hostile_names_b", "duplicate_names"])
async def test_hostile_and_duplicate_names_stay_safe(
    recipe: str, worker: Worker, sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    po = by_recipe(sim.catalog, recipe)
    out = tmp_path / "out"
    result = await process_po(worker.env(out, http), task_for(po))
    assert_matches_catalog(result, po, out)
    root = out.resolve()
    for saved in result.files:
        name = saved.name
        assert saved.path.resolve().is_relative_to(root)
        assert saved.path.parent == result.folder
        assert "/" not in name and "\\" not in name and ".." not in name
        assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in name), repr(name)
        assert not any(ch in '<>:"|?*' for ch in name), repr(name)
        assert name.split(".", 1)[0].rstrip(" ").upper() not in RESERVED_STEMS
        assert 0 < len(name) <= FILE_NAME_MAX_CHARS
    # Nothing was written next to the output folder by a "../" name.
    assert names_in(tmp_path) == ["out"]
    names = {f.name for f in result.files}
    if recipe == "hostile_names_a":
        assert names == {"x.pdf", "x (2).pdf", "CON_.pdf"}
    elif recipe == "hostile_names_b":
        long = next(f.name for f in result.files if f.name.startswith("Quarterly"))
        assert len(LONG_NAME) == 300
        assert len(long) <= FILE_NAME_MAX_CHARS and long.endswith(".pdf")
        assert LONG_NAME.startswith(long.removesuffix(".pdf"))
        assert "Scan_page 1.pdf" in names
        assert "Quote _draft_ _v2_ _ ok_ _.pdf" in names
    else:
        assert names == {"invoice.pdf", "invoice (2).pdf"}
        assert len({f.sha256 for f in result.files}) == 2


# ---------------------------------------------------------------------------------------------
# 6. The three discovery modes agree over the whole catalog


@pytest.mark.long
async def test_fast_render_and_auto_give_identical_results(
    worker: Worker,
    browser: Browser,
    sim: Simulator,
    sim_settings: Settings,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    # Pages whose HTML holds the whole list (late-filled ones: tests/test_settle.py).
    steady = [po for po in sim.catalog.pos if not is_late(po)]

    async def run_mode(mode: Mode, workers: list[Worker]) -> tuple[list[tuple], PageReader]:
        """Every steady PO through one reader of ``mode`` (and one output folder) shared by
        ``workers``, as an engine's workers share them; each worker takes its POs in order."""
        out = tmp_path / mode
        first = workers[0].env(out, http, mode)
        envs = [first] + [
            dataclasses.replace(first, context=w.context, pages=OpenPage(w.page))
            for w in workers[1:]
        ]
        rows: dict[str, tuple] = {}

        async def take(env: JobEnv, pos: list[SimPO]) -> None:
            for po in pos:
                result = await process_po(env, task_for(po))
                assert result.outcome.value == po.expected_outcome, (
                    mode,
                    po.number,
                    result.message,
                )
                assert sorted(f.sha256 for f in result.files) == sorted(
                    e.sha256 for e in po.expected_files
                ), (mode, po.number)
                files = sorted((f.name, f.sha256, f.source) for f in result.files)
                rows[po.number] = (po.number, result.outcome, result.supplier, files)

        await asyncio.gather(*(take(env, steady[n :: len(envs)]) for n, env in enumerate(envs)))
        assert_clean_tree(out)
        return [rows[po.number] for po in steady], first.reader

    # The modes side by side, each on signed-in contexts of its own with its own reader and
    # output folder. Render, the slowest, shares its POs between two workers; fast and auto
    # each read every PO in catalog order on one (auto learns from its first pages).
    others = await asyncio.gather(*(open_worker(browser, sim_settings, sim) for _ in range(3)))
    try:
        done = await asyncio.gather(
            run_mode("render", [worker, others[0]]),
            run_mode("fast", [others[1]]),
            run_mode("auto", [others[2]]),
        )
    finally:
        for other in others:
            await other.context.close()
    summaries = {mode: done[n][0] for n, mode in enumerate(("render", "fast", "auto"))}
    readers = {mode: done[n][1] for n, mode in enumerate(("render", "fast", "auto"))}
    assert summaries["fast"] == summaries["render"]
    assert summaries["auto"] == summaries["render"]
    assert readers["render"].counts["fast"] == 0
    assert readers["auto"].state == "fast"
    assert readers["auto"].counts["render"] < readers["render"].counts["render"]
    assert readers["fast"].counts["render"] < readers["render"].counts["render"]


# ---------------------------------------------------------------------------------------------
# 7. Reruns into the same output folder


@pytest.mark.parametrize("recipe", ["duplicate_names", "many_files", "pr_files_po_not_pdf"])
async def test_rerun_reuses_the_folder_and_its_files(
    recipe: str, worker: Worker, sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    po = by_recipe(sim.catalog, recipe)
    first = await process_po(worker.env(tmp_path, http), task_for(po))
    inodes = {f.name: f.path.stat().st_ino for f in first.files}
    second = await process_po(worker.env(tmp_path, http, "fast"), task_for(po))
    assert second.folder == first.folder
    assert_matches_catalog(second, po, tmp_path)
    assert sorted((f.name, f.sha256, f.source) for f in second.files) == sorted(
        (f.name, f.sha256, f.source) for f in first.files
    )
    # The files of the first run were kept, not downloaded again beside themselves.
    assert {f.name: f.path.stat().st_ino for f in second.files} == inodes
    supplier_dir = tmp_path / safe_folder_part(second.supplier)
    assert [p.name for p in supplier_dir.iterdir()] == [f"PO{po.number}_{po.expected_outcome}"]


async def test_rerun_with_another_outcome_replaces_the_folder(
    worker: Worker, sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """An earlier folder under another outcome is turned back into the work folder."""
    po = by_recipe(sim.catalog, "plain_links")
    first = await process_po(worker.env(tmp_path, http), task_for(po))
    assert first.folder is not None
    earlier = first.folder.with_name(f"PO{po.number}_PARTIAL")
    os.rename(first.folder, earlier)
    (earlier / "stale note.txt").write_text("from an older run")
    second = await process_po(worker.env(tmp_path, http), task_for(po))
    assert second.outcome.value == "COMPLETED"
    assert not earlier.exists()
    assert second.folder == first.folder
    names = sorted(p.name for p in second.folder.iterdir())
    assert names == sorted([*(f.name for f in second.files), "stale note.txt"])
    assert not any(" (2)" in name for name in names)
    assert_clean_tree(tmp_path)


# ---------------------------------------------------------------------------------------------
# 9. Content-Disposition


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('attachment; filename="Purchase Order.pdf"', "Purchase Order.pdf"),
        ("attachment; filename=plain.pdf", "plain.pdf"),
        ('inline; filename="a;b.pdf"', "a;b.pdf"),
        ('attachment; filename="../../x.pdf"', "../../x.pdf"),  # made safe later, not here
        ("attachment; filename*=UTF-8''Relat%C3%B3rio%20final.pdf", "Relatório final.pdf"),
        ("attachment; filename*=utf-8'pt'Cotiza%C3%A7%C3%A3o.xlsx", "Cotização.xlsx"),
        ("attachment; filename*=ISO-8859-1''%E9t%E9.pdf", "été.pdf"),
        (
            'attachment; filename="Relatorio final.pdf"; '
            "filename*=UTF-8''Relat%C3%B3rio%20final.pdf",
            "Relatório final.pdf",
        ),
        (
            "attachment; filename*=UTF-8''Relat%C3%B3rio%20final.pdf; "
            'filename="Relatorio final.pdf"',
            "Relatório final.pdf",
        ),
        (None, None),
        ("", None),
        ("attachment", None),
        ("inline", None),
        ('attachment; filename=""', None),
        ('attachment; filename="   "', None),
        ("garbage;;;==", None),
        ("attachment; name=x.pdf", None),
    ],
)
def test_filename_from_disposition(header: str | None, name: str | None) -> None:
    assert filename_from_disposition(header) == name


@pytest.mark.parametrize(
    "header",
    [
        "attachment; filename*=UTF-8''%E2%82",
        "attachment; filename*=no-such-charset''abc.pdf",
        "attachment; filename*=''",
        'attachment; filename="unterminated',
        "\x00\x01; filename=\x7f",
        "attachment; filename*0*=UTF-8''a; filename*1=b.pdf",
    ],
)
def test_filename_from_disposition_never_raises(header: str) -> None:
    name = filename_from_disposition(header)
    assert name is None or (isinstance(name, str) and name == name.strip() and name)


# =============================================================================================
# Faults: a simulator of this module's own

DOWNLOAD_S = 8.0  # a click that starts no download gives up after this


@pytest.fixture(scope="module")
async def faulty_sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(seed=11, pos=len(RECIPES))) as simulator:
        yield simulator


@pytest.fixture(scope="module")
async def faulty_worker(
    browser: Browser, base_settings: Settings, faulty_sim: Simulator
) -> AsyncIterator[Worker]:
    settings = base_settings.model_copy(
        update={
            "base_url": faulty_sim.base_url,
            "username": faulty_sim.username,
            "password": SecretStr(faulty_sim.password),
            "timeouts": base_settings.timeouts.model_copy(update={"download_s": DOWNLOAD_S}),
        }
    )
    opened = await open_worker(browser, settings, faulty_sim)
    yield opened
    await opened.context.close()


@pytest.fixture
async def fw(faulty_worker: Worker, faulty_sim: Simulator) -> AsyncIterator[Worker]:
    """The faulty simulator's worker; afterwards no fault is pending and it is signed in."""
    faulty_sim.clear_faults()
    yield faulty_worker
    faulty_sim.clear_faults()
    await sign_in_again(faulty_worker, faulty_sim, only_if_needed=True)


async def sign_in_again(worker: Worker, sim: Simulator, *, only_if_needed: bool = False) -> None:
    markers = worker.settings.markers
    if only_if_needed and await session_is_valid(worker.context, sim.base_url, markers):
        return
    await sign_in(worker.context, sim.base_url, sim.username, sim.password, markers=markers)


def work_dir(out: Path, po: SimPO) -> Path:
    return out / safe_folder_part(po.expected_supplier) / f"PO{po.number}{WORK_SUFFIX}"


def assert_work_dir_holds_only_complete_files(folder: Path, po: SimPO) -> dict[str, int]:
    """Every visible file is one of the PO's files, whole; returns name -> inode."""
    expected = {e.sha256: e.size for e in po.expected_files}
    kept = {}
    for path in folder.iterdir():
        assert not path.name.endswith(PARTIAL_SUFFIX), f"temporary file left: {path}"
        assert sha256_of(path) in expected, f"{path.name} is not a whole file of the PO"
        assert path.stat().st_size == expected[sha256_of(path)]
        kept[path.name] = path.stat().st_ino
    return kept


def href_files(po: SimPO) -> list[SimFile]:
    return [f for f in po.files if f.has_href and not f.serves_html]


# ---------------------------------------------------------------------------------------------
# 3. The session expires in the middle of a PO


@pytest.mark.parametrize("mode", ["render", "fast"])
async def test_expired_session_on_the_po_page_saves_nothing(
    mode: str, fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    po = by_recipe(faulty_sim.catalog, "plain_links")
    faulty_sim.expire_sessions()
    with pytest.raises(SessionExpiredError):
        await process_po(fw.env(tmp_path, http, mode), task_for(po))  # type: ignore[arg-type]
    assert names_in(tmp_path) == []


@pytest.mark.parametrize("requests", [None, PARALLEL], ids=["one_at_a_time", "side_by_side"])
@pytest.mark.parametrize("recipe", ["many_files", "click_anchor", "click_nav"])
async def test_session_expiring_between_page_and_file_then_retry(
    recipe: str,
    requests: int | None,
    fw: Worker,
    faulty_sim: Simulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The session ends once the files are under way: the PO raises, keeps only whole files of
    its own, and its retry after a new sign-in completes, reusing them where they are."""
    po = by_recipe(faulty_sim.catalog, recipe)
    assert len(po.expected_files) >= 2
    calls = 0
    real_fetch = job_module.fetch_to_temp
    real_click = job_module.browser_download_to_temp

    def expire_before_second_file() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            faulty_sim.expire_sessions()

    async def fetch(*args, **kwargs):  # type: ignore[no-untyped-def]
        expire_before_second_file()
        return await real_fetch(*args, **kwargs)

    async def click(*args, **kwargs):  # type: ignore[no-untyped-def]
        expire_before_second_file()
        return await real_click(*args, **kwargs)

    monkeypatch.setattr(job_module, "fetch_to_temp", fetch)
    monkeypatch.setattr(job_module, "browser_download_to_temp", click)
    with pytest.raises(SessionExpiredError):
        await process_po(fw.env(tmp_path, http, "render", requests=requests), task_for(po))

    # No final folder: the work folder holds whole files of the PO only, nothing temporary.
    supplier_dir = tmp_path / safe_folder_part(po.expected_supplier)
    assert [p.name for p in supplier_dir.iterdir()] == [f"PO{po.number}{WORK_SUFFIX}"]
    kept = assert_work_dir_holds_only_complete_files(work_dir(tmp_path, po), po)
    if requests is None:
        # One at a time: nothing was sent after the file that met the login page, and the one
        # file fetched before it was kept.
        assert calls == 2
        assert len(kept) == 1

    monkeypatch.undo()
    await sign_in_again(fw, faulty_sim)
    result = await process_po(fw.env(tmp_path, http, "render"), task_for(po))
    assert_matches_catalog(result, po, tmp_path)
    assert [p.name for p in supplier_dir.iterdir()] == [f"PO{po.number}_COMPLETED"]
    # The files of the first attempt were reused where they were, not saved a second time.
    for name, inode in kept.items():
        assert (result.folder / name).stat().st_ino == inode  # type: ignore[operator]
    assert result.folder is not None  # and no second copy of them beside the first:
    assert len(list(result.folder.iterdir())) == len(po.expected_files)


@pytest.mark.parametrize("mode", ["render", "fast"])
async def test_login_redirect_with_a_live_session_comes_back_to_the_page_and_files(
    mode: str, fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Coupa sends a request to the sign-in page, which sends a signed-in user back: in the
    browser, and over plain HTTP (a fast page read follows the chain with the cookies)."""
    po = by_recipe(faulty_sim.catalog, "plain_links")
    faulty_sim.reset_stats()
    for path in (po.url_path, *(f.url_path for f in po.files)):
        faulty_sim.inject("login_redirect", path_contains=path, count=1)
    env = fw.env(tmp_path, http, mode)  # type: ignore[arg-type]
    result = await process_po(env, task_for(po))
    assert faulty_sim.stats.login_redirects == len(po.files) + 1
    assert_matches_catalog(result, po, tmp_path)
    assert result.mode == mode
    assert env.reader.counts["render"] == (1 if mode == "render" else 0)


# ---------------------------------------------------------------------------------------------
# 4. An HTML page instead of a file


@pytest.mark.parametrize(
    ("recipe", "which", "outcome"),
    [
        ("plain_links", "first", "PARTIAL"),
        ("plain_links", "all", "FAILED"),
        ("click_anchor", "click", "PARTIAL"),
        ("click_nav", "click", "PARTIAL"),
        ("partial_html_instead", "catalog", "PARTIAL"),
        ("failed_html_instead", "catalog", "FAILED"),
    ],
)
async def test_html_instead_of_a_file_is_a_problem_never_a_file(
    recipe: str,
    which: str,
    outcome: str,
    fw: Worker,
    faulty_sim: Simulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    po = by_recipe(faulty_sim.catalog, recipe)
    if which == "first":
        bad = [po.files[0]]
    elif which == "all":
        bad = list(po.files)
    elif which == "click":
        bad = [f for f in po.files if not f.has_href]
    else:
        bad = [f for f in po.files if f.serves_html]
    assert bad
    if which != "catalog":
        for f in bad:
            faulty_sim.inject("html_instead_of_file", path_contains=f.url_path, count=5)
    result = await process_po(fw.env(tmp_path, http, "render"), task_for(po))
    assert result.outcome.value == outcome, result.message
    assert len(result.problems) == len(bad)
    assert all("HTML page" in problem.reason for problem in result.problems)
    assert all(problem.name in result.message for problem in result.problems)
    good = {f.sha256 for f in po.files if f not in bad}
    assert {f.sha256 for f in result.files} == good
    assert_files_on_disk(result)
    assert_no_html_file(tmp_path)
    assert_clean_tree(tmp_path)


# ---------------------------------------------------------------------------------------------
# 5. A connection reset in the middle of a file


def reset_target(po: SimPO) -> SimFile:
    return max(href_files(po), key=lambda f: f.size)


@pytest.mark.parametrize("recipe", ["plain_links", "click_nav"])
async def test_one_reset_is_retried_inside_the_job(
    recipe: str, fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    po = by_recipe(faulty_sim.catalog, recipe)
    target = reset_target(po) if recipe == "plain_links" else po.files[0]
    assert target.size > 1000
    faulty_sim.reset_stats()
    faulty_sim.inject("reset", path_contains=target.url_path, count=1)
    result = await process_po(fw.env(tmp_path, http, "render"), task_for(po), final_attempt=False)
    assert faulty_sim.stats.faults.get("reset") == 1
    assert_matches_catalog(result, po, tmp_path)
    assert any(f.sha256 == target.sha256 for f in result.files)


async def test_persistent_resets_raise_transient_then_settle_on_the_final_attempt(
    fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    po = by_recipe(faulty_sim.catalog, "plain_links")
    target = reset_target(po)
    faulty_sim.inject("reset", path_contains=target.url_path, count=100)
    with pytest.raises(TransientError):
        await process_po(fw.env(tmp_path, http, "render"), task_for(po), final_attempt=False)
    folder = work_dir(tmp_path, po)
    kept = assert_work_dir_holds_only_complete_files(folder, po)
    assert target.sha256 not in {sha256_of(folder / name) for name in kept}

    result = await process_po(fw.env(tmp_path, http, "render"), task_for(po), final_attempt=True)
    assert result.outcome.value == "PARTIAL"
    assert [problem.url for problem in result.problems] == [
        f"{faulty_sim.base_url}{target.url_path}"
    ]
    reason = result.problems[0].reason
    assert "connection lost" in reason or "received" in reason, reason
    assert reason in result.message
    assert {f.sha256 for f in result.files} == {e.sha256 for e in po.expected_files} - {
        target.sha256
    }
    assert_files_on_disk(result)
    assert_clean_tree(tmp_path)

    faulty_sim.clear_faults()
    healed = await process_po(fw.env(tmp_path, http, "render"), task_for(po))
    assert_matches_catalog(healed, po, tmp_path)


# ---------------------------------------------------------------------------------------------
# 8. 429 and 5xx


@pytest.mark.parametrize("mode", ["render", "fast"])
async def test_429_on_the_po_page_raises_rate_limited_with_retry_after(
    mode: str, fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    po = by_recipe(faulty_sim.catalog, "plain_links")
    faulty_sim.inject("429", path_contains=po.url_path, count=1, retry_after=7)
    with pytest.raises(RateLimitedError) as caught:
        await process_po(fw.env(tmp_path, http, mode), task_for(po))  # type: ignore[arg-type]
    assert caught.value.retry_after_s == 7
    assert names_in(tmp_path) == []


async def test_429_on_a_file_raises_rate_limited(
    fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    po = by_recipe(faulty_sim.catalog, "plain_links")
    faulty_sim.inject("429", path_contains=href_files(po)[0].url_path, count=1, retry_after=3)
    with pytest.raises(RateLimitedError) as caught:
        await process_po(fw.env(tmp_path, http, "render"), task_for(po))
    assert caught.value.retry_after_s == 3
    assert_work_dir_holds_only_complete_files(work_dir(tmp_path, po), po)


@pytest.mark.parametrize("status", ["500", "503"])
@pytest.mark.parametrize("mode", ["render", "fast"])
async def test_5xx_on_the_po_page_raises_transient(
    status: str,
    mode: str,
    fw: Worker,
    faulty_sim: Simulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    po = by_recipe(faulty_sim.catalog, "plain_links")
    faulty_sim.inject(status, path_contains=po.url_path, count=1)
    with pytest.raises(TransientError, match=status):
        await process_po(
            fw.env(tmp_path, http, mode),  # type: ignore[arg-type]
            task_for(po),
            final_attempt=False,
        )
    assert names_in(tmp_path) == []


async def test_5xx_on_a_file_is_retried_then_raised(
    fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    po = by_recipe(faulty_sim.catalog, "plain_links")
    url = href_files(po)[0].url_path
    faulty_sim.inject("503", path_contains=url, count=1)
    result = await process_po(fw.env(tmp_path, http, "fast"), task_for(po), final_attempt=False)
    assert_matches_catalog(result, po, tmp_path)

    out = tmp_path / "again"
    faulty_sim.inject("500", path_contains=url, count=100)
    with pytest.raises(TransientError, match="500"):
        await process_po(fw.env(out, http, "fast"), task_for(po), final_attempt=False)
    assert_work_dir_holds_only_complete_files(work_dir(out, po), po)


# ---------------------------------------------------------------------------------------------
# 10. A PO's files side by side, within the run's limit of requests in flight; pages on demand

LIMIT = 3


class LazyPage:
    """A PageLender as an engine without open pages gives: a page opened on first use, counted."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.opened = 0
        self.discarded = 0
        self._page: Page | None = None

    async def page(self) -> Page:
        if self._page is None or self._page.is_closed():
            self._page = await self.context.new_page()
            self.opened += 1
        return self._page

    def discard(self) -> None:
        self.discarded += 1
        self._page = None

    async def close(self) -> None:
        if self._page is not None:
            await self._page.close()


def lazy_env(worker: Worker, out: Path, http: aiohttp.ClientSession, mode: Mode) -> JobEnv:
    env = worker.env(out, http, mode)
    env.pages = LazyPage(worker.context)
    return env


def http_only(pos: Iterable[SimPO]) -> list[SimPO]:
    """Completed POs whose files are all links, on pages that need no rendering."""
    return [
        po
        for po in pos
        if po.expected_outcome == "COMPLETED"
        and len(po.files) >= 2
        and all(f.has_href and not f.serves_html for f in po.files)
        and not is_late(po)
        and not po.uses_requisition
    ]


async def free_slots(limiter: asyncio.Semaphore) -> int:
    """How many slots the limiter has (taking them all: acquire returns at once while free)."""
    taken = 0
    while not limiter.locked():
        await limiter.acquire()
        taken += 1
    return taken


async def test_the_run_limit_defaults_to_one_request_per_worker(base_settings: Settings) -> None:
    settings = base_settings.model_copy(update={"workers": 3})
    assert await free_slots(job_module.request_limiter(settings)) == 3
    network = settings.network.model_copy(update={"max_requests_in_flight": 7})
    limited = settings.model_copy(update={"network": network})
    assert await free_slots(job_module.request_limiter(limited)) == 7


async def test_a_pos_files_are_fetched_side_by_side_up_to_the_limit(
    worker: Worker,
    sim: Simulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    po = by_recipe(sim.catalog, "many_files")
    assert len(po.files) > LIMIT
    in_flight = peak = 0
    all_in = asyncio.Event()
    real_fetch = job_module.fetch_to_temp

    async def fetch(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == LIMIT:
            all_in.set()
        try:
            # Hold the first fetches until LIMIT of them are in: one at a time never gets there.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), 10)
            return await real_fetch(*args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(job_module, "fetch_to_temp", fetch)
    result = await process_po(worker.env(tmp_path, http, "fast", requests=LIMIT), task_for(po))
    assert peak == LIMIT
    assert_matches_catalog(result, po, tmp_path)


async def test_the_limit_holds_for_every_po_that_shares_it(
    fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Two POs at once, pages read fast: never more requests at the host than the limit."""
    pos = http_only(faulty_sim.catalog.pos)[:2]
    assert len(pos) == 2
    for f in (f for po in pos for f in po.files):  # slow files: the fetches overlap
        faulty_sim.inject("hang", path_contains=f.url_path, count=1, seconds=0.3)
    faulty_sim.reset_stats()
    shared = asyncio.Semaphore(2)
    envs = [lazy_env(fw, tmp_path / str(n), http, "fast") for n in range(2)]
    for env in envs:
        env.requests = shared
    results = await asyncio.gather(*(process_po(envs[n], task_for(pos[n])) for n in range(2)))
    for n in range(2):
        assert_matches_catalog(results[n], pos[n], tmp_path / str(n))
        assert envs[n].pages.opened == 0  # type: ignore[attr-defined]
    assert faulty_sim.stats.peak_concurrency == 2


@pytest.mark.parametrize("limit", [1, LIMIT])
async def test_a_429_on_one_file_holds_the_pos_other_files(
    limit: int, fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Files waiting for a slot, or for a retry, are not sent while the pause runs."""
    po = by_recipe(faulty_sim.catalog, "many_files")
    first, *others = po.files
    faulty_sim.inject("429", path_contains=first.url_path, count=1, retry_after=3)
    for f in others:  # in flight when the 429 comes: cancelled, never waited for
        faulty_sim.inject("hang", path_contains=f.url_path, count=1, seconds=2)
    env = fw.env(tmp_path, http, "fast", requests=limit)
    env.gate = HostGate()
    faulty_sim.reset_stats()
    with pytest.raises(RateLimitedError):
        await process_po(env, task_for(po))
    assert env.gate.remaining_pause_s > 1
    sent = faulty_sim.stats.requests["file"]
    assert 1 <= sent <= limit  # only those already in flight; none after the 429
    assert faulty_sim.stats.requests_during_retry_after == 0
    assert_work_dir_holds_only_complete_files(work_dir(tmp_path, po), po)
    assert_no_html_file(tmp_path)


async def test_a_po_cancelled_mid_files_leaves_no_temporary_file(
    fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Files fetched but not yet filed are removed; the page is not lent again."""
    po = by_recipe(faulty_sim.catalog, "many_files")
    faulty_sim.inject("hang", path_contains=po.files[-1].url_path, count=1, seconds=5)
    faulty_sim.reset_stats()
    env = fw.env(tmp_path, http, "fast", requests=len(po.files))
    running = asyncio.create_task(process_po(env, task_for(po)))
    for _ in range(200):  # until every other file is on disk under a temporary name
        if faulty_sim.stats.files_completed >= len(po.files) - 1:
            break
        await asyncio.sleep(0.05)
    assert faulty_sim.stats.files_completed == len(po.files) - 1
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(PARTIAL_SUFFIX)]
    assert_work_dir_holds_only_complete_files(work_dir(tmp_path, po), po)
    assert env.pages.discarded  # type: ignore[attr-defined]


async def test_files_are_named_in_page_order_whatever_arrives_first(
    fw: Worker, faulty_sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Two files of one name: the first on the page is `invoice.pdf`, even when it comes last."""
    po = by_recipe(faulty_sim.catalog, "duplicate_names")
    one_by_one = await process_po(fw.env(tmp_path / "a", http, "fast", requests=None), task_for(po))
    faulty_sim.inject("hang", path_contains=po.files[0].url_path, count=1, seconds=0.5)
    side_by_side = await process_po(fw.env(tmp_path / "b", http, "fast"), task_for(po))
    for result, out in ((one_by_one, tmp_path / "a"), (side_by_side, tmp_path / "b")):
        assert_matches_catalog(result, po, out)
    assert [(f.name, f.sha256) for f in side_by_side.files] == [
        (f.name, f.sha256) for f in one_by_one.files
    ]


async def test_a_page_is_opened_only_to_render_or_click(
    worker: Worker, sim: Simulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    fast = lazy_env(worker, tmp_path / "fast", http, "fast")
    for po in http_only(sim.catalog.pos)[:3]:
        assert_matches_catalog(await process_po(fast, task_for(po)), po, tmp_path / "fast")
    assert fast.pages.opened == 0  # type: ignore[attr-defined]
    clicked = by_recipe(sim.catalog, "click_anchor")
    assert_matches_catalog(await process_po(fast, task_for(clicked)), clicked, tmp_path / "fast")
    assert fast.pages.opened == 1  # type: ignore[attr-defined]

    render = lazy_env(worker, tmp_path / "render", http, "render")
    try:
        for po in http_only(sim.catalog.pos)[:2]:
            result = await process_po(render, task_for(po))
            assert_matches_catalog(result, po, tmp_path / "render")
        assert render.pages.opened == 1  # one page, lent again for every rendering
    finally:
        await fast.pages.close()  # type: ignore[attr-defined]
        await render.pages.close()  # type: ignore[attr-defined]
