"""Nothing lost: a run killed mid-epoch or during clustering, or whose checkpoint save hits a
full disk, resumes to the uninterrupted result; same seed, same run."""

import hashlib
import signal
import subprocess
import time

import numpy as np
import pytest

from fastreid.engine.train_loop import HookBase

from fastreid_mmt.engine import MMTTrainer

from .conftest import scratch_dir, small_mmt_cfg
from .preempt import (EPOCH1_STARTED, assert_same_result, checkpoint, copy_epoch0, epoch_eps, read_until, run,
                      run_args, run_ok, start, temporaries)

# Room on the small disk for everything but checkpoints (config, logs, metrics, labels).
DISK_SLACK = 16 * 1024 ** 2


@pytest.fixture(scope="module")
def straight(tiny_data, random_init, tmp_path_factory):
    """The uninterrupted run every resumed one must reproduce: (folder, log)."""
    with scratch_dir(tmp_path_factory, "straight") as out:
        yield out, run_ok(run_args(random_init, out), tiny_data)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_killed_mid_epoch_then_resumed_equals_uninterrupted(tiny_data, random_init, straight, tmp_path):
    """SIGKILL from outside shortly after epoch 1 began (mid-epoch, no warning)."""
    killed = tmp_path / "killed"
    proc = start(run_args(random_init, killed), tiny_data)
    try:
        seen = read_until(proc, EPOCH1_STARTED)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, seen[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert EPOCH1_STARTED in seen, seen[-3000:]
    assert (killed / "model_0000.pth").is_file() and not (killed / "model_final.pth").exists(), \
        "the kill came after epoch 1 ended: not mid-epoch"
    checkpoint(killed / (killed / "last_checkpoint").read_text())  # readable

    log = run_ok(["--resume", *run_args(random_init, killed)], tiny_data)
    assert "Starting training from epoch 1" in log and "MMT epoch 0 pseudo labels" not in log
    assert_same_result(straight[0], killed)


@pytest.mark.slow
def test_killed_during_clustering_then_resumed_equals_uninterrupted(tiny_data, random_init, straight, tmp_path):
    """Killed twice in epoch 1's refinery (after an epoch-0 checkpoint): with the labels file
    half-way to disk, then between feature extraction and clustering. The next --resume
    re-clusters with the radius of the checkpoint and ends as the uninterrupted run."""
    out = tmp_path / "killed"
    copy_epoch0(straight[0], out)
    saved = _sha(out / "model_0000.pth")
    code, log = run(["--resume", *run_args(random_init, out)], tiny_data, fault="kill@write:epoch_001.npy")
    assert code == -signal.SIGKILL and "SIGKILL of rank 0" in log, log[-3000:]
    labels = out / "pseudo_labels"
    assert not (labels / "epoch_001.npy").exists() and temporaries(labels), "not killed mid-write"

    code, log = run(["--resume", *run_args(random_init, out)], tiny_data, fault="kill@extracted:1")
    assert code == -signal.SIGKILL and "at extracted:1" in log, log[-3000:]
    assert "Starting training from epoch 1" in log and "pseudo labels:" not in log

    log = run_ok(["--resume", *run_args(random_init, out)], tiny_data)
    assert "MMT epoch 0 pseudo labels" not in log
    assert epoch_eps(log, 1) == epoch_eps(straight[1], 1) == epoch_eps(straight[1], 0)
    assert checkpoint(out / "model_final.pth")["mmt_hook"]["eps"] > 0  # DBSCAN's automatic radius
    assert_same_result(straight[0], out)
    assert temporaries(out) == [] and _sha(out / "model_0000.pth") == saved
    assert (out / "last_checkpoint").read_text() == "model_final.pth"


class SmallDisk:
    """A tmpfs of ``size`` bytes at ``folder`` (we run as root); where mounting is refused,
    a plain folder and an ENOSPC injected into the first checkpoint write of epoch 1."""

    def __init__(self, folder, size):
        self.folder = folder
        folder.mkdir()
        self.mounted = self._mount("size=%d" % size)
        self.fault = None if self.mounted else "enospc@write:model_best.pth"

    def _mount(self, options):
        cmd = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.folder)]
        try:
            return subprocess.run(cmd, capture_output=True).returncode == 0
        except FileNotFoundError:
            return False

    def grow(self, size):
        """Free space: the file system grows to ``size`` bytes."""
        if self.mounted:
            assert self._mount(f"remount,size={size}")

    def unmount(self):
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], check=True)


