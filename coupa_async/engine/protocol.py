"""What the engine is handed: a job to run on each item, and the services the job shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from playwright.async_api import Browser, BrowserContext

from coupa_async.session.gate import HostGate

if TYPE_CHECKING:
    from coupa_async.engine.browser import BrowserSupervisor
    from coupa_async.engine.slot import WorkerSlot

R = TypeVar("R")
T_contra = TypeVar("T_contra", contravariant=True)  # items are only handed to a job


class Job(Protocol[T_contra, R]):
    """One kind of work: how to name an item, run it on a worker, and give it up.

    Items (``T_contra``) only go in; results (``R``) come out of ``run`` and ``give_up`` and go
    back in to ``follow_up`` and ``outcome``.
    """

    def key(self, item: T_contra) -> str:
        """The item's identity: one of each key is queued or in flight at a time."""
        ...

    async def run(self, slot: WorkerSlot, item: T_contra, attempt: int, final: bool) -> R:
        """Settle ``item`` to a result, or raise for the engine to act on (see actions)."""
        ...

    def follow_up(self, item: T_contra, result: R) -> Awaitable[R] | None:
        """Work that must end before ``result`` settles but needs no worker (converting saved
        files, say), giving the result to settle; None when there is none. It raises only
        ``StorageError`` (which stops the run); anything else settles ``result`` as it was."""
        ...

    def give_up(self, item: T_contra, attempts: int, reason: str) -> R:
        """The result of an item whose attempts are all used."""
        ...

    def outcome(self, result: R) -> str:
        """The outcome's name, for the statistics."""
        ...


class Session(Protocol):
    """The run's sign-in: cookies of a generation, renewed single-flight."""

    generation: int
    renewals: int
    state: dict[str, Any] | None  # storage state for a new context (cookies, local storage)

    @property
    def cookies(self) -> list[dict[str, Any]]: ...

    async def renew(self, seen_generation: int) -> None:
        """Sign in again unless done since ``seen_generation``; raises CoupaAsyncError."""
        ...

    def vouch(self, generation: int) -> None:
        """An item settled with the cookies of ``generation``: that sign-in works."""
        ...


class OutageCheck(Protocol):
    """Whether the host is down (confirmed by a probe); the engine then waits, not charges."""

    @property
    def down(self) -> bool: ...

    async def confirm(self, reason: str) -> bool: ...


ContextFactory = Callable[[Browser, dict[str, Any] | None], Awaitable[BrowserContext]]


@dataclass(frozen=True)
class Services:
    """What the engine's workers share: browser, contexts, sign-in, host gate, outage check."""

    browser: BrowserSupervisor
    new_context: ContextFactory
    session: Session
    gate: HostGate
    outage: OutageCheck
    on_context: Callable[[BrowserContext], None] = lambda context: None  # e.g. watch 429s
