"""Children start without our secrets: the rule, the scrub around a spawn, and the real
e-mail worker, Playwright driver and Chromium processes read back from the system."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex

import psutil
import pytest

from coupa_async.emails.service import EmailConverter
from coupa_async.session.child_env import child_environ, scrubbed_environ, without_credentials
from coupa_async.session.chromium import launch_browser, start_playwright
from coupa_async.settings import load_settings
from coupa_async.sim import SimConfig, Simulator

from .emailkit import write_eml
from .netkit import CountingProxy
from .runkit import make_settings

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/<pid>/mem")
ENVIRON = {
    "PATH": "/usr/bin",
    "HOME": "/home/ana",
    "COUPA_PASSWORD": "pw-1",
    "coupa_api__client_secret": "cs-2",
    "COUPA_BASE_URL": "https://acme.coupahost.com",
    "COUPA_NETWORK__PROXY": "http://bob:np-3@proxy:8080",
    "HTTPS_PROXY": "http://bob:hp-4@proxy.corp:8080",
    "http_proxy": "http://proxy.corp:8080",
    "all_proxy": "socks5://bob:ap-5@[2001:db8::1]:1080",
    "NO_PROXY": "localhost,.corp",
    "NODE_OPTIONS": "--max-semi-space-size=1",
}


def test_no_coupa_variable_reaches_a_child_and_the_rest_does() -> None:
    env = child_environ(ENVIRON)
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/ana",
        "NO_PROXY": "localhost,.corp",
        "NODE_OPTIONS": "--max-semi-space-size=1",
    }


def test_proxy_variables_are_dropped_cut_or_kept_as_the_child_needs() -> None:
    cut = child_environ(ENVIRON, proxy="without_credentials")
    assert cut["HTTPS_PROXY"] == "http://proxy.corp:8080"
    assert cut["http_proxy"] == "http://proxy.corp:8080"
    assert cut["all_proxy"] == "socks5://[2001:db8::1]:1080"
    assert "COUPA_NETWORK__PROXY" not in cut
    kept = child_environ(ENVIRON, proxy="keep")
    assert kept["HTTPS_PROXY"] == ENVIRON["HTTPS_PROXY"] and "COUPA_PASSWORD" not in kept


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:p@ss@proxy:8080", "http://proxy:8080"),
        ("http://us%40er:p%40ss%3A@proxy:8080/", "http://proxy:8080/"),
        ("https://user@proxy.corp", "https://proxy.corp"),
        ("http://bob:pw@[::1]:3128", "http://[::1]:3128"),
        ("http://[::1]:3128/x?mail=a@b", "http://[::1]:3128/x?mail=a@b"),
        ("bob:pw@proxy:3128", "proxy:3128"),
        ("proxy.corp:8080", "proxy.corp:8080"),
    ],
)
def test_a_proxy_address_loses_everything_before_the_last_at(url: str, expected: str) -> None:
    assert without_credentials(url) == expected


def test_the_scrub_lasts_for_its_block_and_puts_back_what_it_took(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COUPA_PASSWORD", "pw-1")
    monkeypatch.setenv("COUPA_USERNAME", "ana")
    monkeypatch.setenv("HTTPS_PROXY", "http://bob:hp-4@proxy.corp:8080")
    with pytest.raises(RuntimeError), scrubbed_environ():
        assert "COUPA_PASSWORD" not in os.environ
        with scrubbed_environ():  # nested: the outer one restores
            pass
        assert "COUPA_PASSWORD" not in os.environ
        assert os.environ["HTTPS_PROXY"] == "http://proxy.corp:8080"
        os.environ["COUPA_USERNAME"] = "set-meanwhile"  # someone else's value stays
        raise RuntimeError("the spawn failed")
    assert os.environ["COUPA_PASSWORD"] == "pw-1"
    assert os.environ["HTTPS_PROXY"] == "http://bob:hp-4@proxy.corp:8080"
    assert os.environ["COUPA_USERNAME"] == "set-meanwhile"


@dataclass(frozen=True)
class Planted:
    """Secrets put in this process's environment, and a harmless variable every child gets."""

    secrets: tuple[str, ...]
    probe: str

    @classmethod
    def plant(cls, monkeypatch: pytest.MonkeyPatch) -> Planted:
        password, proxy_password = f"pw-{token_hex(8)}", f"px-{token_hex(8)}"
        monkeypatch.setenv("COUPA_PASSWORD", password)
        monkeypatch.setenv("COUPA_API__CLIENT_SECRET", f"cs-{token_hex(8)}")
        monkeypatch.setenv("HTTPS_PROXY", f"http://bob:{proxy_password}@proxy.invalid:3128")
        monkeypatch.setenv("CHILD_ENV_PROBE", f"probe-{token_hex(8)}")
        secrets = (password, os.environ["COUPA_API__CLIENT_SECRET"], proxy_password)
        return cls(secrets, f"CHILD_ENV_PROBE={os.environ['CHILD_ENV_PROBE']}")


