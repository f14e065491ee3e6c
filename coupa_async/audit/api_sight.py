"""What Coupa's API lists for one PO, and where a run's folder and record disagree with it.

Pure functions over a journal record, what the API shows (``ApiSight``) and the files in the
PO's folder: no network, so each rule is testable alone. Which attachments count follows the
job: the PO's (header, lines, comments), and the requisition's only where the job's fallback
rule (``needs_requisition``: no PDF among the PO's files) sends it there.

Files are matched by the name the run gives them (``safe_file_name`` of the API's name, or a
numbered twin ``name (2).ext`` as ``unique_name`` makes them) and by size. Bytes are compared
where a name or a size does not settle it, and for every file of the sampled POs: the caller
fills ``hashes`` (``Matching.needs_bytes`` says which).
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coupa_async.api.models import ApiAttachment
from coupa_async.coupa.discover import MAX_TEXT
from coupa_async.coupa.po_steps import needs_requisition
from coupa_async.emails.outputs import is_our_output
from coupa_async.results.journal import PoRecord
from coupa_async.results.layout import safe_file_name, unique_name
from coupa_async.results.result import Outcome

NO_PROBLEMS = (Outcome.COMPLETED.value, Outcome.NO_ATTACHMENTS.value)
SHOWN_VALUE = 80
TWINS_BEYOND = 8
LinkKey = tuple[str, str, str]  # (source, kind, value)


@dataclass(frozen=True, slots=True)
class ApiSight:
    """What the API shows for one PO, read the way the job reads the pages."""

    number: str
    po_items: tuple[ApiAttachment, ...]
    requisition: str | None = None  # the requisition's number, when the PO has one
    pr_items: tuple[ApiAttachment, ...] | None = None  # None: not read
    pr_refused: str | None = None  # why the requisition could not be read (403, 404)

    @property
    def rule_applies(self) -> bool:
        """The job's fallback rule sends it to the requisition (and there is one)."""
        names = [a.name for a in self.po_items if a.kind == "file"]
        return self.requisition is not None and needs_requisition(names)

    @property
    def counted(self) -> tuple[ApiAttachment, ...]:
        """The attachments the job would record: the PO's, and the requisition's when the
        rule sends it there and it could be read."""
        if self.rule_applies and self.pr_items is not None:
            return (*self.po_items, *self.pr_items)
        return self.po_items


@dataclass
class Matching:
    """The API's files against the folder's: pairs, and what is left on either side."""

    pairs: list[tuple[ApiAttachment, str]] = field(default_factory=list)  # (API file, name)
    unmatched: list[ApiAttachment] = field(default_factory=list)  # API files with no file
    extra: dict[str, int] = field(default_factory=dict)  # folder files no API file claims

    def needs_bytes(self) -> list[tuple[ApiAttachment, list[str]]]:
        """Unmatched API files, each with the left-over files of its size (its bytes may be
        there under another name)."""
        wanted = []
        for attachment in self.unmatched:
            same = [n for n, size in self.extra.items() if attachment.size in (None, size)]
            if same:
                wanted.append((attachment, same))
        return wanted


def folder_files(folder: Path) -> dict[str, int]:
    """The files a run put in a PO's folder (name -> size): not hidden names (temporary ones,
    the offline audit's business), not folders, not the PDFs made from saved e-mails."""
    found: dict[str, int] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        if is_our_output(folder, entry.name):
            continue
        try:
            found[entry.name] = entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return found


def match_files(expected: Sequence[ApiAttachment], disk: Mapping[str, int]) -> Matching:
    """Pair each API file with a folder file of its name (or a numbered twin) and size."""
    left = dict(disk)
    by_fold = {_fold(name): name for name in left}
    wanted = [expected_name(a) for a in expected]
    alike = Counter(_fold(name) for name in wanted)
    families: dict[str, list[str]] = {}
    matching = Matching()
    for attachment, name in zip(expected, wanted, strict=True):
        # Twins beyond those of the same name the API lists come from files already there.
        count = min(len(disk), alike[_fold(name)] + TWINS_BEYOND)
        family = families.get(name) or families.setdefault(name, _family(name, count))
        names = [by_fold[f] for f in family if f in by_fold and by_fold[f] in left]
        same = [n for n in names if attachment.size is None or left[n] == attachment.size]
        if same:
            matching.pairs.append((attachment, same[0]))
            del left[same[0]]
        else:
            matching.unmatched.append(attachment)
    matching.extra = left
    return matching


def _family(wanted: str, count: int) -> list[str]:
    """``wanted`` and the numbered twins ``unique_name`` would give it (folded), in order."""
    taken: set[str] = set()
    names = []
    for _ in range(count + 1):
        name = unique_name(wanted, taken)
        taken.add(name)
        names.append(_fold(name))
    return names


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def expected_name(attachment: ApiAttachment) -> str:
    return safe_file_name(attachment.name or None)


@dataclass(frozen=True, slots=True)
class Found:
    """One disagreement of a PO with the API: (what the run has, what the API shows, where)."""

    said: str
    found: str
    where: Path | None = None


