"""Names, reasons and addresses from a page or the journal reach the terminal as text: markup is
shown, not interpreted, and control characters are shown as escapes, never obeyed."""

from __future__ import annotations

import io
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from rich.console import Console

from coupa_async.cli import main
from coupa_async.results.journal import Journal
from coupa_async.results.result import Outcome, PoResult
from coupa_async.results.status_view import print_status
from coupa_async.running.progress import render_status
from coupa_async.running.run_status import PoolStatus, WorkerStatus
from coupa_async.running.table_run import RunSummary, print_summary
from coupa_async.terminal_text import markup, printable, printable_log_values, safe_text

from .clikit import cli_env, finish, start_cli

SUPPLIER = "ACME [/x] :warning: [/]"
FILE_NAME = "[link=http://evil.example]invoice[/link].pdf"
RED = "\x1b[31m"  # an escape sequence that would turn the terminal red
HYPERLINK = "\x1b]8;;http://evil.example\x1b\\"  # a terminal hyperlink (OSC 8) without rich
REASON = f"{FILE_NAME} could not be saved: {RED}HTTP 500{HYPERLINK} from\x07 the\x9b server\r\n"
HOSTILE_PO = "PO4\x1b[2J[bold]"  # clears the screen if obeyed


def consoles() -> tuple[Console, Console]:
    """A console writing plain text, and one writing to a true-colour terminal (links too)."""
    plain = Console(record=True, width=200, file=io.StringIO())
    terminal = Console(
        record=True, width=200, file=io.StringIO(), force_terminal=True, color_system="truecolor"
    )
    return plain, terminal


def written(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def assert_shown_as_text(plain: str, terminal: str) -> None:
    """The hostile texts are there to read, and none of them acts on the terminal."""
    assert "\x1b" not in plain  # no escape at all when nothing is styled
    assert "\x07" not in plain and "\x9b" not in plain and "\r" not in plain
    for output in (plain, terminal):
        assert FILE_NAME in output  # the markup itself is shown
        assert "\\x1b[31mHTTP 500\\x1b]8;;http://evil.example\\x1b\\" in output
        assert RED not in output and "\x1b]8;" not in output  # neither red nor a hyperlink
        assert "\\x07" in output and "\\x9b" in output


def hostile_result(label: str = "PO1") -> PoResult:
    return PoResult(
        po_number=label,
        outcome=Outcome.FAILED,
        supplier=SUPPLIER,
        message=REASON,
        po_url=f"http://x/order_headers/1?{FILE_NAME}",
        conversion_errors=[f"{FILE_NAME}: not an e-mail{RED}"],
    )


def test_printable_escapes_controls_and_flattens_line_breaks() -> None:
    assert printable("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable("nul\x00 del\x7f csi\x9b") == "nul\\x00 del\\x7f csi\\x9b"
    assert printable("one\r\ntwo\tthree\u2028four") == "one  two three four"
    assert printable("evil\u202etxt.exe") == "evil\\u202etxt.exe"  # read backwards if obeyed
    assert printable("Café São Paulo [b] 東京") == "Café São Paulo [b] 東京"
    assert printable("line 1\r\nline 2\x1b", keep_lines=True) == "line 1\nline 2\\x1b"
    assert printable(Path("/out/[x]")) == "/out/[x]"
    assert safe_text(SUPPLIER).plain == SUPPLIER
    plain, _ = consoles()
    plain.print(markup("[bold]{supplier}[/bold] sent {name}", supplier=SUPPLIER, name=REASON))
    assert written(plain) == f"{SUPPLIER} sent {printable(REASON)}\n"


def test_the_run_summary_shows_hostile_names_and_reasons_as_text() -> None:
    summary = RunSummary()
    for label in ("PO1", "PO2"):
        summary.results[label] = hostile_result(label)
    plain, terminal = consoles()
    for console in (plain, terminal):
        print_summary(summary, console)  # rich raised MarkupError on "[/]" here
    assert_shown_as_text(written(plain), written(terminal))
    assert "not an e-mail\\x1b[31m" in written(plain)


def test_the_run_summary_shows_report_paths_as_text() -> None:
    summary = RunSummary(reports=[Path("/data/out[x]/report.csv")])
    plain, _ = consoles()
    print_summary(summary, plain)
    assert "/data/out[x]/report.csv" in written(plain)


def _journal_with_hostile_records(out: Path) -> None:
    journal = Journal.open(out)
    try:
        journal.add_pending(["PO1", "PO2"])
        journal.record(hostile_result("PO1"))
        journal.record(hostile_result("PO2"))
    finally:
        journal.close()


def test_status_shows_hostile_journal_records_as_text(tmp_path: Path) -> None:
    out = tmp_path / "out [bold]"
    _journal_with_hostile_records(out)
    plain, terminal = consoles()
    for console in (plain, terminal):
        print_status(out, console)
    assert_shown_as_text(written(plain), written(terminal))
    assert "[bold]" in written(plain)  # the folder's name, in the table's title


async def test_the_status_command_on_hostile_records(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _journal_with_hostile_records(out)
    code, output = await finish(
        await start_cli(tmp_path, "status", "--out", str(out), env=cli_env(tmp_path))
    )
    assert code == 0, output
    assert FILE_NAME in output and "\x1b" not in output and "Traceback" not in output


def test_the_live_panel_shows_a_hostile_activity_as_text() -> None:
    worker = WorkerStatus(1, "busy", HOSTILE_PO, 0, 0.0, f"downloading {REASON}", 10.0)
    status = PoolStatus(
        workers=(worker,),
        target_workers=1,
        queued=0,
        waiting_retry=0,
        in_flight=1,
        done=0,
        outcomes={},
        rate_per_s=0.0,
        eta_s=None,
        paused_s=0.0,
        session_renewals=0,
        browser_relaunches=0,
    )
    plain, terminal = consoles()
    for console in (plain, terminal):
        console.print(render_status(status, 3, now=12.0))
    assert_shown_as_text(written(plain), written(terminal))
    assert "PO4\\x1b[2J[bold]" in written(plain) and "\x1b[2J" not in written(terminal)


def test_config_shows_markup_in_a_setting_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no playwright.config nor .env of the machine
    for name in [n for n in os.environ if n.startswith("COUPA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("COUPA_OUT", "/data/[/]coupa[link=https:evil.example]x")
    assert main(["config"]) == 0
    shown = capsys.readouterr().out
    assert "/data/[/]coupa[link=https:evil.example]x" in shown
    assert "'span[data-supplier-name]'" in shown  # a default selector, once eaten as markup


def test_an_error_naming_a_hostile_file_is_shown_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / f"orders{RED}[/].csv"
    assert main(["run", str(missing), "--base-url", "http://127.0.0.1:9"]) == 2
    error = capsys.readouterr().err
    assert "orders\\x1b[31m[/].csv" in error and "\x1b" not in error


def test_log_lines_on_a_console_show_controls_as_escapes() -> None:
    from coupa_async.log import redact_secrets

    try:
        raise ValueError(f"cannot save {FILE_NAME}{RED}")
    except ValueError as exc:
        event: MutableMapping[str, Any] = {"event": "file", "name": f"x{RED}", "exc_info": exc}
    for step in (redact_secrets, printable_log_values):
        event = step(None, "warning", event)
    line = structlog.dev.ConsoleRenderer(colors=False)(None, "warning", event)
    assert "\x1b" not in line and "name=x\\x1b[31m" in line
    assert "Traceback (most recent call last):\n" in line and "\\x1b[31m" in line.splitlines()[-1]
