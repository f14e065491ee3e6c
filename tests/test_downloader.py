"""The Downloader with real Chromium and the simulator: correctness under crashes, expiry, 429s."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from coupa_async import Downloader, Outcome, PoResult
from coupa_async.sim import Catalog, Faults, SimConfig, Simulator

from .runkit import (
    browser_main_processes,
    check_against_catalog,
    numbers,
    settings_for,
    settling_numbers,
)

pytestmark = pytest.mark.browser


# A varied catalog in little, for the runs that a fault interrupts: every outcome (a list
# that never arrives included), the PR fallback, a search by number, a list filled by script
# (the run turns to rendering), e-mails to convert. No page that keeps polling: the paused
# host's test counts every request. Every recipe goes through a Downloader in test_progress.
VARIED = (
    "plain_links",
    "late_json_links",
    "partial_html_instead",
    "error_oops",
    "pr_late_broken_no_po_files",  # early: its three attempts' waits overlap the rest
    "pr_files_no_po_files",
    "failed_html_instead",
    "click_nav",
    "no_attachments",
    "pr_error_no_files",
    "id_other_po",
    "many_files",
)
# Those whose lists all arrive, where a list that never does would only make the run wait
# (three attempts, each with its settle wait: the run's long tail, longer if a fault restarts
# them).
SETTLING = tuple(recipe for recipe in VARIED if recipe != "pr_late_broken_no_po_files")
# And more shapes besides, for the one plain run of four workers.
WIDER = (
    *VARIED,
    "hostile_names_b",
    "late_two_parts_links",
    "line_and_comment_files",
    "heavy_files",
)


def varied(seed: int, pos: int, **options: Any) -> SimConfig:
    """``pos`` POs: the VARIED recipes in their order, then the SETTLING ones again (one list
    that never arrives is enough, and early in the run its waits overlap the rest)."""
    recipes = (*VARIED, *SETTLING, *SETTLING)[:pos]
    assert len(recipes) == pos
    return SimConfig(seed=seed, pos=pos, recipes=recipes, **options)


async def collect(downloader: Downloader, pos: list[str]) -> list[PoResult]:
    return [result async for result in downloader.run(pos)]


async def test_four_workers_over_a_varied_catalog_match_it(tmp_path: Path) -> None:
    config = SimConfig(seed=5, pos=len(WIDER), recipes=WIDER, faults=Faults(latency_ms=20))
    async with Simulator(config) as sim:
        settings = settings_for(sim, tmp_path)
        async with Downloader(settings) as downloader:
            results = await collect(downloader, numbers(sim))
            status = downloader.status()
        assert len(results) == len(WIDER)
        check_against_catalog(sim, results, settings.out)
        assert status.done == len(WIDER) and status.queued == 0 and status.in_flight == 0
        assert sum(status.outcomes.values()) == len(WIDER)
        assert set(status.outcomes) == set(Outcome) - {Outcome.INVALID}  # varied it is
        assert sim.stats.snapshot()["peak_concurrency"] >= 2  # workers did run side by side


async def test_invalid_numbers_are_reported_and_never_sent(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=5, pos=30)) as sim:
        settings = settings_for(sim, tmp_path, workers=1)
        async with Downloader(settings) as downloader:
            before = sim.stats.snapshot()["requests"].get("po_page", 0)
            results = await collect(downloader, ["PO12AB", "", numbers(sim, 1)[0], "XX99"])
        outcomes = [r.outcome for r in results]
        assert outcomes.count(Outcome.INVALID) == 3
        assert sim.stats.snapshot()["requests"].get("po_page", 0) - before >= 1
        assert all(r.message for r in results if r.outcome is Outcome.INVALID)


def _renderers() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "--type=renderer" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


@contextlib.asynccontextmanager
async def running(
    downloader: Downloader, pos: list[str], results: list[PoResult]
) -> AsyncIterator[None]:
    """Collect ``downloader.run(pos)`` into ``results`` in the background of the block."""

    async def consume() -> None:
        async for result in downloader.run(pos):
            results.append(result)

    async with asyncio.TaskGroup() as group:
        group.create_task(consume())
        yield


async def _when_done(results: list[PoResult], count: int, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while len(results) < count:
            await asyncio.sleep(0.02)


async def test_browser_killed_mid_run_loses_nothing(tmp_path: Path) -> None:
    # Killed after 5 results of 14: 3 POs in flight and more not started meet the relaunch.
    config = SimConfig(seed=8, pos=14, recipes=SETTLING, faults=Faults(latency_ms=20))
    async with Simulator(config) as sim:
        settings = settings_for(sim, tmp_path, workers=3)
        results: list[PoResult] = []
        others = {process.pid for process in browser_main_processes()}
        async with Downloader(settings) as downloader:
            async with running(downloader, numbers(sim), results):
                await _when_done(results, 5)
                browsers = [p for p in browser_main_processes() if p.pid not in others]
                assert len(browsers) == 1
                browsers[0].send_signal(signal.SIGKILL)
            relaunches = downloader.status().browser_relaunches
        assert relaunches == 1
        assert len(results) == 14
        check_against_catalog(sim, results, settings.out)


async def test_renderer_crash_is_recovered(tmp_path: Path) -> None:
    # Crashed after 5 results of 11: 2 POs in flight and more not started meet the crash.
    config = SimConfig(seed=9, pos=len(SETTLING), recipes=SETTLING, faults=Faults(latency_ms=30))
    async with Simulator(config) as sim:
        settings = settings_for(sim, tmp_path, workers=2, mode="render")
        results: list[PoResult] = []
        others = {process.pid for process in _renderers()}
        async with Downloader(settings) as downloader:
            async with running(downloader, numbers(sim), results):
                await _when_done(results, 5)
                renderers = [p for p in _renderers() if p.pid not in others]
                assert renderers
                for renderer in renderers:
                    renderer.send_signal(signal.SIGKILL)
            assert downloader.status().browser_relaunches == 0
        check_against_catalog(sim, results, settings.out)
        assert len(results) == len(SETTLING)


async def test_session_expiry_mid_run_renews_once(tmp_path: Path) -> None:
    # Expired after 5 results of 16: the 4 workers, busy, all go on to meet it.
    async with Simulator(varied(12, 16, faults=Faults(latency_ms=10))) as sim:
        settings = settings_for(sim, tmp_path, workers=4)
        results: list[PoResult] = []
        async with Downloader(settings) as downloader:
            logins_at_start = sim.stats.snapshot()["logins"]
            renewals_at_start = downloader.status().session_renewals

            async with running(downloader, numbers(sim), results):
                await _when_done(results, 5)
                sim.expire_sessions()
            renewals = downloader.status().session_renewals - renewals_at_start
        assert sim.stats.snapshot()["logins"] == logins_at_start + 1
        assert renewals == 1
        check_against_catalog(sim, results, settings.out)
        assert len(results) == 16
        # the saved sign-in was replaced, and stays private
        assert Path(settings.storage_state).stat().st_mode & 0o077 == 0


class SimProcess:
    """The simulator in its own process, so its clock does not stall with the test's loop."""

    def __init__(self, config: SimConfig, *args: str) -> None:
        self.config = config
        self.args = args
        self.catalog = Catalog.build(config)
        self.username, self.password = config.username, config.password

    async def __aenter__(self) -> SimProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coupa_async",
            "sim",
            "--seed",
            str(self.config.seed),
            "--pos",
            str(self.config.pos),
            *(("--recipes", ",".join(self.config.recipes)) if self.config.recipes else ()),
            *self.args,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = (await asyncio.wait_for(self.process.stdout.readline(), 60)).decode()
        self.base_url = line.strip().rsplit(" ", 1)[-1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.process.terminate()
        await self.process.communicate()

    async def stats(self) -> dict:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"{self.base_url}/__sim/stats") as r,
        ):
            return await r.json()


