"""Column names of an input file: which column holds what, whatever the case and spacing."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

PO_COLUMN = "PO_NUMBER"
SUPPLIER_COLUMN = "SUPPLIER"
PRIORITY_COLUMN = "PRIORITY"
LEVEL_SEPARATOR = "<|>"

# Keys (see header_key) in order of preference: PO_NUMBER beats a column merely called "PO".
PO_KEYS = ("ponumber", "purchaseordernumber", "purchaseorder", "po")
SUPPLIER_KEYS = ("supplier", "suppliername")
PRIORITY_KEYS = ("priority",)

_JOINERS = re.compile(r"[\s_\-.]+")


def clean_header(name: object) -> str:
    """A header cell as text without invisible characters (a stuck BOM) or surrounding blanks."""
    if name is None:
        return ""
    text = name if isinstance(name, str) else str(name)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip()


def header_key(name: str) -> str:
    """``PO Number``, ``po_number``, ``PO-Number`` and ``PONumber`` all give ``ponumber``."""
    return _JOINERS.sub("", clean_header(name).casefold())


def is_po_header(name: str) -> bool:
    """Whether ``name`` is an accepted name of the PO column."""
    return header_key(name) in PO_KEYS


def find_column(headers: Sequence[str], keys: Sequence[str]) -> int | None:
    """Index of the column whose key comes first in ``keys`` (its first occurrence), or None."""
    found: dict[str, int] = {}
    for index, name in enumerate(headers):
        found.setdefault(header_key(name), index)
    return next((found[key] for key in keys if key in found), None)
