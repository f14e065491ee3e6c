"""The HTML run report, opened from disk in a real Chromium: offline, safe, filterable, linked.

Every test writes real files under ``tmp_path`` so that the report's links can be resolved and
checked against the disk, then opens ``file://…/report.html`` with every request outside the file
aborted and recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import pytest
from playwright.async_api import Browser, Page, Route

import coupa_async.tabular.atomic as atomic_module
from coupa_async.htmlreport import (
    REPORT_HTML_NAME,
    ReportAttachment,
    ReportData,
    ReportFile,
    ReportPo,
    ReportRun,
    render_report,
    write_html_report,
)
from coupa_async.htmlreport.build import report_data
from coupa_async.htmlreport.charts import (
    MAX_POINTS,
    NO_SAMPLES,
    RATE_WINDOW_S,
    per_minute,
    render_charts,
)
from coupa_async.htmlreport.render import embedded_json, local_href, web_url
from coupa_async.results.journal import Journal
from coupa_async.results.layout import safe_file_name, safe_folder_part
from coupa_async.results.result import FoundAttachment, Outcome, PoResult, SavedFile
from coupa_async.running.metrics import MetricSample, RunEvent

browser_test = pytest.mark.browser

XSS_SUPPLIER = "<img src=x onerror=alert(1)>"
XSS_FILE = "</script><script>alert(1)</script>.pdf"
ODD_FILE = "Offer #2 100% – 契約 é.txt"  # spaces, '#', '%' and non-ASCII
SUCCESS = {"COMPLETED", "NO_ATTACHMENTS"}
APAC = "APAC #1 100%"  # a folder name with '#', '%'; the other region is not ASCII


@dataclass(frozen=True)
class Spec:
    label: str
    outcome: str
    supplier: str
    files: tuple[str, ...] = ()
    message: str = ""
    po_url: str = ""
    region: str = "Europe – Zürich"


SPECS = (
    Spec("4500001", "COMPLETED", "Acme GmbH", ("Invoice 1.pdf", ODD_FILE), region=APAC),
    Spec("4500002", "FAILED", XSS_SUPPLIER, (XSS_FILE,), "Timeout <b>30 s</b> & gave up"),
    Spec("4500003", "PARTIAL", "Beta & Co", ("Quote.pdf",), "1 of 2 not saved: HTTP 500",
         po_url="javascript:alert(1)"),
    Spec("4500004", "NO_ATTACHMENTS", "Acme GmbH", region=APAC),
    Spec("4500005", "PO_NOT_FOUND", "Beta & Co", message="Coupa shows no PO 4500005"),
    Spec("4500006", "PR_NOT_ACCESSIBLE", "Zeta Ltd", ("Spec sheet.pdf",), "requisition: 403"),
    Spec("4500007", "PENDING", "Zeta Ltd", message="not processed yet"),
    Spec("12a", "INVALID", "", message="'12a' is not a PO number"),
    Spec("4500009", "COMPLETED", "Zeta Ltd", ("Delivery note.docx",)),
)  # fmt: skip
EXPECTED_FILES = sum(len(spec.files) for spec in SPECS)


def make_po(out: Path, spec: Spec, at: float) -> ReportPo:
    """A PO as the journal would describe it, its folder and files really on disk."""
    if spec.outcome in ("PENDING", "INVALID"):
        folder = None
    else:
        parts = (safe_folder_part(spec.region), safe_folder_part(spec.supplier))
        folder = f"{'/'.join(parts)}/{spec.label}_{spec.outcome}"
        (out / folder).mkdir(parents=True, exist_ok=True)
    files = []
    for index, name in enumerate(spec.files):
        assert folder is not None
        href = f"{folder}/{safe_file_name(name)}"
        (out / href).write_bytes(b"%PDF-1.4 " + name.encode() * (index + 1))
        source = "PR" if spec.outcome == "PR_NOT_ACCESSIBLE" else "PO"
        files.append(ReportFile(name, href, (out / href).stat().st_size, source))
    url = spec.po_url or f"https://acme.coupahost.com/order_headers/{spec.label}"
    return ReportPo(
        label=spec.label,
        outcome=spec.outcome,
        supplier=spec.supplier,
        levels=(spec.region,),
        folder_href=folder,
        message=spec.message,
        po_url="" if spec.outcome == "INVALID" else url,
        attempts=1,
        finished_at="" if folder is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)),
        found=len(spec.files) + (1 if spec.outcome == "PARTIAL" else 0),
        files=tuple(files),
    )


def make_data(out: Path, *, samples: bool = True) -> ReportData:
    now = time.time()
    pos = [make_po(out, spec, now - 60 * (len(SPECS) - n)) for n, spec in enumerate(SPECS)]
    metrics = [
        MetricSample(
            at=now - 600 + 15 * k, settled=k // 5, bytes=k * 10_000, workers=min(k, 4),
            target_workers=4, pss_mb=500 + k, budget_mb=1500, queued=40 - k, waiting_retry=0,
            paused=20 <= k < 23,
        )
        for k in range(40)
    ]  # fmt: skip
    events = [
        RunEvent(now - 500, "scaled", "4 → 6 workers <b>"),
        RunEvent(now - 300, "host_paused", "Coupa asked to wait 30 s"),
        RunEvent(now - 100, "session_renewed", "signed in again"),
    ]
    return ReportData(
        title="Audit <Q3> & friends",
        generated_at=now,
        run=ReportRun("finished", now - 600, now),
        pos=pos,
        samples=metrics if samples else (),
        events=events if samples else (),
        level_names=("Region",),
    )


XSS_PLACE = "comment by <b>Jane</b> at 01/03/24 10:22"
XSS_TEXT = "</script><img src=x onerror=alert(1)>\nDeliver to gate 4, ask for =Jane"
LINK = "https://supplier.example/spec?a=1&b=<2>"


def with_attachments(out: Path, data: ReportData) -> ReportData:
    """The first PO's pages showed its two files, a link, a script address, a text and a file
    that could not be saved: its manifest rows, hostile texts included."""
    po = data.pos[0]
    found = [
        ReportAttachment(
            file.source,
            "header" if n == 0 else f"line {n}",
            "file",
            file.name,
            f"https://acme.coupahost.com/attachments/{n}",
            href=file.href,
            size=file.size,
            sha256=hashlib.sha256((out / file.href).read_bytes()).hexdigest(),
        )
        for n, file in enumerate(po.files)
    ]
    found += [
        ReportAttachment("PO", "line 2", "url", XSS_FILE, LINK),
        ReportAttachment("PO", "line 3", "url", "Sneaky", "javascript:alert(1)"),
        ReportAttachment("PR", XSS_PLACE, "text", "", XSS_TEXT),
        ReportAttachment("PR", "requisition line 1", "file", "Lost.pdf", "https://t/9"),
    ]
    return replace(data, pos=[replace(po, attachments=tuple(found)), *data.pos[1:]])


@dataclass
class Opened:
    page: Page
    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.console_errors == []
        assert self.page_errors == []
        assert self.aborted == []
        assert self.dialogs == []
        assert self.requests and set(self.requests) == {self.url}


@asynccontextmanager
async def opened(browser: Browser, path: Path, *, scripts: bool = True) -> AsyncIterator[Opened]:
    """``path`` open in a fresh context; anything but the file itself is aborted and recorded."""
    context = await browser.new_context(
        java_script_enabled=scripts, viewport={"width": 1280, "height": 900}
    )
    try:
        page = await context.new_page()
        state = Opened(page, path.as_uri())

        async def guard(route: Route) -> None:
            if route.request.url.startswith("file:"):
                await route.continue_()
            else:
                state.aborted.append(route.request.url)
                await route.abort()

        await context.route("**/*", guard)
        page.on("request", lambda request: state.requests.append(request.url))
        page.on("pageerror", lambda error: state.page_errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                state.console_errors.append(message.text) if message.type == "error" else None
            ),
        )

        async def on_dialog(dialog: object) -> None:
            state.dialogs.append(getattr(dialog, "message", ""))
            await dialog.dismiss()  # type: ignore[attr-defined]

        page.on("dialog", on_dialog)
        await page.goto(state.url)
        if scripts:
            await page.wait_for_function("() => document.body.dataset.ready === '1'")
        yield state
    finally:
        await context.close()


async def row_labels(page: Page) -> list[str]:
    return await page.eval_on_selector_all("#po-rows tr", "rows => rows.map(r => r.dataset.po)")


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, ReportData]:
    out = tmp_path / "out"
    out.mkdir()
    data = make_data(out)
    return write_html_report(out, data), data


# ---------------------------------------------------------------------------------------------
# In Chromium


@browser_test
async def test_the_report_opens_offline_with_no_error_and_no_request(
    browser: Browser, report: tuple[Path, ReportData], tmp_path: Path
) -> None:
    path, _ = report
    assert path.name == REPORT_HTML_NAME
    async with opened(browser, path) as state:
        assert len(await row_labels(state.page)) == len(SPECS)
        await state.page.fill("#po-filter", "acme")
        await state.page.click("#po-table th[data-key=supplier] button")
        artifacts = Path(os.environ.get("TEST_ARTIFACTS_DIR", tmp_path))
        artifacts.mkdir(parents=True, exist_ok=True)
        await state.page.fill("#po-filter", "")
        await state.page.screenshot(path=artifacts / "report.png", full_page=True)
        state.assert_clean()
        csp = await state.page.get_attribute("meta[http-equiv=Content-Security-Policy]", "content")
        assert csp is not None and "default-src 'none'" in csp
    assert (artifacts / "report.png").stat().st_size > 10_000


@browser_test
async def test_typing_filters_the_rows_and_headers_sort_them(
    browser: Browser, report: tuple[Path, ReportData]
) -> None:
    path, _ = report
    async with opened(browser, path) as state:
        page = state.page
        assert await row_labels(page) == [spec.label for spec in SPECS]
        await page.fill("#po-filter", "acme")
        assert await row_labels(page) == ["4500001", "4500004"]
        await page.fill("#po-filter", "契約")  # a file name
        assert await row_labels(page) == ["4500001"]
        await page.fill("#po-filter", "http 500")  # a message, two terms
        assert await row_labels(page) == ["4500003"]
        await page.fill("#po-filter", "zeta completed")  # supplier and outcome
        assert await row_labels(page) == ["4500009"]
        await page.fill("#po-filter", "no such thing")
        assert await row_labels(page) == []
        assert "0 matching" in (await page.text_content("#po-status") or "")
        await page.fill("#po-filter", "")
        await page.select_option("#po-outcome", "attention")
        expected = [spec.label for spec in SPECS if spec.outcome not in SUCCESS]
        assert await row_labels(page) == expected
        await page.select_option("#po-outcome", "")

        await page.click("#po-table th[data-key=supplier] button")
        by_supplier = ["12a", "4500002", "4500001", "4500004", "4500003", "4500005"]
        by_supplier += ["4500006", "4500007", "4500009"]
        assert await row_labels(page) == by_supplier
        assert await page.get_attribute("th[data-key=supplier]", "aria-sort") == "ascending"
        await page.click("#po-table th[data-key=supplier] button")
        assert await row_labels(page) == by_supplier[::-1]
        await page.click("#po-table th[data-key=label] button")
        assert await row_labels(page) == ["12a", *[s.label for s in SPECS if s.label != "12a"]]

        await page.click("#gp-0 button.group-pick[data-value='Beta & Co']")
        assert await row_labels(page) == ["4500003", "4500005"]
        await page.click("#po-group button")
        assert len(await row_labels(page)) == len(SPECS)
        state.assert_clean()


@browser_test
async def test_a_long_list_shows_a_window_of_rows_and_more_on_request(
    browser: Browser, tmp_path: Path
) -> None:
    pos = [ReportPo(f"{4_600_000 + n}", "COMPLETED", f"Supplier {n % 7}") for n in range(250)]
    data = ReportData("Many", time.time(), ReportRun(), pos)
    async with opened(browser, write_html_report(tmp_path, data)) as state:
        page = state.page
        assert len(await row_labels(page)) == 100
        await page.click("#po-more")
        assert len(await row_labels(page)) == 200
        assert await page.text_content("#po-more") == "Show 50 more"
        await page.click("#po-more")
        assert await row_labels(page) == [po.label for po in pos]
        assert await page.locator("#po-more").is_hidden()
        await page.fill("#po-filter", "supplier 3")  # every term, anywhere in the PO
        expected = [po.label for po in pos if "3" in po.label + po.supplier]
        assert await row_labels(page) == expected
        assert await page.text_content("#po-status") == (
            f"Showing {len(expected)} of {len(expected)} matching POs (250 in all)"
        )
        assert await page.locator("#po-more").is_hidden()
        state.assert_clean()


@browser_test
async def test_every_file_and_folder_link_resolves_to_the_disk(
    browser: Browser, report: tuple[Path, ReportData]
) -> None:
    path, data = report
    async with opened(browser, path) as state:
        page = state.page
        hrefs = await page.eval_on_selector_all(
            "#po-rows a[href], #attention-table a[href]",
            "links => links.map(a => [a.getAttribute('href'), a.textContent])",
        )
        local = [(href, text) for href, text in hrefs if not href.startswith("https:")]
        names = {text for _, text in local}
        assert {ODD_FILE, XSS_FILE, "Invoice 1.pdf", "folder"} <= names
        file_links = [href for href, text in local if text != "folder"]
        assert len(file_links) == EXPECTED_FILES
        folders = sum(1 for po in data.pos if po.folder_href)
        attention_folders = sum(
            1 for po in data.pos if po.folder_href and po.outcome not in SUCCESS
        )
        assert len(local) - len(file_links) == folders + attention_folders
        for href, text in local:
            target = Path(url2pathname(urlsplit(urljoin(state.url, href)).path))
            assert target.exists(), (href, text)
            assert target.is_dir() == (text == "folder")
            assert path.parent in target.parents
        odd = next(href for href, text in local if text == ODD_FILE)
        assert " " not in odd and "#" not in odd.replace("%23", "")
        # The browser follows the link to the very file, not to a fragment or a query.
        await page.click(f"#po-rows a:text-is('{ODD_FILE}')")
        await page.wait_for_url(re.compile(r".*\.txt$"))
        assert Path(url2pathname(urlsplit(page.url).path)).name == safe_file_name(ODD_FILE)
        assert state.aborted == [] and state.page_errors == []


@browser_test
async def test_hostile_names_are_shown_as_text(
    browser: Browser, report: tuple[Path, ReportData]
) -> None:
    path, _ = report
    async with opened(browser, path) as state:
        page = state.page
        await page.wait_for_timeout(200)  # time for an injected handler to fire, if any
        assert await page.locator("img").count() == 0
        assert await page.locator("img[src=x]").count() == 0
        assert await page.locator(f"#po-rows td:text-is('{XSS_SUPPLIER}')").is_visible()
        assert await page.locator(f"#attention-table td:text-is('{XSS_SUPPLIER}')").is_visible()
        assert await page.locator(f"#po-rows a:text-is('{XSS_FILE}')").is_visible()
        assert await page.locator("h1").text_content() == "Audit <Q3> & friends"
        assert await page.locator("script").count() == 2
        state.assert_clean()


@browser_test
async def test_the_attention_table_lists_exactly_the_pos_that_need_it(
    browser: Browser, report: tuple[Path, ReportData]
) -> None:
    path, _ = report
    async with opened(browser, path) as state:
        rows = await state.page.eval_on_selector_all(
            "#attention-table tbody tr",
            "rows => rows.map(r => [r.dataset.po, r.cells[2].textContent, r.cells[3].textContent])",
        )
        expected = {
            (spec.label, spec.outcome, spec.message)
            for spec in SPECS
            if spec.outcome not in SUCCESS
        }
        assert len(rows) == len(expected)
        assert {tuple(row) for row in rows} == expected
        order = [row[1] for row in rows]
        assert order[0] == "FAILED" and order[-1] == "PENDING"
        heading = await state.page.text_content("#attention h2")
        assert heading == f"Needs attention ({len(expected)})"


@browser_test
async def test_only_http_addresses_become_links(
    browser: Browser, report: tuple[Path, ReportData]
) -> None:
    path, _ = report
    async with opened(browser, path) as state:
        page = state.page
        assert await page.locator("[href^='javascript' i]").count() == 0
        for table in ("#po-rows", "#attention-table"):
            partial = page.locator(f"{table} tr[data-po='4500003'] td.po")
            assert await partial.text_content() == "4500003"
            assert await partial.locator("a").count() == 0
            failed = page.locator(f"{table} tr[data-po='4500002'] td.po a")
            assert await failed.get_attribute("href") == (
                "https://acme.coupahost.com/order_headers/4500002"
            )
        state.assert_clean()


@browser_test
async def test_a_pos_attachments_show_as_its_manifest_rows(
    browser: Browser, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    data = with_attachments(out, make_data(out))
    found = data.pos[0].attachments
    async with opened(browser, write_html_report(out, data)) as state:
        page = state.page
        cell = page.locator("#po-rows tr[data-po='4500001'] td.files")
        assert await cell.locator("li").count() == 4
        more = cell.locator("button.more-files")
        assert await more.text_content() == "+ 2 more attachments"
        await more.click()
        items = cell.locator("li")
        assert await items.count() == len(found)
        texts = await items.evaluate_all("items => items.map(li => li.textContent)")
        for text, attachment in zip(texts, found, strict=True):
            assert text.startswith(attachment.place)

        # A saved file: its name linked to the file on disk, its size, its SHA-256 shortened.
        for index, saved in enumerate(found[:2]):
            item = items.nth(index)
            assert await item.locator(".kind").text_content() == "file"
            href = await item.locator("a").first.get_attribute("href")
            assert href is not None and await item.locator("a").first.text_content() == saved.name
            target = Path(url2pathname(urlsplit(urljoin(state.url, href)).path))
            assert target.is_file() and target.stat().st_size == saved.size
            sha = item.locator(".sha")
            assert await sha.text_content() == saved.sha256[:12] + "…"
            assert await sha.get_attribute("title") == f"SHA-256 {saved.sha256}"
            assert "https://acme.coupahost.com/attachments" not in texts[index]

        # A URL: a link that opens apart from the report; a script address stays text.
        link = items.nth(2).locator(".value a")
        assert await link.get_attribute("href") == LINK
        assert await link.get_attribute("rel") == "noopener noreferrer"
        assert await link.get_attribute("target") == "_blank"
        assert await items.nth(2).locator(".kind").text_content() == "URL"
        assert XSS_FILE in texts[2] and await items.nth(2).locator("a").count() == 1
        assert await items.nth(3).locator("a").count() == 0
        assert await items.nth(3).locator(".value").text_content() == "javascript:alert(1)"

        # A text, shown as text; a file that could not be saved, said so, with no link.
        assert await items.nth(4).locator(".value").text_content() == XSS_TEXT
        assert await items.nth(4).locator(".place").text_content() == XSS_PLACE
        assert await items.nth(4).locator(".kind").text_content() == "text"
        assert await items.nth(5).locator(".unsaved").text_content() == "not saved"
        assert await items.nth(5).locator("a").count() == 1  # its address, not its name
        assert await items.nth(5).locator(".value a").get_attribute("href") == "https://t/9"

        await page.wait_for_timeout(200)  # time for an injected handler to fire, if any
        assert await page.locator("img, #po-rows b, [href^='javascript' i]").count() == 0
        await page.fill("#po-filter", "gate 4")  # a text attachment is searched too
        assert await row_labels(page) == ["4500001"]
        state.assert_clean()


@browser_test
async def test_charts_mark_every_event_or_say_there_are_no_samples(
    browser: Browser, report: tuple[Path, ReportData], tmp_path: Path
) -> None:
    path, data = report
    async with opened(browser, path) as state:
        charts = state.page.locator("svg.chart")
        assert await charts.count() == 3  # rate, workers, memory
        for index in range(3):
            markers = charts.nth(index).locator(".event-marker")
            assert await markers.count() == len(data.events)
            tips = await markers.locator("title").all_text_contents()
            assert any("4 → 6 workers <b>" in tip for tip in tips)
        assert await state.page.locator("svg.chart polyline").count() >= 5
        state.assert_clean()

    bare = tmp_path / "bare"
    bare.mkdir()
    empty = write_html_report(bare, make_data(bare, samples=False))
    async with opened(browser, empty) as state:
        assert await state.page.locator("svg.chart").count() == 0
        assert await state.page.locator(".no-charts").text_content() == NO_SAMPLES
        state.assert_clean()


@browser_test
async def test_without_scripts_the_tiles_groups_and_attention_table_still_show(
    browser: Browser, report: tuple[Path, ReportData]
) -> None:
    path, _ = report
    async with opened(browser, path, scripts=False) as state:
        page = state.page
        assert await page.locator("#tile-pos .big").text_content() == str(len(SPECS))
        assert await page.locator("#tile-files .big").text_content() == str(EXPECTED_FILES)
        assert await page.locator("#tile-duration .big").text_content() == "10 min"
        attention = sum(1 for spec in SPECS if spec.outcome not in SUCCESS)
        assert await page.locator("#attention-table tbody tr").count() == attention
        suppliers = len({spec.supplier for spec in SPECS})
        assert await page.locator("#gp-0 tbody tr").count() == suppliers
        assert await page.locator("#gp-0").is_visible()
        await page.click("label[for=grp-1]")  # the Region switch needs no script either
        assert await page.locator("#gp-1").is_visible()
        assert await page.locator("#gp-1 tbody tr").count() == 2
        assert not await page.locator("#po-table").is_visible()
        state.assert_clean()


# ---------------------------------------------------------------------------------------------
# Without a browser


def test_tiles_count_pending_and_running(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    running = replace(data, run=ReportRun("running", data.generated_at - 90))
    html = render_report(running)
    assert re.search(r'id="tile-duration"><h3>[^<]*</h3><div class="big">running<', html)
    assert "for 1 min 30 s so far" in html
    assert "7 settled · 1 pending · 1 invalid input rows" in html


@pytest.mark.parametrize(
    ("path", "href"),
    [
        ("Acme GmbH/PO 1_COMPLETED/a b.pdf", "Acme%20GmbH/PO%201_COMPLETED/a%20b.pdf"),
        ("S/#1 100%?.pdf", "S/%231%20100%25%3F.pdf"),
        ("S/契約 é.pdf", "S/%E5%A5%91%E7%B4%84%20%C3%A9.pdf"),
        ("S/javascript:alert(1)", "S/javascript%3Aalert(1)"),
        ("S/a\udcff.pdf", "S/a%FF.pdf"),  # not UTF-8 on disk: its own byte
        ("S/PO1_COMPLETED/", "S/PO1_COMPLETED"),
    ],
)
def test_local_hrefs_encode_every_segment(path: str, href: str) -> None:
    assert local_href(path) == href


@pytest.mark.parametrize(
    "path",
    ["", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "C:/Windows", "a/..\\..\\b", "a\\.."],
)
def test_local_hrefs_refuse_anything_but_plain_relative_paths(path: str) -> None:
    assert local_href(path) is None


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://x.coupahost.com/order_headers/1", True),
        ("HTTP://x.example/a?b=1#c", True),
        ("javascript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("//evil.example/x", False),
        ("https:///nohost", False),
        ("file:///etc/passwd", False),
    ],
)
def test_only_http_urls_pass(url: str, ok: bool) -> None:
    assert (web_url(url) == url) is ok


def test_the_embedded_json_cannot_end_its_script_element(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    poison = replace(data.pos[0], message="</script><!-- \u2028 \u2029 & <b>")
    data = replace(data, pos=[poison, *data.pos[1:]])
    text = embedded_json(data)
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text)["pos"][0][5] == "</script><!-- \u2028 \u2029 & <b>"
    html = render_report(data)
    assert html.count("</script>") == 2
    assert XSS_SUPPLIER not in html and "onerror=alert" in html  # escaped, still readable


def test_charts_smooth_the_rate_and_draw_at_most_600_points_a_line() -> None:
    # An hour thinned to one sample per 10 s, then one per second: 2 POs settled a second.
    times = [1000.0 + 10 * k for k in range(360)] + [4600.0 + k for k in range(3640)]
    samples = [
        MetricSample(at, int(2 * (at - 1000)), 0, 3, 4, 700, 1000, 0, 0, False) for at in times
    ]
    rates = per_minute(samples, RATE_WINDOW_S)
    assert len(rates) == len(samples) - 1
    assert all(abs(rate - 120.0) < 1e-6 for _, rate in rates)
    html = render_charts(samples, [RunEvent(500.0, "unreachable", "before the first sample")])
    lines = re.findall(r'<polyline class="line ([^"]+)" points="([^"]+)"', html)
    assert sorted(css for css, _ in lines) == ["s-budget", "s-memory", "s-rate", "s-target",
                                               "s-workers"]  # fmt: skip
    for _, points in lines:
        assert 100 < len(points.split()) <= MAX_POINTS
    assert html.count('class="event-marker ev-unreachable"') == 3
    assert "<title>" in html and "before the first sample" in html


def test_names_that_are_not_text_still_give_a_valid_document(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    odd = ReportFile("bad\udcff\x01.pdf", "S/PO1_COMPLETED/bad\udcff.pdf", 1, "PO")
    po = replace(data.pos[0], supplier="A\x01B\r\nC", folder_href="S/PO1_COMPLETED", files=(odd,))
    html = render_report(replace(data, pos=[po]))
    html.encode("utf-8")  # no lone surrogate left
    assert "A\ufffdB" in html and "\x01" not in html
    payload = json.loads(embedded_json(replace(data, pos=[po])))
    assert payload["suppliers"] == ["A\ufffdB\nC"]
    assert payload["pos"][0][10] == [["bad\ufffd\ufffd.pdf", 1, 0, "bad%FF.pdf"]]


def test_attachment_entries_point_at_their_files_and_carry_no_saved_files_address(
    tmp_path: Path,
) -> None:
    data = with_attachments(tmp_path, make_data(tmp_path))
    entries = json.loads(embedded_json(data))["pos"][0][11]
    sha = data.pos[0].attachments[0].sha256
    size = data.pos[0].files[0].size
    assert entries == [
        [0, "header", "Invoice 1.pdf", "", 0, size, sha],  # its file: the PO's first
        [
            0,
            "line 1",
            ODD_FILE,
            "",
            1,
            data.pos[0].files[1].size,
            data.pos[0].attachments[1].sha256,
        ],
        [1 | 8, "line 2", XSS_FILE, LINK],  # 8: a web address the script may link
        [1, "line 3", "Sneaky", "javascript:alert(1)"],
        [2 | 4, XSS_PLACE, "", XSS_TEXT],  # 4: from the requisition
        [0 | 4 | 8, "requisition line 1", "Lost.pdf", "https://t/9"],
    ]
    assert json.loads(embedded_json(make_data(tmp_path / "x")))["pos"][0][11] == 0
    # A saved file missing from the PO's files (never so from the journal) keeps its own link.
    alone = replace(data.pos[0], files=())
    entry = json.loads(embedded_json(replace(data, pos=[alone])))["pos"][0][11][1]
    assert entry[4:] == [
        -1,
        data.pos[0].files[1].size,
        entry[6],
        local_href(data.pos[0].files[1].href),
    ]


def test_the_reports_attachments_come_from_the_journal(tmp_path: Path) -> None:
    folder = tmp_path / "Acme" / "PO1_COMPLETED"
    folder.mkdir(parents=True)
    (folder / "a.pdf").write_bytes(b"%PDF")
    digest = hashlib.sha256(b"%PDF").hexdigest()
    result = PoResult("PO1", Outcome.COMPLETED, supplier="Acme", folder=folder)
    result.files = [SavedFile("a.pdf", folder / "a.pdf", 4, digest, "PO", "https://t/1")]
    result.attachments = [
        FoundAttachment("PO", "header", "file", "a.pdf", "https://t/1", "a.pdf", 4, digest),
        FoundAttachment("PO", "line 1", "url", "Portal", "https://p.example/"),
    ]
    journal = Journal.open(tmp_path)
    journal.record(result)
    pos = report_data(journal).pos
    journal.close()
    assert pos[0].attachments == (
        ReportAttachment(
            "PO", "header", "file", "a.pdf", "https://t/1", "Acme/PO1_COMPLETED/a.pdf", 4, digest
        ),
        ReportAttachment("PO", "line 1", "url", "Portal", "https://p.example/"),
    )
    assert pos[0].files[0].href == pos[0].attachments[0].href


def test_the_report_is_written_whole_and_a_locked_one_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_data(tmp_path)
    path = write_html_report(tmp_path, data)
    assert path == tmp_path / REPORT_HTML_NAME
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [REPORT_HTML_NAME]

    real_replace = os.replace

    def locked(source: Path, target: Path) -> None:
        if Path(target) == path:
            raise PermissionError("in use by another program")
        real_replace(source, target)

    monkeypatch.setattr(atomic_module.os, "replace", locked)
    other = write_html_report(tmp_path, data)
    assert other != path and other.parent == tmp_path
    assert re.fullmatch(r"report-\d{8}-\d{6}\.html", other.name)
    assert other.read_bytes() == path.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