@pytest.fixture
def small_disk(straight, tmp_path):
    """Room for one checkpoint of the tiny run (and its logs), not for two."""
    size = (straight[0] / "model_0000.pth").stat().st_size
    disk = SmallDisk(tmp_path / "disk", size * 3 // 2 + DISK_SLACK)
    yield disk, size
    disk.unmount()


@pytest.mark.slow
def test_disk_full_during_checkpoint_save_then_resumed(tiny_data, random_init, straight, small_disk):
    """Epoch 1 (resumed from an epoch-0 checkpoint) ends on a disk with no room for its
    checkpoint: a clear error, nothing lost; --resume after freeing space continues."""
    disk, size = small_disk
    out = disk.folder / "run"
    copy_epoch0(straight[0], out)
    code, log = run(["--resume", *run_args(random_init, out)], tiny_data, fault=disk.fault)
    assert code == 1, log[-3000:]
    assert f"no space left to write model_best.pth in {out}: " in log and "MB needed" in log, log[-3000:]
    assert "The previous checkpoint model_0000.pth and last_checkpoint are intact" in log
    assert (out / "last_checkpoint").read_text() == "model_0000.pth" and temporaries(out) == []
    assert not (out / "model_best.pth").exists() and not (out / "model_final.pth").exists()
    assert (out / "model_0000.pth").read_bytes() == (straight[0] / "model_0000.pth").read_bytes()
    np.testing.assert_array_equal(np.load(out / "pseudo_labels" / "epoch_001.npy"),
                                  np.load(straight[0] / "pseudo_labels" / "epoch_001.npy"))

    disk.grow(size * 4 + DISK_SLACK)
    log = run_ok(["--resume", *run_args(random_init, out)], tiny_data)
    assert "Starting training from epoch 1" in log
    assert_same_result(straight[0], out)


class LossRecorder(HookBase):
    """Every step's loss terms, as fast-reid put them into the event storage."""

    def __init__(self):
        self.losses = []

    def after_step(self):
        self.losses.append({k: v.item() for k, v in self.trainer.model.last_losses.items()})


def _short_run(tmp_path, name, random_init):
    cfg = small_mmt_cfg(DATASETS__NAMES=("Market1501",), DATASETS__TESTS=("Market1501",), MMT__ITERS_PER_EPOCH=3,
                        SOLVER__MAX_EPOCH=2, MMT__CLUSTER__NUM_CLUSTERS=12, TEST__EVAL_PERIOD=2, SEED=5,
                        OUTPUT_DIR=str(tmp_path / name), MMT__INIT_WEIGHTS=random_init)
    trainer = MMTTrainer(cfg)
    recorder = LossRecorder()
    trainer.register_hooks([recorder])
    trainer.resume_or_load(resume=False)
    trainer.train()
    labels = [np.load(tmp_path / name / "pseudo_labels" / f"epoch_{e:03d}.npy") for e in range(2)]
    return labels, recorder.losses


@pytest.mark.slow
def test_same_seed_gives_same_pseudo_labels_and_losses(tiny_data, random_init, tmp_path):
    labels_a, losses_a = _short_run(tmp_path, "a", random_init)
    labels_b, losses_b = _short_run(tmp_path, "b", random_init)
    for a, b in zip(labels_a, labels_b):
        np.testing.assert_array_equal(a, b)
    assert len(losses_a) == 6 and losses_a == losses_b
    assert not np.array_equal(labels_a[0], labels_a[1]) or losses_a[0] != losses_a[3]  # not a frozen run
