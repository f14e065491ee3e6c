"""audit --api: a real finished run proves clean against the REST API; planted damage is found;
a client without credentials, refused or lacking a scope ends in one sentence (exit 2)."""

from __future__ import annotations

import asyncio
import math
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coupa_async.api import ApiAttachment
from coupa_async.audit import AuditReport, Check, audit
from coupa_async.audit.api_sight import file_findings, match_files
from coupa_async.audit.records import read_records
from coupa_async.results.journal import JOURNAL_DIR, JOURNAL_NAME, PoRecord
from coupa_async.results.layout import safe_file_name
from coupa_async.running.table_run import run_table
from coupa_async.settings import Settings
from coupa_async.sim import SimConfig, Simulator
from coupa_async.sim.api import SCOPE_COMMENT, SCOPE_COMMON, SCOPE_PO, SCOPE_PR

from .clikit import cli_env, finish, start_cli
from .runkit import input_table_for, settings_for

# Ten POs, each a different way the API and the pages meet: files in header, lines and
# comments; URL and text attachments; the requisition fallback (files, comments, an error
# page); twin names; an internal id that is another PO's number; an error page; none at all;
# a file whose address answers an HTML page (a problem the run recorded).
RECIPES = (
    "line_and_comment_files",
    "url_and_text",
    "pr_lines_comments",
    "pr_files_no_po_files",
    "duplicate_names",
    "id_other_po",
    "error_http_404",
    "pr_error_no_files",
    "no_attachments",
    "partial_html_instead",
)
BROWSER_FIXTURES = ("finished",)  # a real run: tests using it are marked browser
pytestmark = pytest.mark.xdist_group("audit_api")  # one process makes the run once


@dataclass
class FinishedRun:
    sim: Simulator
    settings: Settings
    labels: dict[str, str]  # recipe -> PO label

    def copy(self, dest: Path) -> Settings:
        shutil.copytree(self.settings.out, dest)
        return self.settings.model_copy(update={"out": dest})


@pytest.fixture(scope="module")
async def finished(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FinishedRun]:
    """One run through the browser, finished; the simulator's API serves the same catalog."""
    tmp = tmp_path_factory.mktemp("audit_api")
    async with Simulator(SimConfig(seed=29, pos=len(RECIPES), recipes=RECIPES)) as sim:
        settings = settings_for(
            sim,
            tmp,
            workers=3,
            **{
                "api.client_id": sim.config.api_client_id,
                "api.client_secret": sim.config.api_client_secret,
            },
        )
        table = input_table_for(tmp / "pos.csv", sim)
        await run_table(settings, table, stop=asyncio.Event(), show=False)
        labels = {po.recipe: f"PO{po.number}" for po in sim.catalog.pos}
        records = read_records(settings.out)
        assert {records[labels[r]].state for r in RECIPES} >= {
            "COMPLETED",
            "PARTIAL",
            "PO_NOT_FOUND",
            "PR_NOT_ACCESSIBLE",
            "NO_ATTACHMENTS",
        }
        yield FinishedRun(sim, settings, labels)


def api_env(tmp_path: Path, sim: Simulator, **extra: str) -> dict[str, str]:
    credentials = {
        "COUPA_API__CLIENT_ID": sim.config.api_client_id,
        "COUPA_API__CLIENT_SECRET": sim.config.api_client_secret,
    }
    return cli_env(tmp_path, **{**credentials, **extra})


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in [root, *root.rglob("*")]}


def api_findings(report: AuditReport) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for item in report.disagreements:
        if item.check is Check.API:
            found.setdefault(item.po, []).append((item.journal, item.found))
    return found


