"""A Downloader runs once: its run opens on ``async with`` and is refused a second time."""

from __future__ import annotations

from pathlib import Path

import pytest

from coupa_async import Downloader
from coupa_async.sim import SimConfig, Simulator

from .runkit import numbers, settings_for

pytestmark = pytest.mark.browser


async def test_a_downloader_runs_once_and_says_so_when_used_outside_its_run(
    tmp_path: Path,
) -> None:
    async with Simulator(SimConfig(seed=5, pos=2)) as sim:
        downloader = Downloader(settings_for(sim, tmp_path, workers=1))
        with pytest.raises(RuntimeError, match="inside `async with`"):
            downloader.submit(numbers(sim, 1)[0])
        with pytest.raises(RuntimeError, match="inside `async with`"):
            downloader.status()
        async with downloader:
            with pytest.raises(RuntimeError, match="runs once"):
                async with downloader:
                    pass  # pragma: no cover - refused before the block
            results = [r async for r in downloader.run(numbers(sim, 1))]
            assert downloader.engine.max_workers >= 1  # the public way to the engine
        assert len(results) == 1 and results[0].outcome.is_success, results
        # After the run: readings stay, work is refused with a sentence, reopening too.
        assert downloader.status().done == 1
        assert downloader.pending == []
        with pytest.raises(RuntimeError, match="has ended"):
            downloader.submit(numbers(sim, 2)[1])
        with pytest.raises(RuntimeError, match="runs once"):
            async with downloader:
                pass  # pragma: no cover - refused before the block
