"""Bodies read within bounds: a size counted as the bytes arrive (after decompression), and a
ratio of decompressed to received bytes, so neither a huge answer nor a small compressed one
that inflates without end can fill the memory or the disk."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

# Below this many decompressed bytes no ratio is judged: small text compresses very well.
RATIO_FREE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The most bytes a body may have once decompressed, and the most it may inflate."""

    max_bytes: int
    max_ratio: float = 200.0
    # The setting a user raises when a legitimate body is larger: named in the sentence.
    setting: str = "limits.page_max_mb"


class BodyTooLarge(Exception):
    """A body went past its limits: ``str()`` is the sentence for the user."""


def _megabytes(count: int) -> str:
    return f"{count / (1024 * 1024):,.0f} MB" if count >= 1024 * 1024 else f"{count:,} bytes"


class BodyMeter:
    """Counts one answer's body as it is read and raises BodyTooLarge past its limits."""

    def __init__(self, resp: aiohttp.ClientResponse, limits: BodyLimits, what: str) -> None:
        self.resp = resp
        self.limits = limits
        self.what = what
        self.size = 0

    def check_declared(self) -> None:
        """Refuse at once a body whose Content-Length already says it is too large."""
        declared = self.resp.content_length
        if declared is not None and declared > self.limits.max_bytes:
            raise BodyTooLarge(
                f"{self.what} is {_megabytes(declared)}, more than {self.limits.setting} allows "
                f"({_megabytes(self.limits.max_bytes)}); raise it to fetch it"
            )

    def add(self, count: int) -> None:
        """Count ``count`` more decompressed bytes; raise when a limit is passed."""
        self.size += count
        limits = self.limits
        if self.size > limits.max_bytes:
            raise BodyTooLarge(
                f"{self.what} grew past {_megabytes(limits.max_bytes)} ({limits.setting}) "
                "and was cut off; raise the setting if it is really that large"
            )
        if self.size > RATIO_FREE_BYTES:
            received = max(1, _received_on_wire(self.resp))
            if self.size / received > limits.max_ratio:
                raise BodyTooLarge(
                    f"{self.what} inflated from {_megabytes(received)} received to more than "
                    f"{_megabytes(self.size)} (over {limits.max_ratio:.0f} times, "
                    "limits.compression_ratio_max): a compression bomb, not kept"
                )


def _received_on_wire(resp: aiohttp.ClientResponse) -> int:
    """Bytes of the body as they came over the wire (before decompression)."""
    content = resp.content
    raw = getattr(content, "total_raw_bytes", None)  # aiohttp >= 3.12
    if isinstance(raw, int):
        return raw
    return int(getattr(content, "total_bytes", 0))


async def read_bounded(
    resp: aiohttp.ClientResponse, limits: BodyLimits, what: str, chunk_bytes: int = 256 * 1024
) -> bytes:
    """The whole body of ``resp``, read in chunks within ``limits`` (BodyTooLarge past them)."""
    meter = BodyMeter(resp, limits, what)
    meter.check_declared()
    parts: list[bytes] = []
    while chunk := await resp.content.read(chunk_bytes):
        meter.add(len(chunk))
        parts.append(chunk)
    return b"".join(parts)
