"""Embedded Coupa simulator: a local aiohttp server that behaves like a Coupa tenant.

Importing this package starts nothing; `Simulator(config)` serves a catalog of purchase
orders, requisitions and files built deterministically from the seed.

Names are imported on first use: a process that needs the simulator's settings or its command's
arguments does not load its aiohttp server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import TOKEN_PATH, RestApi
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
    from .config import (
        DEFAULT_API_CLIENT_ID,
        DEFAULT_API_CLIENT_SECRET,
        DEFAULT_API_SCOPES,
        DEFAULT_PASSWORD,
        DEFAULT_USERNAME,
        SimConfig,
    )
    from .faults import FAULT_NAMES, HOSTILE_FAULTS, Faults, HostileAnswer
    from .hostile import HOSTILE_CASES
    from .outages import OUTAGE_MODES, Outage, OutageMode
    from .runner import run_forever
    from .server import Simulator
    from .sessions import SESSION_COOKIE
    from .stats import Stats

_EXPORTS = {
    "Catalog": ".catalog",
    "CommentsFill": ".catalog",
    "DEFAULT_API_CLIENT_ID": ".config",
    "DEFAULT_API_CLIENT_SECRET": ".config",
    "DEFAULT_API_SCOPES": ".config",
    "DEFAULT_PASSWORD": ".config",
    "DEFAULT_USERNAME": ".config",
    "ExpectedFile": ".catalog",
    "FAULT_NAMES": ".faults",
    "Faults": ".faults",
    "HOSTILE_CASES": ".hostile",
    "HOSTILE_FAULTS": ".faults",
    "HostileAnswer": ".faults",
    "LateFill": ".catalog",
    "MoreFill": ".catalog",
    "OUTAGE_MODES": ".outages",
    "Outage": ".outages",
    "OutageMode": ".outages",
    "RestApi": ".api",
    "SESSION_COOKIE": ".sessions",
    "SimComment": ".catalog",
    "SimConfig": ".config",
    "SimFile": ".catalog",
    "SimLink": ".catalog",
    "SimPO": ".catalog",
    "SimRequisition": ".catalog",
    "Simulator": ".server",
    "Stats": ".stats",
    "TOKEN_PATH": ".api",
    "run_forever": ".runner",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_API_CLIENT_ID",
    "DEFAULT_API_CLIENT_SECRET",
    "DEFAULT_API_SCOPES",
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "FAULT_NAMES",
    "HOSTILE_CASES",
    "HOSTILE_FAULTS",
    "OUTAGE_MODES",
    "SESSION_COOKIE",
    "TOKEN_PATH",
    "Catalog",
    "CommentsFill",
    "ExpectedFile",
    "Faults",
    "HostileAnswer",
    "LateFill",
    "MoreFill",
    "Outage",
    "OutageMode",
    "RestApi",
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
