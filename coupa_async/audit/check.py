"""The audit of one output folder: offline always, then (unless told not to) online."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from coupa_async.audit import DEFAULT_SAMPLE, DEFAULT_SETTLE_S
from coupa_async.audit.findings import AuditReport
from coupa_async.audit.offline import check_offline
from coupa_async.audit.online import check_online, choose
from coupa_async.audit.records import read_records
from coupa_async.errors import ConfigurationError
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

    Raises InputFileError (no such folder, no journal), JournalError (unreadable journal) and
    ConfigurationError (no Coupa address for the online part, or not the run's; bad numbers).
    """
    ensure_logging()
    out = Path(out_dir) if out_dir is not None else settings.out
    if sample < 0 or settle_s <= 0:
        raise ConfigurationError("--sample must be 0 or more and --settle more than 0.")
    records = await asyncio.to_thread(read_records, out)
    report = AuditReport(out_dir=out)
    chosen: list[PoRecord] = []
    if not offline:
        report.online = True
        report.sample_seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        chosen = choose(records, sample, random.Random(report.sample_seed))
        _check_tenant(settings, chosen)
    report.pending = sum(1 for r in records.values() if r.state == PENDING)
    report.settled = len(records) - report.pending

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
    if offline:
        return report

    report.online_planned = len(chosen)
    log.info("audit_online", pos=len(chosen), seed=report.sample_seed, settle_s=settle_s)
    started = time.monotonic()
    seen = await check_online(settings, chosen, settle_s=settle_s, stop=stop)
    report.online_s = time.monotonic() - started
    report.online_checked = seen.checked
    report.disagreements += seen.disagreements
    report.unchecked += seen.unchecked
    report.interrupted = seen.stopped
    return report


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
