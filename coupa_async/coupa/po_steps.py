"""The PO job: find, fetch and file every attachment of one PO, in one browser context.

It raises for what the engine must handle (session expired, rate limited, transient, browser
fault) and returns a PoResult for everything that settles the PO. A PO's files are fetched side
by side over plain HTTP (click-only ones in turn, in the one page) within the run's limit of
requests in flight, and filed in page order, so their names never depend on which came first.
What it is doing is told to ``JobEnv.doing`` (the worker's progress line): reading, rendering or
waiting for a page to settle, and how many of a page's files are downloaded.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol

import aiohttp
import anyio
from anyio.abc import TaskGroup
from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from coupa_async.coupa.bounded import BodyLimits
from coupa_async.coupa.discover import AttachmentRef, PageFacts, click_only_selector
from coupa_async.coupa.download import (
    Fetched,
    FileRefused,
    FileTimedOut,
    browser_download_to_temp,
    fetch_to_temp,
    place,
    sha256_of,
)
from coupa_async.coupa.hosts import FetchPolicy
from coupa_async.coupa.http import CoupaHttp, ReceivedBytes
from coupa_async.coupa.numbers import PoNumber
from coupa_async.coupa.pages import PageKind, classify, parse_html, raise_for_verdict
from coupa_async.coupa.reader import Doing, FirstLook, PageRead, PageReader, untold
from coupa_async.coupa.search import search_po
from coupa_async.emails.outputs import is_our_output, make_way
from coupa_async.errors import (
    BrowserFaultError,
    HostUnreachableError,
    PoJobError,
    RateLimitedError,
    SessionExpiredError,
    TransientError,
)
from coupa_async.log import get_logger, public_text
from coupa_async.results.layout import OutputLayout, safe_file_name, unique_name
from coupa_async.results.result import (
    FileProblem,
    FoundAttachment,
    Outcome,
    PoResult,
    SavedFile,
    Source,
)
from coupa_async.session.gate import HostGate, HostGates
from coupa_async.session.outage import OutageWatch
from coupa_async.settings import Settings

log = get_logger(__name__)

FILE_RETRIES = 2
# A pause of another host this short is waited out within the PO, holding its request slot.
SHORT_PAUSE_S = 5.0
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
    # The PO's page as an earlier run found it (by search, where its internal id is not its
    # number): opened first, and checked like any other.
    known_url: str | None = None

    def page_url(self, base_url: str) -> str:
        """Where the PO's page is looked for first."""
        return self.known_url or self.po.order_url(base_url)


class PageLender(Protocol):
    """The worker's page, lent to the job only when it renders or clicks."""

    async def page(self) -> Page:
        """The worker's page: opened on first use, then the same one."""
        ...

    def discard(self) -> None:
        """The page is broken or stuck: do not lend it again."""
        ...


class OpenPage:
    """A PageLender over a page its worker keeps open (and replaces itself when it fails)."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self.discarded = False

    async def page(self) -> Page:
        """The worker's page, as it was handed over."""
        return self._page

    def discard(self) -> None:
        """Noted only: the worker replaces its page on the error the job raises."""
        self.discarded = True


@dataclass
class JobEnv:
    """What a worker lends the job (its context, its page on demand) and what the run shares."""

    settings: Settings
    context: BrowserContext
    pages: PageLender
    http: aiohttp.ClientSession
    layout: OutputLayout
    reader: PageReader
    gate: HostGate | None = None
    outage: OutageWatch | None = None
    # Requests to Coupa in flight over the whole run (see request_limiter); None: a PO sends
    # one request at a time.
    requests: asyncio.Semaphore | None = None
    # What the job is doing now, for the worker's progress line (the worker slot's ``doing``).
    doing: Doing = untold
    # The run's count of file bytes received; None: counted for this PO only.
    received: ReceivedBytes | None = None
    # One gate per host, the tenant's being ``gate``; None: every host shares ``gate``.
    gates: HostGates | None = None

    def gate_for(self, url: str) -> HostGate | None:
        """The gate of ``url``'s host."""
        return self.gates.for_url(url) if self.gates is not None else self.gate


def request_limiter(settings: Settings) -> asyncio.Semaphore:
    """The run's limit of requests in flight: ``network.max_requests_in_flight``, else one per
    worker. Make one per run and give it to every JobEnv."""
    return asyncio.Semaphore(settings.network.max_requests_in_flight or settings.workers)


