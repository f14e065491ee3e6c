"""All configuration in one pydantic-settings class, read once and passed down.

Sources, highest priority first: explicit overrides (CLI flags or library arguments), ``COUPA_*``
environment variables (nested keys with ``__``, e.g. ``COUPA_BROWSER__CHANNEL``), a ``.env``
file, the ``playwright.config`` TOML file, then the defaults below.
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from coupa_async.coupa.markers import CoupaMarkers
from coupa_async.errors import ConfigurationError

ENV_PREFIX = "COUPA_"
NESTED_DELIMITER = "__"
DEFAULT_CONFIG_FILE = Path("playwright.config")
DEFAULT_ENV_FILE = Path(".env")


class _Section(BaseModel):
    # inf and nan are refused everywhere: a deadline of "inf" would be a wait without end.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class BrowserOptions(_Section):
    """Which browser to run and how to launch it."""

    name: Literal["chromium"] = "chromium"
    channel: str | None = Field(
        default=None, description="An installed branded browser: msedge, chrome, chrome-beta…"
    )
    executable_path: Path | None = Field(default=None, description="Path of a browser binary.")
    headless: bool = True
    args: list[str] = Field(default_factory=list, description="Extra command-line flags.")


class ContextOptions(_Section):
    """Options of every browser context (one per worker)."""

    viewport_width: int = Field(default=1280, ge=320, le=7680)
    viewport_height: int = Field(default=900, ge=240, le=4320)
    locale: str = "en-US"
    user_agent: str | None = None


class Timeouts(_Section):
    """Every wait has a deadline, in seconds."""

    navigation_s: float = Field(default=30.0, gt=0)
    launch_s: float = Field(
        default=60.0,
        gt=0,
        description="Starting the browser (slow on a busy machine; not a navigation).",
    )
    settle_s: float = Field(
        default=5.0,
        gt=0,
        description="Wait for a page that shows no attachments to finish filling itself in.",
    )
    download_s: float = Field(default=300.0, gt=0, description="Deadline for one file.")
    task_s: float = Field(default=300.0, gt=0, description="Deadline for one PO.")
    shutdown_s: float = Field(default=30.0, gt=0, description="Grace period on Ctrl+C.")
    close_s: float = Field(default=10.0, gt=0, description="Closing a context or the browser.")
    login_s: float = Field(default=300.0, gt=0, description="Interactive sign-in.")


class MemorySettings(_Section):
    """The memory watch: shrink the engine under memory pressure, grow it back when eased.

    ``budget_mb`` unset means a computed default (see ``coupa_async.memory.policy``): 3/4 of a
    container's memory limit, or on a host half the RAM, never more than RAM less 2 GB.
    """

    enabled: bool = True
    budget_mb: int | None = Field(
        default=None, ge=64, description="Memory for the whole process tree; unset: computed."
    )
    high_mark: float = Field(default=0.85, gt=0, le=1, description="Share of the budget.")
    low_mark: float = Field(default=0.65, gt=0, le=1, description="Share of the budget.")
    cooldown_s: float = Field(default=2.0, ge=0, description="At most one step down per this.")
    ease_after_s: float = Field(default=10.0, ge=0, description="Calm this long: one step up.")
    interval_s: float = Field(default=1.0, gt=0, le=60, description="Sampling period.")
    min_available_mb: int = Field(
        default=500, ge=0, description="Pressure when the system has less available."
    )
    psi_some_avg10_max: float = Field(
        default=20.0, gt=0, le=100, description="Pressure above this PSI 'some avg10' (%)."
    )

    @model_validator(mode="after")
    def _check_marks(self) -> MemorySettings:
        if self.low_mark >= self.high_mark:
            raise ValueError("low_mark must be below high_mark")
        return self


class NetworkSettings(_Section):
    """How coupa_async reaches the tenant, and how long it waits for it when it is gone.

    ``proxy`` unset takes ``HTTPS_PROXY`` (``HTTP_PROXY`` for an http:// tenant, then
    ``ALL_PROXY``) and ``no_proxy`` takes ``NO_PROXY`` from the environment, in ``load_settings``.
    """

    outage_give_up_s: float = Field(
        default=1800.0,
        gt=0,
        description="Stop (resumable, exit 5) when Coupa stays unreachable this long.",
    )
    proxy: str | None = Field(
        default=None,
        description="Proxy for the browser and the downloads, http://[user:password@]host:port; "
        "'direct' for none. Overrides HTTPS_PROXY / HTTP_PROXY.",
    )
    no_proxy: list[str] = Field(
        default_factory=list,
        description="Hosts reached without the proxy (NO_PROXY syntax: host, .domain, *, CIDR).",
    )
    ca_bundle: Path | None = Field(
        default=None,
        description="PEM file of extra certificates to trust (a company proxy's CA).",
    )
    contact_timeout_s: float = Field(
        default=15.0, gt=0, description="Deadline of the first request to the tenant."
    )
    file_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts besides the tenant's that serve attachment files (a document "
        "store); a link to any other host is a URL attachment: recorded, never fetched.",
    )
    max_requests_in_flight: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Requests to Coupa in flight at once over the whole run (files and pages "
        "read without rendering; a PO's files are fetched side by side within it). "
        "Unset: the number of workers.",
    )

    @field_validator("proxy")
    @classmethod
    def _check_proxy(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if value.lower() in ("direct", "none"):
            return "direct"
        if "://" not in value:
            value = f"http://{value}"
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// proxy address, or 'direct'")
        return value.rstrip("/")

    @field_validator("ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        value = value.expanduser()
        if not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value


class LimitSettings(_Section):
    """Budgets for what comes from outside: each is a count, a size or a wait the server
    decides, so each is bounded here, and a run that meets one says which setting it was."""

    sign_ins_per_run: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Sign-ins with the password over one run; past it the run stops (exit 4) "
        "rather than risk locking the account.",
    )
    sign_ins_per_po: int = Field(
        default=1,
        ge=0,
        le=10,
        description="Sign-ins one PO may cause; a PO that meets a login page again after "
        "them fails on its own (charged, retried like other failures).",
    )
    sign_in_repeat_s: float = Field(
        default=60.0,
        ge=0,
        description="Login pages met within this many seconds of signing in anew, before "
        "anything was read with the new session, charge their PO instead of signing in "
        "again; three of them stop the run (exit 4).",
    )
    retry_after_max_s: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="Longest pause a host's Retry-After may ask for.",
    )
    page_max_mb: float = Field(
        default=20.0,
        gt=0,
        description="Largest PO or requisition page (decompressed) read or rendered.",
    )
    file_max_mb: float = Field(
        default=2048.0,
        gt=0,
        description="Largest attachment (declared or received, decompressed); raise it for "
        "larger drawings.",
    )
    compression_ratio_max: float = Field(
        default=200.0,
        ge=1,
        description="Largest ratio of decompressed to received bytes of a compressed answer.",
    )
    allow_private_hosts: bool = Field(
        default=False,
        description="Fetch attachment links to private, loopback or link-local addresses "
        "that are not the tenant's.",
    )

    @property
    def page_max_bytes(self) -> int:
        return int(self.page_max_mb * 1024 * 1024)

    @property
    def file_max_bytes(self) -> int:
        return int(self.file_max_mb * 1024 * 1024)


class ConvertSettings(_Section):
    """What is done with saved e-mails (``.msg``, ``.eml``) once a PO's files are in.

    ``pdf`` writes ``<name>.pdf`` beside each e-mail; ``extract`` saves the e-mail's own
    attachments into ``<name>_attachments/``; ``both`` does the two; ``off`` neither.
    """

    emails: Literal["pdf", "extract", "both", "off"] = Field(
        default="both", description="pdf, extract, both or off."
    )
    font_files: list[Path] = Field(
        default_factory=list,
        description="TrueType fonts to use in the PDFs before those found on the machine.",
    )
    processes: int = Field(
        default=1, ge=1, le=16, description="Processes converting e-mails side by side."
    )
    timeout_s: float = Field(
        default=120.0, gt=0, description="Deadline for one e-mail; past it, a conversion error."
    )


API_SCOPES: tuple[str, ...] = (
    "core.purchase_order.read",
    "core.requisition.read",
    "core.comment.read",
    "core.common.read",
)


class ApiSettings(_Section):
    """Coupa's REST API: an OAuth2 client (client credentials) that the tenant's administrator
    creates with read scopes (``client_id``, ``client_secret``)."""

    client_id: str | None = None
    client_secret: SecretStr | None = None
    scopes: list[str] = Field(
        default_factory=lambda: list(API_SCOPES),
        description="Scopes asked for with the token (space-separated in the request).",
    )
    requests_per_s: float = Field(
        default=25.0, gt=0, le=1000, description="The client's request budget (Coupa: 25/s)."
    )
    burst: int = Field(
        default=20, ge=1, le=1000, description="Requests allowed at once above the rate."
    )

    @property
    def configured(self) -> bool:
        """Whether both credentials are set."""
        return bool(self.client_id) and bool(
            self.client_secret and self.client_secret.get_secret_value()
        )


def default_storage_state(base_url: str | None) -> Path:
    """The saved sign-in of a tenant: one file per host, so tenants never replace each other.

    Without a tenant: the single file of earlier versions (``storage_state.json``).
    """
    folder = Path.home() / ".coupa_async"
    host = urlsplit(base_url.strip()).netloc.lower() if base_url else ""
    host = re.sub(r"[^a-z0-9.\-]+", "_", host.rpartition("@")[2]).strip("._")
    return folder / (f"storage_state.{host}.json" if host else "storage_state.json")


class Settings(BaseSettings):
    """Effective configuration of coupa_async."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="forbid",
        validate_assignment=True,
        allow_inf_nan=False,
    )

    base_url: str | None = Field(
        default=None, description="Your tenant, e.g. https://acme.coupahost.com"
    )
    username: str | None = None
    password: SecretStr | None = None
    storage_state: Path = Field(
        default_factory=lambda: default_storage_state(None),
        description="Saved sign-in (cookies), readable by its owner only; unset: one file per "
        "tenant host, ~/.coupa_async/storage_state.<host>.json.",
    )
    out: Path = Path("coupa-downloads")
    workers: int = Field(default=4, ge=1, le=64)
    min_workers: int = Field(default=1, ge=1, le=64)
    max_workers: int | None = Field(default=None, ge=1, le=64)
    mode: Literal["auto", "render", "fast"] = "auto"
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_cap_s: float = Field(default=60.0, ge=0)
    recycle_after_tasks: int = Field(default=100, ge=1)
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    browser: BrowserOptions = Field(default_factory=BrowserOptions)
    context: ContextOptions = Field(default_factory=ContextOptions)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    markers: CoupaMarkers = Field(default_factory=CoupaMarkers)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    convert: ConvertSettings = Field(default_factory=ConvertSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() layers the sources itself, so it can tell where each value came from.
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _storage_state_per_tenant(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("storage_state") is None:
            base_url = data.get("base_url")
            data = {**data, "storage_state": default_storage_state(base_url or None)}
        return data

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or value[-3:] == "://":
            raise ValueError("must start with https:// (or http://) and name a host")
        return value

    @property
    def effective_max_workers(self) -> int:
        """Upper bound of the workers: ``max_workers``, or ``workers`` when unset."""
        return max(self.max_workers or self.workers, self.workers)


@dataclass
class LoadedSettings:
    """Settings plus, for every dotted key, the source its value came from."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "default")


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    env_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """Read every source once and build the effective settings.

    ``overrides`` are CLI flags or library arguments, as nested dicts or dotted keys
    (``{"browser.headless": False}``); ``None`` values are ignored. Raises ConfigurationError
    naming the key and the source when a key is unknown or a value is bad.
    """
    environ = os.environ if environ is None else environ
    config_path = config_file if config_file is not None else DEFAULT_CONFIG_FILE
    env_path = env_file if env_file is not None else DEFAULT_ENV_FILE
    layers: list[tuple[str, dict[str, Any]]] = [
        (f"{config_path} (TOML)", _read_toml(config_path, required=config_file is not None)),
        (f"{env_path}", _read_dotenv(env_path)),
        ("environment", _read_environment(environ)),
        ("command line", _nest(overrides or {})),
    ]
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for origin, values in layers:
        for key in _dotted_keys(values):
            _check_known(key, origin)
            sources[key] = origin
        _deep_merge(merged, values)
    _proxy_from_environment(merged, sources, environ)
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        raise ConfigurationError(_explain(exc, sources)) from None
    return LoadedSettings(settings, sources)


PROXY_VARIABLES = {"https": ("HTTPS_PROXY", "ALL_PROXY"), "http": ("HTTP_PROXY", "ALL_PROXY")}


def _proxy_from_environment(
    merged: dict[str, Any], sources: dict[str, str], environ: Mapping[str, str]
) -> None:
    """``network.proxy`` / ``network.no_proxy`` from the usual variables when no source set them.

    The proxy variable follows the tenant's scheme: HTTPS_PROXY for https://, HTTP_PROXY for
    http://, then ALL_PROXY (lower-case names first, as curl does).
    """

    def variable(name: str) -> str | None:
        return environ.get(name.lower()) or environ.get(name) or None

    network = merged.setdefault("network", {})
    if "network.proxy" not in sources:
        base_url = str(merged.get("base_url") or "").strip()
        scheme = "http" if base_url.startswith("http:") else "https"
        for name in PROXY_VARIABLES[scheme]:
            value = variable(name)
            if value:
                network["proxy"] = value
                sources["network.proxy"] = f"environment ({name})"
                break
    if "network.no_proxy" not in sources:
        value = variable("NO_PROXY")
        if value:
            network["no_proxy"] = [part.strip() for part in value.split(",") if part.strip()]
            sources["network.no_proxy"] = "environment (NO_PROXY)"


def _read_toml(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise ConfigurationError(f"The configuration file {path} does not exist.")
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{path} is not valid TOML: {exc}. Fix the file or remove it."
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"Cannot read {path}: {exc.strerror}.") from None


def _env_source_options() -> dict[str, Any]:
    return {"env_prefix": ENV_PREFIX, "env_nested_delimiter": NESTED_DELIMITER}


def _read_dotenv(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    source = DotEnvSettingsSource(Settings, env_file=path, **_env_source_options())
    values = dict(source.env_vars)
    prefixed = {k: v for k, v in values.items() if k.upper().startswith(ENV_PREFIX)}
    return _from_env_names(prefixed, origin=str(path))


def _read_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    prefixed = {k: v for k, v in environ.items() if k.upper().startswith(ENV_PREFIX)}
    return _from_env_names(prefixed, origin="environment")


def _from_env_names(values: Mapping[str, str | None], *, origin: str) -> dict[str, Any]:
    """Turn ``COUPA_BROWSER__HEADLESS=false`` into ``{"browser": {"headless": "false"}}``.

    A name without a value (a ``.env`` line ``COUPA_PARALLEL`` alone) sets nothing."""
    nested: dict[str, Any] = {}
    for name, raw in values.items():
        parts = name[len(ENV_PREFIX) :].lower().split(NESTED_DELIMITER)
        key = ".".join(parts)
        if not _is_known(key):
            raise ConfigurationError(
                f"Unknown setting {name} in the {origin}. "
                f"Known settings: {', '.join(_env_names())}. Remove or rename it."
            )
        value: Any = raw
        if raw is not None and _is_list_field(key):
            value = _split_list(raw)
        _deep_merge(nested, _nest({key: value}))
    return nested


def _split_list(raw: str) -> list[str]:
    raw = raw.strip()
    if raw.startswith("["):
        import json

        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [str(item) for item in parsed]
    return raw.split()


def _nest(values: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            value = _nest(value)
        parts = key.split(".")
        target = nested
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if isinstance(value, dict) and isinstance(target.get(parts[-1]), dict):
            _deep_merge(target[parts[-1]], value)
        else:
            target[parts[-1]] = value
    return nested


def _deep_merge(target: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        elif isinstance(value, Mapping):
            target[key] = {}
            _deep_merge(target[key], value)
        else:
            target[key] = value


def _dotted_keys(values: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and _section_model(dotted) is not None:
            yield from _dotted_keys(value, f"{dotted}.")
        else:
            yield dotted


def _section_model(key: str) -> type[BaseModel] | None:
    info = Settings.model_fields.get(key)
    if info is None or not isinstance(info.annotation, type):
        return None
    return info.annotation if issubclass(info.annotation, BaseModel) else None


def known_keys() -> list[str]:
    """Every dotted setting name, in declaration order."""
    keys: list[str] = []
    for name in Settings.model_fields:
        section = _section_model(name)
        if section is None:
            keys.append(name)
        else:
            keys.extend(f"{name}.{sub}" for sub in section.model_fields)
    return keys


def _is_known(key: str) -> bool:
    return key in known_keys()


def _is_list_field(key: str) -> bool:
    section, _, name = key.partition(".")
    model = _section_model(section) if name else Settings
    info = model.model_fields.get(name or section) if model else None
    return info is not None and typing.get_origin(info.annotation) is list


def _env_names() -> list[str]:
    return [ENV_PREFIX + key.upper().replace(".", NESTED_DELIMITER) for key in known_keys()]


def _check_known(key: str, origin: str) -> None:
    if not _is_known(key):
        raise ConfigurationError(
            f"Unknown setting '{key}' in {origin}. Known settings: {', '.join(known_keys())}."
        )


def _explain(exc: ValidationError, sources: Mapping[str, str]) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        origin = sources.get(key, "default")
        shown = error.get("input")
        if "password" in key or "secret" in key or key == "network.proxy":
            shown = "***"
        lines.append(f"Bad value {shown!r} for setting '{key}' (from {origin}): {error['msg']}.")
    return "\n".join(lines)


def describe(loaded: LoadedSettings) -> list[tuple[str, str, str]]:
    """Rows of (key, value, source) for ``coupa-async config``; secrets masked."""
    data = loaded.settings.model_dump()
    rows = []
    for key in known_keys():
        value: Any = data
        for part in key.split("."):
            value = value[part]
        if isinstance(value, SecretStr):
            value = "********" if value.get_secret_value() else ""
        elif key == "network.proxy" and value:
            value = re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1********@", value)
        rows.append((key, "" if value is None else str(value), loaded.source_of(key)))
    return rows
