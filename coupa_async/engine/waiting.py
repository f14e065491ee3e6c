"""Waiting for the first of two things, with anyio: the one place this idiom lives."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Protocol, TypeVar

import anyio

T = TypeVar("T")


class Flag(Protocol):
    """What ``unless_stopped`` needs of a stop signal (``anyio.Event``, ``asyncio.Event``)."""

    def is_set(self) -> bool: ...

    async def wait(self) -> object: ...


async def unless_stopped(work: Awaitable[T], stop: Flag) -> T | None:
    """``work``'s result, or None when ``stop`` is set first (``work`` is then cancelled)."""
    result: T | None = None
    if stop.is_set():
        if inspect.iscoroutine(work):
            work.close()
        return None

    async with anyio.create_task_group() as group:

        async def run_work() -> None:
            nonlocal result
            result = await work
            group.cancel_scope.cancel()

        async def watch_stop() -> None:
            await stop.wait()
            group.cancel_scope.cancel()

        group.start_soon(run_work)
        group.start_soon(watch_stop)
    return result