def page_limits(settings: Settings) -> BodyLimits:
    """The bounds of a page read or rendered (limits.page_max_mb, compression_ratio_max)."""
    limits = settings.limits
    return BodyLimits(limits.page_max_bytes, limits.compression_ratio_max)


@dataclass
class _Folder:
    """The PO's work folder, the names already used in it, and the files found there (size)."""

    path: Path
    taken: set[str] = field(default_factory=set)
    existing: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Job:
    """One PO in progress: what the worker lent, and how to reach Coupa over HTTP."""

    env: JobEnv
    http: CoupaHttp
    final_attempt: bool
    known: dict[str, SavedFile]  # URL -> the file an earlier run saved from it
    attempt: int = 1
    session: _SessionCheck = field(default_factory=lambda: _SessionCheck())


class _SessionInDoubt(Exception):
    """A file of the PO met a login page and the session is being checked: not sent now."""


class _SessionCheck:
    """Whether a login page that one of the PO's files met means the session is over: checked
    once, by opening the PO's page again, while the PO's other files wait rather than meet the
    same login page (and send more requests on a session that may have ended)."""

    def __init__(self) -> None:
        self._works: asyncio.Future[bool] | None = None

    @property
    def in_doubt(self) -> bool:
        return self._works is not None and not (self._works.done() and self._works.result())

    async def works(self, job: _Job, page_url: str, *, new_login_page: bool = False) -> bool:
        """Whether ``page_url`` still opens, checked once for the callers waiting on it. A new
        login page met after the page was seen to open is checked again (the session may have
        ended since): an earlier answer is never trusted for a later login page."""
        if new_login_page and self._works is not None and self._works.done():
            self._works = None
        if self._works is None:
            works = self._works = asyncio.get_running_loop().create_future()
            try:
                works.set_result(await _page_still_opens(job, page_url))
            except BaseException:
                works.set_result(False)
                raise
        return await asyncio.shield(self._works)


# What fetching one attachment came to: reused, fetched (not yet filed), refused, or not yet.
_FileState = SavedFile | Fetched | FileProblem | None


async def process_po(
    env: JobEnv, task: PoTask, *, final_attempt: bool = True, attempt: int = 1
) -> PoResult:
    """Process one PO (its ``attempt``-th try) to a settled result, or raise for the engine to
    retry it."""
    http = CoupaHttp(
        env.http,
        env.context,
        gate=env.gate,
        limiter=env.requests,
        received=env.received,
        page_limits=page_limits(env.settings),
    )
    known = {saved.url: saved for saved in task.known_files}
    job = _Job(env, http, final_attempt, known, attempt)
    try:
        return await _process(job, task)
    except (TimeoutError, BrowserFaultError, asyncio.CancelledError):
        env.pages.discard()  # stuck or gone, maybe mid-navigation: not for the next PO
        raise


async def _process(job: _Job, task: PoTask) -> PoResult:
    """One PO, with the files its page shows at first look fetched while the page settles."""
    try:
        async with anyio.create_task_group() as group:
            prefetch = _Prefetch(job, task, group)
            try:
                result = await _process_po(job, task, prefetch)
            finally:
                await prefetch.discard()
    except BaseExceptionGroup as failed:  # prefetches never raise: it is the PO's own error
        chosen = _most_telling(failed)
        raise chosen from chosen.__cause__
    return result


_Early = Fetched | FileProblem | PoJobError


class _Fetch:
    """One file fetched in the PO's task group: cancelled on its own, its outcome read once it
    has ended (None: cancelled before it had one)."""

    def __init__(self) -> None:
        self._scope = anyio.CancelScope()
        self._ended = anyio.Event()
        self.outcome: _Early | None = None

    async def run(self, fetch: Callable[[_Fetch], Awaitable[_Early]]) -> None:
        try:
            with self._scope:
                self.outcome = await fetch(self)
        finally:
            self._ended.set()

    def cancel(self) -> None:
        self._scope.cancel()

    async def wait(self) -> _Early | None:
        """Its outcome once it has ended; a waiter that is cancelled cancels it too."""
        try:
            await self._ended.wait()
        except BaseException:
            self.cancel()
            raise
        return self.outcome


