"""The output folder: links planted at our names are never written through, and one run at a
time holds the folder (the lock is the kernel's, so a killed run's file never blocks)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console

from coupa_async import Downloader
from coupa_async.errors import ConfigurationError, ExitCode, JournalError, LayoutError
from coupa_async.htmlreport import report_data, write_html_report
from coupa_async.results.journal import JOURNAL_DIR, JOURNAL_NAME, Journal
from coupa_async.results.layout import OutputLayout
from coupa_async.results.no_links import (
    LinkRefusedError,
    _open_posix,
    _open_windows,
    open_fresh,
    open_new,
    open_read,
)
from coupa_async.results.out_lock import LOCK_NAME, OutputFolderLock, lock_path, read_holder
from coupa_async.results.result import FoundAttachment, Outcome, PoResult
from coupa_async.results.status_view import print_status
from coupa_async.sim import SimConfig, Simulator
from coupa_async.tabular import (
    InputTable,
    LiveCsvReport,
    LiveManifest,
    read_input,
    write_manifest,
    write_reports,
)

SECRET = b"a file outside --out that must stay as it is\n"
LINK_SENTENCE = "is a symbolic link; coupa_async does not write through links"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the output folder, the target of the links planted in it."""
    path = tmp_path / "outside" / "precious.txt"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def table(tmp_path: Path) -> InputTable:
    path = tmp_path / "in.csv"
    path.write_text("PO_NUMBER\nPO1\nPO2\n", encoding="utf-8")
    return read_input(path)


def result(out: Path, label: str = "PO1") -> PoResult:
    found = FoundAttachment("PO", "header", "url", "site", "https://example.com/x", "", None, "")
    return PoResult(
        label, Outcome.COMPLETED, supplier="Acme", folder=out / "Acme", attachments=[found]
    )


