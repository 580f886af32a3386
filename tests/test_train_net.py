"""End to end through the real command line: pre-train, MMT, --eval-only, --resume."""

import re

import pytest

from .conftest import run_train_net

SMALL = ["SOLVER.IMS_PER_BATCH", "16", "TEST.IMS_PER_BATCH", "64", "DATALOADER.NUM_WORKERS", "0",
         "INPUT.SIZE_TRAIN", "[32, 16]", "INPUT.SIZE_TEST", "[32, 16]"]


def _run(args, data_root):
    proc = run_train_net(args, data_root)
    return proc.stdout + proc.stderr


def _metrics(log):
    """(Rank-1, mAP) of the last fast-reid result table in a log."""
    rows = re.findall(r"\| Market1501 \| ([\d.]+)\s+\| [\d.]+\s+\| [\d.]+\s+\| ([\d.]+)", log)
    assert rows, log[-2000:]
    return tuple(float(x) for x in rows[-1])


@pytest.fixture(scope="module")
def pretrained(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    paths = []
    for seed in (1, 2):
        folder = out / f"seed{seed}"
        log = _run(["--config-file", "configs/Demo/pretrain.yml", *SMALL, "SOLVER.MAX_EPOCH", "1",
                    "PRETRAIN.ITERS_PER_EPOCH", "10", "PRETRAIN.WARMUP_EPOCHS", "0", "SOLVER.CHECKPOINT_PERIOD", "1",
                    "TEST.EVAL_PERIOD", "1", "SEED", str(seed), "OUTPUT_DIR", str(folder)], tiny_data)
        assert "Source pre-training: 1 epochs of 10 iterations" in log
        assert (folder / "model_final.pth").is_file()
        paths.append(str(folder / "model_final.pth"))
    return paths


def test_pretrain_mmt_eval_only_and_resume(tiny_data, pretrained, tmp_path):
    out = tmp_path / "mmt"
    mmt = ["--config-file", "configs/Demo/mmt.yml", *SMALL, "MMT.ITERS_PER_EPOCH", "4",
           "MMT.CLUSTER.NUM_CLUSTERS", "12", "TEST.EVAL_PERIOD", "2", "SEED", "0",
           "MMT.INIT_WEIGHTS", str(pretrained), "OUTPUT_DIR", str(out)]
    log = _run(mmt + ["SOLVER.MAX_EPOCH", "2"], tiny_data)
    assert "MMT epoch 1 pseudo labels" in log
    assert "Images per BN: 16 (MMT.IMS_PER_BN = 16; SOLVER.IMS_PER_BATCH 16 over 1 process(es)" in log
    trained = _metrics(log)
    assert (out / "model_final.pth").is_file()

    # --eval-only on the result reproduces the end-of-training evaluation.
    log = _run(["--eval-only", *mmt, "SOLVER.MAX_EPOCH", "2", "MODEL.WEIGHTS", str(out / "model_final.pth")],
               tiny_data)
    assert _metrics(log) == trained

    # --resume continues after the last checkpoint (epoch 1) instead of starting over.
    log = _run(["--resume", *mmt, "SOLVER.MAX_EPOCH", "3"], tiny_data)
    assert "Starting training from epoch 2" in log
    assert "MMT epoch 2 pseudo labels" in log and "MMT epoch 0 pseudo labels" not in log


def test_two_cpu_processes_same_epoch0_labels_and_finish(tiny_data, pretrained, tmp_path):
    """`--num-gpus 2` without CUDA runs 2 gloo processes: same epoch-0 pseudo labels as one
    process, and the run trains and evaluates."""
    import numpy as np

    common = ["--config-file", "configs/Demo/mmt.yml", *SMALL, "MMT.ITERS_PER_EPOCH", "4",
              "MMT.CLUSTER.NUM_CLUSTERS", "12", "TEST.EVAL_PERIOD", "1", "SEED", "0", "SOLVER.MAX_EPOCH", "1",
              "MMT.INIT_WEIGHTS", str(pretrained)]
    _run(common + ["OUTPUT_DIR", str(tmp_path / "one")], tiny_data)
    log = _run(["--num-gpus", "2", "--dist-url", "auto", *common, "OUTPUT_DIR", str(tmp_path / "two")], tiny_data)
    assert "World size: 2" in log
    assert "Images per BN: 8 " in log and "MMT.IMS_PER_BN = 16 but each process only has 8 images" in log
    _metrics(log)
    one = np.load(tmp_path / "one" / "pseudo_labels" / "epoch_000.npy")
    two = np.load(tmp_path / "two" / "pseudo_labels" / "epoch_000.npy")
    np.testing.assert_array_equal(one, two)