class _Prefetch:
    """The files a PO page shows at first look, fetched into its work folder while it settles.

    Only from a first look that shows the PO asked for and its supplier (so the folder is the
    one the settled page names); a fetch that fails is handed over as it ended and raised, if at
    all, where the file is wanted. What the settled list no longer holds is deleted.
    """

    def __init__(self, job: _Job, task: PoTask, group: TaskGroup) -> None:
        self.job, self.task, self.group = job, task, group
        self.folder: _Folder | None = None
        self.supplier = ""
        self.fetches: dict[str, _Fetch] = {}
        self.page_turn = asyncio.Lock()

    async def first_look(self, read: PageRead) -> None:
        facts = read.facts
        if self.fetches or facts is None or facts.supplier is None:
            return
        if facts.shown_number is None or _not_the_po(read, self.task.po.digits, None):
            return
        refs = [ref for ref in facts.attachments if ref.url and ref.url not in self.job.known]
        if not refs:
            return
        self.supplier = facts.supplier
        layout = self.job.env.layout
        self.folder = await anyio.to_thread.run_sync(_open_folder, layout, self.task, self.supplier)
        for ref in refs:
            fetch = self.fetches[ref.url or ""] = _Fetch()
            self.group.start_soon(fetch.run, partial(self._fetch, read, ref))

    async def _fetch(self, read: PageRead, ref: AttachmentRef, mine: _Fetch) -> _Early:
        assert self.folder is not None
        try:
            return await _fetch_or_problem(
                self.job, read, ref, "PO", self.folder.path, self.page_turn
            )
        except PoJobError as exc:
            # As when fetching side by side: nothing more is sent after the first such error.
            for other in self.fetches.values():
                if other is not mine:
                    other.cancel()
            return exc

    def folder_for(self, supplier: str) -> _Folder | None:
        """The work folder opened at first look, if the settled page names the same supplier."""
        return self.folder if self.folder is not None and supplier == self.supplier else None

    def take(self, ref: AttachmentRef) -> _Fetch | None:
        return self.fetches.pop(ref.url, None) if ref.url else None

    async def discard(self) -> None:
        """Cancel what is still fetching and delete what was fetched and not wanted."""
        pending = list(self.fetches.values())
        self.fetches.clear()
        for fetch in pending:
            fetch.cancel()
        with anyio.CancelScope(shield=True):  # cancelled, they end at once
            for fetch in pending:
                outcome = await fetch.wait()
                if isinstance(outcome, Fetched):
                    outcome.temp_path.unlink(missing_ok=True)


async def _process_po(job: _Job, task: PoTask, prefetch: _Prefetch) -> PoResult:
    env, final_attempt = job.env, job.final_attempt
    started = datetime.now(UTC)
    base_url = env.settings.base_url or ""
    po_url = task.page_url(base_url)
    result = PoResult(po_number=task.po.label, outcome=Outcome.FAILED, po_url=po_url)
    result.started_at = started

    po_read, why_not = await _open_po_page(job, task, po_url, prefetch.first_look)
    if po_read is None:
        result.supplier = task.supplier_hint or UNKNOWN_SUPPLIER
        result.outcome = Outcome.PO_NOT_FOUND
        result.message = f"PO not found: {why_not}"
        return await _settle(job, task, result, folder=None)
    result.po_url = po_read.url
    result.mode = po_read.how

    facts = po_read.facts
    assert facts is not None
    _require_evidence(po_read, facts.attachments)
    result.supplier = facts.supplier or task.supplier_hint or UNKNOWN_SUPPLIER
    folder = prefetch.folder_for(result.supplier)
    if folder is None:
        await prefetch.discard()
        folder = await anyio.to_thread.run_sync(_open_folder, env.layout, task, result.supplier)

    await _save_all(job, po_read, facts.attachments, "PO", folder, result, prefetch)
    _record_others(facts.others, "PO", result)
    messages: list[str] = []
    if _needs_requisition(result):
        if facts.requisition_url is None:
            if result.found == 0:
                messages.append("no attachments on the PO and no requisition link")
        else:
            result.pr_url = facts.requisition_url
            try:
                pr_read = await env.reader.read(
                    env.pages, job.http, facts.requisition_url, doing=env.doing, what="requisition"
                )
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
                return await _settle(job, task, result, folder)
            if pr_read.verdict.kind.is_error_page:
                result.outcome = Outcome.PR_NOT_ACCESSIBLE
                messages.append(
                    f"requisition {facts.requisition_url} not accessible: {pr_read.verdict.reason}"
                )
                result.message = "; ".join(messages)
                return await _settle(job, task, result, folder)
            other = _not_the_requisition(facts, pr_read)
            if other is not None:
                result.outcome = Outcome.PR_NOT_ACCESSIBLE
                messages.append(other)
                result.message = "; ".join(messages)
                return await _settle(job, task, result, folder)
            assert pr_read.facts is not None
            before = len(result.files)
            await _save_all(job, pr_read, pr_read.facts.attachments, "PR", folder, result)
            _record_others(pr_read.facts.others, "PR", result)
            pr_names = [saved.name for saved in result.files[before:]]
            if pr_names:
                messages.append(f"from requisition {facts.requisition_url}: {', '.join(pr_names)}")
            elif result.found == 0:
                messages.append(f"no attachments on the PO nor on {facts.requisition_url}")
    result.outcome = _outcome(result)
    messages.extend(f"{problem.name}: {problem.reason}" for problem in result.problems)
    if result.links_and_texts:
        messages.append(
            f"{result.links_and_texts} URL or text attachment(s), recorded in the manifest"
        )
    result.message = "; ".join(messages)
    return await _settle(job, task, result, folder)


