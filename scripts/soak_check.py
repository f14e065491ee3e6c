"""Independent checker of a chaos soak: prove that nothing was lost, repeated or wrong.

It checks the package, so it trusts none of it: it imports nothing from ``coupa_async``, only
the standard library and psutil. It works from the simulator's catalog (``GET /__sim/catalog``),
its stats (``GET /__sim/stats``) and the output folder alone. The product's rules it relies on
are copied here as constants, each with a comment naming where in the package it comes from.

    .venv/bin/python scripts/soak_check.py --catalog catalog.json --stats stats.json --out DIR
    .venv/bin/python scripts/soak_check.py --sim http://127.0.0.1:8080 --out DIR [--emails pdf]

Saved e-mails are checked as converted per ``--emails`` (the tool's ``convert.emails``): a PDF
beside each and its attachments extracted, against the catalog's summary of each e-mail.

Prints every finding and a summary; exit code 0 when clean, 1 when not, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import re
import sqlite3
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

import psutil

# ----- the product's rules, copied (never imported) ------------------------------------------

# coupa_async/results/layout.py FINAL_OUTCOMES: the suffixes of a settled PO's folder
# <label>_<OUTCOME>.
FINAL_OUTCOMES = (
    "COMPLETED",
    "PARTIAL",
    "FAILED",
    "NO_ATTACHMENTS",
    "PO_NOT_FOUND",
    "PR_NOT_ACCESSIBLE",
)
# coupa_async/coupa/numbers.py PREFIXES and MAX_DIGITS: a PO label is PO or PM and its digits.
LABEL = r"(?:PO|PM)(?P<digits>[0-9]{1,20})"
FINAL_FOLDER = re.compile(rf"{LABEL}_(?P<outcome>{'|'.join(FINAL_OUTCOMES)})")
# coupa_async/results/layout.py: WORK_SUFFIX, and the hidden names of hidden_temp_name
# (".<name>.<secrets.token_hex(4)><suffix>"), as unfinished_work and _is_partial tell them:
# ".part" downloads, ".tmp" files written whole then renamed, ".old" folders moved aside.
WORK_SUFFIX = "__WORK"
PARTIAL_SUFFIX = ".part"
TEMP_FILE = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")
ASIDE_DIR = re.compile(r"\..+\.[0-9a-f]{8}\.old")
# coupa_async/results/journal.py JOURNAL_DIR, JOURNAL_NAME, PENDING.
JOURNAL_DIR = ".coupa_async"
JOURNAL_NAME = "journal.sqlite3"
PENDING = "PENDING"
# coupa_async/tabular/report.py CSV_NAME, XLSX_NAME (CSV_ENCODING utf-8-sig: a BOM), and
# coupa_async/htmlreport/write.py REPORT_HTML_NAME: the only files the tool writes in <out>.
REPORT_CSV = "report.csv"
# The run's own files at the top of `out` (manifest.csv: every attachment a PO showed).
REPORT_FILES = frozenset({REPORT_CSV, "report.xlsx", "report.html", "manifest.csv"})
# coupa_async/tabular/report_table.py: the report's columns, and the "'" that neutralise()
# puts before text a spreadsheet would run as a formula (FORMULA_START).
REPORT_COLUMNS = (
    "PO_NUMBER",
    "STATUS",
    "DOWNLOAD_FOLDER",
    "ATTACHMENTS_DOWNLOADED",
    "CONVERSION_ERRORS",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
INVALID = "INVALID"
# The folder rule (coupa_async/coupa/po_steps.py _settle, coupa_async/coupa/po_job.py give_up,
# and the audit's check_record in coupa_async/audit/offline.py): every PO the job settles gets
# exactly one final folder, PO_NOT_FOUND included. Only a PO the engine gives up on after its
# retries (PoJob.give_up) settles without one: it is FAILED, the journal records no folder and
# no file, and the report has an empty DOWNLOAD_FOLDER. So a missing folder is fine only for
# that FAILED, never for another outcome.
NO_FOLDER_OUTCOME = "FAILED"
# coupa_async/emails/options.py EMAIL_MODES, EMAIL_SUFFIXES (is_email: by suffix, any case),
# wants_pdf and wants_extract; ConversionLimits.max_depth: an e-mail nested deeper ends the
# extraction with an error.
EMAIL_MODES = ("both", "pdf", "extract", "off")
EMAIL_SUFFIXES = (".msg", ".eml")
PDF_MODES = ("both", "pdf")
EXTRACT_MODES = ("both", "extract")
MAX_NESTING = 3
# coupa_async/emails/outputs.py: a mail's PDF and attachments folder are named by pdf_names and
# folder_names (fit() shortens to layout.FILE_NAME_MAX_BYTES); a conversion at work uses hidden
# folders (PARTIAL, STALE) and marks an extraction that ended in an error with INCOMPLETE.
# (Its PDFs, written through layout's TEMP_FILE names, are caught as such.)
FILE_NAME_MAX_BYTES = 240
PDF_SUFFIX = ".pdf"
FOLDER_SUFFIX = "_attachments"
ALTERNATE = " (e-mail)"
ALTERNATES = range(2, 10)
PARTIAL_DIR = re.compile(r"\..+\.partial")
STALE_DIR = re.compile(r"\..+\.stale")
INCOMPLETE = ".incomplete"
PDF_MAGIC = b"%PDF-"
# Names only a conversion gives: what one left when its e-mail is not beside it.
EMAIL_PDF = re.compile(r"(?i).+\.(?:msg|eml)(?: \(e-mail(?: [2-9])?\))?\.pdf")
EMAIL_FOLDER = re.compile(r"(?i).+\.(?:msg|eml)(?: \(e-mail(?: [2-9])?\))?_attachments")

HASH_THREADS = 4
CHROMIUM_NAMES = ("chrom", "headless_shell", "msedge")
TOOL_MARK = "coupa_async"


# ----- results -------------------------------------------------------------------------------


@dataclass
class CheckResult:
    """The findings, each a sentence naming the PO, file or path, in four categories."""

    lost: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    pos_checked: int = 0
    files_hashed: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.repeated or self.wrong or self.other)

    def summary(self) -> str:
        return (
            f"{len(self.lost)} lost, {len(self.repeated)} repeated, {len(self.wrong)} wrong, "
            f"{len(self.other)} other"
        )

    def findings(self) -> Iterator[tuple[str, str]]:
        """(category, sentence) of every finding."""
        for category in ("lost", "repeated", "wrong", "other"):
            for sentence in getattr(self, category):
                yield category, sentence


# ----- what the catalog expects --------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedFile:
    sha256: str
    size: int
    source: str
    name: str


@dataclass(frozen=True)
class MailPart:
    name: str  # as the sender gave it
    sha256: str  # a nested e-mail: of the simulator's bytes of it (a .msg differs on disk)
    nested: bool


@dataclass(frozen=True)
class MailInfo:
    """An e-mail file as the catalog summarises it (``coupa_async/sim/content.py MailSummary``)."""

    malformed: bool
    parts: tuple[MailPart, ...] = ()
    nested: tuple[MailInfo, ...] = ()  # one per part that is an e-mail, in that order

    @classmethod
    def of(cls, data: dict[str, Any]) -> MailInfo:
        return cls(
            bool(data["malformed"]),
            tuple(
                MailPart(p["name"], p["sha256"], bool(p["nested"]))
                for p in data.get("attachments") or ()
            ),
            tuple(cls.of(n) for n in data.get("nested") or ()),
        )

    @property
    def plain(self) -> Counter[str]:
        """The SHA-256 of the attachments that are not e-mails, with their counts."""
        return Counter(p.sha256 for p in self.parts if not p.nested)

    @property
    def nested_parts(self) -> list[tuple[MailPart, MailInfo]]:
        return list(zip([p for p in self.parts if p.nested], self.nested, strict=False))

    @property
    def depth(self) -> int:
        return 1 + max(n.depth for n in self.nested) if self.nested else 0

    @property
    def convertible(self) -> bool:
        """The mail and every one nested in it convert without an error."""
        return (
            not self.malformed
            and self.depth <= MAX_NESTING
            and all(n.convertible for n in self.nested)
        )


@dataclass(frozen=True)
class CatalogPo:
    """One PO of the catalog: what a correct run ends with, and the URLs of all its files."""

    number: str
    outcome: str
    files: tuple[ExpectedFile, ...]
    file_paths: tuple[tuple[str, str], ...]  # (url_path, name) of every PO and PR file
    # sha256 -> the e-mail's summary (None: not an e-mail), for every file that has one
    emails: dict[str, MailInfo | None] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return f"PO{self.number}"


def catalog_pos(catalog: dict[str, Any]) -> list[CatalogPo]:
    """The POs of ``/__sim/catalog`` (coupa_async/sim/catalog.py ``SimPO.to_dict``)."""
    pos = []
    for po in catalog["pos"]:
        files = [*po["files"], *((po.get("requisition") or {}).get("files") or [])]
        pos.append(
            CatalogPo(
                number=str(po["number"]),
                outcome=po["expected_outcome"],
                files=tuple(
                    ExpectedFile(f["sha256"], f["size"], f["source"], f["name"])
                    for f in po["expected_files"]
                ),
                file_paths=tuple((f["url_path"], f["expected_name"]) for f in files),
                emails={
                    f["sha256"]: MailInfo.of(f["email"]) if f["email"] else None
                    for f in files
                    if "email" in f
                },
            )
        )
    return pos


def shadow_files(catalog: dict[str, Any]) -> dict[str, str]:
    """sha256 -> whose file, for the files of the catalog's shadow POs: POs not in the input
    whose page is at another PO's ``/order_headers/{number}`` (a downloader that opens that
    address instead of searching files them under the wrong PO)."""
    owners = {}
    for shadow in catalog.get("shadow_pos") or ():
        asked = shadow.get("shadow_of") or shadow.get("internal_id")
        for f in shadow.get("files") or ():
            owners[f["sha256"]] = (
                f"another PO's file: {f['name']!r} of the shadow PO PO{shadow['number']}, "
                f"whose page is at /order_headers/{asked}"
            )
    return owners


# ----- what lies on disk ---------------------------------------------------------------------


@dataclass
class Tree:
    """The final PO folders under ``out`` (paths relative to it) and the files of each."""

    finals: dict[str, list[PurePath]] = field(default_factory=dict)  # digits -> folders
    files: dict[PurePath, list[str]] = field(default_factory=dict)  # folder -> file names
    dirs: dict[PurePath, list[str]] = field(default_factory=dict)  # folder -> subfolder names


def scan_tree(out: Path, result: CheckResult) -> Tree:
    """Walk ``out`` (not the journal's folder): final folders, their files, and what is amiss."""
    tree = Tree()
    for root, dirs, files in os.walk(out):
        here = Path(root)
        rel = PurePath(os.path.relpath(here, out))
        if rel == PurePath("."):
            dirs[:] = [name for name in dirs if name != JOURNAL_DIR]
        in_po = rel != PurePath(".") and FINAL_FOLDER.fullmatch(here.name) is not None
        if in_po:
            tree.files.setdefault(rel, [])
            tree.dirs.setdefault(rel, [])
        for name in sorted(dirs):
            if not _keep_dir(out, here / name, in_po, tree, result):
                dirs.remove(name)
        for name in sorted(files):
            _note_file(out, here / name, in_po, tree, result)
    return tree


def _keep_dir(out: Path, path: Path, in_po: bool, tree: Tree, result: CheckResult) -> bool:
    """Note a folder; whether to walk into it."""
    rel = _rel(path, out)
    if path.is_symlink():
        result.other.append(_symlink_finding(out, path))
        return False
    name = path.name
    if name.endswith(WORK_SUFFIX) and name != WORK_SUFFIX:
        result.other.append(f"{rel}: a work folder left by a run that did not finish the PO")
        return False
    if ASIDE_DIR.fullmatch(name):
        result.other.append(f"{rel}: an earlier folder of a PO, moved aside and never deleted")
        return False
    if in_po:
        leftover = _leftover_dir(name)
        if leftover is not None:
            result.other.append(f"{rel}: {leftover}")
        else:
            tree.dirs[rel.parent].append(name)  # an attachments folder, checked with its e-mail
        return False
    match = FINAL_FOLDER.fullmatch(name)
    if match is not None:
        tree.finals.setdefault(match["digits"], []).append(rel)
    return True


def _note_file(out: Path, path: Path, in_po: bool, tree: Tree, result: CheckResult) -> None:
    rel = _rel(path, out)
    name = path.name
    if path.is_symlink():
        result.other.append(_symlink_finding(out, path))
    elif name.startswith(".") and name.endswith(PARTIAL_SUFFIX) and name != PARTIAL_SUFFIX:
        result.other.append(f"{rel}: a partial download left behind")
    elif TEMP_FILE.fullmatch(name):
        result.other.append(f"{rel}: a temporary file of an interrupted write")
    elif in_po and not path.is_file():
        result.other.append(f"{rel}: not a regular file")
    elif in_po and name.startswith("."):
        # layout.safe_file_name never starts a name with ".": not a file the tool saved.
        result.other.append(f"{rel}: a hidden file in a PO folder (the tool saves none)")
    elif in_po:
        tree.files[rel.parent].append(name)
    elif not (rel.parent == PurePath(".") and name in REPORT_FILES):
        result.other.append(f"{rel}: a file outside any PO folder")


def _leftover_dir(name: str) -> str | None:
    """What a hidden folder left by a conversion is; None for a name that is not hidden."""
    if PARTIAL_DIR.fullmatch(name):
        return "an attachments folder an interrupted conversion left half-extracted"
    if STALE_DIR.fullmatch(name):
        return "an earlier attachments folder, moved aside and never deleted"
    if name.startswith("."):
        return "a hidden folder (the tool makes none)"
    return None


def _symlink_finding(out: Path, path: Path) -> str:
    rel = _rel(path, out)
    root = os.path.realpath(out)
    target = os.path.realpath(path)
    if os.path.commonpath([root, target]) != root or target == root:
        return f"{rel}: a symlink that resolves outside the output folder, to {target}"
    return f"{rel}: a symlink (the tool makes none), to {target}"


def _rel(path: Path, out: Path) -> PurePath:
    return PurePath(os.path.relpath(path, out))


def hash_files(out: Path, paths: Iterable[PurePath]) -> dict[PurePath, tuple[str, int]]:
    """(sha256, size) of each file, a few hashed at once (hashlib lets go of the GIL)."""

    def one(rel: PurePath) -> tuple[PurePath, tuple[str, int]]:
        try:
            with open(out / rel, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            return rel, (digest, (out / rel).stat().st_size)
        except OSError as exc:
            return rel, (f"unreadable: {exc.strerror}", -1)

    with ThreadPoolExecutor(HASH_THREADS) as pool:
        return dict(pool.map(one, list(paths)))


# ----- the journal ---------------------------------------------------------------------------


@dataclass
class JournalPo:
    label: str
    state: str
    folder: str  # relative to out; "" for none
    finished_at: str  # ISO time, "" while pending
    files: list[tuple[str, str, int]]  # (path relative to out, sha256, size)
    conversion_errors: list[str] | None = None  # None: a journal of schema 2 has none


def read_journal(out: Path) -> dict[str, list[JournalPo]]:
    """The journal's POs by digits, read without writing a byte (raises sqlite3.Error, OSError)."""
    path = out / JOURNAL_DIR / JOURNAL_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no journal at {path}")
    with contextlib.closing(sqlite3.connect(_read_only_uri(path), uri=True)) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(pos)")}
        # coupa_async/results/journal.py: schema 3 added conversion_errors (newline-separated).
        errors = "conversion_errors" if "conversion_errors" in columns else "NULL"
        rows = db.execute(f"SELECT label, state, folder, finished_at, {errors} FROM pos").fetchall()
        files = db.execute("SELECT label, path, sha256, size FROM files ORDER BY rowid").fetchall()
    by_label = {
        row[0]: JournalPo(
            *row[:4], files=[], conversion_errors=None if row[4] is None else row[4].splitlines()
        )
        for row in rows
    }
    for label, rel, sha256, size in files:
        if label in by_label:
            by_label[label].files.append((rel, sha256, size))
    pos: dict[str, list[JournalPo]] = {}
    for record in by_label.values():
        pos.setdefault(_digits(record.label) or record.label, []).append(record)
    return pos


def _read_only_uri(path: Path) -> str:
    # As coupa_async/results/journal.py _read_only_uri: a closed journal is read "immutable"
    # (no -wal or -shm created beside it); one with a -wal left by a killed run needs
    # SQLite to read the WAL.
    wal = Path(f"{path}-wal")
    has_wal = wal.is_file() and wal.stat().st_size > 0
    return f"{path.absolute().as_uri()}?mode=ro" + ("" if has_wal else "&immutable=1")


def _digits(label: str) -> str | None:
    match = re.fullmatch(LABEL, label)
    return match["digits"] if match else None


# ----- the report ----------------------------------------------------------------------------


def read_report(out: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, values by column) of each row of report.csv (UTF-8, with a BOM or not)."""
    with open(out / REPORT_CSV, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REPORT_COLUMNS if column not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{REPORT_CSV} has no column {', '.join(missing)}")
        return [
            (number, {key: _plain(value or "") for key, value in row.items() if key})
            for number, row in enumerate(reader, start=2)
        ]


def _plain(text: str) -> str:
    if text.startswith("'") and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


def report_digits(raw: str) -> str | None:
    """The digits of a PO number as the input had it (``PO1``, ``po 1``, ``1``, ``PM1``)."""
    match = re.fullmatch(r"(?:[Pp][OoMm])?\s*([0-9]{1,20})", raw.strip())
    return match.group(1) if match else None


# ----- one PO against the catalog ------------------------------------------------------------


@dataclass
class Settled:
    """What a PO came to on disk: its outcome and its folder (None: given up without one)."""

    outcome: str | None  # None: nothing says what became of it
    folder: PurePath | None
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (sha256, size)
    mails: list[SavedMail] = field(default_factory=list)  # the saved e-mails among ``files``


def settle_po(
    po: CatalogPo, tree: Tree, journal: dict[str, list[JournalPo]] | None, result: CheckResult
) -> Settled:
    """The PO's one final folder (or the accepted lack of one), its outcome against the
    catalog's, and extra final folders."""
    folders = tree.finals.get(po.number, [])
    records = (journal or {}).get(po.number, [])
    chosen = _chosen_folder(folders, records)
    if len(folders) > 1:
        shown = ", ".join(str(folder) for folder in folders)
        result.repeated.append(f"{po.label}: {len(folders)} final folders: {shown}")
    if chosen is None:
        return _without_folder(po, records, result)
    match = FINAL_FOLDER.fullmatch(chosen.name)
    assert match is not None  # scan_tree keeps only such names
    outcome = match["outcome"]
    if outcome != po.outcome:
        result.wrong.append(
            f"{po.label}: folder {chosen} says {outcome}, the catalog expects {po.outcome}"
        )
    return Settled(outcome, chosen)


def _chosen_folder(folders: list[PurePath], records: list[JournalPo]) -> PurePath | None:
    """The folder the journal names, if it is one of them, else the first."""
    named = {PurePath(record.folder) for record in records if record.folder}
    return next((f for f in folders if f in named), folders[0] if folders else None)


def _without_folder(po: CatalogPo, records: list[JournalPo], result: CheckResult) -> Settled:
    record = records[0] if len(records) == 1 else None
    given_up = (
        record is not None
        and record.state == NO_FOLDER_OUTCOME
        and not record.folder
        and not record.files
    )
    if not given_up:
        result.lost.append(
            f"{po.label}: no final folder PO{po.number}_<OUTCOME> under the output folder "
            f"(the catalog expects {po.outcome})"
        )
        return Settled(None, None)
    if po.outcome != NO_FOLDER_OUTCOME:
        result.wrong.append(
            f"{po.label}: given up as {NO_FOLDER_OUTCOME} without a folder, the catalog expects "
            f"{po.outcome}"
        )
    return Settled(NO_FOLDER_OUTCOME, None)


def check_files(
    po: CatalogPo, settled: Settled, catalog_files: dict[str, str], result: CheckResult
) -> None:
    """The folder's files as a multiset of SHA-256 against the files the catalog expects:
    a missing copy is lost, an extra copy repeated, other content wrong."""
    if settled.outcome is None:
        return  # lost already: no folder to look in
    on_disk: dict[str, list[str]] = {}
    for name, (sha256, _) in sorted(settled.files.items()):
        on_disk.setdefault(sha256, []).append(name)
    where = settled.folder if settled.folder is not None else "(no folder)"
    wanted: dict[str, list[ExpectedFile]] = {}
    for f in po.files:
        wanted.setdefault(f.sha256, []).append(f)
    for sha256, files in wanted.items():
        have = len(on_disk.get(sha256, []))
        for f in files[have:]:
            result.lost.append(
                f"{po.label}: {f.name!r} ({f.source} file, {f.size:,} bytes, sha256 "
                f"{sha256[:12]}…) is not in {where}"
            )
    for sha256, names in on_disk.items():
        expected = len(wanted.get(sha256, []))
        if expected and len(names) > expected:
            result.repeated.append(
                f"{po.label}: {where} holds the same content {len(names)} times "
                f"(expected {expected}): {', '.join(names)}"
            )
        elif not expected:
            owner = catalog_files.get(sha256)
            whose = f"it is {owner}" if owner else "no file of the catalog has it"
            result.wrong += [
                f"{po.label}: {where}/{name} is not a file of this PO (sha256 {sha256[:12]}…: "
                f"{whose})"
                for name in names
            ]


def check_report_rows(
    pos: list[CatalogPo],
    settled: dict[str, Settled],
    rows: list[tuple[int, dict[str, str]]],
    result: CheckResult,
    *,
    one_row_per_po: bool,
) -> None:
    """One row per PO whose STATUS, DOWNLOAD_FOLDER and ATTACHMENTS_DOWNLOADED say what the
    disk holds."""
    by_po = rows_by_po(rows)
    known = {po.number for po in pos}
    for number, row in rows:
        digits = report_digits(row.get("PO_NUMBER", ""))
        if digits is None:
            if row.get("STATUS") != INVALID:
                result.other.append(
                    f"{REPORT_CSV} line {number}: {row.get('PO_NUMBER')!r} is no PO number, "
                    f"yet its STATUS is {row.get('STATUS')!r}"
                )
        elif digits not in known:
            result.other.append(f"{REPORT_CSV} line {number}: PO{digits} is not in the catalog")
    for po in pos:
        found = by_po.get(po.number, [])
        if not found:
            result.lost.append(f"{po.label}: no row in {REPORT_CSV}")
            continue
        if one_row_per_po and len(found) > 1:
            lines = ", ".join(str(number) for number, _ in found)
            result.repeated.append(f"{po.label}: {len(found)} rows in {REPORT_CSV} (lines {lines})")
        for number, row in found:
            _check_row(po, settled[po.number], number, row, result)


def rows_by_po(
    rows: list[tuple[int, dict[str, str]]],
) -> dict[str, list[tuple[int, dict[str, str]]]]:
    """The report's rows by the digits of their PO number (rows of no PO left out)."""
    by_po: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for number, row in rows:
        digits = report_digits(row.get("PO_NUMBER", ""))
        if digits is not None:
            by_po.setdefault(digits, []).append((number, row))
    return by_po


def _check_row(
    po: CatalogPo, settled: Settled, number: int, row: dict[str, str], result: CheckResult
) -> None:
    where = f"{po.label}: {REPORT_CSV} line {number}"
    status = row.get("STATUS", "")
    expected = settled.outcome or po.outcome
    if status != expected:
        said = "the folder says" if settled.folder is not None else "expected"
        result.wrong.append(f"{where} has STATUS {status!r}, {said} {expected}")
    reported = row.get("DOWNLOAD_FOLDER", "")
    if not _same_folder(reported, settled.folder):
        there = settled.folder or "no folder on disk"
        result.wrong.append(f"{where} has DOWNLOAD_FOLDER {reported!r}, the PO has {there}")
    count = str(len(settled.files))
    if settled.outcome is not None and row.get("ATTACHMENTS_DOWNLOADED", "") != count:
        result.wrong.append(
            f"{where} has ATTACHMENTS_DOWNLOADED {row.get('ATTACHMENTS_DOWNLOADED')!r}, "
            f"the folder holds {count} file(s)"
        )


def _same_folder(reported: str, folder: PurePath | None) -> bool:
    # The report writes the folder's absolute path as the run saw it (report_table.report_row:
    # str(result.folder), which layout.OutputLayout makes absolute). Compared by its last parts,
    # below out, so a moved or copied output folder still agrees (as audit/reports.same_folder).
    if folder is None or not reported:
        return folder is None and not reported
    below = folder.parts
    return PurePath(reported).parts[-len(below) :] == below


def check_journal_po(
    po: CatalogPo, settled: Settled, records: list[JournalPo], result: CheckResult
) -> None:
    """The PO's journal row: its state, folder and files as on disk; nothing left PENDING."""
    if not records:
        result.lost.append(f"{po.label}: not in the journal")
        return
    if len(records) > 1:
        labels = ", ".join(record.label for record in records)
        result.repeated.append(f"{po.label}: {len(records)} rows in the journal ({labels})")
    record = records[0]
    if record.state == PENDING:
        result.lost.append(f"{po.label}: still {PENDING} in the journal")
        return
    if settled.outcome is not None and record.state != settled.outcome:
        result.wrong.append(
            f"{po.label}: the journal says {record.state}, the folder says {settled.outcome}"
        )
    recorded_folder = PurePath(record.folder) if record.folder else None
    if settled.outcome is not None and recorded_folder != settled.folder:
        result.wrong.append(
            f"{po.label}: the journal's folder is {recorded_folder or 'none'}, on disk it is "
            f"{settled.folder or 'none'}"
        )
    if settled.folder is None:
        return
    recorded = Counter((PurePath(path), sha256, size) for path, sha256, size in record.files)
    on_disk = Counter(
        (settled.folder / name, sha256, size) for name, (sha256, size) in settled.files.items()
    )
    for path, sha256, size in sorted((recorded - on_disk).elements()):
        result.wrong.append(
            f"{po.label}: the journal records {path} ({size:,} bytes, sha256 {sha256[:12]}…), "
            "the disk does not hold that"
        )
    for path, sha256, _ in sorted((on_disk - recorded).elements()):
        result.wrong.append(
            f"{po.label}: {path} (sha256 {sha256[:12]}…) is on disk but not so in the journal"
        )


# ----- saved e-mails and their conversion ----------------------------------------------------


def is_email(name: str) -> bool:
    return name.lower().endswith(EMAIL_SUFFIXES)


def _fit(name: str, suffix: str) -> str:
    room = FILE_NAME_MAX_BYTES - len(suffix.encode())
    encoded = name.encode("utf-8", "surrogatepass")
    if len(encoded) > room:
        name = encoded[:room].decode("utf-8", "ignore").rstrip(" .")
    return name + suffix


def pdf_names(mail: str) -> list[str]:
    """The names a mail's PDF may have, in the converter's order of preference."""
    tails = ["", ALTERNATE, *(f" (e-mail {n})" for n in ALTERNATES)]
    return [_fit(mail, tail + PDF_SUFFIX) for tail in tails]


def folder_names(mail: str) -> list[str]:
    """The names a mail's attachments folder may have, in the converter's order."""
    tails = ["", ALTERNATE, *(f" (e-mail {n})" for n in ALTERNATES)]
    return [_fit(mail, tail + FOLDER_SUFFIX) for tail in tails]


@dataclass
class Folder:
    """The regular files (with their SHA-256 and size) and the subfolders of one folder."""

    path: PurePath  # relative to out
    files: dict[str, tuple[str, int]]
    dirs: list[str]


@dataclass
class Outputs:
    """What a conversion left beside a mail: names present in its folder."""

    pdf: str | None
    folder: str | None
    extra: list[str]  # more PDFs or folders under the mail's other output names

    @property
    def files(self) -> set[str]:
        return {self.pdf} if self.pdf else set()


def claim_outputs(folder: Folder, mail: str, content: set[str]) -> Outputs:
    """The outputs of ``mail``: its PDF is the first of its names not taken by ``content`` (the
    files that are no conversion's, which the converter steps past), its folder the first not
    taken by a file."""
    pdfs, folders = pdf_names(mail), folder_names(mail)
    pdf = next((name for name in pdfs if name not in content), None)
    sub = next((name for name in folders if name not in folder.files), None)
    extra = [name for name in pdfs if name != pdf and name in folder.files and name not in content]
    extra += [name for name in folders if name != sub and name in folder.dirs]
    return Outputs(pdf if pdf in folder.files else None, sub if sub in folder.dirs else None, extra)


@dataclass
class SavedMail:
    """A saved e-mail in a PO folder, what the catalog says it is, and its outputs."""

    name: str
    info: MailInfo | None  # None: not an e-mail to the catalog, or a file it does not know
    outputs: Outputs
    unsummarized: bool = False  # a file of the catalog without its "email" (older simulator)


def split_conversions(po: CatalogPo, settled: Settled, tree: Tree, result: CheckResult) -> None:
    """Set the outputs of the PO folder's e-mails apart from its downloads (``settled.files``
    keeps these); name conversion outputs whose e-mail is not there, and other subfolders."""
    if settled.folder is None:
        return
    folder = Folder(settled.folder, dict(settled.files), tree.dirs.get(settled.folder, []))
    expected = {f.sha256 for f in po.files}
    content = {n for n, (sha256, _) in folder.files.items() if sha256 in expected or is_email(n)}
    claimed: set[str] = set()
    claimed_dirs: set[str] = set()
    for name in sorted(n for n in folder.files if is_email(n)):
        outputs = claim_outputs(folder, name, content)
        sha256 = folder.files[name][0]
        unsummarized = sha256 in expected and sha256 not in po.emails
        settled.mails.append(SavedMail(name, po.emails.get(sha256), outputs, unsummarized))
        claimed |= outputs.files | (set(outputs.extra) & folder.files.keys())
        claimed_dirs |= {d for d in (outputs.folder, *outputs.extra) if d in folder.dirs}
    for name in sorted(folder.files.keys() - content - claimed):
        if EMAIL_PDF.fullmatch(name):
            claimed.add(name)
            result.other.append(f"{folder.path / name}: an e-mail's PDF with no e-mail beside it")
    _unclaimed_dirs(folder, claimed_dirs, result)
    settled.files = {n: v for n, v in settled.files.items() if n not in claimed}


def _unclaimed_dirs(folder: Folder, claimed: set[str], result: CheckResult) -> None:
    for name in sorted(set(folder.dirs) - claimed):
        if EMAIL_FOLDER.fullmatch(name):
            result.other.append(
                f"{folder.path / name}: an attachments folder with no e-mail beside it"
            )
        else:
            result.other.append(
                f"{folder.path / name}: a folder the tool does not make (only e-mails' "
                "attachments folders)"
            )


def names_file(text: str, name: str, names: Iterable[str]) -> bool:
    """Whether ``text`` names the file ``name`` other than inside a longer one of ``names``."""
    covered = [
        (m.start(), m.end())
        for other in names
        if name in other and other != name
        for m in re.finditer(re.escape(other), text)
    ]
    return any(
        not any(start <= m.start() and m.end() <= end for start, end in covered)
        for m in re.finditer(re.escape(name), text)
    )


def conversion_texts(
    po: CatalogPo,
    rows: list[tuple[int, dict[str, str]]],
    records: list[JournalPo],
    result: CheckResult,
) -> list[tuple[str, str]]:
    """(where, CONVERSION_ERRORS) of each report row of the PO and of its journal row; the
    report and the journal must agree."""
    texts = [(f"{REPORT_CSV} line {n}", row.get("CONVERSION_ERRORS", "")) for n, row in rows]
    record = records[0] if len(records) == 1 else None
    if record is None or record.conversion_errors is None or record.state == PENDING:
        return texts
    # The report joins the result's sentences with "; ", the journal with newlines
    # (coupa_async/tabular/report_table.py report_row, coupa_async/results/journal.py).
    journal = "; ".join(record.conversion_errors)
    for where, text in texts:
        if text != journal:
            result.wrong.append(
                f"{po.label}: {where} has CONVERSION_ERRORS {text!r}, the journal {journal!r}"
            )
    return [*texts, ("the journal", journal)]


def check_conversion_errors(
    po: CatalogPo, settled: Settled, texts: list[tuple[str, str]], mode: str, result: CheckResult
) -> set[str]:
    """Each e-mail that cannot be converted is named where conversion errors are told, and
    nothing else is; the names of good e-mails said not to convert."""
    mails = settled.mails if mode != "off" else []
    names = [mail.name for mail in settled.mails]
    failing = [m.name for m in mails if m.info is not None and not m.info.convertible]
    good = [m.name for m in settled.mails if mode == "off" or (m.info and m.info.convertible)]
    reported: set[str] = set()
    for where, text in texts:
        for name in failing:
            if not names_file(text, name, names):
                result.lost.append(
                    f"{po.label}: {where} does not report that {settled.folder}/{name} could "
                    "not be converted (the catalog's e-mail cannot be)"
                )
        named = [name for name in good if names_file(text, name, names)]
        reported.update(named)
        for name in named:
            result.wrong.append(
                f"{po.label}: {where} reports {name!r} as not converted, yet "
                + ("conversion is off" if mode == "off" else "the catalog's e-mail converts")
            )
        if text and not failing and not named:
            result.wrong.append(
                f"{po.label}: {where} has CONVERSION_ERRORS {text!r}, yet none of its e-mails "
                "fails to convert"
            )
    return reported


@dataclass
class MailCheck:
    """Checks the outputs of one PO's e-mails, recursively into their attachments folders."""

    out: Path
    label: str
    mode: str
    result: CheckResult
    folders: dict[PurePath, Folder] = field(default_factory=dict)
    # The saved e-mail in hand converts whole: no extraction of its tree may end in an error.
    strict: bool = True

    def check(self, settled: Settled, reported: set[str]) -> None:
        assert settled.folder is not None
        for mail in settled.mails:
            if mail.unsummarized:
                self.result.other.append(
                    f"{self.label}: the catalog has no e-mail summary of {mail.name!r} (an older "
                    "simulator?): its conversion cannot be checked"
                )
            self.strict = mail.info is None or mail.info.convertible
            self.outputs(
                settled.folder, mail.name, mail.info, mail.outputs, reported=mail.name in reported
            )

    def outputs(
        self,
        where: PurePath,
        mail: str,
        info: MailInfo | None,
        outputs: Outputs,
        *,
        reported: bool = False,
    ) -> None:
        """The PDF and attachments folder of the mail ``where/mail`` against its summary.

        ``reported``: its failure is reported (a finding already, if wrongly), so a missing
        output is not lost besides.
        """
        found = self.result
        for name in outputs.extra:
            found.repeated.append(
                f"{self.label}: {where / name}: one more conversion output of {where / mail}"
            )
        pdf = where / outputs.pdf if outputs.pdf else None
        sub = where / outputs.folder if outputs.folder else None
        if info is None:
            return  # not an e-mail the catalog knows: whatever the converter made of it
        if info.malformed:
            why = "which is malformed (the catalog's e-mail cannot be converted)"
            wants_pdf = wants_extract = False
        else:
            why = f"though e-mails are converted as {self.mode!r}"
            wants_pdf, wants_extract = self.mode in PDF_MODES, self.mode in EXTRACT_MODES
        for path, what, wanted in (
            (pdf, "a PDF", wants_pdf),
            (sub, "an attachments folder", wants_extract),
        ):
            if path is not None and not wanted:
                found.wrong.append(f"{self.label}: {path}: {what} of {where / mail}, {why}")
        if wants_pdf:
            if pdf is None and not reported:
                found.lost.append(
                    f"{self.label}: {where / mail} has no PDF ({pdf_names(mail)[0]!r} is missing)"
                )
            elif pdf is not None and not self._is_pdf(pdf):
                found.wrong.append(
                    f"{self.label}: {pdf}: not a PDF (no {PDF_MAGIC!r} at its start)"
                )
        if wants_extract:
            if sub is None:
                if info.parts and not reported:
                    found.lost.append(
                        f"{self.label}: {where / mail} has no attachments folder: its "
                        f"{len(info.parts)} attachment(s) are not extracted"
                    )
            elif not info.parts:
                found.wrong.append(
                    f"{self.label}: {sub}: an attachments folder of {where / mail}, which has no "
                    "attachments"
                )
            elif info.depth <= MAX_NESTING:
                self.attachments(sub, where / mail, info)
            # Deeper, the extraction stops partway (its error is checked): nothing to compare.

    def attachments(self, rel: PurePath, mail: PurePath, info: MailInfo) -> None:
        """An attachments folder against the mail's attachments: each plain one by SHA-256,
        each nested e-mail as an e-mail file with its own outputs."""
        folder = self.read(rel)
        plain = info.plain
        content = {n for n, (sha, _) in folder.files.items() if sha in plain or is_email(n)}
        mails = sorted(n for n in folder.files if is_email(n))
        outputs = {name: claim_outputs(folder, name, content) for name in mails}
        claimed = set(mails)
        claimed_dirs: set[str] = set()
        for o in outputs.values():
            claimed |= o.files | (set(o.extra) & folder.files.keys())
            claimed_dirs |= {d for d in (o.folder, *o.extra) if d in folder.dirs}
        # An e-mail file with the bytes of a plain attachment is that attachment.
        nested = [n for n in mails if folder.files[n][0] not in plain]
        claimed -= set(mails) - set(nested)
        for name, sub in self.match_nested(folder, nested, outputs, info, mail):
            self.outputs(rel, name, sub, outputs[name])
        for name in sorted(folder.files.keys() - content - claimed):
            if EMAIL_PDF.fullmatch(name):
                claimed.add(name)
                self.result.other.append(f"{rel / name}: an e-mail's PDF with no e-mail beside it")
        _unclaimed_dirs(folder, claimed_dirs, self.result)
        files = {n: v for n, v in folder.files.items() if n not in claimed}
        self.plain_files(rel, mail, info, files)

    def plain_files(
        self, rel: PurePath, mail: PurePath, info: MailInfo, files: dict[str, tuple[str, int]]
    ) -> None:
        on_disk: dict[str, list[str]] = {}
        for name, (sha256, _) in sorted(files.items()):
            on_disk.setdefault(sha256, []).append(name)
        for part in info.parts:
            if not part.nested and not on_disk.get(part.sha256):
                self.result.lost.append(
                    f"{self.label}: {part.name!r} (an attachment of {mail}, sha256 "
                    f"{part.sha256[:12]}…) is not in {rel}"
                )
        plain = info.plain
        for sha256, names in on_disk.items():
            want = plain.get(sha256, 0)
            if want and len(names) > want:
                self.result.repeated.append(
                    f"{self.label}: {rel} holds the same content {len(names)} times (expected "
                    f"{want}): {', '.join(names)}"
                )
            elif not want:
                self.result.wrong += [
                    f"{self.label}: {rel / name} is no attachment of {mail} (sha256 {sha256[:12]}…)"
                    for name in names
                ]
            elif len(names) < want:
                for _ in range(want - len(names)):
                    self.result.lost.append(
                        f"{self.label}: {rel} holds {len(names)} of the {want} attachments of "
                        f"{mail} with sha256 {sha256[:12]}…"
                    )

    def match_nested(
        self,
        folder: Folder,
        names: list[str],
        outputs: dict[str, Outputs],
        info: MailInfo,
        mail: PurePath,
    ) -> list[tuple[str, MailInfo]]:
        """Pair the e-mail files in ``folder`` with the nested summaries: by their bytes (an
        .eml may keep them), then by the attachments extracted for them (a .msg is exported
        anew), then in order. Unpaired ones are findings."""
        wanted = info.nested_parts

        def score(name: str, part: MailPart, sub: MailInfo) -> int:
            exact = 1000 if folder.files[name][0] == part.sha256 else 0
            folder_name = outputs[name].folder
            if folder_name is None:
                return exact
            inside = self.read(folder.path / folder_name).files.values()
            return exact + len({sha for sha, _ in inside} & set(sub.plain))

        ranked = sorted(
            (-score(name, part, sub), i, j)
            for i, name in enumerate(names)
            for j, (part, sub) in enumerate(wanted)
        )
        pairs: dict[int, int] = {}
        for _, i, j in ranked:
            if i not in pairs and j not in pairs.values():
                pairs[i] = j
        for i, name in enumerate(names):
            if i in pairs:
                continue
            twin = any(folder.files[names[k]][0] == folder.files[name][0] for k in pairs)
            if twin or any(score(name, part, sub) for part, sub in wanted):
                self.result.repeated.append(
                    f"{self.label}: {folder.path / name}: one more copy of an e-mail nested in "
                    f"{mail}"
                )
            else:
                self.result.wrong.append(
                    f"{self.label}: {folder.path / name} is no e-mail nested in {mail}"
                )
        for j, (part, _) in enumerate(wanted):
            if j not in pairs.values():
                self.result.lost.append(
                    f"{self.label}: the e-mail {part.name!r} nested in {mail} is not in "
                    f"{folder.path}"
                )
        return [(names[i], wanted[j][1]) for i, j in sorted(pairs.items())]

    def read(self, rel: PurePath) -> Folder:
        """The folder's entries, hashed, once; what the tool leaves in none is a finding."""
        if rel in self.folders:
            return self.folders[rel]
        files: list[str] = []
        dirs: list[str] = []
        try:
            entries = sorted(os.scandir(self.out / rel), key=lambda entry: entry.name)
        except OSError as exc:
            self.result.other.append(f"{rel}: cannot be read: {exc.strerror}")
            entries = []
        for entry in entries:
            path, name = rel / entry.name, entry.name
            if entry.is_symlink():
                self.result.other.append(_symlink_finding(self.out, self.out / path))
            elif name == INCOMPLETE:
                if self.strict:
                    self.result.other.append(f"{path}: marks an extraction that ended in an error")
            elif name.startswith(".") and entry.is_dir(follow_symlinks=False):
                self.result.other.append(f"{path}: {_leftover_dir(name)}")
            elif TEMP_FILE.fullmatch(name):
                self.result.other.append(f"{path}: a temporary file of an interrupted write")
            elif name.startswith("."):
                self.result.other.append(f"{path}: a hidden file (the conversion leaves none)")
            elif entry.is_dir(follow_symlinks=False):
                dirs.append(name)
            elif entry.is_file(follow_symlinks=False):
                files.append(name)
            else:
                self.result.other.append(f"{path}: not a regular file")
        hashes = hash_files(self.out, [rel / name for name in files])
        self.result.files_hashed += len(hashes)
        folder = Folder(rel, {name: hashes[rel / name] for name in files}, dirs)
        self.folders[rel] = folder
        return folder

    def _is_pdf(self, rel: PurePath) -> bool:
        try:
            with open(self.out / rel, "rb") as handle:
                return handle.read(len(PDF_MAGIC)) == PDF_MAGIC
        except OSError:
            return False


# ----- the simulator's counters --------------------------------------------------------------


def check_stats(
    pos: list[CatalogPo],
    stats: dict[str, Any],
    journal: dict[str, list[JournalPo]] | None,
    result: CheckResult,
) -> None:
    """No request while a 429's Retry-After ran; no file sent whole again once its PO settled.

    What the product promises (coupa_async/running/table_run.py plan_tasks,
    journal.Journal.plan): a rerun
    skips COMPLETED, NO_ATTACHMENTS and PO_NOT_FOUND POs whose folder and files are intact, and
    retries the others, reusing the files the journal recorded (by URL, when size and SHA-256
    still match); files of a PO interrupted before it settled are fetched again and deduplicated
    on disk. So completions before a PO's last settle (its journal ``finished_at``, which every
    settle rewrites) are retries and reruns, allowed. What is checked: none after it. A rerun
    that fetches a recorded file again before settling once more is not caught here (the stats
    do not say which run asked).
    """
    during = stats.get("requests_during_retry_after", 0)
    if during:
        result.other.append(
            f"{during} request(s) reached the simulator while a 429's Retry-After ran"
        )
    completions = stats.get("file_completions")
    if completions is None:
        result.other.append(
            "the stats have no file_completions (an older simulator?): repeats after a PO "
            "settled cannot be checked"
        )
        return
    for po in pos:
        records = (journal or {}).get(po.number, [])
        if len(records) != 1 or not records[0].finished_at:
            continue
        settled_at = _timestamp(records[0].finished_at)
        if settled_at is None:
            result.other.append(
                f"{po.label}: the journal's finished_at {records[0].finished_at!r} is not a time"
            )
            continue
        for url_path, name in po.file_paths:
            late = [t for t in completions.get(url_path, ()) if t > settled_at]
            if late:
                first = datetime.fromtimestamp(min(late), UTC).isoformat()
                result.repeated.append(
                    f"{po.label}: {name!r} ({url_path}) was sent whole {len(late)} more time(s) "
                    f"after the PO settled at {records[0].finished_at} (first at {first})"
                )


def _timestamp(iso: str) -> float | None:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # journal._iso writes UTC times
    return moment.timestamp()


# ----- processes -----------------------------------------------------------------------------


def leftover_processes(
    tool_pids: Iterable[int | psutil.Process], profile_hint: str | None
) -> list[str]:
    """Tool processes still running, their descendants, and browsers or tool processes whose
    command line mentions ``profile_hint``. Zombies are dead (only not reaped yet) and pass.

    Pass ``psutil.Process`` objects taken while the tool ran to rule out a reused pid.
    """
    found: dict[int, str] = {}
    for item in tool_pids:
        proc = item if isinstance(item, psutil.Process) else _process(item)
        if proc is None or not _alive(proc):
            continue
        found[proc.pid] = f"tool process {_describe(proc)} is still running"
        for child in _children(proc):
            if _alive(child):
                found.setdefault(
                    child.pid,
                    f"process {_describe(child)}, a descendant of tool process {proc.pid}, "
                    "is still running",
                )
    if profile_hint:
        for proc in _hinted(profile_hint):
            found.setdefault(
                proc.pid, f"process {_describe(proc)} mentions {profile_hint!r}, still running"
            )
    return [found[pid] for pid in sorted(found)]


def _hinted(hint: str) -> Iterator[psutil.Process]:
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.pid in mine or not _alive(proc):
            continue
        cmdline = proc.info.get("cmdline") or []
        text = " ".join(cmdline)
        name = (proc.info.get("name") or "").lower()
        program = os.path.basename(cmdline[0]).lower() if cmdline else ""
        browser = any(mark in name or mark in program for mark in CHROMIUM_NAMES)
        if hint in text and (browser or TOOL_MARK in text):
            yield proc


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        cmdline = " ".join(proc.cmdline())[:160]
    except psutil.Error:
        cmdline = "?"
    return f"{proc.pid} ({cmdline})"


# ----- the whole check -----------------------------------------------------------------------


def check(
    catalog: dict[str, Any],
    stats: dict[str, Any],
    out: Path,
    *,
    tool_pids: Iterable[int | psutil.Process] = (),
    profile_hint: str | None = None,
    one_row_per_po: bool = True,
    emails: str = "both",
) -> CheckResult:
    """Check a soak's output folder against the simulator's catalog and stats.

    ``one_row_per_po``: the input listed each PO once (the report has a row per input row).
    ``emails``: how the run converted saved e-mails (its ``convert.emails``).
    """
    if emails not in EMAIL_MODES:
        raise ValueError(f"emails must be one of {', '.join(EMAIL_MODES)}, not {emails!r}")
    result = CheckResult()
    out = Path(out)
    if not out.is_dir():
        result.lost.append(f"{out}: the output folder does not exist")
        return result
    pos = catalog_pos(catalog)
    result.pos_checked = len(pos)
    tree = scan_tree(out, result)
    journal = _journal_or_finding(out, result)
    settled = {po.number: settle_po(po, tree, journal, result) for po in pos}
    _hash_settled(out, tree, settled, result)
    for po in pos:
        split_conversions(po, settled[po.number], tree, result)
    _extra_finals(pos, tree, journal, result)
    catalog_files = {f.sha256: f"{po.label}'s {f.name!r}" for po in pos for f in po.files}
    catalog_files.update(shadow_files(catalog))
    for po in pos:
        check_files(po, settled[po.number], catalog_files, result)
        if journal is not None:
            check_journal_po(po, settled[po.number], journal.get(po.number, []), result)
    rows = _check_report(out, pos, settled, result, one_row_per_po=one_row_per_po)
    by_po = rows_by_po(rows or [])
    for po in pos:
        s = settled[po.number]
        if s.outcome is None:
            continue  # lost already
        records = (journal or {}).get(po.number, [])
        texts = conversion_texts(po, by_po.get(po.number, []), records, result)
        reported = check_conversion_errors(po, s, texts, emails, result)
        if s.folder is not None:
            MailCheck(out, po.label, emails, result).check(s, reported)
    check_stats(pos, stats, journal, result)
    result.other += leftover_processes(tool_pids, profile_hint)
    return result


def _journal_or_finding(out: Path, result: CheckResult) -> dict[str, list[JournalPo]] | None:
    try:
        return read_journal(out)
    except FileNotFoundError as exc:
        result.lost.append(f"{out}: {exc}")
    except (sqlite3.Error, OSError) as exc:
        result.other.append(f"{out / JOURNAL_DIR / JOURNAL_NAME}: cannot be read: {exc}")
    return None


def _hash_settled(out: Path, tree: Tree, settled: dict[str, Settled], result: CheckResult) -> None:
    folders = [s.folder for s in settled.values() if s.folder is not None]
    paths = [folder / name for folder in folders for name in tree.files.get(folder, [])]
    hashes = hash_files(out, paths)
    result.files_hashed = len(hashes)
    for s in settled.values():
        if s.folder is not None:
            s.files = {name: hashes[s.folder / name] for name in tree.files.get(s.folder, [])}


def _extra_finals(
    pos: list[CatalogPo],
    tree: Tree,
    journal: dict[str, list[JournalPo]] | None,
    result: CheckResult,
) -> None:
    """Final folders and journal rows of POs the catalog does not have."""
    known = {po.number for po in pos}
    for digits, folders in sorted(tree.finals.items()):
        if digits not in known:
            result.other.append(f"{', '.join(map(str, folders))}: PO{digits} is not in the catalog")
    for digits, records in sorted((journal or {}).items()):
        if digits not in known:
            labels = ", ".join(record.label for record in records)
            result.other.append(f"the journal has {labels}, which the catalog does not")


def _check_report(
    out: Path,
    pos: list[CatalogPo],
    settled: dict[str, Settled],
    result: CheckResult,
    *,
    one_row_per_po: bool,
) -> list[tuple[int, dict[str, str]]] | None:
    """The report's rows, checked; None when it cannot be read."""
    try:
        rows = read_report(out)
    except FileNotFoundError:
        result.lost.append(f"{out / REPORT_CSV}: the report is missing")
        return None
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        result.other.append(f"{out / REPORT_CSV}: cannot be read: {exc}")
        return None
    check_report_rows(pos, settled, rows, result, one_row_per_po=one_row_per_po)
    return rows


# ----- command line --------------------------------------------------------------------------


def fetch_json(url: str, timeout: float = 120) -> Any:
    """GET ``url`` and parse its JSON (the catalog takes a moment to hash on first call)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def fetch_sim(base_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The simulator's catalog and stats."""
    base = base_url.rstrip("/")
    return fetch_json(f"{base}/__sim/catalog"), fetch_json(f"{base}/__sim/stats")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.sim:
        catalog, stats = fetch_sim(args.sim)
    elif args.catalog and args.stats:
        catalog = json.loads(Path(args.catalog).read_text(encoding="utf-8"))
        stats = json.loads(Path(args.stats).read_text(encoding="utf-8"))
    else:
        _parser().error("give --catalog and --stats, or --sim")
    result = check(
        catalog,
        stats,
        Path(args.out),
        tool_pids=args.tool_pid,
        profile_hint=args.profile_hint,
        one_row_per_po=not args.repeated_input,
        emails=args.emails,
    )
    for category, sentence in result.findings():
        print(f"{category.upper():8} {sentence}")
    print(f"{result.pos_checked} PO(s), {result.files_hashed} file(s) hashed: {result.summary()}")
    return 0 if result.ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", help="the simulator's catalog (JSON of /__sim/catalog)")
    parser.add_argument("--stats", help="the simulator's stats (JSON of /__sim/stats)")
    parser.add_argument("--sim", help="or the simulator's address, to fetch both from")
    parser.add_argument("--out", required=True, help="the soak's output folder")
    parser.add_argument(
        "--tool-pid", type=int, action="append", default=[], help="a pid the tool ran as"
    )
    parser.add_argument(
        "--profile-hint", help="text in the command line of the soak's browsers (a folder)"
    )
    parser.add_argument(
        "--repeated-input", action="store_true", help="the input listed some PO more than once"
    )
    parser.add_argument(
        "--emails",
        choices=EMAIL_MODES,
        default="both",
        help="how the run converted saved e-mails (its convert.emails; default both)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
