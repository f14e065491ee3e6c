"""Fixtures of the simulator tests: simulators started per test, and HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sim_testkit import N_RECIPES, MakeSim, new_client

from coupa_async.sim import SimConfig, Simulator


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    """Start simulators with `SimConfig(**kwargs)`; all are stopped after the test."""
    started: list[Simulator] = []

    async def make(**kwargs: Any) -> Simulator:
        sim = Simulator(SimConfig(**kwargs))
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


@pytest.fixture(scope="module")
async def shared_sim() -> AsyncIterator[Simulator]:
    """A varied simulator holding every recipe once, shared by a module's read-only tests."""
    async with Simulator(SimConfig(seed=7, pos=N_RECIPES)) as sim:
        yield sim


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_client() as session:
        yield session
