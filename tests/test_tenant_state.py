"""One saved sign-in per tenant: a test tenant never replaces production's; the old single file
goes to the tenant whose cookies it holds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from coupa_async.settings import default_storage_state
from coupa_async.signin.saved_state import adopt_legacy_state, load_tenant_state
from coupa_async.sim import SimConfig, Simulator

from .clikit import cli_env, finish, start_cli
from .runkit import make_settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_each_tenant_host_has_its_own_file_and_a_configured_path_wins(home: Path) -> None:
    folder = home / ".coupa_async"
    assert default_storage_state("https://Acme.coupahost.com") == (
        folder / "storage_state.acme.coupahost.com.json"
    )
    assert default_storage_state("http://127.0.0.1:8080/") == (
        folder / "storage_state.127.0.0.1_8080.json"
    )
    assert default_storage_state(None) == folder / "storage_state.json"
    prod = make_settings(home, base_url="https://acme.coupahost.com")
    test = make_settings(home, base_url="https://acme-test.coupahost.com")
    assert prod.storage_state != test.storage_state
    chosen = make_settings(home, base_url="https://acme.coupahost.com", storage_state="/x/s.json")
    assert chosen.storage_state == Path("/x/s.json")


def _legacy(home: Path, domain: str) -> Path:
    legacy = home / ".coupa_async" / "storage_state.json"
    legacy.parent.mkdir(parents=True, exist_ok=True)
    cookie = {"name": "_coupa_session", "value": "v-123456", "domain": domain, "path": "/"}
    legacy.write_text(json.dumps({"cookies": [cookie], "origins": []}))
    legacy.chmod(0o600)
    return legacy


def test_the_old_single_file_goes_to_the_tenant_whose_cookies_it_holds(home: Path) -> None:
    legacy = _legacy(home, ".acme.coupahost.com")
    other = make_settings(home, base_url="https://acme-test.coupahost.com")
    assert load_tenant_state(other) is None and legacy.exists()  # not its cookies: left alone
    prod = make_settings(home, base_url="https://acme.coupahost.com")
    state = load_tenant_state(prod)
    assert state is not None and state["cookies"][0]["value"] == "v-123456"
    assert not legacy.exists() and prod.storage_state.stat().st_mode & 0o777 == 0o600
    explicit = make_settings(
        home, base_url="https://acme.coupahost.com", storage_state=str(home / "mine.json")
    )
    _legacy(home, "acme.coupahost.com")
    assert adopt_legacy_state(explicit) is None  # a configured path is never filled from it


@pytest.mark.browser
async def test_signing_in_to_a_second_tenant_keeps_the_first(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    del env["COUPA_STORAGE_STATE"]
    (tmp_path / ".coupa_async").mkdir()
    (tmp_path / ".coupa_async").chmod(0o755)  # as an older version may have left it
    files = []
    async with (
        Simulator(SimConfig(seed=1, pos=2)) as first,
        Simulator(SimConfig(seed=2, pos=2)) as second,
    ):
        for sim in (first, second):
            login_env = {**env, "COUPA_USERNAME": sim.username, "COUPA_PASSWORD": sim.password}
            code, output = await finish(
                await start_cli(tmp_path, "login", "--base-url", sim.base_url, env=login_env)
            )
            assert code == 0, output
            path = tmp_path / ".coupa_async" / f"storage_state.127.0.0.1_{sim.port}.json"
            assert str(path) in output
            files.append((path, path.read_text()))
    (first_path, first_text), (second_path, _) = files
    assert first_path != second_path and first_path.read_text() == first_text
    for path, _ in files:
        assert path.stat().st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / ".coupa_async").st_mode & 0o777 == 0o700
