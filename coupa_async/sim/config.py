"""Simulator configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .faults import Faults, GiB, KiB, MiB
from .outages import Outage

Profile = Literal["varied", "uniform", "hostile"]
PROFILES: tuple[Profile, ...] = ("varied", "uniform", "hostile")
PageWeight = Literal["bare", "realistic"]

DEFAULT_USERNAME = "buyer@example.com"
DEFAULT_PASSWORD = "coupa-sim-password"
DEFAULT_API_CLIENT_ID = "coupa-sim-client"
DEFAULT_API_CLIENT_SECRET = "coupa-sim-client-secret"
DEFAULT_API_SCOPES: tuple[str, ...] = (
    "core.purchase_order.read",
    "core.requisition.read",
    "core.comment.read",
    "core.common.read",
)
FIRST_PO_NUMBER = 15262984


@dataclass
class SimConfig:
    """Everything that shapes one simulator: address, catalog, sign-in and faults.

    `port=0` binds a free port. `faults` (and the session limits) may be changed while the
    simulator runs; the catalog is built once from `seed`, `pos`, `profile` and `recipes`.
    `recipes` (varied profile) names the recipe of each PO in order, cycling when `pos`
    is larger; None gives the usual seed-dependent mix of every recipe.
    The `hostile` profile holds one PO per case of `hostile.py` in its documented order
    (`recipes`, hostile recipe names, picks and orders them instead; `pos` is not used); the
    `hostile_*` fields size its cases.
    `outages` are scheduled outages (see `Outage`), armed at each start. `control_port` (0 picks
    a free one; None: none) serves the `/__sim/*` endpoints alone on a second port that no
    outage touches, so a `refuse` outage can be ended over HTTP.
    `page_weight="realistic"` makes every signed-in page heavy (assets, polls, analytics, a
    long-poll), as the `heavy` trait does for some recipes; `long_poll_seconds` is how long the
    server holds `/api/session/updates` before answering 204.

    The REST API (`api.py`) signs in an OAuth2 client `api_client_id`/`api_client_secret`
    allowed `api_scopes`; its tokens last `api_token_ttl_seconds`. Each client has a token
    bucket holding `api_burst` requests, refilled at `api_rate_per_s`; past it, 429 with
    Retry-After, and a request arriving later than `api_retry_after_grace_ms` after that 429
    while its Retry-After runs counts as ignoring it. `api_forbidden_pos` (PO numbers) answer
    403 on the API though their pages are fine; `api_hidden_pos` are unknown to the API though
    their pages exist. The API reads these fields when it uses them (the TTL when it issues a
    token), so tests may change them while the simulator runs.
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
    hostile_page_size: int | None = 500 * MiB  # huge_page: chunked HTML body (None: endless)
    hostile_file_size: int = 3 * GiB  # huge_file: its declared Content-Length
    hostile_bomb_size: int = 200 * MiB  # gzip_page, gzip_file: what the bomb expands to
    hostile_stall_after: int = 100 * KiB  # stalled_file: bytes sent before the silence
    hostile_retry_after: str = "1000000000"  # other_host_429: the raw Retry-After value
    hostile_retry_times: int = 1  # other_host_429: 429 answers before the file
    api_client_id: str = DEFAULT_API_CLIENT_ID
    api_client_secret: str = DEFAULT_API_CLIENT_SECRET
    api_scopes: tuple[str, ...] = DEFAULT_API_SCOPES
    api_token_ttl_seconds: float = 86_400.0
    api_rate_per_s: float = 25.0
    api_burst: int = 20
    api_retry_after_grace_ms: float = 250.0
    api_forbidden_pos: tuple[str, ...] = ()
    api_hidden_pos: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.page_weight not in ("bare", "realistic"):
            raise ValueError(f"page_weight must be 'bare' or 'realistic', got {self.page_weight!r}")
        if self.long_poll_seconds < 0:
            raise ValueError("long_poll_seconds must be >= 0")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
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
        _check_hostile_sizes(self)
        _check_api(self)


def _check_hostile_sizes(config: SimConfig) -> None:
    """Raise ValueError unless the hostile cases' sizes and counts are positive and the raw
    Retry-After fits on one header line."""
    sizes = {
        "hostile_file_size": config.hostile_file_size,
        "hostile_bomb_size": config.hostile_bomb_size,
        "hostile_stall_after": config.hostile_stall_after,
        "hostile_retry_times": config.hostile_retry_times,
    }
    if config.hostile_page_size is not None:
        sizes["hostile_page_size"] = config.hostile_page_size
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    if not isinstance(config.hostile_retry_after, str) or any(
        c in config.hostile_retry_after for c in "\r\n"
    ):
        raise ValueError("hostile_retry_after must be a header value on one line")


def _check_api(config: SimConfig) -> None:
    """Raise ValueError unless the REST API's settings make sense; PO numbers given as ints
    and scopes given as one space-separated string are normalized."""
    if isinstance(config.api_scopes, str):
        config.api_scopes = tuple(config.api_scopes.split())
    config.api_scopes = tuple(config.api_scopes)
    if any(not scope or any(c.isspace() for c in scope) for scope in config.api_scopes):
        raise ValueError("api_scopes must be scope names without blanks")
    config.api_forbidden_pos = tuple(str(n) for n in config.api_forbidden_pos)
    config.api_hidden_pos = tuple(str(n) for n in config.api_hidden_pos)
    if not config.api_client_id or not config.api_client_secret:
        raise ValueError("api_client_id and api_client_secret must not be empty")
    if not config.api_token_ttl_seconds > 0:
        raise ValueError("api_token_ttl_seconds must be > 0")
    if not config.api_rate_per_s > 0:
        raise ValueError("api_rate_per_s must be > 0")
    burst = config.api_burst
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(f"api_burst must be a whole number >= 1, got {burst!r}")
    if config.api_retry_after_grace_ms < 0:
        raise ValueError("api_retry_after_grace_ms must be >= 0")


def _check_recipes(names: tuple[str, ...], profile: str) -> None:
    """Raise ValueError unless `names` is a non-empty list of known recipe names."""
    from .catalog import RECIPES_BY_NAME  # the catalog imports this module
    from .hostile import HOSTILE_CASES

    if profile == "uniform":
        raise ValueError("recipes apply to the varied and hostile profiles only")
    if not names:
        raise ValueError("recipes must name at least one recipe")
    known = HOSTILE_CASES if profile == "hostile" else tuple(RECIPES_BY_NAME)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"unknown recipe(s) {', '.join(map(repr, unknown))}; "
            f"known {profile} recipes: {', '.join(known)}"
        )
