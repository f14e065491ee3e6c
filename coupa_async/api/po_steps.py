"""One PO through Coupa's REST API: the same folder, names, outcome and manifest rows as the
browser path (``coupa_async.coupa.po_steps.process_po``), without a page.

The PO is resolved to the API's object (ahead of time, fifty numbers a request, through
``ApiJobEnv.prefetch``); its header, line and comment attachments are listed; its files are
streamed into the PO's work folder side by side (the run's one rate limiter spaces them) and
filed in the API's order, header, lines, then comments, with the browser path's own naming
(``_file_in_order``: the layout's cleaning and duplicate suffixes, a copy from an earlier attempt
reused). The requisition's attachments are read when the browser path's rule
(``needs_requisition``) sends it there; when the PO's file names already say so, the
requisition is listed before any file is downloaded, so a requisition the API will not show
costs no download.

What the API cannot settle comes back as ``ApiCannotServe`` (mostly before anything is filed):
a PO it will not show (403), a number it does not know (404: the page may still exist, and only
the browser path may say PO_NOT_FOUND), a requisition out of the client's scopes or unknown to
it, a download refused for a scope. The engine sends such a PO to the browser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import anyio

from coupa_async.api.client import ApiClient, Lookup
from coupa_async.api.models import ApiAttachment, ApiPo, NotAllowed, normal_number
from coupa_async.coupa.discover import MAX_NAME, MAX_TEXT, AttachmentRef
from coupa_async.coupa.download import Fetched, FileRefused
from coupa_async.coupa.po_steps import (
    UNKNOWN_SUPPLIER,
    PoTask,
    _discard_temps,
    _file_in_order,
    _FileState,
    _Folder,
    _found_file,
    _most_telling,
    _needs_requisition,
    _open_folder,
    _outcome,
    _record_others,
    _reuse_known,
    needs_requisition,
)
from coupa_async.coupa.reader import Doing, untold
from coupa_async.errors import ApiRefusalError, PoJobError, TransientError
from coupa_async.log import get_logger, public_text
from coupa_async.results.layout import (
    PARTIAL_SUFFIX,
    OutputLayout,
    hidden_temp_name,
    safe_file_name,
)
from coupa_async.results.result import FileProblem, Outcome, PoResult, SavedFile, Source
from coupa_async.settings import Settings

log = get_logger(__name__)

MODE = "api"  # PoResult.mode of a PO read through the API
BATCH = 50  # numbers resolved per lookup request


@dataclass(frozen=True, slots=True)
class ApiCannotServe:
    """The API cannot settle this PO: the browser path must (``reason`` says why, for the log
    and the journal). Mostly known before any file is fetched, and then no folder was made; a
    refusal met later (a download refused for a scope, a requisition the saved names sent the
    job to) leaves the files filed so far in the PO's work folder, where the browser path
    finds them."""

    po_number: str
    reason: str


class _CannotServe(Exception):
    """Raised inside the job where the API refuses what the PO needs; returned as a value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ApiJobEnv:
    """What the API path shares over a run: the settings, the client (its one limiter and
    token), the output layout, and the POs resolved ahead of time.

    ``prefetch`` the numbers of the next queued POs (fifty a request); ``process_po_api`` takes a
    PO from the cache, or resolves it alone when it was not prefetched. A resolution is used
    once (a retried PO asks again: the PO may have changed meanwhile).
    """

    settings: Settings
    api: ApiClient
    layout: OutputLayout
    doing: Doing = untold
    _resolved: dict[str, asyncio.Future[Lookup]] = field(default_factory=dict, repr=False)
    _prefetches: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    @property
    def base_url(self) -> str:
        return (self.settings.base_url or "").rstrip("/")

    def prefetch(self, numbers: Iterable[str]) -> asyncio.Task[None] | None:
        """Start resolving the numbers not already resolved or being resolved, fifty a request,
        in the background; the task (None: nothing to do) ends when all are in. Errors are
        not raised here: a PO whose lookup failed is asked again on its own."""
        wanted = [n for n in dict.fromkeys(map(normal_number, numbers)) if n not in self._resolved]
        if not wanted:
            return None
        loop = asyncio.get_running_loop()
        for number in wanted:
            self._resolved[number] = loop.create_future()
        task = asyncio.create_task(self._resolve(wanted))
        self._prefetches.add(task)  # held until it ends, whatever the caller keeps
        task.add_done_callback(self._prefetches.discard)
        return task

    async def aclose(self) -> None:
        """Stop the lookups still under way (the run is ending)."""
        pending = list(self._prefetches)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _resolve(self, numbers: Sequence[str]) -> None:
        batches = [numbers[i : i + BATCH] for i in range(0, len(numbers), BATCH)]
        await asyncio.gather(*(self._resolve_batch(batch) for batch in batches))

    async def _resolve_batch(self, batch: Sequence[str]) -> None:
        try:
            found = await self.api.find_pos(batch)
        except BaseException as exc:
            for number in batch:
                future = self._resolved.pop(number, None)
                if future is not None and not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else Exception())
                    future.exception()  # retrieved: a waiter asks again alone
            if not isinstance(exc, Exception):
                raise
            log.info("api_prefetch_failed", numbers=len(batch), reason=public_text(str(exc)))
            return
        for number in batch:
            future = self._resolved.get(number)
            if future is not None and not future.done():
                future.set_result(found.get(number))

    async def lookup(self, number: str) -> Lookup:
        """The PO numbered ``number`` (prefetched, or asked alone); used once."""
        key = normal_number(number)
        future = self._resolved.get(key)
        if future is not None:
            try:
                return await asyncio.shield(future)
            except Exception:  # the batch failed: asked alone below
                pass
            finally:
                if self._resolved.get(key) is future and future.done():
                    del self._resolved[key]
        found = await self.api.find_pos([key])
        return found.get(key)

    @property
    def pending(self) -> int:
        """Numbers resolved (or being resolved) and not yet used."""
        return len(self._resolved)