async def test_rate_limit_storm_pauses_every_worker(tmp_path: Path) -> None:
    # At this rate the draws of seed 13 send a 429 to the 22nd, 51st, 53rd... request it may
    # fault: the 11 POs make 33 at least (their pages, 22 files), so a storm comes mid-run.
    config = SimConfig(seed=13, pos=len(SETTLING), recipes=SETTLING)
    args = ("--rate-limit-rate", "0.03", "--retry-after", "3")  # 2 s watched after the grace
    async with SimProcess(config, *args) as sim:
        settings = settings_for(sim, tmp_path, workers=4, mode="fast")  # type: ignore[arg-type]
        async with Downloader(settings) as downloader:
            results = await collect(downloader, numbers(sim))  # type: ignore[arg-type]
            pauses = downloader.gate.pauses
        stats = await sim.stats()
        storms = stats["faults"].get("429", 0)
        assert storms >= 1 and pauses >= 1
        # Each worker does one request at a time, so when a 429 is sent at most the other
        # workers' requests can already be on their way; a browser on a loaded machine may
        # deliver one late, so the bound holds however late they arrive. A client that kept
        # sending during Retry-After would exceed it at once.
        late = stats["requests_during_retry_after"] + stats["requests_in_flight_at_429"]
        assert late <= (settings.workers - 1) * storms, stats
        check_against_catalog(sim, results, settings.out)  # type: ignore[arg-type]


