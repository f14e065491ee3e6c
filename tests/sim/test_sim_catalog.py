"""The catalog: deterministic, covering every variant, with outcomes that follow the reference."""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
import json
import re
import tracemalloc
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote

import extract_msg
import pytest
from sim_testkit import LATE_RECIPES, N_RECIPES

import coupa_async.sim.catalog as catalog_module
from coupa_async.sim import Catalog, SimConfig, SimPO
from coupa_async.sim.catalog import (
    DISPOSITIONS,
    LATE_DELAY_RANGE_MS,
    LATE_FAILURES,
    LATE_STARTS,
    LATE_TRAITS,
    MARKUPS,
    PAGE_KINDS,
    RECIPES,
    REQUISITION_LINKS,
    SUPPLIER_MARKUPS,
    TRAITS,
    F,
    LateFill,
    _PRSpec,
    _Recipe,
    late_part,
)
from coupa_async.sim.content import (
    FILE_TYPES,
    MAIL_TYPES,
    OLE_MAGIC,
    ZIP_MAGIC,
    MailSummary,
    MailTraits,
    content_bytes,
)

SEEDS = (1, 7, 2024)
HOSTILE = ("../../x.pdf", "C:\\x.pdf", "CON.pdf")


def build(**kwargs: object) -> Catalog:
    return Catalog.build(SimConfig(**kwargs))  # type: ignore[arg-type]


def test_same_seed_same_json_and_other_seed_differs() -> None:
    a = build(seed=7, pos=45).to_json()
    assert a == build(seed=7, pos=45).to_json()
    assert a != build(seed=8, pos=45).to_json()
    data = json.loads(a)
    assert data["seed"] == 7
    assert len(data["pos"]) == 45


def test_po_numbers_are_8_digits_and_lookups_work() -> None:
    catalog = build(seed=3, pos=40)
    numbers = [po.number for po in catalog.pos]
    assert numbers[0] == "15262984"
    assert all(len(n) == 8 and n.isdigit() for n in numbers)
    assert len(set(numbers)) == 40
    po = catalog.pos[5]
    assert catalog.po(po.number) is po
    assert catalog.po(int(po.number)) is po
    with pytest.raises(KeyError):
        catalog.po("99999999")
    for f in catalog.files:
        assert catalog.file(f.id) is f
    for pr in catalog.requisitions:
        assert catalog.requisition(pr.number) is pr


def test_recipe_count_is_documented() -> None:
    assert f"first {N_RECIPES} POs" in (catalog_module.__doc__ or "")
    assert len({r.name for r in RECIPES}) == N_RECIPES
    assert set(LATE_RECIPES) <= {r.name for r in RECIPES}


