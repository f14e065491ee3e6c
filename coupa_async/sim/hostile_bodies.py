"""The bytes of hostile answers: padded bodies and gzip bombs, made piece by piece.

A padded body is a start (an HTML page's head and heading, a PDF header, or nothing) followed
by one fixed 64 KiB block over and over, so a body of any length, or an endless one, costs the
server one block of memory. A gzip bomb is built the same way on the compressed side: the
deflate output of one MiB of padding repeats byte for byte after a sync flush, so a 300 MiB
bomb costs about 300 KB and a fraction of a second (its CRC) to build.
"""

from __future__ import annotations

import functools
import random
import struct
import zlib
from collections.abc import Iterator

from .content import PDF_HEADER

CHUNK = 64 * 1024
_MIB = 1024 * 1024
_HTML_PAD = b'<p class="pad">Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n'
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # deflate, no name, no mtime, unknown OS


def is_html(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/html"


def body_start(content_type: str, number: str) -> bytes:
    """What a padded body begins with: a valid HTML page start, a PDF header, or nothing."""
    if is_html(content_type):
        return (
            f"<!DOCTYPE html><html><head><title>Purchase Order #{number}</title>"
            f'<meta charset="utf-8"></head>\n<body>\n<h1>Purchase Order #{number}</h1>\n'
        ).encode()
    if content_type.split(";", 1)[0].strip().lower() == "application/pdf":
        return PDF_HEADER
    return b""


@functools.cache
def padding_block(html: bool) -> bytes:
    """The 64 KiB block repeated after the start: HTML paragraphs, or fixed random bytes."""
    if html:
        return (_HTML_PAD * (CHUNK // len(_HTML_PAD) + 1))[:CHUNK]
    return random.Random("coupa-sim-hostile-padding").randbytes(CHUNK)


def padded_chunks(content_type: str, number: str, size: int | None) -> Iterator[bytes]:
    """The body in pieces of at most 64 KiB: exactly `size` bytes, endless when None."""
    start = body_start(content_type, number)
    block = padding_block(is_html(content_type))
    left = size
    for chunk in _forever(start, block):
        if left is not None:
            if left <= 0:
                return
            if len(chunk) > left:
                chunk = chunk[:left]
            left -= len(chunk)
        yield chunk


def _forever(start: bytes, block: bytes) -> Iterator[bytes]:
    if start:
        yield start
    while True:
        yield block


@functools.lru_cache(maxsize=8)
def gzip_bomb(size: int, content_type: str, number: str) -> bytes:
    """A gzip stream that expands to `size` bytes: the body start, then spaces (HTML) or zero
    bytes. About 1 KB per decompressed MiB. CPU-bound: call it in a thread."""
    start = body_start(content_type, number)[:size]
    fill = (b" " if is_html(content_type) else b"\0") * _MIB
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the gzip frame is ours
    crc = zlib.crc32(start)
    parts = [_GZIP_HEADER, deflate.compress(start)]
    whole, rest = divmod(size - len(start), _MIB)
    if whole:
        # The first MiB after the start, then one repeating piece for every further MiB: each
        # refers only to the zeros (or spaces) of the 32 KiB window, so it decodes the same.
        parts.append(deflate.compress(fill) + deflate.flush(zlib.Z_SYNC_FLUSH))
        crc = zlib.crc32(fill, crc)
    if whole > 1:
        piece = deflate.compress(fill) + deflate.flush(zlib.Z_SYNC_FLUSH)
        parts.append(piece * (whole - 1))
        for _ in range(whole - 1):
            crc = zlib.crc32(fill, crc)
    parts.append(deflate.compress(fill[:rest]) + deflate.flush(zlib.Z_FINISH))
    crc = zlib.crc32(fill[:rest], crc)
    parts.append(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return b"".join(parts)
