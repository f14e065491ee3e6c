"""The API audit: every settled PO of a run compared with what Coupa's REST API lists.

For each PO with a folder: its attachments through the API (the PO's, and its requisition's
where the job's rule sends it there) against the files in its folder (by the name the run
gives them and by size) and the URL and text attachments its record keeps (the manifest's
rows). Bytes are downloaded and hashed where a name or a size does not settle a file, and for
every file of ``sample`` POs chosen at random: sizes catch a missing, cut or extra file at the
cost of a listing; hashes prove the bytes, at the cost of downloading them, so on a sample.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import anyio

from coupa_async.api.client import ApiClient, Lookup
from coupa_async.api.models import ApiAttachment, ApiPo, NotAllowed
from coupa_async.audit.api_sight import (
    ApiSight,
    Found,
    file_findings,
    folder_files,
    link_findings,
    match_files,
    state_findings,
)
from coupa_async.audit.findings import Check, Disagreement, Unchecked
from coupa_async.coupa.download import FileRefused, sha256_of
from coupa_async.coupa.numbers import InvalidPoNumber, parse_po_number
from coupa_async.errors import (
    ApiAccessError,
    ApiRefusalError,
    AuthenticationError,
    CoupaAsyncError,
)
from coupa_async.log import get_logger
from coupa_async.results.journal import PENDING, PoRecord
from coupa_async.results.result import Outcome

log = get_logger(__name__)

WORKERS = 16  # POs compared at once; the run's limiter keeps the requests within the budget
STOPPED = "the audit was stopped before it was compared"


@dataclass
class ApiResult:
    disagreements: list[Disagreement] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
    planned: int = 0
    checked: int = 0
    sampled: int = 0  # POs whose every file was downloaded and hashed
    files_hashed: int = 0  # API files downloaded and hashed (sample and doubtful ones)
    stopped: bool = False


def claims(records: dict[str, PoRecord]) -> list[PoRecord]:
    """The settled POs with a folder, by label (one that failed before it had a folder claims
    nothing about its attachments)."""
    return sorted(
        (r for r in records.values() if r.state != PENDING and r.folder is not None),
        key=lambda r: r.label,
    )


def choose_sample(chosen: Sequence[PoRecord], sample: int, rng: random.Random) -> set[str]:
    """``sample`` of the POs with saved files, at random: their files are hashed."""
    with_files = [r.label for r in chosen if r.files]
    return set(rng.sample(with_files, min(sample, len(with_files))))


async def check_api(
    api: ApiClient,
    chosen: Sequence[PoRecord],
    *,
    sampled: set[str],
    stop: asyncio.Event | None = None,
) -> ApiResult:
    """Compare each of ``chosen`` with the API (``api``: its access already checked)."""
    result = ApiResult(planned=len(chosen), sampled=len(sampled))
    numbers: dict[str, str] = {}
    for record in chosen:
        try:
            numbers[record.label] = parse_po_number(record.label).digits
        except InvalidPoNumber as exc:
            result.unchecked.append(Unchecked(record.label, str(exc), record.folder))
    queue = [r for r in chosen if r.label in numbers]
    try:
        lookups = await api.find_pos(numbers.values()) if numbers else {}
    except (ApiAccessError, AuthenticationError):
        raise
    except CoupaAsyncError as exc:  # the lists could not be read: nothing can be compared
        reason = f"the API could not be read: {str(exc).splitlines()[0]}"
        result.unchecked += [Unchecked(r.label, reason, r.folder) for r in queue]
        return result
    pending = iter(queue)
    done: set[str] = set()
    failure: list[CoupaAsyncError] = []
    compare = _Comparer(api, sampled, result)

    async def worker() -> None:
        for record in pending:
            if failure or (stop is not None and stop.is_set()):
                return
            try:
                await compare.one(record, lookups[numbers[record.label]])
            except (ApiAccessError, AuthenticationError) as exc:
                failure.append(exc)  # the client itself is refused: nothing more can be read
                return
            except CoupaAsyncError as exc:
                reason = f"the API could not be read: {str(exc).splitlines()[0]}"
                result.unchecked.append(Unchecked(record.label, reason, record.folder))
            done.add(record.label)

    async with anyio.create_task_group() as group:
        for _ in range(min(WORKERS, len(queue))):
            group.start_soon(worker)
    left = [r for r in queue if r.label not in done]
    if left:
        reason = str(failure[0]) if failure else STOPPED
        result.stopped = not failure
        if failure:
            log.warning("audit_api_stopped", reason=reason.splitlines()[0])
        result.unchecked += [Unchecked(r.label, reason, r.folder) for r in left]
    log.info(
        "audit_api_done",
        pos=result.checked,
        of=result.planned,
        files_hashed=result.files_hashed,
        requests=api.transport.requests,
        disagreements=len(result.disagreements),
    )
    return result


class _Comparer:
    """One PO at a time per worker: read the API, list the folder, hash what needs it."""

    def __init__(self, api: ApiClient, sampled: set[str], result: ApiResult) -> None:
        self.api = api
        self.sampled = sampled
        self.result = result
        self._requisitions: dict[int, list[ApiAttachment] | str] = {}

    async def one(self, record: PoRecord, lookup: Lookup) -> None:
        label = record.label
        if isinstance(lookup, NotAllowed):
            self._unchecked(record, f"the API will not show this PO to the client: {lookup.reason}")
            return
        if lookup is None:
            if record.state == Outcome.PO_NOT_FOUND.value:
                self.result.checked += 1  # neither the pages nor the API know it
            else:
                self._unchecked(
                    record, "the API knows no such PO (not listed, or HTTP 404): no witness"
                )
            return
        sight = await self._sight(lookup)
        found = state_findings(record, sight)
        if record.state != Outcome.PO_NOT_FOUND.value:
            found += await self._compare(record, sight)
        self.result.checked += 1
        self.result.disagreements += [
            Disagreement(label, Check.API, f.said, f.found, f.where) for f in found
        ]
        log.debug("audit_api_po", po=label, disagreements=len(found))

    async def _sight(self, po: ApiPo) -> ApiSight:
        sight = ApiSight(
            po.number,
            tuple(await self.api.po_attachments(po)),
            requisition=po.requisition.number if po.requisition is not None else None,
        )
        if not sight.rule_applies or po.requisition is None:
            return sight
        pr = self._requisitions.get(po.requisition.id)
        if pr is None:
            try:
                pr = await self.api.requisition_attachments(po.requisition)
            except ApiRefusalError as exc:
                pr = str(exc)
            self._requisitions[po.requisition.id] = pr
        if isinstance(pr, str):
            return replace(sight, pr_refused=pr)
        return replace(sight, pr_items=tuple(pr))

    async def _compare(self, record: PoRecord, sight: ApiSight) -> list[Found]:
        assert record.folder is not None
        inaccessible = record.state == Outcome.PR_NOT_ACCESSIBLE.value
        # A requisition the run could not open: its files are the state's finding, not each one.
        items = sight.po_items if inaccessible else sight.counted
        ignored: list[str] = []
        sources = ["PO", "PR"]
        if sight.rule_applies and sight.pr_refused is not None and not inaccessible:
            self._unchecked(
                record,
                f"its requisition {sight.requisition}: the API will not show it "
                f"({sight.pr_refused}); its files were not compared",
            )
            ignored = [f.name for f in record.files if f.source == "PR"]
            sources = ["PO"]
        disk = await anyio.to_thread.run_sync(folder_files, record.folder)
        matching = match_files([a for a in items if a.kind == "file"], disk)
        wanted = list(matching.needs_bytes())
        if record.label in self.sampled:
            wanted += [(a, [name]) for a, name in matching.pairs]
        hashes: dict[int, str] = {}
        disk_hashes: dict[str, str] = {}
        for attachment, names in wanted:
            sha = await self._digest(record, attachment)
            if sha is None:
                continue
            hashes[attachment.id] = sha
            for name in names:
                if name not in disk_hashes:
                    disk_hashes[name] = await self._disk_sha(record, name, disk[name])
        with_pr = not inaccessible and sight.rule_applies and sight.pr_items is not None
        scope = "this PO or its requisition" if with_pr else "this PO"
        found = file_findings(record, matching, hashes, disk_hashes, ignored=ignored, scope=scope)
        return found + link_findings(record, items, sources)

    async def _digest(self, record: PoRecord, attachment: ApiAttachment) -> str | None:
        try:
            received = await self.api.digest(attachment)
        except FileRefused as exc:
            self._unchecked(record, f"the API would not give the bytes of {attachment.name}: {exc}")
            return None
        self.result.files_hashed += 1
        return received.sha256

    async def _disk_sha(self, record: PoRecord, name: str, size: int) -> str:
        """The SHA-256 of a folder file: the journal's (the offline audit proved it) when it
        records that name with that size, else hashed now ("" when it cannot be read)."""
        known = next((f for f in record.files if f.name == name and f.size == size), None)
        if known is not None:
            return known.sha256
        assert record.folder is not None
        try:
            return await anyio.to_thread.run_sync(sha256_of, record.folder / name)
        except OSError:
            return ""  # unreadable: nothing to compare (the offline audit says why)

    def _unchecked(self, record: PoRecord, reason: str) -> None:
        self.result.unchecked.append(Unchecked(record.label, reason, record.folder))