def po_page_url(base_url: str, po_id: int) -> str:
    """The address of a PO's page, by the API's internal id."""
    return f"{base_url.rstrip('/')}/order_headers/{po_id}"


def requisition_page_url(base_url: str, pr_id: int) -> str:
    """The address of a requisition's page, by the API's internal id."""
    return f"{base_url.rstrip('/')}/requisition_headers/{pr_id}"


async def process_po_api(
    env: ApiJobEnv, task: PoTask, *, final_attempt: bool = True, attempt: int = 1
) -> PoResult | ApiCannotServe:
    """Process one PO (its ``attempt``-th try) through the API to a settled result; the
    reason the API cannot serve it; or raise for the engine to retry it (TransientError,
    RateLimitedError, AuthenticationError), as the browser path raises."""
    try:
        return await _process(env, task, final_attempt, attempt)
    except _CannotServe as exc:
        log.info("api_cannot_serve", po=task.po.label, reason=exc.reason)
        return ApiCannotServe(task.po.label, public_text(exc.reason))


async def _process(env: ApiJobEnv, task: PoTask, final_attempt: bool, attempt: int) -> PoResult:
    started = datetime.now(UTC)
    env.doing("looking the PO up in the API")
    found = await env.lookup(task.po.digits)
    if found is None:
        raise _CannotServe(
            f"the API knows no PO {task.po.digits}: its page may still exist (only the "
            "browser may say PO_NOT_FOUND)"
        )
    if isinstance(found, NotAllowed):
        raise _CannotServe(f"the API will not show PO {task.po.digits}: {found.reason}")
    po: ApiPo = found
    base_url = env.base_url
    result = PoResult(
        po_number=task.po.label,
        outcome=Outcome.FAILED,
        po_url=po_page_url(base_url, po.id),
        mode=MODE,
        started_at=started,
        attempts=attempt,
    )
    result.supplier = po.supplier or task.supplier_hint or UNKNOWN_SUPPLIER
    env.doing("listing the PO's attachments")
    try:
        po_items = await env.api.po_attachments(po)
    except ApiRefusalError as exc:
        raise _CannotServe(f"the PO's attachments or comments: {exc}") from None
    po_files = [a for a in po_items if a.kind == "file"]

    # The rule read from the API's names (the files' names are the names they are saved under
    # in all but the rarest case): a requisition the API will not show is known before any
    # file is fetched. Checked again below on the names the files were really saved under.
    pr_read: _PrRead | None = None
    if po.requisition is not None and needs_requisition(a.name for a in po_files):
        pr_read = await _read_requisition(env, po, final_attempt)

    known = {saved.url: saved for saved in task.known_files}
    folder = await anyio.to_thread.run_sync(_open_folder, env.layout, task, result.supplier)
    await _save_all(env, po_files, "PO", folder, result, known, final_attempt)
    _record_others(_others(po_items), "PO", result)

    messages: list[str] = []
    if _needs_requisition(result):
        if po.requisition is None:
            if result.found == 0:
                messages.append("no attachments on the PO and no requisition link")
        else:
            pr_url = result.pr_url = requisition_page_url(base_url, po.requisition.id)
            if pr_read is None:
                pr_read = await _read_requisition(env, po, final_attempt)
            if pr_read.failed is not None:  # out of attempts: keep what the PO gave
                result.outcome = Outcome.PARTIAL if result.files else Outcome.FAILED
                messages.append(f"requisition {pr_url} could not be read: {pr_read.failed}")
                messages.extend(f"{p.name}: {p.reason}" for p in result.problems)
                result.message = "; ".join(messages)
                return await _settle(env, result, folder)
            if pr_read.inaccessible is not None:
                result.outcome = Outcome.PR_NOT_ACCESSIBLE
                messages.append(f"requisition {pr_url} not accessible: {pr_read.inaccessible}")
                result.message = "; ".join(messages)
                return await _settle(env, result, folder)
            before = len(result.files)
            pr_files = [a for a in pr_read.items if a.kind == "file"]
            await _save_all(env, pr_files, "PR", folder, result, known, final_attempt)
            _record_others(_others(pr_read.items), "PR", result)
            pr_names = [saved.name for saved in result.files[before:]]
            if pr_names:
                messages.append(f"from requisition {pr_url}: {', '.join(pr_names)}")
            elif result.found == 0:
                messages.append(f"no attachments on the PO nor on {pr_url}")
    result.outcome = _outcome(result)
    messages.extend(f"{problem.name}: {problem.reason}" for problem in result.problems)
    if result.links_and_texts:
        messages.append(
            f"{result.links_and_texts} URL or text attachment(s), recorded in the manifest"
        )
    result.message = "; ".join(messages)
    return await _settle(env, result, folder)


