"""Settings for the simulator, and checks of a run's results against its catalog."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import psutil
from pydantic import SecretStr

from coupa_async import PoResult
from coupa_async.settings import Settings, load_settings
from coupa_async.sim import Simulator
from coupa_async.tabular import InputTable, read_input

from .emailkit import check_conversions, is_conversion_output


def browser_main_processes() -> list[psutil.Process]:
    """The live Chromium main processes below this process (not their renderers or helpers)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
            alive = child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            continue
        if alive and "--remote-debugging-pipe" in cmdline and "--type=" not in cmdline:
            found.append(child)
    return found


def make_settings(tmp: Path, **overrides: object) -> Settings:
    """Settings from defaults and ``overrides`` only: no environment, .env or config file."""
    config = tmp / "empty.config"
    config.write_text("")
    return load_settings(
        overrides, config_file=config, env_file=tmp / "absent.env", environ={}
    ).settings


def for_simulator(settings: Settings, sim: Simulator) -> Settings:
    """``settings`` pointed at ``sim``, with its credentials."""
    return settings.model_copy(
        update={
            "base_url": sim.base_url,
            "username": sim.username,
            "password": SecretStr(sim.password),
        }
    )


def settings_for(sim: Simulator, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "base_url": sim.base_url,
        "username": sim.username,
        "password": sim.password,
        "out": str(tmp_path / "out"),
        "storage_state": str(tmp_path / "state.json"),
        "workers": 4,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.2,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


def numbers(sim: Simulator, count: int | None = None) -> list[str]:
    return [f"PO{po.number}" for po in sim.catalog.pos[:count]]


def settling_numbers(sim: Simulator, count: int) -> list[str]:
    """POs that settle at the first attempt (not those whose list never arrives)."""
    return [f"PO{po.number}" for po in sim.catalog.pos if not po.late_failed][:count]


def check_against_catalog(sim: Simulator, results: list[PoResult], out: Path) -> None:
    """Each PO exactly once, the expected outcome and files, nothing half-done on disk."""
    by_po = Counter(result.po_number for result in results)
    assert all(count == 1 for count in by_po.values()), by_po.most_common(3)
    expected = {f"PO{po.number}": po for po in sim.catalog.pos}
    assert set(by_po) <= set(expected)
    for result in results:
        po = expected[result.po_number]
        assert result.outcome.value == po.expected_outcome, (result.po_number, result.message)
        # Its time runs from the first attempt's start (given up ones included) to its end.
        assert result.started_at is not None and result.finished_at is not None, result.po_number
        assert result.started_at <= result.finished_at, result.po_number
        if po.late_failed:  # a list that never arrives: FAILED after its retries, nothing saved
            assert not result.files, result.po_number
            assert "settle" in result.message or "loading failed" in result.message
            continue
        assert sorted(f.sha256 for f in result.files) == sorted(
            f.sha256 for f in po.expected_files
        ), result.po_number
        assert result.folder is not None and result.folder.name.endswith(po.expected_outcome)
        on_disk = sorted(
            p for p in result.folder.iterdir() if p.is_file() and not is_conversion_output(p)
        )
        assert len(on_disk) == len(po.expected_files), (result.po_number, on_disk)
        for saved in result.files:
            assert hashlib.sha256(saved.path.read_bytes()).hexdigest() == saved.sha256
        check_conversions(po, result)
    folders = [p for p in out.rglob("PO*") if p.is_dir()]
    assert not [p for p in folders if p.name.endswith("__WORK")]
    labels = Counter(p.name.rsplit("_", 1)[0].split("_")[0] for p in folders)
    assert all(count == 1 for count in labels.values()), "a PO has two folders"
    assert not list(out.rglob("*.part"))


def input_table_for(path: Path, sim: Simulator) -> InputTable:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["PO_NUMBER"])
        writer.writerows([[f"PO{po.number}"] for po in sim.catalog.pos])
    return read_input(path)
