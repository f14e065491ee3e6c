"""Our e-mail outputs never take a name the server's files use: a server file keeps its name and
its bytes, ours move aside, and a rerun leaves everything as it is.

Real .eml files, real PDFs, real folders; the conversions run in this process.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coupa_async.emails import convert_email, find_fonts
from coupa_async.emails.outputs import (
    is_our_output,
    make_way,
    our_outputs,
    our_pdf_attachments,
    pdf_names,
)
from coupa_async.results.layout import OutputLayout
from coupa_async.sim.outlook import MailAttachment, MailSpec, eml_bytes

FONTS = find_fonts()
MAIL = "note.eml"
SERVER_FILES = {
    "note.pdf": b"%PDF-1.4 the supplier's note\n",
    "note.eml.pdf": b"%PDF-1.4 the supplier's own rendering\n",
    "note.eml (e-mail).pdf": b"%PDF-1.4 named like our first alternate\n",
    "note.eml (e-mail 9).pdf": b"%PDF-1.4 named like a later alternate\n",
}
CLASHING_FOLDER = "note.eml_attachments"


def mail_bytes() -> bytes:
    return eml_bytes(
        MailSpec(
            subject="Quote for PO 4711",
            sender_name="José Conceição",
            sender_address="jose@supplier.example",
            to=("Anna <anna@buyer.example>",),
            date=datetime(2026, 3, 2, 14, 5, tzinfo=UTC),
            body_text="The quote is attached.",
            attachments=(MailAttachment("quote.txt", b"price: 12.50\n"),),
        )
    )


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every entry below ``folder``: relative path -> (inode, mtime, bytes of a file)."""
    entries = {}
    for current, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(current, name)
            info = path.stat()
            data = path.read_bytes() if path.is_file() else b""
            entries[path.relative_to(folder).as_posix()] = (info.st_ino, info.st_mtime_ns, data)
    return entries


def po_folder(tmp_path: Path, clash: str) -> Path:
    """A PO folder with the e-mail and the server's files named like our outputs.

    ``clash``: ``file`` or ``folder``, what the server's ``note.eml_attachments`` is.
    """
    folder = tmp_path / "Acme" / "PO1_COMPLETED"
    folder.mkdir(parents=True)
    (folder / MAIL).write_bytes(mail_bytes())
    for name, data in SERVER_FILES.items():
        (folder / name).write_bytes(data)
    if clash == "file":
        (folder / CLASHING_FOLDER).write_bytes(b"a file the server named so\n")
    else:
        (folder / CLASHING_FOLDER).mkdir()
        (folder / CLASHING_FOLDER / "theirs.txt").write_bytes(b"not ours\n")
    return folder


def server_names(folder: Path) -> list[str]:
    return [MAIL, *SERVER_FILES, CLASHING_FOLDER]


def check_theirs_intact(folder: Path, before: dict[str, tuple[int, int, bytes]]) -> None:
    now = snapshot(folder)
    for name, entry in before.items():
        assert now[name] == entry, name


@pytest.mark.parametrize("clash", ["file", "folder"])
def test_server_files_keep_their_names_and_ours_move_aside(tmp_path: Path, clash: str) -> None:
    folder = po_folder(tmp_path, clash)
    theirs = snapshot(folder)
    outcome = convert_email(folder / MAIL, "both", FONTS, reserved=server_names(folder))
    assert outcome.error is None and not outcome.skipped
    check_theirs_intact(folder, theirs)
    assert outcome.pdf == "note.eml (e-mail 2).pdf"
    assert our_pdf_attachments(folder / outcome.pdf) == 1
    assert outcome.extracted == ["note.eml (e-mail)_attachments/quote.txt"]
    assert (folder / outcome.extracted[0]).read_bytes() == b"price: 12.50\n"
    assert our_outputs(folder / MAIL, server_names(folder)) == (
        folder / "note.eml (e-mail 2).pdf",
        folder / "note.eml (e-mail)_attachments",
    )

    # The rerun: the same names are found again, and nothing is touched.
    everything = snapshot(folder)
    again = convert_email(folder / MAIL, "both", FONTS, reserved=server_names(folder))
    assert again.skipped and again.error is None
    assert (again.pdf, again.extracted) == (outcome.pdf, outcome.extracted)
    assert snapshot(folder) == everything


def test_without_the_servers_names_any_file_that_is_not_ours_is_kept(tmp_path: Path) -> None:
    folder = po_folder(tmp_path, "file")
    theirs = snapshot(folder)
    outcome = convert_email(folder / MAIL, "both", FONTS)
    assert outcome.error is None
    check_theirs_intact(folder, theirs)
    assert outcome.pdf == "note.eml (e-mail 2).pdf"
    assert outcome.extracted == ["note.eml (e-mail)_attachments/quote.txt"]
    everything = snapshot(folder)
    assert convert_email(folder / MAIL, "both", FONTS).skipped
    assert snapshot(folder) == everything