@dataclass(frozen=True, slots=True)
class _PrRead:
    """What reading the requisition came to: its attachments; or why it is not accessible
    (403 without a scope: refused as its page refuses the user); or, on the final attempt,
    why it could not be read."""

    items: tuple[ApiAttachment, ...] = ()
    inaccessible: str | None = None
    failed: str | None = None


async def _read_requisition(env: ApiJobEnv, po: ApiPo, final_attempt: bool) -> _PrRead:
    assert po.requisition is not None
    env.doing("listing the requisition's attachments")
    try:
        return _PrRead(tuple(await env.api.requisition_attachments(po.requisition)))
    except ApiRefusalError as exc:
        if exc.scope or exc.status != 403:
            # Outside the client's scopes, or unknown to the API: the browser decides.
            raise _CannotServe(f"requisition {po.requisition.number}: {exc}") from None
        return _PrRead(inaccessible=str(exc))
    except TransientError as exc:
        if not final_attempt:
            raise
        return _PrRead(failed=str(exc))


def _refs(attachments: Iterable[ApiAttachment]) -> tuple[AttachmentRef, ...]:
    """The API's attachments as the browser path's references: a file by its download
    address, a URL by its address, a text by its text; placed as the API places them."""
    return tuple(_ref(a) for a in attachments)


