"""A workbook that would unpack to more than the memory can hold (a zip bomb) is refused before
python-calamine opens it, or by calamine itself when its ZIP directory lies; an .xls is bounded
by its size."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from coupa_async.errors import InputFileError
from coupa_async.tabular import read_input, workbook

MB = 1024 * 1024
_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="xl/workbook.xml" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/officeDocument"/></Relationships>'
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="PO_Data" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="worksheets/sheet1.xml" Type="http://schemas.'
        'openxmlformats.org/officeDocument/2006/relationships/worksheet"/></Relationships>'
    ),
}
_SHEET = "xl/worksheets/sheet1.xml"
_ROW = b'<row><c t="inlineStr"><is><t>PO15262984</t></is></c></row>'


def write_workbook(path: Path, rows_bytes: int) -> Path:
    """A real .xlsx whose sheet holds about ``rows_bytes`` of identical rows, written as a
    stream: the test never holds the unpacked sheet in memory."""
    block = _ROW * (MB // len(_ROW))
    # The fastest deflate level: it still packs such rows about 150 times.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, text in _PARTS.items():
            archive.writestr(name, text)
        with archive.open(_SHEET, "w") as sheet:
            sheet.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet '
                b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                b'<row><c t="inlineStr"><is><t>PO_NUMBER</t></is></c></row>'
            )
            written = 0
            while written < rows_bytes:
                part = block if rows_bytes - written >= len(block) else _ROW
                sheet.write(part)
                written += len(part)
            sheet.write(b"</sheetData></worksheet>")
    return path


def declare_sheet_size(path: Path, size: int) -> None:
    """Make the ZIP lie: its local header and central directory declare the sheet ``size``."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(_SHEET)
        directory = archive.start_dir
    struct.pack_into("<I", data, info.header_offset + 22, size)  # local header: file size
    at = directory
    while data[at : at + 4] == b"PK\x01\x02":
        lengths = struct.unpack_from("<HHH", data, at + 28)  # name, extra, comment
        if bytes(data[at + 46 : at + 46 + lengths[0]]) == _SHEET.encode():
            struct.pack_into("<I", data, at + 24, size)  # central directory: file size
        at += 46 + sum(lengths)
    path.write_bytes(bytes(data))


_MEASURE = """
import json, resource, sys
import psutil
from coupa_async.errors import InputFileError
from coupa_async.tabular import read_input
process = psutil.Process()
before_rss, before_peak = process.memory_info().rss, resource.getrusage(resource.RUSAGE_SELF)
try:
    rows = len(read_input(sys.argv[1]).rows)
    message = ""
except InputFileError as exc:
    rows, message = -1, str(exc)
after_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({
    "rows": rows,
    "message": message,
    "rss_growth_mb": (process.memory_info().rss - before_rss) / 2**20,
    "peak_growth_mb": (after_peak - before_peak.ru_maxrss) / 1024,
}))
"""


def read_in_a_process(path: Path) -> dict[str, object]:
    """Read ``path`` in a fresh Python: its rows or refusal, and how its memory grew (the
    process's peak too, which a reading of the RSS afterwards would miss)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_bomb_builder_makes_a_workbook_that_reads(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "small.xlsx", 10 * len(_ROW))
    table = read_input(path)
    assert [row.raw_po for row in table.rows] == ["PO15262984"] * 10


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An .xlsx of about 2 MB whose sheet unpacks to 300 MB."""
    return write_workbook(tmp_path_factory.mktemp("bomb") / "bomb.xlsx", 300 * MB)


def test_a_zip_bomb_is_refused_before_it_fills_the_memory(bomb: Path) -> None:
    path = bomb
    assert path.stat().st_size < 3 * MB  # 300 MB of sheet in about 2 MB
    measured = read_in_a_process(path)
    message = str(measured["message"])
    assert measured["rows"] == -1
    assert str(path) in message and "would unpack to 300 MB" in message
    assert "200 MB" in message and "CSV UTF-8" in message
    # Unguarded, python-calamine took over a gigabyte for such a file.
    assert isinstance(measured["peak_growth_mb"], float) and measured["peak_growth_mb"] < 100
    assert isinstance(measured["rss_growth_mb"], float) and measured["rss_growth_mb"] < 100


def test_a_zip_bomb_that_lies_about_its_size_is_refused(tmp_path: Path, bomb: Path) -> None:
    """Its directory passes the check; python-calamine stops at the declared size itself."""
    path = tmp_path / "liar.xlsx"
    path.write_bytes(bomb.read_bytes())
    declare_sheet_size(path, 4000)
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(_SHEET).file_size == 4000  # what a check of the directory sees
    measured = read_in_a_process(path)
    message = str(measured["message"])
    assert measured["rows"] == -1 and str(path) in message and "damaged" in message
    assert "larger than its declared" in message
    assert isinstance(measured["peak_growth_mb"], float) and measured["peak_growth_mb"] < 100


def test_a_small_part_that_packs_like_a_bomb_is_refused(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "dense.xlsx", 60 * MB)  # under the total bound
    message = _error(path)
    assert "xl/worksheets/sheet1.xml" in message and "times its packed size" in message
    assert f"bound of {workbook.MAX_PACKING_RATIO} times" in message


def test_an_xls_is_bounded_by_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workbook, "MAX_UNPACKED_BYTES", MB)  # rather than write a 200 MB file
    path = tmp_path / "old.xls"
    path.write_bytes(workbook.OLE_MAGIC + bytes(2 * MB))
    message = _error(path)
    assert str(path) in message and "is 2 MB, more than the 1 MB an .xls file" in message


def _error(path: Path) -> str:
    with pytest.raises(InputFileError) as caught:
        read_input(path)
    return str(caught.value)
