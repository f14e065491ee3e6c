"""The audit of one output folder: offline always, then (unless told not to) online."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from pathlib import Path

from coupa_async.api.client import ApiClient
from coupa_async.audit import DEFAULT_SAMPLE, DEFAULT_SETTLE_S
from coupa_async.audit.api_check import check_api, choose_sample, claims
from coupa_async.audit.findings import AuditReport
from coupa_async.audit.offline import check_offline
from coupa_async.audit.online import check_online, choose
from coupa_async.audit.records import read_records
from coupa_async.errors import ConfigurationError, missing_api_client
from coupa_async.log import ensure_logging, get_logger
from coupa_async.results.journal import PENDING, PoRecord
from coupa_async.settings import Settings

log = get_logger(__name__)


async def audit(
    settings: Settings,
    out_dir: Path | None = None,
    *,
    sample: int = DEFAULT_SAMPLE,
    offline: bool = False,
    api: bool = False,
    seed: int | None = None,
    settle_s: float = DEFAULT_SETTLE_S,
    stop: asyncio.Event | None = None,
) -> AuditReport:
    """Check an output folder against its journal; change nothing, write nothing.

    Offline: every settled PO's folder and files (sizes and SHA-256), no leftovers of unfinished
    work, one folder per PO, and report.csv / report.xlsx agreeing with the journal. Online
    (unless ``offline``): every PO settled as NO_ATTACHMENTS and ``sample`` others, chosen at
    random (``seed`` repeats a choice), read again on the site and compared with the journal.
    ``stop`` ends the online part after the PO being read.

    With ``api`` the online part asks Coupa's REST API instead of reading pages (see
    ``api_check``): every settled PO is compared, and the files of ``sample`` POs are
    downloaded and hashed. Its access (token, scopes) is checked before anything else.

    Raises InputFileError (no such folder, no journal), JournalError (unreadable journal) and
    ConfigurationError (no Coupa address for the online part, or not the run's; bad numbers;
    with ``api``, no API client, or one Coupa refuses or that lacks a scope).
    """
    ensure_logging()
    out = Path(out_dir) if out_dir is not None else settings.out
    if sample < 0 or settle_s <= 0:
        raise ConfigurationError("--sample must be 0 or more and --settle more than 0.")
    if api and offline:
        raise ConfigurationError("--api and --offline exclude each other: choose one.")
    if api and not settings.api.configured:
        raise missing_api_client("audit without --api")
    records = await asyncio.to_thread(read_records, out)
    report = AuditReport(out_dir=out)
    chosen: list[PoRecord] = []
    report.sample_seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(report.sample_seed)
    if api or not offline:
        chosen = claims(records) if api else choose(records, sample, rng)
        report.api, report.online = api, not api
        _check_tenant(settings, chosen)
    else:
        report.sample_seed = None
    report.pending = sum(1 for r in records.values() if r.state == PENDING)
    report.settled = len(records) - report.pending
    async with contextlib.AsyncExitStack() as stack:
        client = None
        if api:  # refused credentials or a missing scope end the audit before any work
            client = await stack.enter_async_context(ApiClient.open(settings))
            await client.check_access()
        await _offline(report, out, records)
        if client is not None:
            await _api(report, client, chosen, choose_sample(chosen, sample, rng), stop)
    if report.online:
        await _online(report, settings, chosen, settle_s, stop)
    return report


async def _online(
    report: AuditReport,
    settings: Settings,
    chosen: list[PoRecord],
    settle_s: float,
    stop: asyncio.Event | None,
) -> None:
    report.online_planned = len(chosen)
    log.info("audit_online", pos=len(chosen), seed=report.sample_seed, settle_s=settle_s)
    started = time.monotonic()
    seen = await check_online(settings, chosen, settle_s=settle_s, stop=stop)
    report.online_s = time.monotonic() - started
    report.online_checked = seen.checked
    report.disagreements += seen.disagreements
    report.unchecked += seen.unchecked
    report.interrupted = seen.stopped


async def _offline(report: AuditReport, out: Path, records: dict[str, PoRecord]) -> None:
    started = time.monotonic()
    found = await check_offline(out, records)
    report.disagreements += found.disagreements
    report.files_hashed, report.bytes_hashed = found.files_hashed, found.bytes_hashed
    report.reports_read = found.reports_read
    report.offline_s = time.monotonic() - started
    log.info(
        "audit_offline_done",
        pos=report.settled,
        files=report.files_hashed,
        disagreements=len(found.disagreements),
        seconds=round(report.offline_s, 2),
    )


async def _api(
    report: AuditReport,
    client: ApiClient,
    chosen: list[PoRecord],
    sampled: set[str],
    stop: asyncio.Event | None,
) -> None:
    log.info("audit_api", pos=len(chosen), sampled=len(sampled), seed=report.sample_seed)
    started = time.monotonic()
    seen = await check_api(client, chosen, sampled=sampled, stop=stop)
    report.api_s = time.monotonic() - started
    report.api_planned, report.api_checked = seen.planned, seen.checked
    report.api_sampled, report.api_files_hashed = seen.sampled, seen.files_hashed
    report.api_requests = client.transport.requests
    report.disagreements += seen.disagreements
    report.unchecked += seen.unchecked
    report.interrupted = seen.stopped


def _check_tenant(settings: Settings, chosen: list[PoRecord]) -> None:
    """The site to read is the one the run read: else every PO would seem to disagree."""
    if not settings.base_url:
        raise ConfigurationError(
            "The online check needs the Coupa address: pass --base-url "
            "https://<tenant>.coupahost.com or set COUPA_BASE_URL, or audit with --offline."
        )
    prefix = f"{settings.base_url}/"
    other = next((r.po_url for r in chosen if r.po_url and not r.po_url.startswith(prefix)), None)
    if other is not None:
        raise ConfigurationError(
            f"The run read its POs from another address ({other}) than {settings.base_url}. "
            "Pass the --base-url of that run, or audit with --offline."
        )
