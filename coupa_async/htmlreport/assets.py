"""The report's style sheet and script, inlined into every report (no file to ship beside it).

The script reads the data embedded as JSON (``<script type="application/json" id="data">``) and
builds the PO table with DOM calls and ``textContent`` only: no data ever goes through
``innerHTML``. It renders a window of matching rows at a time, so filtering 10,000 POs stays fast.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root{--bg:#fff;--fg:#1d2330;--muted:#5d6675;--line:#dfe3ea;--panel:#f6f7f9;--link:#0b57d0;
--track:#e8ebf0;--good-bg:#c6efce;--good-fg:#006100;--att-bg:#ffeb9c;--att-fg:#9c5700;
--bad-bg:#ffc7ce;--bad-fg:#9c0006;--o-COMPLETED:#2e9d57;--o-NO_ATTACHMENTS:#93d3a6;
--o-PARTIAL:#e6a700;--o-PR_NOT_ACCESSIBLE:#f07f2e;--o-PENDING:#a3abb6;--o-FAILED:#d64545;
--o-PO_NOT_FOUND:#a8326e;--o-INVALID:#6b4f3a;--o-other:#7a7a7a;--s-rate:#0b57d0;
--s-workers:#2e9d57;--s-target:#7a7a7a;--s-memory:#8e44ad;--s-budget:#d64545;
--ev-scaled:#0b8a8a;--ev-session_renewed:#7048e8;--ev-browser_relaunched:#c2410c;
--ev-host_paused:#d4a000;--ev-unreachable:#d64545;--ev-other:#7a7a7a;--paused:#fff3c4}
@media (prefers-color-scheme:dark){:root{--bg:#15181e;--fg:#e4e7ec;--muted:#9aa3b2;
--line:#2e343e;--panel:#1e222a;--link:#8ab4f8;--track:#2a2f38;--good-bg:#1f4d2c;
--good-fg:#b6f0c4;--att-bg:#574514;--att-fg:#ffe08a;--bad-bg:#5c2128;--bad-fg:#ffc2c9;
--s-rate:#8ab4f8;--s-target:#a3abb6;--paused:#3b3517}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
main{max-width:1400px;margin:0 auto;padding:16px 20px 40px}
a{color:var(--link)}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px}
header .meta{color:var(--muted)}
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px}
.state-finished{background:var(--good-bg);color:var(--good-fg)}
.state-running,.state-interrupted{background:var(--att-bg);color:var(--att-fg)}
.state-unknown{background:var(--panel);color:var(--muted)}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;
margin-top:14px}
.tile{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.tile h3{margin:0;font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;
letter-spacing:.04em}
.tile .big{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums}
.tile .sub{color:var(--muted);font-size:12.5px}
.tile.outcomes{grid-column:span 2}
.chips{display:flex;flex-wrap:wrap;gap:4px 10px;margin-top:4px}
.chip{white-space:nowrap;font-variant-numeric:tabular-nums}
.chip i,.key i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;
vertical-align:-1px;background:var(--sw)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12.5px;color:var(--muted);font-weight:600;background:var(--bg)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.msg{min-width:180px;max-width:460px;overflow-wrap:break-word}
td.po{white-space:nowrap;font-weight:600}
.badge{display:inline-block;padding:0 6px;border-radius:4px;font-size:12px;font-weight:600;
white-space:nowrap}
.f-good{background:var(--good-bg);color:var(--good-fg)}
.f-attention{background:var(--att-bg);color:var(--att-fg)}
.f-bad{background:var(--bad-bg);color:var(--bad-fg)}
.f-other{background:var(--panel);color:var(--muted)}
.o-COMPLETED{--sw:var(--o-COMPLETED)}.o-NO_ATTACHMENTS{--sw:var(--o-NO_ATTACHMENTS)}
.o-PARTIAL{--sw:var(--o-PARTIAL)}.o-PR_NOT_ACCESSIBLE{--sw:var(--o-PR_NOT_ACCESSIBLE)}
.o-PENDING{--sw:var(--o-PENDING)}.o-FAILED{--sw:var(--o-FAILED)}
.o-PO_NOT_FOUND{--sw:var(--o-PO_NOT_FOUND)}.o-INVALID{--sw:var(--o-INVALID)}
.o-other{--sw:var(--o-other)}
td.share{min-width:160px;width:22%}
th.outcome-col{font-size:11px;text-align:right}
.bar{display:flex;height:12px;min-width:120px;border-radius:3px;overflow:hidden;
background:var(--track)}
.bar span{display:block;height:100%;background:var(--sw)}
.note{color:var(--muted)}
.scroll{overflow-x:auto}
.groups input[type=radio]{position:absolute;opacity:0;pointer-events:none}
.groups label.tab{display:inline-block;padding:3px 10px;border:1px solid var(--line);
border-radius:14px;margin:0 4px 8px 0;cursor:pointer;color:var(--muted)}
.group-panel{display:none}
.group-name{overflow-wrap:anywhere}
button.group-pick{all:unset;overflow-wrap:anywhere}
.js button.group-pick{cursor:pointer;color:var(--link);text-decoration:underline}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:6px 0 8px;
position:sticky;top:0;background:var(--bg);padding:6px 0;z-index:2}
.controls input[type=search]{flex:1 1 280px;min-width:200px;padding:6px 10px;font:inherit;
color:inherit;background:var(--bg);border:1px solid var(--line);border-radius:6px}
.controls select,.controls button,.more button{font:inherit;padding:5px 10px;color:inherit;
background:var(--panel);border:1px solid var(--line);border-radius:6px;cursor:pointer}
.group-chip{background:var(--panel);border:1px solid var(--line);border-radius:14px;
padding:2px 4px 2px 10px}
.group-chip button{border:0;background:none;padding:0 6px}
#po-status{color:var(--muted)}
th.sortable{padding:0}
th.sortable button{all:unset;cursor:pointer;display:block;padding:5px 8px;width:100%;
box-sizing:border-box}
th.num.sortable button{text-align:right}
th[aria-sort=ascending] button::after{content:" ▲"}
th[aria-sort=descending] button::after{content:" ▼"}
ul.files{list-style:none;margin:0;padding:0}
td.files{min-width:300px}
ul.files li{overflow-wrap:break-word}
ul.files li+li{margin-top:2px}
.size,.src{color:var(--muted);font-size:12px;margin-left:4px;white-space:nowrap}
.place{color:var(--muted);font-size:12px;margin-right:4px}
.kind{display:inline-block;font-size:10.5px;line-height:1.4;padding:0 4px;margin-right:4px;
border:1px solid var(--line);border-radius:3px;color:var(--muted);text-transform:uppercase}
.sha{color:var(--muted);font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
margin-left:4px;white-space:nowrap}
.unsaved{color:var(--bad-fg);font-size:12px;margin-left:4px;white-space:nowrap}
.value{color:var(--muted);font-size:12.5px;white-space:pre-wrap;overflow-wrap:anywhere;
max-height:7.5em;overflow:auto}
.more-files{all:unset;cursor:pointer;color:var(--link);font-size:12.5px}
.more{margin-top:8px}
.needs-js{display:none}
.js .needs-js{display:block}
.charts{display:grid;gap:14px}
.chart-box{margin:0;border:1px solid var(--line);border-radius:8px;padding:8px 10px;
background:var(--bg)}
figcaption{font-weight:600;font-size:13px;display:flex;flex-wrap:wrap;gap:4px 14px}
.legend{font-weight:400;color:var(--muted);display:inline-flex;flex-wrap:wrap;gap:4px 12px}
.events-legend{margin:0}
svg.chart{width:100%;height:auto;display:block}
svg.chart text{font-size:11px;fill:var(--muted)}
svg.chart .axis line{stroke:var(--line)}
svg.chart line.grid{stroke:var(--line);stroke-dasharray:2 3}
svg.chart .line{fill:none;stroke-width:1.6;stroke-linejoin:round}
svg.chart .hover rect{fill:transparent}
svg.chart .paused{fill:var(--paused)}
.s-rate{--sw:var(--s-rate);stroke:var(--s-rate)}
.s-workers{--sw:var(--s-workers);stroke:var(--s-workers)}
.s-target{--sw:var(--s-target);stroke:var(--s-target);stroke-dasharray:5 4}
.s-memory{--sw:var(--s-memory);stroke:var(--s-memory)}
.s-budget{--sw:var(--s-budget);stroke:var(--s-budget);stroke-dasharray:5 4}
.s-paused{--sw:var(--paused)}
.event-marker line.mark{stroke:var(--sw);stroke-width:1.4;stroke-dasharray:3 2}
.event-marker line.hit{stroke:transparent;stroke-width:8}
.ev-scaled{--sw:var(--ev-scaled)}.ev-session_renewed{--sw:var(--ev-session_renewed)}
.ev-browser_relaunched{--sw:var(--ev-browser_relaunched)}
.ev-host_paused{--sw:var(--ev-host_paused)}.ev-unreachable{--sw:var(--ev-unreachable)}
.ev-other{--sw:var(--ev-other)}
footer{margin-top:30px;color:var(--muted);font-size:12px}
@media print{
body{font-size:11px;background:#fff;color:#000}
main{max-width:none;padding:0}
.controls,.more,.groups label.tab,noscript{display:none!important}
.chart-box,.tile,tr{break-inside:avoid}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
a,.js button.group-pick{color:inherit;text-decoration:none}
.scroll{overflow:visible}
td.files,td.msg,td.share,.bar{min-width:0}
.attention tr>:last-child,#po-table tr>:last-child{display:none}
}
"""

