"""Output layout: hostile names, the life of a PO folder, and escape guards, on real files."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from coupa_async.results.layout import (
    FILE_NAME_MAX_BYTES,
    FILE_NAME_MAX_CHARS,
    LayoutError,
    OutputLayout,
    safe_file_name,
    safe_folder_part,
    unique_name,
)

RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{d}{n}" for d in ("COM", "LPT") for n in "123456789"}


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _windows_stem(name: str) -> str:
    return name.split(".")[0].rstrip(" ").upper()


# --- file names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("invoice.pdf", "invoice.pdf"),
        ("Invoice 2024 final.pdf", "Invoice 2024 final.pdf"),
        ("../../x", "x"),
        ("../../x.pdf", "x.pdf"),
        ("..\\..\\x.pdf", "x.pdf"),
        ("C:\\x.pdf", "x.pdf"),
        ("C:x.pdf", "C_x.pdf"),
        ("/etc/passwd", "passwd"),
        ("\\\\server\\share\\a.doc", "a.doc"),
        ("dir/", "attachment"),
        ("CON.pdf", "CON_.pdf"),
        ("con.pdf", "con_.pdf"),
        ("nul", "nul_"),
        ("NUL.tar.gz", "NUL_.tar.gz"),
        ("com1.txt", "com1_.txt"),
        ("LPT9", "LPT9_"),
        ("CON .txt", "CON _.txt"),
        ("CONSOLE.txt", "CONSOLE.txt"),
        ("COM10.txt", "COM10.txt"),
        ("a\tb.pdf", "a_b.pdf"),
        ("a\nb\rc.pdf", "a_b_c.pdf"),
        ("a\x00b\x1fc\x7f.pdf", "a_b_c_.pdf"),
        ('a<b>c:d"e|f?g*h&i.pdf', "a_b_c_d_e_f_g_h_i.pdf"),
        ('<>:"|?*&.pdf', "_.pdf"),
        ("a<<<>>>b.pdf", "a_b.pdf"),
        ("a___b.pdf", "a_b.pdf"),
        (".", "attachment"),
        ("..", "attachment"),
        ("...", "attachment"),
        ("....pdf", "pdf"),
        (".hidden", "hidden"),
        ("", "attachment"),
        ("   ", "attachment"),
        ("???", "attachment"),
        (None, "attachment"),
        ("report.pdf.", "report.pdf"),
        ("report.pdf   ", "report.pdf"),
        ("report. . .", "report"),
        ("  report.pdf", "report.pdf"),
        ("a\u00a0b.pdf", "a b.pdf"),
        ("Rech\u200bnung.pdf", "Rechnung.pdf"),
        ("evil\u202efdp.exe", "evilfdp.exe"),
        ("e\u0301te\u0301.pdf", "\u00e9t\u00e9.pdf"),
        ("x\ud800y.pdf", "x_y.pdf"),
        ("Relatório técnico.pdf", "Relatório técnico.pdf"),
    ],
)
def test_safe_file_name(raw: str | None, expected: str) -> None:
    assert safe_file_name(raw) == expected


@pytest.mark.parametrize("raw", ["", None, "..", "../", " . ", "___"])
def test_safe_file_name_of_nothing_is_attachment(raw: str | None) -> None:
    assert safe_file_name(raw) == "attachment"


@pytest.mark.parametrize(
    ("raw", "ext"),
    [
        ("a" * 300 + ".pdf", ".pdf"),
        ("a" * 300 + ".xlsx", ".xlsx"),
        ("a" * 300 + ".123456789", ".123456789"),
        ("é" * 300 + ".pdf", ".pdf"),
        ("日本語" * 100 + ".docx", ".docx"),
        ("😀" * 300 + ".msg", ".msg"),
        ("e\u0301" * 300 + ".pdf", ".pdf"),
        ("a" * 300, ""),
        ("日" * 300, ""),
        ("a " * 200 + ".pdf", ".pdf"),
    ],
)
def test_long_names_keep_extension_and_fit(raw: str, ext: str, tmp_path: Path) -> None:
    name = safe_file_name(raw)
    assert len(name) <= FILE_NAME_MAX_CHARS
    assert _utf8_len(name) <= FILE_NAME_MAX_BYTES
    assert name.endswith(ext)
    assert len(name) > len(ext) + 50
    assert not name.endswith((" ", "."))
    (tmp_path / name).write_bytes(b"x")


def test_long_extension_is_not_an_extension() -> None:
    name = safe_file_name("a" * 300 + ".abcdefghijkl")
    assert len(name) == FILE_NAME_MAX_CHARS
    assert name == "a" * FILE_NAME_MAX_CHARS


# --- folder parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACME Corp", "ACME_Corp"),
        ("Müller & Söhne GmbH", "Müller_Söhne_GmbH"),
        ("A/B Trading: Ltd", "A_B_Trading_Ltd"),
        ('A\\B<C>D|E?F*G"H', "A_B_C_D_E_F_G_H"),
        ("x" * 80, "x" * 50),
        ("x" * 49 + " tail", "x" * 49),
        ("  Spaced   Out  ", "Spaced_Out"),
        ("tab\tnew\nline", "tab_new_line"),
        ("nbsp\u00a0ideo\u3000space", "nbsp_ideo_space"),
        ("zero\u200bwidth", "zerowidth"),
        ("", "Unknown"),
        ("   ", "Unknown"),
        ("\t\n", "Unknown"),
        (None, "Unknown"),
        (".", "Unknown"),
        ("..", "Unknown"),
        ("...", "Unknown"),
        ("_._", "Unknown"),
        ("&&&", "Unknown"),
        ("Inc.", "Inc"),
        (".hidden", "hidden"),
        ("CON", "CON_"),
        ("con", "con_"),
        ("Aux.corp", "Aux_.corp"),
        ("com1", "com1_"),
        ("LPT3.x", "LPT3_.x"),
        ("CON" + "._" * 30 + "x", "CON_"),
        ("Unknown", "Unknown"),
    ],
)
def test_safe_folder_part(raw: str | None, expected: str) -> None:
    assert safe_folder_part(raw) == expected


# --- unique names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "taken", "expected"),
    [
        ("a.pdf", set(), "a.pdf"),
        ("a.pdf", {"b.pdf"}, "a.pdf"),
        ("a.pdf", {"a.pdf"}, "a (2).pdf"),
        ("a.pdf", {"a.pdf", "a (2).pdf"}, "a (3).pdf"),
        ("a.pdf", {"a.pdf", "a (2).pdf", "a (3).pdf"}, "a (4).pdf"),
        ("a.pdf", {"A.PDF"}, "a (2).pdf"),
        ("a.pdf", {"A.pdf", "A (2).PDF"}, "a (3).pdf"),
        ("Straße.pdf", {"STRASSE.PDF"}, "Straße (2).pdf"),
        ("é.pdf", {"e\u0301.pdf"}, "é (2).pdf"),
        ("noext", {"noext"}, "noext (2)"),
        ("a.tar.gz", {"a.tar.gz"}, "a.tar (2).gz"),
        ("CON.pdf", {"CON_.pdf"}, "CON_ (2).pdf"),
        ("../x.pdf", {"x.pdf"}, "x (2).pdf"),
    ],
)
def test_unique_name(name: str, taken: set[str], expected: str) -> None:
    before = set(taken)
    assert unique_name(name, taken) == expected
    assert taken == before


@pytest.mark.parametrize("raw", ["x" * 300 + ".pdf", "日" * 300 + ".pdf", "y" * 300])
def test_unique_name_stays_within_limits(raw: str) -> None:
    taken: set[str] = set()
    for _ in range(12):
        name = unique_name(raw, taken)
        assert name.casefold() not in {t.casefold() for t in taken}
        assert len(name) <= FILE_NAME_MAX_CHARS
        assert _utf8_len(name) <= FILE_NAME_MAX_BYTES
        assert name.endswith(".pdf") == raw.endswith(".pdf")
        taken.add(name)
    assert any(name.endswith(" (12).pdf") or name.endswith(" (12)") for name in taken)


# --- property-style check over random strings --------------------------------------------------

_ALPHABET = (
    list("abcXYZ019 ._-()[]~'!@#$%^+=,;")
    + list('/\\<>:"|?*&')
    + ["\x00", "\x01", "\t", "\n", "\r", "\x1f", "\x7f", "\x85"]
    + ["\u00a0", "\u200b", "\u200d", "\u202e", "\u2028", "\u3000", "\ufeff"]
    + ["é", "e\u0301", "ß", "İ", "Ω", "日", "本", "😀", "\U0001f3f3\ufe0f", "\ud800", "\udcff"]
    + ["..", "../", "..\\", "CON", "nul", "COM1", "lpt9", ".pdf", ".msg", "C:\\"]
)


def _random_names(count: int) -> list[str]:
    rng = random.Random(20240601)
    names = []
    for _ in range(count):
        length = rng.choice([0, 1, 2, 3, 5, 10, 40, 120, 200, 400])
        names.append("".join(rng.choice(_ALPHABET) for _ in range(length)))
    return names


def test_random_file_names_are_safe(tmp_path: Path) -> None:
    folder = tmp_path / "po"
    folder.mkdir()
    taken: set[str] = set()
    for raw in _random_names(1000):
        name = safe_file_name(raw)
        assert name
        assert "/" not in name and "\\" not in name and "\x00" not in name
        assert name not in (".", "..")
        assert not name.startswith(".")
        assert not name.endswith((" ", "."))
        assert len(name) <= FILE_NAME_MAX_CHARS
        assert _utf8_len(name) <= FILE_NAME_MAX_BYTES
        assert _windows_stem(name) not in RESERVED
        assert safe_file_name(name) == name
        target = folder / name
        assert target.resolve().parent == folder.resolve()
        assert target.resolve().is_relative_to(tmp_path.resolve())
        unique = unique_name(name, taken)
        taken.add(unique)
        (folder / unique).write_bytes(b"x")
    assert len(os.listdir(folder)) == len(taken)


def test_random_folder_parts_are_safe(tmp_path: Path) -> None:
    for raw in _random_names(1000):
        part = safe_folder_part(raw)
        assert part
        assert not set(part) & set('<>:"/\\|?*&\x00')
        assert not any(ch.isspace() for ch in part)
        assert part not in (".", "..")
        assert not part.startswith(("_", ".")) and not part.endswith(".")
        assert not part.endswith("_") or _windows_stem(part[:-1]) in RESERVED
        assert "__" not in part
        assert len(part) <= 50
        assert _windows_stem(part) not in RESERVED
        assert safe_folder_part(part) == part
        (tmp_path / part).mkdir(exist_ok=True)
        assert (tmp_path / part).resolve().parent == tmp_path.resolve()


# --- OutputLayout --------------------------------------------------------------------------------


@pytest.fixture
def layout(tmp_path: Path) -> OutputLayout:
    return OutputLayout(tmp_path / "out")


def _po_folders(parent: Path, label: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(label))


def test_po_dir_parts(layout: OutputLayout) -> None:
    assert layout.po_dir_parts("Müller & Söhne GmbH") == ("Müller_Söhne_GmbH",)
    assert layout.po_dir_parts(None) == ("Unknown",)
    assert layout.po_dir_parts("  ") == ("Unknown",)
    assert layout.po_dir_parts("ACME", ["EMEA", "Plant 7"]) == ("EMEA", "Plant_7")
    assert layout.po_dir_parts("ACME", ["EMEA", "", None, " ", "Plant/7"]) == ("EMEA", "Plant_7")
    assert layout.po_dir_parts("ACME", ["", None, "\u200b"]) == ("ACME",)
    assert layout.po_dir_parts("ACME", ["..", "../.."]) == ("Unknown", "Unknown")


def test_paths(layout: OutputLayout) -> None:
    parts = layout.po_dir_parts("ACME", ["EMEA", "Plant 7"])
    assert layout.work_dir(parts, "PO1") == layout.out_dir / "EMEA" / "Plant_7" / "PO1__WORK"
    assert layout.final_dir(parts, "PM1", "COMPLETED") == (
        layout.out_dir / "EMEA" / "Plant_7" / "PM1_COMPLETED"
    )
    assert layout.final_dir(parts, "PO1", "no_attachments").name == "PO1_NO_ATTACHMENTS"


@pytest.mark.parametrize(
    ("parts", "label", "outcome"),
    [
        (("..",), "PO1", "COMPLETED"),
        (("a", "..", ".."), "PO1", "COMPLETED"),
        (("a/b",), "PO1", "COMPLETED"),
        (("/etc",), "PO1", "COMPLETED"),
        (("",), "PO1", "COMPLETED"),
        (("ok",), "..", "COMPLETED"),
        (("ok",), "../PO1", "COMPLETED"),
        (("ok",), "", "COMPLETED"),
        (("ok",), "PO\x001", "COMPLETED"),
        (("ok",), "PO1", "INVALID"),
        (("ok",), "PO1", "../x"),
        ("ACME", "PO1", "COMPLETED"),
    ],
)
def test_bad_paths_are_refused(
    layout: OutputLayout, parts: tuple[str, ...], label: str, outcome: str
) -> None:
    with pytest.raises(LayoutError):
        layout.final_dir(parts, label, outcome)


def test_work_finalise_rerun_replace(layout: OutputLayout) -> None:
    parts = layout.po_dir_parts("ACME Corp")
    work = layout.open_work_dir(parts, "PO1")
    assert work == layout.out_dir / "ACME_Corp" / "PO1__WORK"
    assert work.is_dir()
    (work / "a.pdf").write_bytes(b"first")
    assert layout.open_work_dir(parts, "PO1") == work

    final = layout.finalise(work, "PARTIAL")
    assert final == layout.out_dir / "ACME_Corp" / "PO1_PARTIAL"
    assert not work.exists()
    assert (final / "a.pdf").read_bytes() == b"first"
    assert list(final.parent.iterdir()) == [final]

    # A rerun works in the earlier folder again, so the saved file is reused.
    work = layout.open_work_dir(parts, "PO1")
    assert work.name == "PO1__WORK"
    assert not final.exists()
    assert (work / "a.pdf").read_bytes() == b"first"
    (work / "b.pdf").write_bytes(b"second")

    final = layout.finalise(work, "COMPLETED")
    assert final.name == "PO1_COMPLETED"
    assert _po_folders(final.parent, "PO1") == ["PO1_COMPLETED"]
    assert sorted(p.name for p in final.iterdir()) == ["a.pdf", "b.pdf"]
    assert sorted(os.listdir(final.parent)) == ["PO1_COMPLETED"]


def test_finalise_replaces_stale_final_folders(layout: OutputLayout) -> None:
    parts = ("ACME",)
    work = layout.open_work_dir(parts, "PO7")
    (work / "new.pdf").write_bytes(b"new")
    for outcome in ("COMPLETED", "FAILED", "PO_NOT_FOUND"):
        stale = layout.final_dir(parts, "PO7", outcome)
        (stale / "sub").mkdir(parents=True)
        (stale / "sub" / "old.pdf").write_bytes(b"old")

    final = layout.finalise(work, "COMPLETED")
    assert sorted(os.listdir(final.parent)) == ["PO7_COMPLETED"]
    assert sorted(p.name for p in final.iterdir()) == ["new.pdf"]
    assert not any("-2" in name for name in os.listdir(final.parent))


def test_finalise_keeps_other_pos(layout: OutputLayout) -> None:
    parts = ("ACME",)
    for label in ("PO1", "PO12", "PM1"):
        layout.finalise(layout.open_work_dir(parts, label), "COMPLETED")
    layout.finalise(layout.open_work_dir(parts, "PO1"), "FAILED")
    assert sorted(os.listdir(layout.out_dir / "ACME")) == [
        "PM1_COMPLETED",
        "PO12_COMPLETED",
        "PO1_FAILED",
    ]


def test_finalise_removes_leftovers_of_an_interrupted_finalise(layout: OutputLayout) -> None:
    work = layout.open_work_dir(("ACME",), "PO1")
    leftover = work.parent / ".PO1.0123abcd.old"
    (leftover / "x").mkdir(parents=True)
    unrelated = work.parent / ".PO12.0123abcd.old"
    unrelated.mkdir()
    layout.finalise(work, "COMPLETED")
    assert not leftover.exists()
    assert unrelated.exists()


def test_finalise_failure_restores_the_stale_folder(
    layout: OutputLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = ("ACME",)
    work = layout.open_work_dir(parts, "PO1")
    stale = layout.final_dir(parts, "PO1", "COMPLETED")
    stale.mkdir()
    (stale / "keep.pdf").write_bytes(b"k")

    def failing_replace(src: object, dst: object) -> None:
        raise PermissionError("locked")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        layout.finalise(work, "COMPLETED")
    monkeypatch.undo()
    assert (stale / "keep.pdf").read_bytes() == b"k"
    assert work.is_dir()
    assert sorted(os.listdir(work.parent)) == ["PO1_COMPLETED", "PO1__WORK"]


def test_finalise_refuses_what_is_not_a_work_folder(layout: OutputLayout, tmp_path: Path) -> None:
    final = layout.finalise(layout.open_work_dir(("A",), "PO1"), "COMPLETED")
    with pytest.raises(LayoutError):
        layout.finalise(final, "COMPLETED")
    with pytest.raises(LayoutError):
        layout.finalise(final.parent / "PO2__WORK", "COMPLETED")
    outside = tmp_path / "elsewhere" / "PO3__WORK"
    outside.mkdir(parents=True)
    with pytest.raises(LayoutError):
        layout.finalise(outside, "COMPLETED")
    assert outside.is_dir()
    with pytest.raises(LayoutError):
        layout.finalise(layout.open_work_dir(("A",), "PO4"), "INVALID")


def test_supplier_change_between_runs_creates_a_new_folder(layout: OutputLayout) -> None:
    layout.finalise(layout.open_work_dir(("Old_Name",), "PO1"), "COMPLETED")
    work = layout.open_work_dir(("New_Name",), "PO1")
    assert work == layout.out_dir / "New_Name" / "PO1__WORK"
    assert (layout.out_dir / "Old_Name" / "PO1_COMPLETED").is_dir()


def test_open_work_dir_prefers_the_existing_work_folder(layout: OutputLayout) -> None:
    parts = ("ACME",)
    work = layout.open_work_dir(parts, "PO1")
    (work / "w.pdf").write_bytes(b"w")
    layout.final_dir(parts, "PO1", "COMPLETED").mkdir()
    assert layout.open_work_dir(parts, "PO1") == work
    assert (work / "w.pdf").exists()
    layout.finalise(work, "PARTIAL")
    assert sorted(os.listdir(work.parent)) == ["PO1_PARTIAL"]


def test_symlinked_supplier_folder_pointing_outside_is_refused(
    layout: OutputLayout, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layout.out_dir.mkdir()
    (layout.out_dir / "ACME").symlink_to(outside, target_is_directory=True)
    with pytest.raises(LayoutError):
        layout.open_work_dir(("ACME",), "PO1")
    assert list(outside.iterdir()) == []


def test_contains(layout: OutputLayout, tmp_path: Path) -> None:
    out = layout.out_dir
    (out / "ACME").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (out / "link").symlink_to(outside, target_is_directory=True)
    (out / "inner").symlink_to(out / "ACME", target_is_directory=True)
    loop = out / "loop"
    loop.symlink_to(loop)

    assert layout.contains(out / "ACME")
    assert layout.contains(out / "ACME" / "PO1__WORK" / "x.pdf")
    assert layout.contains(Path("ACME/x.pdf"))
    assert layout.contains(out / "inner" / "x.pdf")
    assert not layout.contains(out)
    assert not layout.contains(out / "link")
    assert not layout.contains(out / "link" / "x.pdf")
    assert not layout.contains(out / ".." / "x")
    assert not layout.contains(out / "ACME" / ".." / ".." / "x")
    assert not layout.contains(Path("/etc/passwd"))
    assert not layout.contains(Path("../out2/x"))
    assert not layout.contains(tmp_path / "out2" / "x")
    assert not layout.contains(loop / "x")


def test_temp_path_and_cleanup(layout: OutputLayout) -> None:
    work = layout.open_work_dir(("ACME",), "PO1")
    final_file = work / safe_file_name("é" * 300 + ".pdf")
    temp = layout.temp_path_for(final_file)
    assert temp.parent == work
    assert temp.name.startswith(".") and temp.name.endswith(".part")
    assert _utf8_len(temp.name) <= 255
    assert temp != layout.temp_path_for(final_file)
    temp.write_bytes(b"half")
    (work / "done.pdf").write_bytes(b"ok")
    (work / "notes.part").write_bytes(b"user file")
    (work / ".dir.part").mkdir()

    assert layout.cleanup_partials(work) == 1
    assert sorted(os.listdir(work)) == [".dir.part", "done.pdf", "notes.part"]
    assert layout.cleanup_partials(work.parent / "PO9__WORK") == 0

    with pytest.raises(LayoutError):
        layout.temp_path_for(layout.out_dir / ".." / "x.pdf")
    with pytest.raises(LayoutError):
        layout.cleanup_partials(layout.out_dir / "..")


def test_relative_out_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    layout = OutputLayout(Path("out"))
    work = layout.open_work_dir(("ACME",), "PO1")
    assert work.is_absolute()
    assert work == tmp_path / "out" / "ACME" / "PO1__WORK"


def test_a_final_folder_is_reopened_as_the_work_folder_of_a_po_left_pending(
    layout: OutputLayout,
) -> None:
    parts = layout.po_dir_parts("ACME Corp")
    final = layout.finalise(layout.open_work_dir(parts, "PO7"), "COMPLETED")
    (final / "mail.msg").write_bytes(b"x")
    work = layout.reopen(final, "PO7")
    assert work == layout.out_dir / "ACME_Corp" / "PO7__WORK"
    assert (work / "mail.msg").read_bytes() == b"x" and not final.exists()
    assert layout.reopen(final, "PO7") is None  # gone: nothing to do
    again = layout.finalise(work, "COMPLETED")
    layout.open_work_dir(parts, "PO8")
    (layout.out_dir / "ACME_Corp" / "PO7__WORK").mkdir()
    assert layout.reopen(again, "PO7") is None  # a work folder is there already: left alone
    assert again.is_dir()
