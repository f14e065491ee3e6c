"""Benchmark of a mixed job like a real run (not a test): the tool against a plain-HTTP floor.

The simulator (its own process) serves one catalog of 61 POs and 144 files built from recipes:
ordinary pages with 2 to 6 files, click-only attachments, lists filled by script (a loading
marker, or empty and fetched after load as JSON, HTML or in two parts), requisition fallbacks
(files on the PR, PR empty, PR not accessible), error pages, one file that always answers an HTML
error page (a PARTIAL PO) and one big file. Right before each measured run it is told to answer
one PO page with 429 and ``Retry-After: 2`` and one file with a single HTTP 500.

Per latency (the simulator's, on pages, page data and files) and worker count, in one process
tree each, measured the same way:

- the tool: ``python -m coupa_async run INPUT --workers N --fresh --log-format json``, signing
  in with the simulator's credentials into a fresh saved session;
- the floor: plain aiohttp with the same cookies (signed in once through the same form), N tasks
  over one queue, the same pages and file URLs: the PO page, the lists its scripts would fetch,
  the requisition when the PO has no PDF, each file streamed to disk (click-only ones from the
  ``/file_download/<id>`` their script opens); 5xx and lost connections retried with the tool's
  backoffs, a 429 holding every task for its Retry-After. It parses pages with the tool's own
  ``read_page`` and ``classify`` (the same link and error-page rules).

For each: wall time (start to exit), ratio to the floor at the same concurrency, time to the
first PO page request the simulator saw, CPU seconds of the whole tree (the larger of per-process
samples and the kernel's account of the reaped tree), peak PSS (sampled every 0.5 s) with its
split by process kind.
Every run is checked against the catalog's expectations (outcome per PO, SHA-256 of each file on
disk). Then the issue's targets, PASS or FAIL. Loopback only; about 5 minutes on 2 cores.

    .venv/bin/python scripts/bench_mixed.py [--latency 0 100] [--workers 1 4] [--rounds 1] [--keep]

``--emails-off`` also runs the tool with ``convert.emails=off`` at each point, to measure what
converting the mix's saved e-mails (PDF and attachments) costs the run.

Left out of the mix: lists that never arrive (the late_broken recipes: about 3 attempts x 5 s
each, they would be most of the wall time), and a file of about 12 MB: the simulator's only big
file is 20-30 MB (this seed: 27 MiB). Crawlee's PlaywrightCrawler is not compared here.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import html
import json
import os
import random
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import psutil
from benchkit import PROCESS_KINDS, TreeSampler, start_sim, stop_sim, write_po_input

PYTHON = sys.executable
SEED = 11
POS = 61
DEFAULT_USERNAME = "buyer@example.com"  # the simulator's (coupa_async.sim.DEFAULT_USERNAME)
DEFAULT_PASSWORD = "coupa-sim-password"
RETRY_AFTER_S = 2
RUN_LIMIT_S = 600

# One PO of each variant, then ordinary POs; shuffled with a fixed seed (see mix()).
VARIANTS = (
    "error_oops",
    "error_not_authorized",
    "error_http_404",
    "error_portuguese",
    "click_nav",
    "click_anchor",
    "lazy_no_supplier",
    "all_traits",
    "all_traits",
    "big_file",
    "partial_html_instead",  # one file answers an HTML error page, always
    "no_attachments",
    "pr_empty_no_files",
    "pr_files_no_po_files",
    "pr_files_po_not_pdf",
    "pr_error_no_files",
    "pr_error_po_not_pdf",
    "pr_empty_po_not_pdf",
    "pdf_with_pr_link",
    "late_json_links",
    "late_fragment_links",
    "late_two_parts_links",
    "late_json_empty",
    "pr_late_json_no_po_files",
    "pr_late_two_parts_po_not_pdf",
    "hostile_names_a",
    "hostile_names_b",
    "duplicate_link",
    "duplicate_names",
    "toolbar_titles",
    "not_pdf_no_pr",
)
ORDINARY = {"plain_links": 11, "download_attr_and_title": 12, "many_files": 7}


def mix(lists_in_html: bool = False) -> tuple[str, ...]:
    """The recipe of each of the 61 POs; with ``lists_in_html``, the late-list recipes (lists
    filled by script after load) become ordinary ones, as on a tenant that serves its lists in
    the HTML (there ``auto`` can stay fast; on the default mix it must render every page)."""
    names = [
        "plain_links" if lists_in_html and name.startswith(("late_", "pr_late_")) else name
        for name in VARIANTS
    ]
    for name, count in ORDINARY.items():
        names += [name] * count
    assert len(names) == POS, len(names)
    random.Random(SEED).shuffle(names)
    return tuple(names)


# ---------------------------------------------------------------------------------------------
# The simulator


def sim_get(base_url: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base_url}{path}", timeout=30) as response:
        return json.load(response)


def sim_post(base_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(
        f"{base_url}{path}", data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@dataclass(frozen=True)
class Faults:
    """What is injected before each run: where the 429 and the flaky file are."""

    rate_limited_page: str  # path of a PO page answered 429 once
    flaky_file: str  # path of a file answered HTTP 500 once

    @classmethod
    def choose(cls, catalog: dict[str, Any]) -> Faults:
        plain = [po for po in catalog["pos"] if po["recipe"] == "plain_links"]
        page = plain[len(plain) // 4]["url_path"]
        flaky = next(f for f in plain[(3 * len(plain)) // 4]["files"] if f["markup"] != "icon")
        return cls(page, flaky["url_path"])

    def inject(self, base_url: str) -> None:
        sim_post(base_url, "/__sim/reset")
        sim_post(
            base_url,
            "/__sim/inject",
            {
                "fault": "429",
                "path_contains": self.rate_limited_page,
                "count": 1,
                "retry_after": RETRY_AFTER_S,
            },
        )
        answer = sim_post(
            base_url, "/__sim/inject", {"fault": "500", "path_contains": self.flaky_file}
        )
        if answer["pending"] != 2:
            print(f"  warning: {answer['pending'] - 2} injected fault(s) left from the last run")


class FirstPoPage:
    """Polls the simulator every 20 ms from a thread: when it first counted a PO page."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if sim_get(self.base_url, "/__sim/stats")["requests"]["po_page"] > 0:
                    self.at = time.time()
                    return
            except OSError:
                pass
            self._stop.wait(0.02)

    def __enter__(self) -> FirstPoPage:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------------------------