def memory_holds(pid: int, needles: list[bytes]) -> set[bytes]:
    """Which of ``needles`` the memory of process ``pid`` holds (its writable memory and
    stack; code and read-only files skipped). Chromium's helpers overwrite the area
    /proc/<pid>/environ shows with their title, so their environment is looked for here."""
    found: set[bytes] = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as memory:
        for line in maps:
            fields = line.split()
            perms, path = fields[1], fields[5] if len(fields) > 5 else ""
            if not perms.startswith("r") or path.startswith("[v"):  # [vvar], [vsyscall]
                continue
            if "w" not in perms and path.startswith("/"):
                continue
            start, end = (int(address, 16) for address in fields[0].split("-"))
            try:
                memory.seek(start)
                chunk = memory.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            found.update(needle for needle in needles if needle in chunk)
    return found


def what_leaked(process: psutil.Process, planted: Planted) -> list[str]:
    """Where ``process`` holds a planted secret (environment, command line, memory); fails
    when its environment cannot be found in it at all (the check would prove nothing)."""
    secrets = [secret.encode() for secret in planted.secrets]
    try:
        in_memory = memory_holds(process.pid, [planted.probe.encode(), *secrets])
    except PermissionError:
        pytest.skip("this system does not let a process read its children's memory")
    assert planted.probe.encode() in in_memory, f"no environment found in {process.cmdline()}"
    environ = process.environ()
    leaks = [f"memory: {needle.decode()}" for needle in secrets if needle in in_memory]
    leaks += [f"environ: {name}" for name, v in environ.items() if _holds(v, planted.secrets)]
    if _holds(" ".join(process.cmdline()), planted.secrets):
        leaks.append("command line")
    return leaks


def _holds(text: str, values: tuple[str, ...]) -> bool:
    return any(value in text for value in values)


@linux_only
async def test_the_email_worker_starts_without_our_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = Planted.plant(monkeypatch)
    converter = EmailConverter("pdf")
    try:
        outcome = await converter.convert(write_eml(tmp_path / "quote.eml"))
        workers = [psutil.Process(process.process.pid) for process in converter._all]
        assert workers and "coupa_async.emails.worker" in " ".join(workers[0].cmdline())
        assert planted.probe in [f"{k}={v}" for k, v in workers[0].environ().items()]
        leaks = {
            worker.pid: await asyncio.to_thread(what_leaked, worker, planted) for worker in workers
        }
    finally:
        await converter.aclose()
    assert outcome.error is None and (tmp_path / "quote.eml.pdf").is_file()
    assert leaks == {worker.pid: [] for worker in workers}


def _command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # ended, or a zombie
        return ""


def driver_and_descendants() -> list[psutil.Process]:
    """The newest Playwright driver below this process and everything it started."""
    drivers = [child for child in psutil.Process().children() if "run-driver" in _command(child)]
    driver = max(drivers, key=lambda process: process.create_time())
    return [driver, *driver.children(recursive=True)]


def leaks_by_command(family: list[psutil.Process], planted: Planted) -> dict[str, list[str]]:
    """:func:`what_leaked` of each process of ``family`` still running, by command line."""
    found: dict[str, list[str]] = {}
    for process in family:
        command = _command(process)
        try:
            if command and process.status() != psutil.STATUS_ZOMBIE:
                found[f"{process.pid} {command}"] = what_leaked(process, planted)
        except (psutil.NoSuchProcess, ProcessLookupError, FileNotFoundError):
            continue  # a helper Chromium ended meanwhile
    return found


@linux_only
@pytest.mark.browser
async def test_the_driver_and_every_chromium_process_start_without_our_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = Planted.plant(monkeypatch)
    async with start_playwright() as playwright:
        assert os.environ["COUPA_PASSWORD"] == planted.secrets[0]  # ours again once started
        browser = await launch_browser(playwright, make_settings(tmp_path))
        try:
            page = await browser.new_page()
            await page.set_content("<p>a renderer too</p>")
            family = driver_and_descendants()
            leaks = await asyncio.to_thread(leaks_by_command, family, planted)
        finally:
            await browser.close()
    commands = list(leaks)
    assert any("run-driver" in command for command in commands), commands
    assert any("--remote-debugging-pipe" in command for command in commands), commands
    assert any("--type=renderer" in command for command in commands), commands
    assert leaks == {command: [] for command in commands}


@pytest.mark.browser
async def test_chromium_still_signs_in_to_a_proxy_named_only_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Simulator(SimConfig(seed=5, pos=1, profile="uniform")) as sim:
        proxy = CountingProxy({"coupa-sim.test": sim.port}, credentials="alice:pr@xy-pw")
        async with proxy.running() as port:
            monkeypatch.setenv("HTTP_PROXY", f"http://alice:pr@xy-pw@127.0.0.1:{port}")
            config = tmp_path / "empty.config"
            config.write_text("")
            base_url = f"http://coupa-sim.test:{sim.port}"
            settings = load_settings(
                {"base_url": base_url},
                config_file=config,
                env_file=tmp_path / "absent.env",
                environ=dict(os.environ),
            ).settings
            async with start_playwright() as playwright:
                browser = await launch_browser(playwright, settings)
                try:
                    page = await browser.new_page()
                    response = await page.goto(f"{base_url}/sessions/new")
                finally:
                    await browser.close()
    assert response is not None and response.ok
    assert proxy.count("browser", "/sessions") >= 1 and proxy.refused >= 1  # asked, then signed
