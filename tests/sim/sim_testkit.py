"""Helpers for the simulator tests: sign-in over HTTP and a reader that follows the reference."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from typing import Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp
from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node

from coupa_async.sim import Simulator
from coupa_async.sim.catalog import RECIPES, LateFill, SimPO, SimRequisition

N_RECIPES = len(RECIPES)
# A request the simulator holds (a long poll, an outage, a hang) is held HELD_S; a stop must end
# it far sooner, within STOP_DEADLINE_S. Only a stop that waits for the hold misses it: a deadline
# that catches a hang, not a measure of speed (these machines are shared and often busy).
HELD_S = 600.0
STOP_DEADLINE_S = 60.0
"""POs a varied catalog needs to hold every recipe (and so every variant) once."""
LATE_RECIPES = (
    "late_json_links",
    "late_fragment_links",
    "late_two_parts_links",
    "late_json_empty",
    "late_broken_a",
    "late_broken_b",
    "late_broken_c",
    "pr_late_json_no_po_files",
    "pr_late_two_parts_po_not_pdf",
    "pr_late_broken_no_po_files",
)
"""Every recipe with a late-filled list, on the PO page or on its requisition."""

TOKEN = re.compile(r'name="authenticity_token" value="([^"]+)"')
LAZY = re.compile(r"box\.innerHTML = (\".*?\");\n", re.S)
MakeSim = Callable[..., Awaitable[Simulator]]
"""The `make_sim` fixture: start a simulator with `SimConfig(**kwargs)`."""

FILE_URL = re.compile(r"/(?:attachments|file_download|files)/(\d+)")
SUPPLIER_SELECTORS = (
    "span[data-supplier-name]",
    "[class*='supplier-name']",
    ".supplier-info span",
    "[data-testid*='supplier'] span",
)


class Tenant(Protocol):
    """Where and as whom to sign in: a `Simulator`, or one running in another process."""

    @property
    def base_url(self) -> str: ...

    @property
    def username(self) -> str: ...

    @property
    def password(self) -> str: ...


def new_client(**kwargs: object) -> aiohttp.ClientSession:
    """A client whose cookie jar keeps cookies from 127.0.0.1."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **kwargs)  # type: ignore[arg-type]


def csrf_token(html: str) -> str:
    match = TOKEN.search(html)
    assert match, "no authenticity_token in the page"
    return match.group(1)


async def sign_in(
    client: aiohttp.ClientSession, sim: Tenant, return_to: str | None = None
) -> aiohttp.ClientResponse:
    """Fill in Coupa's own form; returns the (unfollowed) answer to the POST."""
    async with client.get(f"{sim.base_url}/sessions/new") as r:
        token = csrf_token(await r.text())
    form = {
        "authenticity_token": token,
        "user[login]": sim.username,
        "user[password]": sim.password,
    }
    if return_to is not None:
        form["return_to"] = return_to
    async with client.post(f"{sim.base_url}/sessions", data=form, allow_redirects=False) as r:
        await r.read()
        assert r.status == 302, f"sign-in failed with HTTP {r.status}"
        return r


