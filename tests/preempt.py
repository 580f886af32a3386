"""Helpers of the preemption tests: one tiny resumable MMT run through ``tools/train_net.py``,
kills at named moments (``FASTREID_MMT_FAULT``, see fastreid_mmt/engine/faults.py) or from
outside, and the comparison of a resumed run with the uninterrupted one."""

import os
import shutil
import signal
import subprocess
import time

import numpy as np
import torch

from fastreid_mmt.engine.faults import ENV as FAULT_ENV

from .conftest import REPO, TINY_RUN_OPTS, train_net_command, train_net_env

# Tiny and fast: ResNet-18 at 32x16 in float32, batch 16 (TINY_RUN_OPTS; the demo config
# otherwise), 2 epochs of ITERS iterations, one checkpoint per epoch. DBSCAN with the automatic
# radius (chosen at epoch 0, then restored from the checkpoint): EPS_RHO 0.1 and MIN_SAMPLES 2
# give ~15 clusters of the 160 tiny target images (a batch needs 4).
ITERS = 4
RUN = ["--config-file", "configs/Demo/mmt.yml", *TINY_RUN_OPTS,
       "MMT.ITERS_PER_EPOCH", str(ITERS), "SOLVER.MAX_EPOCH", "2", "MMT.CLUSTER.METHOD", "dbscan",
       "MMT.CLUSTER.EPS_RHO", "0.1", "MMT.CLUSTER.MIN_SAMPLES", "2",
       "TEST.EVAL_PERIOD", "2", "SOLVER.CHECKPOINT_PERIOD", "1", "SEED", "3"]
# Printed by MMTHook once epoch 1 has its labels (after the epoch-0 checkpoint was saved).
EPOCH1_STARTED = "MMT epoch 1 pseudo labels"
# A run (or the part of one before a fault) takes well under this on 2 loaded cores.
TIMEOUT_S = 600


def run_args(init, out, *extra):
    """Arguments of the tiny run from ``init`` (two source checkpoints) into ``out``."""
    return [*RUN, "MMT.INIT_WEIGHTS", str([str(p) for p in init]), "OUTPUT_DIR", str(out), *extra]


def env(data_root, fault=None):
    """A child's environment, with ``FASTREID_MMT_FAULT=fault`` (or without it)."""
    out = train_net_env(data_root)
    out.pop(FAULT_ENV, None)
    if fault:
        out[FAULT_ENV] = fault
    return out


def run(args, data_root, fault=None):
    """Run ``tools/train_net.py ARGS`` to its end; returns (returncode, stdout + stderr)."""
    proc = subprocess.run(train_net_command(args), cwd=REPO, env=env(data_root, fault), capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    return proc.returncode, proc.stdout + proc.stderr


def run_ok(args, data_root):
    code, log = run(args, data_root)
    assert code == 0, log[-4000:]
    return log


def start(args, data_root):
    """Start ``tools/train_net.py ARGS`` with stdout and stderr on one pipe."""
    return subprocess.Popen(train_net_command(args), cwd=REPO, env=env(data_root), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def read_until(proc, text):
    """Lines of ``proc``'s output up to the first one containing ``text`` (all if never)."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            break
    return "".join(seen)


def children(pid):
    """PIDs of the live (not zombie) processes whose parent is ``pid``."""
    return [p for p in _processes() if _stat(p)[1] == pid]


def alive(pid):
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def wait_gone(pids, timeout):
    """Wait until none of ``pids`` runs any more; returns those still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if alive(p)]


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _processes():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _stat(pid):
    """(state, parent pid) of ``pid`` from /proc, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[1])


def copy_epoch0(run_dir, out):
    """Put ``run_dir``'s state after epoch 0 (checkpoint, tag, labels) into ``out``: what a
    run killed during epoch 1 leaves, for tests that start there with ``--resume``."""
    (out / "pseudo_labels").mkdir(parents=True)
    for name in ("model_0000.pth", "pseudo_labels/epoch_000.npy"):
        shutil.copyfile(run_dir / name, out / name)
    (out / "last_checkpoint").write_text("model_0000.pth")


def checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def temporaries(folder):
    """Temporary files of atomic writes (``NAME.tmp-<pid>``) anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.tmp-*"))


def epoch_eps(log, epoch):
    """The DBSCAN radius MMTHook logged for ``epoch``."""
    line = next(ln for ln in log.splitlines() if f"MMT epoch {epoch} pseudo labels" in ln)
    return line.split("eps=")[1].split(",")[0]


def assert_same_result(expected, resumed):
    """The resumed run in ``resumed`` ended exactly as the uninterrupted one in ``expected``:
    pseudo labels of both epochs, final DBSCAN radius, every tensor of the final model."""
    for epoch in (0, 1):
        name = f"pseudo_labels/epoch_{epoch:03d}.npy"
        np.testing.assert_array_equal(np.load(resumed / name), np.load(expected / name), err_msg=name)
    want, got = checkpoint(expected / "model_final.pth"), checkpoint(resumed / "model_final.pth")
    assert got["mmt_hook"] == want["mmt_hook"]
    assert want["model"].keys() == got["model"].keys()
    differing = [k for k in want["model"] if not torch.equal(want["model"][k], got["model"][k])]
    assert not differing, f"{len(differing)} tensors differ, e.g. {differing[:5]}"