async def test_priorities_are_respected(tmp_path: Path) -> None:
    # Priorities order the starts; alike POs (one small file, no e-mail to convert after it)
    # settle in the order they start, so the order of results shows the starts.
    config = SimConfig(seed=14, pos=12, profile="uniform", uniform_files=1, uniform_file_size=2000)
    async with Simulator(config) as sim:
        settings = settings_for(sim, tmp_path, workers=1)
        pos = settling_numbers(sim, 12)
        order: list[str] = []

        async def record(result: PoResult) -> None:
            order.append(result.po_number)

        async with Downloader(settings) as downloader:
            downloader.add_listener(record)
            # queued in one go, before the single worker can take any of them
            for po in pos[:8]:
                downloader.submit(po, priority="LOW")
            for po in pos[8:10]:
                downloader.submit(po, priority="URGENT")
            for po in pos[10:]:
                downloader.submit(po, priority="HIGH")
            assert not downloader.submit(pos[0])  # the same PO is never queued twice
            await downloader.join()
        assert order[:2] == pos[8:10]
        assert order[2:4] == pos[10:]
        assert order[4:] == pos[:8]


async def test_scaling_down_and_up_mid_run_loses_and_repeats_nothing(tmp_path: Path) -> None:
    # Six changes, each after 2 more results (12 or more of the 20 done by the last); the cap
    # of 16 keeps a run that raced ahead from being waited on past its end.
    async with Simulator(varied(15, 20, faults=Faults(latency_ms=15))) as sim:
        settings = settings_for(sim, tmp_path, workers=4, min_workers=1, max_workers=6)
        results: list[PoResult] = []
        seen_sizes: set[int] = set()
        async with (
            Downloader(settings) as downloader,
            running(downloader, numbers(sim), results),
        ):
            for target in (1, 6, 2, 0, 99, 3):
                await _when_done(results, min(16, len(results) + 2))
                applied = downloader.scale_to(target)
                assert applied == max(1, min(6, target))
                await asyncio.sleep(0.3)
                seen_sizes.add(len(downloader.engine.active_workers))
        assert 1 in seen_sizes and 6 in seen_sizes
        assert len(results) == 20
        check_against_catalog(sim, results, settings.out)


async def test_contexts_are_recycled_with_their_cookies(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=18, pos=12, recipes=SETTLING)) as sim:
        settings = settings_for(sim, tmp_path, workers=2, recycle_after_tasks=2)
        async with Downloader(settings) as downloader:
            results = await collect(downloader, numbers(sim))
            opened = downloader.engine.contexts_opened
            logins = sim.stats.snapshot()["logins"]
        assert opened >= 2 + 12 // 2 - 2  # new contexts along the way
        assert logins == 1  # the recycled contexts kept the session: no new sign-in
        check_against_catalog(sim, results, settings.out)


