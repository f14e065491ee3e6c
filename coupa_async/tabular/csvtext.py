"""CSV files as people save them: the encoding, the delimiter, and the cells of each line.

The encoding is decided by the byte-order mark, then UTF-16 without one where NUL bytes sit at
every other position (what ASCII text in UTF-16 looks like), then strict UTF-8, then
Windows-1252 only if the text looks like text; the delimiter by the header line (``,``, ``;``
or tab). Excel's ``sep=;`` first line is honoured.

A file of both (UTF-8 lines and Windows-1252 lines, as when rows are appended by another tool)
is read line by line, each line in the encoding it is valid in, with a warning naming the lines
that differ from the rest. A quote opened and never closed ends at the end of its line, with a
warning, instead of swallowing the rest of the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from coupa_async.errors import InputFileError
from coupa_async.tabular.header import is_po_header

DELIMITERS = (",", ";", "\t")
ENCODINGS_TRIED = (
    "UTF-8 (with or without BOM), UTF-16 (with or without BOM), UTF-32 (with BOM), Windows-1252"
)
SAVE_AS_ADVICE = (
    'In Excel use "Save As" → "CSV UTF-8 (Comma delimited)" or "Excel Workbook (.xlsx)".'
)

# Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
)
# Control characters no text file has: all C0 controls except tab, LF, CR, and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_CONTROL_SHARE = 0.001
_SEP_LINE = re.compile(r"\A\ufeff?sep=(.)\r?\n?", re.IGNORECASE)
_DOS_EOF = "\x1a"
# UTF-16 without a BOM: of the first bytes, at least this share of one parity (odd for LE, even
# for BE) must be NUL, and at most the other share of the other parity.
_UTF16_SAMPLE = 4096
_UTF16_NUL_SHARE = 0.5
_UTF16_OTHER_NUL_SHARE = 0.05


# Lines listed by number in a warning; the rest are counted.
LINES_NAMED = 5
_LINE_END = re.compile(rb"(\r\n|\r|\n)")


@dataclass(frozen=True, slots=True)
class CsvText:
    """The decoded text of a CSV file, how it was decoded, and warnings about it."""

    text: str
    encoding: str
    warnings: tuple[str, ...] = ()


def decode(data: bytes, path: Path) -> CsvText:
    """Decode the bytes of a CSV file; raise InputFileError naming the encodings tried."""
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            body = data[len(bom) :]
            try:
                text = body.decode(codec)
            except UnicodeDecodeError as exc:
                mixed = _by_line(body, path, "UTF-8 with BOM") if codec == "utf-8" else None
                if mixed is not None:
                    return mixed
                line = _line_of(body, exc.start, codec)
                raise InputFileError(
                    f"{path} starts with a {name} byte-order mark but is not valid {name} "
                    f"(first bad byte on line {line}). {SAVE_AS_ADVICE}"
                ) from None
            _check_plausible(text, path, name)
            return CsvText(_strip_eof(text), name)
    if b"\x00" in data:
        utf16 = _bomless_utf16(data)
        if utf16 is not None:
            return utf16
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise InputFileError(
            f"{path} is not a text file: it holds NUL bytes (first on line {line}); it may be a "
            f"spreadsheet or another binary file named like a CSV. {SAVE_AS_ADVICE}"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        utf8_line = data.count(b"\n", 0, exc.start) + 1
    else:
        _check_plausible(text, path, "UTF-8")
        return CsvText(_strip_eof(text), "UTF-8")
    mixed = _by_line(data, path)
    if mixed is not None:
        return mixed
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        cp1252_problem: str | None = f"byte 0x{data[exc.start]:02X} on line {line} has no character"
    else:
        cp1252_problem = _implausibility(text)
        if cp1252_problem is None:
            return CsvText(_strip_eof(text), "Windows-1252")
    raise InputFileError(
        f"Cannot tell the encoding of {path}: it is not UTF-8 (first bad line {utf8_line}) and "
        f"does not look like Windows-1252 text ({cp1252_problem}). Tried: {ENCODINGS_TRIED}. "
        f"{SAVE_AS_ADVICE}"
    )


def _by_line(data: bytes, path: Path, declared: str | None = None) -> CsvText | None:
    """``data`` read line by line when it holds both UTF-8 and Windows-1252 lines: each line in
    the one it is valid in (UTF-8 first), a warning naming the lines of the fewer kind (of
    Windows-1252 ones when the file is ``declared`` UTF-8 by a BOM). None when the lines are
    not of both kinds, or one is neither, or the result does not look like text."""
    decoded: list[str] = []
    utf8: list[int] = []
    cp1252: list[int] = []
    # Split at the line ends, kept: line, line end, line, …, last line.
    for index, chunk in enumerate(_LINE_END.split(data)):
        if chunk.isascii():
            decoded.append(chunk.decode("ascii"))
            continue
        try:
            decoded.append(chunk.decode("utf-8"))
            utf8.append(index // 2 + 1)
        except UnicodeDecodeError:
            try:
                decoded.append(chunk.decode("cp1252"))
            except UnicodeDecodeError:
                return None
            cp1252.append(index // 2 + 1)
    if not cp1252 or not (utf8 or declared):
        return None
    text = _strip_eof("".join(decoded))
    if _implausibility(text) is not None:
        return None
    if declared or len(utf8) >= len(cp1252):
        main, other, lines = "UTF-8", "Windows-1252", cp1252
    else:
        main, other, lines = "Windows-1252", "UTF-8", utf8
    are, they = ("is", "it was") if len(lines) == 1 else ("are", "they were")
    warning = (
        f"{_some_lines(lines)} of {path} {are} not {main} like the rest of the file; {they} "
        f"read as {other}. Check the accented letters there, or save the file as CSV UTF-8."
    )
    return CsvText(text, f"{declared or main} ({len(lines)} line(s) {other})", (warning,))


def _some_lines(numbers: list[int]) -> str:
    """``Line 4``, ``Lines 4, 9 and 12``, ``Lines 4, 9, 12, 20, 31 and 7 more``."""
    if len(numbers) == 1:
        return f"Line {numbers[0]}"
    named = ", ".join(str(n) for n in numbers[:LINES_NAMED])
    if len(numbers) > LINES_NAMED:
        return f"Lines {named} and {len(numbers) - LINES_NAMED} more"
    head, _, last = named.rpartition(", ")
    return f"Lines {head} and {last}"


def sniff_delimiter(text: str) -> tuple[str, str]:
    """``(delimiter, text)``: the delimiter of ``text`` and the text with a ``sep=`` line blanked.

    The header decides: the candidate that splits it into the most cells wins, one that yields a
    recognisable PO column first. A single-column file has no delimiter; ``,`` is used.
    """
    sep = _SEP_LINE.match(text)
    if sep and sep.group(1) in DELIMITERS:
        return sep.group(1), "\n" + text[sep.end() :]  # a blank line keeps line numbers
    header = next((line for line in text.splitlines() if line.strip()), "")
    best = ","
    best_score = (False, 1)
    for delimiter in DELIMITERS:
        cells = next(csv.reader([header], delimiter=delimiter), [])
        has_po = any(is_po_header(cell) for cell in cells)
        score = (has_po, len(cells))
        if score > best_score:
            best, best_score = delimiter, score
    return best, text


def records(
    text: str, delimiter: str, path: Path, warnings: list[str] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` for each record of ``text``; ``line`` is where the record starts.

    A quote (``"``) opened and never closed would make the rest of the file one cell. Such a
    record ends at the end of the line where the quote opened instead, the lines after it are
    read as usual, and ``warnings`` gets a sentence naming that line.
    """
    lines = io.StringIO(text, newline="").readlines()
    first = 0  # index of the first line to read
    while True:
        source = _Lines(lines, first)
        reader = csv.reader(source, delimiter=delimiter)
        start = first + 1
        try:
            for cells in reader:
                if source.exhausted:  # the record ran into the end of the file: a quote is open
                    break
                yield start, cells
                start = first + reader.line_num + 1
            else:
                return
        except csv.Error as exc:
            opened = _unclosed_quote(lines, start - 1, delimiter)
            if opened is None:
                raise InputFileError(
                    f"{path} cannot be read as CSV near line {start}: {exc}. {SAVE_AS_ADVICE}"
                ) from None
        else:
            opened = _unclosed_quote(lines, start - 1, delimiter)
            if opened is None:  # cannot happen: csv and the scan agree on quotes
                opened = len(lines) - 1
        yield start, _record_closed_at(lines, start - 1, opened, delimiter, path)
        after = len(lines) - opened - 1
        if warnings is not None:
            warnings.append(
                f'The quote (") opened on line {opened + 1} of {path} is never closed; that '
                f"line was read as if it closed at its end, and the {after} line(s) after it "
                "as usual. Close the quote in the file to be sure of that row."
            )
        first = opened + 1