async def fetch(client: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    """(status, Location or "", body text) without following redirects."""
    async with client.get(url, allow_redirects=False) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


def tree(html: str) -> HTMLParser:
    return HTMLParser(html)


def visible_text(doc: HTMLParser) -> str:
    body = doc.body
    if body is None:
        return ""
    clone = HTMLParser(body.html or "")
    for script in clone.css("script, style"):
        script.decompose()
    return clone.body.text(deep=True) if clone.body else ""


def read_supplier(doc: HTMLParser) -> str | None:
    """The first non-empty text of the reference's supplier selectors."""
    for selector in SUPPLIER_SELECTORS:
        for node in doc.css(selector):
            text = node.text(deep=True).strip()
            if text:
                return text
    return None


def lazy_fragment(html: str) -> str | None:
    """The attachment markup a page's script inserts after load, if any."""
    match = LAZY.search(html)
    return json.loads(match.group(1)) if match else None


@dataclass(frozen=True)
class Found:
    """An attachment element as the reference describes discovery."""

    url: str | None  # resolved; None for click-only elements
    file_id: int
    markup_name: str | None  # download attribute, title, aria-label, link text
    node_html: str


def _is_attachment(node: Node) -> bool:
    attrs = node.attributes
    if "data-file-id" in attrs:  # click-only, maybe with nothing saying "attachment"
        return True
    href = attrs.get("href") or ""
    if node.tag == "a" and href and ("attachment" in href or "download" in href):
        return True
    if node.tag == "a" and "download" in attrs:
        return True
    label = (attrs.get("aria-label") or "") + " " + (attrs.get("title") or "")
    return "attachment" in label.lower()


def _markup_name(node: Node) -> str | None:
    attrs = node.attributes
    text = node.text(deep=True).strip()
    for candidate in (attrs.get("download"), attrs.get("title"), attrs.get("aria-label"), text):
        if candidate and candidate.strip():
            return candidate
    return None


def find_attachments(html: str, page_url: str) -> list[Found]:
    """Attachments on a page (static markup plus the lazily inserted fragment), de-duplicated
    by resolved URL, in page order; links to other hosts are URL attachments, not files."""
    sources = [html]
    fragment = lazy_fragment(html)
    if fragment:
        sources.append(fragment)
    found: list[Found] = []
    seen: set[str] = set()
    for source in sources:
        for node in HTMLParser(source).css("a, span, div, button"):
            if not _is_attachment(node):
                continue
            href = node.attributes.get("href")
            if href:
                url = urljoin(page_url, href)
                if urlsplit(url).netloc != urlsplit(page_url).netloc or url in seen:
                    continue
                seen.add(url)
                match = FILE_URL.search(urlsplit(url).path)
                assert match, url
                file_id = int(match.group(1))
            else:
                url = None
                file_id = int(node.attributes["data-file-id"] or "0")
            found.append(Found(url, file_id, _markup_name(node), node.html or ""))
    return found


def url_name(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def disposition_name(header: str | None) -> str | None:
    """The file name of a Content-Disposition value: `filename*` wins over `filename`."""
    if not header:
        return None
    star = re.search(r"filename\*=UTF-8''([^;]+)", header, re.I)
    if star:
        return unquote(star.group(1).strip(), encoding="utf-8")
    plain = re.search(r'filename="([^"]*)"', header)
    return plain.group(1) if plain else None


def json_to_html(items: list[Any]) -> str:
    """HTML of a late list's JSON, built as its script builds the DOM (texts and attributes
    escaped), one element after another."""
    return "".join(_node_html(item) for item in items)


def _node_html(node: Any) -> str:
    if isinstance(node, str):
        return escape(node, quote=True)
    assert set(node) <= {"tag", "attrs", "text", "children"}, node
    attrs = "".join(f' {k}="{escape(v, quote=True)}"' for k, v in node["attrs"].items())
    inner = escape(node.get("text", ""), quote=True)
    inner += "".join(_node_html(child) for child in node.get("children", ()))
    return f"<{node['tag']}{attrs}>{inner}</{node['tag']}>"


@dataclass(frozen=True)
class LateAnswer:
    """One answer of a late list's data endpoint."""

    status: int
    content_type: str
    body: str
    seconds: float  # from sending the request to the end of the answer


async def get_timed(client: aiohttp.ClientSession, url: str) -> LateAnswer:
    start = time.perf_counter()
    async with client.get(url, allow_redirects=False) as r:
        body = await r.text()
    return LateAnswer(r.status, r.content_type, body, time.perf_counter() - start)


async def late_markup(
    client: aiohttp.ClientSession, base_url: str, page_path: str, late: LateFill
) -> tuple[str, list[LateAnswer]]:
    """The markup a late list's script puts into the container, fetched as the script does
    (both parts in turn for late_two_parts), and the answers it got."""
    url = base_url + late.data_path(page_path)
    if late.trait == "late_fragment":
        answer = await get_timed(client, url)
        return answer.body, [answer]
    answers = []
    markup = ""
    for suffix in ("?part=1", "?part=2") if late.trait == "late_two_parts" else ("",):
        answer = await get_timed(client, url + suffix)
        answers.append(answer)
        markup += json_to_html(json.loads(answer.body))
    return markup, answers


def html_file_ids(page: SimPO | SimRequisition) -> list[int]:
    """Ids of the files a reader finds in a page's HTML as served, in page order."""
    return [f.id for f in page.html_files]