async def _open_po_page(
    job: _Job, task: PoTask, url: str, first_look: FirstLook | None = None
) -> tuple[PageRead | None, str]:
    """The PO's page, checked to show the PO asked for; else found by the PO list's search.

    None with the reason when neither the page at ``url`` nor a search shows the PO.
    """
    env = job.env
    read = await env.reader.read(
        env.pages, job.http, url, doing=env.doing, what="PO page", first_look=first_look
    )
    raise_for_session_and_limits(read)
    problem = _not_the_po(read, task.po.digits, env.reader)
    if problem is None:
        return read, ""
    page = await env.pages.page()
    found = await search_po(
        page, env.reader, env.settings.base_url or "", task.po.digits, doing=env.doing
    )
    if found.url is None:
        return None, f"{problem}; {found.detail}"
    log.info("po_found_by_search", po=task.po.label, url=found.url, instead_of=url)
    read = await env.reader.read(
        env.pages, job.http, found.url, doing=env.doing, what="PO page", first_look=first_look
    )
    raise_for_session_and_limits(read)
    again = _not_the_po(read, task.po.digits, env.reader)
    if again is not None:
        return None, f"{problem}; the search for {task.po.digits} led to {found.url}, and {again}"
    return read, found.detail


def _not_the_po(read: PageRead, digits: str, reader: PageReader | None) -> str | None:
    """Why a page is not the PO numbered ``digits`` (None: it is, or says no number)."""
    if read.verdict.kind.is_error_page:
        return f"the page at {read.url} is an error page ({read.verdict.reason or 'error'})"
    facts = read.facts
    assert facts is not None
    shown = facts.shown_number
    if shown is None:
        if reader is not None:
            reader.note_unverified(read.url)
        return None
    if shown != (digits.lstrip("0") or "0"):
        return f"the page at {read.url} shows PO #{shown}"
    return None


def _not_the_requisition(po_facts: PageFacts, pr_read: PageRead) -> str | None:
    """Why a requisition page is not the one the PO page links (None: it is, or cannot tell)."""
    wanted = po_facts.requisition_number
    shown = pr_read.facts.shown_number if pr_read.facts is not None else None
    if wanted is None or shown is None or wanted == shown:
        return None
    return f"the requisition link opened Requisition #{shown}, not #{wanted}: {pr_read.url}"


def raise_for_session_and_limits(read: PageRead) -> None:
    """Raise for a login page, a 429, a 5xx or a host that seems down (see raise_for_verdict)."""
    raise_for_verdict(read.verdict, read.url)


async def _host_is_down(env: JobEnv, exc: TransientError) -> bool:
    """Whether a failure is Coupa being down: then even a final attempt is not charged."""
    if not isinstance(exc, HostUnreachableError) or env.outage is None:
        return False
    # Shielded: other workers may be waiting on this very check; a fetch cancelled because a
    # sibling failed must not cancel it for them.
    return await asyncio.shield(env.outage.confirm(str(exc)))


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
        name = entry.name
        if entry.is_file() and not name.startswith(".") and not is_our_output(path, name):
            folder.existing[name] = entry.stat().st_size
    return folder