@pytest.mark.parametrize("seed", SEEDS)
def test_first_pos_cover_every_variant(seed: int) -> None:
    catalog = build(seed=seed, pos=N_RECIPES)
    assert sorted(po.recipe for po in catalog.pos) == sorted(r.name for r in RECIPES)
    pos = catalog.pos
    ok = [po for po in pos if po.page == "ok"]
    assert {po.page for po in pos} == set(PAGE_KINDS)
    assert {po.supplier_markup for po in ok} == set(SUPPLIER_MARKUPS)
    assert set().union(*(po.traits for po in ok)) == set(TRAITS)
    files = catalog.files
    assert {f.markup for f in files} == set(MARKUPS)
    assert {f.disposition for f in files} == set(DISPOSITIONS)
    assert {f.type for f in files} == set(FILE_TYPES)
    prs = [po.requisition for po in pos if po.requisition]
    assert {pr.link for pr in prs} == set(REQUISITION_LINKS)
    assert {pr.kind for pr in prs} == {"ok", "empty", "error"}
    assert any(pr.absolute for pr in prs) and any(not pr.absolute for pr in prs)
    assert any(f.absolute for f in files) and any(not f.absolute for f in files)
    assert any(f.duplicate_link for f in files)
    assert any(f.serves_html for f in files)
    assert {po.expected_outcome for po in pos} == {
        "COMPLETED",
        "PARTIAL",
        "FAILED",
        "NO_ATTACHMENTS",
        "PO_NOT_FOUND",
        "PR_NOT_ACCESSIBLE",
    }
    names = {f.name for f in files}
    assert set(HOSTILE) <= names
    assert any(len(n) == 300 for n in names)
    assert any(any(ord(c) < 32 for c in n) for n in names)
    assert any(all(c in n for c in '<>:"|?*&') for n in names)
    assert any(not n.isascii() for n in names)
    assert {"Müller & Söhne GmbH", "A/B Trading: Ltd"} <= {po.supplier for po in ok}
    # Two different files with one name on one PO.
    assert any(len({f.expected_name for f in po.files}) < len(po.files) for po in ok if po.files)
    big = [f for f in files if f.size >= 20 * 1024 * 1024]
    assert len(big) == 1 and big[0].size <= 30 * 1024 * 1024
    assert min(f.size for f in files) < 100
    # Late lists: every shape on a PO page, the PR shapes, every start and failure.
    assert {po.late.trait for po in ok if po.late} == set(LATE_TRAITS)
    pr_lates = [pr.late for pr in prs if pr.late]
    assert {late.trait for late in pr_lates} == {"late_json", "late_two_parts", "late_broken"}
    assert {po.late.start for po in ok if po.late} == set(LATE_STARTS)
    assert {late.start for late in pr_lates} == set(LATE_STARTS)
    lates = [po.late for po in ok if po.late] + pr_lates
    assert {late.failure for late in lates} == {None, *LATE_FAILURES}
    assert {po.late.failure for po in ok if po.late and po.late.broken} == set(LATE_FAILURES)
    late_files = [f for po in ok if po.late for f in po.files]
    late_files += [f for pr in prs if pr.late for f in pr.files]
    assert {f.markup for f in late_files} == set(MARKUPS) - {"click_title"}
    assert any(f.absolute for f in late_files)


def test_larger_catalogs_keep_one_big_file_and_all_variants() -> None:
    catalog = build(seed=5, pos=200)
    assert sum(f.size >= 20 * 1024 * 1024 for f in catalog.files) == 1
    assert {po.page for po in catalog.pos} == set(PAGE_KINDS)


def _po(catalog: Catalog, recipe: str) -> SimPO:
    return next(po for po in catalog.pos if po.recipe == recipe)


@pytest.mark.parametrize("seed", SEEDS)
def test_expected_outcomes_follow_the_reference(seed: int) -> None:
    catalog = build(seed=seed, pos=N_RECIPES)
    for po in catalog.pos:
        names = [f.expected_name for f in po.files]
        has_pdf = any(n.lower().endswith(".pdf") for n in names)
        pr = po.requisition
        if po.page != "ok":
            assert po.expected_outcome == "PO_NOT_FOUND"
            assert po.expected_files == [] and po.expected_supplier is None
        elif po.late is not None and po.late.broken:
            assert po.expected_outcome == "FAILED" and not po.uses_requisition
            assert po.expected_files == [] and po.expected_found == 0
        elif po.files and has_pdf:
            assert not po.uses_requisition
            assert {e.source for e in po.expected_files} <= {"PO"}
        elif pr is None:
            assert po.expected_outcome == ("COMPLETED" if po.files else "NO_ATTACHMENTS")
        elif pr.kind == "error":
            assert po.expected_outcome == "PR_NOT_ACCESSIBLE"
            assert len(po.expected_files) == len(po.files)
        elif pr.broken:
            assert po.expected_outcome == "FAILED" and po.uses_requisition
            assert po.expected_files == [] and po.expected_found == 0
        elif pr.kind == "empty":
            assert po.expected_outcome == ("COMPLETED" if po.files else "NO_ATTACHMENTS")
        else:
            assert po.expected_outcome == "COMPLETED"
            assert [e.source for e in po.expected_files] == ["PO"] * len(po.files) + ["PR"] * len(
                pr.files
            )
    partial = _po(catalog, "partial_html_instead")
    assert partial.expected_outcome == "PARTIAL"
    assert len(partial.expected_files) == 1 and partial.expected_found == 2
    assert _po(catalog, "failed_html_instead").expected_outcome == "FAILED"
    with_link = _po(catalog, "pdf_with_pr_link")
    assert with_link.requisition and with_link.requisition.files
    assert with_link.expected_outcome == "COMPLETED" and not with_link.uses_requisition
    assert _po(catalog, "lazy_no_supplier").expected_supplier is None


