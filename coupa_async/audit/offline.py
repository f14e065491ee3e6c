"""The offline audit: folders, files, leftovers (and the report), checked against the journal.

Reads only. Files are hashed in worker threads, a few at once, never on the event loop.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import anyio

from coupa_async.audit.findings import Check, Disagreement, shown, state_said
from coupa_async.audit.reports import check_reports
from coupa_async.coupa.numbers import MAX_DIGITS, PREFIXES
from coupa_async.results.journal import JOURNAL_DIR, PENDING, KnownFile, PoRecord
from coupa_async.results.layout import (
    FINAL_OUTCOMES,
    WORK_SUFFIX,
    moved_aside_label,
    unfinished_work,
)

HASH_THREADS = 4
_LABEL = re.compile(rf"(?:{'|'.join(PREFIXES)})[0-9]{{1,{MAX_DIGITS}}}")
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class TreeScan:
    """What lies under ``out``: what should not be there, and the final folders of each PO."""

    leftovers: list[tuple[Path, str]] = field(default_factory=list)  # (path, what it is)
    finals: dict[str, list[Path]] = field(default_factory=dict)  # PO label -> final folders


@dataclass
class OfflineResult:
    disagreements: list[Disagreement] = field(default_factory=list)
    files_hashed: int = 0
    bytes_hashed: int = 0
    reports_read: list[Path] = field(default_factory=list)


async def check_offline(out: Path, records: dict[str, PoRecord]) -> OfflineResult:
    """Every settled PO's folder and files, what else lies under ``out``, and the report."""
    result = OfflineResult()
    scan = await anyio.to_thread.run_sync(scan_tree, out)
    result.disagreements += leftover_findings(scan, records, out)
    result.disagreements += duplicate_findings(scan, records, out)
    settled = [r for r in records.values() if r.state != PENDING]
    checks = await in_threads(
        lambda record: check_record(record, scan.finals.get(record.label, []), out), settled
    )
    for findings, hashed, size in checks:
        result.disagreements += findings
        result.files_hashed += hashed
        result.bytes_hashed += size
    findings, read = await anyio.to_thread.run_sync(check_reports, out, records)
    result.disagreements += findings
    result.reports_read = read
    return result


