"""The catalog: deterministic, covering every variant, with outcomes that follow the reference."""

from __future__ import annotations

import json
import time

import pytest

from coupa_async.sim import Catalog, SimConfig, SimPO
from coupa_async.sim.catalog import (
    DISPOSITIONS,
    MARKUPS,
    PAGE_KINDS,
    REQUISITION_LINKS,
    SUPPLIER_MARKUPS,
    TRAITS,
)
from coupa_async.sim.content import FILE_TYPES, OLE_MAGIC, ZIP_MAGIC, content_bytes

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


@pytest.mark.parametrize("seed", SEEDS)
def test_thirty_pos_cover_every_variant(seed: int) -> None:
    catalog = build(seed=seed, pos=30)
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


def test_larger_catalogs_keep_one_big_file_and_all_variants() -> None:
    catalog = build(seed=5, pos=200)
    assert sum(f.size >= 20 * 1024 * 1024 for f in catalog.files) == 1
    assert {po.page for po in catalog.pos} == set(PAGE_KINDS)


def _po(catalog: Catalog, recipe: str) -> SimPO:
    return next(po for po in catalog.pos if po.recipe == recipe)


@pytest.mark.parametrize("seed", SEEDS)
def test_expected_outcomes_follow_the_reference(seed: int) -> None:
    catalog = build(seed=seed, pos=30)
    for po in catalog.pos:
        names = [f.expected_name for f in po.files]
        has_pdf = any(n.lower().endswith(".pdf") for n in names)
        pr = po.requisition
        if po.page != "ok":
            assert po.expected_outcome == "PO_NOT_FOUND"
            assert po.expected_files == [] and po.expected_supplier is None
        elif po.files and has_pdf:
            assert not po.uses_requisition
            assert {e.source for e in po.expected_files} <= {"PO"}
        elif pr is None:
            assert po.expected_outcome == ("COMPLETED" if po.files else "NO_ATTACHMENTS")
        elif pr.kind == "error":
            assert po.expected_outcome == "PR_NOT_ACCESSIBLE"
            assert len(po.expected_files) == len(po.files)
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
    catalog = build(seed=7, pos=30)
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
        elif f.markup == "icon":
            assert f.url_path.endswith("/" + f.label)
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
    start = time.perf_counter()
    catalog = build(profile="uniform", pos=1, uniform_files=1, uniform_file_size=200 * 2**20)
    assert time.perf_counter() - start < 1.0  # sanity: nothing of the file was generated
    (f,) = catalog.files
    assert "sha256" not in f.__dict__  # hashed only on demand
    assert f.size == 200 * 2**20


@pytest.mark.parametrize("file_type", FILE_TYPES)
@pytest.mark.parametrize("size", [5, 14, 399, 1024, 65_536, 200_003])
def test_file_bytes_have_the_format_signature(file_type: str, size: int) -> None:
    data = content_bytes(9, 123, file_type, size)
    assert len(data) == size
    assert data == content_bytes(9, 123, file_type, size)
    if size >= 399:  # room for more than the format's fixed bytes
        assert data != content_bytes(9, 124, file_type, size)
    if file_type == "pdf" and size >= 14:
        assert data.startswith(b"%PDF-1.4") and data.endswith(b"%%EOF")
    elif file_type == "msg" and size >= 8:
        assert data.startswith(OLE_MAGIC)
    elif file_type in ("docx", "xlsx") and size >= 4:
        assert data.startswith(ZIP_MAGIC)
    elif file_type == "txt":
        data.decode("ascii")