class _Lines:
    """The lines from ``first`` on, noting when csv asked for one more than there is."""

    def __init__(self, lines: list[str], first: int) -> None:
        self._lines = iter(lines[first:])
        self.exhausted = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            return next(self._lines)
        except StopIteration:
            self.exhausted = True
            raise


def _unclosed_quote(lines: list[str], first: int, delimiter: str) -> int | None:
    """The index of the line where a quote opens and is never closed, reading records from
    line ``first`` as the csv module does (a quote opens only at the start of a cell, ``""``
    inside quotes is a quote); None if every quote closes."""
    text = "".join(lines[first:])
    rest_of_cell = re.compile(f"[^{re.escape(delimiter)}\r\n]*")
    at = 0
    while at < len(text):
        if text[at] == '"':
            opened = at
            at += 1
            while True:
                at = text.find('"', at)
                if at < 0:
                    return first + _line_breaks(text, opened)
                if text.startswith('""', at):
                    at += 2
                    continue
                at += 1
                break
        cell = rest_of_cell.match(text, at)  # the cell's rest: to a delimiter or a line end
        at = (cell.end() if cell else at) + 1
    return None


def _line_breaks(text: str, end: int) -> int:
    """How many line ends (``\\r\\n``, ``\\r`` or ``\\n``) ``text`` has before ``end``."""
    return text.count("\n", 0, end) + text.count("\r", 0, end) - text.count("\r\n", 0, end)


