"""Benchmark the PO job: ms per PO by discovery mode, big-file throughput, and memory.

One worker (one signed-in context, one page) against the simulator in a subprocess
(`python -m coupa_async.sim --profile uniform`, no latency), so the figures are the job's own:

1. peak RSS growth of this Python process while the job saves one 200 MB file (sampled every
   10 ms from a background thread, so samples continue while the event loop is busy);
2. ms per PO in `render` and in `fast` mode (3 files of 50 KB per PO), after a warm-up;
3. the job's file downloads (its `_save_all`: cookies, streaming, SHA-256, renaming) vs plain
   aiohttp streaming the same 5 MB files to disk with the session cookie;
4. what waiting for a page to settle costs: ms per page read by the reader's `render` against
   a plain read (navigate to DOMContentLoaded, parse the DOM: the reading without any settling),
   interleaved in one run, on pages that show attachments and on pages that show none.

    .venv/bin/python scripts/bench_job.py [--pos 60] [--warmup 10] [--only settle]

Targets for reference: render <= 150 ms/PO, fast <= 40 ms/PO, 5 MB files within 1.5x of
plain aiohttp, memory growth < 30 MB. Settling adds about the quiet window (500 ms from the
page's last request) to every rendered page, whether it shows attachments at first look or not:
a first look is no proof of the whole list (the job fetches the files it shows meanwhile).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import benchkit
import psutil
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

import coupa_async.coupa.po_steps as job_module
from coupa_async.coupa.discover import read_page
from coupa_async.coupa.download import context_cookie_header
from coupa_async.coupa.numbers import parse_po_number
from coupa_async.coupa.pages import parse_html
from coupa_async.coupa.po_steps import JobEnv, OpenPage, PoTask, process_po
from coupa_async.coupa.reader import Mode, PageReader
from coupa_async.log import configure_logging
from coupa_async.results.layout import OutputLayout
from coupa_async.results.result import Outcome, PoResult
from coupa_async.session.chromium import launch_browser, new_context
from coupa_async.settings import Settings, load_settings
from coupa_async.signin.form import sign_in
from coupa_async.sim import DEFAULT_PASSWORD, DEFAULT_USERNAME
from coupa_async.sim.config import FIRST_PO_NUMBER

MB = 1024 * 1024
PARTS = ("memory", "modes", "settle", "files")
CHUNK = 1024 * 1024
_URL = re.compile(r"listening on (http://\S+)")


# ---------------------------------------------------------------------------------------------
# Simulator and worker


def simulator(pos: int, files: int, file_size: int) -> contextlib.AbstractContextManager[str]:
    """A uniform catalog of ``pos`` POs with ``files`` files of ``file_size`` bytes each."""
    return benchkit.simulator(
        "--profile",
        "uniform",
        "--pos",
        str(pos),
        "--uniform-files",
        str(files),
        "--uniform-file-size",
        str(file_size),
        "--latency-ms",
        "0",
    )


@asynccontextmanager
async def worker(browser: Browser, settings: Settings, base_url: str):  # type: ignore[no-untyped-def]
    """A signed-in context and page, and the aiohttp session of the run."""
    context = await new_context(browser, settings)
    try:
        await sign_in(
            context, base_url, DEFAULT_USERNAME, DEFAULT_PASSWORD, markers=settings.markers
        )
        page = await context.new_page()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            yield context, page, http
    finally:
        await context.close()


def job_env(
    settings: Settings,
    context: BrowserContext,
    page: Page,
    http: aiohttp.ClientSession,
    out: Path,
    mode: Mode,
) -> JobEnv:
    reader = PageReader(
        settings.markers,
        mode,
        navigation_timeout_s=settings.timeouts.navigation_s,
        settle_s=settings.timeouts.settle_s,
    )
    return JobEnv(settings, context, OpenPage(page), http, OutputLayout(out), reader)


def task(index: int) -> PoTask:
    return PoTask(parse_po_number(str(FIRST_PO_NUMBER + index)))


def check(result: PoResult, files: int) -> None:
    if result.outcome is not Outcome.COMPLETED or result.downloaded != files:
        raise SystemExit(f"{result.po_number}: {result.outcome} {result.message}")


# ---------------------------------------------------------------------------------------------
# 1. ms per PO


async def bench_modes(
    browser: Browser, settings: Settings, work: Path, pos: int, warmup: int
) -> None:
    print(f"== ms per PO: {pos} POs of 3 x 50 KB, one worker, after {warmup} warm-up POs")
    with simulator(warmup + pos, 3, 50_000) as base_url:
        settings = settings.model_copy(update={"base_url": base_url})
        async with worker(browser, settings, base_url) as (context, page, http):
            for mode in ("render", "fast"):
                env = job_env(settings, context, page, http, work / mode, mode)
                for i in range(warmup):
                    check(await process_po(env, task(i)), 3)
                times = []
                for i in range(warmup, warmup + pos):
                    started = time.perf_counter()
                    result = await process_po(env, task(i))
                    times.append((time.perf_counter() - started) * 1000)
                    check(result, 3)
                times.sort()
                print(
                    f"  {mode:<6}  median {statistics.median(times):6.1f} ms/PO   "
                    f"mean {statistics.fmean(times):6.1f}   "
                    f"p90 {times[int(len(times) * 0.9) - 1]:6.1f}   "
                    f"min {times[0]:6.1f}   max {times[-1]:6.1f}   "
                    f"reads {env.reader.counts}"
                )


# ---------------------------------------------------------------------------------------------
# 1b. The cost of settling


async def plain_read(page: Page, url: str, settings: Settings) -> int:
    """Navigate to DOMContentLoaded and parse the DOM: a reading with no settling at all."""
    await page.goto(url, wait_until="domcontentloaded")
    facts = read_page(parse_html(await page.content()), page.url, settings.markers)
    return len(facts.attachments)


def _stats(times: list[float]) -> str:
    times = sorted(times)
    return (
        f"median {statistics.median(times):6.1f} ms  p90 {times[int(len(times) * 0.9) - 1]:6.1f}"
        f"  max {times[-1]:6.1f}"
    )


async def bench_settle(browser: Browser, settings: Settings, pos: int, warmup: int) -> None:
    print(f"== settling: ms per page read, {pos} pages each, plain read and reader interleaved")
    for label, files in (("3 attachments", 3), ("no attachments", 0)):
        with simulator(warmup + pos, files, 50_000) as base_url:
            settings = settings.model_copy(update={"base_url": base_url})
            async with worker(browser, settings, base_url) as (_context, page, _http):
                reader = PageReader(settings.markers, "render", settle_s=5.0)
                plain: list[float] = []
                settled: list[float] = []
                for i in range(warmup + pos):
                    url = task(i).po.order_url(base_url)
                    started = time.perf_counter()
                    shown = await plain_read(page, url, settings)
                    middle = time.perf_counter()
                    read = await reader.render(page, url)
                    ended = time.perf_counter()
                    assert read.facts is not None and len(read.facts.attachments) == shown
                    if i >= warmup:
                        plain.append((middle - started) * 1000)
                        settled.append((ended - middle) * 1000)
                added = statistics.median(settled) - statistics.median(plain)
                print(f"  {label:<15} plain   {_stats(plain)}")
                print(
                    f"  {label:<15} reader  {_stats(settled)}   added {added:+6.1f} ms "
                    f"(settled {reader.counts['settled']} of {reader.counts['render']})"
                )


# ---------------------------------------------------------------------------------------------
# 2. Big files: the job vs plain aiohttp


class SaveTimer:
    """Adds up the time the job spends in fetching and filing attachments (``_save_all``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._real = job_module._save_all

    async def __call__(self, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            await self._real(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    def __enter__(self) -> SaveTimer:
        job_module._save_all = self  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        job_module._save_all = self._real


async def plain_download(
    http: aiohttp.ClientSession, urls: list[str], cookie: str, folder: Path, *, sha256: bool
) -> float:
    """Stream each URL to a file with aiohttp alone (and hash it); returns the seconds it took."""
    await asyncio.to_thread(folder.mkdir, parents=True)
    started = time.perf_counter()
    for n, url in enumerate(urls):
        digest = hashlib.sha256()
        async with http.get(url, headers={"Cookie": cookie}) as resp:
            resp.raise_for_status()
            with (folder / f"{n}.bin").open("wb") as handle:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    handle.write(chunk)
                    if sha256:
                        digest.update(chunk)
    return time.perf_counter() - started


async def bench_big_files(
    browser: Browser, settings: Settings, work: Path, pos: int, size: int, rounds: int
) -> None:
    total_mb = pos * 3 * size / MB
    print(
        f"== file downloads: {pos} POs of 3 x {size / MB:.0f} MB ({total_mb:.0f} MB), "
        f"{rounds} rounds"
    )
    with simulator(pos, 3, size) as base_url:
        settings = settings.model_copy(update={"base_url": base_url})
        async with worker(browser, settings, base_url) as (context, page, http):
            runs: dict[str, list[float]] = {"job": [], "plain": [], "plain+sha256": []}
            for r in range(rounds + 1):  # round 0 warms both up
                env = job_env(settings, context, page, http, work / f"job{r}", "fast")
                urls: list[str] = []
                with SaveTimer() as timer:
                    for i in range(pos):
                        result = await process_po(env, task(i))
                        check(result, 3)
                        urls += [saved.url for saved in result.files]
                cookie = await context_cookie_header(context, urls[0])
                plain = await plain_download(http, urls, cookie, work / f"p{r}", sha256=False)
                hashed = await plain_download(http, urls, cookie, work / f"h{r}", sha256=True)
                for name in (f"job{r}", f"p{r}", f"h{r}"):
                    shutil.rmtree(work / name)
                if r:
                    runs["job"].append(timer.seconds)
                    runs["plain"].append(plain)
                    runs["plain+sha256"].append(hashed)
            for name, seconds in runs.items():
                median = statistics.median(seconds)
                print(
                    f"  {name:<12}  median {median * 1000:6.1f} ms ({total_mb / median:5.0f} MB/s)"
                    f"  min {min(seconds) * 1000:6.1f} ms"
                    f"  rounds {', '.join(f'{s * 1000:.0f}' for s in seconds)}"
                )
            job, plain = statistics.median(runs["job"]), statistics.median(runs["plain"])
            hashed = statistics.median(runs["plain+sha256"])
            best = min(runs["job"]) / min(runs["plain"])
            print(
                f"  ratio  job / plain aiohttp {job / plain:.2f}x of medians, "
                f"{best:.2f}x of minima; plain+sha256 / plain {hashed / plain:.2f}x"
            )


# ---------------------------------------------------------------------------------------------
# 3. Memory while saving one big file


class RssSampler:
    """Samples this process's RSS every ``interval_s`` in a background thread."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.samples += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def bench_memory(browser: Browser, settings: Settings, work: Path, size: int) -> None:
    print(f"== memory: one PO with one {size / MB:.0f} MB file, after one PO of 50 KB")
    # Run first, so no earlier big download has grown the heap; warm up on a small file only.
    with simulator(1, 1, 50_000) as base_url:
        settings = settings.model_copy(update={"base_url": base_url})
        async with worker(browser, settings, base_url) as (context, page, http):
            env = job_env(settings, context, page, http, work / "warmup", "fast")
            check(await process_po(env, task(0)), 1)
    with simulator(1, 1, size) as base_url:
        settings = settings.model_copy(update={"base_url": base_url})
        async with worker(browser, settings, base_url) as (context, page, http):
            env = job_env(settings, context, page, http, work / "memory", "fast")
            gc.collect()
            baseline = psutil.Process().memory_info().rss
            started = time.perf_counter()
            with RssSampler() as sampler:
                result = await process_po(env, task(0))
            seconds = time.perf_counter() - started
            check(result, 1)
            growth = (max(sampler.peak, baseline) - baseline) / MB
            print(
                f"  saved {result.files[0].size / MB:.0f} MB in {seconds:.2f} s; "
                f"RSS baseline {baseline / MB:.0f} MB, peak {sampler.peak / MB:.0f} MB, "
                f"growth {growth:.1f} MB ({sampler.samples} samples)"
            )


# ---------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    configure_logging(level="warning")
    work = Path(tempfile.mkdtemp(prefix="bench_job."))
    try:
        config = work / "empty.config"
        config.write_text("")
        settings = load_settings(
            {"storage_state": str(work / "state.json")},
            config_file=config,
            env_file=work / "absent.env",
            environ={},
        ).settings
        async with async_playwright() as driver:
            browser = await launch_browser(driver, settings)
            try:
                print(
                    f"browser {browser.version}, {psutil.cpu_count()} CPUs, "
                    f"Python {sys.version.split()[0]}"
                )
                parts = set(args.only or PARTS)
                if "memory" in parts:
                    await bench_memory(browser, settings, work, args.huge_mb * MB)
                if "modes" in parts:
                    await bench_modes(browser, settings, work, args.pos, args.warmup)
                if "settle" in parts:
                    await bench_settle(browser, settings, args.pos, args.warmup)
                if "files" in parts:
                    await bench_big_files(
                        browser, settings, work, args.big_pos, args.big_size_mb * MB, args.rounds
                    )
            finally:
                await browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pos", type=int, default=60, help="POs timed per mode")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up POs per mode")
    parser.add_argument("--big-pos", type=int, default=5, help="POs of 3 big files")
    parser.add_argument("--big-size-mb", type=int, default=5, help="size of each big file")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds of the big files")
    parser.add_argument("--huge-mb", type=int, default=200, help="the file of the memory test")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only these parts")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