def test_expected_names_follow_the_reference_order() -> None:
    catalog = build(seed=7, pos=N_RECIPES)
    by_name = {f.name: f for f in catalog.files}
    assert by_name["Relatório final.pdf"].content_disposition == (
        "attachment; filename*=UTF-8''Relat%C3%B3rio%20final.pdf"
    )
    for f in catalog.files:
        if f.disposition != "none":
            assert f.expected_name == f.name
        elif f.markup == "download_attr":
            assert f.expected_name == f.label  # the download attribute beats the text
        elif f.markup == "aria_title":
            assert f.expected_name == f.label  # the title beats aria-label and text
        elif f.markup == "icon":  # the last URL path segment, unquoted
            assert unquote(f.url_path.rsplit("/", 1)[-1]) == f.label == f.expected_name
        if f.disposition == "both":
            assert 'filename="' in f.content_disposition and "filename*=" in f.content_disposition
        if not f.has_href:
            assert f.disposition != "none"  # click-only files are always named by the server


def test_uniform_profile() -> None:
    catalog = build(seed=2, pos=25, profile="uniform", uniform_files=4, uniform_file_size=12345)
    assert len(catalog.pos) == 25
    for po in catalog.pos:
        assert po.page == "ok" and po.supplier and not po.traits and po.requisition is None
        assert po.expected_outcome == "COMPLETED"
        assert [f.size for f in po.files] == [12345] * 4
        assert all(f.type == "pdf" for f in po.files)