def _others(attachments: Iterable[ApiAttachment]) -> tuple[AttachmentRef, ...]:
    """The URL and text attachments in the order the browser path records a page's: its texts,
    then its URLs (each in page order)."""
    others = [a for a in attachments if a.kind != "file"]
    return _refs(sorted(others, key=lambda a: a.kind != "text"))


def _ref(attachment: ApiAttachment) -> AttachmentRef:
    """A URL is recorded without its fragment and a text with its blanks collapsed and cut at
    ``MAX_TEXT``, as the browser path records what a page shows."""
    if attachment.kind == "file":
        return AttachmentRef(attachment.file_url, attachment.name, place=attachment.where)
    if attachment.kind == "url":
        url = (attachment.url or "").strip().split("#", 1)[0]
        return AttachmentRef(url or None, url, place=attachment.where, kind="url")
    text = " ".join((attachment.text or "").split())[:MAX_TEXT]
    return AttachmentRef(None, text[:MAX_NAME], place=attachment.where, kind="text", text=text)


async def _save_all(
    env: ApiJobEnv,
    attachments: Sequence[ApiAttachment],
    source: Source,
    folder: _Folder,
    result: PoResult,
    known: dict[str, SavedFile],
    final_attempt: bool,
) -> None:
    """Save the files into the folder (those an earlier run saved reused) and note each saved
    file or problem, filed in the API's order as the browser path files in page order."""
    refs = _refs(attachments)
    outcomes: list[_FileState] = [None] * len(refs)
    saved_before = _saved_before(attachments, known, source)
    for index, ref in enumerate(refs):
        if (ref.url or "") in saved_before:
            env.doing("checking files saved before")
            reused = await anyio.to_thread.run_sync(_reuse_known, folder, ref, saved_before, source)
            # Keyed on the API's address from now on, whichever source saved it.
            outcomes[index] = replace(reused, url=ref.url or "") if reused else None
    layout = env.layout
    try:
        try:
            await _fetch_all(env, attachments, refs, source, folder.path, outcomes, final_attempt)
        except (PoJobError, _CannotServe):
            # What came before the first file still missing, filed as an uninterrupted run
            # files it: the retry (or the browser) finds it under the same name.
            await anyio.to_thread.run_sync(
                _file_in_order, layout, refs, outcomes, folder, source, True
            )
            raise
        filed = await anyio.to_thread.run_sync(
            _file_in_order, layout, refs, outcomes, folder, source, False
        )
    finally:
        _discard_temps(outcomes)
    for outcome in filed:
        if isinstance(outcome, SavedFile):
            result.files.append(outcome)
        else:
            result.problems.append(outcome)
    for ref, state in zip(refs, outcomes, strict=True):
        result.attachments.append(_found_file(ref, state, source))


def _saved_before(
    attachments: Sequence[ApiAttachment], known: dict[str, SavedFile], source: Source
) -> dict[str, SavedFile]:
    """The file an earlier run saved for each file attachment, by its download address.

    By the address first, as the browser path reuses files. A file the browser saved is known
    by its page's address, which the API does not give: it is taken for the attachment the API
    names as it was saved (the name, or a numbered twin ``name (2).ext``) with the size the API
    declares, each earlier file for one attachment only, in order. ``_reuse_known`` then checks
    it is still there, whole and unchanged (its SHA-256), as for a file known by its address.
    """
    found: dict[str, SavedFile] = {}
    used: set[str] = set()
    for attachment in attachments:
        url = attachment.file_url or ""
        if url and url in known:
            found[url] = known[url]
            used.add(url)
    for attachment in attachments:
        url = attachment.file_url or ""
        if not url or url in found or attachment.size is None:
            continue
        wanted = safe_file_name(attachment.name or None)
        for prior in known.values():
            if (
                prior.url not in used
                and prior.source == source
                and prior.size == attachment.size
                and _same_family(prior.name, wanted)
            ):
                found[url] = prior
                used.add(prior.url)
                break
    return found


