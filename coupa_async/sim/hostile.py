"""The `hostile` profile: one PO per way a broken or hostile server can try to hurt a run.

`SimConfig(profile="hostile")` (`python -m coupa_async sim --profile hostile`) holds these POs
in this order, numbered from `first_po_number` (default 15262984 onwards); `recipes` (names
below) picks and orders a subset. Each PO's `recipe` is its name, so tests find it with
`next(po for po in sim.catalog.pos if po.recipe == "hostile_huge_file")`.

| # | recipe                        | what the server does                          | expected  |
|---|-------------------------------|-----------------------------------------------|-----------|
| 0 | hostile_markup_names          | supplier and file names with rich-console     | COMPLETED |
|   |                               | markup, ESC, BEL and a right-to-left override |           |
| 1 | hostile_name_clash            | note.eml (an e-mail) beside note.eml.pdf,     | COMPLETED |
|   |                               | note.pdf, note.eml (e-mail).pdf and           |           |
|   |                               | note.eml (e-mail 9).pdf                       |           |
| 2 | hostile_name_clash_folder     | note.eml beside a file note.eml_attachments   | COMPLETED |
| 3 | hostile_login_on_file         | 2 files; one answers the login form, HTTP 200,| PARTIAL   |
|   |                               | always, while the session stays valid         |           |
| 4 | hostile_login_on_page         | the PO page always answers the login form     | FAILED    |
| 5 | hostile_other_host_429        | 2 files, and 1 linked as http://localhost:P/..| COMPLETED |
|   |                               | (the tenant being 127.0.0.1:P) answering 429, |           |
|   |                               | Retry-After 1000000000, `hostile_retry_times` |           |
|   |                               | times, then the file                          |           |
| 6 | hostile_huge_page             | the PO page: chunked HTML, `hostile_page_size`| FAILED    |
|   |                               | bytes (None: endless)                         |           |
| 7 | hostile_gzip_page             | the PO page: a gzip bomb of HTML              | FAILED    |
|   |                               | (`hostile_bomb_size` decompressed)            |           |
| 8 | hostile_huge_file             | 1 good file, 1 declaring `hostile_file_size`  | PARTIAL   |
|   |                               | (3 GiB) and sending it for real               |           |
| 9 | hostile_gzip_file             | 1 good file, 1 gzip bomb starting `%PDF-1.4`  | PARTIAL   |
|   |                               | (200 MiB from about 200 KB)                   |           |
|10 | hostile_endless_file          | 1 good file, 1 chunked and endless            | PARTIAL   |
|11 | hostile_stalled_file          | 1 good file, 1 silent after                   | PARTIAL   |
|   |                               | `hostile_stall_after` bytes (100 KiB)         |           |
|12 | hostile_private_links         | 1 good file and three file-looking links to   | COMPLETED |
|   |                               | 169.254.169.254, 10.255.255.1, 192.168.0.1    |           |

Why these outcomes (the reference's vocabulary, as `coupa_async.results.result.Outcome` has it):
PARTIAL is "some saved, some not", so a PO with one good file and one that a bound refuses is
PARTIAL, as `partial_html_instead` is; a PO whose own page never answers itself has nothing
saved: FAILED. The names of case 0 are saved sanitised (the catalog's expected names are the
raw server names). Case 5 needs the tool to fetch from `localhost`: its settings must list it
in `network.file_hosts`, else the file is a URL attachment and the PO is not COMPLETED as the
catalog expects; the file on the other host needs no session cookie (a document store's
signed link); `Stats.retry_after_reached` counts the requests that reached it and
`Stats.requests_by_host` the requests to each host. In case 12 the links count
in `expected_links` (3, kind "url"); nothing may reach those addresses.
"""

from __future__ import annotations

from typing import Any

from .catalog import _FileSpec, _LinkSpec, _Recipe
from .config import SimConfig
from .content import MailTraits
from .faults import HostileAnswer

HOSTILE_CASES: tuple[str, ...] = (
    "hostile_markup_names",
    "hostile_name_clash",
    "hostile_name_clash_folder",
    "hostile_login_on_file",
    "hostile_login_on_page",
    "hostile_other_host_429",
    "hostile_huge_page",
    "hostile_gzip_page",
    "hostile_huge_file",
    "hostile_gzip_file",
    "hostile_endless_file",
    "hostile_stalled_file",
    "hostile_private_links",
)
"""The recipe names of the hostile profile, in catalog order."""

PRIVATE_LINKS: tuple[tuple[str, str], ...] = (
    ("http://169.254.169.254/latest/meta-data/iam", "iam-credentials.pdf"),
    ("http://10.255.255.1/secret.pdf", "secret.pdf"),
    ("http://192.168.0.1/x.pdf", "x.pdf"),
)
"""(URL, link text) of the private links of `hostile_private_links`."""

