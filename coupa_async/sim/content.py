"""Deterministic file bytes: generated chunk by chunk from seed and file id, never held whole.

A file is `prefix + filler + suffix`. The prefix and suffix carry the format's signature
(`%PDF-1.4` ... `%%EOF`, the OLE header of `.msg`, the zip header of `.docx`/`.xlsx`); the
filler is a pseudo-random 64 KiB block whose first bytes are replaced by the block number, so
every chunk differs and an offset mistake changes the SHA-256.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

FileType = Literal["pdf", "msg", "docx", "xlsx", "txt"]
FILE_TYPES: tuple[FileType, ...] = ("pdf", "msg", "docx", "xlsx", "txt")

CHUNK_SIZE = 64 * 1024

CONTENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "msg": "application/vnd.ms-outlook",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "txt": "text/plain; charset=utf-8",
}

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
PDF_HEADER = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
PDF_EOF = b"%%EOF"

_TEXT_ALPHABET = b"abcdefghijklmnopqrstuvwxyz       ,.\n"
# Maps every byte value onto printable text so a random block becomes plausible prose.
_TEXT_TABLE = bytes(_TEXT_ALPHABET[i % len(_TEXT_ALPHABET)] for i in range(256))


@dataclass(frozen=True, slots=True)
class Layout:
    """How a file of a given size is put together."""

    prefix: bytes
    filler_length: int
    suffix: bytes


def _pdf_layout(size: int) -> Layout:
    """A small but well-formed PDF: one blank page plus one unreferenced stream as filler."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    head = bytearray(PDF_HEADER)
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(head))
        head += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    stream_offset = len(head)
    filler = max(0, size - 400)
    for _ in range(4):  # the lengths appear inside the text, so settle them by iteration
        prefix = bytes(head) + b"4 0 obj\n<< /Length %d >>\nstream\n" % filler
        xref_offset = len(prefix) + filler + len(b"\nendstream\nendobj\n")
        xref = b"xref\n0 5\n0000000000 65535 f \n" + b"".join(
            b"%010d 00000 n \n" % off for off in [*offsets, stream_offset]
        )
        suffix = (
            b"\nendstream\nendobj\n"
            + xref
            + b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n" % xref_offset
            + PDF_EOF
        )
        wanted = size - len(prefix) - len(suffix)
        if wanted == filler:
            return Layout(prefix, filler, suffix)
        if wanted < 0:
            break
        filler = wanted
    # Too small for the full structure: header, filler, end marker.
    short = PDF_HEADER[:9]
    if size >= len(short) + len(PDF_EOF):
        return Layout(short, size - len(short) - len(PDF_EOF), PDF_EOF)
    return Layout((short + PDF_EOF)[:size], 0, b"")


def layout(file_type: str, size: int) -> Layout:
    """The fixed parts of a file of this type and size."""
    if file_type == "pdf":
        return _pdf_layout(size)
    if file_type == "msg":
        prefix = OLE_MAGIC
    elif file_type in ("docx", "xlsx"):
        prefix = ZIP_MAGIC
    else:
        prefix = b""
    prefix = prefix[:size]
    return Layout(prefix, size - len(prefix), b"")


def _block(seed: int, file_id: int, file_type: str) -> bytes:
    block = random.Random(f"coupa-sim-file:{seed}:{file_id}").randbytes(CHUNK_SIZE)
    if file_type == "txt":
        block = block.translate(_TEXT_TABLE)
    return block


def _filler_chunk(block: bytes, index: int, text: bool) -> bytes:
    mark = b"%07d\n" % (index % 10_000_000) if text else index.to_bytes(8, "little")
    return mark + block[len(mark) :]


def iter_content(
    seed: int, file_id: int, file_type: str, size: int, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """Yield the file's bytes in pieces of at most about `chunk_size` bytes."""
    parts = layout(file_type, size)
    block = _block(seed, file_id, file_type)
    text = file_type == "txt"

    def pieces() -> Iterator[bytes]:
        if parts.prefix:
            yield parts.prefix
        left = parts.filler_length
        index = 0
        while left > 0:
            chunk = _filler_chunk(block, index, text)
            if left < len(chunk):
                chunk = chunk[:left]
            left -= len(chunk)
            index += 1
            yield chunk
        if parts.suffix:
            yield parts.suffix

    if chunk_size >= CHUNK_SIZE and size <= chunk_size:
        yield b"".join(pieces())
        return
    buffer = b""
    for piece in pieces():
        if buffer and len(buffer) + len(piece) > chunk_size:
            yield buffer
            buffer = b""
        if len(piece) >= chunk_size:
            yield piece
        else:
            buffer += piece
    if buffer:
        yield buffer


def content_sha256(seed: int, file_id: int, file_type: str, size: int) -> str:
    """Hex SHA-256 of the file, computed by streaming the same pieces that are served."""
    digest = hashlib.sha256()
    for piece in iter_content(seed, file_id, file_type, size):
        digest.update(piece)
    return digest.hexdigest()


def content_bytes(seed: int, file_id: int, file_type: str, size: int) -> bytes:
    """The whole file in memory; for small files and tests only."""
    return b"".join(iter_content(seed, file_id, file_type, size))