async def _save_all(
    job: _Job,
    read: PageRead,
    refs: tuple[AttachmentRef, ...],
    source: Source,
    folder: _Folder,
    result: PoResult,
    prefetch: _Prefetch | None = None,
) -> None:
    """Save the page's attachments into the folder and note each saved file or problem."""
    outcomes: list[_FileState] = [None] * len(refs)
    for index, ref in enumerate(refs):
        if (ref.url or "") in job.known:
            job.env.doing("checking files saved before")
            outcomes[index] = await anyio.to_thread.run_sync(
                _reuse_known, folder, ref, job.known, source
            )
    layout = job.env.layout
    try:
        try:
            await _fetch_all(job, read, refs, source, folder.path, outcomes, prefetch)
        except PoJobError:
            # Keep what came before the first file still missing, filed as an uninterrupted run
            # would file it: the retry reuses it, and the names stay the same.
            await anyio.to_thread.run_sync(
                _file_in_order, layout, refs, outcomes, folder, source, True
            )
            raise
        filed = await anyio.to_thread.run_sync(
            _file_in_order, layout, refs, outcomes, folder, source, False
        )
    finally:
        _discard_temps(outcomes)  # fetched but not filed: interrupted, or cancelled
    for outcome in filed:
        if isinstance(outcome, SavedFile):
            result.files.append(outcome)
        else:
            result.problems.append(outcome)
    for ref, state in zip(refs, outcomes, strict=True):
        result.attachments.append(_found_file(ref, state, source))


def _place(source: Source, place: str) -> str:
    return place if source == "PO" else f"requisition {place}"


def _found_file(ref: AttachmentRef, state: _FileState, source: Source) -> FoundAttachment:
    """A file attachment's manifest row: saved (name, size, SHA-256) or not."""
    if isinstance(state, SavedFile):
        return FoundAttachment(
            source,
            _place(source, ref.place),
            "file",
            ref.name_hint or state.name,
            ref.url or state.url,
            state.name,
            state.size,
            state.sha256,
        )
    return FoundAttachment(source, _place(source, ref.place), "file", ref.name_hint, ref.url or "")


def _record_others(refs: tuple[AttachmentRef, ...], source: Source, result: PoResult) -> None:
    """URL and text attachments: recorded as found, never fetched, never a file problem."""
    for ref in refs:
        result.attachments.append(
            FoundAttachment(source, _place(source, ref.place), ref.kind, ref.name_hint, ref.value)
        )


async def _fetch_all(
    job: _Job,
    read: PageRead,
    refs: tuple[AttachmentRef, ...],
    source: Source,
    folder: Path,
    outcomes: list[_FileState],
    prefetch: _Prefetch | None = None,
) -> None:
    """Fetch every attachment not reused, side by side, into ``outcomes`` (index for index).

    A file fetched while the page settled (``prefetch``) is taken as it ended.

    The first session expiry, 429 or error the PO cannot settle with stops the others (none
    is sent after it) and is raised on its own.
    """
    wanted = [index for index, outcome in enumerate(outcomes) if outcome is None]
    if not wanted:
        return
    page_turn = asyncio.Lock()  # one page: click-only downloads one after another
    done = 0
    job.env.doing(_downloading(done, len(wanted)))

    async def fetch(index: int) -> None:
        nonlocal done
        early = prefetch.take(refs[index]) if prefetch is not None else None
        outcome = await early.wait() if early is not None else None
        if isinstance(outcome, PoJobError):
            raise outcome
        if outcome is not None:
            outcomes[index] = outcome
        else:  # not fetched early, or stopped by another file's error: fetched now
            outcomes[index] = await _fetch_or_problem(
                job, read, refs[index], source, folder, page_turn
            )
        done += 1
        job.env.doing(_downloading(done, len(wanted)))

    try:
        async with anyio.create_task_group() as group:
            for index in wanted:
                group.start_soon(fetch, index)
    except BaseExceptionGroup as failed:
        chosen = _most_telling(failed)
        raise chosen from chosen.__cause__  # its own cause kept; the group is no news


def _downloading(done: int, total: int) -> str:
    """What a worker fetching a page's files is doing: how many of them are in."""
    return f"downloading files: {done} of {total} done"