JS = r"""
"use strict";
document.documentElement.classList.add("js");
(function () {
  const WINDOW = 100;
  const FILES_SHOWN = 4;
  const KINDS = ["file", "URL", "text"];
  const GOOD = new Set(["COMPLETED", "NO_ATTACHMENTS"]);
  const FAMILY = {COMPLETED: "good", NO_ATTACHMENTS: "good", PARTIAL: "attention",
    PR_NOT_ACCESSIBLE: "attention", PENDING: "attention", FAILED: "bad", PO_NOT_FOUND: "bad",
    INVALID: "bad"};
  const D = JSON.parse(document.getElementById("data").textContent);
  const tbody = document.getElementById("po-rows");
  if (!tbody) return;
  const search = document.getElementById("po-filter");
  const outcomeSelect = document.getElementById("po-outcome");
  const status = document.getElementById("po-status");
  const moreButton = document.getElementById("po-more");
  const groupChip = document.getElementById("po-group");
  const collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  const numberFormat = new Intl.NumberFormat();

  const pos = D.pos.map(function (row, index) {
    const files = row[10] || [];
    const po = {
      index: index, label: row[0], outcome: D.outcomes[row[1]], supplier: D.suppliers[row[2]],
      levels: row[3] || [], folder: row[4] || "", message: row[5] || "",
      url: row[6] ? D.urlBase + row[6] : "", attempts: row[7], finished: row[8] || "",
      found: row[9], files: files, attachments: row[11] || [], bytes: 0,
    };
    const names = [];
    for (const file of files) { po.bytes += file[1]; names.push(file[0]); }
    for (const found of po.attachments) names.push(found[1], found[2], found[3]);
    po.haystack = [po.label, po.supplier, po.outcome, po.message, po.levels.join("\n"),
      names.join("\n")].join("\n").toLowerCase();
    return po;
  });

  const state = {terms: [], outcome: "", group: null, key: "index", descending: false,
    limit: WINDOW, order: pos.slice(), matches: pos};

  function sortValue(key) {
    if (key === "index" || key === "attempts" || key === "bytes" || key === "found") {
      return function (po) { return po[key]; };
    }
    if (key === "files") return function (po) { return po.files.length; };
    if (key.startsWith("level")) {
      const at = Number(key.slice(5));
      return function (po) { return po.levels[at] || ""; };
    }
    return function (po) { return po[key]; };
  }

  function compare(key) {
    const value = sortValue(key);
    return function (a, b) {
      const x = value(a), y = value(b);
      const order = typeof x === "number" ? x - y : collator.compare(x, y);
      return order || a.index - b.index;
    };
  }

  function matches(po) {
    if (state.outcome === "attention" ? GOOD.has(po.outcome)
        : state.outcome && po.outcome !== state.outcome) return false;
    if (state.group) {
      const value = state.group.level < 0 ? po.supplier : po.levels[state.group.level] || "";
      if (value !== state.group.value) return false;
    }
    for (const term of state.terms) if (po.haystack.indexOf(term) < 0) return false;
    return true;
  }

  function link(text, href) {
    const a = document.createElement("a");
    a.textContent = text;
    a.href = href;
    return a;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text !== undefined) td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function humanBytes(size) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit++; }
    return (unit === 0 ? String(size) : size.toFixed(size < 10 ? 1 : 0)) + " " + units[unit];
  }

  function fileHref(po, file) {
    if (file[4]) return file[3];
    if (!po.folder) return "";
    const tail = file[3] === undefined ? encodeURIComponent(file[0]) : file[3];
    return po.folder + "/" + tail;
  }

  function fileItem(po, file) {
    const li = document.createElement("li");
    const href = fileHref(po, file);
    if (href) li.appendChild(link(file[0], href));
    else li.appendChild(document.createTextNode(file[0]));
    const size = document.createElement("span");
    size.className = "size";
    size.textContent = humanBytes(file[1]);
    li.appendChild(size);
    if (file[2] & 1) {
      const source = document.createElement("span");
      source.className = "src";
      source.textContent = "from PR";
      li.appendChild(source);
    }
    if (href && file[2] & 2) li.appendChild(extra(link("PDF", href + ".pdf")));
    if (href && file[2] & 4) li.appendChild(extra(link("attachments", href + "_attachments/")));
    return li;
  }

  function extra(element) {
    element.className = "src";
    return element;
  }

  function span(className, text) {
    const element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  // One row of manifest.csv: where, what kind, the name (the saved file linked), size, SHA-256,
  // and the address or the text. Only addresses the report marked as http(s) become links.
  function attachmentItem(po, found) {
    const li = document.createElement("li");
    const kind = found[0] & 3;
    if (found[1]) li.appendChild(span("place", found[1]));
    li.appendChild(span("kind", KINDS[kind] || "file"));
    const saved = found.length > 4;
    const file = saved && found[4] >= 0 ? po.files[found[4]] : null;
    const href = file ? fileHref(po, file) : (found[7] || "");
    if (href) li.appendChild(link(found[2], href));
    else if (found[2]) li.appendChild(document.createTextNode(found[2]));
    if (kind === 0 && !saved) li.appendChild(span("unsaved", "not saved"));
    if (saved && found[5] >= 0) li.appendChild(span("size", humanBytes(found[5])));
    if (saved && found[6]) {
      const sha = span("sha", found[6].slice(0, 12) + "…");
      sha.title = "SHA-256 " + found[6];
      li.appendChild(sha);
    }
    if (found[0] & 4 && !found[1]) li.appendChild(span("src", "from PR"));  // else its place says
    if (file && href && file[2] & 2) li.appendChild(extra(link("PDF", href + ".pdf")));
    if (file && href && file[2] & 4) {
      li.appendChild(extra(link("attachments", href + "_attachments/")));
    }
    if (found[3]) {
      const value = document.createElement("div");
      value.className = "value";
      if (found[0] & 8) {
        const a = link(found[3], found[3]);
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        value.appendChild(a);
      } else {
        value.textContent = found[3];
      }
      li.appendChild(value);
    }
    return li;
  }

  function filesCell(row, po) {
    const td = cell(row, undefined, "files");
    // The manifest's rows when the journal has them, else the saved files.
    const listed = po.attachments.length ? po.attachments : po.files;
    const item = po.attachments.length ? attachmentItem : fileItem;
    const noun = po.attachments.length ? " more attachments" : " more files";
    if (!listed.length) return;
    const list = document.createElement("ul");
    list.className = "files";
    const shown = listed.length > FILES_SHOWN + 1 ? FILES_SHOWN : listed.length;
    for (let i = 0; i < shown; i++) list.appendChild(item(po, listed[i]));
    td.appendChild(list);
    if (shown < listed.length) {
      const more = document.createElement("button");
      more.type = "button";
      more.className = "more-files";
      more.textContent = "+ " + (listed.length - shown) + noun;
      more.addEventListener("click", function () {
        for (let i = shown; i < listed.length; i++) list.appendChild(item(po, listed[i]));
        more.remove();
      });
      td.appendChild(more);
    }
  }

  function renderRow(po) {
    const row = document.createElement("tr");
    row.dataset.po = po.label;
    cell(row, String(po.index + 1), "num");
    const label = cell(row, undefined, "po");
    if (/^https?:\/\//i.test(po.url)) {
      const a = link(po.label, po.url);
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      label.appendChild(a);
    } else {
      label.textContent = po.label;
    }
    cell(row, po.supplier);
    D.levels.forEach(function (_, at) { cell(row, po.levels[at] || ""); });
    const outcome = cell(row);
    const badge = document.createElement("span");
    badge.className = "badge f-" + (FAMILY[po.outcome] || "other");
    badge.textContent = po.outcome;
    outcome.appendChild(badge);
    filesCell(row, po);
    cell(row, po.files.length + (po.found > po.files.length ? " / " + po.found : ""), "num");
    cell(row, humanBytes(po.bytes), "num");
    cell(row, po.finished, "num");
    cell(row, String(po.attempts), "num");
    cell(row, po.message, "msg");
    const folder = cell(row);
    if (po.folder) folder.appendChild(link("folder", po.folder + "/"));
    return row;
  }

  function render() {
    const fragment = document.createDocumentFragment();
    const shown = Math.min(state.limit, state.matches.length);
    for (let i = 0; i < shown; i++) fragment.appendChild(renderRow(state.matches[i]));
    tbody.textContent = "";
    tbody.appendChild(fragment);
    const total = numberFormat.format(pos.length);
    const matching = numberFormat.format(state.matches.length);
    status.textContent = state.matches.length === pos.length
      ? "Showing " + numberFormat.format(shown) + " of " + total + " POs"
      : "Showing " + numberFormat.format(shown) + " of " + matching + " matching POs ("
        + total + " in all)";
    moreButton.hidden = shown >= state.matches.length;
    moreButton.textContent = "Show " + Math.min(WINDOW, state.matches.length - shown) + " more";
  }

  function refilter() {
    state.matches = state.order.filter(matches);
    state.limit = WINDOW;
    render();
  }

  function resort() {
    state.order = pos.slice().sort(compare(state.key));
    if (state.descending) state.order.reverse();
    for (const th of document.querySelectorAll("#po-table th[data-key]")) {
      th.setAttribute("aria-sort", th.dataset.key === state.key
        ? (state.descending ? "descending" : "ascending") : "none");
    }
    refilter();
  }

  function setGroup(level, value) {
    state.group = level === null ? null : {level: level, value: value};
    groupChip.hidden = state.group === null;
    if (state.group) {
      const name = level < 0 ? "Supplier" : D.levels[level];
      groupChip.querySelector("span").textContent = name + ": " + (value || "(none)");
    }
    refilter();
  }

  search.addEventListener("input", function () {
    state.terms = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    refilter();
  });
  outcomeSelect.addEventListener("change", function () {
    state.outcome = outcomeSelect.value;
    refilter();
  });
  moreButton.addEventListener("click", function () {
    state.limit += WINDOW;
    render();
  });
  groupChip.querySelector("button").addEventListener("click", function () { setGroup(null); });
  for (const th of document.querySelectorAll("#po-table th[data-key]")) {
    th.querySelector("button").addEventListener("click", function () {
      const key = th.dataset.key;
      state.descending = state.key === key ? !state.descending : th.dataset.desc === "1";
      state.key = key;
      resort();
    });
  }
  for (const button of document.querySelectorAll("button.group-pick")) {
    button.addEventListener("click", function () {
      setGroup(Number(button.dataset.level), button.dataset.value);
      document.getElementById("pos").scrollIntoView();
    });
  }
  document.addEventListener("keydown", function (event) {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    if (event.key === "/" && !typing) {
      event.preventDefault();
      search.focus();
    }
  });
  resort();
  document.body.dataset.ready = "1";
  performance.mark("report-ready");
})();
"""

# The only script the page may run: its hash goes into the Content-Security-Policy, so even a
# script that slipped into the page some other way, or an inline event handler, would not run.
JS_HASH = "sha256-" + base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()
