"""Settings: precedence of sources, provenance, unknown keys and bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coupa_async.errors import ConfigurationError
from coupa_async.settings import describe, load_settings


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "playwright.config").write_text(
        '[browser]\nheadless = false\nargs = ["--lang=pt-BR"]\nchannel = "chrome"\n'
        "[timeouts]\nnavigation_s = 12\n"
        "[context]\nlocale = 'pt-BR'\nviewport_width = 1600\n"
    )
    (tmp_path / ".env").write_text("COUPA_BROWSER__CHANNEL=msedge\nCOUPA_WORKERS=6\n")
    return tmp_path


def _load(directory: Path, overrides=None, environ=None):
    config = directory / "playwright.config"
    if not config.exists():
        config.write_text("")
    return load_settings(
        overrides,
        config_file=config,
        env_file=directory / ".env",
        environ=environ or {},
    )


def test_each_source_overrides_the_one_below(config_dir: Path) -> None:
    loaded = _load(
        config_dir,
        overrides={"mode": "fast", "browser.headless": True},
        environ={"COUPA_WORKERS": "8", "COUPA_CONTEXT__LOCALE": "de-DE", "PATH": "/bin"},
    )
    s = loaded.settings
    assert s.timeouts.navigation_s == 12  # TOML over default
    assert s.context.viewport_width == 1600
    assert s.browser.channel == "msedge"  # .env over TOML
    assert s.workers == 8  # environment over .env
    assert s.context.locale == "de-DE"  # environment over TOML
    assert s.browser.headless is True  # command line over TOML
    assert s.mode == "fast"
    assert s.browser.args == ["--lang=pt-BR"]
    assert s.timeouts.download_s == 300  # default
    sources = loaded.sources
    assert sources["timeouts.navigation_s"].endswith("playwright.config (TOML)")
    assert sources["browser.channel"].endswith(".env")
    assert sources["workers"] == "environment"
    assert sources["browser.headless"] == "command line"
    assert loaded.source_of("timeouts.download_s") == "default"


def test_none_overrides_do_not_hide_lower_sources(config_dir: Path) -> None:
    loaded = _load(config_dir, overrides={"workers": None, "browser.channel": None})
    assert loaded.settings.workers == 6
    assert loaded.settings.browser.channel == "msedge"


def test_unknown_key_in_config_file_names_key_and_file(tmp_path: Path) -> None:
    (tmp_path / "playwright.config").write_text("[browser]\nheadles = true\n")
    with pytest.raises(ConfigurationError) as caught:
        _load(tmp_path)
    message = str(caught.value)
    assert "browser.headles" in message and "playwright.config" in message


def test_unknown_section_in_config_file(tmp_path: Path) -> None:
    (tmp_path / "playwright.config").write_text("[proxy]\nserver = 'x'\n")
    with pytest.raises(ConfigurationError, match="'proxy'"):
        _load(tmp_path)


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    (tmp_path / "playwright.config").write_text("[browser\nheadless = true\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        _load(tmp_path)


def test_bad_value_names_key_and_source(tmp_path: Path) -> None:
    (tmp_path / "playwright.config").write_text("[timeouts]\nnavigation_s = -3\n")
    with pytest.raises(ConfigurationError) as caught:
        _load(tmp_path)
    assert "timeouts.navigation_s" in str(caught.value)
    assert "playwright.config" in str(caught.value)


def test_unknown_environment_variable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="COUPA_WORKRES"):
        _load(tmp_path, environ={"COUPA_WORKRES": "3"})


def test_bad_environment_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="'workers' \\(from environment\\)"):
        _load(tmp_path, environ={"COUPA_WORKERS": "many"})


def test_base_url_is_checked_and_trimmed(tmp_path: Path) -> None:
    loaded = _load(tmp_path, overrides={"base_url": " https://acme.coupahost.com/ "})
    assert loaded.settings.base_url == "https://acme.coupahost.com"
    with pytest.raises(ConfigurationError, match="base_url"):
        _load(tmp_path, overrides={"base_url": "acme.coupahost.com"})


def test_secrets_are_masked_in_description(tmp_path: Path) -> None:
    loaded = _load(tmp_path, environ={"COUPA_PASSWORD": "hunter2", "COUPA_USERNAME": "me"})
    rows = {key: (value, source) for key, value, source in describe(loaded)}
    assert rows["password"] == ("********", "environment")
    assert "hunter2" not in repr(loaded.settings)


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coupa_async", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_command_prints_values_sources_and_masks_secrets(config_dir: Path) -> None:
    done = _cli(["config"], config_dir, {"COUPA_PASSWORD": "hunter2"})
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stdout
    assert "********" in done.stdout
    assert "navigation_s" in done.stdout and "playwright.config" in done.stdout
    assert "msedge" in done.stdout


def test_config_command_exits_2_on_unknown_environment_key(tmp_path: Path) -> None:
    done = _cli(["config"], tmp_path, {"COUPA_BOGUS": "1"})
    assert done.returncode == 2
    assert "COUPA_BOGUS" in done.stderr


def test_config_command_exits_2_on_bad_config_file(tmp_path: Path) -> None:
    (tmp_path / "playwright.config").write_text("[browser]\nheadless = 'sometimes'\n")
    done = _cli(["config"], tmp_path, {})
    assert done.returncode == 2
    assert "browser.headless" in done.stderr and "playwright.config" in done.stderr


def test_a_dotenv_line_with_a_list_setting_and_no_value_sets_nothing(config_dir: Path) -> None:
    # A bare name (no "=") is a line python-dotenv reads as "no value": like any other such
    # line, it sets nothing, also for a setting that holds a list.
    (config_dir / ".env").write_text("COUPA_NETWORK__NO_PROXY\nCOUPA_WORKERS=6\n")
    loaded = _load(config_dir)
    assert loaded.settings.workers == 6
    assert loaded.source_of("network.no_proxy") != ".env"
