"""The PO job: find, fetch and file every attachment of one PO, in one browser context.

It raises for what the pool must handle (session expired, rate limited, transient, browser
fault) and returns a PoResult for everything that settles the PO.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from playwright.async_api import BrowserContext, Page

from coupa_async.coupa.discover import AttachmentRef, click_only_selector
from coupa_async.coupa.download import (
    Fetched,
    FileRefused,
    browser_download_to_temp,
    context_cookie_header,
    fetch_to_temp,
    place,
)
from coupa_async.coupa.numbers import PoNumber
from coupa_async.coupa.pages import PageKind
from coupa_async.coupa.reader import PageRead, PageReader
from coupa_async.errors import (
    HostUnreachableError,
    RateLimitedError,
    SessionExpiredError,
    TransientError,
)
from coupa_async.gate import HostGate
from coupa_async.layout import OutputLayout, safe_file_name, unique_name
from coupa_async.log import get_logger
from coupa_async.outage import OutageWatch
from coupa_async.result import FileProblem, Outcome, PoResult, SavedFile, Source
from coupa_async.settings import Settings

log = get_logger("job")

FILE_RETRIES = 2
FILE_RETRY_PAUSE_S = 0.3
UNKNOWN_SUPPLIER = "Unknown"


@dataclass(frozen=True, slots=True)
class PoTask:
    """One PO to process, as it came from the input."""

    po: PoNumber
    supplier_hint: str | None = None
    levels: tuple[str, ...] = ()
    # Files an earlier run saved (from the journal): reused without fetching when still intact.
    known_files: tuple[SavedFile, ...] = ()


@dataclass
class JobEnv:
    """What a worker lends the job: its context and page, and what the run shares."""

    settings: Settings
    context: BrowserContext
    page: Page
    http: aiohttp.ClientSession
    layout: OutputLayout
    reader: PageReader
    gate: HostGate | None = None
    outage: OutageWatch | None = None


@dataclass
class _Folder:
    """The PO's work folder and the names already used in it."""

    path: Path
    taken: set[str] = field(default_factory=set)
    existing: dict[str, tuple[int, str]] = field(default_factory=dict)


async def process_po(env: JobEnv, task: PoTask, *, final_attempt: bool = True) -> PoResult:
    """Process one PO to a settled result, or raise for the pool to retry it."""
    started = datetime.now(UTC)
    base_url = env.settings.base_url or ""
    po_url = task.po.order_url(base_url)
    result = PoResult(po_number=task.po.label, outcome=Outcome.FAILED, po_url=po_url)
    result.started_at = started

    po_read = await env.reader.read(env.page, env.context, po_url)
    raise_for_session_and_limits(po_read)
    result.mode = po_read.how
    if po_read.verdict.kind.is_error_page:
        result.supplier = task.supplier_hint or UNKNOWN_SUPPLIER
        result.outcome = Outcome.PO_NOT_FOUND
        result.message = f"PO page: {po_read.verdict.reason or 'error page'}"
        return await _settle(env, task, result, folder=None)

    facts = po_read.facts
    assert facts is not None
    _require_evidence(po_read, facts.attachments)
    result.supplier = facts.supplier or task.supplier_hint or UNKNOWN_SUPPLIER
    folder = await asyncio.to_thread(_open_folder, env.layout, task, result.supplier)

    known = {saved.url: saved for saved in task.known_files}
    await _save_all(env, po_read, facts.attachments, "PO", folder, result, final_attempt, known)
    messages: list[str] = []
    if _needs_requisition(result):
        if facts.requisition_url is None:
            if result.found == 0:
                messages.append("no attachments on the PO and no requisition link")
        else:
            result.pr_url = facts.requisition_url
            try:
                pr_read = await env.reader.read(env.page, env.context, facts.requisition_url)
                raise_for_session_and_limits(pr_read)
                if pr_read.facts is not None:
                    _require_evidence(pr_read, pr_read.facts.attachments)
            except TransientError as exc:
                if not final_attempt or await _host_is_down(env, exc):
                    raise
                # Out of attempts: keep what the PO page gave, and say the PR was not checked.
                result.outcome = Outcome.PARTIAL if result.files else Outcome.FAILED
                messages.append(f"requisition {facts.requisition_url} could not be read: {exc}")
                messages.extend(f"{p.name}: {p.reason}" for p in result.problems)
                result.message = "; ".join(messages)
                return await _settle(env, task, result, folder)
            if pr_read.verdict.kind.is_error_page:
                result.outcome = Outcome.PR_NOT_ACCESSIBLE
                messages.append(
                    f"requisition {facts.requisition_url} not accessible: {pr_read.verdict.reason}"
                )
                result.message = "; ".join(messages)
                return await _settle(env, task, result, folder)
            assert pr_read.facts is not None
            before = len(result.files)
            await _save_all(
                env, pr_read, pr_read.facts.attachments, "PR", folder, result, final_attempt, known
            )
            pr_names = [saved.name for saved in result.files[before:]]
            if pr_names:
                messages.append(f"from requisition {facts.requisition_url}: {', '.join(pr_names)}")
            elif result.found == 0:
                messages.append(f"no attachments on the PO nor on {facts.requisition_url}")
    result.outcome = _outcome(result)
    messages.extend(f"{problem.name}: {problem.reason}" for problem in result.problems)
    result.message = "; ".join(messages)
    return await _settle(env, task, result, folder)


