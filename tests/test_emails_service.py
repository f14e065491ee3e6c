"""The conversion service: e-mails converted in our own processes, which may hang, die or be
interrupted without an e-mail being blamed for it wrongly, and a full disk that stops the run."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import sys
from pathlib import Path

import pytest

from coupa_async.emails import service
from coupa_async.emails.service import ConverterProcess, EmailConverter, ProcessGone
from coupa_async.errors import StorageError

from .emailkit import write_eml

DIES_UNDER_A_REQUEST = "import sys, os; sys.stdin.readline(); os._exit(9)"


async def python_process(code: str) -> asyncio.subprocess.Process:
    """A Python process running ``code``, with pipes as a converting process has them."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def dying_converter() -> ConverterProcess:
    """A stand-in converting process that reads a request, then dies without answering."""
    return ConverterProcess(await python_process(DIES_UNDER_A_REQUEST))


async def test_an_email_is_converted_in_another_process_and_not_twice(tmp_path: Path) -> None:
    mail = write_eml(tmp_path / "quote.eml")
    converter = EmailConverter("both")
    try:
        first = await converter.convert(mail)
        (process,) = converter._all
        assert process.process.pid != os.getpid()
        again = await converter.convert(mail)
    finally:
        await converter.aclose()
    assert first.error is None and first.pdf == "quote.eml.pdf"
    assert first.extracted == ["quote.eml_attachments/q.pdf"]
    assert (tmp_path / "quote.eml_attachments" / "q.pdf").read_bytes() == b"%PDF-1.4 quote"
    assert again.skipped and again.error is None
    assert (converter.converted, converter.failed) == (1, 0)
    assert process.process.returncode is not None  # closed with the converter


async def test_a_damaged_email_is_an_error_of_that_email_and_the_next_converts(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.msg"
    bad.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 700)
    good = write_eml(tmp_path / "good.eml")
    converter = EmailConverter("both")
    try:
        failed = await converter.convert(bad)
        converted = await converter.convert(good)
    finally:
        await converter.aclose()
    assert failed.error is not None and "bad.msg" in failed.error
    assert converted.error is None and (tmp_path / "good.eml.pdf").is_file()
    assert bad.read_bytes().startswith(b"\xd0\xcf\x11\xe0")  # the original is untouched
    assert (converter.converted, converter.failed) == (1, 1)


async def test_ctrl_c_meant_for_the_run_does_not_end_the_converting_process(
    tmp_path: Path,
) -> None:
    converter = EmailConverter("pdf")
    try:
        await converter.convert(write_eml(tmp_path / "a.eml"))
        (process,) = converter._all
        os.kill(process.process.pid, signal.SIGINT)
        await asyncio.sleep(0.2)
        assert process.alive
        second = await converter.convert(write_eml(tmp_path / "b.eml"))
        assert converter._all == {process}
    finally:
        await converter.aclose()
    assert second.error is None and (tmp_path / "b.eml.pdf").is_file()


async def test_a_process_that_dies_under_an_email_gets_a_second_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[ConverterProcess] = []
    real_start = ConverterProcess.start

    async def start() -> ConverterProcess:
        # The first process reads the request, then dies without answering.
        started.append(await (dying_converter() if not started else real_start()))
        return started[-1]

    monkeypatch.setattr(ConverterProcess, "start", staticmethod(start))
    converter = EmailConverter("pdf")
    try:
        outcome = await converter.convert(write_eml(tmp_path / "a.eml"))
    finally:
        await converter.aclose()
    assert len(started) == 2
    assert outcome.error is None and (tmp_path / "a.eml.pdf").is_file()


async def test_an_email_whose_processes_die_twice_is_blamed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ConverterProcess, "start", staticmethod(dying_converter))
    converter = EmailConverter("pdf")
    try:
        outcome = await converter.convert(write_eml(tmp_path / "a.eml"))
    finally:
        await converter.aclose()
    assert outcome.error is not None and "ended twice" in outcome.error
    assert converter.failed == 1


async def test_a_converting_process_that_cannot_start_is_the_emails_error_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def start() -> ConverterProcess:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(ConverterProcess, "start", staticmethod(start))
    converter = EmailConverter("pdf")
    try:
        outcome = await converter.convert(write_eml(tmp_path / "a.eml"))
    finally:
        await converter.aclose()
    assert outcome.error is not None
    assert outcome.error.startswith("a.eml was not converted: the converting process could not")
    assert converter.failed == 1


async def test_a_process_that_never_answers_is_killed_at_the_deadline() -> None:
    process = await python_process("import time; time.sleep(60)")
    converter = ConverterProcess(process)
    with pytest.raises(TimeoutError):
        await converter.ask({"path": "x"}, 0.3)
    assert await asyncio.wait_for(process.wait(), 5) != 0


async def test_a_process_gone_before_the_request_is_process_gone() -> None:
    process = await python_process("pass")
    await process.wait()
    with pytest.raises(ProcessGone):
        await ConverterProcess(process).ask({"path": "x"}, 5)


async def test_a_full_disk_is_the_runs_storage_error_other_write_errors_the_emails(
    tmp_path: Path,
) -> None:
    converter = EmailConverter("both")
    mail = tmp_path / "a.eml"
    with pytest.raises(StorageError, match="disk full"):
        converter._outcome(mail, {"os_error": errno.ENOSPC, "strerror": "No space left"})
    denied = converter._outcome(mail, {"os_error": errno.EACCES, "strerror": "Permission denied"})
    assert denied.error == "The conversion of a.eml could not be written: Permission denied"


async def test_a_folder_that_cannot_be_written_is_a_conversion_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    mail = write_eml(folder / "a.eml")
    folder.chmod(0o555)
    converter = EmailConverter("both")
    try:
        outcome = await converter.convert(mail)
    finally:
        await converter.aclose()
        folder.chmod(0o755)
    assert outcome.error is not None and "a.eml" in outcome.error


async def test_an_idle_process_ends_and_a_new_one_serves_the_next_email(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "IDLE_END_S", 0.05)
    converter = EmailConverter("pdf")
    try:
        await converter.convert(write_eml(tmp_path / "a.eml"))
        (first,) = converter._all
        await asyncio.wait_for(first.process.wait(), 10)
        assert converter._all == set()
        outcome = await converter.convert(write_eml(tmp_path / "b.eml"))
        assert outcome.error is None and converter._all and first not in converter._all
    finally:
        await converter.aclose()


async def test_mode_off_is_not_enabled() -> None:
    assert not EmailConverter("off").enabled
    assert EmailConverter("extract").enabled


async def test_two_processes_convert_side_by_side(tmp_path: Path) -> None:
    mails = [write_eml(tmp_path / f"m{n}.eml", subject=f"Quote {n}") for n in range(4)]
    converter = EmailConverter("both", processes=2)
    seen: set[int] = set()
    real_ask = ConverterProcess.ask

    async def ask(self: ConverterProcess, request: dict[str, object], deadline_s: float) -> dict:
        seen.add(self.process.pid)
        return await real_ask(self, request, deadline_s)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ConverterProcess, "ask", ask)
            outcomes = await asyncio.gather(*(converter.convert(m) for m in mails))
    finally:
        await converter.aclose()
    assert [o.error for o in outcomes] == [None] * 4
    assert all((tmp_path / f"m{n}.eml.pdf").is_file() for n in range(4))
    assert len(seen) == 2
