"""Nothing lost: a run killed mid-epoch resumes to the uninterrupted result; same seed, same run."""

import signal
import subprocess
import time

import numpy as np
import torch

from fastreid.engine.train_loop import HookBase

from fastreid_mmt.engine import MMTTrainer

from .conftest import (REPO, run_train_net, save_source_checkpoints, small_mmt_cfg, train_net_command,
                       train_net_env)

# Tiny and fast: ResNet-18 at 32x16 (the demo config otherwise), batch 16, 2 epochs of 10 iterations, k-means 12.
ITERS = 10
RUN = ["--config-file", "configs/Demo/mmt.yml", "INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.SIZE_TEST", "[32, 16]",
       "SOLVER.IMS_PER_BATCH", "16", "TEST.IMS_PER_BATCH", "64",
       "MMT.ITERS_PER_EPOCH", str(ITERS), "SOLVER.MAX_EPOCH", "2", "MMT.CLUSTER.NUM_CLUSTERS", "12",
       "TEST.EVAL_PERIOD", "2", "SOLVER.CHECKPOINT_PERIOD", "1", "SEED", "3"]
# Printed by MMTHook once epoch 1 has its labels (after the epoch-0 checkpoint was saved).
EPOCH1_STARTED = "MMT epoch 1 pseudo labels"


def _run(args, data_root, flags=()):
    proc = run_train_net([*flags, *RUN, *args], data_root, timeout=300)
    return proc.stdout + proc.stderr


def _run_and_kill_in_epoch1(args, data_root, out):
    """Start a run and SIGKILL it shortly after epoch 1 began (mid-epoch, no warning)."""
    proc = subprocess.Popen(train_net_command([*RUN, *args]), cwd=REPO, env=train_net_env(data_root),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if EPOCH1_STARTED in line:
                time.sleep(0.5)
                break
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, "".join(seen[-50:])
    finally:
        if proc.poll() is None:
            proc.kill()
    assert EPOCH1_STARTED in "".join(seen), "".join(seen[-50:])
    assert (out / "model_0000.pth").is_file() and not (out / "model_final.pth").exists()
    assert not (out / "model_0001.pth").exists(), "the kill came after epoch 1 ended: not mid-epoch"


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_killed_mid_epoch_then_resumed_equals_uninterrupted(tiny_data, tmp_path):
    init = save_source_checkpoints(small_mmt_cfg(), tmp_path)
    common = ["MMT.INIT_WEIGHTS", str(init)]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _run(common + ["OUTPUT_DIR", str(straight)], tiny_data)

    _run_and_kill_in_epoch1(common + ["OUTPUT_DIR", str(killed)], tiny_data, killed)
    # Determinism: epoch 0 of the killed run is that of the uninterrupted one.
    np.testing.assert_array_equal(np.load(killed / "pseudo_labels" / "epoch_000.npy"),
                                  np.load(straight / "pseudo_labels" / "epoch_000.npy"))
    torch.load(killed / (killed / "last_checkpoint").read_text(), weights_only=True)  # readable

    log = _run([*common, "OUTPUT_DIR", str(killed)], tiny_data, flags=["--resume"])
    assert "Starting training from epoch 1" in log and "MMT epoch 0 pseudo labels" not in log
    np.testing.assert_array_equal(np.load(killed / "pseudo_labels" / "epoch_001.npy"),
                                  np.load(straight / "pseudo_labels" / "epoch_001.npy"))
    expected, resumed = _weights(straight / "model_final.pth"), _weights(killed / "model_final.pth")
    assert expected.keys() == resumed.keys()
    differing = [k for k in expected if not torch.equal(expected[k], resumed[k])]
    assert not differing, f"{len(differing)} tensors differ, e.g. {differing[:5]}"


class LossRecorder(HookBase):
    """Every step's loss terms, as fast-reid put them into the event storage."""

    def __init__(self):
        self.losses = []

    def after_step(self):
        self.losses.append({k: v.item() for k, v in self.trainer.model.last_losses.items()})


def _short_run(tmp_path, name, init):
    cfg = small_mmt_cfg(DATASETS__NAMES=("Market1501",), DATASETS__TESTS=("Market1501",), MMT__ITERS_PER_EPOCH=3,
                        SOLVER__MAX_EPOCH=2, MMT__CLUSTER__NUM_CLUSTERS=12, TEST__EVAL_PERIOD=2, SEED=5,
                        OUTPUT_DIR=str(tmp_path / name), MMT__INIT_WEIGHTS=init)
    trainer = MMTTrainer(cfg)
    recorder = LossRecorder()
    trainer.register_hooks([recorder])
    trainer.resume_or_load(resume=False)
    trainer.train()
    labels = [np.load(tmp_path / name / "pseudo_labels" / f"epoch_{e:03d}.npy") for e in range(2)]
    return labels, recorder.losses


def test_same_seed_gives_same_pseudo_labels_and_losses(tiny_data, tmp_path):
    init = save_source_checkpoints(small_mmt_cfg(), tmp_path)
    labels_a, losses_a = _short_run(tmp_path, "a", init)
    labels_b, losses_b = _short_run(tmp_path, "b", init)
    for a, b in zip(labels_a, labels_b):
        np.testing.assert_array_equal(a, b)
    assert len(losses_a) == 6 and losses_a == losses_b
    assert not np.array_equal(labels_a[0], labels_a[1]) or losses_a[0] != losses_a[3]  # not a frozen run