def plant(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


# ----- opening without following links -----------------------------------------------------


@pytest.mark.parametrize("opener", [_open_posix, _open_windows], ids=["posix", "windows"])
def test_each_platforms_open_refuses_a_link(
    tmp_path: Path, outside: Path, opener: Callable[[Path, int, int], int]
) -> None:
    """The Windows branch checks before and after opening; it runs here too, on Linux."""
    link = tmp_path / "report.csv"
    plant(link, outside)
    with pytest.raises(LinkRefusedError, match=LINK_SENTENCE):
        opener(link, os.O_WRONLY | os.O_TRUNC, 0o666)
    dangling = tmp_path / "journal.sqlite3"
    plant(dangling, tmp_path / "nowhere" / "created.db")
    with pytest.raises(OSError):
        opener(dangling, os.O_RDWR | os.O_CREAT, 0o666)
    assert outside.read_bytes() == SECRET
    assert not (tmp_path / "nowhere").exists()
    plain = tmp_path / "plain.txt"
    os.close(opener(plain, os.O_WRONLY | os.O_CREAT, 0o666))
    assert plain.is_file() and not plain.is_symlink()


def test_open_new_fresh_and_read_never_go_through_a_link(tmp_path: Path, outside: Path) -> None:
    link = tmp_path / "x.csv"
    plant(link, outside)
    with pytest.raises(FileExistsError):
        open_new(link)
    with pytest.raises(LinkRefusedError):
        open_read(link)
    with open_fresh(link) as handle:  # the link is replaced by a file of our own
        handle.write(b"ours")
    assert not link.is_symlink() and link.read_bytes() == b"ours"
    assert outside.read_bytes() == SECRET


def test_open_fresh_does_not_truncate_a_hard_link(tmp_path: Path, outside: Path) -> None:
    hard = tmp_path / "report.csv"
    os.link(outside, hard)
    with open_fresh(hard) as handle:
        handle.write(b"ours")
    assert hard.read_bytes() == b"ours" and outside.read_bytes() == SECRET


# ----- the files in --out ------------------------------------------------------------------


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_live_report_and_manifest_replace_a_planted_link(
    tmp_path: Path, outside: Path, table: InputTable, dangling: bool
) -> None:
    out = tmp_path / "out"
    target = tmp_path / "outside" / "new.csv" if dangling else outside
    for name in ("report.csv", "manifest.csv"):
        plant(out / name, target)
    with LiveCsvReport(out, table.rows, table.columns) as live, LiveManifest(out) as manifest:
        live.append(result(out))
        manifest.append(result(out))
    for name in ("report.csv", "manifest.csv"):
        path = out / name
        assert not path.is_symlink()
        assert b"PO1" in path.read_bytes()
    assert outside.read_bytes() == SECRET
    assert not (tmp_path / "outside" / "new.csv").exists()


def test_final_reports_replace_planted_links(
    tmp_path: Path, outside: Path, table: InputTable
) -> None:
    out = tmp_path / "out"
    names = ("report.csv", "report.xlsx", "manifest.csv", "report.html")
    for name in names:
        plant(out / name, outside)
    results = {"PO1": result(out)}
    written = write_reports(out, table.rows, results, table.columns)
    written.append(write_manifest(out, table.rows, results))
    journal = Journal.open(out)
    try:
        journal.record(result(out))
        written.append(write_html_report(out, report_data(journal)))
    finally:
        journal.close()
    assert sorted(p.name for p in written) == sorted(names)
    for name in names:
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0
    assert outside.read_bytes() == SECRET


@pytest.mark.parametrize(
    "planted",
    [JOURNAL_NAME, f"{JOURNAL_NAME}-wal", f"{JOURNAL_NAME}-shm", ""],
    ids=["journal", "wal", "shm", "journal-folder"],
)
def test_journal_refuses_a_link_at_any_of_its_names(
    tmp_path: Path, outside: Path, planted: str
) -> None:
    out = tmp_path / "out"
    folder = out / JOURNAL_DIR
    if planted:
        folder.mkdir(parents=True)
        link = folder / planted
        plant(link, tmp_path / "outside" / "created.db")  # dangling: SQLite would create it
    else:
        link = folder
        out.mkdir()
        folder.symlink_to(outside.parent, target_is_directory=True)
    for open_journal in (Journal.open, Journal.open_read_only):
        with pytest.raises(JournalError, match=LINK_SENTENCE) as refused:
            open_journal(out)
        assert str(link) in str(refused.value) and "choose another --out" in str(refused.value)
        assert refused.value.exit_code == ExitCode.USAGE
    assert not (tmp_path / "outside" / "created.db").exists()
    assert sorted(p.name for p in outside.parent.iterdir()) == ["precious.txt"]
    assert outside.read_bytes() == SECRET


def test_out_given_as_a_link_is_the_users_choice(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    out = tmp_path / "out"
    out.symlink_to(real, target_is_directory=True)
    journal = Journal.open(out, exclusive=True)
    journal.record(result(out))
    journal.close()
    assert (real / JOURNAL_DIR / JOURNAL_NAME).is_file()
    assert (real / JOURNAL_DIR / LOCK_NAME).is_file()
    layout = OutputLayout(out)
    work = layout.open_work_dir(("Acme",), "PO1")
    assert work.is_dir() and (real / "Acme" / "PO1__WORK").is_dir()


def test_a_link_at_a_work_folder_is_replaced_and_one_at_a_supplier_folder_refused(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    layout = OutputLayout(out)
    other = out / "Other" / "PO9_COMPLETED"
    other.mkdir(parents=True)
    (other / "keep.pdf").write_bytes(b"keep")
    plant(out / "Acme" / "PO1__WORK", other)  # inside --out, but not this PO's folder
    work = layout.open_work_dir(("Acme",), "PO1")
    assert work.is_dir() and not work.is_symlink() and list(work.iterdir()) == []
    assert (other / "keep.pdf").read_bytes() == b"keep"

    plant(out / "Linked", out / "Other")
    with pytest.raises(LayoutError, match=LINK_SENTENCE):
        layout.open_work_dir(("Linked",), "PO2")
    assert sorted(p.name for p in (out / "Other").iterdir()) == ["PO9_COMPLETED"]


# ----- one run at a time -------------------------------------------------------------------


def test_a_second_lock_in_the_same_process_is_refused_until_released(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = OutputFolderLock.take(out)
    with pytest.raises(ConfigurationError) as refused:
        OutputFolderLock.take(out)
    message = str(refused.value)
    assert f"process {os.getpid()}, started " in message
    assert f"is using {out}; wait for it to end or choose another --out" in message
    assert refused.value.exit_code == ExitCode.USAGE
    holder = read_holder(out)
    assert holder is not None and holder.pid == os.getpid()
    first.release()
    first.release()  # twice: nothing more happens
    with OutputFolderLock.take(out) as again:
        assert again.held
    assert lock_path(out).is_file()  # the file stays; the lock is the kernel's


def test_a_link_at_the_lock_file_is_refused(tmp_path: Path, outside: Path) -> None:
    out = tmp_path / "out"
    plant(out / JOURNAL_DIR / LOCK_NAME, outside)
    with pytest.raises(ConfigurationError, match=LINK_SENTENCE):
        OutputFolderLock.take(out)
    assert outside.read_bytes() == SECRET


def test_a_journal_opened_for_a_run_holds_the_lock_until_closed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    journal = Journal.open(out, exclusive=True)
    with pytest.raises(ConfigurationError, match="Another coupa_async run"):
        Journal.open(out, exclusive=True)
    journal.close()
    Journal.open(out, exclusive=True).close()


def test_a_journal_that_fails_to_open_lets_the_lock_go(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / JOURNAL_DIR).mkdir(parents=True)
    (out / JOURNAL_DIR / JOURNAL_NAME).write_bytes(b"not a database at all " * 50)
    with pytest.raises(JournalError, match="damaged"):
        Journal.open(out, exclusive=True)
    OutputFolderLock.take(out).release()


HOLDER = """
import sys
from pathlib import Path
from coupa_async.results.journal import Journal
journal = Journal.open(Path(sys.argv[1]), exclusive=True)
print("locked", flush=True)
sys.stdin.read()
journal.close()
"""


@pytest.fixture
def other_run(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that opened the journal of ``tmp_path/out`` for a run, as run_table does."""
    out = tmp_path / "out"
    Journal.open(out).close()
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        yield child
    finally:
        child.kill()
        child.wait()


def test_another_process_holds_the_folder_and_readers_still_read(
    tmp_path: Path, other_run: subprocess.Popen[str]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigurationError) as refused:
        Journal.open(out, exclusive=True)
    assert f"(process {other_run.pid}, started " in str(refused.value)
    reader = Journal.open_read_only(out)  # status, report and audit take no lock
    assert reader.records() == {}
    reader.close()
    console = Console(file=io.StringIO(), width=200)
    assert print_status(out, console) == ExitCode.OK


def test_a_killed_run_leaves_a_file_that_does_not_block(
    tmp_path: Path, other_run: subprocess.Popen[str]
) -> None:
    out = tmp_path / "out"
    os.kill(other_run.pid, signal.SIGKILL)
    other_run.wait()
    holder = read_holder(out)
    assert holder is not None and holder.pid == other_run.pid  # what it wrote is still there
    journal = Journal.open(out, exclusive=True)
    holder = read_holder(out)
    assert holder is not None and holder.pid == os.getpid()
    journal.close()


@pytest.mark.browser
async def test_a_second_downloader_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    """The library takes the lock too: two programs embedding it cannot share an --out."""
    from .runkit import make_settings  # here: this module also runs as a child's script

    async with Simulator(SimConfig(seed=2, pos=4)) as sim:
        settings = make_settings(
            tmp_path,
            base_url=sim.base_url,
            username=sim.username,
            password=sim.password,
            out=str(tmp_path / "out"),
            storage_state=str(tmp_path / "state.json"),
            workers=1,
        )
        async with Downloader(settings):
            with pytest.raises(ConfigurationError, match="Another coupa_async run"):
                async with Downloader(settings):
                    pass
        async with Downloader(settings):  # released when the first one closed
            pass
