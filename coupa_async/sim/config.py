"""Simulator configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .faults import Faults
from .outages import Outage

Profile = Literal["varied", "uniform"]
PageWeight = Literal["bare", "realistic"]

DEFAULT_USERNAME = "buyer@example.com"
DEFAULT_PASSWORD = "coupa-sim-password"
FIRST_PO_NUMBER = 15262984


@dataclass
class SimConfig:
    """Everything that shapes one simulator: address, catalog, sign-in and faults.

    `port=0` binds a free port. `faults` (and the session limits) may be changed while the
    simulator runs; the catalog is built once from `seed`, `pos`, `profile` and `recipes`.
    `recipes` (varied profile only) names the recipe of each PO in order, cycling when `pos`
    is larger; None gives the usual seed-dependent mix of every recipe.
    `outages` are scheduled outages (see `Outage`), armed at each start. `control_port` (0 picks
    a free one; None: none) serves the `/__sim/*` endpoints alone on a second port that no
    outage touches, so a `refuse` outage can be ended over HTTP.
    `page_weight="realistic"` makes every signed-in page heavy (assets, polls, analytics, a
    long-poll), as the `heavy` trait does for some recipes; `long_poll_seconds` is how long the
    server holds `/api/session/updates` before answering 204.
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    pos: int = 60
    username: str = DEFAULT_USERNAME
    password: str = DEFAULT_PASSWORD
    sso: bool = False
    session_ttl_seconds: float | None = None
    session_max_requests: int | None = None
    profile: Profile = "varied"
    uniform_files: int = 3
    uniform_file_size: int = 50_000
    faults: Faults = field(default_factory=Faults)
    first_po_number: int = FIRST_PO_NUMBER
    recipes: tuple[str, ...] | None = None
    outages: tuple[Outage, ...] = ()
    control_port: int | None = None
    page_weight: PageWeight = "bare"
    long_poll_seconds: float = 25.0

    def __post_init__(self) -> None:
        if self.page_weight not in ("bare", "realistic"):
            raise ValueError(f"page_weight must be 'bare' or 'realistic', got {self.page_weight!r}")
        if self.long_poll_seconds < 0:
            raise ValueError("long_poll_seconds must be >= 0")
        if self.profile not in ("varied", "uniform"):
            raise ValueError(f"profile must be 'varied' or 'uniform', got {self.profile!r}")
        if self.recipes is not None:
            self.recipes = tuple(self.recipes)
            _check_recipes(self.recipes, self.profile)
        if self.pos < 0:
            raise ValueError("pos must be >= 0")
        if self.uniform_files < 0 or self.uniform_file_size < 0:
            raise ValueError("uniform_files and uniform_file_size must be >= 0")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be between 0 and 65535")
        if self.control_port is not None and not 0 <= self.control_port <= 65535:
            raise ValueError("control_port must be between 0 and 65535")
        self.outages = tuple(self.outages)
        if not all(isinstance(outage, Outage) for outage in self.outages):
            raise ValueError("outages must be Outage(...) values")
        if not 10_000_000 <= self.first_po_number <= 10**8 - max(self.pos, 1):
            raise ValueError("PO numbers must stay 8 digits")


def _check_recipes(names: tuple[str, ...], profile: str) -> None:
    """Raise ValueError unless `names` is a non-empty list of known recipe names."""
    from .catalog import RECIPES_BY_NAME  # the catalog imports this module

    if profile != "varied":
        raise ValueError("recipes apply to the varied profile only")
    if not names:
        raise ValueError("recipes must name at least one recipe")
    unknown = [name for name in names if name not in RECIPES_BY_NAME]
    if unknown:
        raise ValueError(
            f"unknown recipe(s) {', '.join(map(repr, unknown))}; "
            f"known recipes: {', '.join(RECIPES_BY_NAME)}"
        )
