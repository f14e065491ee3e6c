"""E-mails end to end: the command line against the simulator's real .msg and .eml files.

Every saved e-mail gets its PDF (whose text says the subject, the sender and the body) and its
attachments by SHA-256; a hostile attachment name stays in its folder; a malformed e-mail
leaves its PO's outcome alone and is named in CONVERSION_ERRORS; a rerun, also with --fresh,
converts nothing twice; --emails off converts nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest
from playwright.async_api import Browser
from pypdf import PdfReader

from coupa_async.emails.fonts import find_fonts
from coupa_async.results.journal import Journal
from coupa_async.sim import SimConfig, Simulator
from coupa_async.sim.catalog import SimPO

from .clikit import cli_env, finish, read_report, start_cli, write_input
from .emailkit import catalog_files, check_conversions, is_conversion_output

pytestmark = pytest.mark.browser

# The recipes whose files include e-mails: English with two attachments, a nested e-mail on a
# requisition, Chinese, Portuguese with a nested e-mail and "../../escape.txt", German with
# "..\\..\\evil.bat", and a malformed .msg.
EMAIL_RECIPES = (
    "click_nav",
    "pr_files_no_po_files",
    "not_pdf_no_pr",
    "many_files",
    "late_fragment_links",
    "pr_late_two_parts_po_not_pdf",
)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def pdf_text(path: Path) -> str:
    return squeeze("".join(page.extract_text() or "" for page in PdfReader(path).pages))


def outputs(out: Path) -> dict[Path, tuple[int, int]]:
    """Every conversion output (PDFs, extracted files) with its inode and mtime."""
    found = {}
    for path in out.rglob("*"):
        inside = any(part.endswith("_attachments") for part in path.relative_to(out).parts)
        if path.is_file() and (inside or is_conversion_output(path)):
            stat = path.stat()
            found[path] = (stat.st_ino, stat.st_mtime_ns)
    return found


async def check_report_links(browser: Browser, out: Path, good: int) -> None:
    """report.html links each converted e-mail's PDF and attachments folder, and they exist."""
    page = await browser.new_page()
    try:
        await page.goto((out / "report.html").as_uri())
        for more in await page.locator(".more-files").all():
            await more.click()  # a PO with many files shows the first ones only
        links = await page.eval_on_selector_all(
            "#po-rows a[href]", "links => links.map(a => [a.textContent, a.href])"
        )
    finally:
        await page.close()
    pdfs = [url2pathname(urlsplit(href).path) for text, href in links if text == "PDF"]
    folders = [url2pathname(urlsplit(href).path) for text, href in links if text == "attachments"]
    # Top-level e-mails only: those of the POs' own folders, not of attachments folders.
    assert len(pdfs) == good, pdfs
    assert all(Path(p).is_file() and p.endswith((".msg.pdf", ".eml.pdf")) for p in pdfs)
    assert folders and all(Path(f).is_dir() and f.endswith("_attachments/") for f in folders)


def emails_of(po: SimPO) -> int:
    return sum(1 for f in catalog_files(po).values() if f.email is not None)


