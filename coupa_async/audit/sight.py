"""What a PO's pages show now, and where that disagrees with what the journal recorded.

Pure functions over a journal record and a ``Sight``: no browser, so each rule is testable alone.
Which pages count follows the job (``process_po``): the PO page, and the requisition page only
where the job's fallback rule (``needs_requisition``) sends it there.
"""

from __future__ import annotations

from dataclasses import dataclass

from coupa_async.coupa.discover import AttachmentRef
from coupa_async.results.journal import PoRecord
from coupa_async.results.result import Outcome

SHOWN_URLS = 3
NO_PROBLEMS = (Outcome.COMPLETED.value, Outcome.NO_ATTACHMENTS.value)


@dataclass(frozen=True, slots=True)
class Sight:
    """What the site shows for one PO, read the way the job reads it."""

    po_error: str | None = None  # why the PO page is an error page, when it is one
    po_refs: tuple[AttachmentRef, ...] = ()
    requisition_url: str | None = None  # the requisition link on the PO page
    followed: bool = False  # the job's rule sends it to the requisition, and there is a link
    pr_error: str | None = None
    pr_refs: tuple[AttachmentRef, ...] = ()
    # The PO number the PO page shows (None: none recognised), and that page's address.
    shown_number: str | None = None
    po_url: str = ""

    @property
    def found(self) -> int:
        """Attachments on the pages the job visits (what it counts as found)."""
        return len(self.po_refs) + len(self.pr_refs)


def names_for_rule(refs: tuple[AttachmentRef, ...], record: PoRecord) -> list[str]:
    """The names the job judged the PO page's attachments by: the saved file's name where the
    journal has one (the server's name may differ from the page's), else the page's name."""
    saved = {f.url: f.name for f in record.files if f.source == "PO"}
    urls = {ref.url for ref in refs if ref.url}
    # A clicked file is recorded under the URL its download came from, not one on the page.
    clicked = [f.name for f in record.files if f.source == "PO" and f.url not in urls]
    names = []
    for ref in refs:
        if ref.url is not None and ref.url in saved:
            names.append(saved[ref.url])
        elif ref.url is None and clicked:
            names.append(clicked.pop(0))
        else:
            names.append(ref.name_hint)
    return names


def disagreements(record: PoRecord, sight: Sight) -> list[tuple[str, str]]:
    """(what the journal says, what the site shows) for every rule the two break."""
    said = f"{record.state}: {record.found} found, {len(record.files)} saved"
    if sight.po_error is not None:
        if record.state == Outcome.PO_NOT_FOUND.value:
            return []
        return [(said, f"the PO page is an error page ({sight.po_error})")]
    wanted = "".join(c for c in record.label if c.isdigit()).lstrip("0") or "0"
    if sight.shown_number is not None and sight.shown_number != wanted:
        return [(said, f"the page at {sight.po_url} shows PO #{sight.shown_number}")]
    if record.state == Outcome.PO_NOT_FOUND.value:
        return [(said, f"the PO page opens and shows {len(sight.po_refs)} attachment(s)")]
    found = _requisition(record, sight, said)
    if record.state == Outcome.NO_ATTACHMENTS.value:
        if sight.found:
            found.append((said, f"{sight.found} attachment(s): {_refs(sight)}"))
        return found
    if sight.found != record.found:
        found.append((said, f"{sight.found} attachment(s) on the page(s): {_refs(sight)}"))
    found += _urls(record, sight, said)
    return found


def _requisition(record: PoRecord, sight: Sight, said: str) -> list[tuple[str, str]]:
    found = []
    inaccessible = record.state == Outcome.PR_NOT_ACCESSIBLE.value
    if sight.pr_error is not None and not inaccessible:
        found.append((said, f"the requisition page is an error page ({sight.pr_error})"))
    elif sight.pr_error is None and inaccessible:
        found.append(
            (
                said,
                f"the requisition {sight.requisition_url} opens"
                if sight.followed
                else "the job would not open a requisition for this PO now",
            )
        )
    if sight.followed and record.pr_url and record.pr_url != sight.requisition_url:
        found.append((f"requisition {record.pr_url}", f"requisition {sight.requisition_url}"))
    from_pr = [f.name for f in record.files if f.source == "PR"]
    if from_pr and not sight.followed:
        found.append(
            (
                f"{len(from_pr)} file(s) from the requisition: {_names(from_pr)}",
                "the PO page shows a PDF, or no requisition link: the job would not go there",
            )
        )
    return found


def _urls(record: PoRecord, sight: Sight, said: str) -> list[tuple[str, str]]:
    """Saved files whose link is gone, and links neither saved nor recorded as a problem."""
    found = []
    saved_urls = {f.url for f in record.files}
    for source, refs in (("PO", sight.po_refs), ("PR", sight.pr_refs)):
        urls = {ref.url for ref in refs if ref.url}
        clicks = sum(1 for ref in refs if ref.url is None)
        gone = [f for f in record.files if f.source == source and f.url not in urls]
        if len(gone) > clicks:  # a clicked file's URL is not on the page; its count is
            found.append(
                (
                    f"saved {_names([f.name for f in gone])} from the {source} page",
                    f"the {source} page no longer links "
                    + _names([f.url for f in gone][: len(gone) - clicks]),
                )
            )
    unsaved = [
        ref.url
        for ref in (*sight.po_refs, *sight.pr_refs)
        if ref.url is not None and ref.url not in saved_urls
    ]
    problems = 0 if record.state in NO_PROBLEMS else max(0, record.found - len(record.files))
    if len(unsaved) > problems:
        found.append(
            (
                said,
                f"{len(unsaved)} linked attachment(s) neither saved nor recorded as a problem "
                f"(at most {problems} can be): {_names(unsaved)}",
            )
        )
    return found


def _refs(sight: Sight) -> str:
    refs = (*sight.po_refs, *sight.pr_refs)
    return _names([ref.url or f"click-only {ref.name_hint!r}" for ref in refs])


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN_URLS])
    return shown + (f" and {len(items) - SHOWN_URLS} more" if len(items) > SHOWN_URLS else "")
