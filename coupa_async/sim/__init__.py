"""Embedded Coupa simulator: a local aiohttp server that behaves like a Coupa tenant.

Importing this package starts nothing; `Simulator(config)` serves a catalog of purchase
orders, requisitions and files built deterministically from the seed.
"""

from .catalog import (
    Catalog,
    CommentsFill,
    ExpectedFile,
    LateFill,
    MoreFill,
    SimComment,
    SimFile,
    SimLink,
    SimPO,
    SimRequisition,
)
from .config import DEFAULT_PASSWORD, DEFAULT_USERNAME, SimConfig
from .faults import FAULT_NAMES, HOSTILE_FAULTS, Faults, HostileAnswer
from .hostile import HOSTILE_CASES
from .outages import OUTAGE_MODES, Outage, OutageMode
from .runner import run_forever
from .server import Simulator
from .sessions import SESSION_COOKIE
from .stats import Stats

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "FAULT_NAMES",
    "HOSTILE_CASES",
    "HOSTILE_FAULTS",
    "OUTAGE_MODES",
    "SESSION_COOKIE",
    "Catalog",
    "CommentsFill",
    "ExpectedFile",
    "Faults",
    "HostileAnswer",
    "LateFill",
    "MoreFill",
    "Outage",
    "OutageMode",
    "SimComment",
    "SimConfig",
    "SimFile",
    "SimLink",
    "SimPO",
    "SimRequisition",
    "Simulator",
    "Stats",
    "run_forever",
]