SUPPLIER = "Hostile Server Inc."
MARKUP_SUPPLIER = "ACME [/x] [bold]Ltd"
HTML = "text/html; charset=utf-8"
PDF = "application/pdf"
FILE_SIZE = 40_000


def _file(name: str, file_type: Any = "pdf", **kwargs: Any) -> _FileSpec:
    """A file linked by a plain relative link, its name in Content-Disposition; small (an
    e-mail's size is its content's)."""
    kwargs.setdefault("markup", "attachment_href")
    kwargs.setdefault("disposition", "filename")
    kwargs.setdefault("size", FILE_SIZE)
    return _FileSpec(file_type, name=name, absolute=False, **kwargs)


def _answer(fault: str, times: int | None = None, **params: Any) -> HostileAnswer:
    return HostileAnswer(fault, tuple(params.items()), times)


def hostile_recipes(config: SimConfig) -> dict[str, _Recipe]:
    """The hostile cases by recipe name, in catalog order, sized by `config`."""
    c = config
    good = _file("Purchase Order.pdf")
    cases = (
        _Recipe(
            "hostile_markup_names",
            supplier=MARKUP_SUPPLIER,
            files=(
                _file("[link=http://evil.example]click[/link].pdf"),
                _file("report[/].pdf", markup="download_href", disposition="filename_star"),
                _file("\x1b[31mred.pdf", disposition="filename_star"),
                # No Content-Disposition: the name comes from the download attribute.
                _file("bell\x07 invoice\u202efdp.pdf", markup="download_attr", disposition="none"),
            ),
        ),
        _Recipe(
            "hostile_name_clash",
            supplier=SUPPLIER,
            files=(
                _file("note.eml", "eml", mail=MailTraits(language="en", attachments=1)),
                _file("note.eml.pdf"),
                _file("note.pdf"),
                _file("note.eml (e-mail).pdf"),
                _file("note.eml (e-mail 9).pdf"),
            ),
        ),
        _Recipe(
            "hostile_name_clash_folder",
            supplier=SUPPLIER,
            files=(
                _file("note.eml", "eml", mail=MailTraits(language="en", attachments=2)),
                _file("note.eml_attachments", "txt"),
            ),
        ),
        _Recipe(
            "hostile_login_on_file",
            supplier=SUPPLIER,
            files=(good, _file("Signed quote.pdf", hostile=_answer("login_page"))),
        ),
        _Recipe(
            "hostile_login_on_page",
            supplier=SUPPLIER,
            files=(good,),
            hostile=_answer("login_page"),
        ),
        _Recipe(
            "hostile_other_host_429",
            supplier=SUPPLIER,
            files=(
                good,
                _file("Terms.pdf", markup="download_href"),
                _file(
                    "Drawing from the document store.pdf",
                    other_host=True,
                    hostile=_answer(
                        "retry_after", times=c.hostile_retry_times, value=c.hostile_retry_after
                    ),
                ),
            ),
        ),
        _Recipe(
            "hostile_huge_page",
            supplier=SUPPLIER,
            files=(good,),
            hostile=_answer(
                "big_body", size=c.hostile_page_size, declare_length=False, content_type=HTML
            ),
        ),
        _Recipe(
            "hostile_gzip_page",
            supplier=SUPPLIER,
            files=(good,),
            hostile=_answer("gzip_bomb", size=c.hostile_bomb_size, content_type=HTML),
        ),
        _bad_file_case(
            "hostile_huge_file", "Huge drawing.pdf", "declared_size", size=c.hostile_file_size
        ),
        _bad_file_case(
            "hostile_gzip_file", "Compressed scan.pdf", "gzip_bomb", size=c.hostile_bomb_size
        ),
        _bad_file_case(
            "hostile_endless_file",
            "Endless report.pdf",
            "big_body",
            size=None,
            declare_length=False,
        ),
        _bad_file_case(
            "hostile_stalled_file", "Stalled scan.pdf", "stall", after_bytes=c.hostile_stall_after
        ),
        _Recipe(
            "hostile_private_links",
            supplier=SUPPLIER,
            files=(good,),
            links=tuple(_LinkSpec("url_file", value=url, name=name) for url, name in PRIVATE_LINKS),
        ),
    )
    recipes = {recipe.name: recipe for recipe in cases}
    assert tuple(recipes) == HOSTILE_CASES
    return recipes


def _bad_file_case(recipe: str, name: str, fault: str, **params: Any) -> _Recipe:
    """A good file, then one whose URL always answers `fault`."""
    bad = _answer(fault, filename=name, content_type=PDF, **params)
    return _Recipe(
        recipe,
        supplier=SUPPLIER,
        files=(_file("Purchase Order.pdf"), _file(name, hostile=bad)),
    )