def test_a_server_pdf_that_looks_like_ours_is_still_theirs(tmp_path: Path) -> None:
    """A PDF carrying our own marker, sent by the server: reserved, so never taken for ours."""
    first = tmp_path / "first"
    first.mkdir()
    (first / MAIL).write_bytes(mail_bytes())
    convert_email(first / MAIL, "pdf", FONTS)
    forged = (first / "note.eml.pdf").read_bytes()
    folder = tmp_path / "po"
    folder.mkdir()
    (folder / MAIL).write_bytes(mail_bytes())
    (folder / "note.eml.pdf").write_bytes(forged)
    theirs = snapshot(folder)
    outcome = convert_email(folder / MAIL, "pdf", FONTS, reserved=[MAIL, "NOTE.EML.PDF"])
    assert outcome.pdf == "note.eml (e-mail).pdf"
    check_theirs_intact(folder, theirs)


def test_when_every_name_is_taken_nothing_is_written_over(tmp_path: Path) -> None:
    folder = tmp_path / "po"
    folder.mkdir()
    (folder / MAIL).write_bytes(mail_bytes())
    for name in pdf_names(MAIL):
        (folder / name).write_bytes(b"the server's " + name.encode())
    theirs = snapshot(folder)
    outcome = convert_email(folder / MAIL, "pdf", FONTS)
    assert outcome.pdf is None
    assert outcome.error is not None and "other files already use every name" in outcome.error
    assert snapshot(folder) == theirs


def test_our_outputs_make_way_for_a_server_file_and_nothing_else_does(tmp_path: Path) -> None:
    folder = tmp_path / "po"
    folder.mkdir()
    (folder / MAIL).write_bytes(mail_bytes())
    (folder / "note.pdf").write_bytes(b"theirs")
    (folder / "mine_attachments").mkdir()  # a folder of someone else
    outcome = convert_email(folder / MAIL, "both", FONTS)
    assert outcome.pdf == "note.eml.pdf"
    assert is_our_output(folder, "note.eml.pdf") and is_our_output(folder, CLASHING_FOLDER)
    assert not is_our_output(folder, "note.pdf") and not is_our_output(folder, MAIL)
    assert not is_our_output(folder, "mine_attachments")
    assert not make_way(folder, "note.pdf") and (folder / "note.pdf").read_bytes() == b"theirs"
    assert not make_way(folder, "mine_attachments") and (folder / "mine_attachments").is_dir()
    assert make_way(folder, "free.txt")
    assert make_way(folder, CLASHING_FOLDER) and not (folder / CLASHING_FOLDER).exists()
    assert make_way(folder, "note.eml.pdf") and not (folder / "note.eml.pdf").exists()


def test_a_rerun_whose_server_now_sends_our_names_keeps_every_file(tmp_path: Path) -> None:
    """What the PO job does on a rerun: reopen the final folder, let our outputs make way for
    the server's files, settle, convert. Every server file ends under its own name."""
    layout = OutputLayout(tmp_path / "out")
    work = layout.open_work_dir(("Acme",), "PO1")
    (work / MAIL).write_bytes(mail_bytes())
    final = layout.finalise(work, "COMPLETED")
    first = convert_email(final / MAIL, "both", FONTS, reserved=[MAIL])
    assert first.pdf == "note.eml.pdf" and first.extracted[0].startswith(CLASHING_FOLDER)

    work = layout.open_work_dir(("Acme",), "PO1")
    sent = {"note.eml.pdf": b"%PDF-1.4 theirs\n", CLASHING_FOLDER: b"theirs too\n"}
    for name, data in sent.items():
        temp = layout.temp_path_for(work / name)
        temp.write_bytes(data)
        assert make_way(work, name)
        os.replace(temp, work / name)
    final = layout.finalise(work, "COMPLETED")
    assert final.name == "PO1_COMPLETED" and not (final.parent / "PO1__WORK").exists()
    reserved = [MAIL, *sent]
    second = convert_email(final / MAIL, "both", FONTS, reserved=reserved)
    assert second.error is None
    assert second.pdf == "note.eml (e-mail).pdf"
    assert second.extracted == ["note.eml (e-mail)_attachments/quote.txt"]
    for name, data in sent.items():
        assert (final / name).read_bytes() == data
    everything = snapshot(final)
    assert convert_email(final / MAIL, "both", FONTS, reserved=reserved).skipped
    assert snapshot(final) == everything
