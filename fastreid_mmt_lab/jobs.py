"""``tools/train_net.py`` (or another command) as subprocesses with a log file each, a few at a time.

Used by the demo (``tools/demo.py``) and the ablation (``benchmarks/ablation.py``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_NET = os.path.join(REPO_ROOT, "tools", "train_net.py")
# Lines of a failed run's log shown in the error.
LOG_TAIL_LINES = 60
# Seconds between polls of the running subprocesses.
POLL_S = 0.5


class StageFailed(RuntimeError):
    """A subprocess exited non-zero."""


def run_env(data_root: str, jobs: int) -> Dict[str, str]:
    """Environment of a child: fast-reid's dataset root, and ``cores // jobs`` threads each."""
    threads = str(threads_per_job(jobs))
    return dict(os.environ, FASTREID_DATASETS=data_root, PYTHONWARNINGS="ignore",
                OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)


def threads_per_job(jobs: int) -> int:
    """Threads of each of ``jobs`` concurrent runs: the machine's cores shared out."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


class Run:
    """One ``train_net.py`` (or ``script``) subprocess, its output in ``log``."""

    def __init__(self, name: str, args: List[str], log: str, env: Dict[str, str], script: str = TRAIN_NET):
        self.name, self.log = name, log
        self.cmd = [sys.executable, script] + list(args)
        self.start = time.perf_counter()
        with open(log, "w") as f:
            f.write("$ " + " ".join(shlex.quote(a) for a in self.cmd) + "\n")
        self.handle = open(log, "a")
        self.proc = subprocess.Popen(self.cmd, cwd=REPO_ROOT, env=env, stdout=self.handle,
                                     stderr=subprocess.STDOUT)
        self.wall = None

    def wait(self) -> int:
        """Wait for the end; returns the exit code and records the wall time."""
        code = self.proc.wait()
        self.wall = time.perf_counter() - self.start
        self.handle.close()
        return code

    def wait_ok(self):
        """Wait for the end; raise :class:`StageFailed` with the log's tail if it failed."""
        if self.wait() != 0:
            raise StageFailed(f"{self.name} failed (exit {self.proc.returncode}); "
                              f"last lines of {self.log}:\n{log_tail(self.log)}")

    def kill(self):
        """Stop the subprocess (if still running) and close its log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.handle.closed:
            self.handle.close()


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file."""
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def run_group(specs: Sequence[tuple], jobs: int, env: Dict[str, str], keep_going: bool = False) -> Dict[str, float]:
    """Run ``(name, args, log)`` specs of ``train_net.py``, ``jobs`` at a time.

    Args:
        keep_going: a failed run is reported (its wall time None) and the others go on.

    Raises:
        StageFailed: as soon as one fails (after stopping the others), unless ``keep_going``.

    Returns:
        Each run's own wall time in seconds, by name.
    """
    pending, running, walls = list(specs), [], {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                name, args, log = pending.pop(0)
                print(f"  started {name} (log: {log})", flush=True)
                running.append(Run(name, args, log, env))
            time.sleep(POLL_S)
            for run in list(running):
                if run.proc.poll() is None:
                    continue
                running.remove(run)
                try:
                    run.wait_ok()
                except StageFailed:
                    if not keep_going:
                        raise
                    print(f"  {run.name} failed (exit {run.proc.returncode}): see {run.log}", flush=True)
                    walls[run.name] = None
                    continue
                walls[run.name] = run.wall
                print(f"  finished {run.name} in {run.wall:.0f} s", flush=True)
    finally:
        for run in running:
            run.kill()
    return walls