async def _fetch_or_problem(
    job: _Job,
    read: PageRead,
    ref: AttachmentRef,
    source: Source,
    folder: Path,
    page_turn: asyncio.Lock,
) -> Fetched | FileProblem:
    """The file, or why it cannot be saved; raises what the PO cannot settle with now."""
    try:
        try:
            return await _fetch_at_its_turn(job, read, ref, folder, page_turn)
        except _SessionInDoubt:
            if not await job.session.works(job, read.url):
                raise SessionExpiredError(f"a login page came back instead of {read.url}") from None
            return await _fetch_at_its_turn(job, read, ref, folder, page_turn)
    except FileRefused as exc:
        return FileProblem(ref.url or "", ref.name_hint, str(exc), source)
    except SessionExpiredError:
        if ref.url is None or not await job.session.works(job, read.url, new_login_page=True):
            raise
        # The page opens with the same cookies: this file refuses the account, the session is
        # not over (a new sign-in would meet the same login page again, and again).
        reason = (
            "the server answered with its login page for this file although the session "
            "still opens the PO's page: not shared with this account?"
        )
        return FileProblem(ref.url, ref.name_hint, reason, source)
    except TransientError as exc:
        if not job.final_attempt or await _host_is_down(job.env, exc):
            raise
        return FileProblem(ref.url or "", ref.name_hint, str(exc), source)


async def _fetch_at_its_turn(
    job: _Job, read: PageRead, ref: AttachmentRef, folder: Path, page_turn: asyncio.Lock
) -> Fetched:
    if ref.url is None:
        async with page_turn:
            return await _fetch_with_retries(job, read, ref, folder)
    return await _fetch_with_retries(job, read, ref, folder)


async def _page_still_opens(job: _Job, page_url: str) -> bool:
    """Whether the page a file was found on still opens (not as a login page) right now."""
    settings = job.env.settings
    try:
        answer = await job.http.get_page(page_url, settings.timeouts.navigation_s)
    except (PoJobError, PlaywrightError):
        return False
    verdict = classify(answer.status, answer.url, parse_html(answer.html), settings.markers)
    return verdict.kind is PageKind.ORDINARY


async def _fetch_with_retries(
    job: _Job, read: PageRead, ref: AttachmentRef, folder: Path
) -> Fetched:
    env = job.env
    for attempt in range(FILE_RETRIES + 1):
        try:
            if ref.url is None:
                return await _fetch_by_click(job, read, ref, folder)
            return await _fetch_over_http(job, ref.url, folder)
        except RateLimitedError as exc:
            gate = env.gate_for(exc.url or ref.url or "")
            if gate is None or exc.other_host:
                raise
            gate.pause_for(exc.retry_after_s)  # hold every worker now, not when the engine hears
            if gate is env.gate:
                raise
            raise _other_host_asks_to_wait(gate, min(exc.retry_after_s, gate.max_pause_s)) from exc
        except TransientError as exc:
            # No second try into a host that is down: the engine holds the PO until it is back;
            # nor at once into a body that went silent (the PO's next attempt tries again).
            if attempt == FILE_RETRIES or isinstance(exc, FileTimedOut):
                raise
            if await _host_is_down(env, exc):
                raise
            await asyncio.sleep(FILE_RETRY_PAUSE_S * (attempt + 1) * (1 + random.random()))
    raise AssertionError("unreachable")


def _other_host_asks_to_wait(gate: HostGate, seconds: float) -> RateLimitedError:
    return RateLimitedError(
        f"{gate.host} asks to wait {seconds:.0f} s (HTTP 429); the PO is retried after that",
        seconds,
        other_host=gate.host,
    )


async def _fetch_over_http(job: _Job, url: str, folder: Path) -> Fetched:
    settings = job.env.settings
    gate = job.env.gate_for(url)
    async with job.http.slot():
        await job.http.cookie_header(url)  # looked up before the gate, as before a page read
        await job.http.may_send()
        if gate is not None and gate is not job.env.gate and gate.remaining_pause_s > 0:
            # Another host's pause: nothing is sent to it. A short rest is waited out here, a
            # long one outside a worker (the PO is retried after it).
            if gate.remaining_pause_s > SHORT_PAUSE_S:
                raise _other_host_asks_to_wait(gate, gate.remaining_pause_s)
            await gate.pause_over()
        if job.session.in_doubt:
            raise _SessionInDoubt
        return await fetch_to_temp(
            job.http.session,
            url,
            job.http.cookie_header,
            folder,
            job.env.layout,
            settings.markers,
            settings.timeouts.download_s,
            received=job.http.received.add,
            limits=_file_limits(settings),
            stall_s=settings.timeouts.navigation_s,
            policy=FetchPolicy(
                settings.base_url or url,
                tuple(settings.network.file_hosts),
                settings.limits.allow_private_hosts,
            ),
        )


