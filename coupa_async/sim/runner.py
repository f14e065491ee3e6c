"""Serve a simulator until cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .config import SimConfig
from .server import Simulator


async def run_forever(
    config: SimConfig, on_ready: Callable[[Simulator], None] | None = None
) -> None:
    """Start a simulator, call `on_ready(sim)`, and serve until this coroutine is cancelled."""
    async with Simulator(config) as sim:
        if on_ready is not None:
            on_ready(sim)
        await asyncio.Event().wait()