def test_huge_file_catalog_is_lazy() -> None:
    tracemalloc.start()
    try:
        catalog = build(profile="uniform", pos=1, uniform_files=1, uniform_file_size=200 * 2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # nothing of the 200 MB file was generated
    (f,) = catalog.files
    assert "sha256" not in f.__dict__  # hashed only on demand
    assert f.size == 200 * 2**20


MALFORMED = MailTraits(malformed=True)


@pytest.mark.parametrize("file_type", [t for t in FILE_TYPES if t != "eml"])
@pytest.mark.parametrize("size", [5, 14, 399, 1024, 65_536, 200_003])
def test_file_bytes_have_the_format_signature(file_type: str, size: int) -> None:
    mail = MALFORMED if file_type == "msg" else None  # a real .msg has the size it has
    data = content_bytes(9, 123, file_type, size, mail)
    assert len(data) == size
    assert data == content_bytes(9, 123, file_type, size, mail)
    if size >= 399:  # room for more than the format's fixed bytes
        assert data != content_bytes(9, 124, file_type, size, mail)
    if file_type == "pdf" and size >= 14:
        assert data.startswith(b"%PDF-1.4") and data.endswith(b"%%EOF")
    elif file_type == "msg" and size >= 8:
        assert data.startswith(OLE_MAGIC)
    elif file_type in ("docx", "xlsx") and size >= 4:
        assert data.startswith(ZIP_MAGIC)
    elif file_type == "txt":
        data.decode("ascii")


# ---------------------------------------------------------------------------------------------
# Late attachment lists

# recipe: (outcome, attachments found, requisition visited, trait of the PO page, of the PR)
LATE_EXPECTED = {
    "late_json_links": ("COMPLETED", 4, False, "late_json", None),
    "late_fragment_links": ("COMPLETED", 3, False, "late_fragment", None),
    "late_two_parts_links": ("COMPLETED", 3, False, "late_two_parts", None),
    "late_json_empty": ("NO_ATTACHMENTS", 0, False, "late_json", None),
    "late_broken_a": ("FAILED", 0, False, "late_broken", None),
    "late_broken_b": ("FAILED", 0, False, "late_broken", None),
    "late_broken_c": ("FAILED", 0, False, "late_broken", None),
    "pr_late_json_no_po_files": ("COMPLETED", 3, True, "late_json", "late_json"),
    "pr_late_two_parts_po_not_pdf": ("COMPLETED", 4, True, None, "late_two_parts"),
    "pr_late_broken_no_po_files": ("FAILED", 0, True, None, "late_broken"),
}


@pytest.mark.parametrize("seed", SEEDS)
def test_late_recipes_expectations(seed: int) -> None:
    assert set(LATE_EXPECTED) == set(LATE_RECIPES)
    catalog = build(seed=seed, pos=len(LATE_RECIPES), recipes=LATE_RECIPES)
    for po in catalog.pos:
        outcome, found, uses_pr, po_trait, pr_trait = LATE_EXPECTED[po.recipe]
        pr = po.requisition
        assert po.expected_outcome == outcome, po.recipe
        assert po.expected_found == found and po.uses_requisition == uses_pr, po.recipe
        assert (po.late.trait if po.late else None) == po_trait
        assert (pr.late.trait if pr and pr.late else None) == pr_trait
        assert set(po.traits) & set(LATE_TRAITS) == ({po_trait} if po_trait else set())
        if pr is not None:
            assert pr.traits == ({pr_trait} if pr_trait else frozenset())
        saved = list(po.files) + (list(pr.files) if uses_pr and pr else [])
        if outcome == "FAILED":
            assert po.late_failed and po.saved_files == () and po.expected_files == []
            saved = []
        else:
            assert not po.late_failed
            assert [f.id for f in po.saved_files] == [f.id for f in saved]
        assert [e.sha256 for e in po.expected_files] == [f.sha256 for f in saved]
        data = po.to_dict()
        assert data["expected_outcome"] == outcome and data["expected_found"] == found
        assert data["late_failed"] == po.late_failed
        assert data["late"] == (po.late.to_dict() if po.late else None)
        if pr is not None:
            assert data["requisition"]["late"] == (pr.late.to_dict() if pr.late else None)
            assert data["requisition"]["traits"] == sorted(pr.traits)
    json.loads(catalog.to_json())  # JSON-ready


@pytest.mark.parametrize("seed", SEEDS)
def test_late_timings_are_drawn_per_page(seed: int) -> None:
    catalog = build(seed=seed, pos=3 * len(LATE_RECIPES), recipes=LATE_RECIPES)
    pages = [*catalog.pos, *catalog.requisitions]
    lates = [page.late for page in pages if page.late is not None]
    assert len(lates) == 3 * 11  # each round: 8 late PO pages, 3 late PR pages
    low, high = LATE_DELAY_RANGE_MS
    for late in lates:
        assert low <= late.delay_ms <= high
        if late.trait == "late_two_parts":
            assert low <= late.part2_delay_ms <= high
            assert late.fill_ms == late.start_timeout_ms + late.delay_ms + late.part2_delay_ms
        else:
            assert late.part2_delay_ms == 0
        assert (late.failure is not None) == (late.trait == "late_broken") == late.broken
        if late.start == "load":
            assert 0 <= late.start_timeout_ms <= 100
        else:
            assert late.start_timeout_ms == 0
        assert late.endpoint == (
            "attachments_fragment" if late.trait == "late_fragment" else "attachments.json"
        )
    # Shapes and timings vary: each start and failure shows up, delays spread out.
    assert {late.start for late in lates} == set(LATE_STARTS)
    assert {late.failure for late in lates if late.broken} == set(LATE_FAILURES)
    delays = [late.delay_ms for late in lates]
    assert len(set(delays)) > 15 and max(delays) - min(delays) > 900
    other = build(seed=seed + 1, pos=3 * len(LATE_RECIPES), recipes=LATE_RECIPES)
    assert [p.late for p in other.pos] != [p.late for p in catalog.pos]


def test_late_part_split() -> None:
    catalog = build(seed=4, pos=1, recipes=("many_files",))
    files = catalog.pos[0].files
    assert len(files) == 6
    assert late_part(files, None) == files
    assert late_part(files, 1) == files[:3] and late_part(files, 2) == files[3:]
    assert late_part(files[:2], 1) == files[:1] and late_part(files[:2], 2) == files[1:2]
    assert late_part(files[:3], 1) == files[:1] and late_part(files[:3], 2) == files[1:3]


def test_recipes_option_sets_the_order_and_cycles() -> None:
    names = ("plain_links", "late_json_links", "late_broken_a")
    catalog = build(seed=3, pos=7, recipes=names)
    assert [po.recipe for po in catalog.pos] == [*names, *names, names[0]]
    assert catalog.to_json() == build(seed=3, pos=7, recipes=list(names)).to_json()
    assert SimConfig(recipes=list(names)).recipes == names  # type: ignore[arg-type]
    one = build(seed=3, pos=2, recipes=("big_file",))  # named recipes repeat, big or not
    assert [po.recipe for po in one.pos] == ["big_file", "big_file"]
    broken = build(seed=3, pos=4, recipes=("late_broken_a",))
    assert all(po.expected_outcome == "FAILED" for po in broken.pos)
    assert {po.late.failure for po in broken.pos if po.late} == set(LATE_FAILURES)
    assert build(seed=3, pos=0, recipes=names).pos == []


def test_recipes_option_is_validated() -> None:
    with pytest.raises(ValueError, match=r"unknown recipe.*'nope'.*plain_links"):
        SimConfig(recipes=("plain_links", "nope"))
    with pytest.raises(ValueError, match="at least one"):
        SimConfig(recipes=())
    with pytest.raises(ValueError, match="varied"):
        SimConfig(profile="uniform", recipes=("plain_links",))


def test_recipes_with_inconsistent_late_traits_are_refused() -> None:
    with pytest.raises(ValueError, match="one late or lazy"):
        _Recipe("x", traits=("late_json", "late_fragment"))
    with pytest.raises(ValueError, match="one late or lazy"):
        _Recipe("x", traits=("late_json", "lazy_attachments"))
    with pytest.raises(ValueError, match="2 files"):
        _Recipe("x", traits=("late_two_parts",), files=(F("pdf"),))
    with pytest.raises(ValueError, match="no files"):
        _Recipe("x", traits=("late_broken",), files=(F("pdf"),))
    with pytest.raises(ValueError, match="requisition pages take only"):
        _PRSpec("ok", "number", traits=("toolbar",))
    with pytest.raises(ValueError, match="error page"):
        _PRSpec("error", "number", traits=("late_json",))
    late = LateFill("late_json", "inline", 300)
    assert late.data_path("/order_headers/1") == "/order_headers/1/attachments.json"


# ---------------------------------------------------------------------------------------------
# E-mail files


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _snippet(text: str | None, html_body: str | None) -> str:
    if text is None:
        text = html.unescape(re.sub(r"<[^>]*>", " ", html_body or ""))
    return " ".join(text.split())[:40]


def _check_msg(msg: extract_msg.Message, summary: MailSummary) -> None:
    """The `.msg` as extract-msg reads it holds what the catalog says."""
    assert (msg.subject, msg.sender) == (summary.subject, summary.sender)
    html_body = msg.htmlBody.decode() if msg.htmlBody and msg.body is None else None
    assert _snippet(msg.body, html_body) == summary.body_snippet
    nested = iter(summary.nested)
    assert len(msg.attachments) == len(summary.attachments)
    for att, part in zip(msg.attachments, summary.attachments, strict=True):
        if part.nested:
            assert att.name == part.name
            _check_msg(att.data, next(nested))
        else:
            assert att.longFilename == part.name
            assert (_sha(att.data), len(att.data)) == (part.sha256, part.size)


def _check_eml(msg: EmailMessage, summary: MailSummary) -> None:
    """The `.eml` as the email package reads it holds what the catalog says."""
    assert (msg["Subject"], str(msg["From"])) == (summary.subject, summary.sender)
    plain, rich = msg.get_body(("plain",)), msg.get_body(("html",))
    text = plain.get_content() if plain is not None else None
    assert _snippet(text, rich.get_content() if rich is not None else None) == (
        summary.body_snippet
    )
    nested = iter(summary.nested)
    parts = list(msg.iter_attachments())
    assert len(parts) == len(summary.attachments)
    for part, want in zip(parts, summary.attachments, strict=True):
        assert part.get_filename() == want.name
        if want.nested:
            inner = part.get_content()
            raw = inner.as_bytes(policy=email.policy.default.clone(linesep="\r\n"))
            assert (_sha(raw), len(raw)) == (want.sha256, want.size)
            _check_eml(inner, next(nested))
        else:
            data = part.get_payload(decode=True)
            assert (_sha(data), len(data)) == (want.sha256, want.size)


@pytest.mark.parametrize("seed", SEEDS)
def test_email_files_are_real_emails(seed: int, tmp_path: Path) -> None:
    catalog = build(seed=seed, pos=N_RECIPES)
    mails = [f for f in catalog.files if f.type in MAIL_TYPES]
    for f in catalog.files:
        assert (f.email is None) == (f.type not in MAIL_TYPES)
        assert f.to_dict()["email"] == (f.email.to_dict() if f.email else None)
    summaries = []
    for f in mails:
        data = b"".join(f.chunks(chunk_size=1000))
        assert (len(data), _sha(data)) == (f.size, f.sha256)
        assert len(data) <= 300 * 1024 or f.email.malformed
        summary = f.email
        assert summary is not None
        summaries.append(summary)
        if summary.malformed:
            assert data.startswith(OLE_MAGIC) and f.type == "msg"
            assert summary.to_dict() == {
                "malformed": True,
                "subject": "",
                "sender": "",
                "body_snippet": "",
                "attachments": [],
                "nested": [],
            }
        elif f.type == "msg":
            path = tmp_path / f"{f.id}.msg"
            path.write_bytes(data)
            with extract_msg.openMsg(str(path)) as msg:
                _check_msg(msg, summary)
        else:
            msg = email.message_from_bytes(data, policy=email.policy.default)
            _check_eml(msg, summary)  # type: ignore[arg-type]
    # The recipes cover what a converter meets.
    ok = [(f, f.email) for f in mails if f.email and not f.email.malformed]
    assert sum(1 for f in mails if f.email and f.email.malformed) == 1
    assert any(f.type == "msg" and any(not a.nested for a in s.attachments) for f, s in ok)
    assert any(
        f.type == "msg" and any(any(not a.nested for a in n.attachments) for n in s.nested)
        for f, s in ok
    )
    assert any(f.type == "eml" and s.attachments for f, s in ok)
    texts = [s.subject + s.body_snippet for _, s in ok]
    assert any("采购订单" in t for t in texts)
    assert any(c in t for t in texts for c in "çãßü")
    names = {a.name for _, s in ok for a in s.attachments}
    assert {"../../escape.txt", "..\\..\\evil.bat"} <= names
    json.loads(catalog.to_json())


def test_email_files_are_deterministic_and_vary() -> None:
    a = build(seed=3, pos=N_RECIPES)
    b = build(seed=3, pos=N_RECIPES)
    c = build(seed=4, pos=N_RECIPES)
    mails_a = [f for f in a.files if f.type in MAIL_TYPES]
    assert [(f.size, f.sha256) for f in mails_a] == [
        (f.size, f.sha256) for f in b.files if f.type in MAIL_TYPES
    ]
    assert {f.sha256 for f in mails_a}.isdisjoint(f.sha256 for f in c.files if f.type in MAIL_TYPES)
    with pytest.raises(ValueError, match="bytes, not"):
        content_bytes(3, mails_a[0].id, mails_a[0].type, mails_a[0].size + 1, mails_a[0].mail)