def _record_closed_at(
    lines: list[str], first: int, opened: int, delimiter: str, path: Path
) -> list[str]:
    """The cells of the record from line ``first`` to ``opened``, its open quote closed at
    the end of line ``opened``."""
    last = lines[opened]
    body = last.rstrip("\r\n")
    closed = [*lines[first:opened], body + '"' + last[len(body) :]]
    try:
        return next(csv.reader(closed, delimiter=delimiter), [])
    except csv.Error as exc:
        raise InputFileError(
            f"{path} cannot be read as CSV near line {first + 1}: {exc}. {SAVE_AS_ADVICE}"
        ) from None


def _bomless_utf16(data: bytes) -> CsvText | None:
    """The text of ``data`` if it is plausible UTF-16 without a BOM, else None."""
    sample = data[: _UTF16_SAMPLE - _UTF16_SAMPLE % 2]
    half = len(sample) // 2
    if half < 2:
        return None
    even = sample[0::2].count(0) / half
    odd = sample[1::2].count(0) / half
    for codec, name, nul_share, other_share in (
        ("utf-16-le", "UTF-16 LE (no BOM)", odd, even),
        ("utf-16-be", "UTF-16 BE (no BOM)", even, odd),
    ):
        if nul_share < _UTF16_NUL_SHARE or other_share > _UTF16_OTHER_NUL_SHARE:
            continue
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            return None
        if _implausibility(text) is None:
            return CsvText(_strip_eof(text), name)
    return None


def _check_plausible(text: str, path: Path, name: str) -> None:
    problem = _implausibility(text)
    if problem is not None:
        raise InputFileError(
            f"{path} does not look like a text file although it decodes as {name} "
            f"({problem}); it may be a binary file named like a CSV. {SAVE_AS_ADVICE}"
        )


def _implausibility(text: str) -> str | None:
    """Why ``text`` is not plausible text, or None: NULs or many control characters."""
    body = _strip_eof(text)
    found = _CONTROL.search(body)
    if found is None:
        return None
    count = len(_CONTROL.findall(body))
    if "\x00" not in body and count <= max(1, len(body) * _MAX_CONTROL_SHARE):
        return None
    line = body.count("\n", 0, found.start()) + 1
    return f"{count} control characters, the first on line {line}"


def _line_of(body: bytes, offset: int, codec: str) -> int:
    good = body[:offset].decode(codec, errors="ignore")
    return good.count("\n") + 1


def _strip_eof(text: str) -> str:
    # Old DOS tools end text files with Ctrl-Z.
    return text[:-1] if text.endswith(_DOS_EOF) else text
