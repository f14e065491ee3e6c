"""The sampler: real psutil on this process tree; cgroup and PSI files faked in tmp_path."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import psutil
import pytest
import structlog

from coupa_async.memory.sampler import ProcessTreeSampler, read_cgroup, read_psi_some_avg10

MIB = 1 << 20
PSI = (
    "some avg10=12.50 avg60=3.10 avg300=0.80 total=123456\n"
    "full avg10=1.00 avg60=0.00 avg300=0.00 total=1\n"
)


def no_cgroup(tmp_path: Path) -> ProcessTreeSampler:
    return ProcessTreeSampler(
        cgroup_root=tmp_path / "none",
        proc_pressure=tmp_path / "none" / "pressure",
        self_cgroup=tmp_path / "none" / "cgroup",
    )


def test_pss_of_the_tree_counts_this_process_and_its_children(tmp_path: Path) -> None:
    sampler = no_cgroup(tmp_path)
    own = psutil.Process().memory_full_info().pss
    alone = sampler.sample()
    assert alone.uses_pss
    assert alone.tree_bytes >= own * 0.9 > 0  # the Python process may shrink a little between
    assert 0 < alone.available_bytes <= alone.total_bytes
    assert alone.cgroup_limit_bytes is None and alone.psi_some_avg10 is None
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; b=bytearray(80*2**20); print(1,flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"1"
        grandchild_tree = sampler.sample()
    finally:
        child.kill()
        child.wait()
    assert grandchild_tree.tree_bytes - alone.tree_bytes > 70 * MIB
    assert alone.exact and grandchild_tree.exact  # a new process: PSS read again
    assert grandchild_tree.at > alone.at
    assert sampler.samples == 2 and sampler.cpu_s > 0


def test_between_exact_readings_pss_is_estimated_from_rss(tmp_path: Path) -> None:
    sampler = no_cgroup(tmp_path)
    sampler.exact_every = 3
    readings = [sampler.sample() for _ in range(4)]
    assert [r.exact for r in readings] == [True, False, False, True]
    for estimated in readings[1:3]:
        assert abs(estimated.tree_bytes - readings[0].tree_bytes) < 0.05 * readings[0].tree_bytes
    ballast = bytearray(200 * MIB)  # RSS moves by far more than 3 %: read exactly at once
    grown = sampler.sample()
    assert grown.exact and grown.tree_bytes - readings[-1].tree_bytes > 150 * MIB
    del ballast


def test_rss_is_used_where_pss_is_missing_and_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_pss = namedtuple("pfullmem", ["rss", "vms", "uss"])
    monkeypatch.setattr(psutil.Process, "memory_full_info", lambda self: without_pss(1, 2, 3))
    sampler = no_cgroup(tmp_path)
    with structlog.testing.capture_logs() as logs:
        first, second = sampler.sample(), sampler.sample()
    assert not first.uses_pss and not second.uses_pss
    assert first.tree_bytes >= psutil.Process().memory_info().rss * 0.9
    assert [entry["event"] for entry in logs] == ["memory_rss_fallback"]


def write(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".", 1)).write_text(text)
    return folder


def test_cgroup_v2_limit_working_set_and_pressure(tmp_path: Path) -> None:
    stat = "anon 500\nfile 400\nactive_file 100\ninactive_file 300\n"
    write(
        tmp_path,
        memory_max="2147483648\n",
        memory_current="1000\n",
        memory_stat=stat,
        memory_pressure=PSI,
    )
    reading = read_cgroup(tmp_path)
    assert reading.limit_bytes == 2 * 1024**3
    assert reading.usage_bytes == 700  # memory.current less inactive_file
    assert reading.psi_some_avg10 == 12.5


def test_cgroup_v2_without_limit_or_pressure_file(tmp_path: Path) -> None:
    write(tmp_path, memory_max="max\n", memory_current="5000\n", memory_stat="anon 1\n")
    reading = read_cgroup(tmp_path)
    assert reading.limit_bytes is None
    assert reading.usage_bytes == 5000
    assert reading.psi_some_avg10 is None


def test_cgroup_v2_folder_of_this_process_is_found(tmp_path: Path) -> None:
    write(tmp_path, memory_max="max\n", memory_current="1\n")
    write(tmp_path / "app.slice" / "job.scope", memory_max="1048576\n", memory_current="2048\n")
    own = tmp_path / "self-cgroup"
    own.write_text("0::/app.slice/job.scope\n")
    reading = read_cgroup(tmp_path, own)
    assert (reading.limit_bytes, reading.usage_bytes) == (1048576, 2048)


def test_cgroup_v1_limit_from_the_hierarchy(tmp_path: Path) -> None:
    stat = "cache 10\nhierarchical_memory_limit 1073741824\ntotal_inactive_file 400\n"
    write(
        tmp_path / "memory",
        memory_limit_in_bytes="9223372036854771712\n",
        memory_usage_in_bytes="1000\n",
        memory_stat=stat,
    )
    reading = read_cgroup(tmp_path)
    assert reading.limit_bytes == 1024**3
    assert reading.usage_bytes == 600
    unlimited = "hierarchical_memory_limit 9223372036854771712\n"
    write(tmp_path / "memory", memory_stat=unlimited)
    assert read_cgroup(tmp_path).limit_bytes is None


def test_no_cgroup_at_all(tmp_path: Path) -> None:
    reading = read_cgroup(tmp_path / "absent")
    assert (reading.limit_bytes, reading.usage_bytes, reading.psi_some_avg10) == (None,) * 3


def test_psi_file_parsing_and_system_fallback(tmp_path: Path) -> None:
    assert read_psi_some_avg10(write(tmp_path, pressure=PSI) / "pressure") == 12.5
    assert read_psi_some_avg10(tmp_path / "missing") is None
    (tmp_path / "bad").write_text("some avg10=oops\n")
    assert read_psi_some_avg10(tmp_path / "bad") is None
    sampler = ProcessTreeSampler(
        cgroup_root=tmp_path / "none",
        proc_pressure=tmp_path / "pressure",
        self_cgroup=tmp_path / "none",
    )
    assert sampler.sample().psi_some_avg10 == 12.5  # no cgroup PSI: the system's


def test_container_headroom_is_the_smaller_of_system_and_limit(tmp_path: Path) -> None:
    write(
        tmp_path,
        memory_max=str(1024 * MIB),
        memory_current=str(900 * MIB),
        memory_stat=f"inactive_file {100 * MIB}\n",
    )
    sampler = ProcessTreeSampler(cgroup_root=tmp_path, self_cgroup=tmp_path / "none")
    reading = sampler.sample()
    assert reading.cgroup_limit_bytes == 1024 * MIB
    assert reading.headroom_bytes == 224 * MIB
    assert time.monotonic() >= reading.at