def state_findings(record: PoRecord, sight: ApiSight) -> list[Found]:
    """Outcomes the API contradicts: a PO not found, a requisition not accessible."""
    folder = record.folder
    findings = []
    if record.state == Outcome.PO_NOT_FOUND.value:
        findings.append(
            Found(
                record.state,
                f"the API serves PO {sight.number} with {len(sight.counted)} attachment(s)",
                folder,
            )
        )
    elif record.state == Outcome.PR_NOT_ACCESSIBLE.value:
        if not sight.rule_applies:
            findings.append(
                Found(
                    record.state,
                    "the API lists a PDF among the PO's files (or no requisition): the job "
                    "would not open the requisition",
                    folder,
                )
            )
        elif sight.pr_items is not None:
            findings.append(
                Found(
                    record.state,
                    f"the API reads requisition {sight.requisition}: "
                    f"{len(sight.pr_items)} attachment(s)",
                    folder,
                )
            )
    return findings


def file_findings(
    record: PoRecord,
    matching: Matching,
    hashes: Mapping[int, str],
    disk_hashes: Mapping[str, str],
    *,
    ignored: Iterable[str] = (),
    scope: str = "this PO",
) -> list[Found]:
    """Files missing, of another size, under another name, of other bytes, or extra.

    ``hashes``: SHA-256 of API files by attachment id; ``disk_hashes``: of folder files by
    name (both for what was hashed). ``ignored``: folder files not to call extra (a
    requisition's the API could not read); ``scope``: whose files the API listed."""
    folder = record.folder
    findings: list[Found] = []
    extra = dict(matching.extra)
    for name in ignored:
        extra.pop(name, None)
    for attachment, name in matching.pairs:
        api_sha, disk_sha = hashes.get(attachment.id), disk_hashes.get(name)
        if api_sha and disk_sha and api_sha != disk_sha:
            findings.append(
                Found(
                    f"{name}: sha256 {disk_sha[:12]}…",
                    f"the API's {attachment.name} ({attachment.place}): same size, sha256 "
                    f"{api_sha[:12]}…",
                    _inside(folder, name),
                )
            )
    missing = []
    for attachment in matching.unmatched:
        api_sha = hashes.get(attachment.id)
        twin = next(
            (n for n in extra if api_sha and disk_hashes.get(n) == api_sha),
            None,
        )
        if twin is not None:
            del extra[twin]
            findings.append(
                Found(
                    f"{twin} saved",
                    f"the API names these bytes {expected_name(attachment)} ({attachment.place})",
                    _inside(folder, twin),
                )
            )
        else:
            missing.append(attachment)
    problems = 0 if record.state in NO_PROBLEMS else max(0, record.found - len(record.files))
    if len(missing) > problems:
        for attachment in missing:
            finding, same_name = _missing(record, attachment, extra)
            findings.append(finding)
            extra.pop(same_name or "", None)  # said once: its size is the finding
    for name, size in sorted(extra.items()):
        findings.append(
            Found(
                f"{name} ({size:,} bytes) saved",
                f"the API lists no such file of {scope}",
                _inside(folder, name),
            )
        )
    return findings


def _missing(
    record: PoRecord, attachment: ApiAttachment, extra: Mapping[str, int]
) -> tuple[Found, str | None]:
    """The finding for an API file not in the folder, and the folder's file of its name (of
    another size) when there is one."""
    name = expected_name(attachment)
    size = f"{attachment.size:,} bytes" if attachment.size is not None else "size not given"
    same_name = next((n for n in extra if _fold(n) == _fold(name)), None)
    if same_name is not None:
        said = f"{same_name}: {extra[same_name]:,} bytes"
    else:
        problems = max(0, record.found - len(record.files))
        said = f"{record.state}: no {name} saved ({problems} problem(s) recorded)"
    where = _inside(record.folder, same_name) if same_name else record.folder
    return Found(said, f"the API lists {name}: {size} ({attachment.place})", where), same_name


def link_findings(
    record: PoRecord, items: Iterable[ApiAttachment], sources: Iterable[str] = ("PO", "PR")
) -> list[Found]:
    """URL and text attachments the API lists (``items``) that the record lacks, and the
    reverse, of the pages in ``sources`` (the PO's, the requisition's)."""
    if not record.attachments and record.files:
        return []  # a journal from before the manifest: it kept no URL or text attachment
    compared = set(sources)
    listed = Counter(
        _link_key(a.source, a.kind, a.value)
        for a in items
        if a.kind != "file" and a.source in compared
    )
    recorded = Counter(
        _link_key(a.source, a.kind, a.value)
        for a in record.attachments
        if a.kind != "file" and a.source in compared
    )
    findings = []
    for source, kind, value in sorted((listed - recorded).elements()):
        findings.append(
            Found(
                f"no {kind} attachment {_short(value)!r} in the manifest",
                f"the API lists it on the {source}",
                record.folder,
            )
        )
    for source, kind, value in sorted((recorded - listed).elements()):
        findings.append(
            Found(
                f"the manifest records the {kind} {_short(value)!r} from the {source}",
                "the API lists no such attachment",
                record.folder,
            )
        )
    return findings


def _link_key(source: str, kind: str, value: str) -> LinkKey:
    if kind == "text":
        return source, kind, " ".join(value.split())[:MAX_TEXT]
    return source, kind, value.strip().split("#", 1)[0]


def _short(value: str) -> str:
    return value if len(value) <= SHOWN_VALUE else value[: SHOWN_VALUE - 1] + "…"


def _inside(folder: Path | None, name: str) -> Path | None:
    return folder / name if folder is not None else None