def _file_limits(settings: Settings) -> BodyLimits:
    limits = settings.limits
    return BodyLimits(limits.file_max_bytes, limits.compression_ratio_max, "limits.file_max_mb")


async def _fetch_by_click(job: _Job, read: PageRead, ref: AttachmentRef, folder: Path) -> Fetched:
    env, settings = job.env, job.env.settings
    page = await env.pages.page()
    if read.how != "render" or page.url != read.url:  # a click may have led the page away
        await env.reader.render(page, read.url)
    assert ref.click_index is not None
    async with job.http.slot():
        await job.http.may_send()
        return await browser_download_to_temp(
            page,
            click_only_selector(settings.markers),
            ref.click_index,
            folder,
            env.layout,
            settings.markers,
            settings.timeouts.download_s,
            received=job.http.received.add,
            start_timeout_s=settings.timeouts.navigation_s,
            limits=_file_limits(settings),
        )


# Which of several errors raised together the engine hears of: a defect first (never hidden),
# then what it must act on before anything else.
_TELLING_ORDER: tuple[type[BaseException], ...] = (
    SessionExpiredError,
    RateLimitedError,
    BrowserFaultError,
    HostUnreachableError,
    TransientError,
)


def _most_telling(group: BaseExceptionGroup) -> BaseException:
    def rank(exc: BaseException) -> int:
        return next((n for n, kind in enumerate(_TELLING_ORDER) if isinstance(exc, kind)), -1)

    return min(_leaves(group), key=rank)


def _leaves(group: BaseExceptionGroup) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _file_in_order(
    layout: OutputLayout,
    refs: tuple[AttachmentRef, ...],
    outcomes: list[_FileState],
    folder: _Folder,
    source: Source,
    up_to_a_gap: bool,
) -> list[SavedFile | FileProblem]:
    """Name and place the fetched files in page order; what each attachment came to.

    ``up_to_a_gap``: stop at the first attachment not fetched (the PO was interrupted).
    """
    filed: list[SavedFile | FileProblem] = []
    for index, ref in enumerate(refs):
        outcome = outcomes[index]
        if outcome is None:
            if up_to_a_gap:
                break
            continue
        if isinstance(outcome, Fetched):
            try:
                outcome = _file_away(layout, outcome, ref, folder, source)
            except FileRefused as exc:
                outcome = FileProblem(ref.url or "", ref.name_hint, str(exc), source)
            outcomes[index] = outcome
        filed.append(outcome)
    return filed


def _discard_temps(outcomes: list[_FileState]) -> None:
    for outcome in outcomes:
        if isinstance(outcome, Fetched):
            outcome.temp_path.unlink(missing_ok=True)


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
    if sha256_of(path) != prior.sha256:
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
    # A server file wins its own name: an e-mail's PDF or folder of ours there moves aside
    # (converted again under another name); anything else keeps it.
    while not make_way(folder.path, name):
        taken.add(name.lower())
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
    for name, size in folder.existing.items():
        if name.lower() in folder.taken or size != fetched.size:
            continue
        if not (
            name == wanted or (name.startswith(f"{prefix} (") and name.endswith(f"{dot}{ext}"))
        ):
            continue
        if sha256_of(folder.path / name) == fetched.sha256:
            return name
    return None


async def _settle(job: _Job, task: PoTask, result: PoResult, folder: _Folder | None) -> PoResult:
    """The PO's result as it is final: the work folder renamed to its final name, the result
    pointing at it, its attempts, and a message fit for the journal and the report (which people
    send on: no secrets)."""
    env = job.env
    if folder is None:
        folder = await anyio.to_thread.run_sync(_open_folder, env.layout, task, result.supplier)
    final = await anyio.to_thread.run_sync(env.layout.finalise, folder.path, result.outcome.value)
    result.folder = final
    result.files = [
        SavedFile(f.name, final / f.name, f.size, f.sha256, f.source, f.url) for f in result.files
    ]
    result.finished_at = datetime.now(UTC)
    result.attempts = job.attempt
    result.message = public_text(result.message)
    log.debug(
        "po_settled", po=result.po_number, outcome=result.outcome.value, files=result.downloaded
    )
    return result