def _same_family(name: str, wanted: str) -> bool:
    """``name`` is ``wanted`` or a numbered twin of it (``unique_name``'s ``stem (n).ext``),
    case ignored as ``unique_name`` ignores it."""
    name, wanted = name.casefold(), wanted.casefold()
    if name == wanted:
        return True
    stem, dot, ext = wanted.rpartition(".")
    prefix, tail = (stem, f"{dot}{ext}") if dot else (wanted, "")
    if not (name.startswith(f"{prefix} (") and name.endswith(f"){tail}")):
        return False
    number = name[len(prefix) + 2 : len(name) - len(tail) - 1]
    return number.isdigit()


async def _fetch_all(
    env: ApiJobEnv,
    attachments: Sequence[ApiAttachment],
    refs: tuple[AttachmentRef, ...],
    source: Source,
    folder: Path,
    outcomes: list[_FileState],
    final_attempt: bool,
) -> None:
    """Download every file not reused, side by side, into ``outcomes`` (index for index); the
    first error the PO cannot settle with stops the others and is raised on its own."""
    wanted = [index for index, outcome in enumerate(outcomes) if outcome is None]
    if not wanted:
        return
    done = 0
    env.doing(f"downloading files: {done} of {len(wanted)} done")

    async def fetch(index: int) -> None:
        nonlocal done
        outcomes[index] = await _fetch_or_problem(
            env, attachments[index], refs[index], source, folder, final_attempt
        )
        done += 1
        env.doing(f"downloading files: {done} of {len(wanted)} done")

    try:
        async with anyio.create_task_group() as group:
            for index in wanted:
                group.start_soon(fetch, index)
    except BaseExceptionGroup as failed:
        chosen = _most_telling(failed)  # a refusal ranks first, as a defect does there
        raise chosen from chosen.__cause__


async def _fetch_or_problem(
    env: ApiJobEnv,
    attachment: ApiAttachment,
    ref: AttachmentRef,
    source: Source,
    folder: Path,
    final_attempt: bool,
) -> Fetched | FileProblem:
    """The file, downloaded under a hidden name in the folder; or why it cannot be saved."""
    url = attachment.file_url or ""
    if not url:
        return FileProblem("", attachment.name, "the API gives no download address", source)
    dest = folder / hidden_temp_name(str(attachment.id), PARTIAL_SUFFIX)
    try:
        got = await env.api.download(attachment, dest)
    except FileRefused as exc:
        return FileProblem(url, attachment.name, str(exc), source)
    except ApiRefusalError as exc:
        if exc.scope:
            raise _CannotServe(f"{attachment.name}: {exc}") from None
        return FileProblem(url, attachment.name, str(exc), source)
    except TransientError as exc:
        if not final_attempt:
            raise
        return FileProblem(url, attachment.name, str(exc), source)
    assert got.path is not None
    return Fetched(got.path, got.size, got.sha256, got.server_name, url)


async def _settle(env: ApiJobEnv, result: PoResult, folder: _Folder) -> PoResult:
    """The work folder renamed to its final name and the result pointing at it, as the browser
    path settles a PO (``po_steps._settle``)."""
    final = await anyio.to_thread.run_sync(env.layout.finalise, folder.path, result.outcome.value)
    result.folder = final
    result.files = [
        SavedFile(f.name, final / f.name, f.size, f.sha256, f.source, f.url) for f in result.files
    ]
    result.finished_at = datetime.now(UTC)
    result.message = public_text(result.message)
    log.debug(
        "po_settled",
        po=result.po_number,
        outcome=result.outcome.value,
        files=result.downloaded,
        mode=MODE,
    )
    return result