async def test_library_installs_no_signal_handlers(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    async with Simulator(SimConfig(seed=16, pos=30)) as sim:
        settings = settings_for(sim, tmp_path, workers=2)
        async with Downloader(settings) as downloader:
            during = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
            results = await collect(downloader, numbers(sim, 6))
    assert during == before
    assert len(results) == 6


async def test_without_credentials_an_expired_session_stops_the_run(tmp_path: Path) -> None:
    from coupa_async import AuthenticationError

    async with Simulator(SimConfig(seed=17, pos=30, faults=Faults(latency_ms=20))) as sim:
        with_login = settings_for(sim, tmp_path, workers=2)
        async with Downloader(with_login) as downloader:  # signs in, saves the state file
            await collect(downloader, numbers(sim, 2))
        # POs that settle without failing on their own (a list that never arrives fails).
        rest = [f"PO{po.number}" for po in sim.catalog.pos[2:] if po.expected_outcome != "FAILED"]
        settings = with_login.model_copy(update={"username": None, "password": None})
        results: list[PoResult] = []
        downloader = Downloader(settings)
        with pytest.raises(AuthenticationError, match="coupa_async login"):
            async with downloader:
                async for result in downloader.run(rest):
                    results.append(result)
                    if len(results) == 4:
                        sim.expire_sessions()
        pending = {task.po.label for task in downloader.pending}
        done = {result.po_number for result in results}
        assert 4 <= len(results) < len(rest)
        assert pending and not pending & done
        assert len(pending) + len(done) == len(rest)  # nothing lost, nothing failed for the expiry
        assert all(r.outcome.value != "FAILED" for r in results)


@pytest.fixture(autouse=True)
def _no_browser_left_behind():
    before = {process.pid for process in browser_main_processes()}  # e.g. the session's own
    yield
    leftovers = [p for p in browser_main_processes() if p.pid not in before]
    for process in leftovers:
        process.kill()
    assert not leftovers, "a browser outlived its Downloader"


async def test_a_paused_host_gets_no_request_from_any_worker(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=19, pos=9, recipes=SETTLING)) as sim:
        settings = settings_for(sim, tmp_path, workers=3)
        async with Downloader(settings) as downloader:
            await collect(downloader, numbers(sim, 3))  # warm: contexts open, auto mode checked
            sim.reset_stats()
            downloader.gate.pause_for(4.0)  # as a 429 with Retry-After: 4 would
            consumer = asyncio.ensure_future(collect(downloader, numbers(sim)[3:]))  # 2 a worker
            # Looked at well inside the pause: a loop stalled by a busy machine for up to 3 s
            # still reads the counter before the pause ends.
            await asyncio.sleep(1.0)
            during = sim.stats.snapshot()["total"]
            results = await consumer
        assert during == 0
        assert len(results) == 6 and sim.stats.snapshot()["total"] > 0


async def test_a_result_that_cannot_be_recorded_stops_the_run_cleanly(tmp_path: Path) -> None:
    from coupa_async.errors import RunStoppedError

    async with Simulator(SimConfig(seed=20, pos=30)) as sim:
        settings = settings_for(sim, tmp_path, workers=2)
        seen: list[str] = []

        async def journal_on_a_full_disk(result: PoResult) -> None:
            if len(seen) == 3:
                raise OSError(28, "No space left on device")
            seen.append(result.po_number)

        downloader = Downloader(settings)
        results: list[PoResult] = []
        with pytest.raises(RunStoppedError, match="No space left"):
            async with downloader:
                downloader.add_listener(journal_on_a_full_disk)
                async for result in downloader.run(numbers(sim, 12)):
                    results.append(result)
        pending = {task.po.label for task in downloader.pending}
        assert len(seen) == 3
        assert {r.po_number for r in results} == set(seen)  # only recorded results announced
        assert pending and not pending & set(seen)
        assert len(pending) + len(seen) == 12


async def test_a_context_closed_under_a_worker_is_replaced(tmp_path: Path) -> None:
    # Closed after 5 results of 11: its PO in flight is retried, more are still to come.
    config = SimConfig(seed=23, pos=len(SETTLING), recipes=SETTLING, faults=Faults(latency_ms=20))
    async with Simulator(config) as sim:
        settings = settings_for(sim, tmp_path, workers=2, mode="render")
        results: list[PoResult] = []
        async with (
            Downloader(settings) as downloader,
            running(downloader, numbers(sim), results),
        ):
            await _when_done(results, 5)
            opened = downloader.engine.contexts_opened
            victim = next(w for w in downloader.engine.workers.values() if w.context is not None)
            assert victim.context is not None
            await victim.context.close()
        assert downloader.engine.contexts_opened > opened  # a new context took its place
        assert downloader.status().browser_relaunches == 0
        assert len(results) == len(SETTLING)
        check_against_catalog(sim, results, settings.out)


