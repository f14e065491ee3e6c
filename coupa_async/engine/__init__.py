"""The engine: N browser-context workers over one work queue, knowing nothing of Coupa.

A job (see ``protocol.Job``) is plugged in; the engine queues its items, runs them on workers,
turns failures into actions (put back, pause, retry, charge) and reports each settled result.
"""

from coupa_async.engine.actions import Action, Verdict, action_for, is_browser_fault
from coupa_async.engine.browser import BrowserSupervisor
from coupa_async.engine.config import EngineConfig
from coupa_async.engine.core import Engine
from coupa_async.engine.protocol import Job, Services, Session
from coupa_async.engine.queue import Entry, WorkQueue
from coupa_async.engine.slot import WorkerSlot, WorkerState
from coupa_async.engine.stats import RunStats
from coupa_async.engine.status import EngineStatus, WorkerStatus

__all__ = [
    "Action",
    "BrowserSupervisor",
    "Engine",
    "EngineConfig",
    "EngineStatus",
    "Entry",
    "Job",
    "RunStats",
    "Services",
    "Session",
    "Verdict",
    "WorkQueue",
    "WorkerSlot",
    "WorkerState",
    "WorkerStatus",
    "action_for",
    "is_browser_fault",
]
