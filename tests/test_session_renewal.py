"""Renewing an expired session: every failure reaches one place, as one kind of error."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import structlog
from playwright.async_api import BrowserContext
from playwright.async_api import Error as PlaywrightError

from coupa_async import Downloader, PoResult
from coupa_async.errors import AuthenticationError
from coupa_async.session.gate import HostGate
from coupa_async.signin.keeper import SessionKeeper
from coupa_async.sim import Faults, SimConfig, Simulator

from .runkit import check_against_catalog, make_settings, numbers, settings_for


def _keeper(tmp_path: Path, new_context: Any) -> SessionKeeper:
    settings = make_settings(
        tmp_path,
        base_url="https://tenant.example.com",
        username="someone",
        password="secret",
        storage_state=str(tmp_path / "state.json"),
    )
    return SessionKeeper(settings, new_context, HostGate(), None)


async def test_the_first_caller_and_the_waiters_get_the_same_authentication_error(
    tmp_path: Path,
) -> None:
    opened = asyncio.Event()

    async def dying_browser(_: dict[str, Any] | None) -> BrowserContext:
        opened.set()
        await asyncio.sleep(0.05)  # long enough for a second worker to start waiting
        raise PlaywrightError("Target page, context or browser has been closed")

    keeper = _keeper(tmp_path, dying_browser)
    first = asyncio.create_task(keeper.renew(0))
    await opened.wait()
    waiter = asyncio.create_task(keeper.renew(0))
    outcomes = await asyncio.gather(first, waiter, return_exceptions=True)
    assert all(isinstance(error, AuthenticationError) for error in outcomes), outcomes
    assert outcomes[0] is outcomes[1]
    assert "closed" in str(outcomes[0])
    assert keeper.generation == 0 and keeper.renewals == 0
    assert keeper._gate.is_open  # the renewal does not leave the host closed


async def test_renewal_does_not_swallow_cancellation(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def slow(_: dict[str, Any] | None) -> BrowserContext:
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    keeper = _keeper(tmp_path, slow)
    task = asyncio.create_task(keeper.renew(0))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert keeper._gate.is_open


@pytest.mark.browser
@pytest.mark.usefixtures("unfiltered_logs")
async def test_a_renewal_whose_sign_in_cannot_be_saved_goes_on_and_spares_the_caller(
    tmp_path: Path,
) -> None:
    """The session expires mid-run and the new sign-in cannot be written (disk full, say).

    The new sign-in still serves this run; the failure to save it is a warning. Before, the
    raw OSError left a worker and its task group cancelled the embedding application's task.
    """
    async with Simulator(SimConfig(seed=5, pos=16, faults=Faults(latency_ms=5))) as sim:
        state_dir = tmp_path / "state"
        settings = settings_for(sim, tmp_path, workers=2, storage_state=str(state_dir / "s.json"))
        ticks = 0

        async def bystander() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        neighbour = asyncio.create_task(bystander())
        results: list[PoResult] = []
        with structlog.testing.capture_logs() as logs:
            async with Downloader(settings) as downloader:
                renewals_at_start = downloader.status().session_renewals
                shutil.rmtree(state_dir)
                state_dir.write_text("a file where the state's folder was")  # cannot be written
                sim.expire_sessions()
                async with asyncio.timeout(90):
                    async for result in downloader.run(numbers(sim)):
                        results.append(result)
                assert downloader.status().session_renewals == renewals_at_start + 1
        current = asyncio.current_task()
        assert current is not None and current.cancelling() == 0
        assert not neighbour.done() and ticks > 0
        neighbour.cancel()
        check_against_catalog(sim, results, settings.out)
        assert len(results) == len(numbers(sim))
        assert any(entry["event"] == "storage_state_not_saved" for entry in logs)
