"""The chaos soak, short: every kind of fault over a small catalog, then the independent check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.mark.long
@pytest.mark.browser
@pytest.mark.timeout(600)
def test_a_short_soak_loses_repeats_and_gets_nothing_wrong() -> None:
    # A fixed seed: the same catalog and fault schedule each time (scripts/soak.py says how to
    # replay a failing seed); the long version is a benchmark, not a test.
    # Every kind of fault once or more over 24 POs: enough to lose, repeat or spoil something if
    # the tool could; the size of a run is the benchmark's (scripts/soak.py --pos 3000).
    command = [sys.executable, str(SCRIPTS / "soak.py"), "--pos", "24", "--seed", "4"]
    command += ["--minutes", "0.5", "--faults", "8", "--kills", "1", "--sleeps", "1"]
    # The soak stops itself before the test's deadline, and then says where the run was: a
    # deadline that catches a hang, far from the minute or two the run takes on a busy machine.
    command += ["--sleep-s", "3", "--limit-minutes", "8"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "0 lost, 0 repeated, 0 wrong, 0 other" in output, output
    assert "exit codes other than" not in output, output