async def test_a_finished_run_proves_clean_against_the_api(
    finished: FinishedRun, tmp_path: Path
) -> None:
    sim = finished.sim
    sim.reset_stats()
    report = await audit(finished.settings, api=True, sample=len(RECIPES), seed=4)
    assert report.disagreements == [] and report.unchecked == [], (
        report.disagreements,
        report.unchecked,
    )
    assert report.api and not report.online
    assert report.api_checked == report.api_planned == len(RECIPES)
    assert report.api_sampled >= 6 and report.api_files_hashed >= 12
    assert report.exit_code == 0
    api = sim.stats.snapshot()["api"]
    assert api["tokens_issued"] == 1 and api["requests_during_retry_after"] == 0
    assert api["peak_per_second"] <= math.ceil(sim.config.api_rate_per_s) + sim.config.api_burst

    # The same through the command line: exit 0, the secret nowhere, nothing changed.
    out = finished.settings.out
    before = snapshot(out)
    args = ["audit", "--api", "--out", str(out), "--base-url", sim.base_url, "--seed", "2"]
    code, output = await finish(await start_cli(tmp_path, *args, env=api_env(tmp_path, sim)))
    assert code == 0, output
    assert f"API: {len(RECIPES)} of {len(RECIPES)} PO(s) compared with Coupa's API" in output
    assert "The output agrees with the journal." in output
    assert sim.config.api_client_secret not in output
    assert snapshot(out) == before


async def test_planted_missing_extra_renamed_files_and_a_lost_link_are_found(
    finished: FinishedRun, tmp_path: Path
) -> None:
    settings = finished.copy(tmp_path / "out")
    records = read_records(settings.out)
    missing, extra, renamed, linked = (
        finished.labels[r]
        for r in ("line_and_comment_files", "pr_lines_comments", "duplicate_names", "url_and_text")
    )
    gone = records[missing].files[-1]  # a comment's or a line's file
    gone.path.unlink()
    folder = records[extra].folder
    assert folder is not None
    (folder / "Planted.pdf").write_bytes(b"%PDF-1.4 not from Coupa\n")
    moved = records[renamed].files[0]
    moved.path.rename(moved.path.with_name("Renamed by hand.bin"))
    db = sqlite3.connect(settings.out / JOURNAL_DIR / JOURNAL_NAME)
    with db:
        position, url = db.execute(
            "SELECT position, value FROM attachments WHERE label = ? AND kind = 'url'", (linked,)
        ).fetchone()
        db.execute("DELETE FROM attachments WHERE label = ? AND position = ?", (linked, position))
    db.close()

    report = await audit(settings, api=True, sample=0, seed=1)
    found = api_findings(report)
    assert set(found) == {missing, extra, renamed, linked}, found
    assert found[missing] == [
        (
            f"COMPLETED: no {gone.name} saved (0 problem(s) recorded)",
            found[missing][0][1],
        )
    ]
    assert found[missing][0][1].startswith(f"the API lists {gone.name}: {gone.size:,} bytes")
    assert found[extra] == [
        ("Planted.pdf (24 bytes) saved", "the API lists no such file of this PO or its requisition")
    ]
    # Its size matches, its name does not: its bytes, downloaded from the API, settle it.
    assert found[renamed] == [
        ("Renamed by hand.bin saved", found[renamed][0][1]),
    ]
    assert found[renamed][0][1].startswith(f"the API names these bytes {moved.name}")
    assert found[linked] == [
        (f"no url attachment {url!r} in the manifest", "the API lists it on the PO")
    ]
    # The offline part sees the journal's files gone; the extra file is the API's finding alone.
    offline = {(i.po, i.check) for i in report.disagreements if i.check is not Check.API}
    assert offline == {(missing, Check.FILE), (renamed, Check.FILE)}
    assert report.unchecked == [] and report.exit_code == 3

    args = ["audit", "--api", "--out", str(settings.out), "--base-url", finished.sim.base_url]
    env = api_env(tmp_path, finished.sim)
    code, output = await finish(await start_cli(tmp_path, *args, "--sample", "0", env=env))
    assert code == 3, output
    assert "does NOT match" in output and all(label in output for label in found)


async def test_pos_the_api_will_not_show_are_unchecked_with_the_reason(
    finished: FinishedRun,
) -> None:
    sim = finished.sim
    forbidden, hidden = finished.labels["url_and_text"], finished.labels["duplicate_names"]
    lacking_pr = finished.labels["pr_lines_comments"]
    sim.config.api_forbidden_pos = (forbidden[2:],)
    sim.config.api_hidden_pos = (hidden[2:],)
    # A client asking for no requisitions: those POs' requisition files go unchecked.
    scopes = [SCOPE_PO, SCOPE_COMMENT, SCOPE_COMMON]
    settings = finished.settings.model_copy(
        update={"api": finished.settings.api.model_copy(update={"scopes": scopes})}
    )
    try:
        report = await audit(settings, api=True, sample=0, seed=1)
    finally:
        sim.config.api_forbidden_pos = sim.config.api_hidden_pos = ()
    assert report.disagreements == []
    reasons = {item.po: item.reason for item in report.unchecked}
    assert reasons[forbidden].startswith("the API will not show this PO to the client")
    assert "403" in reasons[forbidden]
    assert reasons[hidden] == "the API knows no such PO (not listed, or HTTP 404): no witness"
    assert reasons[lacking_pr].startswith("its requisition")
    assert SCOPE_PR in reasons[lacking_pr]
    assert report.exit_code == 3