def raise_for_session_and_limits(read: PageRead) -> None:
    kind = read.verdict.kind
    if kind is PageKind.LOGIN:
        raise SessionExpiredError(f"a login page came back instead of {read.url}")
    if kind is PageKind.RATE_LIMITED:
        raise RateLimitedError(f"HTTP 429 for {read.url}", read.verdict.retry_after_s)
    if kind is PageKind.HOST_DOWN:
        raise HostUnreachableError(f"{read.verdict.reason} for {read.url}")
    if kind is PageKind.TRANSIENT:
        raise TransientError(f"{read.verdict.reason} for {read.url}")


async def _host_is_down(env: JobEnv, exc: TransientError) -> bool:
    """Whether a failure is Coupa being down: then even a final attempt is not charged."""
    if not isinstance(exc, HostUnreachableError) or env.outage is None:
        return False
    return await env.outage.confirm(str(exc))


def _require_evidence(read: PageRead, attachments: tuple[AttachmentRef, ...]) -> None:
    """An empty list proves nothing unless the page was rendered and had settled."""
    if not attachments and not read.proves_absence:
        raise TransientError(f"{read.url} showed no attachments before it had finished loading")


def _needs_requisition(result: PoResult) -> bool:
    names = [saved.name for saved in result.files] + [problem.name for problem in result.problems]
    return needs_requisition(names)


def needs_requisition(names: Iterable[str]) -> bool:
    """No attachments on the PO, or none of them a PDF: the files are often on the PR."""
    return not any(name.lower().endswith(".pdf") for name in names)


def _outcome(result: PoResult) -> Outcome:
    if result.found == 0:
        return Outcome.NO_ATTACHMENTS
    if not result.problems:
        return Outcome.COMPLETED
    return Outcome.PARTIAL if result.files else Outcome.FAILED


def _open_folder(layout: OutputLayout, task: PoTask, supplier: str) -> _Folder:
    parts = layout.po_dir_parts(supplier, task.levels)
    path = layout.open_work_dir(parts, task.po.label)
    layout.cleanup_partials(path)
    folder = _Folder(path)
    for entry in path.iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            folder.existing[entry.name] = (entry.stat().st_size, "")
    return folder


async def _save_all(
    env: JobEnv,
    read: PageRead,
    refs: tuple[AttachmentRef, ...],
    source: Source,
    folder: _Folder,
    result: PoResult,
    final_attempt: bool,
    known: dict[str, SavedFile],
) -> None:
    cookies: dict[str, str] = {}  # one lookup per folder of URLs on this page, not per file
    for ref in refs:
        reused = (
            await asyncio.to_thread(_reuse_known, folder, ref, known, source)
            if (ref.url or "") in known
            else None
        )
        if reused is not None:
            result.files.append(reused)
            continue
        try:
            fetched = await _fetch_with_retries(env, read, ref, folder.path, cookies)
        except FileRefused as exc:
            result.problems.append(FileProblem(ref.url or "", ref.name_hint, str(exc), source))
            continue
        except TransientError as exc:
            if not final_attempt or await _host_is_down(env, exc):
                raise
            result.problems.append(FileProblem(ref.url or "", ref.name_hint, str(exc), source))
            continue
        saved = await asyncio.to_thread(_file_away, env.layout, fetched, ref, folder, source)
        result.files.append(saved)


