"""Killing the data tools: ``make data``'s rendering processes die with it, nothing holds on.

The generator is started as ``make data`` starts it (the CLI, in its own process, its output on
a pipe the caller reads), killed once its rendering pool runs, and then no child may survive and
the caller's pipe must close.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "data_scripts" / "make_synthetic_coco.py"


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for_workers(parent: subprocess.Popen, n: int, timeout: float = 60.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert parent.poll() is None, "the generator ended before its pool started"
        children = psutil.Process(parent.pid).children(recursive=True)
        if len(children) >= n:
            return children
        time.sleep(0.05)
    raise AssertionError("the rendering pool did not start")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_killing_make_data_leaves_no_worker_alive_and_closes_the_pipe(tmp_path, sig):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(CLI), "--profile", "cpu", "--out", str(tmp_path / "data"),
           "--workers", "2", "--quiet"]  # fmt: skip
    parent = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: list = []
    try:
        workers = _wait_for_workers(parent, 2)
        time.sleep(0.3)  # let them render
        parent.send_signal(sig)
        # the caller reads the pipes to their end: only possible once every writer is gone
        out, err = parent.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [w.pid for w in workers if _alive(w)], "rendering processes survived"
    finally:  # whatever happened, leave no process of this test behind
        for worker in workers:
            if _alive(worker):
                worker.kill()
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=30)
    assert parent.returncode != 0
    # the folder says it is partial (a rerun redoes it) and stays the generator's own
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert manifest == {"generator": "course_lib.synthetic"}
    if sig != signal.SIGKILL:  # a clear line, no traceback
        text = err.decode()
        assert "Traceback" not in text and "error: interrupted" in text, text
