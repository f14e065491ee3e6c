"""Proxies: HTTPS_PROXY / HTTP_PROXY / NO_PROXY and network.proxy reach the browser and the
file downloads alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from coupa_async.session.contact import Problem, check_contact
from coupa_async.session.network import browser_proxy, bypasses, chromium_bypass, proxy_for
from coupa_async.settings import load_settings
from coupa_async.sim import SimConfig, Simulator

from .clikit import cli_env, finish, read_report, start_cli, write_input
from .netkit import CountingProxy
from .runkit import make_settings


def _load(tmp_path: Path, environ: dict[str, str], **overrides: object):
    config = tmp_path / "empty.config"
    config.write_text("")
    return load_settings(
        overrides, config_file=config, env_file=tmp_path / "no.env", environ=environ
    )


def test_the_proxy_variables_and_the_setting_that_overrides_them(tmp_path: Path) -> None:
    environ = {
        "HTTPS_PROXY": "http://secure-proxy:8443",
        "http_proxy": "plain-proxy:3128",
        "NO_PROXY": "localhost, .corp.example,10.0.0.0/8",
    }
    loaded = _load(tmp_path, environ, base_url="https://acme.coupahost.com")
    network = loaded.settings.network
    assert network.proxy == "http://secure-proxy:8443"
    assert loaded.source_of("network.proxy") == "environment (HTTPS_PROXY)"
    assert network.no_proxy == ["localhost", ".corp.example", "10.0.0.0/8"]
    assert _load(tmp_path, environ, base_url="http://127.0.0.1:1").settings.network.proxy == (
        "http://plain-proxy:3128"
    )
    chosen = _load(tmp_path, {**environ, "COUPA_NETWORK__PROXY": "http://mine:1"})
    assert chosen.settings.network.proxy == "http://mine:1"
    assert chosen.source_of("network.proxy") == "environment"
    direct = _load(tmp_path, environ, **{"network.proxy": "direct"}).settings.network
    assert proxy_for("https://acme.coupahost.com", direct) is None
    assert browser_proxy(direct) is None


def test_no_proxy_entries_read_alike_for_both_clients(tmp_path: Path) -> None:
    entries = [".corp.example", "intranet", "10.0.0.0/8", "host.example:8443"]
    assert bypasses("a.b.corp.example", entries) and bypasses("intranet", entries)
    assert bypasses("sub.intranet", entries) and bypasses("10.1.2.3", entries)
    assert bypasses("host.example", entries) and bypasses("127.0.0.1", [])
    assert not bypasses("acme.coupahost.com", entries) and not bypasses("corp.example.org", [])
    assert bypasses("anything", ["*"])
    assert chromium_bypass(entries) == (
        "*.corp.example,intranet,*.intranet,10.0.0.0/8,host.example:8443"
    )
    settings = make_settings(
        tmp_path, network={"proxy": "http://bob:pa%3Ass@proxy.corp:8080", "no_proxy": entries}
    )
    assert browser_proxy(settings.network) == {
        "server": "http://proxy.corp:8080",
        "bypass": "*.corp.example,intranet,*.intranet,10.0.0.0/8,host.example:8443",
        "username": "bob",
        "password": "pa:ss",
    }


@pytest.mark.browser
async def test_browser_pages_and_file_downloads_both_go_through_the_proxy(tmp_path: Path) -> None:
    async with Simulator(SimConfig(seed=3, pos=3, profile="uniform")) as sim:
        # A name only the proxy knows: without the proxy nothing could be reached at all.
        base_url = f"http://coupa-sim.test:{sim.port}"
        proxy = CountingProxy({"coupa-sim.test": sim.port})
        async with proxy.running() as port:
            source = write_input(tmp_path / "pos.csv", [f"PO{po.number}" for po in sim.catalog.pos])
            env = cli_env(
                tmp_path,
                HTTP_PROXY=f"http://127.0.0.1:{port}",
                COUPA_USERNAME=sim.username,
                COUPA_PASSWORD=sim.password,
            )
            out = tmp_path / "out"
            args = ("run", str(source), "--base-url", base_url, "--out", str(out), "--workers", "2")
            code, output = await finish(await start_cli(tmp_path, *args, env=env))
            assert code == 0, output
            assert [row["STATUS"] for row in read_report(out / "report.csv")] == ["COMPLETED"] * 3
            files = sum(
                proxy.count("python", prefix) for prefix in ("/attachments", "/file_download")
            )
            assert files >= 9, proxy.counts  # 3 POs x 3 files, over aiohttp
            assert proxy.count("browser", "/order_headers") >= 1, proxy.counts  # page loads
            assert proxy.count("browser", "/sessions") >= 1  # signing in
            assert proxy.count("python", "/") >= 1  # the first contact

            bypassed = make_settings(
                tmp_path,
                base_url=base_url,
                network={"proxy": f"http://127.0.0.1:{port}", "no_proxy": ["coupa-sim.test"]},
            )
            contact = await check_contact(bypassed)
            assert contact.problem is Problem.DNS  # NO_PROXY sent it past the proxy