@pytest.fixture
def scopes_of(finished: FinishedRun) -> Iterator[None]:
    """The simulator's client allowed what the test sets, then its scopes again."""
    allowed = finished.sim.config.api_scopes
    yield
    finished.sim.config.api_scopes = allowed


async def test_no_client_a_refused_one_or_a_missing_scope_exit_2_in_one_sentence(
    finished: FinishedRun, tmp_path: Path, scopes_of: None
) -> None:
    sim = finished.sim
    args = ["audit", "--api", "--out", str(finished.settings.out), "--base-url", sim.base_url]

    async def sentence(env: dict[str, str]) -> str:
        code, output = await finish(await start_cli(tmp_path, *args, env=env))
        assert code == 2, output
        lines = output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("coupa-async: "), output
        assert "Traceback" not in output and sim.config.api_client_secret not in output
        return lines[0].removeprefix("coupa-async: ")

    said = await sentence(cli_env(tmp_path))
    assert said.startswith("No Coupa API client is set: set api.client_id and api.client_secret")
    assert said.endswith("or audit without --api.")

    said = await sentence(api_env(tmp_path, sim, COUPA_API__CLIENT_SECRET="wrong-secret"))
    assert said.startswith("Coupa refused the API client (invalid_client): check api.client_id")
    assert "wrong-secret" not in said

    sim.config.api_scopes = (SCOPE_PO, SCOPE_PR, SCOPE_COMMON)
    said = await sentence(api_env(tmp_path, sim))
    assert said == (
        f"The API client lacks the scope {SCOPE_COMMENT}: ask your Coupa administrator to add "
        "it to the client, or set api.scopes."
    )

    code, output = await finish(
        await start_cli(tmp_path, *args, "--offline", env=api_env(tmp_path, sim))
    )
    assert code == 2 and "not allowed with argument" in output


def _file(file_id: int, name: str, size: int) -> ApiAttachment:
    return ApiAttachment(
        file_id, "file", name, size, None, f"/f/{file_id}", None, None, "header", "PO"
    )


def test_files_match_by_the_name_the_run_gives_them_and_by_size() -> None:
    """Twins pair by size whatever their order; a cleaned name is the run's name; a file of the
    same name and another size is missing, said with the size found; the rest is extra."""
    expected = [
        _file(1, "invoice.pdf", 300),
        _file(2, "invoice.pdf", 100),
        _file(3, "a/b:c?.txt", 7),
        _file(4, "drawing.dwg", 50),
    ]
    disk = {
        "invoice.pdf": 100,
        "Invoice (2).PDF": 300,
        safe_file_name("a/b:c?.txt"): 7,
        "drawing.dwg": 51,
        "x.bin": 1,
    }
    matching = match_files(expected, disk)
    assert [(a.id, name) for a, name in matching.pairs] == [
        (1, "Invoice (2).PDF"),
        (2, "invoice.pdf"),
        (3, safe_file_name("a/b:c?.txt")),
    ]
    assert [a.id for a in matching.unmatched] == [4]
    assert matching.extra == {"drawing.dwg": 51, "x.bin": 1}
    assert matching.needs_bytes() == []  # no left-over file of its size
    record = PoRecord("PO1", "COMPLETED", "", Path("/out/PO1_COMPLETED"), "", "", "", 4, 1, "", ())
    found = file_findings(record, matching, {}, {})
    assert [(f.said, f.found) for f in found] == [
        ("drawing.dwg: 51 bytes", "the API lists drawing.dwg: 50 bytes (header)"),
        ("x.bin (1 bytes) saved", "the API lists no such file of this PO"),
    ]
