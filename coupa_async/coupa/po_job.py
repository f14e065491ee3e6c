"""The Coupa PO job as the engine runs it: one PoTask in, one PoResult out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp
import anyio
from playwright.async_api import BrowserContext, Response

from coupa_async.coupa.http import ReceivedBytes
from coupa_async.coupa.pages import retry_after_seconds
from coupa_async.coupa.po_steps import JobEnv, PoTask, process_po
from coupa_async.coupa.reader import PageReader
from coupa_async.emails.options import is_email
from coupa_async.emails.outcome import ConversionOutcome
from coupa_async.emails.service import EmailConverter
from coupa_async.engine.slot import WorkerSlot
from coupa_async.log import get_logger, public_text
from coupa_async.results.layout import OutputLayout
from coupa_async.results.result import Outcome, PoResult, SavedFile
from coupa_async.session.gate import HostGate, HostGates
from coupa_async.session.outage import OutageWatch
from coupa_async.settings import Settings

log = get_logger(__name__)


class PoJob:
    """Finds, fetches and files one PO's attachments on a worker (see ``process_po``).

    It tells the worker's slot what it is doing (``slot.doing``) and counts the bytes of the
    files it receives over the run (``bytes_received``). Saved e-mails are converted after the
    worker is free (``follow_up``); the PO settles once they are. The job makes each result as
    it is final (``process_po``, ``give_up``, the follow-up's copy with its conversion errors):
    the engine settles it, and the run's listeners only read it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        reader: PageReader,
        http: aiohttp.ClientSession,
        layout: OutputLayout,
        gate: HostGate,
        outage: OutageWatch,
        requests: asyncio.Semaphore | None = None,
        converter: EmailConverter | None = None,
        gates: HostGates | None = None,
    ) -> None:
        self.settings = settings
        self.gates = gates
        self.reader = reader
        self.http = http
        self.layout = layout
        self.gate = gate
        self.outage = outage
        self.requests = requests
        self.converter = converter
        self.received = ReceivedBytes()
        # When each unsettled PO's first attempt started: a result's time covers every attempt.
        self._first_started: dict[str, datetime] = {}

    @property
    def bytes_received(self) -> int:
        """Bytes of file bodies received so far by this job's runs (it only grows)."""
        return self.received.total

    def key(self, item: PoTask) -> str:
        return item.po.label

    async def run(self, slot: WorkerSlot, item: PoTask, attempt: int, final: bool) -> PoResult:
        assert slot.context is not None
        env = JobEnv(
            self.settings,
            slot.context,
            slot,  # lends a page only when the job renders or clicks
            self.http,
            self.layout,
            self.reader,
            self.gate,
            self.outage,
            self.requests,
            doing=slot.doing,
            received=self.received,
            gates=self.gates,
        )
        key = self.key(item)
        first = self._first_started.setdefault(key, datetime.now(UTC))
        result = await process_po(env, item, final_attempt=final, attempt=attempt)
        del self._first_started[key]
        return replace(result, started_at=first)

    def follow_up(self, item: PoTask, result: PoResult) -> Awaitable[PoResult] | None:
        converter = self.converter
        if converter is None or not converter.enabled or result.folder is None:
            return None
        emails = [saved for saved in result.files if is_email(saved.name)]
        return self._convert(converter, result, emails) if emails else None

    async def _convert(
        self, converter: EmailConverter, result: PoResult, emails: list[SavedFile]
    ) -> PoResult:
        names = [saved.name for saved in result.files]  # the server's: never ours to take
        outcomes: list[ConversionOutcome | Exception | None] = [None] * len(emails)

        async def convert(index: int, saved: SavedFile) -> None:
            try:
                outcomes[index] = await converter.convert(saved.path, names)
            except Exception as exc:  # raised once every conversion has ended
                outcomes[index] = exc

        try:
            async with anyio.create_task_group() as group:
                for index, saved in enumerate(emails):
                    group.start_soon(convert, index, saved)
        except anyio.get_cancelled_exc_class():
            # Stopped before its e-mails were converted: the PO stays pending for the rerun,
            # so its folder must not look settled (no await here: this is the last step).
            assert result.folder is not None
            with contextlib.suppress(OSError):
                self.layout.reopen(result.folder, result.po_number)
            raise
        errors = []
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome
            if outcome is not None and outcome.error is not None:
                log.warning(
                    "email_not_converted",
                    po=result.po_number,
                    file=outcome.source,
                    reason=outcome.error,
                )
                errors.append(outcome.error)
        return replace(result, conversion_errors=[*result.conversion_errors, *errors])

    def give_up(self, item: PoTask, attempts: int, reason: str) -> PoResult:
        return PoResult(
            po_number=item.po.label,
            outcome=Outcome.FAILED,
            supplier=item.supplier_hint or "",
            message=public_text(f"failed after {attempts} attempts: {reason}"),
            po_url=item.page_url(self.settings.base_url or ""),
            attempts=attempts,
            started_at=self._first_started.pop(self.key(item), None),
            finished_at=datetime.now(UTC),
        )

    def outcome(self, result: PoResult) -> str:
        return result.outcome.value


def rate_limit_watch(gates: HostGates) -> Callable[[BrowserContext], None]:
    """For each new context: pause the host that answers 429, whatever asked (a page's own
    script included); a 429 from another host pauses that host only."""

    def watch(context: BrowserContext) -> None:
        def on_response(response: Response) -> None:
            if response.status == 429:
                gate = gates.for_url(response.url)
                gate.pause_for(retry_after_seconds(response.headers.get("retry-after")))

        context.on("response", on_response)

    return watch