async def _fetch_with_retries(
    env: JobEnv, read: PageRead, ref: AttachmentRef, folder: Path, cookies: dict[str, str]
) -> Fetched:
    settings = env.settings
    for attempt in range(FILE_RETRIES + 1):
        try:
            if ref.url is None:
                if not read.rendered or env.page.url != read.url:
                    read = await env.reader.render(env.page, read.url)
                assert ref.click_index is not None
                await _host_may_be_contacted(env)
                return await browser_download_to_temp(
                    env.page,
                    click_only_selector(settings.markers),
                    ref.click_index,
                    folder,
                    env.layout,
                    settings.markers,
                    settings.timeouts.download_s,
                )
            # Cookies are scoped by host and path prefix: URLs in one folder share them.
            scope = ref.url.split("?", 1)[0].rsplit("/", 1)[0]
            if scope not in cookies:
                cookies[scope] = await context_cookie_header(env.context, ref.url)
            await _host_may_be_contacted(env)
            return await fetch_to_temp(
                env.http,
                ref.url,
                cookies[scope],
                folder,
                env.layout,
                settings.markers,
                settings.timeouts.download_s,
            )
        except RateLimitedError as exc:
            if env.gate is not None:  # hold every worker now, not when the pool hears of it
                env.gate.pause_for(exc.retry_after_s)
            raise
        except TransientError as exc:
            # No second try into a host that is down: the pool holds the PO until it is back.
            if attempt == FILE_RETRIES or await _host_is_down(env, exc):
                raise
            await asyncio.sleep(FILE_RETRY_PAUSE_S * (attempt + 1) * (1 + random.random()))
    raise AssertionError("unreachable")


async def _host_may_be_contacted(env: JobEnv) -> None:
    """Wait out a Retry-After or a renewal of the session; checked right before each send."""
    if env.gate is not None:
        await env.gate.wait()


def _reuse_known(
    folder: _Folder, ref: AttachmentRef, known: dict[str, SavedFile], source: Source
) -> SavedFile | None:
    """The file an earlier run saved from this URL, if it is still there, whole and unchanged."""
    prior = known.get(ref.url or "")
    if prior is None or prior.name.lower() in folder.taken:
        return None
    path = folder.path / prior.name
    try:
        if not path.is_file() or path.stat().st_size != prior.size:
            return None
    except OSError:
        return None
    if _sha256_of(path) != prior.sha256:
        return None
    folder.taken.add(prior.name.lower())
    return SavedFile(prior.name, path, prior.size, prior.sha256, source, prior.url)


def _file_away(
    layout: OutputLayout, fetched: Fetched, ref: AttachmentRef, folder: _Folder, source: Source
) -> SavedFile:
    """Name the fetched file per the reference and rename it into place (or reuse a copy)."""
    wanted = safe_file_name(fetched.server_name or ref.name_hint or None)
    url = ref.url or fetched.final_url
    same = _same_file_already_there(folder, wanted, fetched)
    if same is not None:
        fetched.temp_path.unlink(missing_ok=True)
        folder.taken.add(same.lower())
        return SavedFile(same, folder.path / same, fetched.size, fetched.sha256, source, url)
    taken = folder.taken | {name.lower() for name in folder.existing}
    name = unique_name(wanted, taken)
    target = folder.path / name
    if not layout.contains(target):
        fetched.temp_path.unlink(missing_ok=True)
        raise FileRefused(f"the name {wanted!r} would leave the output folder")
    place(fetched, target)
    folder.taken.add(name.lower())
    return SavedFile(name, target, fetched.size, fetched.sha256, source, url)


def _same_file_already_there(folder: _Folder, wanted: str, fetched: Fetched) -> str | None:
    """A file from an earlier attempt with this name (or a numbered twin) and these bytes."""
    stem, dot, ext = wanted.rpartition(".")
    prefix = stem if dot else wanted
    for name, (size, _) in folder.existing.items():
        if name.lower() in folder.taken or size != fetched.size:
            continue
        if not (
            name == wanted or (name.startswith(f"{prefix} (") and name.endswith(f"{dot}{ext}"))
        ):
            continue
        if _sha256_of(folder.path / name) == fetched.sha256:
            return name
    return None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def _settle(env: JobEnv, task: PoTask, result: PoResult, folder: _Folder | None) -> PoResult:
    """Rename the work folder to its final name and point the result at it."""
    if folder is None:
        folder = await asyncio.to_thread(_open_folder, env.layout, task, result.supplier)
    final = await asyncio.to_thread(env.layout.finalise, folder.path, result.outcome.value)
    result.folder = final
    result.files = [
        SavedFile(f.name, final / f.name, f.size, f.sha256, f.source, f.url) for f in result.files
    ]
    result.finished_at = datetime.now(UTC)
    log.debug(
        "po_settled", po=result.po_number, outcome=result.outcome.value, files=result.downloaded
    )
    return result
