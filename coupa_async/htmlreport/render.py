"""The run report as one self-contained HTML document: no network, no external file.

What must be readable without a script is rendered here, escaped with ``html.escape``: the
header, the tiles, the table of POs that need attention, the per-supplier (or per-level) groups
and the charts. The full list of POs is embedded once as JSON and drawn by the inline script,
which only ever sets ``textContent`` and link addresses built from this module's safe hrefs.

Links: file and folder hrefs are paths relative to the output folder (where ``report.html``
lives); each segment is percent-encoded, and anything that is not a plain relative path gets no
link. A PO's Coupa address, or the address of a URL attachment, becomes a link only when it is
``http:`` or ``https:`` (opened with ``rel="noopener noreferrer"``).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import get_args
from urllib.parse import quote, urlsplit

from coupa_async.htmlreport.assets import CSS, JS, JS_HASH
from coupa_async.htmlreport.charts import render_charts
from coupa_async.htmlreport.model import (
    ReportAttachment,
    ReportData,
    ReportFile,
    ReportPo,
    RunState,
)
from coupa_async.tabular.report import (
    ATTENTION_STATUSES,
    BAD_STATUSES,
    GOOD_STATUSES,
    INVALID,
    PENDING,
)

# Server-side rows are capped: the full list is in the scripted table below them.
ATTENTION_LIMIT = 1000
GROUP_LIMIT = 500

OUTCOME_ORDER = (
    "COMPLETED",
    "NO_ATTACHMENTS",
    "PARTIAL",
    "PR_NOT_ACCESSIBLE",
    "FAILED",
    "PO_NOT_FOUND",
    INVALID,
    PENDING,
)
# The order of the attention table: failures first, rows not processed yet last.
ATTENTION_ORDER = ("FAILED", "PARTIAL", "PO_NOT_FOUND", "PR_NOT_ACCESSIBLE", INVALID, PENDING)

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src '{JS_HASH}'; img-src data:; base-uri 'none'; form-action 'none'"
)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
RUN_STATES = frozenset(get_args(RunState))

# Characters a browser would mangle or an encoder refuse: C0 controls (but tab and newlines), DEL,
# and lone surrogates (names that were not valid UTF-8 on disk).
_UNSAFE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_DRIVE = re.compile(r"[A-Za-z]:")
# "." or ".." as a whole segment, or between backslashes (a folder separator on Windows).
_DOT_SEGMENT = re.compile(r"(?:^|\\)\.\.?(?:\\|$)")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
# An attachment's kind as the script gets it (bits 0-1 of its flags).
KIND_CODES = {"file": 0, "url": 1, "text": 2}
# What encodeURIComponent leaves alone beyond Python's always-safe characters.
_JS_SAFE = "!'()*"
_JSON_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


@dataclass(slots=True)
class Tally:
    """Counts over a set of POs: the tiles' figures and one group's."""

    pos: int = 0
    files: int = 0
    found: int = 0
    from_pr: int = 0
    bytes: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, po: ReportPo) -> None:
        self.pos += 1
        self.files += len(po.files)
        self.found += max(po.found, len(po.files))
        self.outcomes[po.outcome] += 1
        for file in po.files:
            self.bytes += file.size
            self.from_pr += file.source == "PR"


def render_report(data: ReportData) -> str:
    """The whole HTML document for ``data``."""
    tally = Tally()
    for po in data.pos:
        tally.add(po)
    body = "\n".join(
        [
            _header(data),
            _tiles(data, tally),
            _attention(data.pos),
            _groups(data),
            _po_table(data, tally),
            '<section id="charts"><h2>The run over time</h2><div class="charts">',
            render_charts(data.samples, data.events),
            "</div></section>",
            "<footer>Written by coupa_async. Links open the files beside this report; "
            "keep the report in its output folder for them to work.</footer>",
        ]
    )
    document = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{escape(data.title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f"<style>{CSS}{_group_css(len(data.level_names) + 1)}</style>\n"
        f"</head>\n<body>\n<main>\n{body}\n</main>\n"
        f'<script type="application/json" id="data">{embedded_json(data)}</script>\n'
        f"<script>{JS}</script>\n</body>\n</html>\n"
    )
    if _UNSAFE_TEXT.search(document):
        document = _UNSAFE_TEXT.sub("\ufffd", document)
    return document


# ---------------------------------------------------------------------------------------------
# Links


def local_href(path: str | None) -> str | None:
    """``path`` (relative to the output folder, ``/``-separated) as a relative URL with every
    segment percent-encoded; None unless it is a plain relative path (no ``..``, not absolute)."""
    if not path:
        return None
    segments = path.removesuffix("/").split("/")
    if _DRIVE.match(segments[0]):
        return None
    return _encode_path(segments)


def _encode_path(segments: Sequence[str]) -> str | None:
    """The segments percent-encoded and joined; None if one is empty, ``.`` or ``..``."""
    if any(not segment or _DOT_SEGMENT.search(segment) for segment in segments):
        return None
    return "/".join(map(_encode_segment, segments))


def web_url(url: str | None) -> str | None:
    """``url`` if it is a plain ``http:`` or ``https:`` address, else None."""
    if not url or _URL_FORBIDDEN.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


@functools.lru_cache(maxsize=65536)  # folder names repeat on every PO of a supplier
def _encode_segment(segment: str) -> str:
    # surrogateescape: a name that was not UTF-8 on disk keeps its original bytes.
    return quote(segment, safe=_JS_SAFE, errors="surrogateescape")


# ---------------------------------------------------------------------------------------------
# Header and tiles


def _header(data: ReportData) -> str:
    run = data.run
    details = [f"Generated {escape(_when(data.generated_at))}"]
    state = run.state if run.state in RUN_STATES else "unknown"
    details.append(f'latest run <span class="state state-{state}">{escape(run.state)}</span>')
    if run.started_at is not None:
        details.append(f"started {escape(_when(run.started_at))}")
    if run.ended_at is not None and run.state != "running":
        details.append(f"ended {escape(_when(run.ended_at))}")
    return (
        f'<header><h1>{escape(data.title)}</h1><p class="meta">{" · ".join(details)}</p></header>'
    )


def _tiles(data: ReportData, tally: Tally) -> str:
    pending = tally.outcomes[PENDING]
    invalid = tally.outcomes[INVALID]
    settled = tally.pos - pending - invalid
    po_sub = [f"{settled:,} settled", f"{pending:,} pending"]
    if invalid:
        po_sub.append(f"{invalid:,} invalid input rows")
    file_sub = [f"of {tally.found:,} found" if tally.found > tally.files else "all found saved"]
    if tally.from_pr:
        file_sub.append(f"{tally.from_pr:,} from requisitions")
    duration, duration_sub = _duration_tile(data)
    rate, rate_sub = _rate_tile(data)
    tiles = [
        _tile("POs", f"{tally.pos:,}", " · ".join(po_sub), "pos"),
        _tile("Files saved", f"{tally.files:,}", " · ".join(file_sub), "files"),
        _tile("Size", human_bytes(tally.bytes), f"{tally.bytes:,} bytes", "bytes"),
        _tile("Latest run", duration, duration_sub, "duration"),
        _tile("Rate", rate, rate_sub, "rate"),
        _outcomes_tile(tally),
    ]
    return f'<section class="tiles" id="tiles">{"".join(tiles)}</section>'


def _tile(title: str, big: str, sub: str, name: str) -> str:
    return (
        f'<div class="tile" id="tile-{name}"><h3>{escape(title)}</h3>'
        f'<div class="big">{escape(big)}</div><div class="sub">{escape(sub)}</div></div>'
    )


def _outcomes_tile(tally: Tally) -> str:
    chips = "".join(
        f'<span class="chip {_outcome_class(outcome)}" data-outcome="{escape(outcome)}">'
        f"<i></i>{escape(outcome)} <b>{count:,}</b></span>"
        for outcome, count in _ordered(tally.outcomes)
    )
    return (
        '<div class="tile outcomes" id="tile-outcomes"><h3>Outcomes</h3>'
        f'{_bar(tally.outcomes, tally.pos)}<div class="chips">{chips or "none yet"}</div></div>'
    )


def _duration_tile(data: ReportData) -> tuple[str, str]:
    run = data.run
    if run.started_at is None:
        return "—", "no run recorded"
    if run.state == "running":
        return "running", f"for {_duration(data.generated_at - run.started_at)} so far"
    end = _run_end(data)
    if end is None:
        return "—", f"started {_when(run.started_at)}"
    return _duration(end - run.started_at), f"{_clock(run.started_at)} – {_clock(end)}"


def _rate_tile(data: ReportData) -> tuple[str, str]:
    settled, seconds = _run_progress(data)
    if settled is None or seconds <= 0:
        return "—", "POs settled per minute"
    return f"{settled * 60.0 / seconds:,.1f} / min", f"{settled:,} POs settled in the latest run"


def _run_end(data: ReportData) -> float | None:
    if data.run.ended_at is not None:
        return data.run.ended_at
    return data.samples[-1].at if data.samples else None


def _run_progress(data: ReportData) -> tuple[int | None, float]:
    """POs the latest run settled, and over how many seconds.

    From the metrics when there are any (first to last sample, so POs an earlier run settled
    never count), else from the POs' finishing times within the run.
    """
    samples = data.samples
    if len(samples) >= 2:
        return samples[-1].settled - samples[0].settled, samples[-1].at - samples[0].at
    run = data.run
    end = data.generated_at if run.state == "running" else _run_end(data)
    if run.started_at is None or end is None:
        return None, 0.0
    count = 0
    for po in data.pos:
        finished = _parse_time(po.finished_at)
        if finished is not None and run.started_at <= finished.timestamp() <= end:
            count += 1
    return count, end - run.started_at


# ---------------------------------------------------------------------------------------------
# Attention


def _attention(pos: Sequence[ReportPo]) -> str:
    rank = {outcome: index for index, outcome in enumerate(ATTENTION_ORDER)}
    rows = [po for po in pos if po.outcome not in GOOD_STATUSES]
    rows.sort(key=lambda po: rank.get(po.outcome, -1))  # stable: input order within an outcome
    head = f'<section id="attention"><h2>Needs attention ({len(rows):,})</h2>'
    if not rows:
        return (
            f'{head}<p class="note all-good">Nothing needs attention: every PO completed or has '
            "no attachments.</p></section>"
        )
    counts = Counter(po.outcome for po in rows)
    summary = [f"{count:,} {escape(outcome)}" for outcome, count in counts.items()]
    if PENDING in counts:
        summary.append("PENDING: not processed yet")
    if INVALID in counts:
        summary.append("INVALID: an input row without a valid PO number")
    note = f'<p class="note">{"; ".join(summary)}.</p>'
    body = "".join(_attention_row(po) for po in rows[:ATTENTION_LIMIT])
    more = ""
    if len(rows) > ATTENTION_LIMIT:
        more = (
            f'<p class="note">{len(rows) - ATTENTION_LIMIT:,} more not shown here: choose '
            "“Needs attention” in the list of all POs below.</p>"
        )
    return (
        f'{head}{note}<div class="scroll"><table class="attention" id="attention-table">'
        "<thead><tr><th>PO</th><th>Supplier</th><th>Outcome</th><th>Reason</th>"
        '<th class="num">Files</th><th>Folder</th></tr></thead>'
        f"<tbody>{body}</tbody></table></div>{more}</section>"
    )


def _attention_row(po: ReportPo) -> str:
    url = web_url(po.po_url)
    label = escape(po.label)
    if url is not None:
        label = f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer">{label}</a>'
    folder = local_href(po.folder_href)
    folder_link = f'<a href="{escape(folder)}/">folder</a>' if folder else ""
    files = f"{len(po.files):,}" + (f" / {po.found:,}" if po.found > len(po.files) else "")
    return (
        f'<tr data-po="{escape(po.label)}"><td class="po">{label}</td>'
        f"<td>{escape(po.supplier)}</td><td>{_badge(po.outcome)}</td>"
        f'<td class="msg">{escape(po.message)}</td><td class="num">{files}</td>'
        f"<td>{folder_link}</td></tr>"
    )


# ---------------------------------------------------------------------------------------------
# Groups


def _groups(data: ReportData) -> str:
    names = ["Supplier", *data.level_names]
    present = [outcome for outcome, _ in _ordered(Counter(po.outcome for po in data.pos))]
    panels = []
    tabs = []
    for index, name in enumerate(names):
        level = index - 1
        keys = (po.supplier if level < 0 else _level(po, level) for po in data.pos)
        groups = _tally_groups(data.pos, keys)
        panels.append(_group_panel(index, name, level, groups, present))
        checked = " checked" if index == 0 else ""
        tabs.append(
            f'<input type="radio" name="grouping" id="grp-{index}"{checked}>'
            f'<label class="tab" for="grp-{index}">{escape(name)}</label>'
        )
    switch = "".join(tabs) if len(names) > 1 else ""
    title = "Per supplier" if len(names) == 1 else "Per supplier or level"
    return (
        f'<section id="groups" class="groups"><h2>{title}</h2>{switch}{"".join(panels)}</section>'
    )


def _tally_groups(pos: Sequence[ReportPo], keys: Iterable[str]) -> list[tuple[str, Tally]]:
    groups: dict[str, Tally] = {}
    for po, key in zip(pos, keys, strict=True):
        tally = groups.get(key)
        if tally is None:
            tally = groups[key] = Tally()
        tally.add(po)
    return sorted(groups.items(), key=lambda item: (-item[1].pos, item[0].casefold()))


def _group_panel(
    index: int, name: str, level: int, groups: list[tuple[str, Tally]], outcomes: list[str]
) -> str:
    rows = "".join(_group_row(level, key, tally, outcomes) for key, tally in groups[:GROUP_LIMIT])
    if len(groups) > GROUP_LIMIT:
        rest = groups[GROUP_LIMIT:]
        rows += (
            f'<tr class="rest"><td>{len(rest):,} more groups</td>'
            f'<td class="num">{sum(t.pos for _, t in rest):,}</td>'
            f'<td colspan="{len(outcomes) + 3}"></td></tr>'
        )
    columns = "".join(
        f'<th class="num outcome-col {_outcome_class(o)}"><span class="chip"><i></i></span>'
        f"{escape(o).replace('_', '_<wbr>')}</th>"
        for o in outcomes
    )
    return (
        f'<div class="group-panel" id="gp-{index}"><div class="scroll">'
        f'<table class="group-table" data-grouping="{escape(name)}"><thead><tr>'
        f'<th>{escape(name)}</th><th class="num">POs</th><th class="num">Files</th>'
        f'<th class="num">Size</th>{columns}<th>Share</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></div>"
    )


def _group_row(level: int, key: str, tally: Tally, outcomes: list[str]) -> str:
    counts = "".join(
        f'<td class="num">{tally.outcomes[o]:,}</td>'
        if tally.outcomes[o]
        else '<td class="num"></td>'
        for o in outcomes
    )
    value = escape(key)
    return (
        f'<tr><td class="group-name"><button type="button" class="group-pick" '
        f'data-level="{level}" data-value="{value}" title="Show these POs in the list below">'
        f"{value or '(none)'}</button></td>"
        f'<td class="num">{tally.pos:,}</td><td class="num">{tally.files:,}</td>'
        f'<td class="num">{human_bytes(tally.bytes)}</td>{counts}'
        f'<td class="share">{_bar(tally.outcomes, tally.pos)}</td></tr>'
    )


def _group_css(count: int) -> str:
    """Show the panel of the checked grouping (a switch that needs no script)."""
    if count == 1:
        return "#gp-0{display:block}"
    rules = [
        f"#grp-{i}:checked~#gp-{i}{{display:block}}"
        f"#grp-{i}:checked+label{{color:var(--fg);border-color:var(--fg);font-weight:600}}"
        for i in range(count)
    ]
    return "".join(rules)


def _level(po: ReportPo, level: int) -> str:
    return po.levels[level] if level < len(po.levels) else ""


# ---------------------------------------------------------------------------------------------
# The scripted table of every PO


def _po_table(data: ReportData, tally: Tally) -> str:
    options = ['<option value="">All outcomes</option>']
    options.append('<option value="attention">Needs attention</option>')
    options += [
        f'<option value="{escape(o)}">{escape(o)} ({c:,})</option>'
        for o, c in _ordered(tally.outcomes)
    ]
    columns = [("#", "index", "num", False), ("PO", "label", "", False)]
    columns.append(("Supplier", "supplier", "", False))
    columns += [(name, f"level{i}", "", False) for i, name in enumerate(data.level_names)]
    columns += [
        ("Outcome", "outcome", "", False),
        ("Attachments", "", "", False),
        ("Saved", "files", "num", True),
        ("Size", "bytes", "num", True),
        ("Finished", "finished", "num", True),
        ("Tries", "attempts", "num", True),
        ("Message", "message", "", False),
        ("Folder", "", "", False),
    ]
    head = "".join(_column(*column) for column in columns)
    return (
        f'<section id="pos"><h2>All POs ({tally.pos:,})</h2>'
        '<noscript><p class="note">The searchable list of every PO needs JavaScript; '
        "report.csv beside this file lists every PO too.</p></noscript>"
        '<div class="needs-js"><div class="controls">'
        '<input type="search" id="po-filter" autocomplete="off" spellcheck="false" '
        'placeholder="Filter by PO, supplier, outcome, message or file name  ( / )" '
        'aria-label="Filter the POs">'
        f'<select id="po-outcome" aria-label="Outcome">{"".join(options)}</select>'
        '<span id="po-group" class="group-chip" hidden><span></span>'
        '<button type="button" aria-label="Show all groups">×</button></span>'
        '<span id="po-status" aria-live="polite"></span></div>'
        '<div class="scroll"><table id="po-table"><thead><tr>'
        f'{head}</tr></thead><tbody id="po-rows"></tbody></table></div>'
        '<p class="more"><button type="button" id="po-more" hidden>Show more</button></p>'
        "</div></section>"
    )


def _column(title: str, key: str, css: str, descending: bool) -> str:
    if not key:
        return f"<th>{escape(title)}</th>"
    classes = f"sortable {css}".strip()
    first = ' data-desc="1"' if descending else ""
    return (
        f'<th class="{classes}" data-key="{key}"{first} aria-sort="none">'
        f'<button type="button">{escape(title)}</button></th>'
    )


def embedded_json(data: ReportData) -> str:
    """The data the script needs, as JSON that cannot end the ``<script>`` element holding it.

    Compact: outcomes and suppliers are indexes into lists; a file's href is kept relative to
    its PO's folder, and left out when it is the file's name encoded as the script would; a
    saved attachment points at its file in the PO's list of files.
    """
    outcomes: dict[str, int] = {}
    suppliers: dict[str, int] = {}
    urls = [web_url(po.po_url) for po in data.pos]
    known = [url for url in urls if url]
    # Character by character on purpose: the addresses share a prefix, not a path.
    base = os.path.commonprefix(known) if len(known) > 1 else ""  # noqa: RUF071
    base = base[: base.rfind("/") + 1]
    rows = []
    for po, url in zip(data.pos, urls, strict=True):
        folder = local_href(po.folder_href)
        rows.append(
            [
                _clean(po.label),
                outcomes.setdefault(po.outcome, len(outcomes)),
                suppliers.setdefault(po.supplier, len(suppliers)),
                [_clean(level) for level in po.levels] or 0,
                folder or 0,
                _clean(po.message),
                url[len(base) :] if url else 0,
                po.attempts,
                _local_time(po.finished_at),
                po.found,
                [_file_entry(po, folder, file) for file in po.files],
                _attachment_entries(po),
            ]
        )
    payload = {
        "outcomes": [_clean(outcome) for outcome in outcomes],
        "suppliers": [_clean(supplier) for supplier in suppliers],
        "levels": list(data.level_names),
        "urlBase": base,
        "pos": rows,
    }
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _JSON_ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    return text


def _file_entry(po: ReportPo, folder: str | None, file: ReportFile) -> list[str | int]:
    """``[name, size, flags, tail]``: ``tail`` relative to the PO's folder (left out when it is
    the name, encoded); ``[name, size, flags, href, 1]`` when the file is not under the folder;
    ``[name, size, flags, "", 1]`` when its href is unusable (the script shows no link then).

    ``flags``: 1 from the requisition, 2 an e-mail with its PDF beside it (``<href>.pdf``), 4 with
    its attachments folder beside it (``<href>_attachments/``)."""
    flags = int(file.source == "PR") | (2 if file.pdf else 0) | (4 if file.attachments else 0)
    entry: list[str | int] = [_clean(file.name), file.size, flags]
    if folder and po.folder_href:
        prefix = po.folder_href.removesuffix("/") + "/"
        if file.href.startswith(prefix):
            tail = _encode_path(file.href[len(prefix) :].split("/"))
            if tail is not None:
                if tail == _encode_segment(file.name) and not _SURROGATE.search(file.name):
                    return entry
                return [*entry, tail]
    encoded = local_href(file.href)
    return [*entry, encoded or "", 1]


def _attachment_entries(po: ReportPo) -> list[list[str | int]] | int:
    """``[flags, place, name, value]``, and for a saved file ``[..., file, size, sha256]``:
    ``file`` the index of its entry in the PO's files (its link, PDF and attachments folder), or
    -1 with ``href`` (encoded, "" when unusable) after ``sha256`` when it has none there; ``size``
    -1 when unknown. 0 when the PO has no attachments.

    ``flags``: the kind in bits 0-1 (``KIND_CODES``), 4 from the requisition, 8 ``value`` is an
    ``http:`` or ``https:`` address the script may link. A saved file's ``value`` (its address
    on Coupa) is left out: its saved copy is linked instead."""
    if not po.attachments:
        return 0
    files = {file.href: index for index, file in enumerate(po.files)}
    return [_attachment_entry(found, files) for found in po.attachments]


def _attachment_entry(found: ReportAttachment, files: dict[str, int]) -> list[str | int]:
    saved = found.href is not None
    value = "" if saved else found.value
    flags = KIND_CODES.get(found.kind, 0) | (4 if found.source == "PR" else 0)
    if found.kind != "text" and web_url(value) is not None:
        flags |= 8
    entry: list[str | int] = [flags, _clean(found.place), _clean(found.name), _clean(value)]
    if found.href is None:
        return entry
    index = files.get(found.href, -1)
    entry += [index, -1 if found.size is None else found.size, _clean(found.sha256)]
    if index < 0:
        entry.append(local_href(found.href) or "")
    return entry


# ---------------------------------------------------------------------------------------------
# Small things


def human_bytes(size: float) -> str:
    """``size`` in B, KB, MB, GB or TB (powers of 1024, as file managers show them)."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" or size >= 10 else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TB"


