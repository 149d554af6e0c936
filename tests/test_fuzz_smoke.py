"""Runs the GGUF fuzz target (tests/fuzz/fuzz_gguf.py) for ~20 seconds.

libFuzzer exits 0 when the time budget runs out without a finding; any crash,
unexpected exception type or broken invariant makes it exit non-zero and
write the offending input to crash-*.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

FUZZER = Path(__file__).resolve().parent / "fuzz" / "fuzz_gguf.py"


def test_gguf_fuzzer_runs_clean(tmp_path):
    env = dict(os.environ)
    # The child must import exactly the minicpm_edge this test process imports.
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    # Linux carries a process's peak RSS across fork+exec, and libFuzzer
    # checks that peak: a child of a pytest process that has loaded torch
    # starts "at" the parent's peak. Allow 2 GiB above it.
    rss_limit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + 2048
    proc = subprocess.run(
        [sys.executable, str(FUZZER), "-max_total_time=20", f"-rss_limit_mb={rss_limit}", "-timeout=10",
         "-print_final_stats=1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "Done" in log and "runs in" in log, log[-3000:]  # it really fuzzed
    assert not list(tmp_path.glob("crash-*")), log[-3000:]