# One measured run


@dataclass
class Measured:
    who: str  # "tool", "tool-off" (e-mails not converted) or "floor"
    workers: int
    latency_ms: float
    exit_code: int
    wall_s: float
    first_po_s: float | None
    cpu_s: float
    cpu_sampled_s: float
    cpu_reaped_s: float
    peak_mb: float
    peak_by_kind: dict[str, float]
    cpu_by_kind: dict[str, float]
    stats: dict[str, Any]
    check: str = ""
    log: Path | None = None


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    who: str,
    command: list[str],
    env: dict[str, str],
    log: Path,
    base_url: str,
    faults: Faults,
    workers: int,
    latency_ms: float,
) -> Measured:
    faults.inject(base_url)
    cpu_before = children_cpu_s()
    with log.open("w") as output:
        started = time.time()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        with FirstPoPage(base_url) as first, TreeSampler(psutil.Process(process.pid)) as tree:
            try:
                exit_code = process.wait(timeout=RUN_LIMIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise SystemExit(
                    f"{who} with {workers} workers took over {RUN_LIMIT_S} s"
                ) from None
            ended = time.time()
    reaped = children_cpu_s() - cpu_before
    return Measured(
        who=who,
        workers=workers,
        latency_ms=latency_ms,
        exit_code=exit_code,
        wall_s=ended - started,
        first_po_s=None if first.at is None else first.at - started,
        cpu_s=max(tree.cpu_s, reaped),
        cpu_sampled_s=tree.cpu_s,
        cpu_reaped_s=reaped,
        peak_mb=tree.peak_mb,
        peak_by_kind=tree.peak_by_kind,
        cpu_by_kind=tree.cpu_by_kind,
        stats=sim_get(base_url, "/__sim/stats"),
        log=log,
    )


TOOL_ENV: dict[str, str] = {}  # --tool-env: settings or flags to try, on the tool's runs only


def tool_command(
    source: Path, base_url: str, out: Path, workers: int, emails: str | None = None
) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUPA_")}
    env.update(TOOL_ENV)
    if emails is not None:
        env["COUPA_CONVERT__EMAILS"] = emails
    env.update(
        HOME=str(out.parent),
        COUPA_USERNAME=DEFAULT_USERNAME,
        COUPA_PASSWORD=DEFAULT_PASSWORD,
        COUPA_STORAGE_STATE=str(out.with_name(f"{out.name}-state.json")),
    )
    command = [PYTHON, "-m", "coupa_async", "run", str(source), "--base-url", base_url]
    command += ["--out", str(out), "--workers", str(workers), "--fresh", "--log-format", "json"]
    return command, env


def floor_command(
    source: Path, base_url: str, out: Path, workers: int
) -> tuple[list[str], dict[str, str]]:
    command = [PYTHON, __file__, "--floor-child", base_url, str(source), str(out), str(workers)]
    return command, dict(os.environ)


# ---------------------------------------------------------------------------------------------
# Checking a run against the catalog


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tool_results(out: Path) -> dict[str, tuple[str, list[Path]]]:
    """PO digits -> (outcome, saved files) from the tool's journal."""
    db = sqlite3.connect(f"file:{out / '.coupa_async' / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        results: dict[str, tuple[str, list[Path]]] = {}
        for label, state in db.execute("SELECT label, state FROM pos"):
            results[label.removeprefix("PO")] = (state, [])
        for label, path in db.execute("SELECT label, path FROM files"):
            results[label.removeprefix("PO")][1].append(out / path)  # relative to the output
        return results
    finally:
        db.close()


def count_conversions(out: Path) -> str:
    """How many e-mails the run saved, converted to PDF and could not convert."""
    mails = [p for p in out.rglob("*") if p.suffix.lower() in (".msg", ".eml") and p.is_file()]
    top = [p for p in mails if not p.parent.name.endswith("_attachments")]
    pdfs = sum(1 for p in top if p.with_name(f"{p.name}.pdf").is_file())
    return f"{len(top)} e-mails saved, {pdfs} with their PDF"


def floor_results(out: Path) -> dict[str, tuple[str, list[Path]]]:
    data = json.loads((out / "floor.json").read_text())
    return {number: (r["outcome"], [Path(p) for p in r["files"]]) for number, r in data.items()}


def check(catalog: dict[str, Any], results: dict[str, tuple[str, list[Path]]]) -> str:
    """'all 61 POs match' or what does not."""
    problems: list[str] = []
    for po in catalog["pos"]:
        number = po["number"]
        if number not in results:
            problems.append(f"{number} ({po['recipe']}): no result")
            continue
        outcome, paths = results[number]
        got = Counter(sha256_of(path) if path.is_file() else f"missing {path}" for path in paths)
        wanted = Counter(f["sha256"] for f in po["expected_files"])
        if outcome != po["expected_outcome"] or got != wanted:
            problems.append(
                f"{number} ({po['recipe']}): {outcome} with {sum(got.values())} files "
                f"({sum((got & wanted).values())} right), expected {po['expected_outcome']} "
                f"with {sum(wanted.values())}"
            )
    if not problems:
        return f"all {len(catalog['pos'])} POs match"
    return f"{len(problems)} mismatches: " + "; ".join(problems)


# ---------------------------------------------------------------------------------------------
# The floor: plain aiohttp (runs in a child process: python bench_mixed.py --floor-child ...)

_LATE_SRC = re.compile(r"var src = (\"[^\"]*\");")
_LAZY_HTML = re.compile(r"box\.innerHTML = (\".*?\");\n", re.S)
_TOKEN = re.compile(r'name="authenticity_token" value="([^"]+)"')
PAGE_ATTEMPTS = 3
PAGE_BACKOFF_S = 1.0  # the pool's backoff_base_s: 1 s, then 2 s
FILE_ATTEMPTS = 3
FILE_PAUSE_S = 0.3  # the job's FILE_RETRY_PAUSE_S


class Retryable(Exception):
    pass


@dataclass
class FloorPo:
    outcome: str = "FAILED"
    files: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # saved and refused, for the PDF rule
    problems: int = 0


async def floor_child(base_url: str, source: Path, out: Path, workers: int) -> None:
    import aiohttp
    from selectolax.lexbor import LexborHTMLParser

    from coupa_async.coupa.discover import click_only_selector, read_page
    from coupa_async.coupa.download import filename_from_disposition
    from coupa_async.coupa.markers import CoupaMarkers
    from coupa_async.coupa.pages import classify, retry_after_seconds

    markers = CoupaMarkers()
    click_selector = click_only_selector(markers)
    hold_until = 0.0  # Retry-After: every task waits until then

    async def hold() -> None:
        while (left := hold_until - time.monotonic()) > 0:
            await asyncio.sleep(left)

    def rate_limited(response: aiohttp.ClientResponse) -> None:
        nonlocal hold_until
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        hold_until = max(hold_until, time.monotonic() + wait)

    async def get_text(http: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
        attempt = 0
        while True:
            await hold()
            try:
                async with http.get(url) as response:
                    if response.status == 429:
                        rate_limited(response)
                        continue
                    if response.status >= 500:
                        raise Retryable(f"HTTP {response.status}")
                    return response.status, str(response.url), await response.text()
            except (Retryable, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
                attempt += 1
                if attempt >= PAGE_ATTEMPTS:
                    raise
                await asyncio.sleep(PAGE_BACKOFF_S * 2 ** (attempt - 1))

    def element_html(item: Any) -> str:
        if isinstance(item, str):
            return html.escape(item)
        attrs = "".join(f' {k}="{html.escape(v)}"' for k, v in item.get("attrs", {}).items())
        if isinstance(item.get("text"), str):
            inner = html.escape(item["text"])
        else:
            inner = "".join(element_html(child) for child in item.get("children", []))
        return f"<{item['tag']}{attrs}>{inner}</{item['tag']}>"

    async def late_html(http: aiohttp.ClientSession, page: str, page_url: str) -> str:
        """What the page's scripts put into its attachment list after load."""
        lazy = _LAZY_HTML.search(page)
        if lazy is not None:
            return json.loads(lazy.group(1))
        src = _LATE_SRC.search(page)
        if src is None:
            return ""
        url = urljoin(page_url, json.loads(src.group(1)))
        if url.endswith("attachments_fragment"):
            return (await get_text(http, url))[2]
        parts = [f"{url}?part=1", f"{url}?part=2"] if "?part=1" in page else [url]
        items: list[Any] = []
        for part in parts:
            items += json.loads((await get_text(http, part))[2])
        return "".join(element_html(item) for item in items)

    def attachments(text: str, page_url: str) -> list[tuple[str, str]]:
        """(URL, name shown) of each attachment; click-only ones by their data-file-id."""
        tree = LexborHTMLParser(text)
        clickable = tree.css(click_selector)
        found = []
        for ref in read_page(tree, page_url, markers).attachments:
            if ref.url is not None:
                found.append((ref.url, ref.name_hint))
            elif ref.click_index is not None:
                file_id = clickable[ref.click_index].attributes.get("data-file-id")
                found.append((urljoin(page_url, f"/file_download/{file_id}"), ref.name_hint))
        return found

    async def fetch_file(
        http: aiohttp.ClientSession, url: str, hint: str, folder: Path, po: FloorPo
    ) -> None:
        attempt = 0
        while True:
            await hold()
            try:
                async with http.get(url) as response:
                    if response.status == 429:
                        rate_limited(response)
                        continue
                    if response.status >= 500:
                        raise Retryable(f"HTTP {response.status}")
                    if response.status >= 400 or "html" in response.content_type:
                        po.problems += 1
                        po.names.append(hint)
                        return
                    name = filename_from_disposition(response.headers.get("Content-Disposition"))
                    path = folder / f"{len(po.files) + po.problems:02d}.bin"
                    with path.open("wb") as handle:
                        async for chunk in response.content.iter_chunked(1024 * 1024):
                            handle.write(chunk)
                    po.files.append(str(path))
                    po.names.append(name or hint)
                    return
            except (Retryable, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
                attempt += 1
                if attempt >= FILE_ATTEMPTS:
                    po.problems += 1
                    po.names.append(hint)
                    return
                await asyncio.sleep(FILE_PAUSE_S * attempt * (1 + random.random()))

    async def read_and_fetch(
        http: aiohttp.ClientSession, url: str, folder: Path, po: FloorPo
    ) -> tuple[bool, str | None]:
        """Fetch a page's attachments: (whether the page is an error page, requisition URL)."""
        status, final_url, text = await get_text(http, url)
        tree = LexborHTMLParser(text)
        if classify(status, final_url, tree, markers).kind.is_error_page:
            return True, None
        refs = attachments(text, final_url)
        late = await late_html(http, text, final_url)
        if late:
            refs += [ref for ref in attachments(late, final_url) if ref not in refs]
        for file_url, hint in refs:
            await fetch_file(http, file_url, hint, folder, po)
        return False, read_page(tree, final_url, markers).requisition_url

    async def process(http: aiohttp.ClientSession, number: str) -> FloorPo:
        po = FloorPo()
        folder = out / number
        folder.mkdir(parents=True, exist_ok=True)
        error, pr_url = await read_and_fetch(http, f"{base_url}/order_headers/{number}", folder, po)
        if error:
            po.outcome = "PO_NOT_FOUND"
            return po
        if not any(name.lower().endswith(".pdf") for name in po.names) and pr_url:
            pr_error, _ = await read_and_fetch(http, pr_url, folder, po)
            if pr_error:
                po.outcome = "PR_NOT_ACCESSIBLE"
                return po
        if not po.files and not po.problems:
            po.outcome = "NO_ATTACHMENTS"
        elif not po.problems:
            po.outcome = "COMPLETED"
        else:
            po.outcome = "PARTIAL" if po.files else "FAILED"
        return po

    numbers = [
        line.strip().removeprefix("PO")
        for line in source.read_text().splitlines()[1:]
        if line.strip()
    ]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for number in numbers:
        queue.put_nowait(number)
    results: dict[str, FloorPo] = {}
    jar = aiohttp.CookieJar(unsafe=True)  # the default jar drops cookies of an IP host
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=max(10, workers * 2))
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout, connector=connector) as http:
        async with http.get(f"{base_url}/sessions/new") as response:
            token = _TOKEN.search(await response.text())
        assert token, "no sign-in form"
        form = {
            "authenticity_token": token.group(1),
            "user[login]": DEFAULT_USERNAME,
            "user[password]": DEFAULT_PASSWORD,
        }
        async with http.post(f"{base_url}/sessions", data=form, allow_redirects=False) as response:
            assert response.status == 302, f"sign-in failed: HTTP {response.status}"

        async def worker() -> None:
            while not queue.empty():
                number = queue.get_nowait()
                try:
                    results[number] = await process(http, number)
                except Exception as exc:  # a PO that fails for good: FAILED, like the tool
                    print(f"{number}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    results[number] = FloorPo()

        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())
    summary = {number: {"outcome": r.outcome, "files": r.files} for number, r in results.items()}
    (out / "floor.json").write_text(json.dumps(summary))


# ---------------------------------------------------------------------------------------------
# Rounds, tables and targets


def one_run(
    who: str,
    base_url: str,
    catalog: dict[str, Any],
    faults: Faults,
    source: Path,
    work: Path,
    workers: int,
    latency_ms: float,
    round_: int,
) -> Measured:
    out = work / f"{who}-{latency_ms:g}ms-{workers}w-r{round_}"
    if who == "floor":
        command, env = floor_command(source, base_url, out, workers)
    else:
        command, env = tool_command(
            source, base_url, out, workers, "off" if who == "tool-off" else None
        )
    log = out.with_name(f"{out.name}.log")
    run = measure(who, command, env, log, base_url, faults, workers, latency_ms)
    try:
        results = floor_results(out) if who == "floor" else tool_results(out)
        run.check = check(catalog, results)
        if who == "tool":
            run.check += f"; {count_conversions(out)}"
    except (OSError, sqlite3.Error, json.JSONDecodeError) as exc:
        run.check = f"no results: {exc}"
    stats = run.stats
    first = f"{run.first_po_s:.2f} s" if run.first_po_s is not None else "never"
    converter_s = run.cpu_by_kind.get("converter")
    converting = f" ({converter_s:.1f} s converting e-mails)" if converter_s else ""
    print(
        f"  {who:<5} {workers} workers: {run.wall_s:6.1f} s, exit {run.exit_code}, first PO page "
        f"{first}, CPU {run.cpu_sampled_s:.1f} s sampled / {run.cpu_reaped_s:.1f} s reaped"
        f"{converting}, "
        f"{stats['total']} requests ({stats['rate_limited']} answered 429, "
        f"{stats['requests_during_retry_after']} sent during Retry-After), faults "
        f"{stats['faults']}; {run.check}",
        flush=True,
    )
    if run.exit_code not in (0, 3):
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        print("    " + "\n    ".join(tail))
    return run


def median_of(runs: list[Measured]) -> Measured:
    """The round with the median wall time (one round: that one); PSS is the peak of all."""
    chosen = sorted(runs, key=lambda r: r.wall_s)[(len(runs) - 1) // 2]
    peak = max(runs, key=lambda r: r.peak_mb)
    chosen.peak_mb, chosen.peak_by_kind = peak.peak_mb, peak.peak_by_kind
    return chosen


def print_table(latency_ms: float, rows: dict[tuple[str, int], Measured]) -> None:
    kinds = [k for k in PROCESS_KINDS if any(r.peak_by_kind.get(k) for r in rows.values())]
    head = f"{'':<16}{'wall s':>8}{'x floor':>9}{'1st PO s':>10}{'CPU s':>8}{'PSS MB':>8}"
    head += "".join(f"{kind:>10}" for kind in kinds)
    print(f"\nlatency {latency_ms:g} ms (PSS: peak of the tree, split by process kind)")
    print(head)
    print("-" * len(head))
    for (who, workers), run in sorted(
        rows.items(), key=lambda item: (("tool", "tool-off", "floor").index(item[0][0]), item[0][1])
    ):
        floor = rows.get(("floor", workers))
        ratio = f"{run.wall_s / floor.wall_s:.2f}" if floor else "-"
        first = f"{run.first_po_s:.2f}" if run.first_po_s is not None else "-"
        line = f"{who + ' ' + str(workers) + ' w':<16}{run.wall_s:>8.1f}{ratio:>9}{first:>10}"
        line += f"{run.cpu_s:>8.1f}{run.peak_mb:>8.0f}"
        line += "".join(f"{run.peak_by_kind.get(kind, 0):>10.0f}" for kind in kinds)
        print(line)
    print("CPU s by process kind (sampled):")
    for (who, workers), run in sorted(rows.items()):
        split = sorted(run.cpu_by_kind.items(), key=lambda item: -item[1])
        shares = ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in split if seconds >= 0.05)
        print(f"  {who + ' ' + str(workers) + ' w':<16}{shares}")


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "FAIL")


def print_targets(table: dict[float, dict[tuple[str, int], Measured]]) -> None:
    print("\ntargets")
    for latency, rows in table.items():
        for (who, workers), off in sorted(rows.items()):
            on = rows.get(("tool", workers))
            if who != "tool-off" or on is None:
                continue
            r = on.wall_s / off.wall_s
            print(
                f"  {verdict(r <= 1.1)}  {latency:g} ms, {workers} workers: e-mails converted "
                f"<= 1.1x the run without ({r:.2f}x: {on.wall_s:.1f} s against {off.wall_s:.1f} s)"
            )

    def ratio(latency: float, workers: int) -> float | None:
        rows = table.get(latency, {})
        tool, floor = rows.get(("tool", workers)), rows.get(("floor", workers))
        return tool.wall_s / floor.wall_s if tool and floor else None

    r = ratio(100, 4)
    print(
        f"  {verdict(None if r is None else r <= 1.3)}  100 ms, 4 workers: tool <= 1.3x floor"
        + (f" ({r:.2f}x)" if r is not None else "")
    )
    for workers in sorted({w for (_, w) in table.get(0, {})}):
        r = ratio(0, workers)
        print(
            f"  {verdict(None if r is None else r <= 2)}  0 ms, {workers} workers: tool <= 2x "
            "floor" + (f" ({r:.2f}x)" if r is not None else "")
        )
    rows = table.get(100, {})
    one, four = rows.get(("tool", 1)), rows.get(("tool", 4))
    speedup = one.wall_s / four.wall_s if one and four else None
    print(
        f"  {verdict(None if speedup is None else speedup >= 3.5)}  100 ms: tool 4 workers >= "
        "3.5x faster than 1" + (f" ({speedup:.2f}x)" if speedup is not None else "")
    )
    pss = [
        run.peak_mb
        for rows in table.values()
        for (who, w), run in rows.items()
        if who == "tool" and w == 4
    ]
    print(
        f"  {verdict(max(pss) <= 600 if pss else None)}  peak PSS with 4 workers <= 600 MB"
        + (f" (up to {max(pss):.0f} MB)" if pss else "")
    )
    firsts = [
        run.first_po_s for rows in table.values() for (who, _), run in rows.items() if who == "tool"
    ]
    known = [f for f in firsts if f is not None]
    ok = None if not firsts else (len(known) == len(firsts) and max(known) <= 1.5)
    print(
        f"  {verdict(ok)}  first PO page request <= 1.5 s after start"
        + (f" (up to {max(known):.2f} s)" if known else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, nargs="+", default=[0, 100], metavar="MS")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the output folders")
    parser.add_argument(
        "--lists-in-html",
        action="store_true",
        help="a tenant whose attachment lists are all in the HTML (no lists filled by script)",
    )
    parser.add_argument(
        "--tool-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the tool's runs, e.g. "
        "COUPA_BROWSER__ARGS='[\"--in-process-gpu\"]' (repeatable)",
    )
    parser.add_argument(
        "--emails-off",
        action="store_true",
        help="also run the tool with convert.emails=off, to compare the cost of converting",
    )
    parser.add_argument("--floor-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for pair in args.tool_env:
        name, _, value = pair.partition("=")
        TOOL_ENV[name] = value
    if args.floor_child:
        base_url, source, out, workers = args.floor_child
        asyncio.run(floor_child(base_url, Path(source), Path(out), int(workers)))
        return

    recipes = mix(args.lists_in_html)
    sim, base_url = start_sim(
        "--seed", str(SEED), "--pos", str(POS), "--recipes", ",".join(recipes)
    )
    work = Path(tempfile.mkdtemp(prefix="bench_mixed."))
    try:
        catalog = sim_get(base_url, "/__sim/catalog")
        summary = catalog["summary"]
        big = max(f["size"] for po in catalog["pos"] for f in po["files"])
        faults = Faults.choose(catalog)
        print(
            f"{psutil.cpu_count()} CPUs; catalog: {summary['pos']} POs, {summary['files']} files "
            f"({summary['bytes'] / 1e6:.0f} MB, largest {big / 2**20:.0f} MB), "
            f"{summary['requisitions']} requisitions; expected {summary['outcomes']}"
        )
        print(
            f"faults each run: 429 (Retry-After {RETRY_AFTER_S} s) on {faults.rate_limited_page}, "
            f"one HTTP 500 on {faults.flaky_file}"
        )
        numbers = [int(po["number"]) for po in catalog["pos"]]
        source = write_po_input(work / "pos.csv", numbers)
        table: dict[float, dict[tuple[str, int], Measured]] = {}
        for latency in args.latency:
            sim_post(base_url, "/__sim/faults", {"latency_ms": latency})
            print(f"== latency {latency:g} ms", flush=True)
            runs: dict[tuple[str, int], list[Measured]] = {}
            for round_ in range(1, args.rounds + 1):
                for workers in args.workers:
                    for who in (
                        ("tool", "tool-off", "floor") if args.emails_off else ("tool", "floor")
                    ):
                        run = one_run(
                            who, base_url, catalog, faults, source, work, workers, latency, round_
                        )
                        runs.setdefault((who, workers), []).append(run)
            table[latency] = {key: median_of(value) for key, value in runs.items()}
        for latency, rows in table.items():
            print_table(latency, rows)
        print_targets(table)
    finally:
        stop_sim(sim)
        if args.keep:
            print(f"\noutput kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
