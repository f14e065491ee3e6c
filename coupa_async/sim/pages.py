"""HTML of the simulated Coupa pages. Pure functions: data in, text out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote, urlsplit

from .assets import AssetRefs, heavy_head, heavy_tail
from .catalog import (
    Catalog,
    CommentsFill,
    LateFill,
    SimComment,
    SimFile,
    SimLink,
    SimPO,
    SimRequisition,
    Trait,
    comment_place,
    header_place,
    line_place,
)

PAGE_SIZE = 25  # rows of the PO list per page

_STYLE = """
body{font-family:Arial,Helvetica,sans-serif;margin:0;color:#222;background:#f4f6f8}
#header{background:#1f3c5a;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
#header a{color:#fff;text-decoration:none}
#main{padding:16px 24px;background:#fff;margin:12px;border:1px solid #dde}
.field{margin:4px 0}.field label{display:inline-block;width:140px;color:#667}
.notice{background:#fff8d6;border:1px solid #e8d77a;padding:6px 10px;margin:8px 0}
.flash_error,.flash-error{background:#fde8e8;border:1px solid #e99;padding:8px 12px;margin:8px 0}
table.lines{border-collapse:collapse;margin-top:12px}
table.lines td,table.lines th{border:1px solid #ccd;padding:3px 8px}
#attachments a,#attachments span[role=button]{display:block;margin:2px 0;cursor:pointer}
""".strip()

TOOLBAR_STYLE = (
    "position:fixed;top:0;left:0;width:100%;height:100%;z-index:1000;"
    "background:rgba(240,243,246,0.35);display:flex;justify-content:flex-end;"
    "align-items:flex-start;padding:60px 24px 0 0;box-sizing:border-box"
)

# Delegated click handler for click-only attachments (also covers links inserted later).
_CLICK_SCRIPT = """
document.addEventListener('click', function (event) {
  var el = event.target.closest ? event.target.closest('[data-file-id]') : null;
  if (!el) { return; }
  event.preventDefault();
  var url = '/file_download/' + el.getAttribute('data-file-id');
  if (el.getAttribute('data-dl') === 'anchor') {
    var a = document.createElement('a');
    a.href = url;
    a.download = el.textContent.trim();
    document.body.appendChild(a);
    a.click();
    a.remove();
  } else {
    window.location.href = url + '?dl=1';
  }
});
""".strip()

LOADING_TEXT = "Loading attachments…"
COMMENTS_LOADING_TEXT = "Loading comments…"

# Helpers of a late list's script: build elements from their JSON, fetch, report failures.
_LATE_LIB = """
var box = document.getElementById('attachments');
function build(d) {
  if (typeof d === 'string') { return document.createTextNode(d); }
  var el = document.createElement(d.tag);
  Object.keys(d.attrs || {}).forEach(function (name) { el.setAttribute(name, d.attrs[name]); });
  if (typeof d.text === 'string') { el.textContent = d.text; }
  (d.children || []).forEach(function (child) { el.appendChild(build(child)); });
  return el;
}
function get(url, as) {
  return fetch(url, {credentials: 'same-origin'}).then(function (r) {
    if (!r.ok || r.redirected) { throw new Error('HTTP ' + r.status + ' from ' + r.url); }
    return as === 'json' ? r.json() : r.text();
  });
}
function append(items) { items.forEach(function (d) { box.appendChild(build(d)); }); }
function failed(error) { console.error('Attachments could not be loaded:', error); }
""".strip()

# Late comments: replace the loading sign (if any) with the comments, then mark the area done.
_COMMENTS_FILL = """
get(src, 'json').then(function (items) {
  var sign = box.querySelector('.loading');
  if (sign) { sign.remove(); }
  append(items);
  box.removeAttribute('aria-busy');
}).catch(function (error) { console.error('Comments could not be loaded:', error); });
""".strip()

_LATE_FETCH = {
    "late_json": "get(src, 'json').then(append).catch(failed);",
    "late_broken": "get(src, 'json').then(append).catch(failed);",
    "late_fragment": (
        "get(src, 'text').then(function (html) { box.innerHTML = html; }).catch(failed);"
    ),
    "late_two_parts": (
        "get(src + '?part=1', 'json').then(append)\n"
        "    .then(function () { return get(src + '?part=2', 'json'); })\n"
        "    .then(append).catch(failed);"
    ),
}
# late_broken / js_error: reads a configuration element the page does not have (TypeError).
_LATE_JS_ERROR = (
    "var source = document.getElementById('attachments-source');\n"
    "  get(source.getAttribute('data-url'), 'json').then(append).catch(failed);"
)


def _e(text: str) -> str:
    return escape(text, quote=True)


def _layout(
    title: str,
    body: str,
    *,
    signed_in: bool = True,
    scripts: str = "",
    heavy: AssetRefs | None = None,
) -> str:
    """A page; `heavy` (signed-in pages only) adds the assets, polls and analytics."""
    heavy = heavy if signed_in else None
    bell = '<span id="notification-count" class="badge">0</span>' if heavy else ""
    nav = (
        '<a href="/">Home</a><a href="/order_headers">Orders</a>'
        f'<span style="flex:1"></span>{bell}<a href="/sessions/destroy">Logout</a>'
        if signed_in
        else ""
    )
    head = heavy_head(heavy) if heavy else ""
    logo = heavy.logo_html() if heavy else "<b>coupa</b>"
    tail = heavy_tail(heavy) if heavy else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n{head}<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<div id="header"><a class="logo" href="/">{logo}</a>{nav}</div>\n'
        f'<div id="main">\n{body}\n</div>\n{scripts}{tail}</body>\n</html>\n'
    )


# --- sign-in ------------------------------------------------------------------------------------


def login_page(token: str, return_to: str, error: str | None = None) -> str:
    """Coupa's own sign-in form."""
    flash = f'<div class="flash_error">{_e(error)}</div>\n' if error else ""
    body = f"""<h1>Sign in to Coupa</h1>
{flash}<form id="new_user" class="new_user" action="/sessions" method="post" accept-charset="UTF-8">
<input type="hidden" name="authenticity_token" value="{_e(token)}">
<input type="hidden" name="return_to" value="{_e(return_to)}">
<div class="field"><label for="user_login">Email or user name</label>
<input type="text" id="user_login" name="user[login]" autocomplete="username" autofocus></div>
<div class="field"><label for="user_password">Password</label>
<input type="password" id="user_password" name="user[password]" autocomplete="current-password">
</div>
<div class="field"><button type="submit" id="sign_in_button" name="commit">Sign In</button></div>
</form>"""
    return _layout("Sign in - Coupa", body, signed_in=False)


def idp_page(relay_state: str, error: str | None = None) -> str:
    """The identity provider's sign-in form (SSO mode)."""
    message = f'<p id="error" class="idp-error" role="alert">{_e(error)}</p>\n' if error else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign In - Example Corp Identity</title>
<style>body{{font-family:Segoe UI,sans-serif;background:#eef1f5}}
.card{{width:360px;margin:80px auto;background:#fff;padding:28px;border-radius:6px}}
.card input{{width:100%;margin:6px 0 14px;padding:6px}}</style></head>
<body>
<div class="card">
<h2>Example Corp</h2>
<p>Sign in with your organisation account</p>
{message}<form id="idp-login" action="/idp/saml/login" method="post">
<input type="hidden" name="RelayState" value="{_e(relay_state)}">
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username">
<label for="passwd">Password</label>
<input type="password" id="passwd" name="passwd" autocomplete="current-password">
<input type="submit" id="idp-submit" value="Sign in">
</form>
</div>
</body>
</html>
"""


# --- signed-in pages ----------------------------------------------------------------------------


def home_page(username: str, catalog: Catalog, heavy: AssetRefs | None = None) -> str:
    """The dashboard shown at `/` after sign-in."""
    body = f"""<h1>Home</h1>
<p class="welcome">Welcome, {_e(username)}</p>
<div class="dashboard">
<div class="tile"><h3>Orders</h3><p>{len(catalog.pos)} purchase orders</p>
<a href="/order_headers">View purchase orders</a></div>
</div>"""
    return _layout("Home - Coupa", body, heavy=heavy)


def list_pos(catalog: Catalog, keyword: str) -> list[SimPO]:
    """The POs the list shows: those whose number contains `keyword` ("": all), never the
    error-page ones (they do not exist)."""
    return catalog.search(keyword)


def po_list_page(
    catalog: Catalog, keyword: str = "", page: int = 1, heavy: AssetRefs | None = None
) -> str:
    """The purchase order list at `/order_headers`: a search box, then one page of rows."""
    pos = list_pos(catalog, keyword)
    pages = max(1, -(-len(pos) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = pos[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    rows = "\n".join(
        f'<tr><td><a href="{_e(po.url_path)}">{po.number}</a></td>'
        f"<td>{_e(po.supplier or '')}</td><td>Issued</td></tr>"
        for po in shown
    )
    if not rows:
        rows = '<tr class="no-results"><td colspan="3">No results</td></tr>'
    body = f"""<h1>Purchase Orders</h1>
<form id="order_header_search" action="/order_headers" method="get" role="search">
<input type="search" name="search[keyword]" value="{_e(keyword)}" \
placeholder="Search purchase orders" aria-label="Search">
<button type="submit">Search</button>
</form>
<table class="lines" id="order_headers_table">
<thead><tr><th>PO Number</th><th>Supplier</th><th>Status</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
{_pagination(keyword, page, pages)}"""
    return _layout("Purchase Orders - Coupa", body, heavy=heavy)


def _pagination(keyword: str, page: int, pages: int) -> str:
    query = f"search%5Bkeyword%5D={quote(keyword, safe='')}&amp;" if keyword else ""
    links = f'<span class="page-info">Page {page} of {pages}</span>'
    href = f"/order_headers?{query}page="
    if page > 1:
        links += f' <a class="prev_page" rel="prev" href="{href}{page - 1}">Previous</a>'
    if page < pages:
        links += f' <a class="next_page" rel="next" href="{href}{page + 1}">Next</a>'
    return f'<div class="pagination">{links}</div>'


def _supplier_html(po: SimPO) -> str:
    name = _e(po.supplier or "")
    markup = po.supplier_markup
    if markup == "none" or po.supplier is None:
        return ""
    if markup == "data_attr":
        inner = f"<span data-supplier-name>{name}</span>"
    elif markup == "class":
        inner = f'<div class="po-supplier-name">{name}</div>'
    elif markup == "info":
        inner = f'<div class="supplier-info"><span>{name}</span></div>'
    elif markup == "testid":
        inner = f'<div data-testid="po-supplier"><span>{name}</span></div>'
    else:  # empty_first: an empty first candidate, then the name in a later one
        inner = (
            f'<span data-supplier-name></span><div class="supplier-info"><span>{name}</span></div>'
        )
    return f'<div class="field"><label>Supplier</label>{inner}</div>'


def _href(path: str, absolute: bool, origin: str) -> str:
    return _e(origin + path if absolute else path)


def other_origin(origin: str) -> str:
    """The same server under another host name: `localhost` for an address such as
    127.0.0.1, and 127.0.0.1 for `localhost` (the port kept)."""
    parts = urlsplit(origin)
    host = "127.0.0.1" if (parts.hostname or "").lower() == "localhost" else "localhost"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True)
class Element:
    """One element with attributes and children (text or elements), rendered either as HTML
    or as the JSON a late-list script turns into DOM nodes."""

    tag: str
    attrs: tuple[tuple[str, str], ...] = ()
    children: tuple[Element | str, ...] = ()

    def html(self) -> str:
        attrs = "".join(f' {name}="{_e(value)}"' for name, value in self.attrs)
        inner = "".join(_child_html(c) for c in self.children)
        return f"<{self.tag}{attrs}>{inner}</{self.tag}>"

    def to_json(self) -> dict[str, Any]:
        """`{"tag", "attrs", "text"}` when the content is one text, else `"children"`: a list
        of texts and elements."""
        data: dict[str, Any] = {"tag": self.tag, "attrs": dict(self.attrs)}
        if len(self.children) == 1 and isinstance(self.children[0], str):
            data["text"] = self.children[0]
        elif self.children:
            data["children"] = [c if isinstance(c, str) else c.to_json() for c in self.children]
        return data


def _child_html(child: Element | str) -> str:
    return _e(child) if isinstance(child, str) else child.html()


_PAPERCLIP = Element("i", (("class", "icon-paperclip"),))


def attachment_element(f: SimFile, origin: str) -> Element:
    """The element of one attachment, per its markup variant."""
    href = origin + f.url_path if f.absolute else f.url_path
    if f.other_host:
        href = other_origin(origin) + f.url_path
    label = f.label
    m = f.markup
    attrs: tuple[tuple[str, str], ...]
    if m in ("attachment_href", "download_href"):
        return Element("a", (("class", "attachment-link"), ("href", href)), (label,))
    if m == "download_attr":
        return Element("a", (("class", "btn"), ("href", href), ("download", label)), ("Download",))
    if m == "aria_title":
        attrs = (("href", href), ("aria-label", "file attachment"), ("title", label))
        return Element("a", attrs, (_PAPERCLIP, " Open"))
    if m in ("click_nav", "click_anchor"):
        attrs = (
            ("role", "button"),
            ("tabindex", "0"),
            ("class", "file-chip"),
            ("aria-label", f"file attachment: {label}"),
            ("data-file-id", str(f.id)),
            ("data-dl", "nav" if m == "click_nav" else "anchor"),
        )
        return Element("span", attrs, (label,))
    if m == "click_title":
        attrs = (
            ("role", "button"),
            ("tabindex", "0"),
            ("class", "file-name"),
            ("title", label),
            ("data-file-id", str(f.id)),
            ("data-dl", f.dl),
        )
        return Element("span", attrs, (label,))
    return Element("a", (("class", "attachment-icon"), ("href", href)), (_PAPERCLIP,))


def link_element(link: SimLink) -> Element:
    """The element of a URL or text attachment."""
    attrs: tuple[tuple[str, str], ...]
    if link.markup == "url_marked":
        attrs = (
            ("class", "attachment-url"),
            ("data-attachment-type", "url"),
            ("href", link.value),
            ("target", "_blank"),
            ("rel", "noopener"),
        )
        return Element("a", attrs, (link.name,))
    if link.markup == "url_download":
        return Element("a", (("class", "attachment-link"), ("href", link.value)), (link.name,))
    if link.markup == "url_file":
        attrs = (("class", "attachment-link"), ("href", link.value), ("download", link.name))
        return Element("a", attrs, (link.name,))
    attrs = (("class", "attachment-text"), ("data-attachment-type", "text"))
    return Element("div", attrs, (link.value,))


def area_elements(files: Sequence[SimFile], links: Sequence[SimLink], origin: str) -> list[Element]:
    """An area's files, then its links."""
    return [*(attachment_element(f, origin) for f in files), *map(link_element, links)]


def comment_element(
    comment: SimComment, files: Sequence[SimFile], links: Sequence[SimLink], origin: str
) -> Element:
    """One comment with its attachments."""
    attrs = (("class", "comment"), ("data-comment-id", str(comment.id)))
    date = Element(
        "time", (("class", "comment-date"), ("datetime", comment.datetime)), (comment.shown,)
    )
    return Element(
        "div",
        attrs,
        (
            Element("span", (("class", "comment-author"),), (comment.author,)),
            " ",
            date,
            Element("p", (("class", "comment-body"),), (comment.body,)),
            Element(
                "div",
                (("class", "comment-attachments"),),
                tuple(area_elements(files, links, origin)),
            ),
        ),
    )


def attachment_html(f: SimFile, origin: str) -> str:
    """The markup of one attachment, per its markup variant."""
    return attachment_element(f, origin).html()


def _attachments_html(files: Sequence[SimFile], origin: str, links: Sequence[SimLink] = ()) -> str:
    if not files and not links:
        return '<p class="empty">No attachments</p>'
    return "\n".join(e.html() for e in area_elements(files, links, origin))


def attachments_json(files: Sequence[SimFile], origin: str) -> list[dict[str, Any]]:
    """A late list's JSON (`attachments.json`): one element description per attachment."""
    return [attachment_element(f, origin).to_json() for f in files]


def attachments_fragment(files: Sequence[SimFile], origin: str) -> str:
    """A late list's HTML fragment (`attachments_fragment`): the static page's markup."""
    return _attachments_html(files, origin)


def script_json(value: object) -> str:
    """JSON safe inside a <script> element (no `</`, `<!--` or `]]>`)."""
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _late_script(late: LateFill, data_path: str) -> str:
    """The script that fills an empty attachment list after load."""
    body = _LATE_JS_ERROR if late.failure == "js_error" else _LATE_FETCH[late.trait]
    if late.start == "inline":
        start = "loadAttachments();"
    elif late.start == "domcontentloaded":
        start = "document.addEventListener('DOMContentLoaded', loadAttachments);"
    else:
        start = (
            "window.addEventListener('load', function () {\n"
            f"  setTimeout(loadAttachments, {late.start_timeout_ms});\n}});"
        )
    return (
        "<script>\n(function () {\n'use strict';\n"
        f"var src = {script_json(data_path)};\n{_LATE_LIB}\n"
        f"function loadAttachments() {{\n  {body}\n}}\n{start}\n}})();\n</script>\n"
    )


def _list_html(
    files: Sequence[SimFile],
    traits: frozenset[Trait],
    late: LateFill | None,
    lazy_delay_ms: int,
    page_path: str,
    origin: str,
    links: Sequence[SimLink] = (),
) -> tuple[str, str]:
    """(the attachment container, the script that fills it later, if any)."""
    if late is not None:  # empty, and nothing says it is loading
        return '<div id="attachments"></div>', _late_script(late, late.data_path(page_path))
    attachments = _attachments_html(files, origin, links)
    if "lazy_attachments" not in traits:
        return f'<div id="attachments">\n{attachments}\n</div>', ""
    container = (
        f'<div id="attachments" data-loading="true"><span class="loading">{LOADING_TEXT}'
        "</span></div>"
    )
    payload = json.dumps(attachments).replace("</", "<\\/")
    script = (
        "<script>\nsetTimeout(function () {\n"
        "  var box = document.getElementById('attachments');\n"
        f"  box.innerHTML = {payload};\n"
        "  box.removeAttribute('data-loading');\n"
        f"}}, {lazy_delay_ms});\n</script>\n"
    )
    return container, script


def _duplicates_html(files: tuple[SimFile, ...], origin: str) -> str:
    dups = [f for f in files if f.duplicate_link]
    if not dups:
        return ""
    # The same URL again, absolute, with a download attribute: one file, two links.
    links = "\n".join(
        f'<a href="{_e(origin + f.url_path)}" download="{_e(f.label)}">Download</a>' for f in dups
    )
    return f'<div class="sidebar recent-files"><h3>Recent files</h3>\n{links}\n</div>'


def _requisition_html(pr: SimRequisition | None, origin: str) -> str:
    if pr is None:
        return ""
    href = _href(pr.url_path, pr.absolute, origin)
    return (
        '<div class="field"><label>Source document</label>'
        f'<a href="{href}">{_e(pr.link_text)}</a></div>'
    )


def _line_cell(page: SimPO | SimRequisition, line: int, origin: str) -> str:
    files, links = page.in_area(line_place(page.source_kind, line))
    inner = "".join(e.html() for e in area_elements(files, links, origin))
    return f'<td class="line-attachments">{inner}</td>'


def _lines_html(po: SimPO, origin: str) -> str:
    count = max(1 + int(po.number) % 3, po.line_count)
    rows = "\n".join(
        f'<tr class="order-line" data-line-num="{i}"><td>{i}</td>'
        f"<td>Item {po.number[-3:]}-{i}</td><td>{i * 3}</td>"
        f"<td>{(int(po.number) % 997) * i}.00</td>{_line_cell(po, i, origin)}</tr>"
        for i in range(1, count + 1)
    )
    return (
        '<table class="lines order-lines"><thead><tr><th>Line</th><th>Item</th><th>Qty</th>'
        f"<th>Price</th><th>Attachments</th></tr></thead><tbody>\n{rows}\n</tbody></table>"
    )


def _pr_lines_html(pr: SimRequisition, origin: str) -> str:
    count = max(1 + int(pr.number) % 2, pr.line_count)
    rows = "\n".join(
        f'<tr class="requisition-line" data-line-num="{i}"><td>{i}</td>'
        f"<td>Request {pr.number[-3:]}-{i}</td><td>{i * 2}</td>{_line_cell(pr, i, origin)}</tr>"
        for i in range(1, count + 1)
    )
    return (
        '<table class="lines requisition-lines"><thead><tr><th>Line</th><th>Item</th>'
        f"<th>Qty</th><th>Attachments</th></tr></thead><tbody>\n{rows}\n</tbody></table>"
    )


def comments_elements(page: SimPO | SimRequisition, origin: str) -> list[Element]:
    """The comment items of a page (what `comments.json` describes when they come late)."""
    items = []
    for comment in page.comments:
        files, links = page.in_area(comment_place(page.source_kind, comment))
        items.append(comment_element(comment, files, links, origin))
    return items


def comments_json(page: SimPO | SimRequisition, origin: str) -> list[dict[str, Any]]:
    return [e.to_json() for e in comments_elements(page, origin)]


def _comments_html(page: SimPO | SimRequisition, origin: str) -> tuple[str, str]:
    """(the comments area, the script that fills it later, if any)."""
    fill = page.comments_fill
    if fill is None:
        items = "\n".join(e.html() for e in comments_elements(page, origin))
        items = items or '<p class="empty">No comments</p>'
        return f'<div id="comments" class="comments-section"><h3>Comments</h3>\n{items}\n</div>', ""
    busy = ' aria-busy="true"' if fill.sign else ""
    sign = f'<span class="loading">{COMMENTS_LOADING_TEXT}</span>' if fill.sign else ""
    area = f'<div id="comments" class="comments-section"{busy}><h3>Comments</h3>{sign}</div>'
    return area, _comments_script(fill, page.url_path)


def _comments_script(fill: CommentsFill, page_path: str) -> str:
    lib = _LATE_LIB.replace("getElementById('attachments')", "getElementById('comments')")
    return (
        "<script>\n(function () {\n'use strict';\n"
        f"var src = {script_json(fill.data_path(page_path))};\n{lib}\n"
        f"{_COMMENTS_FILL}\n}})();\n</script>\n"
    )


def _more_script(page: SimPO) -> str:
    """Appends the rest of the header files to the list, a moment after load, no sign."""
    if page.more is None:
        return ""
    return (
        "<script>\n(function () {\n'use strict';\n"
        f"var src = {script_json(page.more.data_path(page.url_path))};\n{_LATE_LIB}\n"
        "get(src, 'json').then(append).catch(failed);\n})();\n</script>\n"
    )


def _error_body(kind: str) -> str:
    if kind == "not_found":
        return "<h1>Oops! We couldn't find what you wanted</h1>\n<p>Please check the address.</p>"
    if kind == "not_authorized":
        return '<div class="flash_error">You are not authorized to access this page</div>'
    if kind == "access_denied":
        return '<div class="flash-error">Access denied</div>'
    if kind == "not_found_pt":
        return "<h1>Desculpe, não encontramos o que você procurava</h1>"
    if kind == "error_explanation":
        return (
            "<h1>Sorry, something went wrong</h1>\n"
            '<div id="error_explanation"><h2>1 error prohibited this page from being shown</h2>'
            "<ul><li>The record is no longer available</li></ul></div>"
        )
    raise ValueError(kind)


def po_page(po: SimPO, origin: str, heavy: AssetRefs | None = None) -> str:
    """The page of one PO (for error kinds, the error page Coupa shows instead)."""
    if po.page == "http_404":
        return not_found_page()
    if po.page != "ok":
        return _layout("Coupa", _error_body(po.page), heavy=heavy)
    traits = po.traits
    header_links = po.in_area(header_place("PO"))[1]
    container, list_script = _list_html(
        po.html_header_files, traits, po.late, po.lazy_delay_ms, po.url_path, origin, header_links
    )
    comments, comments_script = _comments_html(po, origin)
    notice = '<div class="notice">Your PO was updated</div>\n' if "notice" in traits else ""
    body = f"""<div id="order_header_show" class="order-header">
<h1>{_e(po.heading_text)}</h1>
{notice}<div class="po-header-fields">
<div class="field"><label>PO Number</label><span class="po-number">{po.number}</span></div>
<div class="field"><label>Status</label><span class="status">Issued</span></div>
{_supplier_html(po)}
{_requisition_html(po.requisition, origin)}
</div>
<div class="section attachments-section"><h3>Attachments</h3>
{container}
</div>
{_lines_html(po, origin)}
{comments}
{_duplicates_html(po.files, origin)}
</div>"""
    if "toolbar" in traits:
        body += (
            '\n<div class="page_buttons_right orderHeaderShowFloatingSection '
            f'floatingSectionOnTop" style="{TOOLBAR_STYLE}">'
            '<a class="button" href="#">Print</a> <a class="button" href="#">Email</a> '
            '<a class="button" href="#">Close</a></div>'
        )
    scripts = ""
    if any(not f.has_href for f in po.files):
        scripts += f"<script>\n{_CLICK_SCRIPT}\n</script>\n"
    scripts += list_script + _more_script(po) + comments_script
    if "script_denied" in traits:
        scripts += (
            '<script>window.I18N = {"errors": {"access_denied": "Access denied"}};</script>\n'
        )
    return _layout(po.title, body, scripts=scripts, heavy=heavy)


def pr_page(pr: SimRequisition, origin: str, heavy: AssetRefs | None = None) -> str:
    """The page of one requisition."""
    if pr.kind == "error":
        return _layout("Coupa", _error_body("not_authorized"), heavy=heavy)
    header_links = pr.in_area(header_place("PR"))[1]
    container, list_script = _list_html(
        pr.html_header_files, pr.traits, pr.late, 0, pr.url_path, origin, header_links
    )
    comments, comments_script = _comments_html(pr, origin)
    body = f"""<div id="requisition_header_show">
<h1>Requisition #{pr.number}</h1>
<div class="field"><label>Status</label><span class="status">Ordered</span></div>
<div class="section attachments-section"><h3>Attachments</h3>
{container}
</div>
{_pr_lines_html(pr, origin)}
{comments}
</div>"""
    scripts = ""
    if any(not f.has_href for f in pr.files):
        scripts = f"<script>\n{_CLICK_SCRIPT}\n</script>\n"
    scripts += list_script + comments_script
    return _layout(f"Requisition #{pr.number} - Coupa", body, scripts=scripts, heavy=heavy)


def not_found_oops_page(heavy: AssetRefs | None = None) -> str:
    """Coupa's HTTP 200 "Oops" page for an id it does not have."""
    return _layout("Coupa", _error_body("not_found"), heavy=heavy)


# --- errors -------------------------------------------------------------------------------------


def not_found_page() -> str:
    """The HTTP 404 page."""
    return _layout(
        "The page you were looking for doesn't exist (404)",
        "<h1>The page you were looking for doesn't exist.</h1>\n"
        "<p>You may have mistyped the address or the page may have moved.</p>",
    )


def server_error_page(status: int) -> str:
    """The body of a 500 or 503 answer."""
    if status == 503:
        return _layout(
            "Service Unavailable",
            "<h1>Service Unavailable</h1><p>Coupa is temporarily unavailable.</p>",
            signed_in=False,
        )
    return _layout(
        "We're sorry, but something went wrong (500)",
        "<h1>We're sorry, but something went wrong.</h1>",
        signed_in=False,
    )


def rate_limited_page() -> str:
    """The body of a 429 answer."""
    return _layout(
        "Too Many Requests",
        "<h1>Too Many Requests</h1><p>Please retry later.</p>",
        signed_in=False,
    )


def file_error_page() -> str:
    """What a broken attachment URL answers with HTTP 200 instead of the file."""
    return _layout(
        "Coupa",
        "<h1>Sorry, something went wrong</h1>\n"
        '<div class="flash_error">The file could not be retrieved. Please try again later.</div>',
    )


# --- outages ------------------------------------------------------------------------------------

MAINTENANCE_TITLE = "Coupa is down for scheduled maintenance"
MAINTENANCE_HEADING = "We'll be back soon"


def maintenance_page() -> str:
    """The tenant's HTTP 503 page while it is down for maintenance: Coupa's look, no sign-in
    form, no navigation, nothing of an error page (no Oops/Sorry, no flash_error)."""
    return _layout(
        MAINTENANCE_TITLE,
        f'<div id="maintenance">\n<h1>{_e(MAINTENANCE_HEADING)}</h1>\n'
        "<p>Coupa is down for scheduled maintenance. We are upgrading the platform to serve "
        "you better, and will be back online shortly.</p>\n"
        "<p>Nothing you saved is lost. Please try again in a few minutes; the maintenance "
        'window is posted on <a href="https://status.coupa.com">status.coupa.com</a>.</p>\n'
        "</div>",
        signed_in=False,
    )


_PROXY_TEXT = {
    502: (
        "Bad Gateway",
        "The proxy server received an invalid response from an upstream server.",
    ),
    504: (
        "Gateway Timeout",
        "The proxy server did not receive a timely response from the upstream server.",
    ),
}
PROXY_NAME = "web-proxy"


def proxy_error_page(status: int, url: str) -> str:
    """A corporate proxy's own error page (plain, not Coupa's) for `url`."""
    reason, text = _PROXY_TEXT[status]
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        f"<title>{status} {reason}</title>\n</head>\n<body>\n"
        f"<h1>{status} {reason}</h1>\n"
        "<p>The requested URL could not be retrieved.</p>\n"
        f"<p>While trying to retrieve <tt>{_e(url)}</tt>:</p>\n"
        f"<blockquote>{_e(text)}</blockquote>\n"
        "<p>If this problem persists, contact your network administrator.</p>\n"
        f"<hr>\n<address>{PROXY_NAME}</address>\n</body>\n</html>\n"
    )