async def test_a_retry_goes_ahead_of_pos_not_yet_started(tmp_path: Path) -> None:
    """A run's tail is not its retries one after another: once its backoff has run, a retried
    PO is taken before the POs still waiting for their first attempt."""
    config = SimConfig(seed=17, pos=12, profile="uniform", uniform_files=1, uniform_file_size=2000)
    async with Simulator(config) as sim:
        first = sim.catalog.pos[0]
        sim.inject("500", path_contains=first.url_path, count=1)
        settings = settings_for(sim, tmp_path, workers=1, backoff_base_s=0.01, mode="render")
        order: list[str] = []

        async def record(result: PoResult) -> None:
            order.append(result.po_number)

        async with Downloader(settings) as downloader:
            downloader.add_listener(record)
            results = await collect(downloader, numbers(sim))
        retried = next(r for r in results if r.po_number == f"PO{first.number}")
        assert retried.outcome is Outcome.COMPLETED and retried.attempts == 2
        assert order.index(retried.po_number) < len(order) - 3, order


async def test_an_error_of_the_callers_block_comes_out_as_itself(tmp_path: Path) -> None:
    """Not wrapped in an exception group, and the POs in flight are left pending."""
    async with Simulator(SimConfig(seed=24, pos=12, faults=Faults(latency_ms=30))) as sim:
        settings = settings_for(sim, tmp_path, workers=2)
        downloader = Downloader(settings)
        others = {process.pid for process in browser_main_processes()}
        with pytest.raises(LookupError, match="the caller's own"):
            async with downloader:
                for po in numbers(sim):
                    downloader.submit(po)
                await asyncio.sleep(0.2)
                raise LookupError("the caller's own error")
        assert downloader.pending  # what did not settle is known, not lost
        assert not [p for p in browser_main_processes() if p.pid not in others]  # closed


@pytest.mark.parametrize("fault", ["killed", pytest.param("stopped", marks=pytest.mark.long)])
async def test_a_browser_killed_or_stuck_during_the_first_sign_in_is_relaunched_and_signs_in(
    tmp_path: Path, fault: str
) -> None:
    # Four POs whose lists all arrive (one that never does would wait through 3 attempts).
    async with Simulator(SimConfig(seed=15, pos=4, recipes=SETTLING)) as sim:
        # Stuck: a browser that never answers again (SIGSTOP); the sign-in gives up on it
        # after its bound (navigation 2 s: 16 s) and relaunches it, once its closing has had
        # close_s (10 s by default; 4 s is plenty for a browser that answers).
        timeouts = {"timeouts.navigation_s": 2.0, "timeouts.close_s": 4.0}
        settings = settings_for(sim, tmp_path, workers=2, **timeouts)
        sim.inject("hang", "/sessions", count=1, seconds=1.5)  # the login page takes 1.5 s
        others = {process.pid for process in browser_main_processes()}
        hit: list[psutil.Process] = []

        async def fault_while_signing_in() -> None:
            while not sim.stats.snapshot()["requests"].get("login"):
                await asyncio.sleep(0.02)
            (browser,) = [p for p in browser_main_processes() if p.pid not in others]
            # While the sign-in waits for its page.
            browser.send_signal(signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
            hit.append(browser)

        faulting = asyncio.create_task(fault_while_signing_in())
        try:
            async with Downloader(settings) as downloader:
                results = await collect(downloader, numbers(sim))
                relaunches = downloader.status().browser_relaunches
        finally:
            faulting.cancel()
            for browser in hit:
                with contextlib.suppress(psutil.Error):
                    browser.send_signal(signal.SIGKILL)  # a stopped one would outlive the test
        assert hit and relaunches == 1
        check_against_catalog(sim, results, settings.out)