async def in_threads(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``func`` over ``items`` in up to HASH_THREADS worker threads; results in item order."""
    results: list[R | None] = [None] * len(items)
    queue = iter(enumerate(items))

    async def worker() -> None:
        for index, item in queue:
            results[index] = await anyio.to_thread.run_sync(func, item)

    async with anyio.create_task_group() as group:
        for _ in range(min(HASH_THREADS, len(items))):
            group.start_soon(worker)
    return results  # type: ignore[return-value]


# ----- the tree ------------------------------------------------------------------------------


def scan_tree(out: Path) -> TreeScan:
    """Walk ``out`` (not the journal's folder) for leftovers and final PO folders."""
    scan = TreeScan()
    for root, dirs, files in os.walk(out):
        here = Path(root)
        if here == out and JOURNAL_DIR in dirs:
            dirs.remove(JOURNAL_DIR)
        for name in list(dirs):
            what = unfinished_work(name, is_dir=True)
            if what is not None:
                scan.leftovers.append((here / name, what))
                dirs.remove(name)  # everything inside is left over with it
                continue
            label = final_label(name)
            if label is not None:
                scan.finals.setdefault(label, []).append(here / name)
        for name in files:
            what = unfinished_work(name, is_dir=False)
            if what is not None:
                scan.leftovers.append((here / name, what))
    for folders in scan.finals.values():
        folders.sort()
    scan.leftovers.sort()
    return scan


def final_label(name: str) -> str | None:
    """The PO label of a final folder name (``PO1_COMPLETED`` -> ``PO1``), else None."""
    for outcome in FINAL_OUTCOMES:
        label = name.removesuffix(f"_{outcome}")
        if label != name and _LABEL.fullmatch(label):
            return label
    return None


def leftover_findings(
    scan: TreeScan, records: dict[str, PoRecord], out: Path
) -> list[Disagreement]:
    findings = []
    for path, what in scan.leftovers:
        label = _owner(path)
        record = records.get(label) if label else None
        said = state_said(record) if label else "nothing half-written is left"
        if record is not None and record.folder is not None:
            said += f", its folder {shown(record.folder, out)}"
        findings.append(Disagreement(label, Check.LEFTOVER, said, what, path))
    return findings


def _owner(path: Path) -> str:
    """The PO a leftover belongs to, when its name or its folder's name says."""
    name = path.name
    if name.endswith(WORK_SUFFIX):
        return name.removesuffix(WORK_SUFFIX)
    aside = moved_aside_label(name)
    if aside is not None:
        return aside
    parent = path.parent.name
    if parent.endswith(WORK_SUFFIX):
        return parent.removesuffix(WORK_SUFFIX)
    return final_label(parent) or ""


def duplicate_findings(
    scan: TreeScan, records: dict[str, PoRecord], out: Path
) -> list[Disagreement]:
    findings = []
    for label, folders in sorted(scan.finals.items()):
        if len(folders) < 2:
            continue
        record = records.get(label)
        said = (
            f"one folder: {shown(record.folder, out)}"
            if record is not None and record.folder is not None
            else "one folder per PO"
        )
        found = f"{len(folders)} folders: " + ", ".join(shown(p, out) for p in folders)
        findings.append(Disagreement(label, Check.DUPLICATE, said, found, folders[0].parent))
    return findings


# ----- folders and files ---------------------------------------------------------------------


def check_record(
    record: PoRecord, finals: list[Path], out: Path
) -> tuple[list[Disagreement], int, int]:
    """The PO's final folder and every file the journal lists for it, hashed.

    Returns the disagreements, the files hashed and their bytes.
    """
    folder = record.folder
    if folder is None:
        return [], 0, 0  # a PO that failed before it had a folder claims nothing on disk
    said = f"{record.state}, {len(record.files)} file(s) in {shown(folder, out)}"
    if not folder.is_dir():
        elsewhere = [p for p in finals if p != folder]
        found = "the folder is missing" + (
            f"; the PO's folder is {shown(elsewhere[0], out)}" if elsewhere else ""
        )
        return [Disagreement(record.label, Check.FOLDER, said, found, folder)], 0, 0
    findings = []
    wanted = f"{record.label}_{record.state}"
    if record.state in FINAL_OUTCOMES and folder.name != wanted:
        findings.append(
            Disagreement(
                record.label, Check.FOLDER, said, f"the folder's name says {folder.name}", folder
            )
        )
    hashed = size = 0
    for known in record.files:
        issue, was_hashed = _file_issue(known)
        if was_hashed:
            hashed, size = hashed + 1, size + known.size
        if issue is not None:
            journal = f"{known.name}: {known.size:,} bytes, sha256 {known.sha256[:12]}…"
            findings.append(Disagreement(record.label, Check.FILE, journal, issue, known.path))
    return findings, hashed, size


def _file_issue(known: KnownFile) -> tuple[str | None, bool]:
    """What is wrong with a recorded file (None when nothing), and whether it was hashed."""
    try:
        stat = known.path.stat()
    except FileNotFoundError:
        return "the file is missing", False
    except OSError as exc:
        return f"the file cannot be read: {exc.strerror}", False
    if not known.path.is_file():
        return "not a file", False
    if stat.st_size != known.size:
        return f"{stat.st_size:,} bytes", False
    try:
        digest = sha256_of(known.path)
    except OSError as exc:
        return f"the file cannot be read: {exc.strerror}", False
    if digest != known.sha256:
        return f"same size, other bytes: sha256 {digest[:12]}…", True
    return None, True


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