def _bar(counts: Counter[str], total: int) -> str:
    if total <= 0:
        return '<div class="bar"></div>'
    segments = "".join(
        f'<span class="{_outcome_class(outcome)}" style="width:{count * 100 / total:.2f}%" '
        f'title="{escape(outcome)}: {count:,} ({count * 100 / total:.0f}%)"></span>'
        for outcome, count in _ordered(counts)
    )
    return f'<div class="bar" role="img" aria-label="outcome shares">{segments}</div>'


def _badge(outcome: str) -> str:
    if outcome in GOOD_STATUSES:
        family = "good"
    elif outcome in ATTENTION_STATUSES:
        family = "attention"
    elif outcome in BAD_STATUSES:
        family = "bad"
    else:
        family = "other"
    return f'<span class="badge f-{family}">{escape(outcome)}</span>'


def _outcome_class(outcome: str) -> str:
    return f"o-{outcome}" if outcome in OUTCOME_ORDER else "o-other"


def _ordered(counts: Counter[str]) -> list[tuple[str, int]]:
    """Outcomes in the report's order, unknown ones last, leaving out zero counts."""
    rank = {outcome: index for index, outcome in enumerate(OUTCOME_ORDER)}
    items = [(o, c) for o, c in counts.items() if c > 0]
    return sorted(items, key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def _clean(text: str) -> str:
    """``text`` as the page will show it once parsed: what ``render_report`` replaces in the
    document replaced here too, CR newlines as LF (so the data matches the attributes)."""
    if _UNSAFE_TEXT.search(text):
        text = _UNSAFE_TEXT.sub("\ufffd", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _local_time(text: str) -> str:
    """An ISO 8601 time as local ``YYYY-MM-DD HH:MM:SS`` (sorts as text); as given if unreadable."""
    moment = _parse_time(text)
    if moment is None:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime(TIME_FORMAT)


def _when(at: float) -> str:
    moment = datetime.fromtimestamp(at).astimezone()
    return f"{moment.strftime(TIME_FORMAT)} {moment.tzname() or ''}".strip()


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes >= 10:
        return f"{minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