async def test_emails_are_converted_reported_and_never_converted_twice(
    tmp_path: Path, browser: Browser
) -> None:
    config = SimConfig(seed=5, pos=len(EMAIL_RECIPES), recipes=EMAIL_RECIPES)
    async with Simulator(config) as sim:
        pos = sim.catalog.pos
        assert sum(emails_of(po) for po in pos) >= len(EMAIL_RECIPES)
        source = write_input(tmp_path / "pos.csv", [f"PO{po.number}" for po in pos])
        env = cli_env(tmp_path, COUPA_USERNAME=sim.username, COUPA_PASSWORD=sim.password)
        out = tmp_path / "out"
        args = ("run", str(source), "--base-url", sim.base_url, "--out", str(out))
        args += ("--workers", "3")
        code, output = await finish(await start_cli(tmp_path, *args, env=env), timeout=240)
        assert code in (0, 3), output
        assert "Traceback" not in output
        assert "1 e-mail(s) could not be converted" in output, output

        # Each PO: the catalog's outcome and files, and each e-mail converted as it holds.
        journal = Journal.open_read_only(out)
        records = journal.records()
        journal.close()
        for po in pos:
            record = records[f"PO{po.number}"]
            assert record.state == po.expected_outcome, record
            check_conversions(po, record.as_result())

        # The PDFs say what the e-mails say, accents and Chinese intact.
        cjk = bool(find_fonts().fallbacks)
        checked = 0
        for po in pos:
            record = records[f"PO{po.number}"]
            by_sha = catalog_files(po)
            for saved in record.files:
                summary = by_sha[saved.sha256].email
                if summary is None or summary.malformed:
                    continue
                if not cjk and re.search(r"[\u3000-\u9fff]", summary.subject + summary.sender):
                    continue
                text = pdf_text(saved.path.with_name(f"{saved.name}.pdf"))
                for wanted in (summary.subject, summary.sender, summary.body_snippet):
                    assert squeeze(wanted) in text, (saved.name, wanted)
                checked += 1
        assert checked >= 4

        # A hostile attachment name lands inside its attachments folder, nowhere else.
        hostile = [p for p in tmp_path.rglob("*") if "escape" in p.name or "evil" in p.name]
        assert hostile
        assert all(p.parent.name.endswith("_attachments") for p in hostile), hostile
        assert all(p.resolve().is_relative_to(out.resolve()) for p in hostile)

        # The malformed e-mail: its PO keeps its outcome, the report names the file.
        rows = {row["PO_NUMBER"]: row for row in read_report(out / "report.csv")}
        malformed = [
            (po, f)
            for po in pos
            for f in catalog_files(po).values()
            if f.email is not None and f.email.malformed
        ]
        assert len(malformed) == 1
        po, bad = malformed[0]
        row = rows[f"PO{po.number}"]
        assert row["STATUS"] == po.expected_outcome
        (saved_bad,) = [f for f in records[f"PO{po.number}"].files if f.sha256 == bad.sha256]
        assert row["CONVERSION_ERRORS"].startswith(f"{saved_bad.name} could not be read")
        others = [r["CONVERSION_ERRORS"] for n, r in rows.items() if n != f"PO{po.number}"]
        assert others == [""] * (len(rows) - 1)
        html = (out / "report.html").read_text(encoding="utf-8")
        assert "could not be" in html
        # The report's links and the status command, side by side: both only read the run.
        status = await start_cli(tmp_path, "status", "--out", str(out), env=env)
        try:
            await check_report_links(browser, out, good=sum(emails_of(p) for p in pos) - 1)
        finally:
            code, said = await finish(status, timeout=60)
        assert code == 0 and "1 PO(s) have e-mails that could not be converted" in said, said

        # A rerun and a --fresh rerun convert nothing again: same inodes, same times.
        before = outputs(out)
        assert len(before) >= 10
        code, output = await finish(await start_cli(tmp_path, *args, env=env), timeout=240)
        assert code in (0, 3), output
        assert outputs(out) == before
        code, output = await finish(
            await start_cli(tmp_path, *args, "--fresh", env=env), timeout=240
        )
        assert code in (0, 3), output
        assert outputs(out) == before
        rows = {row["PO_NUMBER"]: row for row in read_report(out / "report.csv")}
        assert rows[f"PO{po.number}"]["CONVERSION_ERRORS"]  # still said after --fresh


@pytest.mark.parametrize("mode", ["off", "pdf"])
async def test_emails_off_converts_nothing_and_pdf_extracts_nothing(
    tmp_path: Path, mode: str
) -> None:
    config = SimConfig(seed=6, pos=2, recipes=("click_nav", "not_pdf_no_pr"))
    async with Simulator(config) as sim:
        source = write_input(tmp_path / "pos.csv", [f"PO{po.number}" for po in sim.catalog.pos])
        env = cli_env(tmp_path, COUPA_USERNAME=sim.username, COUPA_PASSWORD=sim.password)
        out = tmp_path / "out"
        args = ("run", str(source), "--base-url", sim.base_url, "--out", str(out))
        code, output = await finish(
            await start_cli(tmp_path, *args, "--emails", mode, env=env), timeout=240
        )
        assert code == 0, output
        mails = [p for p in out.rglob("*") if p.suffix.lower() in (".msg", ".eml")]
        assert len(mails) == 2
        pdfs = [p for p in out.rglob("*.pdf") if is_conversion_output(p)]
        folders = [p for p in out.rglob("*_attachments") if p.is_dir()]
        assert folders == []
        assert len(pdfs) == (0 if mode == "off" else 2)
